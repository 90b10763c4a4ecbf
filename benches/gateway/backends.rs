//! The backends comparison (`--only backends`): the same small transfers, ingest and egress on
//! each configuration, each started empty in a directory of its own:
//!
//! 1. one gateway on the embedded default, SQLite and a local directory;
//! 2. one gateway over PostgreSQL and a three-node Garage cluster;
//! 3. two gateways over one PostgreSQL and one Garage cluster, sharing the signing key and the
//!    public URL, the clients split evenly between them as a round-robin load balancer would:
//!    a bundle is uploaded through A and redeemed through B, and then both take an upload at
//!    once (two bundles of half the size, one per gateway), each redeemed through the other;
//! 4. and, to tell which shared backend costs what, each alone under one gateway: PostgreSQL
//!    with a local directory, and SQLite with Garage.
//!
//! Every configuration registers the same recipient key, so one set of small bundles serves them
//! all; each large upload is encrypted anew, so no two carry the same bytes (Garage stores a
//! block it already holds only once, which would flatter it). Every upload must be answered 201
//! with the size, digest and a log receipt; every download must bring the whole bundle, and one
//! per configuration is hashed; the log on every gateway must grow by one entry per small
//! transfer. While the clock runs, `usage` reads the CPU and the writes of each process group,
//! and over PostgreSQL `write_lock` samples what the writers' lock is held for.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;

use crate::cluster::{self, Garage, Postgres};
use crate::measure::{Run, Samples, file_digest, mb_per_s, output, run, sync_disk};
use crate::report::{LockRow, Report, Row, SideBySide, Unit, UsageRow};
use crate::scenarios::{Bench, check_answer, step};
use crate::setup::{self, Backend, Gateway};
use crate::usage::{Group, Meter, Usage};
use crate::write_lock::{LockCounts, Sampler};

/// At most this many large transfers per configuration: Garage keeps three copies of each for
/// ten minutes after it is deleted (its block collection delay), on the one shared disk.
const BIG_REPS: usize = 3;
/// The largest bundle hashed end to end per configuration (eight of the S3 upload's parts).
const CHECKED: u64 = 64 << 20;
/// How long every gateway's log may take to show the small transfers' entries.
const LOG_WAIT: Duration = Duration::from_secs(60);

/// One configuration: its id in the report's rows, its name, what it runs on, and how many
/// gateways.
struct Config {
    id: &'static str,
    name: &'static str,
    postgres: bool,
    garage: bool,
    gateways: usize,
}

const SQLITE: Config = Config {
    id: "backends.sqlite",
    name: "one gateway, SQLite + local directory (default)",
    postgres: false,
    garage: false,
    gateways: 1,
};
const ONE: Config =
    Config { id: "backends.pg1", name: "one gateway, PostgreSQL + Garage", postgres: true, garage: true, gateways: 1 };
const TWO: Config =
    Config { id: "backends.pg2", name: "two gateways, PostgreSQL + Garage", postgres: true, garage: true, gateways: 2 };
/// Each shared backend alone under one gateway, to tell which of the two costs what.
const PG_LOCAL: Config = Config {
    id: "backends.pg_local",
    name: "diagnostic: one gateway, PostgreSQL + local directory",
    postgres: true,
    garage: false,
    gateways: 1,
};
const SQLITE_GARAGE: Config = Config {
    id: "backends.sqlite_garage",
    name: "diagnostic: one gateway, SQLite + Garage",
    postgres: false,
    garage: true,
    gateways: 1,
};

/// The servers a configuration runs over (PostgreSQL, Garage, either or none), and with several
/// gateways their signing key: what the gateways of one deployment share.
struct Deployment {
    backend: Backend,
    // Dropped after the gateways that use them (which the caller declares later).
    postgres: Option<Postgres>,
    garage: Option<Garage>,
}

