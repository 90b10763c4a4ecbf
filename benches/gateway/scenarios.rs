//! The measurements, in the order of `benches/README.md`. Each checks its own work (status,
//! size, digest, log growth) and fails the run when a check fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use futures_util::StreamExt as _;
use rand::RngCore as _;
use serde_json::Value;
use sha2::Digest as _;
use tokio::runtime::Runtime;

use crate::measure::{Samples, file_digest, mb_per_s, reset_hwm, run, sync_disk, vm_hwm};
use crate::report::{Report, Row, Target, Unit};
use crate::setup::{self, Gateway, Nginx, Tools};
use crate::{Opts, Plan};

const MIB: f64 = 1024.0 * 1024.0;

/// What every step needs.
pub(crate) struct Bench<'a> {
    pub(crate) plan: Plan,
    pub(crate) dir: PathBuf,
    pub(crate) tools: Tools,
    pub(crate) gw: Gateway,
    nginx: Option<Nginx>,
    pub(crate) rt: &'a Runtime,
    pub(crate) http: reqwest::Client,
    /// The ingest file: plaintext, its age encryption, and their digests.
    pub(crate) plain: PathBuf,
    plain_digest: String,
    sealed: PathBuf,
    sealed_size: u64,
    sealed_digest: String,
}

/// Runs every step and writes the report into `out`.
pub(crate) fn run_all(opts: &Opts, plan: Plan, out: &Path, rt: &Runtime) -> anyhow::Result<Report> {
    let tools = Tools::find(!opts.no_install);
    for m in &tools.missing {
        eprintln!("bench: warning: missing {m}; the comparisons that need it are skipped");
    }
    let base = opts.work_dir.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new().prefix("sealpost-bench-").tempdir_in(&base)?;
    let dir = tmp.path().to_path_buf();
    let mut report = Report::new(&plan, setup::machine(), setup::versions(&tools), tools.missing.clone());
    eprintln!("bench: {} mode, {} repetitions, working in {}", plan.mode, plan.reps, dir.display());

    let gw = Gateway::start(&dir, rt)?;
    let nginx = tools.nginx.as_deref().map(|n| Nginx::start(n, &dir)).transpose()?;
    eprintln!("bench: writing a {} MiB test file", plan.big >> 20);
    let plain = dir.join("extract.csv");
    setup::random_file(&plain, plan.big)?;
    let sealed = dir.join("extract.csv.age");
    setup::encrypt_file(&plain, &gw.public_key, &sealed)?;
    let mut bench = Bench {
        plan,
        plain_digest: file_digest(&plain)?,
        sealed_size: std::fs::metadata(&sealed)?.len(),
        sealed_digest: file_digest(&sealed)?,
        plain,
        sealed,
        dir,
        tools,
        gw,
        nginx,
        rt,
        http: reqwest::Client::builder().pool_max_idle_per_host(0).build()?,
    };

    let wanted = |name: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == name);
    let mut links = Vec::new();
    if wanted("ingest") || wanted("egress") {
        links = step(&mut report, "ingest", |r| bench.ingest(r)).unwrap_or_default();
    }
    if wanted("egress") {
        step(&mut report, "egress", |r| bench.egress(r, &links));
    }
    if wanted("e2e") {
        step(&mut report, "end to end", |r| bench.end_to_end(r));
    }
    if wanted("uploads") {
        step(&mut report, "concurrent uploads", |r| bench.concurrent_uploads(r));
    }
    if wanted("client") {
        step(&mut report, "client memory", |r| bench.client_memory(r));
    }
    if wanted("small") {
        step(&mut report, "small transfers", |r| bench.small_transfers(r));
    }
    if wanted("downloads") {
        step(&mut report, "concurrent downloads", |r| bench.concurrent_downloads(r));
    }
    if wanted("micro") {
        step(&mut report, "policy and log", |r| bench.policy_and_log(r));
    }
    if wanted("backends") {
        bench.backends(&mut report);
    }

    drop(bench);
    report.write(out)?;
    Ok(report)
}

/// Runs one step; a failure is recorded (the run will exit non-zero) and the next step runs.
pub(crate) fn step<T>(report: &mut Report, name: &str, f: impl FnOnce(&mut Report) -> anyhow::Result<T>) -> Option<T> {
    eprintln!("bench: {name}");
    match f(report) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("bench: {name} failed: {e:#}");
            report.failed.push(format!("{name}: {e:#}"));
            None
        }
    }
}

