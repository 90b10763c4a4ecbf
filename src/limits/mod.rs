//! Rate limits: how often one client address, and one token, may sign in, redeem, upload and
//! poll a device sign-in. Beyond its quota a request is answered 429 `rate_limited` with
//! `Retry-After` (a page with status 429 for the browser pages), before any handler runs:
//! nothing is read, written or audited for it (the metrics count it).
//!
//! Each limit is a GCRA (`governor`): `per_minute` requests a minute on average, up to `burst`
//! at once. The same quota applies per client address and per token: the SHA-256 of the bearer
//! token or of the session cookie (never the secret itself). Keys not seen for a while are
//! pruned, so the limiter's memory stays bounded by the clients of the last minutes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::api::error::ApiError;
use crate::gateway::Gateway;
use crate::wire::ErrorCode;

/// One quota: requests a minute on average, and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained requests a minute.
    pub per_minute: u32,
    /// Requests allowed at once (the bucket's size).
    pub burst: u32,
}

impl Rate {
    /// `per_minute` requests a minute, `burst` at once.
    pub const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }

    fn quota(self) -> Option<Quota> {
        let per_minute = NonZeroU32::new(self.per_minute)?;
        let burst = NonZeroU32::new(self.burst.max(1))?;
        Some(Quota::per_minute(per_minute).allow_burst(burst))
    }
}

/// The rate limits (`[rate_limits]` in the config file). A quota of `per_minute = 0` turns that
/// limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// All limits on or off (default on).
    pub enabled: bool,
    /// Sign-in: `POST /sign-in` (token), `POST /sign-in/sso`, the provider's return
    /// `/sign-in/callback`, and `POST /api/v1/sso/device` (default 300 a minute, 100 at once).
    pub sign_in: Rate,
    /// Redemption: `POST /api/v1/redeem`, which the download page uses too (default 1200 a
    /// minute, 600 at once).
    pub redeem: Rate,
    /// Uploads: `POST /api/v1/transfers`, tus `POST /api/v1/uploads` and `PATCH
    /// /api/v1/uploads/{id}` (the upload page uses tus) (default 1200 a minute, 600 at once).
    pub upload: Rate,
    /// The device sign-in poll, `POST /api/v1/sso/device/token` (default 60 a minute, 30 at once).
    pub device_poll: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            sign_in: Rate::new(300, 100),
            redeem: Rate::new(1200, 600),
            upload: Rate::new(1200, 600),
            device_poll: Rate::new(60, 30),
        }
    }
}

/// What a limited request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Signing in.
    SignIn,
    /// Redeeming a link.
    Redeem,
    /// Uploading.
    Upload,
    /// Polling a device sign-in.
    DevicePoll,
}

impl Class {
    /// The class of the request to route template `route` with `method`, if it is limited.
    pub fn of(method: &Method, route: &str) -> Option<Self> {
        match (method.as_str(), route) {
            ("POST", "/sign-in" | "/sign-in/sso" | "/api/v1/sso/device") | ("GET", "/sign-in/callback") => {
                Some(Self::SignIn)
            }
            ("POST", "/api/v1/redeem") => Some(Self::Redeem),
            ("POST", "/api/v1/transfers" | "/api/v1/uploads") | ("PATCH", "/api/v1/uploads/{id}") => Some(Self::Upload),
            ("POST", "/api/v1/sso/device/token") => Some(Self::DevicePoll),
            _ => None,
        }
    }

    /// Its name in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::Redeem => "redeem",
            Self::Upload => "upload",
            Self::DevicePoll => "device_poll",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::SignIn => 0,
            Self::Redeem => 1,
            Self::Upload => 2,
            Self::DevicePoll => 3,
        }
    }
}

/// Who is limited: a client address or a token's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    Token([u8; 32]),
}

/// How often the keyed limiters forget keys whose buckets are full again.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// The limiters, one per class.
#[derive(Debug)]
pub struct Limits {
    classes: [Option<Arc<DefaultKeyedRateLimiter<Key>>>; 4],
    clock: DefaultClock,
    last_prune: AtomicU64,
    started: std::time::Instant,
}