impl Deployment {
    fn start(bench: &Bench<'_>, config: &Config, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let postgres = if config.postgres {
            let bin = bench.tools.postgres.as_ref().context("PostgreSQL 15 is missing")?;
            eprintln!("bench: starting PostgreSQL in {}", dir.display());
            Some(Postgres::start(bin, &dir.join("postgres"))?)
        } else {
            None
        };
        let garage = if config.garage {
            let garage = bench.tools.garage.as_ref().context("garage is missing")?;
            eprintln!("bench: starting a three-node Garage cluster in {}", dir.display());
            Some(Garage::start(garage, &dir.join("garage"))?)
        } else {
            None
        };
        // Gateways that serve one log sign with one key; a lone gateway makes its own.
        let signing_key = if config.gateways > 1 {
            let key = dir.join("gateway.key");
            cluster::signing_key(&key)?;
            Some(key)
        } else {
            None
        };
        let backend = Backend {
            database_url: postgres.as_ref().map(Postgres::url),
            env: garage.as_ref().map(Garage::gateway_env).unwrap_or_default(),
            signing_key,
        };
        Ok(Self { backend, postgres, garage })
    }

    /// The meter for this deployment's servers and `gateways`.
    fn meter(&self, gateways: &[&Gateway]) -> Meter {
        let mut meter = Meter::default();
        for gw in gateways {
            meter.add(Group::Gateways, gw.pid());
        }
        if let Some(pid) = self.postgres.as_ref().and_then(Postgres::pid) {
            meter.add(Group::Postgres, pid);
        }
        for pid in self.garage.iter().flat_map(Garage::pids) {
            meter.add(Group::Garage, pid);
        }
        meter
    }
}

