//! Collecting a bundle: the link side of a transfer's life. A redemption asks the `download`
//! policy, leases the link by one conditional UPDATE (the store takes the policy's
//! [`Permit`](crate::policy::Permit)), streams the ciphertext, and ends the lease exactly once:
//! used up when the last byte has gone, given back if the stream is dropped before that.
//!
//! A byte range (RFC 9110 section 14) asks for part of the ciphertext: `start-` resumes a
//! broken download (and uses the link up when the last byte goes), `start-last` reads a slice
//! that stops short of the end, which gives the link back as soon as it has been sent
//! (`download.partial`). Such a slice is a look at the age header before the link is used up
//! (does my identity open it?), so it serves the header and nothing of the payload: the
//! gateway finds where the stored header ends (the envelope inspector's `stored_len`) and
//! serves at most up to there, with a `Content-Range` that says so. Otherwise a recipient
//! could read all but the last byte again and again without a delivery.
//!
//! Recall wins: while it streams, a download looks at its link (at once when this gateway took
//! links away, and every [`STANDING_CHECK`] for other gateways' recalls and for expiry) and
//! stops when the link was taken away; a completion that comes after that is recorded as a cut,
//! never as a delivery, and the last bytes are not sent.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use super::LifecycleError;
use crate::audit::{Event, EventKind};
use crate::blobs::BlobError;
use crate::gateway::Gateway;
use crate::ids::{BearerSecret, TransferId};
use crate::model::Principal;
use crate::policy::{Action, principal_facts};
use crate::store::{Cut, Ended, Lease, LeaseEnd, RedeemRefusal};

/// How far into a bundle the gateway looks for the end of its age header (the header itself is
/// bounded by the upload rules; armour adds a third): a bundle whose header does not end within
/// it cannot be looked at before the link is used up.
const HEADER_SEARCH_LIMIT: u64 = 4 << 20;

/// How often a running download looks whether its link still stands (recalled, revoked or
/// expired through another gateway or the clock).
const STANDING_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// One byte range asked for: `start-` (to the end) or `start-last` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// The last byte, inclusive; `None` for the end.
    pub last: Option<u64>,
}

/// A range that cannot be served; the link is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RangeRefusal {
    /// The bundle's size, for `Content-Range: bytes */SIZE`.
    pub size: u64,
    /// What to ask for instead.
    pub message: String,
}

/// A download under way: what is served and the ciphertext stream. Dropping the stream before
/// its end gives the link back.
pub struct Download {
    /// The transfer.
    pub transfer: TransferId,
    /// The ciphertext's digest, `sha256:…`.
    pub digest: String,
    /// The whole bundle's size.
    pub size: u64,
    /// The first byte served.
    pub start: u64,
    /// The last byte served, inclusive.
    pub last: u64,
    /// The bytes.
    pub body: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("transfer", &self.transfer)
            .field("start", &self.start)
            .field("last", &self.last)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// Bytes served.
    pub fn len(&self) -> u64 {
        self.last + 1 - self.start
    }

