//! Policy evaluation cost: `cargo bench --bench policy`. Prints the mean time per decision for
//! an upload (the busiest decision) and a download, with the shipped policies.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark")]

use std::time::{Duration, Instant};

use sealpost::policy::{Action, OrgFacts, PolicyGate, PolicyRequest, PolicySource, Resource, TransferFacts, UserFacts};
use serde_json::json;

fn user(id: &str, role: &str, org: &str) -> UserFacts {
    UserFacts { id: id.to_owned(), name: format!("{org}/{id}"), role: role.to_owned(), org: org.to_owned() }
}

fn main() {
    let gate = PolicyGate::load(PolicySource::Embedded, Duration::from_secs(90 * 86400)).expect("policies");
    let orgs = vec![
        OrgFacts { name: "acme".into(), kind: "contractor".into(), routes: vec!["hmpps".into()] },
        OrgFacts { name: "hmpps".into(), kind: "agency".into(), routes: vec![] },
    ];
    let bob = user("bob", "sender", "acme");
    let alice = user("alice", "recipient", "hmpps");
    let upload = PolicyRequest {
        action: Action::Upload,
        principal: bob.clone(),
        resource: Resource::User(alice.clone()),
        orgs: orgs.clone(),
        context: serde_json::Map::from_iter([
            ("classification".to_owned(), json!("OFFICIAL")),
            ("expires_in_seconds".to_owned(), json!(259_200)),
            ("recipient_count".to_owned(), json!(1)),
        ]),
    };
    let download = PolicyRequest {
        action: Action::Download,
        principal: alice.clone(),
        resource: Resource::Transfer(TransferFacts {
            id: "t".into(),
            sender: bob,
            recipients: vec![alice],
            classification: "OFFICIAL".into(),
            size: 1 << 20,
            approved: false,
        }),
        orgs,
        context: serde_json::Map::new(),
    };
    for (name, request) in [("upload", &upload), ("download", &download)] {
        let now = chrono::Utc::now();
        assert!(gate.decide(request, now).allowed, "{name} must be allowed");
        let n = 20_000u32;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(gate.decide(std::hint::black_box(request), now));
        }
        let per = start.elapsed() / n;
        println!("policy {name}: {:.1} µs per decision ({n} decisions)", per.as_secs_f64() * 1e6);
    }
}
