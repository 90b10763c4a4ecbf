//! What a sender sent, newest first, each with where it stands for them.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, from_ms, ms};
use crate::ids::UserId;
use crate::wire::TransferStatus;
use crate::wire::sent::{SentState, SentTransfer};

/// The most transfers listed at once.
const LIMIT: i64 = 500;

/// Where a transfer stands for its sender, from its status and its links' counts.
fn sent_state(status: &str, recalled: bool, waiting: i64, used: i64) -> SentState {
    match status {
        "rejected" => SentState::Rejected,
        _ if recalled => SentState::Recalled,
        "held" if waiting > 0 => SentState::AwaitingApproval,
        _ if waiting > 0 => SentState::Waiting,
        _ if used > 0 => SentState::Collected,
        _ => SentState::Expired,
    }
}

impl Store {
    /// The transfers `sender` sent, newest first (the latest 500).
    pub async fn sent_transfers(&self, sender: &UserId, now: DateTime<Utc>) -> Result<Vec<SentTransfer>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.size, t.classification, t.created_at, t.expires_at, t.status, t.recalled_at, \
                    (SELECT group_concat(o.name || '/' || u.name, ' ') FROM links l \
                     JOIN users u ON u.id = l.recipient_id JOIN orgs o ON o.id = u.org_id \
                     WHERE l.transfer_id = t.id) AS recipients, \
                    (SELECT COUNT(*) FROM links l WHERE l.transfer_id = t.id \
                     AND l.state IN ('issued', 'leased') AND l.expires_at > $1) AS waiting, \
                    (SELECT COUNT(*) FROM links l WHERE l.transfer_id = t.id AND l.state = 'used') AS used \
             FROM transfers t WHERE t.sender_id = $2 ORDER BY t.created_at DESC, t.id LIMIT $3",
        )
        .bind(ms(now))
        .bind(sender.as_str())
        .bind(LIMIT)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let recipients = super::recipient_list(&r)?;
                let status: String = r.get("status");
                let recalled = r.get::<Option<i64>, _>("recalled_at").is_some();
                Ok(SentTransfer {
                    id: r.get("id"),
                    recipients,
                    size: u64::try_from(r.get::<i64, _>("size")).unwrap_or_default(),
                    classification: r.get::<String, _>("classification").parse()?,
                    created_at: from_ms(r.get("created_at")),
                    expires_at: from_ms(r.get("expires_at")),
                    status: match (status.as_str(), recalled) {
                        ("rejected", _) => TransferStatus::Rejected,
                        (_, true) => TransferStatus::Recalled,
                        ("held", false) => TransferStatus::AwaitingApproval,
                        _ => TransferStatus::Available,
                    },
                    state: sent_state(&status, recalled, r.get("waiting"), r.get("used")),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_waits_while_any_link_can_be_used_and_is_collected_once_one_was() {
        assert_eq!(sent_state("released", false, 1, 1), SentState::Waiting);
        assert_eq!(sent_state("released", false, 0, 1), SentState::Collected);
        assert_eq!(sent_state("released", false, 0, 0), SentState::Expired);
        assert_eq!(sent_state("released", true, 1, 0), SentState::Recalled);
        assert_eq!(sent_state("held", false, 2, 0), SentState::AwaitingApproval);
        assert_eq!(sent_state("held", false, 0, 0), SentState::Expired);
        assert_eq!(sent_state("rejected", false, 0, 0), SentState::Rejected);
    }
}
