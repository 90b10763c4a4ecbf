//! The client's bundle extraction (`sealpost fetch`): a tar stream that arrives from whoever
//! encrypted it, so it is untrusted after decryption.
//!
//! Properties: extraction into an empty directory either succeeds, and then the directory holds
//! exactly the files the manifest lists, each with its size and SHA-256, and nothing else; or
//! it fails, and then nothing at all appears (no file, no temporary file left behind), whatever
//! the member types, names (`..`, absolute, links, devices) and sizes. A bundle written by
//! `bundle::write` from files the input names and fills extracts to the same files.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use sealpost::client::bundle::{self, Item, Target};
use sha2::{Digest as _, Sha256};

/// The directory's files, by name, with their bytes (panics on anything but a regular file).
fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("readable")
        .map(|e| {
            let e = e.expect("entry");
            assert!(e.file_type().expect("type").is_file(), "extraction made {:?}", e.path());
            (e.file_name().into_string().expect("UTF-8 names"), fs::read(e.path()).expect("readable"))
        })
        .collect()
}

fn matches(items: &[Item], files: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(items.len(), files.len(), "the files are the manifest's");
    for item in items {
        let bytes = files.get(&item.name).expect("every listed file is there");
        assert_eq!(bytes.len() as u64, item.size);
        assert_eq!(format!("sha256:{}", hex::encode(Sha256::digest(bytes))), item.digest);
    }
}

/// Reads up to three (name, contents) pairs from the input: a length byte and bytes each.
fn files(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 3 {
        let Some((&n, tail)) = rest.split_first() else { break };
        let (name, tail) = tail.split_at(usize::from(n % 16).min(tail.len()));
        let Some((&m, tail)) = tail.split_first() else { break };
        let (body, tail) = tail.split_at(usize::from(m).min(tail.len()));
        out.push((String::from_utf8_lossy(name).into_owned(), body.to_vec()));
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("output directory");
    match bundle::extract(data, &Target::Dir(&out), false) {
        Ok(items) => matches(&items, &listing(&out)),
        Err(_) => assert!(listing(&out).is_empty(), "a refused bundle left files behind"),
    }
    let one = dir.path().join("one");
    fs::create_dir(&one).expect("output directory");
    match bundle::extract(data, &Target::File(&one.join("single")), false) {
        Ok(items) => {
            assert_eq!(items.len(), 1);
            let files = listing(&one);
            assert_eq!(files.len(), 1);
            let bytes = files.get("single").expect("the one file");
            assert_eq!(bytes.len() as u64, items[0].size);
        }
        Err(_) => assert!(listing(&one).is_empty(), "a refused bundle left files behind"),
    }

    // Round trip through the writer.
    let src = dir.path().join("src");
    fs::create_dir(&src).expect("source directory");
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut expected = BTreeMap::new();
    for (name, body) in files(data) {
        if bundle::check_name(&name).is_err() || expected.contains_key(&name) {
            return;
        }
        let path = src.join(&name);
        if fs::write(&path, &body).is_err() {
            return;
        }
        paths.push(path);
        expected.insert(name, body);
    }
    let mut tar = Vec::new();
    let items = bundle::write(&paths, &mut tar, |_| {}).expect("files with valid names bundle");
    assert!(bundle::is_bundle(&tar));
    let back = dir.path().join("back");
    fs::create_dir(&back).expect("output directory");
    let extracted = bundle::extract(tar.as_slice(), &Target::Dir(&back), false).expect("a written bundle extracts");
    assert_eq!(extracted, items);
    assert_eq!(listing(&back), expected);
});
