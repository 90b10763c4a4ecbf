//! The ciphertext of a download in progress, kept on disk so that a fetch that was killed
//! continues from the bytes it has when the same command runs again.
//!
//! Layout: one file, 0600, beside the output (`OUT.sealpost-part`, or `DIR/TRANSFER.sealpost-part`
//! with `--dir`). Its first line names what the bytes belong to,
//! `sealpost.part/v1 TRANSFER DIGEST SIZE`, and the ciphertext follows. A file whose line names
//! another transfer, digest or size is discarded, never continued. Once the last byte is in, the
//! file is unlinked and the open handle carries the ciphertext to the checks and the decryption,
//! so nothing is left behind whether they pass or not.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::cli::Failure;

const MAGIC: &str = "sealpost.part/v1";

/// What a download is of, from the gateway's first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Of {
    /// The transfer id (checked: 32 lowercase hex digits, so it is safe in a file name).
    pub(super) transfer: String,
    /// The ciphertext digest the gateway recorded (`sha256:…`).
    pub(super) digest: String,
    /// The ciphertext size.
    pub(super) size: u64,
}

/// How a part file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// There was none: a fresh one was made.
    Fresh,
    /// One for this very download: its bytes are continued.
    Resumed,
    /// One for another transfer, digest or size (or unreadable): it was emptied and reused.
    Discarded,
}

/// A part file, open for appending, with the SHA-256 of the bytes so far.
pub(super) struct Part {
    path: PathBuf,
    file: File,
    start: u64,
    have: u64,
    hasher: Sha256,
    found: Found,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part").field("path", &self.path).field("have", &self.have).finish_non_exhaustive()
    }
}

/// The ciphertext once complete: a handle to the (unlinked) file, positioned at its first byte.
pub(super) struct Complete {
    /// The ciphertext; reading starts at byte `start` of the file.
    pub(super) file: File,
    /// Where the ciphertext starts in `file`.
    pub(super) start: u64,
    /// `sha256:<hex>` of the ciphertext.
    pub(super) digest: String,
}

fn failed(path: &Path, e: &io::Error) -> Failure {
    Failure::new(format!("cannot use the partial download `{}`: {e}", path.display()))
        .hint("check the space and permissions there, or choose another output")
}

