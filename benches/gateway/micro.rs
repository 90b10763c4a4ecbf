//! In-process rates: policy decisions with the shipped policies, durable audit appends, and
//! their integration into the transparency log.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use sealpost::audit::{Event, EventKind};
use sealpost::policy::{Action, OrgFacts, PolicyGate, PolicyRequest, PolicySource, Resource, UserFacts};
use sealpost::store::Store;
use sealpost::transparency::writer::Log;
use serde_json::json;

fn user(id: &str, role: &str, org: &str) -> UserFacts {
    UserFacts {
        id: id.to_owned(),
        name: format!("{org}/{id}"),
        role: role.to_owned(),
        org: org.to_owned(),
        authentication: None,
    }
}

/// Upload decisions (the busiest decision) per second, with the shipped policies.
pub(crate) fn decisions_per_second(n: u32) -> anyhow::Result<f64> {
    let gate = PolicyGate::load(PolicySource::Embedded, Duration::from_secs(90 * 86400))?;
    let orgs = vec![
        OrgFacts { name: "acme".into(), kind: "contractor".into(), routes: vec!["hmpps".into()] },
        OrgFacts { name: "hmpps".into(), kind: "agency".into(), routes: vec![] },
    ];
    let upload = PolicyRequest {
        action: Action::Upload,
        principal: user("bob", "sender", "acme"),
        resource: Resource::User(user("alice", "recipient", "hmpps")),
        orgs,
        context: serde_json::Map::from_iter([
            ("classification".to_owned(), json!("OFFICIAL")),
            ("expires_in_seconds".to_owned(), json!(259_200)),
            ("recipient_count".to_owned(), json!(1)),
        ]),
    };
    let now = chrono::Utc::now();
    ensure!(gate.decide(&upload, now).allowed, "the shipped policies must allow the benchmark's upload");
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(gate.decide(std::hint::black_box(&upload), now));
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// Appends `n` audit events to a fresh store, one durable transaction each, then integrates
/// them into a fresh log (tiles, entry bundles, signed checkpoint). Returns both rates, per
/// second.
pub(crate) async fn log_rates(dir: &Path, n: u64) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir_in(dir)?;
    let store = Store::open(&dir.path().join("sealpost.db")).await?;
    let now = chrono::Utc::now();
    let start = Instant::now();
    for i in 0..n {
        let event = Event::new(EventKind::DownloadStarted).field("link", format!("{i:032x}"));
        store.record(&event, now).await?;
    }
    let appends = n as f64 / start.elapsed().as_secs_f64();
    let log = Log::open(store.clone(), &dir.path().join("log"), "bench.example/log", &[7u8; 32]).await?;
    let start = Instant::now();
    while log.size() < n {
        log.step().await?;
    }
    Ok((appends, n as f64 / start.elapsed().as_secs_f64()))
}
