#![allow(clippy::unwrap_used, reason = "tests")]

use std::io::{Read as _, Write as _};

use age::Identity as _;
use bech32::{ByteIterExt as _, Fe32, Fe32IterExt as _};
use proptest::prelude::*;

use super::*;

/// The example identity of the age spec (c2sp.org/age, the MLKEM768-X25519 recipient type).
const SPEC_IDENTITY: &str = "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR";

/// The spec's recipient for [`SPEC_IDENTITY`].
const SPEC_RECIPIENT: &str = include_str!("spec_recipient.txt");

fn encrypt(recipients: &[&dyn age::Recipient], plaintext: &[u8]) -> Result<Vec<u8>, age::EncryptError> {
    let encryptor = age::Encryptor::with_recipients(recipients.iter().copied())?;
    let mut out = Vec::new();
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plaintext)?;
    writer.finish()?;
    Ok(out)
}

fn decrypt(identity: &dyn age::Identity, file: &[u8]) -> Result<Vec<u8>, age::DecryptError> {
    let decryptor = age::Decryptor::new(file)?;
    let mut reader = decryptor.decrypt(std::iter::once(identity))?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    Ok(out)
}

/// A Bech32 string of `hrp` over `bytes`, with `tweak` applied to the last data character
/// before the checksum is computed (so the checksum is valid).
fn bech32_with_last(hrp: &str, bytes: &[u8], tweak: impl Fn(Fe32) -> Fe32) -> String {
    let mut fes: Vec<Fe32> = bytes.iter().copied().bytes_to_fes().collect();
    let last = fes.pop().unwrap();
    fes.push(tweak(last));
    fes.into_iter().with_checksum::<Bech32Long>(&Hrp::parse_unchecked(hrp)).chars().collect()
}

#[test]
fn the_spec_identity_has_the_spec_recipient() {
    let identity: Identity = SPEC_IDENTITY.parse().unwrap();
    assert_eq!(identity.to_public().to_string(), SPEC_RECIPIENT.trim());
    assert_eq!(identity.to_string().expose_secret(), SPEC_IDENTITY);
    let recipient: Recipient = SPEC_RECIPIENT.trim().parse().unwrap();
    assert_eq!(recipient, identity.to_public());
    assert!(SPEC_RECIPIENT.trim().len() > 90, "longer than BIP 173 allows");
}

#[test]
fn key_strings_parse_in_either_case_and_print_canonically() {
    let identity = Identity::generate();
    let recipient = identity.to_public();
    let upper: Recipient = recipient.to_string().to_uppercase().parse().unwrap();
    assert_eq!(upper.to_string(), recipient.to_string());
    let lower: Identity = identity.to_string().expose_secret().to_lowercase().parse().unwrap();
    assert_eq!(lower.to_public(), recipient);
    assert!(is_recipient_string(&recipient.to_string().to_uppercase()));
    assert!(is_identity_string(&identity.to_string().expose_secret().to_lowercase()));
    assert!(!is_recipient_string("age1qqqq"));
}

