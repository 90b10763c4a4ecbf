//! The addressee check on the recipient types whose stanzas carry a tag of their key, against the
//! real gateway: the age spec's tagged types `p256tag` (`age1tag1…`) and `mlkem768p256tag`
//! (`age1tagpq1…`), and age's SSH types (`ssh-ed25519`, `ssh-rsa`). A file encrypted to the
//! addressed keys passes; one with a stanza for a stranger's key (the count still right) is refused
//! with `recipient_mismatch`, as is one with two stanzas for one key and none for another; `sealpost
//! send` encrypts to these keys and what it makes opens elsewhere.
//!
//! Independent implementations: the `age-encryption` npm package (encryption to the tagged types;
//! run under Node by `web/test/age-tool.mjs`) and the Go `age` CLI (SSH keys both ways; Debian's
//! 1.1 has no tagged types). No library at hand has a software identity for the tagged types (they
//! are meant for hardware keys, behind plugins), so the `p256tag` files are opened by
//! [`P256Identity`], written here from the spec over rust-hpke; nothing here can open a
//! `mlkem768p256tag` stanza, so for that type the test checks what the gateway checks: the tags.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use age_core::format::{FileKey, Stanza};
use age_core::primitives::hpke_open;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use bech32::Hrp;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable as _, Kem as _, Serializable as _};
use ml_kem::{EncodedSizeUser as _, KemCore as _};
use sealpost::client::seal;
use sealpost::tagged::KeyTag;

use crate::client::s;
use crate::common::run_with_stdin as run;
use crate::common::{
    TestServer, code, noise, output_text as text, require_age_npm, require_tool, sealpost_cli as sealpost,
    three_parties as parties, values,
};

/// A software identity for `p256tag` stanzas, from the age spec (c2sp.org/age, "p256tag recipient
/// stanza"): the recipient is the compressed P-256 public key as Bech32 with HRP `age1tag`; a
/// stanza opens with HPKE `OpenBase` (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305),
/// `info` = `age-encryption.org/p256tag`, an empty `aad`, its third argument the encapsulated key.
/// It tries every `p256tag` stanza and ignores the tag, so it checks nothing the gateway checks.
struct P256Identity {
    secret: <DhP256HkdfSha256 as hpke::Kem>::PrivateKey,
    recipient: String,
}

impl P256Identity {
    fn generate() -> Self {
        let (secret, public) = DhP256HkdfSha256::gen_keypair(&mut rand::rngs::OsRng);
        Self { secret, recipient: p256tag_recipient(&public.to_bytes()) }
    }
}

impl age::Identity for P256Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != "p256tag" {
            return None;
        }
        let [_, enc] = stanza.args.as_slice() else { return Some(Err(age::DecryptError::InvalidHeader)) };
        let enc = BASE64_STANDARD_NO_PAD.decode(enc).ok()?;
        let enc = <DhP256HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&enc).ok()?;
        let key =
            hpke_open::<DhP256HkdfSha256>(&enc, &self.secret, b"age-encryption.org/p256tag", &stanza.body).ok()?;
        let key: [u8; 16] = key.try_into().ok()?;
        Some(Ok(FileKey::init_with_mut(|k| *k = key)))
    }
}

/// `age1tag1…` of an uncompressed P-256 point (SEC 1), compressed.
fn p256tag_recipient(point: &[u8]) -> String {
    let mut compressed = vec![0x02 | (point[64] & 1)];
    compressed.extend_from_slice(&point[1..33]);
    bech32::encode_lower::<bech32::Bech32>(Hrp::parse_unchecked("age1tag"), &compressed).unwrap()
}