impl Bench<'_> {
    /// Runs each configuration as a step of its own (one that fails does not stop the others);
    /// those needing a missing PostgreSQL or garage are skipped, and said to be.
    pub(crate) fn backends(&mut self, report: &mut Report) {
        let Some(bodies) = step(report, "backends: small bundles", |_| self.small_bodies(&self.gw.public_key)) else {
            return;
        };
        let root = self.dir.join("backends");
        for config in [&SQLITE, &ONE, &TWO, &PG_LOCAL, &SQLITE_GARAGE] {
            let mut missing = Vec::new();
            if config.postgres && self.tools.postgres.is_none() {
                missing.push("PostgreSQL 15");
            }
            if config.garage && self.tools.garage.is_none() {
                missing.push("garage");
            }
            if !missing.is_empty() {
                let why = format!("{} missing", missing.join(" and "));
                eprintln!("bench: skipping backends: {} ({why})", config.name);
                report.skipped.push(format!("backends: {} ({why})", config.name));
                continue;
            }
            step(report, &format!("backends: {}", config.name), |r| {
                let dir = root.join(config.id.trim_start_matches("backends."));
                if config.garage {
                    self.room_for(&root, config.gateways as u64)?;
                }
                let deployment = Deployment::start(self, config, &dir)?;
                let recipient = self.gw.recipient_key();
                let a = Gateway::start_with(&dir.join("a"), self.rt, &deployment.backend, Some(&recipient))?;
                let b = if config.gateways > 1 {
                    Some(Gateway::join(&dir.join("b"), self.rt, &deployment.backend, &a)?)
                } else {
                    None
                };
                let gateways: Vec<&Gateway> = std::iter::once(&a).chain(b.as_ref()).collect();
                let database = deployment.backend.database_url.clone();
                self.configuration(r, config, &gateways, &deployment.meter(&gateways), database.as_deref(), &bodies)
            });
        }
    }

    /// Fails early, rather than filling the shared disk, unless `dir` has room for the large
    /// transfers of a deployment whose `gateways` each take one at once: three Garage copies
    /// and the staged upload of each, and the file it is sent from.
    fn room_for(&self, dir: &Path, gateways: u64) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let per_rep = if gateways > 1 { 2 * self.plan.big } else { self.plan.big };
        let need = self.big_reps() as u64 * per_rep * 3 + per_rep * 2 + (2 << 30);
        let avail: u64 = output(std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(dir))?
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .context("cannot read the free space from `df`")?;
        if avail < need {
            bail!(
                "the backends comparison needs about {} GiB free in {} (Garage keeps three copies of each upload), and {} GiB are; free some, or choose a disk with --work-dir",
                need >> 30,
                dir.display(),
                avail >> 30
            );
        }
        Ok(())
    }

    fn big_reps(&self) -> usize {
        self.plan.reps.min(BIG_REPS)
    }

    /// Measures one configuration: its bytes first (one bundle hashed after the round trip),
    /// then small transfers, one large bundle in and out, and with two gateways both at once.
    fn configuration(
        &self,
        report: &mut Report,
        config: &Config,
        gateways: &[&Gateway],
        meter: &Meter,
        database: Option<&str>,
        bodies: &Arc<Vec<Bytes>>,
    ) -> anyhow::Result<()> {
        let (first, last) = (gateways[0], gateways[gateways.len() - 1]);
        let section = format!("Backends: {}", config.name);
        self.round_trip(first, last)?;

        let (n, clients) = (bodies.len(), self.plan.small_clients);
        let (mut rate, mut p50, mut p99, mut usage) = Default::default();
        let (rate, p50, p99, usage): (&mut Samples, &mut Samples, &mut Samples, &mut Usage) =
            (&mut rate, &mut p50, &mut p99, &mut usage);
        let mut lock = LockCounts::default();
        for _ in 0..self.plan.reps {
            let before = self.log_size(first)?;
            let sampler = database.map(|url| Sampler::start(self.rt, url)).transpose()?;
            let start = (meter.read(), Instant::now());
            let latencies = self.small_round(gateways, bodies)?;
            let elapsed = start.1.elapsed().as_secs_f64();
            usage.add(meter, &start.0, &meter.read(), elapsed);
            if let Some(sampler) = sampler {
                sampler.finish(self.rt, &mut lock)?;
            }
            for gw in gateways {
                self.wait_for_log(gw, before + n as u64)?;
            }
            rate.push(n as f64 / elapsed);
            p50.push(latencies.percentile(50.0));
            p99.push(latencies.percentile(99.0));
        }
        let split =
            if gateways.len() > 1 { format!(", {} per gateway", clients / gateways.len()) } else { String::new() };
        let what = format!("{n} × {} KiB, {clients} clients{split}", self.plan.small_size / 1024);
        report.push(Row::new(
            &format!("{}.small.rate", config.id),
            &section,
            &format!("small transfers ({what})"),
            Unit::PerSecond,
            rate.clone(),
        ));
        report.push(Row::new(
            &format!("{}.small.p50", config.id),
            &section,
            "small transfers, latency p50",
            Unit::Millis,
            p50.clone(),
        ));
        report.push(Row::new(
            &format!("{}.small.p99", config.id),
            &section,
            "small transfers, latency p99",
            Unit::Millis,
            p99.clone(),
        ));
        report.usage.push(UsageRow {
            configuration: config.name.to_owned(),
            measurement: format!("small transfers ({what})"),
            usage: usage.clone(),
        });
        if database.is_some() {
            report.write_lock.push(LockRow { configuration: config.name.to_owned(), counts: lock });
        }

        let mib = self.plan.big >> 20;
        let (ingest, egress) = self.in_and_out(report, config, first, last, meter)?;
        let (through_a, through_b) =
            if gateways.len() > 1 { (" through A", " through B (uploaded through A)") } else { ("", "") };
        report.push(Row::new(
            &format!("{}.ingest", config.id),
            &section,
            &format!("ingest {mib} MiB{through_a} (curl -T)"),
            Unit::MBps,
            ingest,
        ));
        report.push(Row::new(
            &format!("{}.egress", config.id),
            &section,
            &format!("egress {mib} MiB{through_b} (curl)"),
            Unit::MBps,
            egress,
        ));
        report.side_by_side.push(SideBySide {
            configuration: config.name.to_owned(),
            small: Some(format!("{}.small", config.id)),
            ingest: Some(format!("{}.ingest", config.id)),
            egress: Some(format!("{}.egress", config.id)),
        });

        if let [a, b] = gateways {
            let (ingest, egress) = self.both_at_once(report, config, a, b, meter)?;
            let half = (self.plan.big / 2) >> 20;
            report.push(Row::new(
                &format!("{}.both.ingest", config.id),
                &section,
                &format!("ingest 2 × {half} MiB at once, one through each gateway (aggregate)"),
                Unit::MBps,
                ingest,
            ));
            report.push(Row::new(
                &format!("{}.both.egress", config.id),
                &section,
                &format!("egress 2 × {half} MiB at once, each through the other gateway (aggregate)"),
                Unit::MBps,
                egress,
            ));
            report.side_by_side.push(SideBySide {
                configuration: format!("{}, both at once (2 × {half} MiB)", config.name),
                small: None,
                ingest: Some(format!("{}.both.ingest", config.id)),
                egress: Some(format!("{}.both.egress", config.id)),
            });
        }
        Ok(())
    }

    /// One bundle of up to [`CHECKED`] bytes uploaded through `first`, redeemed through `last`
    /// to a file, and compared byte for byte (by digest) with what was sent.
    fn round_trip(&self, first: &Gateway, last: &Gateway) -> anyhow::Result<()> {
        let plain = self.dir.join("backends-check.bin");
        let sealed = self.dir.join("backends-check.age");
        let got = self.dir.join("backends-check.out");
        setup::random_file(&plain, self.plan.big.min(CHECKED))?;
        setup::encrypt_file(&plain, &first.public_key, &sealed)?;
        let (size, digest) = (std::fs::metadata(&sealed)?.len(), file_digest(&sealed)?);
        let answer = run(&mut self.curl_upload_to(first, &sealed)?)?;
        let link = check_answer(&answer.stdout, size, &digest)?;
        let t = run(&mut self.curl_redeem_at(last, &link, &got)?)?;
        ensure!(t.stdout.trim() == size.to_string(), "the gateway sent {} of {size} bytes", t.stdout.trim());
        ensure!(file_digest(&got)? == digest, "a bundle redeemed through another gateway differs from the upload");
        for f in [plain, sealed, got] {
            std::fs::remove_file(f)?;
        }
        Ok(())
    }

    /// Waits until `gw`'s signed checkpoint counts at least `size` entries.
    fn wait_for_log(&self, gw: &Gateway, size: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let now = self.log_size(gw)?;
            if now >= size {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the log at {} has {now} entries {}s after the small transfers, not {size}",
                    gw.url,
                    LOG_WAIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A fresh encryption of the ingest plaintext (new file key, so new bytes), its size and
    /// digest.
    fn seal(&self, plain: &Path, public_key: &str, out: &Path) -> anyhow::Result<(u64, String)> {
        setup::encrypt_file(plain, public_key, out)?;
        Ok((std::fs::metadata(out)?.len(), file_digest(out)?))
    }

    /// One large bundle uploaded through `first` and redeemed through `last`, timed each way.
    fn in_and_out(
        &self,
        report: &mut Report,
        config: &Config,
        first: &Gateway,
        last: &Gateway,
        meter: &Meter,
    ) -> anyhow::Result<(Samples, Samples)> {
        let (mut ingest, mut egress) = (Samples::default(), Samples::default());
        let (mut usage_in, mut usage_out) = (Usage::default(), Usage::default());
        let sealed = self.dir.join("backends-big.age");
        for _ in 0..self.big_reps() {
            let (size, digest) = self.seal(&self.plain, &first.public_key, &sealed)?;
            sync_disk();
            let t = metered(meter, &mut usage_in, || run(&mut self.curl_upload_to(first, &sealed)?))?;
            let link = check_answer(&t.stdout, size, &digest)?;
            ingest.push(mb_per_s(size, t.seconds()));
            std::fs::remove_file(&sealed)?;
            sync_disk();
            let t = metered(meter, &mut usage_out, || {
                run(&mut self.curl_redeem_at(last, &link, Path::new("/dev/null"))?)
            })?;
            ensure!(t.stdout.trim() == size.to_string(), "the gateway sent {} of {size} bytes", t.stdout.trim());
            egress.push(mb_per_s(size, t.seconds()));
        }
        let mib = self.plan.big >> 20;
        for (measurement, usage) in [(format!("ingest {mib} MiB"), usage_in), (format!("egress {mib} MiB"), usage_out)]
        {
            report.usage.push(UsageRow { configuration: config.name.to_owned(), measurement, usage });
        }
        Ok((ingest, egress))
    }

    /// Two bundles of half the size uploaded at once, one through each gateway, then redeemed
    /// at once, each through the other gateway: the aggregate rate each way.
    fn both_at_once(
        &self,
        report: &mut Report,
        config: &Config,
        a: &Gateway,
        b: &Gateway,
        meter: &Meter,
    ) -> anyhow::Result<(Samples, Samples)> {
        let plain = self.dir.join("backends-half.bin");
        setup::random_file(&plain, self.plan.big / 2)?;
        let files = [self.dir.join("backends-half-a.age"), self.dir.join("backends-half-b.age")];
        let (mut ingest, mut egress) = (Samples::default(), Samples::default());
        let (mut usage_in, mut usage_out) = (Usage::default(), Usage::default());
        for _ in 0..self.big_reps() {
            let sealed = [self.seal(&plain, &a.public_key, &files[0])?, self.seal(&plain, &b.public_key, &files[1])?];
            let commands = [self.curl_upload_to(a, &files[0])?, self.curl_upload_to(b, &files[1])?];
            sync_disk();
            let up = metered(meter, &mut usage_in, || in_parallel(commands))?;
            let links = [
                check_answer(&up.runs[0].stdout, sealed[0].0, &sealed[0].1)?,
                check_answer(&up.runs[1].stdout, sealed[1].0, &sealed[1].1)?,
            ];
            let total = sealed[0].0 + sealed[1].0;
            ingest.push(mb_per_s(total, up.seconds));
            for f in &files {
                std::fs::remove_file(f)?;
            }
            let null = Path::new("/dev/null");
            let commands = [self.curl_redeem_at(b, &links[0], null)?, self.curl_redeem_at(a, &links[1], null)?];
            sync_disk();
            let down = metered(meter, &mut usage_out, || in_parallel(commands))?;
            for (run, (size, _)) in down.runs.iter().zip(&sealed) {
                ensure!(run.stdout.trim() == size.to_string(), "a gateway sent {} of {size} bytes", run.stdout.trim());
            }
            egress.push(mb_per_s(total, down.seconds));
        }
        std::fs::remove_file(&plain)?;
        let half = (self.plan.big / 2) >> 20;
        for (measurement, usage) in [
            (format!("ingest 2 × {half} MiB at once"), usage_in),
            (format!("egress 2 × {half} MiB at once"), usage_out),
        ] {
            report.usage.push(UsageRow { configuration: config.name.to_owned(), measurement, usage });
        }
        Ok((ingest, egress))
    }
}

/// Two commands' runs, started together, and the wall time until both had finished.
struct Both {
    runs: Vec<Run>,
    seconds: f64,
}

impl Timed for Both {
    fn seconds(&self) -> f64 {
        self.seconds
    }
}

impl Timed for Run {
    fn seconds(&self) -> f64 {
        Run::seconds(self)
    }
}

/// What took a measured time.
trait Timed {
    fn seconds(&self) -> f64;
}

/// Runs both commands at once, each on a thread of its own.
fn in_parallel(commands: [std::process::Command; 2]) -> anyhow::Result<Both> {
    let start = Instant::now();
    let results: Vec<anyhow::Result<Run>> = std::thread::scope(|s| {
        let handles: Vec<_> = commands.into_iter().map(|mut c| s.spawn(move || run(&mut c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked"))))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    Ok(Both { runs: results.into_iter().collect::<anyhow::Result<_>>()?, seconds })
}

/// Runs `f`, adding what the processes of `meter` did meanwhile to `usage`, over `f`'s own
/// measured time.
fn metered<T: Timed>(meter: &Meter, usage: &mut Usage, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let before = meter.read();
    let result = f()?;
    usage.add(meter, &before, &meter.read(), result.seconds());
    Ok(result)
}