#[test]
fn other_and_damaged_key_strings_are_refused_with_the_reason() {
    let x25519 = age::x25519::Identity::generate();
    assert_eq!(
        x25519.to_public().to_string().parse::<Recipient>(),
        Err(KeyStringError::WrongKind { expected: RECIPIENT_PREFIX })
    );
    assert_eq!(
        x25519.to_string().expose_secret().parse::<Identity>().map(|_| ()),
        Err(KeyStringError::WrongKind { expected: IDENTITY_PREFIX })
    );
    let pq = Identity::generate();
    assert_eq!(
        pq.to_string().expose_secret().parse::<Recipient>(),
        Err(KeyStringError::WrongKind { expected: RECIPIENT_PREFIX })
    );
    let good = pq.to_public().to_string();
    let mut damaged = good.clone().into_bytes();
    let at = good.len() / 2;
    damaged[at] = if damaged[at] == b'q' { b'p' } else { b'q' };
    assert_eq!(String::from_utf8(damaged).unwrap().parse::<Recipient>(), Err(KeyStringError::Bech32));
    let mixed = format!("{}{}", &good[..20].to_uppercase(), &good[20..]);
    assert_eq!(mixed.parse::<Recipient>(), Err(KeyStringError::Bech32));
    let short = bech32::encode_lower::<Bech32Long>(Hrp::parse_unchecked(RECIPIENT_HRP), &[7; 32]).unwrap();
    assert_eq!(short.parse::<Recipient>(), Err(KeyStringError::Length { expected: 1216, found: 32 }));
    let long_id = bech32::encode_upper::<Bech32Long>(Hrp::parse_unchecked(IDENTITY_HRP), &[7; 33]).unwrap();
    assert_eq!(long_id.parse::<Identity>().map(|_| ()), Err(KeyStringError::Length { expected: 32, found: 33 }));
}

#[test]
fn a_recipient_whose_ml_kem_key_is_not_reduced_is_refused() {
    let mut bytes = Identity::generate().to_public().bytes();
    // The first 12-bit coefficient of the ML-KEM key, set to 4095 >= q = 3329.
    bytes[0] = 0xff;
    bytes[1] |= 0x0f;
    let s = bech32::encode_lower::<Bech32Long>(Hrp::parse_unchecked(RECIPIENT_HRP), &bytes).unwrap();
    assert_eq!(s.parse::<Recipient>(), Err(KeyStringError::InvalidKey));
}

#[test]
fn a_key_string_with_padding_bits_set_is_not_canonical() {
    let seed = [42u8; 32];
    let canonical = bech32_with_last(IDENTITY_HRP, &seed, |fe| fe).to_uppercase();
    assert_eq!(canonical, Identity::from_seed(&seed).to_string().expose_secret());
    // 32 bytes are 256 bits: the last of 52 characters carries 1 data bit and 4 padding bits.
    let padded = bech32_with_last(IDENTITY_HRP, &seed, |fe| Fe32::try_from(fe.to_u8() | 1).unwrap());
    assert_eq!(padded.parse::<Identity>().map(|_| ()), Err(KeyStringError::NotCanonical));
}

#[test]
fn a_file_encrypted_to_a_recipient_opens_with_its_identity_only() {
    let identity = Identity::generate();
    let file = encrypt(&[&identity.to_public()], b"offender records").unwrap();
    assert_eq!(decrypt(&identity, &file).unwrap(), b"offender records");
    let header = String::from_utf8_lossy(&file[..file.len().min(1700)]).into_owned();
    assert!(header.contains("\n-> mlkem768x25519 "), "{header}");
    let other = Identity::generate();
    assert!(matches!(decrypt(&other, &file), Err(age::DecryptError::NoMatchingKeys)));
    let x25519 = age::x25519::Identity::generate();
    assert!(matches!(decrypt(&x25519, &file), Err(age::DecryptError::NoMatchingKeys)));
}

#[test]
fn the_age_crate_refuses_to_mix_it_with_classical_recipients_unless_told() {
    let pq = Identity::generate();
    let classical = age::x25519::Identity::generate();
    let refused = encrypt(&[&pq.to_public(), &classical.to_public()], b"x");
    assert!(matches!(refused, Err(age::EncryptError::IncompatibleRecipients { .. })), "{refused:?}");
    let mixed = encrypt(&[&pq.to_public().alongside_classical(), &classical.to_public()], b"both").unwrap();
    assert_eq!(decrypt(&pq, &mixed).unwrap(), b"both");
    assert_eq!(decrypt(&classical, &mixed).unwrap(), b"both");
    let two = encrypt(&[&pq.to_public(), &Identity::generate().to_public()], b"two").unwrap();
    assert_eq!(decrypt(&pq, &two).unwrap(), b"two");
}

