//! Slow, idle, silent and malformed clients over raw TCP (issue 15, items 1 and 7): header and
//! idle-body timeouts, idle keep-alive connections closed, connection caps answered with 503,
//! a stalled resumable upload taken over or timed out and resumed at its durable offset, a
//! shutdown bounded in time that records what it cut, the HTTP library's own answers in the
//! JSON shape with the security headers, and an accept loop that outlives running out of file
//! descriptors.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{self, TestServer, code, encrypt, noise, parties};

/// A raw connection to the server.
async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.url.trim_start_matches("http://")).await.expect("connect")
}

/// A raw connection to the server from another loopback address.
async fn connect_from(server: &TestServer, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(format!("{from}:0").parse().expect("address")).expect("bind");
    socket.connect(server.url.trim_start_matches("http://").parse().expect("address")).await.expect("connect")
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Asserts an error answer in the JSON shape with every security header.
    fn assert_error(&self, status: u16, expected: &str) {
        let body = self.json();
        assert_eq!((self.status, code(&body)), (status, expected), "{self:?}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        for (name, value) in [
            ("cache-control", "no-store"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
            ("content-type", "application/json"),
        ] {
            assert_eq!(self.headers.get(name).map(String::as_str), Some(value), "{name} in {self:?}");
        }
    }
}

/// Reads one answer (head, then `Content-Length` bytes of body) within `wait`.
async fn read_answer(stream: &mut TcpStream, wait: Duration) -> Answer {
    tokio::time::timeout(wait, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before an answer: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        Answer { status, headers, body: buf[head_end..head_end + length].to_vec() }
    })
    .await
    .expect("an answer in time")
}

/// Whether the server closes `stream` within `wait` (reading and discarding what comes).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut chunk = [0u8; 8192];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A client with no connection pool, so that each request opens its own connection.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client")
}

