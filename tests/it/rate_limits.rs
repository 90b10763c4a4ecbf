//! Floods: rate limits on sign-in, redemption, uploads and the device poll (429 `rate_limited`
//! with `Retry-After`, a 429 page for the browser), repeated refusals aggregated so the log
//! grows by a bounded number of leaves while their count reaches the audit trail, and log
//! tiles kept one row per tile (a partial tile is superseded in place by the full one).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{TestServer, code, parties, status_json, values};
use sealpost::limits::Rate;

/// Asserts a 429 `rate_limited` answer with a `Retry-After` of at least one second.
async fn assert_limited(r: reqwest::Response) {
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let (_, body) = status_json(r).await;
    assert_eq!(code(&body), "rate_limited", "{body}");
}

#[tokio::test]
async fn redemption_is_limited_beyond_its_quota_with_retry_after() {
    let server = TestServer::start_with(|c| c.rate_limits.redeem = Rate::new(1, 3)).await;
    let (_, alice, _) = parties(&server).await;
    let redeem = |token: &str| {
        server.http().post(format!("{}/api/v1/redeem", server.url)).bearer_auth(token).json(&json!({"token": "x"}))
    };
    for _ in 0..3 {
        let r = redeem(&alice).send().await.unwrap();
        assert_ne!(r.status().as_u16(), 429);
    }
    assert_limited(redeem(&alice).send().await.unwrap()).await;
    // Nothing was recorded for the limited request: three refusals, no fourth.
    let refused = server.entries("download.refused").await;
    assert!(refused.len() <= 3, "{refused:?}");
    // Other kinds of request are not limited by it.
    let (status, _) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn uploads_are_limited_per_client_and_per_token() {
    let server = TestServer::start_with(|c| c.rate_limits.upload = Rate::new(1, 2)).await;
    let (bob, _, _) = parties(&server).await;
    for _ in 0..2 {
        let (status, body) = server.upload(&bob, &["hmpps/alice"], "", b"not age".to_vec()).await;
        assert_ne!(status, 429, "{body}");
    }
    let url = format!("{}/api/v1/transfers?to=hmpps/alice", server.url);
    assert_limited(server.http().post(&url).bearer_auth(&bob).body("x").send().await.unwrap()).await;
    // tus creation is an upload too.
    let r = server
        .http()
        .post(format!("{}/api/v1/uploads", server.url))
        .bearer_auth(&bob)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_limited(r).await;
    server.stop().await;
}

#[tokio::test]
async fn the_device_poll_is_limited() {
    let server = TestServer::start_with(|c| c.rate_limits.device_poll = Rate::new(1, 2)).await;
    let poll =
        || server.http().post(format!("{}/api/v1/sso/device/token", server.url)).json(&json!({"device_code": "nope"}));
    for _ in 0..2 {
        let r = poll().send().await.unwrap();
        assert_ne!(r.status().as_u16(), 429);
    }
    assert_limited(poll().send().await.unwrap()).await;
    server.stop().await;
}

#[tokio::test]
async fn sign_in_pages_answer_a_page_with_429() {
    let server = TestServer::start_with(|c| c.rate_limits.sign_in = Rate::new(1, 2)).await;
    let post = || {
        server
            .http()
            .post(format!("{}/sign-in", server.url))
            .header("accept", "text/html")
            .form(&[("csrf", "x"), ("token", "sp_nothing")])
    };
    for _ in 0..2 {
        assert_eq!(post().send().await.unwrap().status().as_u16(), 422);
    }
    let r = post().send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get("content-security-policy").is_some());
    let page = r.text().await.unwrap();
    assert!(page.contains("Too many attempts") && page.contains("<html"), "{page}");
    assert!(!page.contains("sp_nothing"));
    server.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_quota_and_nobody_else_can_claim_one() {
    let sign_in = |server: &TestServer, forwarded: &str| {
        server
            .http()
            .post(format!("{}/sign-in", server.url))
            .header("accept", "text/html")
            .header("x-forwarded-for", forwarded)
            .form(&[("csrf", "x"), ("token", "sp_nothing")])
    };
    // The tests' client is the proxy here (127.0.0.1).
    let proxied = TestServer::start_with(|c| {
        c.rate_limits.sign_in = Rate::new(1, 2);
        c.connections.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    for _ in 0..2 {
        assert_eq!(sign_in(&proxied, "203.0.113.9").send().await.unwrap().status().as_u16(), 422);
    }
    assert_eq!(sign_in(&proxied, "203.0.113.9").send().await.unwrap().status().as_u16(), 429);
    // Another client behind the same proxy is not held to the first one's quota, and what a
    // client writes to the left of the proxy's entry does not move it to a fresh quota.
    assert_eq!(sign_in(&proxied, "198.51.100.7").send().await.unwrap().status().as_u16(), 422);
    assert_eq!(sign_in(&proxied, "192.0.2.1, 203.0.113.9").send().await.unwrap().status().as_u16(), 429);
    proxied.stop().await;

    // Without trusted proxies the header is the client's own say and changes nothing.
    let direct = TestServer::start_with(|c| c.rate_limits.sign_in = Rate::new(1, 2)).await;
    for forwarded in ["203.0.113.9", "198.51.100.7"] {
        assert_eq!(sign_in(&direct, forwarded).send().await.unwrap().status().as_u16(), 422);
    }
    assert_eq!(sign_in(&direct, "192.0.2.55").send().await.unwrap().status().as_u16(), 429);
    direct.stop().await;
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.device_poll = Rate::new(1, 1);
        c.rate_limits.enabled = false;
    })
    .await;
    for _ in 0..5 {
        let r = server
            .http()
            .post(format!("{}/api/v1/sso/device/token", server.url))
            .json(&json!({"device_code": "nope"}))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status().as_u16(), 429);
    }
    server.stop().await;
}

