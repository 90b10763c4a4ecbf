//! The sealpost bundle, version 1: a POSIX (ustar) tar stream, which is the plaintext that age
//! encrypts.
//!
//! ```text
//! .sealpost-bundle-v1     empty regular file: marks the stream as a bundle
//! NAME…                   one regular file per sent file, flat names (no directories)
//! .sealpost-manifest      text: `sealpost.bundle/v1` then one `sha256:<hex> <size> <name>` line per file
//! ```
//!
//! Writing is one streaming pass (the manifest comes last, so each file is read once, hashed as
//! it goes). Extraction writes each file to a temporary file in the target directory, hashing
//! it, and renames them into place only after the manifest has been read and every digest and
//! size matches. Anything but regular files with plain names is refused: no `..`, no absolute
//! paths, no directories, links or devices.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The name of the first member, which marks a bundle.
pub const MARKER: &str = ".sealpost-bundle-v1";
/// The name of the last member, the manifest.
pub const MANIFEST: &str = ".sealpost-manifest";
/// The manifest's first line.
const MANIFEST_VERSION: &str = "sealpost.bundle/v1";
/// The largest manifest read back (names are at most 255 bytes; this allows many thousands).
const MAX_MANIFEST: u64 = 16 << 20;

/// Why a bundle could not be written or extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading a source file or writing the stream failed.
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A source that is not a regular file.
    #[error("`{path}` is not a regular file")]
    NotAFile { path: PathBuf },
    /// Two sources with the same file name.
    #[error("two files are named `{name}`")]
    DuplicateName { name: String },
    /// A file name the bundle cannot carry.
    #[error("`{name}` is not a file name a bundle can carry")]
    BadName { name: String },
    /// Writing the stream or an extracted file failed.
    #[error("cannot write: {0}")]
    Write(#[source] io::Error),
    /// The stream is not a sealpost bundle.
    #[error("the plaintext is not a sealpost bundle")]
    NotABundle,
    /// A member that extraction refuses (link, device, directory, unsafe name).
    #[error("the bundle holds `{name}`, which is {why}: refused")]
    Unsafe { name: String, why: &'static str },
    /// The tar stream or its manifest is malformed.
    #[error("the bundle is malformed: {0}")]
    Malformed(String),
    /// A file whose digest or size differs from the manifest.
    #[error("`{name}` differs from the bundle's manifest")]
    ManifestMismatch { name: String },
    /// A bundle of several files, for a single output file.
    #[error("the bundle holds several files, but one output file was given")]
    SeveralFiles,
    /// A target that exists already.
    #[error("`{path}` exists already")]
    Exists { path: PathBuf },
}

/// One file of a bundle, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The file name (one path component).
    pub name: String,
    /// The size in bytes.
    pub size: u64,
    /// `sha256:<lowercase hex>`.
    pub digest: String,
}

impl Item {
    fn line(&self) -> String {
        format!("{} {} {}\n", self.digest, self.size, self.name)
    }
}

/// Checks that `name` is a plain file name: one normal component, no control characters, not one
/// of the bundle's own members.
pub fn check_name(name: &str) -> Result<(), BundleError> {
    let bad = || BundleError::BadName { name: name.to_owned() };
    let mut components = Path::new(name).components();
    let single = matches!(components.next(), Some(std::path::Component::Normal(_))) && components.next().is_none();
    if !single
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
        || name == MARKER
        || name == MANIFEST
        || name.len() > 255
    {
        return Err(bad());
    }
    Ok(())
}

/// A writer that hands what passes through, in 1 MiB pieces, to a second thread that hashes it
/// and writes it to the file, so hashing the ciphertext overlaps with encrypting it. At most
/// [`PIPE_DEPTH`] pieces wait between the two, so memory stays flat.
#[derive(Debug)]
pub struct PipeWriter {
    pieces: Pieces,
}

/// Pieces in flight between the encrypting and the hashing thread.
const PIPE_DEPTH: usize = 4;
const PIECE: usize = 1 << 20;

