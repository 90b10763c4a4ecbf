//! One-time links: lease on redemption, use up on the last byte, release on a broken download
//! or a partial range.
//!
//! Redemption is one conditional `UPDATE … WHERE state = 'issued' … RETURNING`: under any
//! concurrency exactly one caller gets the lease, and nobody reads a state and then writes it.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::group::Tx;
use super::{Store, StoreError, append, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{LinkId, SecretHash, TransferId, UserId};
use crate::policy::{Action, Permit};
use crate::wire::ErrorCode;

/// A running download's hold on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The link.
    pub link: LinkId,
    /// This lease (so a stale holder cannot complete or release a newer one).
    pub lease_id: String,
    /// The transfer.
    pub transfer: TransferId,
    /// The recipient holding it.
    pub recipient: UserId,
    /// The blob to stream.
    pub object_key: String,
    /// Ciphertext bytes.
    pub size: u64,
    /// Ciphertext digest.
    pub digest: String,
}

/// Why a redemption was refused. The link is untouched in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemRefusal {
    /// No such token, or not addressed to the caller.
    NotFound,
    /// Already collected.
    Used,
    /// Past its expiry.
    Expired,
    /// Recalled by its sender.
    Revoked,
    /// Another download of it is running.
    InUse,
    /// The transfer waits for a second person's approval.
    AwaitingApproval,
}

impl RedeemRefusal {
    /// The stable error code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::Used => ErrorCode::LinkUsed,
            Self::Expired => ErrorCode::LinkExpired,
            Self::Revoked => ErrorCode::LinkRevoked,
            Self::InUse => ErrorCode::LinkInUse,
            Self::AwaitingApproval => ErrorCode::AwaitingApproval,
        }
    }
}

/// How a download ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEnd {
    /// Every byte went out: the link is used up.
    Completed,
    /// It broke off for this reason: the link is usable again.
    BrokenOff(&'static str),
    /// A closed range `first..=last` that stops short of the last byte was served in full: the
    /// link is usable again, and the trail says `download.partial`, not a failure.
    Released {
        /// The first byte served.
        first: u64,
        /// The last byte served (below the bundle's last byte).
        last: u64,
    },
}

