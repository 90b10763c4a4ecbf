//! One-time links: redemption exactly once, only by their recipient, and recall and expiry.

use crate::common::{self, TestServer, code, encrypt, noise, parties, values};
use sealpost::client::keys::Identities;
use sealpost::client::seal::{HeaderCheck, check_header};
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
    SlowDownload::start(server, who, token, take).await.body
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

/// The length of the binary age header at the start of `file` (through its `---` MAC line).
fn header_len(file: &[u8]) -> usize {
    let mac = file.windows(5).position(|w| w == b"\n--- ").expect("a MAC line") + 1;
    mac + file[mac..].iter().position(|&b| b == b'\n').expect("the MAC line ends") + 1
}

#[tokio::test]
async fn before_the_link_is_used_up_a_range_serves_the_age_header_and_nothing_of_the_payload() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let (upload, ciphertext) = send(&server, &bob, &id.to_public().to_string(), "").await;
    let token = common::link_token(upload["links"][0]["url"].as_str().unwrap()).to_owned();
    let size = ciphertext.len();
    let h = header_len(&ciphertext);
    assert!(h > 100 && h + 1000 < size, "{h} of {size}");

    // A slice of the header, as `sealpost fetch` probes: served, and the link given back.
    let head = redeem_range(&server, &alice, &token, "bytes=0-99").await;
    assert_eq!(head.status().as_u16(), 206);
    assert_eq!(head.headers()["content-range"], format!("bytes 0-99/{size}"));
    assert_eq!(head.headers()["content-length"], "100");
    assert_eq!(head.bytes().await.unwrap().to_vec(), ciphertext[..100]);
    // All but the last byte: only the header comes, and the Content-Range says so.
    let almost = redeem_range(&server, &alice, &token, &format!("bytes=0-{}", size - 2)).await;
    assert_eq!(almost.status().as_u16(), 206);
    assert_eq!(almost.headers()["content-range"], format!("bytes 0-{}/{size}", h - 1));
    assert_eq!(almost.bytes().await.unwrap().to_vec(), ciphertext[..h]);
    // Anything that starts in the payload and stops short of the end: refused.
    for range in ["bytes=1000-1999".to_owned(), format!("bytes={h}-{}", size - 2), format!("bytes={h}-{h}")] {
        let r = redeem_range(&server, &alice, &token, &range).await;
        assert_eq!(r.status().as_u16(), 416, "{range}");
        assert_eq!(r.headers()["content-range"], format!("bytes */{size}"), "{range}");
        let (_, body) = common::status_json(r).await;
        assert_eq!(code(&body), "range_not_satisfiable", "{range}: {body}");
        let message = body.to_string();
        assert!(message.contains(&format!("bytes 0-{}", h - 1)) && message.contains("bytes=N-"), "{message}");
    }
    let (_, inbox) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(inbox["transfers"][0]["state"], "issued", "{inbox}");
    // Every ranged read is in the trail: the two looks as partial reads, the refusals as failures.
    assert_eq!(server.failure_codes().await, ["range_not_satisfiable"; 3]);
    let partial = server.entries("download.partial").await;
    assert_eq!(values(&partial, "range"), ["0-99".to_owned(), format!("0-{}", h - 1)]);
    assert_eq!(values(&partial, "size"), [size.to_string(), size.to_string()]);
    assert!(partial.iter().all(|e| e.contains("\nlink ")), "{partial:?}");
    assert!(!server.events().await.iter().any(|e| e == "download.completed"));

    // A range that reaches the last byte may start anywhere (a last position past the end is
    // clamped to the end, RFC 9110), and it uses the link up.
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
async fn an_armoured_bundle_serves_its_header_to_the_base64_group_that_completes_it() {
    const MIB: usize = 1 << 20;
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let binary = encrypt(&[&id.to_public().to_string()], &noise(3 << 20));
    let armoured = common::armour(&binary);
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "", armoured.clone()).await;
    assert_eq!(status, 201, "{upload}");
    let token = common::link_token(upload["links"][0]["url"].as_str().unwrap()).to_owned();
    let size = armoured.len();

    // The first MiB asked for: the armoured header comes, to the group holding its last byte.
    let head = redeem_range(&server, &alice, &token, &format!("bytes=0-{}", MIB - 1)).await;
    assert_eq!(head.status().as_u16(), 206);
    let got = head.bytes().await.unwrap().to_vec();
    assert_eq!(got, armoured[..got.len()]);
    let begin = b"-----BEGIN AGE ENCRYPTED FILE-----\n".len();
    let chars = got[begin..].iter().filter(|b| **b != b'\n').count();
    assert_eq!(chars, header_len(&binary).div_ceil(3) * 4, "whole groups, no more");
    // It is enough for `sealpost fetch` to tell whether an identity opens the bundle.
    let ids = Identities { identities: vec![Box::new(id.clone())], recipients: Vec::new() };
    assert_eq!(check_header(&got, &ids), HeaderCheck::Opens);
    assert_eq!(check_header(&got[..got.len() - 1], &ids), HeaderCheck::NeedMore);
    // Deeper into the payload, short of the end: refused; from the header's end to the end: served.
    let r = redeem_range(&server, &alice, &token, &format!("bytes={MIB}-{}", 2 * MIB)).await;
    assert_eq!(r.status().as_u16(), 416);
    let rest = redeem_range(&server, &alice, &token, &format!("bytes={}-", got.len())).await;
    assert_eq!(rest.status().as_u16(), 206);
    let mut whole = got;
    whole.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(whole, armoured);
    assert_eq!(whole.len(), size);
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

