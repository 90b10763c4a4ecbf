//! Files made by real age implementations pass the envelope inspector; compressed files made
//! by real tools behind a forged header do not.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr as _;

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use sealpost::envelope::{Envelope, EnvelopeError, Inspector, Limits, StanzaKind, inspect};

use crate::common::require_tool;

/// A p256tag recipient (the `age` crate's own test key).
const P256TAG_RECIPIENT: &str = "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e";

/// Plaintext sizes around the STREAM chunk boundaries.
const SIZES: [usize; 7] = [0, 1, 100, 65_536, 65_537, 2 * 65_536, 300 * 1024];

/// Encrypts `plaintext` to `recipients` with the `age` crate, optionally armoured.
fn encrypt(recipients: &[Box<dyn age::Recipient>], plaintext: &[u8], armored: bool) -> Vec<u8> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as _)).expect("recipients are compatible");
    let mut out = Vec::new();
    let format = if armored { age::armor::Format::AsciiArmor } else { age::armor::Format::Binary };
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, format).expect("armour writer");
    let mut writer = encryptor.wrap_output(armor).expect("stream writer");
    writer.write_all(plaintext).expect("encrypt");
    writer.finish().and_then(|a| a.finish()).expect("finish");
    out
}

/// Inspects `file` fed in random chunk sizes.
fn inspect_in_random_chunks(file: &[u8], seed: u64) -> Result<Envelope, EnvelopeError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut inspector = Inspector::new(Limits::default());
    let mut rest = file;
    while !rest.is_empty() {
        let max = if rng.gen_bool(0.5) { 7 } else { 100_000 };
        let (now, later) = rest.split_at(rng.gen_range(1..=max).min(rest.len()));
        inspector.update(now)?;
        rest = later;
    }
    inspector.finish()
}

/// Plaintext of `n` bytes: a mix of text and random bytes, as a real file might be.
fn plaintext(n: usize) -> Vec<u8> {
    b"id,name\n1,alice\n".iter().copied().cycle().take(n).collect()
}

/// An X25519 recipient with a fresh identity.
fn x25519() -> Box<dyn age::Recipient> {
    Box::new(age::x25519::Identity::generate().to_public())
}

#[test]
fn files_from_the_age_crate_pass_binary_and_armoured_in_any_chunks() {
    for &size in &SIZES {
        for armored in [false, true] {
            for n_recipients in [1, 3] {
                let recipients: Vec<_> = (0..n_recipients).map(|_| x25519()).collect();
                let file = encrypt(&recipients, &plaintext(size), armored);
                let env = inspect_in_random_chunks(&file, size as u64)
                    .unwrap_or_else(|e| panic!("{size} bytes, armoured {armored}: {e}"));
                assert_eq!(env.header.armored, armored);
                assert_eq!(env.header.recipient_stanzas().count(), n_recipients);
                assert!(env.header.recipient_stanzas().all(|s| s.kind == StanzaKind::X25519));
                // The age crate adds one grease stanza to every non-passphrase file.
                assert_eq!(env.header.stanzas.len(), n_recipients + 1);
                let chunks = size.div_ceil(65_536).max(1) as u64;
                assert_eq!(env.chunks, chunks, "{size}");
                if !armored {
                    assert_eq!(env.payload_len, (file.len() - env.header.header_len) as u64);
                }
            }
        }
    }
}

#[test]
fn passphrase_and_tagged_files_from_the_age_crate_are_reported_for_policy() {
    let mut scrypt = age::scrypt::Recipient::new(age::secrecy::SecretString::from("hunter2".to_owned()));
    scrypt.set_work_factor(10);
    let file = encrypt(&[Box::new(scrypt)], &plaintext(1000), false);
    let env = inspect(&file, Limits::default()).expect("scrypt files are well formed");
    assert!(env.header.has_passphrase());
    assert_eq!(env.header.stanzas.len(), 1);

    let tag = age::tag::Recipient::from_str(P256TAG_RECIPIENT).expect("p256tag recipient");
    let file = encrypt(&[Box::new(tag)], &plaintext(1000), true);
    let env = inspect_in_random_chunks(&file, 1).expect("p256tag files pass");
    let kinds: Vec<_> = env.header.recipient_stanzas().map(|s| s.kind).collect();
    assert_eq!(kinds, [StanzaKind::P256Tag]);
}