    /// True when nothing is served (never: an empty bundle is not an age file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which link a redemption is for.
#[derive(Debug, Clone, Copy)]
pub enum LinkRef<'a> {
    /// The link's token (the bare token, or a whole pasted link).
    Token(&'a str),
    /// The caller's own link of this transfer (from the inbox, which holds no token).
    Transfer(&'a str),
}

/// Redeems a link for `caller`: checks the log, the `download` policy and the lease, and
/// streams `asked` (or everything).
pub async fn redeem(
    gw: Arc<Gateway>,
    caller: &Principal,
    link: LinkRef<'_>,
    asked: Option<ByteRange>,
) -> Result<Result<Download, RangeRefusal>, LifecycleError> {
    if !gw.log.healthy() {
        return Err(LifecycleError::LogUnavailable);
    }
    let hash = match link {
        LinkRef::Token(token) => {
            let token = token.rsplit_once('#').map_or(token, |(_, t)| t);
            BearerSecret::from_client(token).hash()
        }
        LinkRef::Transfer(id) => {
            let mine = match TransferId::parse(id) {
                Some(transfer) => gw.store.link_of(&transfer, &caller.id).await?,
                None => None,
            };
            mine.ok_or(LifecycleError::Link(RedeemRefusal::NotFound))?
        }
    };
    let now = gw.clock.now();
    let lease = match gw.store.link_target(&hash).await? {
        Some((recipient, transfer)) if recipient == caller.id => {
            let record = gw.store.transfer_record(&transfer).await?;
            let what = format!("`{}` to download this transfer", caller.user);
            let permit = match gw.gate.permit(
                Action::Download,
                principal_facts(caller),
                &record.facts,
                &record.orgs,
                &what,
                now,
            ) {
                Ok(permit) => permit,
                Err(denial) => {
                    let error = LifecycleError::from(denial);
                    let event = Event::new(EventKind::DownloadRefused)
                        .actor(&caller.id)
                        .transfer(&transfer)
                        .code(error.code().as_str())
                        .field("policies", error.policies().unwrap_or_default().join(","));
                    gw.store.record_refusal(&event, now).await?;
                    return Err(error);
                }
            };
            gw.store.lease(&permit, &caller.id, &hash, now).await?
        }
        _ => Err(gw.store.refuse_redeem(&caller.id, &hash, now).await?),
    };
    let lease = lease.map_err(LifecycleError::Link)?;
    let start = asked.map_or(0, |a| a.start);
    let guard = LeaseGuard { gw: gw.clone(), lease: Some(lease.clone()), sent: 0 };
    let size = lease.size;
    if start >= size {
        let _ = guard.end(LeaseEnd::BrokenOff("range_not_satisfiable")).await;
        return Ok(Err(RangeRefusal {
            size,
            message: format!("the bundle has {size} bytes: resume from an offset below that"),
        }));
    }
    // RFC 9110 section 14.1.2: a last position beyond the end means the end.
    let last = asked.and_then(|a| a.last).map_or(size - 1, |last| last.min(size - 1));
    let (blob, served) = if last + 1 == size {
        match gw.blobs.get_from(&lease.object_key, start).await {
            Ok(blob) => (blob, Served { start, last, size }),
            Err(e) => {
                let _ = guard.end(LeaseEnd::BrokenOff("storage_error")).await;
                return Err(e.into());
            }
        }
    } else {
        // A look before the link is used up: the header, nothing of the payload.
        let header = match stored_header(&gw, &lease.object_key).await {
            Ok(header) => header,
            Err(e) => {
                let _ = guard.end(LeaseEnd::BrokenOff("storage_error")).await;
                return Err(e);
            }
        };
        let end = header.len() as u64;
        if start >= end {
            let _ = guard.end(LeaseEnd::BrokenOff("range_not_satisfiable")).await;
            return Ok(Err(RangeRefusal {
                size,
                message: format!(
                    "before the link is used up only the bundle's age header can be read, bytes 0-{}: ask for \
                     `bytes=N-` to take the rest, which uses the link up when the last byte goes",
                    end - 1
                ),
            }));
        }
        let last = last.min(end - 1);
        let slice = header.slice(usize::try_from(start).unwrap_or(usize::MAX)..);
        (futures_util::stream::iter([Ok(slice)]).boxed(), Served { start, last, size })
    };
    Ok(Ok(Download {
        transfer: lease.transfer.clone(),
        digest: lease.digest.clone(),
        size,
        start,
        last: served.last,
        body: download_stream(blob, guard, served, gw.link_changes.subscribe()).boxed(),
    }))
}

/// The stored bytes of the age header at the start of the blob `key` (for armour, through the
/// base64 group that completes it), read with the envelope inspector that accepted the upload.
async fn stored_header(gw: &Gateway, key: &str) -> Result<Bytes, LifecycleError> {
    let mut blob = gw.blobs.get_from(key, 0).await?;
    let mut inspector = crate::envelope::Inspector::new(gw.rules.envelope.clone());
    let mut prefix = bytes::BytesMut::new();
    while let Some(chunk) = blob.next().await {
        let chunk = chunk?;
        // Only the header matters: the inspector's payload checks are not asked about.
        let _ = inspector.update(&chunk);
        prefix.extend_from_slice(&chunk);
        if let Some(header) = inspector.header() {
            let end = usize::try_from(header.stored_len).unwrap_or(usize::MAX);
            prefix.truncate(end);
            return Ok(prefix.freeze());
        }
        if prefix.len() as u64 >= HEADER_SEARCH_LIMIT {
            break;
        }
    }
    Err(LifecycleError::Blob(BlobError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the stored bundle `{key}` has no complete age header in its first {HEADER_SEARCH_LIMIT} bytes"),
    ))))
}

