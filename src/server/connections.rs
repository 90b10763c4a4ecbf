//! The connection loop under the router: accepts connections within caps (overall and per
//! client address), serves each as HTTP/1.1 with a header read timeout (which also closes idle
//! keep-alive connections) and watched request bodies, survives running out of file
//! descriptors, and shuts down within a bound.
//!
//! Shutdown: new connections stop at once; idle connections close, running requests go on.
//! Shortly before the bound, the requests still running are cut: their request bodies and
//! answers end with an error, so each handler takes its usual broken-off path (an upload is
//! recorded as aborted, a download's lease is given back and recorded as failed, a resumable
//! upload keeps its durable offset and lets go of its lock). At the bound, whatever is still
//! there (a client that reads nothing) is dropped.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::answers;
use super::body::{BodyFate, CUT, Cuttable, IDLE, Watched};
use super::guard::{self, Guarded};
use crate::api::error::ApiError;
use crate::config::ConnectionLimits;
use crate::wire::ErrorCode;

/// The most headers a request may have (the HTTP library answers 431 beyond).
const MAX_HEADERS: usize = 100;
/// The most bytes of headers a request may have (answered 431 beyond).
const MAX_HEADER_BYTES: usize = 64 << 10;
/// The longest request target (answered 414 beyond).
const MAX_URI_BYTES: usize = 8 << 10;
/// At most this many refusals are being written at once (each holds a file descriptor for a
/// moment); beyond, a connection is just closed.
const REFUSING_MAX: usize = 16;
/// How long the accept loop pauses when accepting fails (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long before the shutdown bound the requests still running are cut (at most).
const CUT_GRACE: Duration = Duration::from_secs(2);

/// Counts connections, overall and per client address.
#[derive(Debug)]
pub(super) struct Slots {
    max: usize,
    per_address: usize,
    /// Not held to `per_address`: a proxy's connections carry many clients.
    proxies: Vec<ipnet::IpNet>,
    taken: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection's slot, given back when dropped.
#[derive(Debug)]
pub(super) struct Permit {
    slots: Arc<Slots>,
    address: IpAddr,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Overall,
    Address,
}

impl Slots {
    fn new(max: usize, per_address: usize, proxies: Vec<ipnet::IpNet>) -> Arc<Self> {
        Arc::new(Self { max, per_address, proxies, taken: Mutex::new((0, HashMap::new())) })
    }

    fn take(self: &Arc<Self>, address: IpAddr) -> Result<Permit, Full> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, by_address) = &mut *taken;
        if *total >= self.max {
            return Err(Full::Overall);
        }
        let count = by_address.entry(address).or_insert(0);
        if *count >= self.per_address && !super::forwarded::is_trusted(&self.proxies, &address) {
            return Err(Full::Address);
        }
        *count += 1;
        *total += 1;
        Ok(Permit { slots: self.clone(), address })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, by_address) = &mut *taken;
        *total = total.saturating_sub(1);
        if let Some(count) = by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}

