//! What a resumable send keeps on disk so that a killed client can continue: the sealed
//! ciphertext and the upload's URL, in a per-user state directory, under a key that names the
//! send (files, recipients, options, gateway). No HTTP here: `cli::send` drives the upload.
//!
//! Layout: `DIR/KEY.age.part` while sealing, renamed to `DIR/KEY.age` once sealed, and
//! `DIR/KEY.json` ([`State`]) beside it. The directory is 0700 and the files 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The environment variable that overrides the state directory.
pub const STATE_DIR_ENV: &str = "SEALPOST_STATE_DIR";

/// Why the upload state could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// Neither `SEALPOST_STATE_DIR`, `XDG_STATE_HOME` nor `HOME` is set.
    #[error("cannot find a state directory: set SEALPOST_STATE_DIR, XDG_STATE_HOME or HOME")]
    NoStateDir,
    /// A source file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Source {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The state directory or a state file could not be written or read.
    #[error("cannot use the upload state in `{path}`: {source}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What identifies a send: the same inputs give the same key.
#[derive(Debug, Clone, Copy)]
pub struct SendInputs<'a> {
    /// The files, as given.
    pub files: &'a [PathBuf],
    /// The recipients (`ORG/NAME`), in order.
    pub to: &'a [String],
    /// The expiry, as given.
    pub expires: Option<&'a str>,
    /// The classification, as given.
    pub classification: Option<&'a str>,
    /// The gateway's base URL.
    pub gateway: &'a str,
    /// The fingerprint of the key the upload is signed with, if it is (an unsigned send keeps
    /// the key it had before signing existed).
    pub signer: Option<&'a str>,
}

/// The saved facts of a sealed, possibly partly uploaded, ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The ciphertext's `sha256:<hex>`.
    pub digest: String,
    /// The ciphertext's size.
    pub size: u64,
    /// The upload's path on the gateway (`/api/v1/uploads/ID`), once created.
    pub upload: Option<String>,
}

/// One send's place in the state directory.
#[derive(Debug, Clone)]
pub struct Slot {
    dir: PathBuf,
    key: String,
}

/// The state directory: `$SEALPOST_STATE_DIR`, else `$XDG_STATE_HOME/sealpost/uploads`, else
/// `~/.local/state/sealpost/uploads`.
pub fn state_dir() -> Result<PathBuf, ResumeError> {
    state_for("uploads")
}

/// Where the client keeps `what` (`uploads`, `keys-monitor`): `$SEALPOST_STATE_DIR` itself for
/// uploads and `$SEALPOST_STATE_DIR/WHAT` for the rest, else `$XDG_STATE_HOME/sealpost/WHAT`,
/// else `~/.local/state/sealpost/WHAT`.
pub fn state_for(what: &str) -> Result<PathBuf, ResumeError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var(STATE_DIR_ENV) {
        return Ok(if what == "uploads" { dir } else { dir.join(what) });
    }
    if let Some(xdg) = var("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("sealpost").join(what));
    }
    var("HOME").map(|home| home.join(".local/state/sealpost").join(what)).ok_or(ResumeError::NoStateDir)
}