impl Limits {
    /// Limiters for `config`.
    pub fn new(config: &RateLimits) -> Self {
        let make = |rate: Rate| {
            if !config.enabled {
                return None;
            }
            rate.quota().map(|q| Arc::new(RateLimiter::keyed(q)))
        };
        Self {
            classes: [make(config.sign_in), make(config.redeem), make(config.upload), make(config.device_poll)],
            clock: DefaultClock::default(),
            last_prune: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// Counts one request of `class` from `address` (and `token`, the hash of its credential);
    /// `Err(seconds)` when it is over a quota: the client may try again after that long.
    pub fn check(&self, class: Class, address: IpAddr, token: Option<[u8; 32]>) -> Result<(), u64> {
        let Some(limiter) = &self.classes[class.index()] else {
            return Ok(());
        };
        self.prune();
        let keys = std::iter::once(Key::Address(address)).chain(token.map(Key::Token));
        for key in keys {
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
            }
        }
        Ok(())
    }

    /// Forgets, at most every [`PRUNE_EVERY`], the keys whose buckets are full again (a key
    /// that comes back starts with a full bucket, which is what it would have had).
    fn prune(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_prune.load(Ordering::Relaxed);
        if now < last + PRUNE_EVERY.as_secs()
            || self.last_prune.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_err()
        {
            return;
        }
        for limiter in self.classes.iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys held now, over every class (for tests and metrics).
    pub fn keys(&self) -> usize {
        self.classes.iter().flatten().map(|l| l.len()).sum()
    }
}

/// The client's address: the one a trusted proxy named, else the peer of the connection
/// (`ConnectInfo`), or the unspecified address when the server was started without either
/// (every client then shares one address's quota).
pub fn client_address(req: &Request) -> IpAddr {
    if let Some(crate::server::ClientAddress(client)) = req.extensions().get() {
        return *client;
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

/// The SHA-256 of the request's credential: its bearer token, else its session cookie.
fn token_hash(req: &Request) -> Option<[u8; 32]> {
    let headers = req.headers();
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::to_owned)
        .or_else(|| {
            headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
                cookies.split(';').map(str::trim).find_map(|c| {
                    c.strip_prefix(crate::web::session::SESSION_COOKIE)
                        .and_then(|r| r.strip_prefix('='))
                        .map(str::to_owned)
                })
            })
        })?;
    Some(Sha256::digest(secret.as_bytes()).into())
}

/// The middleware (a route layer: it sees the matched route template): limits the classes of
/// requests above, answering 429 beyond a quota.
pub async fn middleware(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let class = req.extensions().get::<MatchedPath>().and_then(|route| Class::of(req.method(), route.as_str()));
    let Some(class) = class else {
        return next.run(req).await;
    };
    match gw.limits.check(class, client_address(&req), token_hash(&req)) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            crate::metrics::rate_limited(class);
            if req.uri().path().starts_with("/api/") {
                ApiError::new(
                    ErrorCode::RateLimited,
                    format!("too many requests of this kind from this client: try again in {wait} s"),
                )
                .with_retry_after(wait)
                .into_response()
            } else {
                crate::web::too_many_requests(wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: Rate) -> Limits {
        Limits::new(&RateLimits { redeem: rate, ..RateLimits::default() })
    }

    #[test]
    fn a_token_is_limited_from_every_address_and_an_address_for_every_token() {
        let l = limits(Rate::new(1, 2));
        let (a, b, c) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let (t, u) = ([1; 32], [2; 32]);
        assert_eq!(l.check(Class::Redeem, a, Some(t)), Ok(()));
        assert_eq!(l.check(Class::Redeem, b, Some(t)), Ok(()));
        // Token `t` used its burst, from two addresses: a third address gets nowhere with it.
        let wait = l.check(Class::Redeem, c, Some(t)).expect_err("over the token's quota");
        assert!((1..=60).contains(&wait), "{wait}");
        // Address `a` has one request left, for another token; then it is over too.
        assert_eq!(l.check(Class::Redeem, a, Some(u)), Ok(()));
        assert!(l.check(Class::Redeem, a, None).is_err());
        // Other classes are not touched.
        assert_eq!(l.check(Class::Upload, a, Some(t)), Ok(()));
    }

    #[test]
    fn keys_hold_hashes_and_are_pruned() {
        let l = limits(Rate::new(6000, 1));
        for i in 0..100u8 {
            let _ = l.check(Class::Redeem, [10, 0, 0, i].into(), Some([i; 32]));
        }
        assert_eq!(l.keys(), 200);
        // 6000 a minute refills a one-request bucket in 10 ms: every key is forgettable.
        std::thread::sleep(Duration::from_millis(30));
        for limiter in l.classes.iter().flatten() {
            limiter.retain_recent();
        }
        assert_eq!(l.keys(), 0);
    }

    #[test]
    fn routes_map_to_their_class() {
        assert_eq!(Class::of(&Method::POST, "/api/v1/redeem"), Some(Class::Redeem));
        assert_eq!(Class::of(&Method::PATCH, "/api/v1/uploads/{id}"), Some(Class::Upload));
        assert_eq!(Class::of(&Method::HEAD, "/api/v1/uploads/{id}"), None);
        assert_eq!(Class::of(&Method::POST, "/api/v1/sso/device/token"), Some(Class::DevicePoll));
        assert_eq!(Class::of(&Method::POST, "/sign-in"), Some(Class::SignIn));
        assert_eq!(Class::of(&Method::GET, "/sign-in"), None);
    }
}
