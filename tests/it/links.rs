//! One-time links: redemption exactly once, only by their recipient, and recall and expiry.

use crate::common::{self, TestServer, code, encrypt, noise, parties, values};
use serde_json::{Value, json};

/// Uploads a small bundle to alice; returns (answer, ciphertext).
async fn send(server: &TestServer, bob: &str, recipient: &str, extra: &str) -> (Value, Vec<u8>) {
    let ciphertext = encrypt(&[recipient], &noise(5000));
    let (status, body) = server.upload(bob, &["hmpps/alice"], extra, ciphertext.clone()).await;
    assert_eq!(status, 201, "{body}");
    (body, ciphertext)
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    code(&v).to_owned()
}

#[tokio::test]
async fn a_link_works_once_for_its_recipient_and_answers_link_used_after() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, ciphertext) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let link = upload["links"][0]["url"].as_str().unwrap();

    let r = server
        .http()
        .post(format!("{}/api/v1/redeem", server.url))
        .bearer_auth(&alice)
        .json(&json!({"token": common::link_token(link)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers();
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(r.bytes().await.unwrap().to_vec(), ciphertext);

    let (status, body) = server.redeem(&alice, link).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_used"));
    let (_, inbox) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(inbox["transfers"], json!([]));
    // Delivered to its only recipient: the ciphertext goes at once, not at the next sweep.
    // The blob is deleted first, then the purge recorded: wait for both.
    for _ in 0..100 {
        if server.stored_files() == (0, 0) && server.events().await.iter().any(|e| e == "object.purged") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.stored_files(), (0, 0));
    assert!(server.events().await.iter().any(|e| e == "object.purged"));
    server.stop().await;
}

#[tokio::test]
async fn someone_else_with_the_link_gets_404_and_the_link_stays_usable() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let mallory = server.user("hmpps/mallory", "recipient").await;
    let (upload, ciphertext) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let link = upload["links"][0]["url"].as_str().unwrap();

    for token in [&mallory, &bob] {
        let (status, body) = server.redeem(token, link).await;
        assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
    }
    let (status, body) = server.redeem(&alice, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
    let r =
        server.http().post(format!("{}/api/v1/redeem", server.url)).json(&json!({"token": "x"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let (status, got) = server.redeem(&alice, link).await;
    assert_eq!((status, got), (200, ciphertext));
    let (_, audit) = server.get(&server.admin, "/api/v1/audit?party=hmpps/mallory").await;
    let refused: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "download.refused")
        .map(|e| e["entry"].as_str().unwrap())
        .collect();
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("reason not_addressed"), "{}", refused[0]);
    server.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_redemptions_of_one_link_give_exactly_one_200() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, ciphertext) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let link = upload["links"][0]["url"].as_str().unwrap().to_owned();
    let attempts = (0..50).map(|_| server.redeem(&alice, &link));
    let results = futures_util::future::join_all(attempts).await;
    let ok: Vec<&Vec<u8>> = results.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(ok.len(), 1, "{:?}", results.iter().map(|(s, _)| *s).collect::<Vec<_>>());
    assert_eq!(ok[0], &ciphertext);
    for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
        let c = error_code(body);
        assert!((*status == 409 && c == "link_in_use") || (*status == 410 && c == "link_used"), "{status} {c}");
    }
    let completed = server.events().await.iter().filter(|e| *e == "download.completed").count();
    assert_eq!(completed, 1);
    server.stop().await;
}

#[tokio::test]
async fn the_landing_page_consumes_nothing_and_carries_strict_headers() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, _) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let link = upload["links"][0]["url"].as_str().unwrap();
    for _ in 0..3 {
        let r = server.http().get(link).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.text().await.unwrap().contains("/api/v1/redeem"));
        let head = server.http().head(link).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200);
    }
    let (status, _) = server.redeem(&alice, link).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_recall_revokes_unused_links_and_deletes_the_ciphertext() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, _) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let transfer = upload["id"].as_str().unwrap();
    let link = upload["links"][0]["url"].as_str().unwrap();
    let (_, inbox) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(inbox["transfers"][0]["transfer"], transfer);
    assert_eq!(inbox["transfers"][0]["from"], "acme/bob");

    // Not the sender's to recall? Not found.
    server.org("other", "contractor").await;
    let eve = server.user("other/eve", "sender").await;
    let (status, body) = server.delete(&eve, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!((status, code(&body)), (404, "not_found"));

    let (status, body) = server.delete(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["links_revoked"].as_u64(), body["purged"].as_bool()), (Some(1), Some(true)));
    assert_eq!(server.stored_files(), (0, 0));
    let (status, body) = server.redeem(&alice, link).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_revoked"));
    let (status, view) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["links"][0]["state"], "revoked");
    assert!(view["recalled_at"].is_string() && view["purged_at"].is_string());
    let events = server.events().await;
    for e in ["transfer.recalled", "link.revoked", "object.purged"] {
        assert!(events.iter().any(|x| x == e), "{e} missing");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_expired_link_answers_link_expired_and_is_swept() {
    let server = TestServer::start_with(|c| c.sweep_interval = std::time::Duration::from_secs(1)).await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, _) = send(&server, &bob, &id.to_public().to_string(), "&expires=1s").await;
    let link = upload["links"][0]["url"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, body) = server.redeem(&alice, link).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_expired"));
    // The sweeper deletes the blob first, then records the purge: wait for both.
    for _ in 0..100 {
        if server.stored_files() == (0, 0) && server.events().await.iter().any(|e| e == "object.purged") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(server.stored_files(), (0, 0), "the sweeper deletes expired ciphertext");
    let events = server.events().await;
    assert!(events.iter().any(|e| e == "link.expired"));
    assert!(events.iter().any(|e| e == "object.purged"));
    let (status, body) = server.redeem(&alice, link).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_expired"));
    server.stop().await;
}

/// Redeems `token` as `who` over a socket with a small receive buffer, reads the answer's head
/// and at least `take` bytes of its body, and hangs up: a client that breaks off. (With the
/// kernel's usual buffers, the whole answer could sit in them and count as delivered.)
async fn break_off_after(server: &TestServer, who: &str, token: &str, take: usize) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut stream = socket.connect(server.url.trim_start_matches("http://").parse().unwrap()).await.unwrap();
    let body = json!({ "token": token }).to_string();
    let request = format!(
        "POST /api/v1/redeem HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {who}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let head_end = loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the gateway hung up first");
        received.extend_from_slice(&buf[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert!(head.contains("\r\naccept-ranges: bytes\r\n"), "{head}");
    let mut got = received.split_off(head_end);
    while got.len() < take {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the answer ended early");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_download_resumes_with_a_range_and_the_link_is_used_up_at_the_last_byte() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let plaintext = noise(12 << 20);
    let ciphertext = encrypt(&[&id.to_public().to_string()], &plaintext);
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "", ciphertext.clone()).await;
    assert_eq!(status, 201);
    let token = common::link_token(upload["links"][0]["url"].as_str().unwrap()).to_owned();
    let redeem = |range: Option<String>| {
        let mut r = server
            .http()
            .post(format!("{}/api/v1/redeem", server.url))
            .bearer_auth(&alice)
            .json(&json!({ "token": token }));
        if let Some(range) = range {
            r = r.header("range", range);
        }
        r.send()
    };

    // Take about a megabyte, then break off.
    let mut got = break_off_after(&server, &alice, &token, 1 << 20).await;
    got.truncate(1 << 20);
    assert_eq!(got, ciphertext[..1 << 20]);
    for _ in 0..100 {
        if server.events().await.iter().any(|e| e == "download.failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Bad ranges are refused and leave the link as it was.
    for bad in ["bytes=10-5", "bytes=-100", "items=0-", "bytes=0-1,5-6"] {
        let (status, body) = common::status_json(redeem(Some(bad.into())).await.unwrap()).await;
        assert_eq!((status, code(&body)), (400, "bad_request"), "{bad}: {body}");
    }
    let beyond = redeem(Some(format!("bytes={}-", ciphertext.len()))).await.unwrap();
    assert_eq!(beyond.status().as_u16(), 416);
    assert_eq!(beyond.headers()["content-range"], format!("bytes */{}", ciphertext.len()));

    let rest = redeem(Some(format!("bytes={}-", got.len()))).await.unwrap();
    assert_eq!(rest.status().as_u16(), 206);
    assert_eq!(
        rest.headers()["content-range"],
        format!("bytes {}-{}/{}", got.len(), ciphertext.len() - 1, ciphertext.len())
    );
    got.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(got, ciphertext);
    assert_eq!(common::decrypt(&id, &got), plaintext);
    let (status, body) = server.redeem(&alice, &token).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_used"));
    server.stop().await;
}

/// Redeems `token` as `who` with a `Range` header; returns the answer.
async fn redeem_range(server: &TestServer, who: &str, token: &str, range: &str) -> reqwest::Response {
    server
        .http()
        .post(format!("{}/api/v1/redeem", server.url))
        .bearer_auth(who)
        .header("range", range)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_closed_range_serves_its_slice_and_leaves_the_link_usable_until_a_range_reaches_the_end() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, ciphertext) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let token = common::link_token(upload["links"][0]["url"].as_str().unwrap()).to_owned();
    let size = ciphertext.len();

    // The age header first, as `sealpost fetch` asks for it: the link is given back.
    let head = redeem_range(&server, &alice, &token, "bytes=0-99").await;
    assert_eq!(head.status().as_u16(), 206);
    assert_eq!(head.headers()["content-range"], format!("bytes 0-99/{size}"));
    assert_eq!(head.headers()["content-length"], "100");
    assert_eq!(head.bytes().await.unwrap().to_vec(), ciphertext[..100]);
    // A slice in the middle, at once: the first range released the lease before its bytes went.
    let middle = redeem_range(&server, &alice, &token, "bytes=1000-1999").await;
    assert_eq!(middle.status().as_u16(), 206);
    assert_eq!(middle.headers()["content-range"], format!("bytes 1000-1999/{size}"));
    assert_eq!(middle.bytes().await.unwrap().to_vec(), ciphertext[1000..2000]);
    // Everything but the last byte still leaves the link usable.
    let almost = redeem_range(&server, &alice, &token, &format!("bytes=0-{}", size - 2)).await;
    assert_eq!(almost.status().as_u16(), 206);
    assert_eq!(almost.bytes().await.unwrap().to_vec(), ciphertext[..size - 1]);
    let (_, inbox) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(inbox["transfers"][0]["state"], "issued", "{inbox}");
    // Each is audited as a partial read, not as a failed download.
    assert_eq!(server.failure_codes().await, Vec::<String>::new());
    let partial = server.entries("download.partial").await;
    assert_eq!(values(&partial, "range"), ["0-99".to_owned(), "1000-1999".into(), format!("0-{}", size - 2)]);
    assert_eq!(values(&partial, "size"), [size.to_string(), size.to_string(), size.to_string()]);
    assert!(partial.iter().all(|e| e.contains("\nlink ")), "{partial:?}");
    assert!(!server.events().await.iter().any(|e| e == "download.completed"));

    // A last position past the end is clamped to the end (RFC 9110): that range uses the link up.
    let tail = redeem_range(&server, &alice, &token, &format!("bytes={}-{}", size - 10, size + 1000)).await;
    assert_eq!(tail.status().as_u16(), 206);
    assert_eq!(tail.headers()["content-range"], format!("bytes {}-{}/{size}", size - 10, size - 1));
    assert_eq!(tail.bytes().await.unwrap().to_vec(), ciphertext[size - 10..]);
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "download.completed").count(), 1, "{events:?}");
    let (status, body) = server.redeem(&alice, &token).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_used"));
    server.stop().await;
}

#[tokio::test]
async fn a_closed_range_that_stops_short_must_end_within_the_first_mib_and_a_refusal_leaves_the_link_usable() {
    const MIB: usize = 1 << 20;
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let ciphertext = encrypt(&[&id.to_public().to_string()], &noise(3 << 20));
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "", ciphertext.clone()).await;
    assert_eq!(status, 201, "{upload}");
    let token = common::link_token(upload["links"][0]["url"].as_str().unwrap()).to_owned();
    let size = ciphertext.len();
    assert!(size > 2 * MIB + 1);

    // Past the first MiB and short of the last byte: refused, whatever the start.
    for range in [format!("bytes=0-{MIB}"), format!("bytes=0-{}", size - 2), format!("bytes={MIB}-{}", 2 * MIB)] {
        let r = redeem_range(&server, &alice, &token, &range).await;
        assert_eq!(r.status().as_u16(), 416, "{range}");
        assert_eq!(r.headers()["content-range"], format!("bytes */{size}"), "{range}");
        let (_, body) = common::status_json(r).await;
        assert_eq!(code(&body), "range_not_satisfiable", "{range}: {body}");
        let message = body.to_string();
        assert!(message.contains("first MiB") && message.contains("bytes=N-"), "{range}: {message}");
    }
    let (_, inbox) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(inbox["transfers"][0]["state"], "issued", "{inbox}");
    assert_eq!(server.failure_codes().await, ["range_not_satisfiable"; 3]);
    assert!(server.entries("download.partial").await.is_empty());

    // The whole first MiB is still served, and gives the link back.
    let head = redeem_range(&server, &alice, &token, &format!("bytes=0-{}", MIB - 1)).await;
    assert_eq!(head.status().as_u16(), 206);
    let mut got = head.bytes().await.unwrap().to_vec();
    assert_eq!(got, ciphertext[..MIB]);
    assert_eq!(values(&server.entries("download.partial").await, "range"), [format!("0-{}", MIB - 1)]);

    // A closed range that reaches the last byte may start anywhere; it uses the link up.
    let rest = redeem_range(&server, &alice, &token, &format!("bytes={MIB}-{}", size - 1)).await;
    assert_eq!(rest.status().as_u16(), 206);
    got.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(got, ciphertext);
    assert_eq!(server.events().await.iter().filter(|e| *e == "download.completed").count(), 1);
    let (status, body) = server.redeem(&alice, &token).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_used"));
    server.stop().await;
}

#[tokio::test]
async fn a_signed_in_recipient_collects_from_the_inbox_by_transfer_id_and_nobody_else_can() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, ciphertext) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let transfer = upload["id"].as_str().unwrap();
    let redeem = |token: &str, body: Value| {
        server.http().post(format!("{}/api/v1/redeem", server.url)).bearer_auth(token.to_owned()).json(&body).send()
    };

    // Someone the transfer is not addressed to learns nothing, and the link is untouched.
    let r = redeem(&bob, json!({"transfer": transfer})).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(error_code(&r.bytes().await.unwrap()), "not_found");
    let r = redeem(&alice, json!({"transfer": "not-an-id"})).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Both or neither is ambiguous: refused, never guessed.
    let link = upload["links"][0]["url"].as_str().unwrap();
    for body in [json!({}), json!({"transfer": transfer, "token": common::link_token(link)})] {
        let r = redeem(&alice, body).await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        assert_eq!(error_code(&r.bytes().await.unwrap()), "bad_request");
    }

    let r = redeem(&alice, json!({"transfer": transfer})).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), ciphertext);
    let (status, body) = server.redeem(&alice, link).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_used"), "the link and the inbox are one link");
    server.stop().await;
}