impl Store {
    /// Takes the lease on the link with this token for `user`, or says why not. The
    /// [`Permit`] is the `download` policy's allow for the transfer the link belongs to. Both
    /// outcomes are audit events in the same transaction.
    pub async fn lease(
        &self,
        permit: &Permit,
        user: &UserId,
        token: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<Result<Lease, RedeemRefusal>, StoreError> {
        debug_assert_eq!(permit.action(), Action::Download);
        let transfer = TransferId::from_db(permit.transfer().to_owned());
        let (user, token) = (user.clone(), token.clone());
        let store = self.clone();
        self.group.run(move |tx| Box::pin(lease_in(tx, store, transfer, user, token, now))).await
    }

    /// Records and explains the refusal of a token that names no link addressed to `user`
    /// (no policy is asked about a link the caller cannot use).
    pub async fn refuse_redeem(
        &self,
        user: &UserId,
        token: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<RedeemRefusal, StoreError> {
        let (user, token) = (user.clone(), token.clone());
        let store = self.clone();
        self.group.run(move |tx| Box::pin(async move { refuse_in(tx, &store, &user, &token, now).await })).await
    }
}

/// [`Store::lease`], inside a (shared) transaction.
async fn lease_in(
    tx: &mut Tx,
    store: Store,
    transfer: TransferId,
    user: UserId,
    token: SecretHash,
    now: DateTime<Utc>,
) -> Result<Result<Lease, RedeemRefusal>, StoreError> {
    let user = &user;
    let gateway = store.gateway.clone();
    let lease_id = LinkId::generate().to_string();
    let leased = sqlx::query(
        "UPDATE links SET state = 'leased', lease_id = $1, lease_gateway = $6 \
         WHERE token_hash = $2 AND recipient_id = $3 AND state = 'issued' AND expires_at > $4 AND transfer_id = $5 \
           AND EXISTS (SELECT 1 FROM transfers t WHERE t.id = links.transfer_id \
                       AND t.object_key IS NOT NULL AND t.recalled_at IS NULL AND t.status = 'released') \
         RETURNING id, transfer_id",
    )
    .bind(&lease_id)
    .bind(&token.0[..])
    .bind(user.as_str())
    .bind(ms(now))
    .bind(transfer.as_str())
    .bind(gateway.as_ref())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = leased {
        let link = LinkId::from_db(row.get("id"));
        let transfer = TransferId::from_db(row.get("transfer_id"));
        let t = sqlx::query("SELECT object_key, size, digest FROM transfers WHERE id = $1")
            .bind(transfer.as_str())
            .fetch_one(&mut **tx)
            .await?;
        let lease = Lease {
            link,
            lease_id,
            transfer,
            recipient: user.clone(),
            object_key: t.get("object_key"),
            size: u64::try_from(t.get::<i64, _>("size")).unwrap_or_default(),
            digest: t.get("digest"),
        };
        let event =
            Event::new(EventKind::DownloadStarted).actor(user).transfer(&lease.transfer).field("link", &lease.link);
        append(tx, &event, now).await?;
        return Ok(Ok(lease));
    }
    refuse_in(tx, &store, user, &token, now).await.map(Err)
}

/// Records why a token was not leased to `user`, for the caller's answer and the audit trail.
/// The decision was already taken atomically; this read only explains it. Repeats of the same
/// refusal are aggregated (`refusals`): a flood of redemptions adds a bounded number of leaves.
async fn refuse_in(
    tx: &mut Tx,
    store: &Store,
    user: &UserId,
    token: &SecretHash,
    now: DateTime<Utc>,
) -> Result<RedeemRefusal, StoreError> {
    let row = sqlx::query(
        "SELECT l.id, l.transfer_id, l.recipient_id, l.state, l.expires_at, t.object_key, t.recalled_at, t.status \
         FROM links l JOIN transfers t ON t.id = l.transfer_id WHERE l.token_hash = $1",
    )
    .bind(&token.0[..])
    .fetch_optional(&mut **tx)
    .await?;
    let mut event = Event::new(EventKind::DownloadRefused).actor(user);
    let refusal = match row {
        None => {
            event = event.field("reason", "unknown_token");
            RedeemRefusal::NotFound
        }
        Some(row) => {
            event =
                event.transfer(&TransferId::from_db(row.get("transfer_id"))).field("link", row.get::<String, _>("id"));
            let state: String = row.get("state");
            if row.get::<String, _>("recipient_id") != user.as_str() {
                event = event.field("reason", "not_addressed");
                RedeemRefusal::NotFound
            } else if state == "used" {
                RedeemRefusal::Used
            } else if state == "revoked" || row.get::<Option<i64>, _>("recalled_at").is_some() {
                RedeemRefusal::Revoked
            } else if state == "leased" {
                RedeemRefusal::InUse
            } else if row.get::<String, _>("status") == "held" && row.get::<i64, _>("expires_at") > ms(now) {
                RedeemRefusal::AwaitingApproval
            } else {
                RedeemRefusal::Expired
            }
        }
    };
    super::refusals::note_refusal_in(store, tx, &event.code(refusal.code().as_str()), now).await?;
    Ok(refusal)
}

/// Why a running download must stop although its client is still reading: what took the link
/// away under it. The recipient keeps what already went; the trail says the download was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The sender (or an administrator) recalled the transfer.
    Recalled,
    /// The link was revoked (a rejection, a key removed) or given to another lease.
    Revoked,
    /// The link expired.
    Expired,
}

impl Cut {
    /// The code of the `download.failed` event that records the cut.
    pub fn code(self) -> &'static str {
        match self {
            Self::Recalled => "transfer_recalled",
            Self::Revoked => "link_revoked",
            Self::Expired => "link_expired",
        }
    }
}

/// How recording the end of a lease went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// As asked.
    AsAsked,
    /// A completion that came too late: the link had been taken away (recorded as a cut, and
    /// the link is not used up).
    Cut(Cut),
}

