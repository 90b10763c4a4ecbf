#![allow(clippy::unwrap_used, reason = "tests")]

use std::str::FromStr as _;

use age_core::format::FileKey;
use bech32::Hrp;
use hpke::{Kem as _, Serializable as _};
use ml_kem::{EncodedSizeUser as _, KemCore as _};

use super::*;

/// The age spec's example `p256tag` recipient (c2sp.org/age, "The tagged recipient types").
const SPEC_P256TAG: &str = "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e";

/// A `p256tag` stanza the `age-encryption` npm package (0.3.1) made for [`SPEC_P256TAG`].
const NPM_P256TAG_STANZA: [&str; 2] =
    ["kPOxQw", "BD2cSB08DiU48Fr1mrlspjarlWm4H8k9/k5al3cONwHgKTPZrefqUJ63TeNLQ+J3dnlWGfG4QR+eIp4wBfKKUjM"];

/// The spec's example `mlkem768p256tag` recipient, then a stanza line the npm package made for it.
const NPM_MLKEM768P256TAG: &str = include_str!("npm_mlkem768p256tag.txt");

/// An SSH Ed25519 key, and the tag the Go `age` CLI (1.1.1) wrote in a stanza to it.
const SSH_ED25519: (&str, &str) =
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN", "PYX4ow");

/// An SSH RSA key (2048 bits, `ssh-keygen`), and the tag the Go `age` CLI wrote in a stanza to it.
const SSH_RSA: (&str, &str) = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCnMB18Oq1aFiXYs7Ov2r8DNbUDRkfIX4zlErQz0XqXWlBGF/A+DwmL56C1Q3TjPtD6QCd2w94iz9XpkQNiYMt42HUgrtMoyd1zv4Hh7QMw9ef0Qj0g110fqtuiWwEKvfcqpTS+Z9suVY0zmA0nMrlrvWmRnG2FKfKfyvyQQwAzjN8m3bDm3o6qXfwD6x4eq/EVZiM04J3ECBPLZjQHwpZs6mQwnAyrBoXtcxmOpaic0o3pOK48773tBDYFqNIzVqhZqMNoFHSDn862srJPJjuXMrZidA+KQtA0503FHE5WLJXuT3WiVDp7gASXyoMpvboaqPV6YyeG/3ZkqQlTeXMF",
    "hYjnlg",
);

/// A parsed stanza as the envelope inspector makes it.
fn stanza(kind: &str, args: &[&str]) -> Stanza {
    let args = args.iter().map(|a| (*a).to_owned()).collect();
    Stanza { kind: StanzaKind::of(kind), tag: kind.to_owned(), args, body_len: 32 }
}

/// The stanza `recipient` (an `age` crate recipient) wraps a file key in.
fn wrapped(recipient: &dyn age::Recipient) -> Stanza {
    let file_key = FileKey::init_with_mut(|k| k.copy_from_slice(&[7; 16]));
    let (mut stanzas, _) = recipient.wrap_file_key(&file_key).unwrap();
    let s = stanzas.remove(0);
    Stanza { kind: StanzaKind::of(&s.tag), tag: s.tag, args: s.args, body_len: s.body.len() }
}

/// A new P-256 public key, uncompressed (65 bytes).
fn p256_point() -> Vec<u8> {
    let (_, public) = hpke::kem::DhP256HkdfSha256::gen_keypair(&mut rand::rngs::OsRng);
    public.to_bytes().to_vec()
}

/// A new `age1tag1…` recipient.
fn new_p256tag() -> String {
    let point = p256_point();
    let mut compressed = vec![0x02 | (point[64] & 1)];
    compressed.extend_from_slice(&point[1..33]);
    bech32::encode_lower::<bech32::Bech32>(Hrp::parse_unchecked("age1tag"), &compressed).unwrap()
}

/// A new `age1tagpq1…` recipient.
fn new_mlkem768p256tag() -> String {
    let (_, ek) = ml_kem::MlKem768::generate(&mut rand::rngs::OsRng);
    let mut bytes = ek.as_bytes().to_vec();
    bytes.extend_from_slice(&p256_point());
    bech32::encode_lower::<crate::hybrid::Bech32Long>(Hrp::parse_unchecked("age1tagpq"), &bytes).unwrap()
}