/// The `download.refused` entries, and the total number of refusals they stand for.
async fn refusals(server: &TestServer) -> (Vec<String>, u64) {
    let entries = server.entries("download.refused").await;
    let total = entries
        .iter()
        .map(|e| match values(std::slice::from_ref(e), "repeated")[0].as_str() {
            "" => 1,
            n => n.parse::<u64>().unwrap(),
        })
        .sum();
    (entries, total)
}

#[tokio::test]
async fn a_flood_of_unknown_tokens_adds_a_bounded_number_of_leaves_and_is_counted() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.enabled = false;
        c.refusal_window = Duration::from_secs(2);
    })
    .await;
    let (_, alice, _) = parties(&server).await;
    let events_before = server.events().await.len();
    const FLOOD: u64 = 60;
    for i in 0..FLOOD {
        let (status, _) = server.redeem(&alice, &format!("https://x/d#t=unknown-{i}")).await;
        assert_eq!(status, 404);
    }
    // One entry at once; the repeats are counted, not written.
    let (entries, _) = refusals(&server).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].contains("reason unknown_token"));
    // When the window closes, one summary carries the count: every refusal reaches the trail.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (entries, total) = loop {
        let (entries, total) = refusals(&server).await;
        if total == FLOOD || Instant::now() > deadline {
            break (entries, total);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(total, FLOOD, "{entries:?}");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(values(&entries[1..], "repeated"), [(FLOOD - 1).to_string()]);
    assert!(values(&entries[1..], "first")[0].ends_with('Z'), "{entries:?}");
    assert!(values(&entries[1..], "last")[0].ends_with('Z'), "{entries:?}");
    // The log grew by those two leaves, not by sixty.
    assert_eq!(server.events().await.len(), events_before + 2);
    // The summaries are well-formed log entries: the log's own reader accepts them.
    for e in &entries {
        sealpost::transparency::verify::parse_entry(e.as_bytes()).expect("a valid entry");
    }
    server.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_aggregated_and_counts_survive_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let adjust = |c: &mut sealpost::config::Config| {
        c.rate_limits.enabled = false;
        c.refusal_window = Duration::from_secs(3600);
    };
    let server = TestServer::start_in(dir.path(), adjust).await;
    let http = server.http().clone();
    for _ in 0..4 {
        let r = http
            .post(format!("{}/sign-in", server.url))
            .form(&[("csrf", "x"), ("token", "sp_nothing")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422);
    }
    assert_eq!(server.entries("session.refused").await.len(), 1);
    server.stop().await;
    // The stop wrote the window's summary: nothing counted was lost.
    let server = TestServer::start_in(dir.path(), adjust).await;
    let entries = server.entries("session.refused").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(values(&entries, "repeated"), ["", "3"]);
    assert_eq!(values(&entries, "code"), ["csrf", "csrf"]);
    server.stop().await;
}

#[tokio::test]
async fn a_full_tile_supersedes_its_partial_tiles_which_are_still_served() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.enabled = false;
        c.refusal_window = Duration::ZERO;
        c.log_interval = Duration::from_millis(50);
    })
    .await;
    let (_, alice, _) = parties(&server).await;
    let checkpoint_size = || async {
        let text = server.http().get(format!("{}/log/checkpoint", server.url)).send().await.unwrap().text().await;
        text.unwrap().lines().nth(1).unwrap().parse::<u64>().unwrap()
    };
    // A partial tile first.
    let deadline = Instant::now() + Duration::from_secs(20);
    while checkpoint_size().await < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let small = checkpoint_size().await;
    assert!((5..256).contains(&small), "{small}");
    let partial = server.http().get(format!("{}/log/tile/0/000.p/{small}", server.url)).send().await.unwrap();
    assert_eq!(partial.status().as_u16(), 200);
    let partial = partial.bytes().await.unwrap();
    // Then enough refusals (each its own entry here) to fill the first tile.
    for i in 0..256 {
        let (status, _) = server.redeem(&alice, &format!("https://x/d#t=unknown-{i}")).await;
        assert_eq!(status, 404);
    }
    while checkpoint_size().await < 256 && Instant::now() < deadline + Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(checkpoint_size().await >= 256);
    // One row for tile 0/0, the full one: the partial widths written before are gone.
    let db = server.database().await;
    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT bytes FROM log_tiles WHERE level = 0 AND idx = 0").fetch_all(&db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.len(), 256 * 32);
    let partial_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM log_tiles WHERE level = 0 AND length(bytes) < 8192 AND idx = 0")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(partial_rows, 0);
    db.close().await;
    // The full tile is served, and a client that still asks for the old partial width gets the
    // same bytes as before (a prefix of the full tile), as tlog-tiles allows.
    let full = server.http().get(format!("{}/log/tile/0/000", server.url)).send().await.unwrap();
    assert_eq!(full.status().as_u16(), 200);
    let full = full.bytes().await.unwrap();
    assert_eq!(full.len(), 8192);
    assert_eq!(&full[..partial.len()], &partial[..]);
    let again = server.http().get(format!("{}/log/tile/0/000.p/{small}", server.url)).send().await.unwrap();
    assert!(matches!(again.status().as_u16(), 200 | 404));
    if again.status().as_u16() == 200 {
        assert_eq!(again.bytes().await.unwrap(), partial);
    }
    server.stop().await;
}