/// Bytes gathered into 1 MiB pieces for a scoped thread, at most [`PIPE_DEPTH`] in flight.
#[derive(Debug)]
struct Pieces {
    pipe: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    piece: Vec<u8>,
}

impl Pieces {
    /// The sending end, and the receiving end for the thread.
    fn new() -> (Self, std::sync::mpsc::Receiver<Vec<u8>>) {
        let (pipe, pieces) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPE_DEPTH);
        (Self { pipe: Some(pipe), piece: Vec::with_capacity(PIECE) }, pieces)
    }

    /// Adds bytes, sending a piece once it is full.
    fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.piece.extend_from_slice(bytes);
        if self.piece.len() >= PIECE { self.send() } else { Ok(()) }
    }

    /// Sends what has gathered.
    fn send(&mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        let closed = || io::Error::other("the hashing thread stopped");
        self.pipe.as_ref().ok_or_else(closed)?.send(piece).map_err(|_| closed())
    }

    /// Sends the last piece and closes the pipe, so the thread ends.
    fn close(&mut self) -> io::Result<()> {
        self.send()?;
        self.pipe = None;
        Ok(())
    }
}

impl PipeWriter {
    /// Runs `f` with a writer whose bytes go to `out`, hashed on a scoped thread; returns what
    /// `f` returned, with the ciphertext's digest (`sha256:<hex>`) and length. A write error on
    /// the file side wins over the error `f` sees when the pipe closes.
    pub fn run<T, E>(
        out: &File,
        io_err: impl Fn(io::Error) -> E,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<(T, String, u64), E> {
        std::thread::scope(|scope| {
            let (sender, pieces) = Pieces::new();
            let hasher = scope.spawn(move || -> io::Result<(String, u64)> {
                let mut hasher = Sha256::new();
                let mut len = 0u64;
                let mut out = out;
                for piece in pieces {
                    hasher.update(&piece);
                    out.write_all(&piece)?;
                    len += piece.len() as u64;
                }
                out.flush()?;
                Ok((format!("sha256:{}", hex::encode(hasher.finalize())), len))
            });
            let mut writer = Self { pieces: sender };
            let result = f(&mut writer).and_then(|value| writer.pieces.close().map(|()| value).map_err(&io_err));
            drop(writer);
            let written = hasher.join().unwrap_or_else(|_| Err(io::Error::other("the ciphertext writer panicked")));
            match (result, written) {
                (Ok(value), Ok((digest, len))) => Ok((value, digest, len)),
                (_, Err(e)) => Err(io_err(e)),
                (Err(e), Ok(_)) => Err(e),
            }
        })
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pieces.push(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader that hands what passes through, in 1 MiB pieces, to a scoped thread that hashes it
/// (so hashing a file overlaps with encrypting it), and counts it.
struct HashingReader<R> {
    inner: R,
    pieces: Pieces,
    len: u64,
}

impl<R: Read> HashingReader<R> {
    /// Reads `inner` through `f` while a scoped thread hashes it; returns what `f` returned, the
    /// digest (`sha256:<hex>`) and the byte count.
    fn run<T>(inner: R, f: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<(T, String, u64)> {
        std::thread::scope(|scope| {
            let (sender, pieces) = Pieces::new();
            let hasher = scope.spawn(move || {
                let mut hasher = Sha256::new();
                for piece in pieces {
                    hasher.update(&piece);
                }
                format!("sha256:{}", hex::encode(hasher.finalize()))
            });
            let mut reader = Self { inner, pieces: sender, len: 0 };
            let result = f(&mut reader).and_then(|value| reader.pieces.close().map(|()| value));
            let len = reader.len;
            drop(reader);
            let digest = hasher.join().map_err(|_| io::Error::other("the hashing thread panicked"))?;
            result.map(|value| (value, digest, len))
        })
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pieces.push(&buf[..n])?;
        self.len += n as u64;
        Ok(n)
    }
}

fn header(name: &str, size: u64) -> Result<tar::Header, BundleError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).map_err(|_| BundleError::BadName { name: name.to_owned() })?;
    h.set_size(size);
    h.set_mode(0o600);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

/// The bundle names of `paths` (their file names), refusing duplicates and unusable names.
pub fn names(paths: &[PathBuf]) -> Result<Vec<String>, BundleError> {
    let mut names: Vec<String> = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BundleError::BadName { name: path.display().to_string() })?
            .to_owned();
        check_name(&name)?;
        if names.contains(&name) {
            return Err(BundleError::DuplicateName { name });
        }
        names.push(name);
    }
    Ok(names)
}

/// Writes the bundle of `paths` to `out`, streaming, and returns its manifest. `progress` is
/// called with the number of source bytes read so far.
pub fn write<W: Write>(paths: &[PathBuf], out: W, mut progress: impl FnMut(u64)) -> Result<Vec<Item>, BundleError> {
    let names = names(paths)?;
    let mut builder = tar::Builder::new(out);
    builder.append(&header(MARKER, 0)?, io::empty()).map_err(BundleError::Write)?;
    let mut items = Vec::with_capacity(paths.len());
    let mut done = 0u64;
    for (path, name) in paths.iter().zip(names) {
        let read_err = |source| BundleError::Read { path: path.clone(), source };
        let file = File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(BundleError::NotAFile { path: path.clone() });
        }
        let size = meta.len();
        // `take` guards against a file that grows while it is read; a shrinking one fails below.
        let header = header(&name, size)?;
        // Large reads from the file (the tar writer copies in small ones).
        let source = io::BufReader::with_capacity(PIECE, file.take(size));
        let ((), digest, len) = HashingReader::run(source, |reader| builder.append(&header, reader))
            .map_err(|source| BundleError::Read { path: path.clone(), source })?;
        if len != size {
            return Err(read_err(io::Error::other("the file changed while it was read")));
        }
        done += size;
        progress(done);
        items.push(Item { name, size, digest });
    }
    let mut manifest = format!("{MANIFEST_VERSION}\n");
    for item in &items {
        manifest.push_str(&item.line());
    }
    builder.append(&header(MANIFEST, manifest.len() as u64)?, manifest.as_bytes()).map_err(BundleError::Write)?;
    builder.into_inner().and_then(|mut w| w.flush()).map_err(BundleError::Write)?;
    Ok(items)
}

/// True when `prefix` (the first bytes of a plaintext, at least 512 if the plaintext has them)
/// starts a sealpost bundle.
pub fn is_bundle(prefix: &[u8]) -> bool {
    if prefix.len() < 512 {
        return false;
    }
    let mut block = [0u8; 512];
    block.copy_from_slice(&prefix[..512]);
    let h = tar::Header::from_byte_slice(&block);
    let name_ok = h.path_bytes().as_ref() == MARKER.as_bytes();
    name_ok && h.cksum().ok() == Some(tar_checksum(&block))
}

/// The ustar header checksum: the byte sum with the checksum field read as spaces.
fn tar_checksum(block: &[u8; 512]) -> u32 {
    block.iter().enumerate().map(|(i, b)| if (148..156).contains(&i) { 32 } else { u32::from(*b) }).sum()
}

fn parse_manifest(text: &str) -> Result<Vec<Item>, BundleError> {
    let bad = |why: &str| BundleError::Malformed(format!("manifest {why}"));
    let mut lines = text.lines();
    if lines.next() != Some(MANIFEST_VERSION) {
        return Err(bad("has an unknown version"));
    }
    lines
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let (Some(digest), Some(size), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("has a malformed line"));
            };
            let size = size.parse().map_err(|_| bad("has a malformed size"))?;
            Ok(Item { name: name.to_owned(), size, digest: digest.to_owned() })
        })
        .collect()
}