/// A copy of a stanza (age-core's has no `Clone`).
fn copy(s: &Stanza) -> Stanza {
    Stanza { tag: s.tag.clone(), args: s.args.clone(), body: s.body.clone() }
}

/// A stanza as `Recipient::stanza` makes it, to damage in tests.
fn stanza_for(identity: &Identity) -> (Stanza, [u8; FILE_KEY_BYTES]) {
    let key = [9u8; FILE_KEY_BYTES];
    let stanza = identity.to_public().stanza(&FileKey::new(Box::new(key)));
    (stanza, key)
}

#[test]
fn stanzas_are_checked_before_decryption() {
    let identity = Identity::generate();
    let (good, key) = stanza_for(&identity);
    let unwrapped = identity.unwrap_stanza(&good).unwrap().unwrap();
    assert_eq!(unwrapped.expose_secret(), &key);
    let invalid = |s: &Stanza| matches!(identity.unwrap_stanza(s), Some(Err(age::DecryptError::InvalidHeader)));

    let mut extra = copy(&good);
    extra.args.push("x".into());
    assert!(invalid(&extra));
    let mut long_body = copy(&good);
    long_body.body.extend_from_slice(&[0; 16]);
    assert!(invalid(&long_body));
    let mut short_enc = copy(&good);
    short_enc.args[0] = BASE64_STANDARD_NO_PAD.encode([1u8; ENC_LEN - 1]);
    assert!(invalid(&short_enc));
    let mut padded = copy(&good);
    padded.args[0].push('=');
    assert!(invalid(&padded));
    for share in [[0u8; 32], {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    }] {
        let mut enc = BASE64_STANDARD_NO_PAD.decode(&good.args[0]).unwrap();
        enc[ENC_X25519_AT..].copy_from_slice(&share);
        let mut low = copy(&good);
        low.args[0] = BASE64_STANDARD_NO_PAD.encode(&enc);
        assert!(invalid(&low), "small-order share {share:?}");
    }

    let mut upper = copy(&good);
    upper.tag = STANZA_TYPE.to_uppercase();
    assert!(identity.unwrap_stanza(&upper).is_none(), "another type is not ours");
    let mut tampered = copy(&good);
    tampered.body[0] ^= 1;
    assert!(identity.unwrap_stanza(&tampered).is_none(), "a stanza that does not open is not ours");
    assert!(Identity::generate().unwrap_stanza(&good).is_none());
}

#[test]
fn debug_never_prints_the_private_key() {
    let identity = Identity::generate();
    let debug = format!("{identity:?}");
    let secret = identity.to_string();
    assert!(!debug.contains(&secret.expose_secret()[20..40]), "{debug}");
    assert!(debug.contains("age1pq1"), "{debug}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_seed_round_trips_through_its_strings(seed in any::<[u8; 32]>()) {
        let identity = Identity::from_seed(&seed);
        let again: Identity = identity.to_string().expose_secret().parse().unwrap();
        prop_assert_eq!(again.to_public(), identity.to_public());
        let recipient: Recipient = identity.to_public().to_string().parse().unwrap();
        prop_assert_eq!(recipient, identity.to_public());
    }

    #[test]
    fn arbitrary_strings_are_refused_without_panicking(s in "(?i)(age1pq1|AGE-SECRET-KEY-PQ-1)?[a-z0-9]{0,120}") {
        let _ = s.parse::<Recipient>();
        let _ = s.parse::<Identity>();
    }

    #[test]
    fn one_changed_character_is_caught(at in 7usize..1900, to in "[qpzry9x8gf2tvdw0s3jn54khce6mua7l]") {
        let recipient = Identity::from_seed(&[3; 32]).to_public().to_string();
        let at = at.min(recipient.len() - 1);
        let mut changed = recipient.clone();
        changed.replace_range(at..=at, &to);
        prop_assume!(changed != recipient);
        prop_assert!(changed.parse::<Recipient>().is_err());
    }
}