/// The bytes a redemption serves, `start..=last` of `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Served {
    start: u64,
    last: u64,
    size: u64,
}

impl Served {
    /// Only a range that reaches the last byte uses the link up.
    fn completes(self) -> bool {
        self.last + 1 == self.size
    }
}

/// Ends a lease exactly once: explicitly, or (broken off) when dropped.
struct LeaseGuard {
    gw: Arc<Gateway>,
    lease: Option<Lease>,
    /// Bytes handed to the HTTP layer so far.
    sent: u64,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard").field("lease", &self.lease).finish_non_exhaustive()
    }
}

impl LeaseGuard {
    /// Ends the lease now; `None` if the record could not be written.
    async fn end(mut self, end: LeaseEnd) -> Option<Ended> {
        let Some(lease) = self.lease.take() else { return Some(Ended::AsAsked) };
        let ended = finish(&self.gw, &lease, end, self.sent).await;
        if ended == Some(Ended::AsAsked) && end == LeaseEnd::Completed {
            // The last recipient has it: delete the ciphertext now, not at the next sweep.
            let gw = self.gw.clone();
            tokio::spawn(async move { purge_if_spent(&gw, &lease).await });
        }
        ended
    }

    /// Whether the lease still stands, or what cut it (a failed look says it stands: the
    /// completion is conditional anyway).
    async fn standing(&self) -> Option<Cut> {
        let lease = self.lease.as_ref()?;
        self.gw.store.lease_standing(lease, self.gw.clock.now()).await.ok().flatten()
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let gw = self.gw.clone();
            let sent = self.sent;
            // The client went away mid-stream, or the shutdown cut it: give the link back so
            // it can try again.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let code = gw.broken_off_code();
                handle.spawn(async move { finish(&gw, &lease, LeaseEnd::BrokenOff(code), sent).await });
            }
        }
    }
}

/// Deletes a transfer's ciphertext once no link can reach it; failures are left to the sweeper.
async fn purge_if_spent(gw: &Gateway, lease: &Lease) {
    let purge = match gw.store.spent(&lease.transfer).await {
        Ok(Some(purge)) => purge,
        Ok(None) => return,
        Err(e) => {
            return tracing::warn!(error = %e, transfer = %lease.transfer, "purge check failed; the sweeper will retry");
        }
    };
    crate::sweeper::purge(&gw.store, &gw.blobs, &gw.clock, &purge).await;
}