/// A new `age1tagpq1…` recipient: an ML-KEM-768 encapsulation key, then an uncompressed P-256 point.
fn new_mlkem768p256tag() -> String {
    let (_, ek) = ml_kem::MlKem768::generate(&mut rand::rngs::OsRng);
    let (_, point) = DhP256HkdfSha256::gen_keypair(&mut rand::rngs::OsRng);
    let mut bytes = ek.as_bytes().to_vec();
    bytes.extend_from_slice(&point.to_bytes());
    bech32::encode_lower::<sealpost::hybrid::Bech32Long>(Hrp::parse_unchecked("age1tagpq"), &bytes).unwrap()
}

/// Encrypts `plaintext` to the directory keys `keys` as `sealpost send` does (the `age` crate).
fn encrypt(keys: &[&str], plaintext: &[u8]) -> Vec<u8> {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    let recipients = seal::recipients(&keys).unwrap();
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out).unwrap();
    writer.write_all(plaintext).unwrap();
    writer.finish().unwrap();
    out
}

/// Decrypts a binary age file with `identity`.
fn decrypt(identity: &dyn age::Identity, file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    age::Decryptor::new(file).unwrap().decrypt(std::iter::once(identity)).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// The arguments of stanza `n` (from 1) of a binary age file's header.
fn stanza_args(file: &[u8], n: usize) -> Vec<String> {
    let header = &file[..file.windows(5).position(|w| w == b"\n--- ").unwrap()];
    let line = std::str::from_utf8(header).unwrap().lines().filter(|l| l.starts_with("-> ")).nth(n - 1).unwrap();
    line.split(' ').skip(2).map(str::to_owned).collect()
}

/// The file with the first argument (the tag) of stanza `n` replaced by `tag`; the header MAC no
/// longer verifies, which only the recipient can tell.
fn retag(file: &[u8], n: usize, tag: [u8; 4]) -> Vec<u8> {
    let end = file.windows(5).position(|w| w == b"\n--- ").unwrap();
    let header = std::str::from_utf8(&file[..end]).unwrap();
    let mut seen = 0;
    let lines: Vec<String> = header
        .split('\n')
        .map(|line| {
            if !line.starts_with("-> ") {
                return line.to_owned();
            }
            seen += 1;
            if seen != n {
                return line.to_owned();
            }
            let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
            fields[2] = BASE64_STANDARD_NO_PAD.encode(tag);
            fields.join(" ")
        })
        .collect();
    let mut out = lines.join("\n").into_bytes();
    out.extend_from_slice(&file[end..]);
    out
}

/// The tag a stanza with encapsulated key `enc` carries for the directory key `recipient`.
fn tag_for(stanza_type: &str, recipient: &str, enc: &str) -> [u8; 4] {
    KeyTag::of(stanza_type, recipient).unwrap().stanza_tag(&BASE64_STANDARD_NO_PAD.decode(enc).unwrap())
}

/// `sealpost keys add RECIPIENT` as `token`; answers the key's fingerprint.
async fn add_key(server: &TestServer, token: &str, recipient: &str, stanza_type: &str) -> String {
    let added = sealpost(server, token, &["keys", "add", recipient]).await;
    let (out, err) = text(&added);
    assert_eq!(added.status.code(), Some(0), "{err}");
    let canonical = recipient.split(' ').take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(err.trim(), format!("registered {stanza_type} key {canonical}"));
    out.trim().to_owned()
}

/// Uploads `file` from bob to `to` and asserts the refusal, its message and the hint after it.
async fn refused(server: &TestServer, bob: &str, to: &[&str], file: Vec<u8>, message: &str) {
    let (status, body) = server.upload(bob, to, "", file).await;
    assert_eq!((status, code(&body)), (422, "recipient_mismatch"), "{body}");
    let hint = format!("{message}: encrypt with `age -r` to every key listed at {}/api/v1/keys/hmpps/", server.url);
    assert!(body["error"]["message"].as_str().unwrap().starts_with(&hint), "{body}");
}

/// The links `sealpost send` printed (after the transfer id), by recipient.
fn links(out: &str) -> Vec<(String, String)> {
    out.lines()
        .skip(1)
        .map(|l| {
            let (who, url) = l.split_once(' ').unwrap();
            (who.to_owned(), url.to_owned())
        })
        .collect()
}

/// The `reason` of every `upload.refused` audit entry, in order.
async fn refusal_reasons(server: &TestServer) -> Vec<String> {
    values(&server.entries("upload.refused").await, "reason")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p256tag_stanzas_must_carry_the_tags_of_the_addressed_keys_and_send_encrypts_to_them() {
    let Some((node, tool)) = require_age_npm() else { return };
    let server = TestServer::start().await;
    let (bob, alice, carol) = parties(&server).await;
    let (alice_id, carol_id, stranger) = (P256Identity::generate(), P256Identity::generate(), P256Identity::generate());
    add_key(&server, &alice, &alice_id.recipient, "p256tag").await;
    let carol_fingerprint = add_key(&server, &carol, &carol_id.recipient, "p256tag").await;
    let (status, keys) = server.get(&bob, "/api/v1/keys/hmpps/alice").await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["keys"][0]["stanza_type"], "p256tag");
    let both = ["hmpps/alice", "hmpps/carol"];

    // The npm package encrypts to both keys: the gateway finds each key's tag and lets it through,
    // and each recipient's identity opens what the gateway hands out.
    let plaintext = noise(100_000);
    let from_npm = run(&node, &[&s(&tool), "encrypt", &alice_id.recipient, &carol_id.recipient], &plaintext);
    let (status, answer) = server.upload(&bob, &both, "", from_npm.clone()).await;
    assert_eq!(status, 201, "{answer}");
    let holders = |who: &str| if who == "hmpps/alice" { (&alice, &alice_id) } else { (&carol, &carol_id) };
    for link in answer["links"].as_array().unwrap() {
        let (token, identity) = holders(link["recipient"].as_str().unwrap());
        let (status, ciphertext) = server.redeem(token, link["url"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(decrypt(identity, &ciphertext), plaintext);
    }

    // Encrypted to alice and a stranger, but addressed to alice and carol: the count and the
    // types are right, the stranger's stanza is not.
    let to_stranger = encrypt(&[&alice_id.recipient, &stranger.recipient], b"misaddressed");
    let second = "the file's `p256tag` stanza (stanza 2 of the header) carries a tag that matches no key of the \
                  addressed recipients: it was encrypted to someone else's key";
    refused(&server, &bob, &both, to_stranger, second).await;

    // The npm file with carol's stanza re-tagged for the stranger's key: refused the same way.
    let enc = stanza_args(&from_npm, 2)[1].clone();
    let retagged = retag(&from_npm, 2, tag_for("p256tag", &stranger.recipient, &enc));
    refused(&server, &bob, &both, retagged, second).await;

    // Re-tagged for alice's key instead: both stanzas carry alice's tags, carol's key has none.
    let doubled = retag(&from_npm, 2, tag_for("p256tag", &alice_id.recipient, &enc));
    let carol_has_none = format!(
        "the file has no `p256tag` stanza for hmpps/carol's key {carol_fingerprint}: the stanzas of that type carry \
         the tags of other keys"
    );
    refused(&server, &bob, &both, doubled, &carol_has_none).await;

    // Refused uploads are logged as such, with the finer reason.
    assert_eq!(
        refusal_reasons(&server).await,
        ["stanza_for_another_key", "stanza_for_another_key", "key_without_stanza"]
    );
    assert_eq!(values(&server.entries("upload.refused").await, "code"), ["recipient_mismatch"; 3]);

    // `sealpost send` encrypts to both keys (the `age` crate's p256tag recipient); the gateway
    // checks its tags, and the spec-built identities open the bundle.
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("report.csv");
    std::fs::write(&report, b"id,name\n1,Example Person\n").unwrap();
    let sent = sealpost(&server, &bob, &["send", &s(&report), "--to", "hmpps/alice", "--to", "hmpps/carol"]).await;
    let (sent_out, sent_err) = text(&sent);
    assert_eq!(sent.status.code(), Some(0), "{sent_err}");
    assert!(sent_err.contains("sealpost: hmpps/alice: p256tag key sha256:"), "{sent_err}");
    let sent_links = links(&sent_out);
    assert_eq!(sent_links.len(), 2, "{sent_out}");
    for (who, link) in sent_links {
        let (token, identity) = holders(&who);
        let (status, ciphertext) = server.redeem(token, &link).await;
        assert_eq!(status, 200, "{who}");
        assert!(ciphertext.starts_with(b"age-encryption.org/v1\n-> p256tag "), "{who}");
        let tar = decrypt(identity, &ciphertext);
        assert_eq!(untar(work.path(), &tar, "report.csv"), b"id,name\n1,Example Person\n", "{who}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlkem768p256tag_stanzas_are_checked_by_tag_from_the_npm_package_and_from_send() {
    let Some((node, tool)) = require_age_npm() else { return };
    let server = TestServer::start().await;
    let (bob, alice, _) = parties(&server).await;
    let (alice_key, stranger) = (new_mlkem768p256tag(), new_mlkem768p256tag());
    add_key(&server, &alice, &alice_key, "mlkem768p256tag").await;

    let from_npm = run(&node, &[&s(&tool), "encrypt", &alice_key], b"post-quantum, tagged");
    let (status, answer) = server.upload(&bob, &["hmpps/alice"], "", from_npm.clone()).await;
    assert_eq!(status, 201, "{answer}");

    let first = "the file's `mlkem768p256tag` stanza (stanza 1 of the header) carries a tag that matches no key of \
                 the addressed recipients: it was encrypted to someone else's key";
    let from_stranger = run(&node, &[&s(&tool), "encrypt", &stranger], b"misaddressed");
    refused(&server, &bob, &["hmpps/alice"], from_stranger, first).await;
    refused(&server, &bob, &["hmpps/alice"], encrypt(&[&stranger], b"misaddressed"), first).await;
    let enc = stanza_args(&from_npm, 1)[1].clone();
    let retagged = retag(&from_npm, 1, tag_for("mlkem768p256tag", &stranger, &enc));
    refused(&server, &bob, &["hmpps/alice"], retagged, first).await;

    let work = tempfile::tempdir().unwrap();
    let notes = work.path().join("notes.txt");
    std::fs::write(&notes, b"notes").unwrap();
    let sent = sealpost(&server, &bob, &["send", &s(&notes), "--to", "hmpps/alice"]).await;
    let (sent_out, sent_err) = text(&sent);
    assert_eq!(sent.status.code(), Some(0), "{sent_err}");
    assert!(sent_err.contains("sealpost: hmpps/alice: mlkem768p256tag key sha256:"), "{sent_err}");
    assert!(!sent_err.contains("only some of the recipients' keys are post-quantum"), "{sent_err}");
    let (_, link) = links(&sent_out).remove(0);
    let (status, ciphertext) = server.redeem(&alice, &link).await;
    assert_eq!(status, 200);
    assert!(ciphertext.starts_with(b"age-encryption.org/v1\n-> mlkem768p256tag "));
    assert_eq!(refusal_reasons(&server).await, ["stanza_for_another_key"; 3]);
}

/// `ssh-keygen -t KIND` into `dir/name`; answers the private key's path and the public key line.
fn ssh_key(ssh_keygen: &Path, dir: &Path, name: &str, kind: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    run(ssh_keygen, &["-q", "-t", kind, "-N", "", "-C", &format!("{name}@example"), "-f", &s(&path)], b"");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (path, public.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_stanzas_must_carry_the_addressed_keys_tags_and_send_to_ssh_keys_opens_with_go_age() {
    let (Some(age), Some(ssh_keygen)) = (require_tool("age"), require_tool("ssh-keygen")) else { return };
    let server = TestServer::start_with(|c| c.allow_ssh_recipients = true).await;
    let (bob, alice, carol) = parties(&server).await;
    let work = tempfile::tempdir().unwrap();
    let (alice_key, alice_public) = ssh_key(&ssh_keygen, work.path(), "alice", "ed25519");
    let (carol_key, carol_public) = ssh_key(&ssh_keygen, work.path(), "carol", "rsa");
    let (_, stranger_ed25519) = ssh_key(&ssh_keygen, work.path(), "stranger", "ed25519");
    let (_, stranger_rsa) = ssh_key(&ssh_keygen, work.path(), "stranger-rsa", "rsa");
    add_key(&server, &alice, &alice_public, "ssh-ed25519").await;
    add_key(&server, &carol, &carol_public, "ssh-rsa").await;
    let both = ["hmpps/alice", "hmpps/carol"];

    // The Go CLI encrypts to both keys: accepted.
    let plaintext = noise(50_000);
    let go = |keys: &[&str], plaintext: &[u8]| {
        let mut args = Vec::new();
        for k in keys {
            args.extend(["-r", k]);
        }
        run(&age, &args, plaintext)
    };
    let (status, answer) = server.upload(&bob, &both, "", go(&[&alice_public, &carol_public], &plaintext)).await;
    assert_eq!(status, 201, "{answer}");

    // To alice and a stranger's RSA key (the types still match): carol's stanza is missing and the
    // stranger's matches no addressed key.
    let second = "the file's `ssh-rsa` stanza (stanza 2 of the header) carries a tag that matches no key of the \
                  addressed recipients: it was encrypted to someone else's key";
    refused(&server, &bob, &both, go(&[&alice_public, &stranger_rsa], b"misaddressed"), second).await;
    let first = "the file's `ssh-ed25519` stanza (stanza 1 of the header) carries a tag that matches no key of the \
                 addressed recipients: it was encrypted to someone else's key";
    refused(&server, &bob, &["hmpps/alice"], go(&[&stranger_ed25519], b"misaddressed"), first).await;
    assert_eq!(refusal_reasons(&server).await, ["stanza_for_another_key"; 2]);

    // `sealpost send` to both (the `age` crate's SSH recipients): the Go CLI opens each bundle
    // with the recipient's SSH private key.
    let report = work.path().join("report.csv");
    std::fs::write(&report, b"id,name\n1,Example Person\n").unwrap();
    let sent = sealpost(&server, &bob, &["send", &s(&report), "--to", "hmpps/alice", "--to", "hmpps/carol"]).await;
    let (sent_out, sent_err) = text(&sent);
    assert_eq!(sent.status.code(), Some(0), "{sent_err}");
    let sent_links = links(&sent_out);
    assert_eq!(sent_links.len(), 2, "{sent_out}");
    for (who, link) in sent_links {
        let (token, key) = if who == "hmpps/alice" { (&alice, &alice_key) } else { (&carol, &carol_key) };
        let (status, ciphertext) = server.redeem(token, &link).await;
        assert_eq!(status, 200, "{who}");
        let tar = run(&age, &["-d", "-i", &s(key)], &ciphertext);
        assert_eq!(untar(work.path(), &tar, "report.csv"), b"id,name\n1,Example Person\n", "{who}");
    }
}

/// Unpacks the tar `bytes` into a new directory under `dir` and reads `name` from it.
fn untar(dir: &Path, bytes: &[u8], name: &str) -> Vec<u8> {
    let into = tempfile::tempdir_in(dir).unwrap();
    let tar = into.path().join("bundle.tar");
    std::fs::write(&tar, bytes).unwrap();
    let status = Command::new("tar").args(["-xf", &s(&tar), "-C", &s(into.path())]).status().unwrap();
    assert!(status.success());
    std::fs::read(into.path().join(name)).unwrap()
}