#[test]
fn p256tag_tags_agree_with_a_stanza_the_npm_package_made() {
    let key = KeyTag::of("p256tag", SPEC_P256TAG).unwrap();
    assert_eq!(key.scheme(), TagScheme::P256Tag);
    assert!(key.matches(&stanza("p256tag", &NPM_P256TAG_STANZA)));
    let enc = BASE64_STANDARD_NO_PAD.decode(NPM_P256TAG_STANZA[1]).unwrap();
    assert_eq!(BASE64_STANDARD_NO_PAD.encode(key.stanza_tag(&enc)), "kPOxQw");
    // The same arguments under the other tagged type, or with one bit of the tag changed, do not.
    assert!(!key.matches(&stanza("mlkem768p256tag", &NPM_P256TAG_STANZA)));
    assert!(!key.matches(&stanza("p256tag", &["kPOxQA", NPM_P256TAG_STANZA[1]])));
}

#[test]
fn mlkem768p256tag_tags_hash_only_the_p256_half_as_the_npm_package_does() {
    let (recipient, line) = NPM_MLKEM768P256TAG.trim_end().split_once('\n').unwrap();
    let args: Vec<&str> = line.strip_prefix("-> mlkem768p256tag ").unwrap().split(' ').collect();
    assert_eq!(args[0], "BtPRgA");
    let key = KeyTag::of("mlkem768p256tag", recipient).unwrap();
    assert_eq!(key.scheme(), TagScheme::MlKem768P256Tag);
    assert!(key.matches(&stanza("mlkem768p256tag", &args)));
    // Hashing the whole recipient instead of its P-256 half gives another tag.
    let whole = crate::hybrid::decode(recipient, MLKEM768P256TAG_HRP, MLKEM768P256TAG_PREFIX).unwrap();
    let wrong = KeyTag { key_hash: truncated_sha256(&whole), ..key };
    assert!(!wrong.matches(&stanza("mlkem768p256tag", &args)));
}

#[test]
fn ssh_tags_agree_with_the_go_age_cli() {
    for (recipient, tag) in [SSH_ED25519, SSH_RSA] {
        let kind = recipient.split(' ').next().unwrap();
        let key = KeyTag::of(kind, recipient).unwrap();
        assert_eq!(key.scheme(), TagScheme::Ssh);
        assert_eq!(BASE64_STANDARD_NO_PAD.encode(key.stanza_tag(b"ignored")), tag);
        let args: &[&str] =
            if kind == "ssh-rsa" { &[tag] } else { &[tag, "9TVAAl/F1tg9a4b8HQjHUO0FMCO7pcDoh9eeXTirQTE"] };
        assert!(key.matches(&stanza(kind, args)), "{kind}");
    }
    // An Ed25519 tag on an RSA stanza is no match: the types differ.
    let ed = KeyTag::of("ssh-ed25519", SSH_ED25519.0).unwrap();
    assert!(!ed.matches(&stanza("ssh-rsa", &[SSH_ED25519.1])));
}

#[test]
fn stanzas_the_age_crate_makes_carry_the_tags_computed_here_and_no_other_keys() {
    let ssh = age::ssh::Recipient::from_str(SSH_ED25519.0).unwrap();
    let rsa = age::ssh::Recipient::from_str(SSH_RSA.0).unwrap();
    let cases: Vec<(&str, String, Box<dyn age::Recipient>)> = vec![
        ("ssh-ed25519", SSH_ED25519.0.to_owned(), Box::new(ssh)),
        ("ssh-rsa", SSH_RSA.0.to_owned(), Box::new(rsa)),
        ("p256tag", SPEC_P256TAG.to_owned(), Box::new(age::tag::Recipient::from_str(SPEC_P256TAG).unwrap())),
    ];
    let tagpq = new_mlkem768p256tag();
    let p256 = new_p256tag();
    let mut cases = cases;
    cases.push(("p256tag", p256.clone(), Box::new(age::tag::Recipient::from_str(&p256).unwrap())));
    cases.push(("mlkem768p256tag", tagpq.clone(), Box::new(age::tagpq::Recipient::from_str(&tagpq).unwrap())));
    let others = [new_p256tag(), new_mlkem768p256tag()];
    for (kind, recipient, made) in &cases {
        let s = wrapped(made.as_ref());
        assert_eq!(s.tag, *kind);
        let key = KeyTag::of(kind, recipient).unwrap();
        assert!(key.matches(&s), "{kind}");
        for other in &others {
            if let Some(other) = KeyTag::of(kind, other) {
                assert!(!other.matches(&s), "{kind}");
            }
        }
    }
}