impl Store {
    /// Ends a lease: used up after the last byte, or released for another try (after a break or a
    /// partial range). `sent` is how many bytes went out. A completion after the link was
    /// recalled, revoked or expired is recorded as a cut (`download.failed`), never as a
    /// delivery.
    pub async fn end_lease(
        &self,
        lease: &Lease,
        end: LeaseEnd,
        sent: u64,
        now: DateTime<Utc>,
    ) -> Result<Ended, StoreError> {
        let lease = lease.clone();
        self.group.run(move |tx| Box::pin(end_lease_in(tx, lease, end, sent, now))).await
    }

    /// Whether `lease` still stands at `now`, or what cut it.
    pub async fn lease_standing(&self, lease: &Lease, now: DateTime<Utc>) -> Result<Option<Cut>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        standing(&mut conn, lease, now).await
    }
}

/// [`Store::lease_standing`] on a connection.
async fn standing(
    conn: &mut sqlx::AnyConnection,
    lease: &Lease,
    now: DateTime<Utc>,
) -> Result<Option<Cut>, StoreError> {
    let row = sqlx::query(
        "SELECT l.state, l.lease_id, l.expires_at, t.recalled_at FROM links l JOIN transfers t ON t.id = l.transfer_id \
         WHERE l.id = $1",
    )
    .bind(lease.link.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(Some(Cut::Revoked)) };
    Ok(if row.get::<Option<i64>, _>("recalled_at").is_some() {
        Some(Cut::Recalled)
    } else if row.get::<String, _>("state") != "leased"
        || row.get::<Option<String>, _>("lease_id").as_deref() != Some(lease.lease_id.as_str())
    {
        Some(Cut::Revoked)
    } else if row.get::<i64, _>("expires_at") <= ms(now) {
        Some(Cut::Expired)
    } else {
        None
    })
}

/// [`Store::end_lease`], inside a (shared) transaction.
async fn end_lease_in(
    tx: &mut Tx,
    lease: Lease,
    end: LeaseEnd,
    sent: u64,
    now: DateTime<Utc>,
) -> Result<Ended, StoreError> {
    let lease = &lease;
    let failed = |code: &str| Event::new(EventKind::DownloadFailed).code(code).field("sent", sent);
    let (changed, event, ended) = match end {
        LeaseEnd::Completed => {
            let changed = sqlx::query(
                "UPDATE links SET state = 'used', used_at = $1 \
                 WHERE id = $2 AND lease_id = $3 AND state = 'leased' AND expires_at > $1 \
                   AND EXISTS (SELECT 1 FROM transfers t WHERE t.id = links.transfer_id AND t.recalled_at IS NULL)",
            )
            .bind(ms(now))
            .bind(lease.link.as_str())
            .bind(&lease.lease_id)
            .execute(&mut **tx)
            .await?;
            if changed.rows_affected() == 0 {
                // Taken away while the last bytes were on their way: a cut, not a delivery.
                let cut = standing(tx, lease, now).await?.unwrap_or(Cut::Revoked);
                let event = failed(cut.code());
                if cut == Cut::Expired {
                    release(tx, lease).await?;
                }
                let event = event.actor(&lease.recipient).transfer(&lease.transfer).field("link", &lease.link);
                append(tx, &event, now).await?;
                return Ok(Ended::Cut(cut));
            }
            let event =
                Event::new(EventKind::DownloadCompleted).field("size", lease.size).field("digest", &lease.digest);
            (changed, event, Ended::AsAsked)
        }
        LeaseEnd::BrokenOff(reason) => {
            let released = release(tx, lease).await?;
            if released.rows_affected() == 0 && given_back(tx, lease).await? {
                // A shutdown, restart or lost gateway gave the lease back and recorded its end
                // already: one download, one entry.
                return Ok(Ended::AsAsked);
            }
            (released, failed(reason), Ended::AsAsked)
        }
        LeaseEnd::Released { first, last } => {
            let event = Event::new(EventKind::DownloadPartial)
                .field("range", format!("{first}-{last}"))
                .field("size", lease.size);
            (release(tx, lease).await?, event, Ended::AsAsked)
        }
    };
    let mut event = event.actor(&lease.recipient).transfer(&lease.transfer).field("link", &lease.link);
    if changed.rows_affected() == 0 {
        // Recalled while the bytes were flowing: say so rather than pretend.
        event = event.field("note", "link_revoked_during_download");
    }
    append(tx, &event, now).await?;
    Ok(ended)
}