/// Where extracted files go.
#[derive(Debug)]
pub enum Target<'a> {
    /// Every file into this directory, under its bundle name.
    Dir(&'a Path),
    /// The bundle's only file to this path.
    File(&'a Path),
}

/// A file extracted to a temporary name, waiting for the manifest.
struct Pending {
    temp: tempfile::NamedTempFile,
    item: Item,
    dest: PathBuf,
}

/// Extracts a bundle from `input` (positioned at its start) into `target`, and returns its
/// manifest. Files appear only when the whole bundle has been read and checked; with `force`
/// false an existing file is never replaced.
pub fn extract<R: Read>(input: R, target: &Target<'_>, force: bool) -> Result<Vec<Item>, BundleError> {
    let temp_dir = match target {
        Target::Dir(d) => d.to_path_buf(),
        Target::File(f) => parent_dir(f),
    };
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(|e| BundleError::Malformed(e.to_string()))?;
    let mut pending: Vec<Pending> = Vec::new();
    let mut manifest: Option<Vec<Item>> = None;
    let mut first = true;
    for entry in entries {
        let mut entry = entry.map_err(|e| BundleError::Malformed(e.to_string()))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if !matches!(kind, tar::EntryType::Regular) {
            let why = match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => "a link",
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => "a device or pipe",
                tar::EntryType::Directory => "a directory",
                _ => "not a regular file",
            };
            return Err(BundleError::Unsafe { name, why });
        }
        if first {
            if name != MARKER {
                return Err(BundleError::NotABundle);
            }
            first = false;
            continue;
        }
        if manifest.is_some() {
            return Err(BundleError::Malformed("members after the manifest".into()));
        }
        if name == MANIFEST {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_MANIFEST)
                .read_to_string(&mut text)
                .map_err(|e| BundleError::Malformed(e.to_string()))?;
            manifest = Some(parse_manifest(&text)?);
            continue;
        }
        check_name(&name).map_err(|_| BundleError::Unsafe { name: name.clone(), why: "not a plain file name" })?;
        if pending.iter().any(|p| p.item.name == name) {
            return Err(BundleError::Malformed(format!("`{name}` appears twice")));
        }
        let dest = match target {
            Target::Dir(d) => d.join(&name),
            Target::File(f) => {
                if !pending.is_empty() {
                    return Err(BundleError::SeveralFiles);
                }
                f.to_path_buf()
            }
        };
        if !force && dest.symlink_metadata().is_ok() {
            return Err(BundleError::Exists { path: dest });
        }
        let temp = tempfile::Builder::new().prefix(".sealpost-").tempfile_in(&temp_dir).map_err(BundleError::Write)?;
        let ((), digest, size) = PipeWriter::run(temp.as_file(), BundleError::Write, |pipe| {
            io::copy(&mut entry, pipe).map(drop).map_err(|e| BundleError::Malformed(e.to_string()))
        })?;
        pending.push(Pending { temp, item: Item { name, size, digest }, dest });
    }
    // Read to the end, so the decryption authenticates the last chunk before anything appears.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| BundleError::Malformed(e.to_string()))?;
    if first {
        return Err(BundleError::NotABundle);
    }
    let manifest = manifest.ok_or_else(|| BundleError::Malformed("no manifest".into()))?;
    if manifest.len() != pending.len() {
        return Err(BundleError::Malformed("the manifest lists other files than the bundle holds".into()));
    }
    for (listed, got) in manifest.iter().zip(&pending) {
        if *listed != got.item {
            return Err(BundleError::ManifestMismatch { name: got.item.name.clone() });
        }
    }
    for p in pending {
        p.temp.as_file().sync_all().map_err(BundleError::Write)?;
        let persisted = if force { p.temp.persist(&p.dest) } else { p.temp.persist_noclobber(&p.dest) };
        persisted.map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                BundleError::Exists { path: p.dest.clone() }
            } else {
                BundleError::Write(e.error)
            }
        })?;
    }
    Ok(manifest)
}

/// The directory of `path`, `.` for a bare file name.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests;