/// `GET /healthz` on a connection of its own: the status, or None when no answer came in time.
async fn healthz(url: &str) -> Option<u16> {
    let get = fresh_client().get(format!("{url}/healthz")).timeout(Duration::from_secs(2)).send();
    get.await.ok().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn slowloris_headers_are_cut_at_the_header_timeout() {
    let server = TestServer::start_with(|c| c.connections.header_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: sealpost.test\r\n").await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let dribble = tokio::spawn(async move {
        // One byte of a header every 200 ms: never a whole header section.
        for _ in 0..100 {
            if write.write_all(b"X").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a client dribbling its headers kept its connection for 8 s");
    assert!(started.elapsed() < Duration::from_secs(4), "closed only after {:?}", started.elapsed());
    dribble.abort();
    assert_eq!(healthz(&server.url).await, Some(200));
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let server = TestServer::start_with(|c| c.connections.header_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&server).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: sealpost.test\r\n\r\n").await.unwrap();
    let answer = read_answer(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let started = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(8)).await, "an idle keep-alive connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(4), "closed only after {:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn an_idle_request_body_is_answered_408_and_nothing_is_kept() {
    let server = TestServer::start_with(|c| c.connections.body_idle_timeout = Duration::from_secs(1)).await;
    let (bob, _alice, alice_id) = parties(&server).await;
    let ciphertext = encrypt(&[&alice_id.to_public().to_string()], &noise(1 << 20));
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /api/v1/transfers?to=hmpps/alice HTTP/1.1\r\nHost: sealpost.test\r\nAuthorization: Bearer {bob}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        ciphertext.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&ciphertext[..64 << 10]).await.unwrap();
    // And then nothing more.
    let started = Instant::now();
    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;
    answer.assert_error(408, "request_timeout");
    assert!(started.elapsed() < Duration::from_secs(5), "answered only after {:?}", started.elapsed());
    assert_eq!(answer.headers.get("connection").map(String::as_str), Some("close"));
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await, "the connection stays open after the 408");
    let mut aborted = false;
    for _ in 0..100 {
        if server.events().await.iter().any(|e| e == "upload.aborted") {
            aborted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(aborted, "the abandoned upload is not in the audit trail");
    assert_eq!(open_files_under(&server.data_dir.join("tmp")), 0, "the staging file is still open");
    assert_eq!(std::fs::read_dir(server.data_dir.join("tmp")).map(Iterator::count).unwrap_or(0), 0, "it is kept");
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_answered_503_until_one_closes() {
    let server = TestServer::start_with(|c| {
        c.connections.max = Some(3);
        c.connections.header_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&server).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut beyond = connect(&server).await;
    beyond.write_all(b"GET /healthz HTTP/1.1\r\nHost: sealpost.test\r\n\r\n").await.unwrap();
    let answer = read_answer(&mut beyond, Duration::from_secs(5)).await;
    answer.assert_error(503, "service_unavailable");
    assert!(answer.headers.contains_key("retry-after"), "{answer:?}");
    assert!(closed_within(&mut beyond, Duration::from_secs(5)).await);
    // Through an HTTP client too, which reads the answer as any other.
    let r = fresh_client().get(format!("{}/healthz", server.url)).send().await.expect("an answer, not a reset");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    drop(held.pop());
    let mut status = None;
    for _ in 0..50 {
        status = healthz(&server.url).await;
        if status == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, Some(200), "a slot given back is not taken again");
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let server = TestServer::start_with(|c| {
        c.connections.max_per_address = 2;
        c.connections.header_timeout = Duration::from_secs(30);
    })
    .await;
    let held = [connect(&server).await, connect(&server).await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = connect(&server).await;
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: sealpost.test\r\n\r\n").await.unwrap();
    read_answer(&mut third, Duration::from_secs(5)).await.assert_error(503, "service_unavailable");
    // Another address is served meanwhile.
    let mut other = connect_from(&server, "127.0.0.2").await;
    other.write_all(b"GET /healthz HTTP/1.1\r\nHost: sealpost.test\r\n\r\n").await.unwrap();
    assert_eq!(read_answer(&mut other, Duration::from_secs(5)).await.status, 200);
    drop(held);
    server.stop().await;
}

/// A tus upload of `ciphertext` created for `bob`: its location.
async fn tus_create(server: &TestServer, bob: &str, length: usize) -> String {
    let r = server
        .http()
        .post(format!("{}/api/v1/uploads", server.url))
        .bearer_auth(bob)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", format!("to {}", STANDARD.encode("hmpps/alice")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// A raw `PATCH` that sends the first `sent` bytes of `ciphertext` from 0 and then stalls.
async fn stalled_patch(server: &TestServer, bob: &str, location: &str, ciphertext: &[u8], sent: usize) -> TcpStream {
    let mut stream = connect(server).await;
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: sealpost.test\r\nAuthorization: Bearer {bob}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        ciphertext.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&ciphertext[..sent]).await.unwrap();
    stream
}

/// `HEAD` of a tus upload: status and `Upload-Offset`.
async fn tus_offset(server: &TestServer, bob: &str, location: &str) -> (u16, Option<u64>) {
    let r = fresh_client()
        .head(format!("{}{location}", server.url))
        .bearer_auth(bob)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.headers().get("upload-offset").map(|v| v.to_str().unwrap().parse().unwrap()))
}

/// Sends the rest of `ciphertext` from `offset` on a new connection; the status and body.
async fn tus_finish(server: &TestServer, bob: &str, location: &str, ciphertext: &[u8], offset: usize) -> (u16, Value) {
    let r = fresh_client()
        .patch(format!("{}{location}", server.url))
        .bearer_auth(bob)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream")
        .body(ciphertext[offset..].to_vec())
        .send()
        .await
        .unwrap();
    let transfer = r.headers().get("sealpost-transfer").map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = common::status_json(r).await;
    (status, transfer.map_or(body, Value::String))
}

/// How many files under `dir` this process holds open.
fn open_files_under(dir: &std::path::Path) -> usize {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir) && !target.to_string_lossy().contains("sealpost.db"))
        .count()
}

#[tokio::test]
async fn a_sender_back_on_a_new_connection_takes_over_a_stalled_upload_at_once() {
    // The idle-body timeout is long: the takeover does not wait for it.
    let server = TestServer::start_with(|c| c.connections.body_idle_timeout = Duration::from_secs(120)).await;
    let (bob, alice, alice_id) = parties(&server).await;
    let ciphertext = encrypt(&[&alice_id.to_public().to_string()], &noise(2 << 20));
    let location = tus_create(&server, &bob, ciphertext.len()).await;
    let sent = 1 << 20;
    let mut stalled = stalled_patch(&server, &bob, &location, &ciphertext, sent).await;
    // The socket goes silent (a laptop lid closed); the sender comes back on another.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = Instant::now();
    let (status, offset) = tus_offset(&server, &bob, &location).await;
    assert_eq!((status, offset), (200, Some(sent as u64)), "HEAD does not count the stalled request's bytes");
    let (status, transfer) = tus_finish(&server, &bob, &location, &ciphertext, sent).await;
    assert_eq!(status, 204, "{transfer}");
    assert!(started.elapsed() < Duration::from_secs(10), "resumed only after {:?}", started.elapsed());
    assert!(transfer.as_str().is_some_and(|t| location.ends_with(t)), "{transfer}");
    // The old request ended; the upload became a transfer, recorded once.
    let _ = closed_within(&mut stalled, Duration::from_secs(5)).await;
    let accepted = server.events().await.iter().filter(|e| *e == "upload.accepted").count();
    assert_eq!(accepted, 1);
    let _ = alice;
    assert_eq!(open_files_under(&server.data_dir.join("uploads")), 0, "the partial file is still open");
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_upload_gives_back_its_file_and_lock_when_its_idle_timeout_fires() {
    let server = TestServer::start_with(|c| c.connections.body_idle_timeout = Duration::from_secs(1)).await;
    let (bob, _alice, alice_id) = parties(&server).await;
    let ciphertext = encrypt(&[&alice_id.to_public().to_string()], &noise(1 << 20));
    let location = tus_create(&server, &bob, ciphertext.len()).await;
    let sent = 256 << 10;
    let mut stalled = stalled_patch(&server, &bob, &location, &ciphertext, sent).await;
    let answer = read_answer(&mut stalled, Duration::from_secs(10)).await;
    answer.assert_error(408, "request_timeout");
    // The partial file is closed and the lock given back: the sender goes on from the offset.
    assert_eq!(open_files_under(&server.data_dir.join("uploads")), 0, "the partial file is still open");
    assert_eq!(tus_offset(&server, &bob, &location).await, (200, Some(sent as u64)));
    let (status, body) = tus_finish(&server, &bob, &location, &ciphertext, sent).await;
    assert_eq!(status, 204, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_within_its_bound_and_records_what_it_cut() {
    let adjust = |c: &mut sealpost::config::Config| {
        c.connections.shutdown_timeout = Duration::from_secs(2);
        c.connections.header_timeout = Duration::from_secs(60);
        c.connections.body_idle_timeout = Duration::from_secs(60);
    };
    let server = TestServer::start_with(adjust).await;
    let (bob, alice, alice_id) = parties(&server).await;
    let recipient = alice_id.to_public().to_string();
    let bundle = encrypt(&[&recipient], &noise(24 << 20));
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "", bundle.clone()).await;
    assert_eq!(status, 201, "{upload}");
    let link = upload["links"][0]["url"].as_str().unwrap().to_owned();

    // A silent client; an upload that stalls mid-body; a download whose reader stops reading.
    let _silent = connect(&server).await;
    let other = encrypt(&[&recipient], &noise(1 << 20));
    let mut stalled_upload = connect(&server).await;
    let head = format!(
        "POST /api/v1/transfers?to=hmpps/alice HTTP/1.1\r\nHost: sealpost.test\r\nAuthorization: Bearer {bob}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        other.len()
    );
    stalled_upload.write_all(head.as_bytes()).await.unwrap();
    stalled_upload.write_all(&other[..64 << 10]).await.unwrap();
    // A resumable upload whose PATCH stalls mid-body.
    let to = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "hmpps/alice");
    let created = server
        .http()
        .post(format!("{}/api/v1/uploads", server.url))
        .bearer_auth(&bob)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", other.len().to_string())
        .header("Upload-Metadata", format!("to {to}"))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let mut stalled_patch = connect(&server).await;
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: sealpost.test\r\nAuthorization: Bearer {bob}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
        other.len()
    );
    stalled_patch.write_all(head.as_bytes()).await.unwrap();
    stalled_patch.write_all(&other[..32 << 10]).await.unwrap();
    let mut stalled_download = connect(&server).await;
    let body = json!({"token": common::link_token(&link)}).to_string();
    let head = format!(
        "POST /api/v1/redeem HTTP/1.1\r\nHost: sealpost.test\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stalled_download.write_all(head.as_bytes()).await.unwrap();
    let mut first = [0u8; 4096];
    let n = stalled_download.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&first[..n]));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let data_dir = server.data_dir.clone();
    let started = Instant::now();
    let dir = tokio::time::timeout(Duration::from_secs(20), server.stop())
        .await
        .expect("the shutdown was held open by silent clients");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "the shutdown took {took:?} with a bound of 2 s");
    // The cut upload answered 503 (it was still reading): an answer, not a reset.
    read_answer(&mut stalled_upload, Duration::from_secs(5)).await.assert_error(503, "service_unavailable");

    read_answer(&mut stalled_patch, Duration::from_secs(5)).await.assert_error(503, "service_unavailable");

    let server = TestServer::start_in(&data_dir, adjust).await;
    let events = server.events().await;
    assert!(!events.iter().any(|e| e == "download.completed"), "{events:?}");
    // Each cut is recorded as the shutdown's, not as a client that went away.
    let aborted = server.entries("upload.aborted").await;
    let (resumable, one_shot): (Vec<&String>, Vec<&String>) =
        aborted.iter().partition(|e| e.contains("\nresumable true\n"));
    assert_eq!(one_shot.len(), 1, "the cut upload is recorded once: {aborted:?}");
    assert!(one_shot[0].contains("\ncode server_shutdown\n"), "{}", one_shot[0]);
    assert_eq!(resumable.len(), 1, "the cut resumable request is recorded: {aborted:?}");
    assert!(resumable[0].contains("\ncode server_shutdown\n"), "{}", resumable[0]);
    let failed = server.entries("download.failed").await;
    assert_eq!(failed.len(), 1, "the cut download is recorded once: {failed:?}");
    assert!(failed[0].contains("\ncode server_shutdown\n"), "{}", failed[0]);
    // The resumable upload kept what arrived: it resumes from the recorded size.
    let held: u64 = resumable[0].lines().find_map(|l| l.strip_prefix("size ")).unwrap().parse().unwrap();
    let r = server
        .http()
        .head(format!("{}{location}", server.url))
        .bearer_auth(&bob)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("head");
    assert_eq!(r.headers()["upload-offset"].to_str().unwrap(), held.to_string());
    // The link was given back: it still delivers the whole bundle.
    let (status, got) = server.redeem(&alice, &link).await;
    assert_eq!(status, 200);
    assert_eq!(got, bundle);
    server.stop().await;
    drop(dir);
}

#[tokio::test]
async fn answers_the_http_library_makes_carry_the_json_shape_and_security_headers() {
    let server = TestServer::start().await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("garbage", b"GARBAGE\r\n\r\n".to_vec(), 400, "bad_request"),
        (
            "header without a colon",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        ("bad version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), 400, "bad_request"),
        (
            "too many headers",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-A: b\r\n".repeat(150)).into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "a 70 KiB header",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(70 << 10)).into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "a 600 KiB header",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(600 << 10)).into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            "a 10 KiB URI",
            format!("GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10 << 10)).into_bytes(),
            414,
            "uri_too_long",
        ),
        (
            "a 70 KiB URI",
            format!("GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 << 10)).into_bytes(),
            414,
            "uri_too_long",
        ),
    ];
    for (name, request, status, expected) in cases {
        let stream = connect(&server).await;
        let (mut read, mut write) = stream.into_split();
        // Written beside the read: the server may answer before it has read everything.
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&request).await;
            write
        });
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = Vec::new();
            let _ = read.read_to_end(&mut buf).await;
            buf
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer"));
        let _ = writer.await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{name}: {text:?}"));
        let mut lines = head.split("\r\n");
        let got: u16 = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let answer = Answer { status: got, headers, body: body.as_bytes().to_vec() };
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        answer.assert_error(status, expected);
    }
    // The server is unharmed.
    assert_eq!(healthz(&server.url).await, Some(200));
    server.stop().await;
}

/// `sealpost serve` in a fresh directory under an open-file limit of 128, with `env`: the child,
/// its URL and its directory.
fn serve_with_few_descriptors(env: &[(&str, &str)]) -> (std::process::Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", "ulimit -n 128 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_sealpost"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "human"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("SEALPOST_DATABASE_URL", common::database_url(dir.path()))
        .env("SEALPOST_HEADER_TIMEOUT", "60s")
        .envs(env.iter().copied())
        .current_dir(dir.path());
    let (child, url) = common::serve_process(command);
    (child, url, dir)
}

/// Opens up to 200 idle connections to `url`, until the listen queue is full.
async fn hog(url: &str) -> Vec<TcpStream> {
    let address = url.trim_start_matches("http://").to_owned();
    let mut hogs = Vec::new();
    for _ in 0..200 {
        // Once the listen queue is full too, a connect waits for SYN retries: enough by then.
        match tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(&address)).await {
            Ok(Ok(s)) => hogs.push(s),
            _ => break,
        }
    }
    hogs
}

/// One more idle connection to `url`, if one can be made within 500 ms.
async fn hog_one(url: &str) -> Option<TcpStream> {
    let address = url.trim_start_matches("http://");
    tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(address)).await.ok()?.ok()
}

/// `/healthz` until it answers `want`, for 10 s at most: the last status.
async fn healthz_until(url: &str, want: u16) -> Option<u16> {
    let mut status = None;
    for _ in 0..50 {
        status = healthz(url).await;
        if status == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    status
}

#[tokio::test]
async fn a_flood_is_refused_before_the_descriptors_run_out() {
    // The default cap under 128 descriptors is (128 - 64) / 3 = 21 connections.
    let (mut child, url, _dir) = serve_with_few_descriptors(&[]);
    assert_eq!(healthz(&url).await, Some(200));
    let mut hogs = hog(&url).await;
    assert!(hogs.len() > 128, "only {} connections", hogs.len());
    // A clear refusal, not a hang, while the flood holds every slot. The readiness probe's own
    // connection may give its slot back only after the flood was taken in (the gateway notices
    // the close when it gets to it): a probe that finds that slot is answered, and one more idle
    // connection then takes it, as a flood would.
    let mut status = None;
    for _ in 0..50 {
        status = healthz(&url).await;
        if status == Some(503) {
            break;
        }
        hogs.extend(hog_one(&url).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, Some(503), "a flood of idle connections is not refused");
    drop(hogs);
    assert_eq!(healthz_until(&url, 200).await, Some(200), "/healthz does not answer once the flood is gone");
    assert!(child.try_wait().expect("wait").is_none(), "the gateway died");
    child.kill().expect("kill");
    let _ = child.wait();
}

#[tokio::test]
async fn the_accept_loop_outlives_running_out_of_file_descriptors() {
    // A cap above the open-file limit on purpose: the descriptors run out first.
    let (mut child, url, _dir) = serve_with_few_descriptors(&[
        ("SEALPOST_MAX_CONNECTIONS", "100000"),
        ("SEALPOST_MAX_CONNECTIONS_PER_ADDRESS", "100000"),
    ]);
    assert_eq!(healthz(&url).await, Some(200));
    let mut hogs = hog(&url).await;
    assert!(hogs.len() > 128, "only {} connections", hogs.len());
    // As above: the probe's descriptor may come free only after the flood was taken in.
    let mut status = Some(200);
    for _ in 0..50 {
        status = healthz(&url).await;
        if status != Some(200) {
            break;
        }
        hogs.extend(hog_one(&url).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(status, Some(200), "idle connections did not exhaust 128 descriptors");
    drop(hogs);
    assert_eq!(healthz_until(&url, 200).await, Some(200), "/healthz does not answer once descriptors are back");
    assert!(child.try_wait().expect("wait").is_none(), "the gateway died");
    child.kill().expect("kill");
    let _ = child.wait();
}
