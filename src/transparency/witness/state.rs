//! The witness's memory: per log, the latest checkpoint it cosigned, one file per log in the
//! state directory, replaced atomically (temporary file, fsync, rename, fsync directory).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::transparency::tlog::Hash;
use crate::transparency::tlog::checkpoint::{Checkpoint, CheckpointError};
use crate::transparency::tlog::note::{Note, NoteError};

use super::WitnessError;

/// The longest state file name we make (most file systems allow 255 bytes).
const MAX_FILE_NAME: usize = 240;

/// The latest checkpoint the witness cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Latest {
    pub(crate) size: u64,
    pub(crate) root: Hash,
}

/// The state file of `origin`: bytes outside `[A-Za-z0-9.-]` are written `_xx` (lowercase
/// hex), so that different origins never share a file and none escapes the directory.
pub(crate) fn file_name(origin: &str) -> Result<String, WitnessError> {
    let mut name = String::new();
    for b in origin.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("_{b:02x}"));
        }
    }
    name.push_str(".checkpoint");
    if name.len() > MAX_FILE_NAME {
        return Err(WitnessError::OriginTooLong { origin: origin.to_owned() });
    }
    Ok(name)
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WitnessError + 'a {
    move |e| WitnessError::Io { op, path: path.to_owned(), reason: e.to_string() }
}

/// Reads the state file of `origin`, if there is one.
pub(crate) fn load(path: &Path, origin: &str) -> Result<Option<Latest>, WitnessError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", path)(e)),
    };
    let corrupt = |reason: String| WitnessError::CorruptState { path: path.to_owned(), reason };
    let note = Note::parse(&text).map_err(|e: NoteError| corrupt(e.to_string()))?;
    let checkpoint = Checkpoint::parse(note.text()).map_err(|e: CheckpointError| corrupt(e.to_string()))?;
    if checkpoint.origin() != origin {
        return Err(corrupt(format!("it holds a checkpoint of `{}`, not `{origin}`", checkpoint.origin())));
    }
    Ok(Some(Latest { size: checkpoint.size(), root: *checkpoint.root() }))
}

/// Replaces the state file at `path` with `contents`, durably: once this returns, a crash
/// leaves either the old file or the new one, and the new one survives a power loss.
pub(crate) fn store(path: &Path, contents: &str) -> Result<(), WitnessError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp).map_err(io_error("create", &tmp))?;
    file.write_all(contents.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error("write", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_error("rename", path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparency::tlog::merkle::empty_root;
    use crate::transparency::tlog::note::Signer;

    #[test]
    fn origins_map_to_distinct_plain_file_names() {
        assert_eq!(file_name("example.com/log").unwrap(), "example.com_2flog.checkpoint");
        assert_eq!(file_name("a_2fb").unwrap(), "a_5f2fb.checkpoint");
        assert_eq!(file_name("..").unwrap(), "...checkpoint");
        assert_eq!(file_name("é").unwrap(), "_c3_a9.checkpoint");
        let long = "a".repeat(230);
        assert_eq!(file_name(&long), Err(WitnessError::OriginTooLong { origin: long.clone() }));
    }

    #[test]
    fn a_stored_checkpoint_loads_back_and_a_foreign_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoint");
        assert_eq!(load(&path, "example.com/log"), Ok(None));
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let signed = Checkpoint::new("example.com/log", 0, empty_root()).unwrap().sign(&[&log]).unwrap();
        store(&path, &signed).unwrap();
        assert_eq!(load(&path, "example.com/log"), Ok(Some(Latest { size: 0, root: empty_root() })));
        assert_eq!(
            load(&path, "example.com/other"),
            Err(WitnessError::CorruptState {
                path: path.clone(),
                reason: "it holds a checkpoint of `example.com/log`, not `example.com/other`".into()
            })
        );
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(
            load(&path, "example.com/log"),
            Err(WitnessError::CorruptState { path, reason: "note has no signature block after a blank line".into() })
        );
    }
}