impl Part {
    /// Opens the part file at `path` for `of`: continues it when its first line names this very
    /// download and it holds fewer bytes than the whole, else starts it afresh.
    pub(super) fn open(path: PathBuf, of: &Of) -> Result<Self, Failure> {
        let line = format!("{MAGIC} {} {} {}\n", of.transfer, of.digest, of.size);
        let start = line.len() as u64;
        if path.symlink_metadata().is_ok_and(|m| !m.file_type().is_file()) {
            return Err(Failure::new(format!("`{}` is in the way of the partial download", path.display()))
                .hint("it is not a regular file: move it away, or choose another output"));
        }
        let existing = OpenOptions::new().read(true).write(true).open(&path);
        let (mut file, found) = match existing {
            Ok(mut file) => {
                let mut first = vec![0u8; line.len()];
                let same = file.read_exact(&mut first).is_ok() && first == line.as_bytes();
                let len = file.metadata().map_err(|e| failed(&path, &e))?.len();
                let found =
                    if same && len > start && len - start < of.size { Found::Resumed } else { Found::Discarded };
                (file, found)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| failed(&path, &e))?;
                (file, Found::Fresh)
            }
            Err(e) => return Err(failed(&path, &e)),
        };
        file.seek(SeekFrom::Start(start)).map_err(|e| failed(&path, &e))?;
        let mut part = Self { path, file, start, have: 0, hasher: Sha256::new(), found };
        if found == Found::Resumed {
            part.have = io::copy(&mut part.file, &mut part.hasher).map_err(|e| failed(&part.path, &e))?;
        } else {
            part.restart(&line)?;
        }
        Ok(part)
    }

    /// Empties the file down to its first line.
    fn restart(&mut self, line: &str) -> Result<(), Failure> {
        let path = self.path.clone();
        self.file.set_len(0).map_err(|e| failed(&path, &e))?;
        self.file.seek(SeekFrom::Start(0)).map_err(|e| failed(&path, &e))?;
        self.file.write_all(line.as_bytes()).map_err(|e| failed(&path, &e))?;
        self.have = 0;
        self.hasher = Sha256::new();
        Ok(())
    }

    /// Drops every byte kept so far (they disagree with what the gateway sends now).
    pub(super) fn discard(&mut self, of: &Of) -> Result<(), Failure> {
        self.found = Found::Discarded;
        self.restart(&format!("{MAGIC} {} {} {}\n", of.transfer, of.digest, of.size))
    }

    /// How the file was found.
    pub(super) fn found(&self) -> Found {
        self.found
    }

    /// Where the file is.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// How many ciphertext bytes are kept.
    pub(super) fn have(&self) -> u64 {
        self.have
    }

    /// Appends ciphertext bytes.
    pub(super) fn append(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.file.seek(SeekFrom::Start(self.start + self.have)).map_err(|e| failed(&self.path, &e))?;
        self.file.write_all(bytes).map_err(|e| failed(&self.path, &e))?;
        self.hasher.update(bytes);
        self.have += bytes.len() as u64;
        Ok(())
    }

    /// The first `max` ciphertext bytes kept (fewer if fewer are kept).
    pub(super) fn prefix(&self, max: usize) -> Result<Vec<u8>, Failure> {
        let len = usize::try_from(self.have).unwrap_or(usize::MAX).min(max);
        let mut buffer = vec![0u8; len];
        self.file.read_exact_at(&mut buffer, self.start).map_err(|e| failed(&self.path, &e))?;
        Ok(buffer)
    }

    /// Deletes the file.
    pub(super) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Unlinks the complete file and hands over its ciphertext.
    pub(super) fn complete(mut self) -> Result<Complete, Failure> {
        self.file
            .flush()
            .and_then(|()| self.file.seek(SeekFrom::Start(self.start)).map(drop))
            .map_err(|e| failed(&self.path, &e))?;
        let _ = std::fs::remove_file(&self.path);
        Ok(Complete {
            file: self.file,
            start: self.start,
            digest: format!("sha256:{}", hex::encode(self.hasher.finalize())),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn of(transfer: char, size: u64) -> Of {
        Of { transfer: transfer.to_string().repeat(32), digest: "sha256:00".to_owned(), size }
    }

    fn data(part: &Part) -> Vec<u8> {
        part.prefix(usize::MAX).unwrap()
    }

    #[test]
    fn a_part_for_the_same_download_is_continued_and_its_digest_covers_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.sealpost-part");
        let mut first = Part::open(path.clone(), &of('a', 10)).unwrap();
        assert_eq!(first.found(), Found::Fresh);
        first.append(b"01234").unwrap();
        drop(first);
        let mut again = Part::open(path.clone(), &of('a', 10)).unwrap();
        assert_eq!((again.found(), again.have(), data(&again)), (Found::Resumed, 5, b"01234".to_vec()));
        again.append(b"56789").unwrap();
        let mut done = again.complete().unwrap();
        assert!(!path.exists(), "a complete part is unlinked");
        let mut bytes = Vec::new();
        done.file.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"0123456789");
        assert_eq!(done.digest, format!("sha256:{}", hex::encode(Sha256::digest(b"0123456789"))));
    }

    #[test]
    fn a_part_for_another_transfer_digest_or_size_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.sealpost-part");
        for other in [of('b', 10), Of { digest: "sha256:11".to_owned(), ..of('a', 10) }, of('a', 11)] {
            let mut kept = Part::open(path.clone(), &of('a', 10)).unwrap();
            kept.discard(&of('a', 10)).unwrap();
            kept.append(b"01234").unwrap();
            drop(kept);
            let fresh = Part::open(path.clone(), &other).unwrap();
            assert_eq!((fresh.found(), fresh.have(), data(&fresh)), (Found::Discarded, 0, Vec::new()), "{other:?}");
            let mut bytes = String::new();
            File::open(&path).unwrap().read_to_string(&mut bytes).unwrap();
            assert_eq!(bytes, format!("{MAGIC} {} {} {}\n", other.transfer, other.digest, other.size));
        }
    }

    #[test]
    fn a_new_part_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.sealpost-part");
        let part = Part::open(path.clone(), &of('a', 10)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        part.remove();
        assert!(!path.exists());
    }
}
