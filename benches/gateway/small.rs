//! Small transfers: many 4 KiB bundles from concurrent clients, each a durable, logged
//! transfer; also the round the backends comparison runs against several gateways.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use rand::RngCore as _;
use serde_json::Value;

use crate::measure::Samples;
use crate::report::{Report, Row, Target, Unit};
use crate::scenarios::Bench;
use crate::setup::{self, Gateway};

impl Bench<'_> {
    /// Many small transfers from concurrent clients: each answered 201 with a log receipt, and
    /// the log grew by at least one entry per transfer.
    pub(crate) fn small_transfers(&mut self, report: &mut Report) -> anyhow::Result<()> {
        let (n, clients) = (self.plan.small_count, self.plan.small_clients);
        let bodies = self.small_bodies(&self.gw.public_key)?;
        let (mut rate, mut p50, mut p99) = (Samples::default(), Samples::default(), Samples::default());
        for _ in 0..self.plan.reps {
            let before = self.log_size(&self.gw)?;
            let start = Instant::now();
            let latencies = self.small_round(&[&self.gw], &bodies)?;
            let elapsed = start.elapsed().as_secs_f64();
            let after = self.log_size(&self.gw)?;
            ensure!(after >= before + n as u64, "the log grew by {} entries for {n} transfers", after - before);
            rate.push(n as f64 / elapsed);
            p50.push(latencies.percentile(50.0));
            p99.push(latencies.percentile(99.0));
        }
        let section = format!("{n} × {} KiB transfers, {clients} clients", self.plan.small_size / 1024);
        report.push(
            Row::new("small.rate", &section, "durable, logged transfers", Unit::PerSecond, rate)
                .target(Target::AtLeast(300.0)),
        );
        report.push(Row::new("small.p50", &section, "latency p50", Unit::Millis, p50));
        report.push(Row::new("small.p99", &section, "latency p99", Unit::Millis, p99));
        Ok(())
    }

    /// The small transfers' bundles: `plan.small_count` random plaintexts of `plan.small_size`
    /// bytes, each encrypted to `public_key`.
    pub(crate) fn small_bodies(&self, public_key: &str) -> anyhow::Result<Arc<Vec<Bytes>>> {
        let mut rng = rand::thread_rng();
        let bodies = (0..self.plan.small_count)
            .map(|_| {
                let mut plain = vec![0u8; self.plan.small_size];
                rng.fill_bytes(&mut plain);
                setup::encrypt_bytes(&plain, public_key).map(Bytes::from)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Arc::new(bodies))
    }

    /// Uploads every body once, from `plan.small_clients` concurrent clients split evenly
    /// between `gateways` (client `c` uses gateway `c mod len`, as a round-robin load balancer
    /// would place them), each a new connection per upload; checks that each is answered 201
    /// with a log receipt and returns the latencies in milliseconds.
    pub(crate) fn small_round(&self, gateways: &[&Gateway], bodies: &Arc<Vec<Bytes>>) -> anyhow::Result<Samples> {
        let next = Arc::new(AtomicUsize::new(0));
        let latencies = self.rt.block_on(async {
            let tasks: Vec<_> = (0..self.plan.small_clients)
                .map(|c| {
                    let gw = gateways[c % gateways.len()];
                    let (next, bodies, http) = (next.clone(), bodies.clone(), self.http.clone());
                    let (url, token) = (gw.upload_url(), gw.sender.clone());
                    tokio::spawn(async move {
                        let mut latencies = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(body) = bodies.get(i) else { break };
                            let t = Instant::now();
                            let response = http.post(&url).bearer_auth(&token).body(body.clone()).send().await?;
                            let status = response.status();
                            let text = response.text().await?;
                            ensure!(status == reqwest::StatusCode::CREATED, "a small upload got {status}: {text}");
                            let v: Value = serde_json::from_str(&text)?;
                            ensure!(v["receipt"].as_str().is_some_and(|r| !r.is_empty()), "no receipt");
                            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        anyhow::Ok(latencies)
                    })
                })
                .collect();
            let mut all = Samples::default();
            for task in tasks {
                for l in task.await?? {
                    all.push(l);
                }
            }
            anyhow::Ok(all)
        })?;
        let n = bodies.len();
        ensure!(latencies.values.len() == n, "{} of {n} small transfers completed", latencies.values.len());
        Ok(latencies)
    }

    /// The log's current size at `gw`, from its signed checkpoint (second line).
    pub(crate) fn log_size(&self, gw: &Gateway) -> anyhow::Result<u64> {
        let text = self.rt.block_on(async {
            self.http.get(format!("{}/log/checkpoint", gw.url)).send().await?.error_for_status()?.text().await
        })?;
        text.lines().nth(1).and_then(|l| l.parse().ok()).context("unreadable checkpoint")
    }
}