impl Store {
    /// Releases every lease left by a previous process (no download survives a restart).
    pub async fn reset_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.give_back_leases(&self.gateway.clone(), "server_restart", now).await
    }

    /// Gives back every lease this gateway still holds as it stops (downloads its shutdown cut
    /// whose own path could not record their end), each audited as `download.failed` with the
    /// code `server_shutdown`.
    pub async fn give_back_at_shutdown(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.give_back_leases(&self.gateway.clone(), "server_shutdown", now).await
    }

    /// Says this gateway is alive, and gives back the leases of gateways that have not said so
    /// for `stale` (they stopped without a restart: their downloads are over). Returns how many
    /// leases were given back.
    pub async fn heartbeat(&self, stale: std::time::Duration, now: DateTime<Utc>) -> Result<u64, StoreError> {
        sqlx::query(
            "INSERT INTO gateways (id, started_at, seen_at) VALUES ($1, $2, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(self.gateway.as_ref())
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        let cutoff = ms(now) - i64::try_from(stale.as_millis()).unwrap_or(i64::MAX);
        let lost: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT g.id FROM gateways g JOIN links l ON l.lease_gateway = g.id \
             WHERE l.state = 'leased' AND g.seen_at < $1 AND g.id <> $2",
        )
        .bind(cutoff)
        .bind(self.gateway.as_ref())
        .fetch_all(&self.pool)
        .await?;
        let mut given = 0;
        for (gateway,) in lost {
            given += self.give_back_leases(&gateway, "gateway_lost", now).await?;
        }
        Ok(given)
    }

    /// Gives back every lease `gateway` holds (for this gateway itself, also leases that name
    /// no gateway: those from before gateways were named).
    async fn give_back_leases(&self, gateway: &str, code: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let reset: Vec<(String, String, String)> = sqlx::query_as(
            "UPDATE links SET state = 'issued', lease_id = NULL, lease_gateway = NULL \
             WHERE state = 'leased' AND (lease_gateway = $1 OR (lease_gateway IS NULL AND $1 = $2)) \
             RETURNING id, transfer_id, recipient_id",
        )
        .bind(gateway)
        .bind(self.gateway.as_ref())
        .fetch_all(&mut *tx)
        .await?;
        for (link, transfer, recipient) in &reset {
            let event = Event::new(EventKind::DownloadFailed)
                .actor(&UserId::from_db(recipient.clone()))
                .transfer(&TransferId::from_db(transfer.clone()))
                .code(code)
                .field("link", link);
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(reset.len() as u64)
    }
}

/// Gives a leased link back (`issued`, no lease), unless a recall or a newer lease got there first.
/// True when the link of `lease` was given back (usable again, or leased anew by another
/// download) rather than taken away (revoked, expired, recalled).
async fn given_back(tx: &mut Tx, lease: &Lease) -> Result<bool, StoreError> {
    let state: Option<String> = sqlx::query_scalar(
        "SELECT l.state FROM links l JOIN transfers t ON t.id = l.transfer_id WHERE l.id = $1 AND t.recalled_at IS NULL",
    )
    .bind(lease.link.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(matches!(state.as_deref(), Some("issued" | "leased")))
}

async fn release(tx: &mut Tx, lease: &Lease) -> Result<sqlx::any::AnyQueryResult, StoreError> {
    Ok(sqlx::query(
        "UPDATE links SET state = 'issued', lease_id = NULL, lease_gateway = NULL \
         WHERE id = $1 AND lease_id = $2 AND state = 'leased'",
    )
    .bind(lease.link.as_str())
    .bind(&lease.lease_id)
    .execute(&mut **tx)
    .await?)
}