/// Records the end of a lease, retrying a busy database a few times; `None` if it never could.
async fn finish(gw: &Gateway, lease: &Lease, end: LeaseEnd, sent: u64) -> Option<Ended> {
    for attempt in 0..5u32 {
        match gw.store.end_lease(lease, end, sent, gw.clock.now()).await {
            Ok(ended) => return Some(ended),
            Err(e) => {
                tracing::warn!(error = %e, attempt, transfer = %lease.transfer, "could not end a download lease");
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    tracing::error!(transfer = %lease.transfer, "download lease left open; it is released at the next start");
    None
}

/// The ciphertext stream of `served`. The lease ends when the chunk holding the last byte
/// served is handed to the HTTP layer: HTTP/1.1 with a known length never polls a body past its
/// last byte, so the record is written just before that chunk goes, and if it cannot be written
/// (or the link was taken away meanwhile) the chunk does not go. A range that reaches the end of
/// the bundle uses the link up; a range that stops short gives it back ([`LeaseEnd::Released`],
/// audited as `download.partial`), so a client that asked only for the age header can come back
/// for the rest once it has checked it. Before each chunk, when `link_changes` moved or
/// [`STANDING_CHECK`] has passed, the stream looks whether its link still stands and stops if
/// it does not (`download.failed` with the cut's code). Dropped earlier, the guard gives the
/// link back.
fn download_stream(
    blob: BoxStream<'static, Result<Bytes, BlobError>>,
    guard: LeaseGuard,
    served: Served,
    link_changes: tokio::sync::watch::Receiver<u64>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let Served { start, last, size } = served;
    let state = Streaming { blob, guard: Some(guard), sent: start, link_changes, looked: tokio::time::Instant::now() };
    futures_util::stream::unfold(Some(state), move |state| async move {
        let Streaming { mut blob, mut guard, sent, mut link_changes, mut looked } = state?;
        if sent > last {
            // Everything asked for went out: the rest of the blob is not read.
            return None;
        }
        let broken = async |guard: Option<LeaseGuard>, why: &str| {
            tracing::error!(sent, size, why, "download broke off on the server side");
            if let Some(guard) = guard {
                let _ = guard.end(LeaseEnd::BrokenOff("storage_error")).await;
            }
            Some((Err(std::io::Error::other("storage error")), None))
        };
        let chunk = blob.next().await;
        if guard.is_some() && (link_changes.has_changed().unwrap_or(false) || looked.elapsed() >= STANDING_CHECK) {
            link_changes.mark_unchanged();
            looked = tokio::time::Instant::now();
            let cut = match guard.as_ref() {
                Some(g) => g.standing().await,
                None => None,
            };
            if let Some(cut) = cut
                && let Some(g) = guard.take()
            {
                tracing::info!(sent, size, code = cut.code(), "download cut: its link was taken away");
                let _ = g.end(LeaseEnd::BrokenOff(cut.code())).await;
                return Some((Err(std::io::Error::other("the link was taken away")), None));
            }
        }
        match chunk {
            Some(Ok(mut chunk)) => {
                if sent + chunk.len() as u64 > size {
                    return broken(guard, "blob longer than its record").await;
                }
                let wanted = last + 1 - sent;
                if chunk.len() as u64 > wanted {
                    chunk.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
                }
                let sent = sent + chunk.len() as u64;
                if sent == last + 1
                    && let Some(mut g) = guard.take()
                {
                    g.sent = sent - start - chunk.len() as u64;
                    let end = if served.completes() {
                        LeaseEnd::Completed
                    } else {
                        LeaseEnd::Released { first: start, last }
                    };
                    match g.end(end).await {
                        Some(Ended::AsAsked) => {}
                        Some(Ended::Cut(cut)) => {
                            tracing::info!(sent, size, code = cut.code(), "download cut at its last chunk");
                            return Some((Err(std::io::Error::other("the link was taken away")), None));
                        }
                        None => {
                            return Some((
                                Err(std::io::Error::other("could not record the end of the download")),
                                None,
                            ));
                        }
                    }
                }
                if let Some(g) = guard.as_mut() {
                    g.sent = sent - start;
                }
                Some((Ok(chunk), Some(Streaming { blob, guard, sent, link_changes, looked })))
            }
            Some(Err(_)) => broken(guard, "blob read failed").await,
            None if guard.is_none() => None,
            None => broken(guard, "blob shorter than its record").await,
        }
    })
}

/// Where a download stream is.
struct Streaming {
    blob: BoxStream<'static, Result<Bytes, BlobError>>,
    guard: Option<LeaseGuard>,
    /// The next byte's offset in the bundle.
    sent: u64,
    link_changes: tokio::sync::watch::Receiver<u64>,
    /// When the link was last looked at.
    looked: tokio::time::Instant,
}

/// What waits for `caller`: links issued or in progress, not expired, ciphertext present.
pub async fn inbox(gw: &Gateway, caller: &Principal) -> Result<crate::wire::transfers::Inbox, LifecycleError> {
    Ok(crate::wire::transfers::Inbox { transfers: gw.store.inbox(&caller.id, gw.clock.now()).await? })
}