/// The transfer answer's first link, after checking its size and digest.
pub(crate) fn check_answer(json: &str, size: u64, digest: &str) -> anyhow::Result<String> {
    let v: Value = serde_json::from_str(json).with_context(|| format!("not a transfer answer: {json}"))?;
    ensure!(v["size"].as_u64() == Some(size), "gateway recorded size {} for a {size}-byte upload", v["size"]);
    ensure!(v["digest"].as_str() == Some(digest), "gateway recorded digest {} for {digest}", v["digest"]);
    ensure!(v["receipt"].as_str().is_some_and(|r| !r.is_empty()), "no log receipt in the answer");
    v["links"][0]["url"].as_str().map(str::to_owned).context("no link in the answer")
}

fn token_of(link: &str) -> &str {
    link.rsplit_once('#').map_or(link, |(_, t)| t)
}

impl Bench<'_> {
    fn curl(&self) -> anyhow::Result<Command> {
        let curl = self.tools.curl.as_ref().context("curl is missing")?;
        let mut cmd = Command::new(curl);
        cmd.args(["-sS", "--fail-with-body"]);
        Ok(cmd)
    }

    /// `curl` uploading `file` to the gateway as a new transfer; prints the answer.
    fn curl_upload(&self, file: &Path) -> anyhow::Result<Command> {
        self.curl_upload_to(&self.gw, file)
    }

    /// `curl` uploading `file` to `gw` as a new transfer; prints the answer.
    pub(crate) fn curl_upload_to(&self, gw: &Gateway, file: &Path) -> anyhow::Result<Command> {
        let mut cmd = self.curl()?;
        cmd.args(["-X", "POST", "-T"]).arg(file).args([
            "-H",
            &format!("Authorization: Bearer {}", gw.sender),
            &gw.upload_url(),
        ]);
        Ok(cmd)
    }

    /// `curl` redeeming `link`, the ciphertext going to `out`; prints the byte count.
    fn curl_redeem(&self, link: &str, out: &Path) -> anyhow::Result<Command> {
        self.curl_redeem_at(&self.gw, link, out)
    }

    /// `curl` redeeming `link` at `gw`, the ciphertext going to `out`; prints the byte count.
    pub(crate) fn curl_redeem_at(&self, gw: &Gateway, link: &str, out: &Path) -> anyhow::Result<Command> {
        let mut cmd = self.curl()?;
        cmd.args(["-X", "POST", "-H", &format!("Authorization: Bearer {}", gw.recipient)])
            .args(["-H", "Content-Type: application/json", "-d", &format!("{{\"token\":\"{}\"}}", token_of(link))])
            .args(["-w", "%{size_download}", "-o"])
            .arg(out)
            .arg(format!("{}/api/v1/redeem", gw.url));
        Ok(cmd)
    }

    fn age(&self) -> anyhow::Result<Command> {
        Ok(Command::new(self.tools.age.as_ref().context("age is missing")?))
    }

    /// Ingest: the age file copied on disk, PUT to nginx, and uploaded to the gateway; the
    /// gateway's peak memory during each upload. Returns one link per upload (for egress).
    fn ingest(&mut self, report: &mut Report) -> anyhow::Result<Vec<String>> {
        let size = self.sealed_size;
        let section = format!("Ingest {} MiB", size >> 20);
        let (mut cp, mut cp_sync, mut put, mut up, mut rss) = Default::default();
        let (cp, cp_sync, put, up, rss): (&mut Samples, &mut Samples, &mut Samples, &mut Samples, &mut Samples) =
            (&mut cp, &mut cp_sync, &mut put, &mut up, &mut rss);
        let mut links = Vec::new();
        let copy = self.dir.join("copy.age");
        for i in 0..self.plan.reps {
            sync_disk();
            let t = run(Command::new("cp").arg(&self.sealed).arg(&copy))?;
            cp.push(mb_per_s(size, t.seconds()));
            std::fs::remove_file(&copy)?;
            sync_disk();
            let t = run(Command::new("cp").arg(&self.sealed).arg(&copy))?;
            let s = run(Command::new("sync").arg(&copy))?;
            cp_sync.push(mb_per_s(size, t.seconds() + s.seconds()));
            std::fs::remove_file(&copy)?;
            if let Some(nginx) = &self.nginx {
                sync_disk();
                let name = format!("put-{i}.age");
                let mut cmd = self.curl()?;
                let t = run(cmd.arg("-T").arg(&self.sealed).arg(format!("{}/{name}", nginx.url)))?;
                let stored = std::fs::metadata(nginx.root.join(&name))?.len();
                ensure!(stored == size, "nginx stored {stored} of {size} bytes");
                put.push(mb_per_s(size, t.seconds()));
                std::fs::remove_file(nginx.root.join(&name))?;
            }
            sync_disk();
            reset_hwm(self.gw.pid())?;
            let t = run(&mut self.curl_upload(&self.sealed)?)?;
            rss.push(vm_hwm(self.gw.pid()).context("no gateway memory reading")? as f64 / MIB);
            links.push(check_answer(&t.stdout, size, &self.sealed_digest)?);
            up.push(mb_per_s(size, t.seconds()));
        }
        report.push(Row::new("ingest.cp", &section, "cp (page cache)", Unit::MBps, cp.clone()).tool());
        report.push(Row::new("ingest.cp_sync", &section, "cp + sync (durable)", Unit::MBps, cp_sync.clone()).tool());
        if self.nginx.is_some() {
            report
                .push(Row::new("ingest.nginx", &section, "nginx WebDAV PUT (curl -T)", Unit::MBps, put.clone()).tool());
        } else {
            report.skipped.push("ingest against nginx PUT (nginx missing)".to_owned());
        }
        report.push(
            Row::new("ingest.sealpost", &section, "sealpost upload (curl -T)", Unit::MBps, up.clone())
                .versus("ingest.nginx")
                .target(Target::RatioAtLeast(0.8)),
        );
        report.push(
            Row::new("ingest.rss", "Server memory", &format!("one {} MiB upload", size >> 20), Unit::MiB, rss.clone())
                .target(Target::AtMost(64.0)),
        );
        Ok(links)
    }

    /// Egress: the same file from nginx GET and redeemed from the gateway, both to /dev/null;
    /// then one more redeemed to disk and its digest checked.
    fn egress(&mut self, report: &mut Report, links: &[String]) -> anyhow::Result<()> {
        ensure!(links.len() >= self.plan.reps, "ingest left no links to redeem");
        let size = self.sealed_size;
        let section = format!("Egress {} MiB", size >> 20);
        let (mut get, mut redeem) = (Samples::default(), Samples::default());
        if let Some(nginx) = &self.nginx {
            std::fs::copy(&self.sealed, nginx.root.join("get.age"))?;
        }
        let null = Path::new("/dev/null");
        for link in links.iter().take(self.plan.reps) {
            if let Some(nginx) = &self.nginx {
                let mut cmd = self.curl()?;
                let t =
                    run(cmd.args(["-w", "%{size_download}", "-o", "/dev/null"]).arg(format!("{}/get.age", nginx.url)))?;
                ensure!(t.stdout.trim() == size.to_string(), "nginx sent {} of {size} bytes", t.stdout);
                get.push(mb_per_s(size, t.seconds()));
            }
            let t = run(&mut self.curl_redeem(link, null)?)?;
            ensure!(t.stdout.trim() == size.to_string(), "the gateway sent {} of {size} bytes", t.stdout);
            redeem.push(mb_per_s(size, t.seconds()));
        }
        // The bytes themselves: one more upload, redeemed to disk and compared.
        let answer = run(&mut self.curl_upload(&self.sealed)?)?;
        let link = check_answer(&answer.stdout, size, &self.sealed_digest)?;
        let got = self.dir.join("redeemed.age");
        run(&mut self.curl_redeem(&link, &got)?)?;
        ensure!(file_digest(&got)? == self.sealed_digest, "a redeemed bundle differs from the upload");
        std::fs::remove_file(&got)?;
        if let Some(nginx) = &self.nginx {
            std::fs::remove_file(nginx.root.join("get.age"))?;
            report.push(Row::new("egress.nginx", &section, "nginx GET (curl)", Unit::MBps, get).tool());
        } else {
            report.skipped.push("egress against nginx GET (nginx missing)".to_owned());
        }
        report.push(
            Row::new("egress.sealpost", &section, "sealpost redeem (curl)", Unit::MBps, redeem)
                .versus("egress.nginx")
                .target(Target::RatioAtLeast(0.9)),
        );
        Ok(())
    }

    /// End to end: `sealpost send` vs `age -r` then `curl -T`, and `sealpost fetch` vs `curl`
    /// then `age -d`; each plaintext that comes out is compared with what went in.
    fn end_to_end(&mut self, report: &mut Report) -> anyhow::Result<()> {
        if self.tools.age.is_none() || self.tools.curl.is_none() {
            report.skipped.push("end to end against age + curl (age or curl missing)".to_owned());
        }
        let size = std::fs::metadata(&self.plain)?.len();
        let reference = self.tools.age.is_some() && self.tools.curl.is_some();
        let (mut send, mut by_hand_up, mut fetch, mut by_hand_down) = Default::default();
        let (send, by_hand_up, fetch, by_hand_down): (&mut Samples, &mut Samples, &mut Samples, &mut Samples) =
            (&mut send, &mut by_hand_up, &mut fetch, &mut by_hand_down);
        let (mut sent, mut hand_sent) = (Vec::new(), Vec::new());
        let tmp_age = self.dir.join("by-hand.age");
        for _ in 0..self.plan.reps {
            sync_disk();
            let t = run(self.gw.client(&self.gw.sender).arg("send").arg(&self.plain).args([
                "--to",
                "hmpps/alice",
                "--quiet",
                "--json",
            ]))?;
            send.push(mb_per_s(size, t.seconds()));
            sent.push(first_link(&t.stdout)?);
            if reference {
                sync_disk();
                let a = run(self.age()?.args(["-r", &self.gw.public_key, "-o"]).arg(&tmp_age).arg(&self.plain))?;
                let size_age = std::fs::metadata(&tmp_age)?.len();
                let c = run(&mut self.curl_upload(&tmp_age)?)?;
                hand_sent.push(check_answer(&c.stdout, size_age, &file_digest(&tmp_age)?)?);
                by_hand_up.push(mb_per_s(size, a.seconds() + c.seconds()));
                std::fs::remove_file(&tmp_age)?;
            }
        }
        let out = self.dir.join("fetched.csv");
        for link in &sent {
            sync_disk();
            let t = run(self
                .gw
                .client(&self.gw.recipient)
                .arg("fetch")
                .arg(link)
                .arg("-i")
                .arg(&self.gw.identity)
                .arg("-o")
                .arg(&out)
                .arg("--quiet"))?;
            fetch.push(mb_per_s(size, t.seconds()));
            ensure!(file_digest(&out)? == self.plain_digest, "`sealpost fetch` wrote other bytes than were sent");
            std::fs::remove_file(&out)?;
        }
        for link in &hand_sent {
            sync_disk();
            let c = run(&mut self.curl_redeem(link, &tmp_age)?)?;
            let a = run(self.age()?.arg("-d").arg("-i").arg(&self.gw.identity).arg("-o").arg(&out).arg(&tmp_age))?;
            by_hand_down.push(mb_per_s(size, a.seconds() + c.seconds()));
            ensure!(file_digest(&out)? == self.plain_digest, "`age -d` wrote other bytes than were sent");
            std::fs::remove_file(&out)?;
            std::fs::remove_file(&tmp_age)?;
        }
        let up = format!("Send {} MiB", size >> 20);
        let down = format!("Fetch {} MiB", size >> 20);
        if reference {
            report.push(Row::new("send.by_hand", &up, "age -r, then curl -T", Unit::MBps, by_hand_up.clone()).tool());
        }
        report.push(
            Row::new("send.sealpost", &up, "sealpost send", Unit::MBps, send.clone())
                .versus("send.by_hand")
                .target(Target::RatioAtLeast(1.0)),
        );
        if reference {
            report.push(Row::new("fetch.by_hand", &down, "curl, then age -d", Unit::MBps, by_hand_down.clone()).tool());
        }
        report.push(
            Row::new("fetch.sealpost", &down, "sealpost fetch", Unit::MBps, fetch.clone()).versus("fetch.by_hand"),
        );
        Ok(())
    }

    /// The gateway's peak memory while many uploads stream in at once.
    fn concurrent_uploads(&mut self, report: &mut Report) -> anyhow::Result<()> {
        let (n, size) = (self.plan.concurrent_uploads, self.plan.concurrent_upload_size);
        let mut plain = vec![0u8; usize::try_from(size)?];
        rand::thread_rng().fill_bytes(&mut plain);
        let body = Bytes::from(setup::encrypt_bytes(&plain, &self.gw.public_key)?);
        let (mut rss, mut rate) = (Samples::default(), Samples::default());
        for _ in 0..self.plan.reps {
            reset_hwm(self.gw.pid())?;
            let start = Instant::now();
            let results = self.rt.block_on(futures_util::future::join_all((0..n).map(|_| {
                let request = self.http.post(self.gw.upload_url()).bearer_auth(&self.gw.sender).body(body.clone());
                async move {
                    let response = request.send().await?;
                    let status = response.status();
                    let text = response.text().await?;
                    anyhow::Ok((status, text))
                }
            })));
            let elapsed = start.elapsed().as_secs_f64();
            rss.push(vm_hwm(self.gw.pid()).context("no gateway memory reading")? as f64 / MIB);
            for result in results {
                let (status, text) = result?;
                ensure!(status == reqwest::StatusCode::CREATED, "a concurrent upload got {status}: {text}");
            }
            rate.push(mb_per_s(body.len() as u64 * n as u64, elapsed));
        }
        let name = format!("{n} concurrent {} MiB uploads", size >> 20);
        report.push(Row::new("concurrent.rss", "Server memory", &name, Unit::MiB, rss).target(Target::AtMost(256.0)));
        report.push(Row::new("concurrent.rate", "Concurrent uploads", &format!("{name}, aggregate"), Unit::MBps, rate));
        Ok(())
    }

    /// The client's peak memory sending and fetching one large file (measured from outside).
    fn client_memory(&mut self, report: &mut Report) -> anyhow::Result<()> {
        // Make room on the disk: the ingest files are no longer needed.
        let _ = std::fs::remove_file(&self.sealed);
        let size = self.plan.client_big;
        let plain = self.dir.join("client-big.bin");
        setup::random_file(&plain, size)?;
        let digest = file_digest(&plain)?;
        let (mut send, mut fetch) = (Samples::default(), Samples::default());
        let out = self.dir.join("client-big.out");
        // One repetition: at this size each takes long, and peak memory hardly varies.
        let t = run(self.gw.client(&self.gw.sender).arg("send").arg(&plain).args([
            "--to",
            "hmpps/alice",
            "--quiet",
            "--json",
        ]))?;
        send.push(t.peak as f64 / MIB);
        let link = first_link(&t.stdout)?;
        std::fs::remove_file(&plain)?;
        let t = run(self
            .gw
            .client(&self.gw.recipient)
            .arg("fetch")
            .arg(&link)
            .arg("-i")
            .arg(&self.gw.identity)
            .arg("-o")
            .arg(&out)
            .arg("--quiet"))?;
        fetch.push(t.peak as f64 / MIB);
        ensure!(file_digest(&out)? == digest, "the fetched file differs from the one sent");
        std::fs::remove_file(&out)?;
        let gib = format!("{:.0} MiB", size as f64 / MIB);
        report.push(
            Row::new("client.send", "Client memory", &format!("sealpost send, {gib}"), Unit::MiB, send)
                .target(Target::AtMost(64.0)),
        );
        report.push(
            Row::new("client.fetch", "Client memory", &format!("sealpost fetch, {gib}"), Unit::MiB, fetch)
                .target(Target::AtMost(64.0)),
        );
        Ok(())
    }

    /// Many distinct bundles downloaded at once: aggregate rate, time to first byte, errors.
    fn concurrent_downloads(&mut self, report: &mut Report) -> anyhow::Result<()> {
        let (n, size) = (self.plan.downloads, self.plan.download_size);
        let mut rng = rand::thread_rng();
        let mut bundles = Vec::with_capacity(n);
        for _ in 0..n {
            let mut plain = vec![0u8; usize::try_from(size)?];
            rng.fill_bytes(&mut plain);
            let body = setup::encrypt_bytes(&plain, &self.gw.public_key)?;
            let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)));
            bundles.push((Bytes::from(body), digest));
        }
        let (mut rate, mut ttfb, mut errors) = (Samples::default(), Samples::default(), Samples::default());
        for _ in 0..self.plan.reps {
            // Upload them (not timed), eight at a time.
            let targets: Vec<(String, String)> = self
                .rt
                .block_on(
                    futures_util::stream::iter(bundles.iter().map(|(body, digest)| {
                        let request =
                            self.http.post(self.gw.upload_url()).bearer_auth(&self.gw.sender).body(body.clone());
                        let (digest, len) = (digest.clone(), body.len() as u64);
                        async move {
                            let text = request.send().await?.error_for_status()?.text().await?;
                            anyhow::Ok((check_answer(&text, len, &digest)?, digest))
                        }
                    }))
                    .buffer_unordered(8)
                    .collect::<Vec<_>>(),
                )
                .into_iter()
                .collect::<anyhow::Result<_>>()?;
            let total: u64 = bundles.iter().map(|(b, _)| b.len() as u64).sum();
            let start = Instant::now();
            let results = self.rt.block_on(futures_util::future::join_all(targets.iter().map(|(link, digest)| {
                let request = self
                    .http
                    .post(format!("{}/api/v1/redeem", self.gw.url))
                    .bearer_auth(&self.gw.recipient)
                    .json(&serde_json::json!({ "token": token_of(link) }));
                async move {
                    let t = Instant::now();
                    let response = request.send().await?.error_for_status()?;
                    let mut body = response.bytes_stream();
                    let mut hasher = sha2::Sha256::new();
                    let mut first = None;
                    while let Some(chunk) = body.next().await {
                        first.get_or_insert_with(|| t.elapsed());
                        hasher.update(&chunk?);
                    }
                    let got = format!("sha256:{}", hex::encode(hasher.finalize()));
                    ensure!(&got == digest, "a download's digest differs");
                    anyhow::Ok(first.unwrap_or_default())
                }
            })));
            let elapsed = start.elapsed().as_secs_f64();
            let mut firsts = Samples::default();
            let mut failed = 0;
            for result in results {
                match result {
                    Ok(d) => firsts.push(d.as_secs_f64() * 1000.0),
                    Err(e) => {
                        failed += 1;
                        eprintln!("bench: a concurrent download failed: {e:#}");
                    }
                }
            }
            rate.push(mb_per_s(total, elapsed));
            ttfb.push(firsts.percentile(99.0));
            errors.push(f64::from(failed));
        }
        let section = format!("{n} concurrent downloads of {} KiB", size >> 10);
        report.push(Row::new("downloads.rate", &section, "aggregate", Unit::MBps, rate));
        report.push(Row::new("downloads.ttfb", &section, "time to first byte p99", Unit::Millis, ttfb));
        let failed = errors.max();
        report.push(Row::new("downloads.errors", &section, "errors", Unit::Count, errors).target(Target::AtMost(0.0)));
        if failed > 0.0 {
            bail!("{failed} of {n} concurrent downloads failed");
        }
        Ok(())
    }

    /// Policy decisions and log appends, in-process with the library (no HTTP).
    fn policy_and_log(&mut self, report: &mut Report) -> anyhow::Result<()> {
        let (mut decisions, mut appends, mut integrated) = (Samples::default(), Samples::default(), Samples::default());
        for _ in 0..self.plan.reps {
            decisions.push(crate::micro::decisions_per_second(self.plan.decisions)?);
            let (a, i) = self.rt.block_on(crate::micro::log_rates(&self.dir, self.plan.log_appends))?;
            appends.push(a);
            integrated.push(i);
        }
        let section = "In-process";
        report.push(Row::new("policy.rate", section, "policy decisions (upload)", Unit::PerSecond, decisions));
        report.push(Row::new(
            "log.append",
            section,
            "audit appends, one durable transaction each",
            Unit::PerSecond,
            appends,
        ));
        report.push(Row::new(
            "log.integrate",
            section,
            "log integration (tiles, signed checkpoint)",
            Unit::PerSecond,
            integrated,
        ));
        Ok(())
    }
}

fn first_link(json: &str) -> anyhow::Result<String> {
    let v: Value = serde_json::from_str(json).with_context(|| format!("not a transfer answer: {json}"))?;
    v["links"][0]["url"].as_str().map(str::to_owned).context("no link in `sealpost send --json`")
}
