//! Transparency-log cost: `cargo bench --bench log`. Appends 10,000 audit events to a fresh
//! store, then integrates them into the log (tiles, bundles, signed checkpoint), and prints wall
//! and CPU time for each phase. CPU time comes from /proc/self/stat (Linux).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark")]

use std::time::Instant;

use sealpost::audit::{Event, EventKind};
use sealpost::log::Log;
use sealpost::store::Store;

/// User plus system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sealpost.db")).await.unwrap();
        let n = 10_000u64;
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let now = chrono::Utc::now();
        for i in 0..n {
            let event = Event::new(EventKind::DownloadStarted).field("link", format!("{i:032x}"));
            store.record(&event, now).await.unwrap();
        }
        println!(
            "append {n} events (one durable transaction each): {:.2} s wall, {:.2} s CPU",
            wall.elapsed().as_secs_f64(),
            cpu_seconds() - cpu
        );
        let log = Log::open(&dir.path().join("log"), "bench.example/log", &[7u8; 32]).unwrap();
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        while log.size() < n {
            log.integrate(&store).await.unwrap();
        }
        println!(
            "integrate {n} events (tiles, bundles, signed checkpoint): {:.3} s wall, {:.3} s CPU",
            wall.elapsed().as_secs_f64(),
            cpu_seconds() - cpu
        );
    });
}