#[test]
fn files_from_the_go_age_cli_pass() {
    let Some(age_bin) = require_tool("age") else { return };
    let version = Command::new(&age_bin).arg("--version").output().expect("run age --version");
    println!("Go age {}", String::from_utf8_lossy(&version.stdout).trim());
    let recipients: Vec<String> = (0..2).map(|_| age::x25519::Identity::generate().to_public().to_string()).collect();
    for &size in &SIZES {
        for armored in [false, true] {
            let mut cmd = Command::new(&age_bin);
            for r in &recipients {
                cmd.args(["-r", r]);
            }
            if armored {
                cmd.arg("-a");
            }
            let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("run age");
            let mut stdin = child.stdin.take().expect("stdin");
            let input = plaintext(size);
            let writer = std::thread::spawn(move || stdin.write_all(&input));
            let out = child.wait_with_output().expect("age output");
            writer.join().expect("writer thread").expect("write plaintext");
            assert!(out.status.success(), "age failed: {}", String::from_utf8_lossy(&out.stderr));
            let env = inspect_in_random_chunks(&out.stdout, size as u64)
                .unwrap_or_else(|e| panic!("Go age, {size} bytes, armoured {armored}: {e}"));
            assert_eq!(env.header.recipient_stanzas().count(), 2);
        }
    }
}

/// A forged header: one X25519 stanza with a valid share and a random body.
fn forged_header() -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut body = [0u8; 32];
    rng.fill_bytes(&mut body);
    let mut mac = [0u8; 32];
    rng.fill_bytes(&mut mac);
    let mut share = [0u8; 32];
    share[0] = 9;
    format!(
        "age-encryption.org/v1\n-> X25519 {}\n{}\n--- {}\n",
        BASE64_STANDARD_NO_PAD.encode(share),
        BASE64_STANDARD_NO_PAD.encode(body),
        BASE64_STANDARD_NO_PAD.encode(mac),
    )
    .into_bytes()
}

/// Realistic compressible text: CSV rows with varying numbers and names.
fn csv_text(n: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
    let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
    let mut out = b"id,name,amount,city\n".to_vec();
    while out.len() < n {
        let row = format!(
            "{},{},{}.{:02},{}\n",
            rng.gen_range(1..1_000_000),
            names[rng.gen_range(0..names.len())],
            rng.gen_range(0..10_000),
            rng.gen_range(0..100),
            ["Bern", "Zurich", "Basel", "Geneva"][rng.gen_range(0..4)],
        );
        out.extend_from_slice(row.as_bytes());
    }
    out.truncate(n);
    out
}

/// Runs `tool args` with `input` on stdin and answers what it wrote.
fn compress(tool: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", tool.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("compressor output");
    writer.join().expect("writer thread").expect("write input");
    assert!(out.status.success(), "{} failed: {}", tool.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn compressed_files_from_real_tools_behind_a_forged_header_are_refused() {
    let tools: [(&str, &[&str]); 5] = [
        ("gzip", &["-c", "-9"]),
        ("bzip2", &["-c"]),
        ("xz", &["-c"]),
        ("zstd", &["-c", "-q"]),
        ("zip", &["-q", "-", "-"]),
    ];
    let mut found = Vec::new();
    for (tool, args) in tools {
        let Some(path) = require_tool(tool) else { return };
        found.push((tool, path, args));
    }
    let mut refused = 0;
    let mut passed = Vec::new();
    for size in [2_000, 20_000, 200_000, 3_000_000] {
        let text = csv_text(size);
        for (tool, path, args) in &found {
            let compressed = compress(path, args, &text);
            let mut file = forged_header();
            file.extend_from_slice(&compressed);
            match inspect(&file, Limits::default()) {
                Err(e) => {
                    println!("{tool:>6} {size:>8} -> {} bytes: {e}", compressed.len());
                    refused += 1;
                }
                Ok(_) => {
                    println!("{tool:>6} {size:>8} -> {} bytes: passed", compressed.len());
                    passed.push(format!("{tool} {size}"));
                }
            }
        }
    }
    println!("refused {refused}, passed {}: {}", passed.len(), passed.join(", "));
    assert!(passed.is_empty(), "compressed files passed: {passed:?}");
}
