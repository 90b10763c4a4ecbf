//! Repeated refusals, aggregated so that a flood cannot grow the log by a leaf per request.
//!
//! A refusal is an audit event like any other, and every audit event becomes a leaf of the
//! append-only transparency log. A client that repeats the same refused request (an unknown
//! token at sign-in, a redemption of a link that does not exist) would otherwise add a leaf per
//! request, for ever. So identical refusals — the same event with the same parties, code and
//! facts — are recorded once per window: the first is written at once, the repeats within the
//! window are counted in memory, and when the window closes one summary event of the same kind
//! is written with the facts `repeated N`, `first TIME` and `last TIME` (the first and last of
//! the repeats). Nothing is dropped: every refusal is either its own entry or counted in a
//! summary. The summaries are written by a background flush when their window closes, by the
//! next identical refusal after it, and when the store closes (a clean stop); a crash loses at
//! most the counts of the windows still open (their first refusals are already in the log).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone as _, Utc};

use super::group::Tx;
use super::{Store, StoreError, append};
use crate::audit::Event;
use crate::clock::Clock;

/// The default window: identical refusals within a minute make at most two entries.
pub const DEFAULT_REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// Most distinct refusals kept open at once; beyond it, a new distinct refusal is written as its
/// own entry (and not aggregated) until windows close. Distinct refusals differ in their parties
/// or code, which an anonymous client cannot vary at will (see the README's threat model).
const OPEN_MAX: usize = 10_000;

/// Refusals recorded in the current windows, by their entry without its time.
#[derive(Debug)]
pub(super) struct Refusals {
    window: Duration,
    clock: Clock,
    open: Mutex<HashMap<String, Open>>,
    flushing: AtomicBool,
}

/// One window: the refusal recorded at its start, and the repeats counted since.
#[derive(Debug)]
struct Open {
    event: Event,
    opened: DateTime<Utc>,
    repeated: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

impl Open {
    /// The summary of the repeats, if there were any.
    fn summary(&self) -> Option<Event> {
        (self.repeated > 0).then(|| {
            self.event
                .clone()
                .field("repeated", self.repeated)
                .field("first", self.first.to_rfc3339_opts(SecondsFormat::Millis, true))
                .field("last", self.last.to_rfc3339_opts(SecondsFormat::Millis, true))
        })
    }
}

/// What to write for one refusal.
#[derive(Debug)]
pub(super) struct Noted {
    /// Whether the refusal itself is written (the first of a window), or only counted.
    pub(super) record: bool,
    /// A summary of an earlier window of the same refusal, which closed and is written now.
    pub(super) summary: Option<Event>,
}

impl Refusals {
    pub(super) fn new(window: Duration, clock: Clock) -> Self {
        Self { window, clock, open: Mutex::new(HashMap::new()), flushing: AtomicBool::new(false) }
    }

    fn window(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.window).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Notes one refusal at `now`.
    fn note(&self, event: &Event, now: DateTime<Utc>) -> (Noted, bool) {
        if self.window.is_zero() {
            return (Noted { record: true, summary: None }, false);
        }
        // The entry at a fixed time: two refusals are the same when everything else is.
        let key = event.entry(Utc.timestamp_opt(0, 0).single().unwrap_or_default());
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(o) = open.get_mut(&key)
            && now < o.opened + self.window()
        {
            if o.repeated == 0 {
                o.first = now;
            }
            o.repeated += 1;
            o.last = now;
            return (Noted { record: false, summary: None }, true);
        }
        let summary = open.remove(&key).and_then(|o| o.summary());
        if open.len() < OPEN_MAX {
            open.insert(key, Open { event: event.clone(), opened: now, repeated: 0, first: now, last: now });
        }
        (Noted { record: true, summary }, false)
    }

    /// Repeats of refusals of this kind counted since `since` and not written yet.
    pub(super) fn pending(&self, kind: crate::audit::EventKind, since: DateTime<Utc>) -> u64 {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.values().filter(|o| o.event.kind == kind && o.last >= since).map(|o| o.repeated).sum()
    }

    /// Takes the summaries of windows closed by `now` (all of them with `all`).
    fn take_closed(&self, now: DateTime<Utc>, all: bool) -> (Vec<Event>, bool) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.window();
        let mut summaries = Vec::new();
        open.retain(|_, o| {
            if all || now >= o.opened + window {
                summaries.extend(o.summary());
                false
            } else {
                true
            }
        });
        let counting = open.values().any(|o| o.repeated > 0);
        (summaries, counting)
    }
}

impl Store {
    /// Records refusal `event` in the caller's transaction, aggregated: the first of a window
    /// is appended, its repeats within the window are counted (see the module documentation).
    pub(super) async fn note_refusal(&self, tx: &mut Tx, event: &Event, now: DateTime<Utc>) -> Result<(), StoreError> {
        note_refusal_in(self, tx, event, now).await
    }

    /// Writes the summaries of every window still open (on a clean stop).
    pub async fn flush_refusals(&self) -> Result<(), StoreError> {
        let (summaries, _) = self.refusals.take_closed(self.refusals.clock.now(), true);
        self.write_summaries(&summaries).await
    }

    async fn write_summaries(&self, summaries: &[Event]) -> Result<(), StoreError> {
        if summaries.is_empty() {
            return Ok(());
        }
        let now = self.refusals.clock.now();
        let mut tx = self.write().await?;
        for event in summaries {
            append(&mut tx, event, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts the background flush unless it runs: it writes each window's summary when the
    /// window closes, and stops when no repeats are counted.
    fn start_flush(&self) {
        if self.refusals.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        let tick = (self.refusals.window / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let (summaries, counting) = store.refusals.take_closed(store.refusals.clock.now(), false);
                if let Err(e) = store.write_summaries(&summaries).await {
                    // Put back nothing: log the counts so they are not lost silently, and retry
                    // with the next windows.
                    for s in &summaries {
                        tracing::error!(error = %e, entry = %s.entry(store.refusals.clock.now()), "refusal summary not written");
                    }
                }
                if !counting {
                    store.refusals.flushing.store(false, Ordering::Release);
                    // A repeat counted between the last look and the flag: start again.
                    if store.refusals.take_counting() {
                        store.start_flush();
                    }
                    return;
                }
            }
        });
    }
}

impl Refusals {
    fn take_counting(&self) -> bool {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).values().any(|o| o.repeated > 0)
    }
}

/// [`Store::note_refusal`], for a closure that holds a clone of the store.
pub(super) async fn note_refusal_in(
    store: &Store,
    tx: &mut Tx,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (noted, counted) = store.refusals.note(event, now);
    if let Some(summary) = &noted.summary {
        append(tx, summary, now).await?;
    }
    if noted.record {
        append(tx, event, now).await?;
    }
    if counted {
        store.start_flush();
    }
    Ok(())
}