#[test]
fn untagged_types_and_unreadable_keys_have_no_tag() {
    let x25519 = age::x25519::Identity::generate().to_public().to_string();
    assert_eq!(KeyTag::of("X25519", &x25519), None);
    let pq = crate::hybrid::Identity::generate().to_public().to_string();
    assert_eq!(KeyTag::of("mlkem768x25519", &pq), None);
    // A tagged type whose key is another kind, damaged, or of the wrong length.
    assert_eq!(KeyTag::of("p256tag", &x25519), None);
    assert_eq!(KeyTag::of("p256tag", &SPEC_P256TAG[..SPEC_P256TAG.len() - 1]), None);
    assert_eq!(KeyTag::of("mlkem768p256tag", SPEC_P256TAG), None);
    let short = bech32::encode_lower::<bech32::Bech32>(Hrp::parse_unchecked("age1tag"), &[2; 32]).unwrap();
    assert_eq!(KeyTag::of("p256tag", &short), None);
    assert_eq!(KeyTag::of("ssh-rsa", SSH_ED25519.0), None);
    assert_eq!(KeyTag::of("ssh-ed25519", "ssh-ed25519 not*base64"), None);
    assert!(is_tagged(StanzaKind::SshRsa) && !is_tagged(StanzaKind::X25519) && !is_tagged(StanzaKind::Grease));
}

/// A synthetic SSH key whose tag is `tag`.
fn ssh_key(tag: [u8; 4]) -> Option<KeyTag> {
    Some(KeyTag { kind: StanzaKind::SshEd25519, scheme: TagScheme::Ssh, key_hash: tag })
}

/// An `ssh-ed25519` stanza carrying `tag`.
fn ssh_stanza(tag: [u8; 4]) -> Stanza {
    stanza("ssh-ed25519", &[&BASE64_STANDARD_NO_PAD.encode(tag), "9TVAAl/F1tg9a4b8HQjHUO0FMCO7pcDoh9eeXTirQTE"])
}

#[test]
fn every_tagged_stanza_needs_an_addressed_key_and_every_key_its_own_stanza() {
    let (a, b, c) = ([1; 4], [2; 4], [3; 4]);
    let x25519 = stanza("X25519", &["share"]);
    let grease = stanza("x-grease", &["anything"]);
    let keys = [("ssh-ed25519", ssh_key(a)), ("X25519", None), ("ssh-ed25519", ssh_key(b))];
    // In any order, grease and untagged stanzas aside.
    let fits = [ssh_stanza(b), grease.clone(), x25519.clone(), ssh_stanza(a)];
    assert_eq!(match_stanzas(&fits, keys), Ok(()));
    // A stanza for a third key: its place in the header, grease counted.
    let stranger = [ssh_stanza(a), grease, x25519.clone(), ssh_stanza(c)];
    assert_eq!(match_stanzas(&stranger, keys), Err(Mismatch::Stranger { stanza: 4 }));
    // Two stanzas for the first key and none for the second.
    let doubled = [ssh_stanza(a), x25519, ssh_stanza(a)];
    assert_eq!(match_stanzas(&doubled, keys), Err(Mismatch::Unserved { key: 2 }));
    // A key that cannot be read matches nothing.
    let unreadable = [("ssh-ed25519", None)];
    assert_eq!(match_stanzas(&[ssh_stanza(a)], unreadable), Err(Mismatch::Stranger { stanza: 1 }));
    // Two keys that share a tag are both served by two stanzas carrying it.
    let twins = [("ssh-ed25519", ssh_key(a)), ("ssh-ed25519", ssh_key(a))];
    assert_eq!(match_stanzas(&[ssh_stanza(a), ssh_stanza(a)], twins), Ok(()));
    assert_eq!(match_stanzas(&[ssh_stanza(a)], twins), Err(Mismatch::Unserved { key: 1 }));
}

#[test]
fn a_stanza_that_fits_two_keys_moves_aside_for_one_that_fits_only_one() {
    // Stanza 0 fits keys 0 and 1, stanza 1 only key 0: taken greedily, stanza 0 would hold key 0
    // and leave stanza 1 without one.
    let candidates = vec![vec![0, 1], vec![0]];
    let mut served = vec![None; 2];
    for s in 0..candidates.len() {
        assert!(augment(s, &candidates, &mut served, &mut [false; 2]));
    }
    assert_eq!(served, [Some(1), Some(0)]);
    let crowded = vec![vec![0], vec![0]];
    let mut served = vec![None; 2];
    assert!(augment(0, &crowded, &mut served, &mut [false; 2]));
    assert!(!augment(1, &crowded, &mut served, &mut [false; 2]));
}
