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
    /// Summaries whose write failed (the database was busy): tried again with the next flush.
    unwritten: Mutex<Vec<Event>>,
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
    /// Summaries of windows that closed (of this refusal, or others cleared to make room),
    /// written now.
    pub(super) summaries: Vec<Event>,
}

impl Refusals {
    pub(super) fn new(window: Duration, clock: Clock) -> Self {
        Self {
            window,
            clock,
            open: Mutex::new(HashMap::new()),
            unwritten: Mutex::new(Vec::new()),
            flushing: AtomicBool::new(false),
        }
    }

    fn window(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.window).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Notes one refusal at `now`; true when a window is open for it (the flush must run).
    fn note(&self, event: &Event, now: DateTime<Utc>) -> (Noted, bool) {
        if self.window.is_zero() {
            return (Noted { record: true, summaries: Vec::new() }, false);
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
            return (Noted { record: false, summaries: Vec::new() }, true);
        }
        let mut summaries: Vec<Event> = open.remove(&key).and_then(|o| o.summary()).into_iter().collect();
        if open.len() >= OPEN_MAX {
            let window = self.window();
            open.retain(|_, o| {
                let closed = now >= o.opened + window;
                if closed {
                    summaries.extend(o.summary());
                }
                !closed
            });
        }
        let tracked = open.len() < OPEN_MAX;
        if tracked {
            open.insert(key, Open { event: event.clone(), opened: now, repeated: 0, first: now, last: now });
        }
        (Noted { record: true, summaries }, tracked)
    }

    /// Repeats of refusals of this kind counted since `since` and not written yet.
    pub(super) fn pending(&self, kind: crate::audit::EventKind, since: DateTime<Utc>) -> u64 {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.values().filter(|o| o.event.kind == kind && o.last >= since).map(|o| o.repeated).sum()
    }

    /// Takes the summaries of windows closed by `now` (all of them with `all`).
    fn take_closed(&self, now: DateTime<Utc>, all: bool) -> (Vec<Event>, bool) {
        let mut summaries = std::mem::take(&mut *self.unwritten.lock().unwrap_or_else(PoisonError::into_inner));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let window = self.window();
        open.retain(|_, o| {
            if all || now >= o.opened + window {
                summaries.extend(o.summary());
                false
            } else {
                true
            }
        });
        let pending = !open.is_empty() || !summaries.is_empty();
        (summaries, pending)
    }
}

impl Store {
    /// Records refusal `event` in the caller's transaction, aggregated: the first of a window
    /// is appended, its repeats within the window are counted (see the module documentation).
    pub(super) async fn note_refusal(&self, tx: &mut Tx, event: &Event, now: DateTime<Utc>) -> Result<(), StoreError> {
        note_refusal_in(self, tx, event, now).await
    }

    /// Records refusal `event` in a transaction of its own, aggregated like
    /// [`Store::note_refusal`]: for refusals a client can repeat at will.
    pub async fn record_refusal(&self, event: &Event, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        self.note_refusal(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes the summaries of every window still open (on a clean stop).
    pub async fn flush_refusals(&self) -> Result<(), StoreError> {
        let (summaries, _) = self.refusals.take_closed(self.refusals.clock.now(), true);
        let written = self.write_summaries(&summaries).await;
        if written.is_err() {
            // The last place the counts can go: the operator's log, entry by entry.
            for s in &summaries {
                tracing::error!(entry = %s.entry(self.refusals.clock.now()), "refusal summary not written to the audit trail");
            }
        }
        written
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
    /// window closes, and stops when no window is open.
    fn start_flush(&self) {
        if self.refusals.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        let tick = (self.refusals.window / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                if store.pool.is_closed() {
                    // The clean stop flushed what was open.
                    store.refusals.flushing.store(false, Ordering::Release);
                    return;
                }
                let (summaries, open) = store.refusals.take_closed(store.refusals.clock.now(), false);
                if let Err(e) = store.write_summaries(&summaries).await {
                    // Kept, and tried again at the next tick (or at the clean stop).
                    tracing::warn!(error = %e, count = summaries.len(), "refusal summaries not written yet");
                    store.refusals.unwritten.lock().unwrap_or_else(PoisonError::into_inner).extend(summaries);
                }
                if !open {
                    store.refusals.flushing.store(false, Ordering::Release);
                    // A window opened between the last look and the flag: start again.
                    if store.refusals.any_open() {
                        store.start_flush();
                    }
                    return;
                }
            }
        });
    }
}

impl Refusals {
    fn any_open(&self) -> bool {
        !self.open.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }
}

/// [`Store::note_refusal`], for a closure that holds a clone of the store.
pub(super) async fn note_refusal_in(
    store: &Store,
    tx: &mut Tx,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (noted, open) = store.refusals.note(event, now);
    for summary in &noted.summaries {
        append(tx, summary, now).await?;
    }
    if noted.record {
        append(tx, event, now).await?;
    }
    if open {
        store.start_flush();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventKind;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).single().unwrap_or_default()
    }

    #[test]
    fn repeats_in_a_window_are_counted_and_summarised_when_it_closes() {
        let r = Refusals::new(Duration::from_secs(60), Clock::system());
        let e = Event::new(EventKind::SessionRefused).code("invalid_token").field("method", "token");
        let other = Event::new(EventKind::SessionRefused).code("csrf").field("method", "token");
        assert!(r.note(&e, at(0)).0.record);
        assert!(!r.note(&e, at(1)).0.record);
        assert!(!r.note(&e, at(59)).0.record);
        // Another refusal is not the same one.
        assert!(r.note(&other, at(2)).0.record);
        assert_eq!(r.pending(EventKind::SessionRefused, at(0)), 2);
        // The window closed: this one opens the next, and carries the summary of the last.
        let (noted, _) = r.note(&e, at(60));
        assert!(noted.record);
        let entry = noted.summaries[0].entry(at(60));
        assert!(
            entry.contains("\nrepeated 2\nfirst 2027-01-15T08:00:01.000Z\nlast 2027-01-15T08:00:59.000Z\n"),
            "{entry}"
        );
        // A clean stop takes whatever is open.
        assert!(!r.note(&e, at(61)).0.record);
        let (summaries, _) = r.take_closed(at(62), true);
        assert_eq!(summaries.len(), 1);
        assert!(r.take_closed(at(62), true).0.is_empty());
    }

    #[test]
    fn a_zero_window_records_everything() {
        let r = Refusals::new(Duration::ZERO, Clock::system());
        let e = Event::new(EventKind::DownloadRefused).code("not_found");
        assert!((0..3).all(|i| r.note(&e, at(i)).0.record));
    }
}