/// A download read slowly over a socket with a small receive buffer: the head and the first
/// `first` bytes of the body now, the rest when asked.
struct SlowDownload {
    stream: tokio::net::TcpStream,
    body: Vec<u8>,
}

impl SlowDownload {
    async fn start(server: &TestServer, who: &str, token: &str, first: usize) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
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
        let body_len = |r: &[u8]| r.windows(4).position(|w| w == b"\r\n\r\n").map(|at| r.len() - at - 4);
        while body_len(&received).is_none_or(|n| n < first) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the gateway hung up first");
            received.extend_from_slice(&buf[..n]);
        }
        let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
        assert!(head.starts_with("http/1.1 200 "), "{head}");
        assert!(head.contains("\r\naccept-ranges: bytes\r\n"), "{head}");
        Self { stream, body: received.split_off(head_end) }
    }

    /// Reads what is left until the gateway ends the answer (whole or cut); returns the body.
    async fn rest(mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(20), self.stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return self.body,
                Ok(Ok(n)) => self.body.extend_from_slice(&buf[..n]),
                Err(_) => panic!("the gateway neither finished nor cut the download"),
            }
        }
    }
}

/// The codes of `download.failed` events, once there is one (a cut is recorded just after the
/// answer ends).
async fn failure_codes_soon(server: &TestServer) -> Vec<String> {
    for _ in 0..100 {
        let codes = server.failure_codes().await;
        if !codes.is_empty() {
            return codes;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Vec::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recall_cuts_a_running_download_and_the_trail_says_cut_never_completed() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let ciphertext = encrypt(&[&id.to_public().to_string()], &noise(48 << 20));
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "", ciphertext.clone()).await;
    assert_eq!(status, 201, "{upload}");
    let transfer = upload["id"].as_str().unwrap().to_owned();
    let token = common::link_token(upload["links"][0]["url"].as_str().unwrap()).to_owned();

    let download = SlowDownload::start(&server, &alice, &token, 64 * 1024).await;
    let (status, body) = server.delete(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(status, 200, "{body}");
    let got = download.rest().await;
    assert!(got.len() < ciphertext.len(), "the recall cut the download ({} bytes went)", got.len());
    assert_eq!(got, ciphertext[..got.len()]);

    let codes = failure_codes_soon(&server).await;
    assert_eq!(codes, ["transfer_recalled"]);
    let events = server.events().await;
    assert!(!events.iter().any(|e| e == "download.completed"), "{events:?}");
    let failed = server.entries("download.failed").await;
    let sent: u64 = values(&failed, "sent")[0].parse().unwrap();
    assert!(sent >= 64 * 1024 && sent < ciphertext.len() as u64, "{failed:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_expires_during_a_download_cuts_it() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let ciphertext = encrypt(&[&id.to_public().to_string()], &noise(48 << 20));
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "&expires=3s", ciphertext.clone()).await;
    assert_eq!(status, 201, "{upload}");
    let token = common::link_token(upload["links"][0]["url"].as_str().unwrap()).to_owned();

    let download = SlowDownload::start(&server, &alice, &token, 64 * 1024).await;
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let got = download.rest().await;
    assert!(got.len() < ciphertext.len(), "expiry cut the download ({} bytes went)", got.len());
    let codes = failure_codes_soon(&server).await;
    assert_eq!(codes, ["link_expired"]);
    assert!(!server.events().await.iter().any(|e| e == "download.completed"));
    let (status, body) = server.redeem(&alice, &token).await;
    assert_eq!((status, error_code(&body).as_str()), (410, "link_expired"));
    server.stop().await;
}
