//! Our hybrid post-quantum identity (`sealpost::hybrid`, the `mlkem768x25519` stanza) against
//! every C2SP/CCTV age vector that carries an `AGE-SECRET-KEY-PQ-1…` identity, decrypted the way
//! `sealpost fetch` decrypts: the `age` crate's header and STREAM with our identity plugged in
//! beside its own X25519 one. A `success` must give the vector's `file key` (seen through a
//! wrapper around our identity) and a payload with its SHA-256; each failure must be the kind the
//! vector names. Then files our recipient makes pass the keyless envelope gate and open again.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use age::secrecy::ExposeSecret as _;
use sealpost::hybrid;
use sha2::{Digest as _, Sha256};

/// Where the vectors live.
fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/age-cctv/testdata")
}

/// One vector with the fields this test reads.
#[derive(Debug)]
struct Vector {
    name: String,
    expect: String,
    payload: Option<String>,
    file_key: Option<String>,
    identities: Vec<String>,
    armored: bool,
    file: Vec<u8>,
}

fn parse_vector(name: String, raw: &[u8]) -> Vector {
    let split = raw.windows(2).position(|w| w == b"\n\n").expect("blank line after the header");
    let meta = std::str::from_utf8(&raw[..split]).expect("text header");
    let mut v = Vector {
        name,
        expect: String::new(),
        payload: None,
        file_key: None,
        identities: Vec::new(),
        armored: false,
        file: Vec::new(),
    };
    let mut compressed = false;
    for line in meta.lines() {
        let (key, value) = line.split_once(": ").expect("`key: value`");
        match key {
            "expect" => v.expect = value.to_owned(),
            "payload" => v.payload = Some(value.to_owned()),
            "file key" => v.file_key = Some(value.to_owned()),
            "identity" => v.identities.push(value.to_owned()),
            "armored" => v.armored = value == "yes",
            "compressed" => compressed = value == "zlib",
            _ => {}
        }
    }
    let body = &raw[split + 2..];
    v.file = if compressed {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(body).read_to_end(&mut out).expect("a valid zlib stream");
        out
    } else {
        body.to_vec()
    };
    v
}

/// Every vector with a hybrid identity, sorted by name.
fn hybrid_vectors() -> Vec<Vector> {
    let mut out: Vec<Vector> = std::fs::read_dir(vectors_dir())
        .expect("vector directory exists")
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_owned();
            parse_vector(name, &std::fs::read(&path).expect("readable vector"))
        })
        .filter(|v| v.identities.iter().any(|i| hybrid::is_identity_string(i)))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Our identity, remembering the file key it unwrapped (the `age` crate keeps it to itself).
struct Seen {
    inner: hybrid::Identity,
    file_key: Mutex<Option<String>>,
}

impl age::Identity for Seen {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        let result = self.inner.unwrap_stanza(stanza);
        if let Some(Ok(key)) = &result {
            *self.file_key.lock().unwrap() = Some(hex::encode(key.expose_secret()));
        }
        result
    }
}

/// What decrypting a vector came to, in the vectors' own words, with the plaintext released.
fn outcome(v: &Vector, ids: &[Box<dyn age::Identity>]) -> (&'static str, Vec<u8>) {
    let kind = |e: &age::DecryptError| match e {
        // The age crate reports a header its parser rejects (e.g. a non-canonical body) as a file
        // of unknown format: a header failure in the vectors' words.
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => "header failure",
        age::DecryptError::NoMatchingKeys => "no match",
        age::DecryptError::InvalidMac => "HMAC failure",
        age::DecryptError::Io(_) if v.armored => "armor failure",
        _ => "other failure",
    };
    let input = age::armor::ArmoredReader::new(&v.file[..]);
    let decryptor = match age::Decryptor::new(input) {
        Ok(d) => d,
        Err(e) => return (kind(&e), Vec::new()),
    };
    let mut reader = match decryptor.decrypt(ids.iter().map(|i| i.as_ref())) {
        Ok(r) => r,
        Err(e) => return (kind(&e), Vec::new()),
    };
    let mut plaintext = Vec::new();
    match reader.read_to_end(&mut plaintext) {
        Ok(_) => ("success", plaintext),
        Err(_) => ("payload failure", plaintext),
    }
}

#[test]
fn every_hybrid_cctv_vector_decrypts_or_fails_as_it_says() {
    let vectors = hybrid_vectors();
    assert_eq!(vectors.len(), 19, "the 19 hybrid vectors of C2SP/CCTV");
    let mut wrong = Vec::new();
    for v in &vectors {
        let mut ids: Vec<Box<dyn age::Identity>> = Vec::new();
        let mut ours = Vec::new();
        for text in &v.identities {
            if hybrid::is_identity_string(text) {
                let seen = std::sync::Arc::new(Seen { inner: text.parse().unwrap(), file_key: Mutex::new(None) });
                ours.push(seen.clone());
                ids.push(Box::new(ArcIdentity(seen)));
            } else {
                ids.push(Box::new(text.parse::<age::x25519::Identity>().unwrap()));
            }
        }
        let (got, plaintext) = outcome(v, &ids);
        if got != v.expect {
            wrong.push(format!("{}: expected {}, got {got}", v.name, v.expect));
            continue;
        }
        if got == "success" {
            let digest = hex::encode(Sha256::digest(&plaintext));
            if Some(&digest) != v.payload.as_ref() {
                wrong.push(format!("{}: payload SHA-256 {digest}", v.name));
            }
            let keys: Vec<String> = ours.iter().filter_map(|s| s.file_key.lock().unwrap().clone()).collect();
            if keys.first() != v.file_key.as_ref() {
                wrong.push(format!("{}: our identity unwrapped {keys:?}, not {:?}", v.name, v.file_key));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let tally = |e: &str| vectors.iter().filter(|v| v.expect == e).count();
    assert_eq!((tally("success"), tally("no match"), tally("header failure")), (5, 5, 9));
}

/// An `Arc` of our wrapper as an identity, so the test can read it after the `age` crate used it.
struct ArcIdentity(std::sync::Arc<Seen>);

impl age::Identity for ArcIdentity {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.0.unwrap_stanza(stanza)
    }
}

#[test]
fn a_file_our_recipient_makes_passes_the_keyless_gate_and_opens_again() {
    use std::io::Write as _;
    // The vectors' identity, so the file is addressed to a key an independent implementation made.
    let identity: hybrid::Identity =
        "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG".parse().unwrap();
    let recipient = identity.to_public();
    let plaintext: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let mut file = Vec::new();
    let mut writer = encryptor.wrap_output(&mut file).unwrap();
    writer.write_all(&plaintext).unwrap();
    writer.finish().unwrap();

    let envelope = sealpost::envelope::inspect(&file, sealpost::envelope::Limits::default()).unwrap();
    let kinds: Vec<_> = envelope.header.recipient_stanzas().map(|s| s.kind).collect();
    assert_eq!(kinds, [sealpost::envelope::StanzaKind::MlKem768X25519]);
    assert!(kinds[0].is_post_quantum());
    assert!(envelope.header.is_post_quantum());

    let mut out = Vec::new();
    age::Decryptor::new(&file[..])
        .unwrap()
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plaintext);
}
