//! Lifecycle invariants over the entries of the log, in log order: what the audit trail must
//! show if the gateway did what it says (every download of an issued link of an accepted upload,
//! each link used at most once, none after revocation, expiry or recall, digests that match).

use std::collections::HashMap;

use super::entry::{Entry, EntryError};

/// A lifecycle invariant that an entry breaks; `index` is the entry's leaf index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A lifecycle event without a fact it needs (entries are parsed first, so this is a bug).
    #[error("entry {index} is invalid")]
    Entry {
        index: u64,
        #[source]
        source: EntryError,
    },
    /// A second `upload.accepted` for one transfer: the logged digest could be swapped.
    #[error("entry {index} accepts transfer `{transfer}` again, already accepted at entry {first}")]
    DuplicateUpload { index: u64, transfer: String, first: u64 },
    /// A download of a transfer with no earlier `upload.accepted`.
    #[error("entry {index} (`{event}`) names transfer `{transfer}`, which no earlier entry accepted")]
    UnknownTransfer { index: u64, event: String, transfer: String },
    /// A download through a link with no earlier `link.issued`.
    #[error("entry {index} (`{event}`) names link `{link}`, which no earlier entry issued")]
    UnknownLink { index: u64, event: String, link: String },
    /// A download naming a transfer other than the one its link was issued for.
    #[error(
        "entry {index} (`{event}`) uses link `{link}` for transfer `{transfer}`, but it was issued for `{issued_for}`"
    )]
    LinkTransferMismatch { index: u64, event: String, link: String, transfer: String, issued_for: String },
    /// A second `download.completed` through one link.
    #[error("entry {index} completes a second download through link `{link}`, first completed at entry {first}")]
    SecondCompletion { index: u64, link: String, first: u64 },
    /// A `download.started` after the link was revoked, expired or used up, or its transfer
    /// recalled or rejected.
    #[error("entry {index} starts a download through link `{link}` after `{ended_by}` at entry {ended_at}")]
    DownloadAfterEnd { index: u64, link: String, ended_by: String, ended_at: u64 },
    /// A completed download whose digest differs from the one logged at upload.
    #[error("entry {index} completes transfer `{transfer}` with digest `{downloaded}`, but `{uploaded}` was uploaded")]
    DigestMismatch { index: u64, transfer: String, uploaded: String, downloaded: String },
}

#[derive(Debug)]
struct Upload {
    index: u64,
    digest: String,
}

#[derive(Debug)]
struct Link {
    transfer: String,
    ended: Option<(String, u64)>,
    completed: Option<u64>,
}

/// The state built from the entries seen so far.
#[derive(Debug, Default)]
pub(super) struct Lifecycle {
    uploads: HashMap<String, Upload>,
    ended_transfers: HashMap<String, (String, u64)>,
    links: HashMap<String, Link>,
}

fn need<'a>(index: u64, entry: &'a Entry, key: &'static str) -> Result<&'a str, Violation> {
    entry.get(key).ok_or_else(|| Violation::Entry {
        index,
        source: EntryError::MissingField { event: entry.event().to_owned(), key },
    })
}

impl Lifecycle {
    /// Checks entry `index` against the earlier ones, then records it.
    pub(super) fn apply(&mut self, index: u64, entry: &Entry) -> Result<(), Violation> {
        let event = entry.event();
        match event {
            "upload.accepted" => {
                let transfer = need(index, entry, "transfer")?;
                let digest = need(index, entry, "digest")?;
                if let Some(first) = self.uploads.get(transfer) {
                    return Err(Violation::DuplicateUpload {
                        index,
                        transfer: transfer.to_owned(),
                        first: first.index,
                    });
                }
                self.uploads.insert(transfer.to_owned(), Upload { index, digest: digest.to_owned() });
            }
            "link.issued" => {
                let transfer = need(index, entry, "transfer")?;
                let link = need(index, entry, "link")?;
                self.links.entry(link.to_owned()).or_insert_with(|| Link {
                    transfer: transfer.to_owned(),
                    ended: None,
                    completed: None,
                });
            }
            "link.revoked" | "link.expired" => {
                let link = need(index, entry, "link")?;
                if let Some(state) = self.links.get_mut(link) {
                    state.ended.get_or_insert_with(|| (event.to_owned(), index));
                }
            }
            "transfer.recalled" | "transfer.rejected" => {
                if let Some(transfer) = entry.transfer() {
                    self.ended_transfers.entry(transfer.to_owned()).or_insert_with(|| (event.to_owned(), index));
                }
            }
            // A partial range, like a failure, must name a known link of its transfer, and
            // leaves the link usable: it is not a completion.
            "download.started" | "download.completed" | "download.failed" | "download.partial" => {
                self.download(index, entry)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn download(&mut self, index: u64, entry: &Entry) -> Result<(), Violation> {
        let event = entry.event();
        let transfer = need(index, entry, "transfer")?;
        let link = need(index, entry, "link")?;
        let upload = self.uploads.get(transfer).ok_or_else(|| Violation::UnknownTransfer {
            index,
            event: event.to_owned(),
            transfer: transfer.to_owned(),
        })?;
        let state = self.links.get_mut(link).ok_or_else(|| Violation::UnknownLink {
            index,
            event: event.to_owned(),
            link: link.to_owned(),
        })?;
        if state.transfer != transfer {
            return Err(Violation::LinkTransferMismatch {
                index,
                event: event.to_owned(),
                link: link.to_owned(),
                transfer: transfer.to_owned(),
                issued_for: state.transfer.clone(),
            });
        }
        match event {
            "download.started" => {
                let used_up = state.completed.map(|at| ("download.completed".to_owned(), at));
                let recalled = self.ended_transfers.get(transfer).cloned();
                if let Some((ended_by, ended_at)) = state.ended.clone().or(used_up).or(recalled) {
                    return Err(Violation::DownloadAfterEnd { index, link: link.to_owned(), ended_by, ended_at });
                }
            }
            "download.completed" => {
                if let Some(first) = state.completed {
                    return Err(Violation::SecondCompletion { index, link: link.to_owned(), first });
                }
                let digest = need(index, entry, "digest")?;
                if digest != upload.digest {
                    return Err(Violation::DigestMismatch {
                        index,
                        transfer: transfer.to_owned(),
                        uploaded: upload.digest.clone(),
                        downloaded: digest.to_owned(),
                    });
                }
                state.completed = Some(index);
            }
            _ => {}
        }
        Ok(())
    }
}
