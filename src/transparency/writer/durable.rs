//! Durable file writes for the log: each file goes to a temporary file beside its final name,
//! is fsynced, renamed into place, and its directory fsynced, so after a crash a file is either
//! the old one or the new one, never half of each.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{LogError, io};

/// Writes `bytes` to `path` atomically and durably: temporary file, fsync, rename, fsync dir.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = stage(path, bytes)?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Writes `bytes` to a durable temporary file beside `path`; returns its path.
fn stage(path: &Path, bytes: &[u8]) -> Result<PathBuf, LogError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io(&tmp))?;
    Ok(tmp)
}

/// Runs `f` on every item on its own thread, so their fsyncs overlap; the first error wins.
fn each_in_parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, LogError> + Sync,
) -> Result<Vec<R>, LogError> {
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items.iter().map(|item| scope.spawn(move || f(item))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(LogError::Corrupt("a log writer thread panicked".to_owned()))))
            .collect()
    })
}

/// [`write_atomic`] for several files at once, with their fsyncs overlapping instead of one
/// after another: every file is durable in a temporary file before any is renamed into place,
/// and every directory is fsynced once, after the renames. When this returns all are durable;
/// if it fails, some may be in place, which is harmless for tiles (rewritten by the next round,
/// and never referenced before the checkpoint that is written after them).
pub(super) fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<(), LogError> {
    let staged = each_in_parallel(files, |(path, bytes)| stage(path, bytes))?;
    for ((path, _), tmp) in files.iter().zip(&staged) {
        std::fs::rename(tmp, path).map_err(io(path))?;
    }
    let dirs: Vec<&Path> = files
        .iter()
        .map(|(path, _)| path.parent().unwrap_or(Path::new(".")))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    each_in_parallel(&dirs, |dir| std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir)))?;
    Ok(())
}

/// Writes a secret file with mode 0600, atomically.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