/// The key of a send: SHA-256 over the canonical paths, sizes and modification times of the
/// files, the recipients, the options and the gateway URL, each length-prefixed.
pub fn key(inputs: &SendInputs<'_>) -> Result<String, ResumeError> {
    let mut hasher = Sha256::new();
    let mut put = |part: &[u8]| {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    };
    put(b"sealpost.send/v1");
    for path in inputs.files {
        let source = |e| ResumeError::Source { path: path.clone(), source: e };
        let canonical = fs::canonicalize(path).map_err(source)?;
        let meta = fs::metadata(&canonical).map_err(source)?;
        let mtime = meta.modified().map_err(source)?.duration_since(UNIX_EPOCH).unwrap_or_default();
        put(canonical.as_os_str().as_encoded_bytes());
        put(&meta.len().to_be_bytes());
        put(&mtime.as_nanos().to_be_bytes());
    }
    for to in inputs.to {
        put(to.as_bytes());
    }
    put(inputs.expires.unwrap_or_default().as_bytes());
    put(inputs.classification.unwrap_or_default().as_bytes());
    put(inputs.gateway.trim_end_matches('/').as_bytes());
    if let Some(signer) = inputs.signer {
        put(signer.as_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn state_err(path: &Path) -> impl FnOnce(io::Error) -> ResumeError + '_ {
    move |source| ResumeError::State { path: path.to_owned(), source }
}

impl Slot {
    /// The slot for `key` in `dir`, creating the directory (0700) if needed.
    pub fn open(dir: PathBuf, key: String) -> Result<Self, ResumeError> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(state_err(&dir))?;
        Ok(Self { dir, key })
    }

    /// The sealed ciphertext's file.
    pub fn ciphertext(&self) -> PathBuf {
        self.dir.join(format!("{}.age", self.key))
    }

    fn partial(&self) -> PathBuf {
        self.dir.join(format!("{}.age.part", self.key))
    }

    fn facts(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.key))
    }

    /// The saved state, if a sealed ciphertext of the recorded size is there.
    pub fn load(&self) -> Option<State> {
        let text = fs::read_to_string(self.facts()).ok()?;
        let state: State = serde_json::from_str(&text).ok()?;
        let len = fs::metadata(self.ciphertext()).ok()?.len();
        (len == state.size).then_some(state)
    }

    /// A fresh file (0600) to seal into; [`Slot::sealed`] moves it into place.
    pub fn create_partial(&self) -> Result<File, ResumeError> {
        let path = self.partial();
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(state_err(&path))
    }

    /// Records a completed sealing: the ciphertext moves into place, then its facts are saved.
    pub fn sealed(&self, state: &State) -> Result<(), ResumeError> {
        let (from, to) = (self.partial(), self.ciphertext());
        fs::rename(&from, &to).map_err(state_err(&to))?;
        self.save(state)
    }

    /// Saves `state` (atomically, 0600).
    pub fn save(&self, state: &State) -> Result<(), ResumeError> {
        let path = self.facts();
        let temp = self.dir.join(format!("{}.json.tmp", self.key));
        let text = serde_json::to_vec(state).unwrap_or_default();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .map_err(state_err(&temp))?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(state_err(&temp))?;
        fs::rename(&temp, &path).map_err(state_err(&path))
    }

    /// Deletes everything this send kept; files already gone are not an error.
    pub fn remove(&self) -> Result<(), ResumeError> {
        let tmp = self.dir.join(format!("{}.json.tmp", self.key));
        for path in [self.facts(), self.ciphertext(), self.partial(), tmp] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(state_err(&path)(e)),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_key_changes_with_every_input_and_the_state_round_trips_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        fs::write(&file, b"abc").unwrap();
        let files = [file.clone()];
        let to = ["hmpps/alice".to_owned()];
        let base = SendInputs {
            files: &files,
            to: &to,
            expires: None,
            classification: None,
            gateway: "http://g",
            signer: None,
        };
        let k = key(&base).unwrap();
        assert_eq!(k, key(&SendInputs { gateway: "http://g/", ..base }).unwrap());
        assert_ne!(k, key(&SendInputs { expires: Some("1h"), ..base }).unwrap());
        assert_ne!(k, key(&SendInputs { gateway: "http://h", ..base }).unwrap());
        assert_ne!(k, key(&SendInputs { signer: Some("sha256:00"), ..base }).unwrap(), "a signed send is another");
        let other = ["hmpps/carol".to_owned()];
        assert_ne!(k, key(&SendInputs { to: &other, ..base }).unwrap());
        fs::write(&file, b"abcd").unwrap();
        assert_ne!(k, key(&base).unwrap());

        let states = dir.path().join("state");
        let slot = Slot::open(states.clone(), k).unwrap();
        assert_eq!(fs::metadata(&states).unwrap().permissions().mode() & 0o777, 0o700);
        let mut f = slot.create_partial().unwrap();
        f.write_all(b"cipher").unwrap();
        assert_eq!(slot.load(), None);
        let state = State { digest: "sha256:00".into(), size: 6, upload: None };
        slot.sealed(&state).unwrap();
        assert_eq!(slot.load(), Some(state));
        for entry in fs::read_dir(&states).unwrap() {
            assert_eq!(entry.unwrap().metadata().unwrap().permissions().mode() & 0o777, 0o600);
        }
        slot.remove().unwrap();
        assert_eq!(fs::read_dir(&states).unwrap().count(), 0);
    }
}