/// The process's soft limit on open files, when the system says (Linux: `/proc/self/limits`).
pub(super) fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// What every connection is served with.
#[derive(Debug)]
struct Settings {
    app: Router,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    trusted_proxies: Vec<ipnet::IpNet>,
    header_timeout: Duration,
    body_idle_timeout: Duration,
    cut: CancellationToken,
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then shuts down within
/// `limits.shutdown_timeout`. Returns how many connections were cut at the end.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> usize {
    let max = limits.max_connections(open_file_limit());
    tracing::info!(max_connections = max, max_per_address = limits.max_per_address, "connection caps");
    let slots = Slots::new(max, limits.max_per_address, limits.trusted_proxies.clone());
    let graceful = CancellationToken::new();
    let cut = CancellationToken::new();
    let settings = Arc::new(Settings {
        app,
        trusted_proxies: limits.trusted_proxies.clone(),
        header_timeout: limits.header_timeout,
        body_idle_timeout: limits.body_idle_timeout,
        cut: cut.clone(),
    });
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut connections = JoinSet::new();
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => match slots.take(peer.ip()) {
                Ok(permit) => {
                    connections.spawn(connection(stream, peer, permit, settings.clone(), graceful.clone()));
                }
                Err(full) => refuse(stream, full, &refusing, &cut),
            },
            Err(e) if is_per_connection(&e) => {}
            Err(e) => {
                // Out of file descriptors (EMFILE, ENFILE) or memory: the pending connection
                // stays queued, so pause rather than spin, and try again.
                if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
                    tracing::warn!(error = %e, "cannot accept connections for now; trying again shortly");
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    graceful.cancel();
    let deadline = Instant::now() + limits.shutdown_timeout;
    let grace = CUT_GRACE.min(limits.shutdown_timeout / 5);
    drain(&mut connections, deadline - grace).await;
    let running = connections.len();
    if running > 0 {
        tracing::warn!(connections = running, "shutting down: cutting the requests still running");
        cut.cancel();
        drain(&mut connections, deadline).await;
        if !connections.is_empty() {
            tracing::warn!(connections = connections.len(), "shutting down: dropping connections that did not end");
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
    }
    // Lingering closes end now too.
    cut.cancel();
    running
}

/// Waits for the connections to end, until `deadline`.
async fn drain(connections: &mut JoinSet<()>, deadline: Instant) {
    while !connections.is_empty() {
        tokio::select! {
            _ = connections.join_next() => {}
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}

/// Errors of `accept` that concern only the connection being accepted.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted)
}

/// Answers a connection beyond a cap with 503 `service_unavailable` and `Retry-After`, then
/// closes it (a lingering close: the answer is read, not reset).
fn refuse(stream: TcpStream, full: Full, refusing: &Arc<AtomicUsize>, cut: &CancellationToken) {
    if refusing.fetch_add(1, Ordering::SeqCst) >= REFUSING_MAX {
        refusing.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let message = match full {
        Full::Overall => "the gateway holds as many connections as it takes; try again in a moment",
        Full::Address => {
            "this address holds as many connections as the gateway takes from one address; close some or try again in a moment"
        }
    };
    tracing::debug!(?full, "refused a connection beyond the cap");
    let answer = answers::raw(ErrorCode::ServiceUnavailable, message, Some(1));
    let (refusing, cut) = (refusing.clone(), cut.clone());
    tokio::spawn(async move {
        let mut stream = stream;
        // The request's head first, briefly: an HTTP client reads an answer that comes before
        // its request as a broken connection, not as an answer.
        let _ = tokio::time::timeout(REFUSAL_READ, read_head(&mut stream)).await;
        guard::linger(stream, Some(answer), None, cut).await;
        refusing.fetch_sub(1, Ordering::SeqCst);
    });
}

/// How long a refused connection's request head is waited for at most.
const REFUSAL_READ: Duration = Duration::from_secs(1);

/// Reads (and discards) up to the end of a request head, 16 KiB at most.
async fn read_head(stream: &mut TcpStream) {
    use tokio::io::AsyncReadExt as _;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while head.len() < 16 << 10 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return;
        }
    }
}

/// Serves one connection until it ends, the client goes idle, or the shutdown ends it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: Permit,
    settings: Arc<Settings>,
    graceful: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Guarded::new(stream, permit, settings.cut.clone()));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true)
        .max_headers(MAX_HEADERS);
    let served = settings.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        // The client's address, for handlers and layers that ask (`ConnectInfo<SocketAddr>`),
        // and who the client is when the peer is a trusted proxy.
        let client = super::forwarded::client(peer.ip(), request.headers(), &served.trusted_proxies);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(super::forwarded::ClientAddress(client));
        handle(served.clone(), request)
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = graceful.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// One request: checks what the HTTP library leaves to us, watches the body, runs the router,
/// and answers 408 or 503 in place of the handler when the body timed out or was cut.
async fn handle(settings: Arc<Settings>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let target = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Ok(answers::response(ApiError::new(ErrorCode::UriTooLong, answers::URI_TOO_LONG)));
    }
    let header_bytes: usize = request.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Ok(answers::response(ApiError::new(ErrorCode::HeadersTooLarge, answers::HEADERS_TOO_LARGE)));
    }
    let fate: BodyFate = Arc::new(AtomicU8::new(0));
    let request =
        request.map(|b| Body::new(Watched::new(b, settings.body_idle_timeout, settings.cut.clone(), fate.clone())));
    let mut app = settings.app.clone();
    let response = match tower_service::Service::call(&mut app, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    Ok(match fate.load(Ordering::SeqCst) {
        IDLE => answers::response(ApiError::new(
            ErrorCode::RequestTimeout,
            "no byte of the request body arrived for too long; what arrived in full is kept only for resumable \
             uploads (ask `HEAD` for the offset), send the rest again",
        )),
        CUT => answers::response(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "the gateway is stopping and cut this request; send it again in a moment",
        )),
        _ => response.map(|b| Body::new(Cuttable::new(b, settings.cut.clone()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cap_overall_and_per_address_and_come_back() {
        let slots = Slots::new(3, 2, vec!["10.9.0.0/16".parse().expect("net")]);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let a1 = slots.take(a).expect("first");
        let _a2 = slots.take(a).expect("second");
        assert_eq!(slots.take(a).err(), Some(Full::Address));
        let _b1 = slots.take(b).expect("other address");
        assert_eq!(slots.take(b).err(), Some(Full::Overall));
        drop(a1);
        assert!(slots.take(b).is_ok(), "a slot given back is free again");
    }

    #[test]
    fn a_trusted_proxy_is_held_to_the_overall_cap_only() {
        let slots = Slots::new(4, 1, vec!["10.9.0.0/16".parse().expect("net")]);
        let proxy: IpAddr = "10.9.0.7".parse().expect("ip");
        let held: Vec<Permit> = (0..4).map(|_| slots.take(proxy).expect("a proxy takes more than one")).collect();
        assert_eq!(slots.take(proxy).err(), Some(Full::Overall));
        drop(held);
        let other: IpAddr = "10.10.0.7".parse().expect("ip");
        let _one = slots.take(other).expect("first");
        assert_eq!(slots.take(other).err(), Some(Full::Address), "outside the trusted network");
    }

    #[test]
    fn the_default_cap_leaves_room_under_the_open_file_limit() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.max_connections(None), 1024);
        assert_eq!(limits.max_connections(Some(1024)), 320);
        assert_eq!(limits.max_connections(Some(65536)), 1024);
        let set = ConnectionLimits { max: Some(5000), ..ConnectionLimits::default() };
        assert_eq!(set.max_connections(Some(1024)), 5000, "a configured cap is kept");
    }
}
