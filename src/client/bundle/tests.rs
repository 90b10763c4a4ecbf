#![allow(clippy::unwrap_used, reason = "tests")]

use super::*;

fn source(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn item(name: &str, content: &[u8]) -> Item {
    Item {
        name: name.into(),
        size: content.len() as u64,
        digest: format!("sha256:{}", hex::encode(Sha256::digest(content))),
    }
}

#[test]
fn a_bundle_of_several_files_extracts_to_the_same_files_and_manifest() {
    let src = tempfile::tempdir().unwrap();
    let paths = vec![source(src.path(), "a.csv", b"one,two\n"), source(src.path(), "empty", b"")];
    let mut stream = Vec::new();
    let written = write(&paths, &mut stream, |_| {}).unwrap();
    assert_eq!(written, vec![item("a.csv", b"one,two\n"), item("empty", b"")]);
    assert!(is_bundle(&stream));
    let out = tempfile::tempdir().unwrap();
    let read = extract(stream.as_slice(), &Target::Dir(out.path()), false).unwrap();
    assert_eq!(read, written);
    assert_eq!(std::fs::read(out.path().join("a.csv")).unwrap(), b"one,two\n");
    assert_eq!(std::fs::read(out.path().join("empty")).unwrap(), b"");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 2, "no temporary files are left");
}

#[test]
fn extraction_refuses_to_overwrite_unless_forced() {
    let src = tempfile::tempdir().unwrap();
    let paths = vec![source(src.path(), "a", b"new")];
    let mut stream = Vec::new();
    write(&paths, &mut stream, |_| {}).unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("a"), b"old").unwrap();
    let err = extract(stream.as_slice(), &Target::Dir(out.path()), false).unwrap_err();
    assert_eq!(err.to_string(), format!("`{}` exists already", out.path().join("a").display()));
    assert_eq!(std::fs::read(out.path().join("a")).unwrap(), b"old");
    extract(stream.as_slice(), &Target::Dir(out.path()), true).unwrap();
    assert_eq!(std::fs::read(out.path().join("a")).unwrap(), b"new");
}

fn raw_tar(members: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in members {
        let mut h = tar::Header::new_gnu();
        // Bypass the crate's path checks to build hostile archives.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn hostile_members_are_refused_and_nothing_is_written() {
    use tar::EntryType::{Regular, Symlink};
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            raw_tar(&[(MARKER, Regular, b""), ("../escape", Regular, b"x")]),
            "the bundle holds `../escape`, which is not a plain file name: refused",
        ),
        (
            raw_tar(&[(MARKER, Regular, b""), ("/etc/cron.d/x", Regular, b"x")]),
            "the bundle holds `/etc/cron.d/x`, which is not a plain file name: refused",
        ),
        (
            raw_tar(&[(MARKER, Regular, b""), ("link", Symlink, b"")]),
            "the bundle holds `link`, which is a link: refused",
        ),
        (raw_tar(&[("plain.txt", Regular, b"x")]), "the plaintext is not a sealpost bundle"),
    ];
    for (stream, message) in cases {
        let out = tempfile::tempdir().unwrap();
        let err = extract(stream.as_slice(), &Target::Dir(out.path()), false).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}

#[test]
fn a_file_that_differs_from_the_manifest_is_refused() {
    let manifest = format!("{MANIFEST_VERSION}\n{}", item("a", b"other").line());
    let stream = raw_tar(&[
        (MARKER, tar::EntryType::Regular, b""),
        ("a", tar::EntryType::Regular, b"x"),
        (MANIFEST, tar::EntryType::Regular, manifest.as_bytes()),
    ]);
    let out = tempfile::tempdir().unwrap();
    let err = extract(stream.as_slice(), &Target::Dir(out.path()), false).unwrap_err();
    assert_eq!(err.to_string(), "`a` differs from the bundle's manifest");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn duplicate_and_reserved_names_cannot_be_sent() {
    let src = tempfile::tempdir().unwrap();
    let sub = src.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let paths = vec![source(src.path(), "a", b"1"), source(&sub, "a", b"2")];
    assert_eq!(names(&paths).unwrap_err().to_string(), "two files are named `a`");
    assert_eq!(
        check_name(MANIFEST).unwrap_err().to_string(),
        "`.sealpost-manifest` is not a file name a bundle can carry"
    );
}

#[test]
fn the_pipe_writer_writes_and_hashes_every_byte_across_pieces() {
    use sha2::{Digest as _, Sha256};
    let data: Vec<u8> = (0..(3 * (1 << 20) + 12_345)).map(|i: u32| (i % 251) as u8).collect();
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let ((), digest, len) = PipeWriter::run(file.as_file(), BundleError::Write, |pipe| {
        // Odd-sized writes, so pieces fill across write boundaries.
        for part in data.chunks(70_001) {
            io::Write::write_all(pipe, part).map_err(BundleError::Write)?;
        }
        Ok(())
    })
    .expect("written");
    assert_eq!(len, data.len() as u64);
    assert_eq!(digest, format!("sha256:{}", hex::encode(Sha256::digest(&data))));
    assert_eq!(std::fs::read(file.path()).expect("read back"), data);
}

#[test]
fn a_failing_file_write_is_the_error_the_pipe_writer_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ro"), b"").expect("create");
    let read_only = std::fs::File::open(dir.path().join("ro")).expect("open read-only");
    let result = PipeWriter::run(&read_only, BundleError::Write, |pipe| {
        for _ in 0..8 {
            io::Write::write_all(pipe, &[7u8; 1 << 20]).map_err(|e| BundleError::Malformed(e.to_string()))?;
        }
        Ok(())
    });
    assert!(matches!(result, Err(BundleError::Write(_))), "{result:?}");
}
