//! Unit and property tests of the envelope inspector on synthetic files.

use base64::Engine as _;
use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD};
use proptest::prelude::*;
use rand::{Rng as _, RngCore as _, SeedableRng as _};

use super::*;

/// A gzip of a small CSV file made by `gzip -9 -n` (no name, no time).
const GZIP_CSV: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\x0d\xcb\x41\x12\x40\x30\x10\x04\xc0\xfb\xbc\x65\x0e\x2b\x44\x7c\x67\xc9\x62\x0b\x49\x55\x0a\xef\xa7\xef\xed\x99\x45\x2f\xa3\x5e\xf5\x29\x37\x3a\xea\xe9\x8b\xb1\x13\x04\xce\x75\x66\x10\xf4\x5c\xb4\xd5\x93\xbd\x60\x60\xd6\xd7\x38\x08\x22\xad\x79\x61\x14\x8c\x5c\x9b\x96\x83\xa3\x20\x71\x6b\xfa\xef\x24\x98\xb8\x9b\x67\xe7\x24\xf8\x00\xb6\x1a\xe8\xd4\x63\x00\x00\x00";

/// The same CSV zipped by Info-ZIP `zip -9`.
const ZIP_CSV: &[u8] = b"\x50\x4b\x03\x04\x14\x00\x02\x00\x08\x00\x63\xbc\x75\x5d\xb6\x1a\xe8\xd4\x53\x00\x00\x00\x63\x00\x00\x00\x0a\x00\x1c\x00\x70\x65\x6f\x70\x6c\x65\x2e\x63\x73\x76\x55\x54\x09\x00\x03\xa9\x2a\x02\x6b\xa9\x2a\x02\x6b\x75\x78\x0b\x00\x01\x04\x00\x00\x00\x00\x04\x00\x00\x00\x00\x0d\xcb\x41\x12\x40\x30\x10\x04\xc0\xfb\xbc\x65\x0e\x2b\x44\x7c\x67\xc9\x62\x0b\x49\x55\x0a\xef\xa7\xef\xed\x99\x45\x2f\xa3\x5e\xf5\x29\x37\x3a\xea\xe9\x8b\xb1\x13\x04\xce\x75\x66\x10\xf4\x5c\xb4\xd5\x93\xbd\x60\x60\xd6\xd7\x38\x08\x22\xad\x79\x61\x14\x8c\x5c\x9b\x96\x83\xa3\x20\x71\x6b\xfa\xef\x24\x98\xb8\x9b\x67\xe7\x24\xf8\x00\x50\x4b\x01\x02\x1e\x03\x14\x00\x02\x00\x08\x00\x63\xbc\x75\x5d\xb6\x1a\xe8\xd4\x53\x00\x00\x00\x63\x00\x00\x00\x0a\x00\x18\x00\x00\x00\x00\x00\x01\x00\x00\x00\xa4\x81\x00\x00\x00\x00\x70\x65\x6f\x70\x6c\x65\x2e\x63\x73\x76\x55\x54\x05\x00\x03\xa9\x2a\x02\x6b\x75\x78\x0b\x00\x01\x04\x00\x00\x00\x00\x04\x00\x00\x00\x00\x50\x4b\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\x50\x00\x00\x00\x97\x00\x00\x00\x00\x00";

/// A seeded generator, so failures reproduce.
fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// `n` uniform bytes.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0; n];
    rng(seed).fill_bytes(&mut v);
    v
}

/// An X25519 stanza with a valid share (the base point) and a random 32-byte body.
fn x25519_stanza() -> String {
    let mut share = [0u8; 32];
    share[0] = 9;
    let body = BASE64_STANDARD_NO_PAD.encode(random_bytes(32, 1));
    format!("-> X25519 {}\n{body}\n", BASE64_STANDARD_NO_PAD.encode(share))
}

/// A binary header with the given stanza text and a random MAC.
fn header_with(stanzas: &str) -> Vec<u8> {
    let mac = BASE64_STANDARD_NO_PAD.encode(random_bytes(32, 2));
    format!("age-encryption.org/v1\n{stanzas}--- {mac}\n").into_bytes()
}

/// A forged age file: a valid header followed by `payload`.
fn forged(payload: &[u8]) -> Vec<u8> {
    let mut file = header_with(&x25519_stanza());
    file.extend_from_slice(payload);
    file
}

/// Inspects with default limits.
fn check(file: &[u8]) -> Result<Envelope, EnvelopeError> {
    inspect(file, Limits::default())
}

/// Whether `len` is a possible STREAM payload length.
fn stream_ok(len: usize) -> bool {
    payload::stream_violation(len as u64).is_none()
}

/// Repeats `unit` up to `len` bytes.
fn repeat_to(unit: &[u8], len: usize) -> Vec<u8> {
    unit.iter().copied().cycle().take(len).collect()
}

#[test]
fn a_forged_header_with_random_payload_passes_and_reports_the_header() {
    let file = forged(&random_bytes(1000, 3));
    let env = check(&file).expect("random payload passes");
    assert_eq!(env.payload_len, 1000);
    assert_eq!(env.chunks, 1);
    assert!(!env.header.armored);
    assert_eq!(env.header.stanzas.len(), 1);
    assert_eq!(env.header.stanzas[0].kind, StanzaKind::X25519);
    assert_eq!(env.header.stanzas[0].body_len, 32);
    assert_eq!(env.header.header_len, file.len() - 1000);
    assert!(!env.header.has_passphrase());
}

#[test]
fn the_header_is_available_before_the_payload_has_streamed() {
    let file = forged(&random_bytes(100, 4));
    let header_len = file.len() - 100;
    let mut inspector = Inspector::new(Limits::default());
    inspector.update(&file[..header_len - 1]).expect("header prefix is fine");
    assert!(inspector.header().is_none());
    inspector.update(&file[header_len - 1..header_len]).expect("MAC line ends");
    assert_eq!(inspector.header().map(|h| h.stanzas.len()), Some(1));
}

#[test]
fn plain_text_csv_json_and_base64_behind_a_forged_header_are_refused() {
    let csv = repeat_to(b"id,name,amount\n1,alice,10\n2,bob,20\n", 70_000);
    let json = repeat_to(br#"{"id": 1, "name": "alice", "tags": ["a", "b"]}"#, 3000);
    let b64 = BASE64_STANDARD.encode(random_bytes(30_000, 5)).into_bytes();
    let prose = repeat_to("Grüße aus Zürich, ça va? ".as_bytes(), 500);
    for (what, payload) in [("csv", csv), ("json", json), ("base64", b64), ("utf-8", prose)] {
        let err = check(&forged(&payload)).expect_err(what);
        assert_eq!(err.reason(), "not_random", "{what}: {err}");
    }
}

#[test]
fn even_tiny_text_payloads_are_refused() {
    for len in [35, 40, 64, 100, 1000] {
        let text = repeat_to(b"hello world, this is a secret\n", len);
        assert_eq!(check(&forged(&text)), Err(EnvelopeError::NotRandom { reason: "it is mostly plain text" }), "{len}");
    }
}

#[test]
fn zeros_and_repeated_bytes_are_refused_at_any_size() {
    for len in [32, 100, 5000, 65_536 + 16 + 17, 300_000] {
        if !stream_ok(len) {
            continue;
        }
        for unit in [&b"\0"[..], b"\xaa", b"\x01\x02\x03\x04\xfe"] {
            let err = check(&forged(&repeat_to(unit, len))).expect_err("repeated bytes");
            assert_eq!(err.reason(), "not_random", "{len} {unit:?}: {err}");
        }
    }
}

#[test]
fn real_gzip_and_zip_files_are_refused_by_signature() {
    assert_eq!(check(&forged(GZIP_CSV)), Err(EnvelopeError::FileSignature { kind: "gzip" }));
    assert_eq!(check(&forged(ZIP_CSV)), Err(EnvelopeError::FileSignature { kind: "zip" }));
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(random_bytes(200, 6));
    assert_eq!(check(&forged(&png)), Err(EnvelopeError::FileSignature { kind: "png" }));
}

#[test]
fn a_magic_number_alone_in_random_bytes_is_not_refused() {
    let magics: [&[u8]; 6] =
        [b"PK\x03\x04", b"\x1f\x8b\x08\x00", b"\x28\xb5\x2f\xfd", b"\xff\xd8\xff\xdb", b"\xef\xbb\xbf", b"GIF89a"];
    for (i, magic) in magics.iter().enumerate() {
        for len in [40, 500, 70_000] {
            let mut payload = random_bytes(len, 100 + i as u64);
            payload[..magic.len()].copy_from_slice(magic);
            check(&forged(&payload)).expect("a magic number alone is weak evidence");
        }
    }
}

#[test]
fn large_random_payloads_pass_in_random_chunks() {
    let mut r = rng(7);
    for len in [65_536 + 32, 2 * (65_536 + 16) + 16, 1_000_000] {
        let file = forged(&random_bytes(len, len as u64));
        let mut inspector = Inspector::new(Limits::default());
        let mut rest = &file[..];
        while !rest.is_empty() {
            let (now, later) = rest.split_at(r.gen_range(1..=rest.len().min(70_000)));
            inspector.update(now).expect("random payload passes");
            rest = later;
        }
        let env = inspector.finish().expect("random payload passes");
        assert_eq!(env.payload_len, len as u64);
    }
}

#[test]
fn thousands_of_tiny_random_payloads_all_pass() {
    let mut r = rng(11);
    let header = header_with(&x25519_stanza());
    for i in 0..20_000 {
        let len = r.gen_range(32..1300);
        let mut file = header.clone();
        file.extend(random_bytes(len, 1000 + i));
        assert_eq!(check(&file).map(|e| e.payload_len), Ok(len as u64), "seed {i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_payloads_of_any_valid_length_are_never_refused(len in 32usize..5000, seed: u64) {
        let file = forged(&random_bytes(len, seed));
        prop_assert!(check(&file).is_ok());
    }

    #[test]
    fn large_random_payloads_are_never_refused(len in 32usize..400_000, seed: u64) {
        prop_assume!(stream_ok(len));
        prop_assert!(check(&forged(&random_bytes(len, seed))).is_ok());
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_verdict(
        len in 0usize..600,
        seed: u64,
        cuts in proptest::collection::vec(1usize..50, 1..40),
        text in any::<bool>(),
    ) {
        let payload = if text { repeat_to(b"a,b\n", len) } else { random_bytes(len, seed) };
        let file = forged(&payload);
        let whole = check(&file);
        let mut inspector = Inspector::new(Limits::default());
        let mut rest = &file[..];
        let mut cut = cuts.iter().cycle();
        let mut early = None;
        while !rest.is_empty() && early.is_none() {
            let step = cut.next().copied().unwrap_or(1).min(rest.len());
            early = inspector.update(&rest[..step]).err();
            rest = &rest[step..];
        }
        let chunked = match early { Some(e) => Err(e), None => inspector.finish() };
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = check(&bytes);
        let mut prefixed = b"age-encryption.org/v1\n".to_vec();
        prefixed.extend(&bytes);
        let _ = check(&prefixed);
    }
}

#[test]
fn limits_are_enforced_before_the_cap_is_crossed() {
    let limits = Limits { max_header_bytes: 300, max_stanzas: 3, max_line_bytes: 80 };
    let many = x25519_stanza().repeat(4);
    let roomy = Limits { max_header_bytes: 4096, ..limits };
    assert_eq!(inspect(&header_with(&many), roomy), Err(EnvelopeError::TooManyStanzas { limit: 3 }));

    let long = format!("-> unknown {}\n\n", "a".repeat(100));
    assert_eq!(inspect(&header_with(&long), limits.clone()), Err(EnvelopeError::LineTooLong { limit: 80 }));

    // Byte by byte: the refusal comes at exactly the first byte past the cap.
    let big = header_with(&"-> x\nAAAA\n".repeat(40));
    let mut inspector = Inspector::new(Limits { max_stanzas: 64, ..limits });
    let fed = big.iter().take_while(|&&b| inspector.update(&[b]).is_ok()).count();
    assert_eq!(fed, 300);
    assert_eq!(inspector.update(b"x"), Err(EnvelopeError::HeaderTooLarge { limit: 300 }));
}

#[test]
fn an_inspector_is_spent_after_its_first_refusal() {
    let mut inspector = Inspector::new(Limits::default());
    assert_eq!(inspector.update(b"PK\x03\x04"), Err(EnvelopeError::NotAge));
    assert_eq!(inspector.update(b"age-encryption.org/v1\n"), Err(EnvelopeError::NotAge));
    assert_eq!(inspector.finish().map(|_| ()), Err(EnvelopeError::NotAge));
}

#[test]
fn empty_and_truncated_inputs_are_refused_precisely() {
    assert_eq!(check(b""), Err(EnvelopeError::Empty));
    assert_eq!(check(b" \n\t\r\n"), Err(EnvelopeError::Empty));
    assert_eq!(check(b"age-encryption.org/v2\n"), Err(EnvelopeError::UnsupportedVersion));
    let head = header_with(&x25519_stanza());
    let cut = &head[..head.len() - 10];
    assert_eq!(check(cut).map_err(|e| e.reason()), Err("malformed_header"));
    assert_eq!(check(&head), Err(EnvelopeError::PayloadLength { len: 0 }));
}

#[test]
fn stanza_shapes_are_checked_and_unknown_or_grease_types_pass() {
    let grease = "-> 1!x-grease a b\nAAAA\n";
    let unknown = "-> plugin-foo arg\n\n";
    let file = {
        let mut f = header_with(&format!("{}{grease}{unknown}", x25519_stanza()));
        f.extend(random_bytes(64, 8));
        f
    };
    let env = check(&file).expect("grease and unknown types pass");
    let kinds: Vec<_> = env.header.stanzas.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [StanzaKind::X25519, StanzaKind::Grease, StanzaKind::Unknown]);
    assert_eq!(env.header.recipient_stanzas().count(), 2);

    let short_body = "-> X25519 CQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAA\n";
    assert_eq!(
        check(&header_with(short_body)),
        Err(EnvelopeError::MalformedStanza {
            stanza: 1,
            tag: "X25519".into(),
            reason: "the body is not a 32-byte wrapped file key",
        })
    );
    let zero_share = format!("-> X25519 {}\n{}\n", "A".repeat(43), "A".repeat(43));
    assert_eq!(check(&header_with(&zero_share)), Err(EnvelopeError::SmallOrderShare { stanza: 1 }));
}

#[test]
fn armoured_files_decode_into_the_same_checks() {
    let binary = forged(&random_bytes(200, 9));
    let b64 = BASE64_STANDARD.encode(&binary);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    let armored =
        format!("-----BEGIN AGE ENCRYPTED FILE-----\n{}\n-----END AGE ENCRYPTED FILE-----\n", lines.join("\n"));
    let env = check(armored.as_bytes()).expect("armoured random payload passes");
    assert!(env.header.armored);
    assert_eq!(env.payload_len, 200);
    let crlf = armored.replace('\n', "\r\n");
    assert!(check(crlf.as_bytes()).is_ok());
    let mixed = armored.replacen('\n', "\r\n", 1);
    assert_eq!(check(mixed.as_bytes()), Err(EnvelopeError::Armor { reason: "lines mix CRLF and LF endings" }));
}

/// A STREAM-shaped payload of `len` bytes: zero bodies, and `fill` at the nonce and tags.
fn zero_bodies(len: usize, fill: &[u8]) -> Vec<u8> {
    let mut payload = vec![0; len];
    let tags = (16..len).step_by(65_536 + 16).map(|start| {
        let end = (start + 65_536 + 16).min(len);
        end - 16..end
    });
    let mut fill = fill.iter().cycle();
    for b in std::iter::once(0..16).chain(tags).flatten() {
        payload[b] = *fill.next().unwrap_or(&0);
    }
    payload
}

/// Inspects `file` fed in `step`-byte chunks.
fn check_in_steps(file: &[u8], step: usize) -> Result<Envelope, EnvelopeError> {
    let mut inspector = Inspector::new(Limits::default());
    for chunk in file.chunks(step) {
        inspector.update(chunk)?;
    }
    inspector.finish()
}

#[test]
fn a_forged_header_over_zeros_is_refused() {
    let file = forged(&vec![0; 200 * 1024]);
    for result in [check(&file), check_in_steps(&file, 1000)] {
        assert_eq!(result.map_err(|e| e.reason()), Err("not_random"));
    }
}

#[test]
fn zero_bodies_pass_with_random_nonce_and_tags_but_not_with_text_or_zeros_there() {
    let text = repeat_to(b"id,name,amount\n1,alice,10\n", 64);
    for len in [33, 1000, 65_536 + 32, 65_552 + 16 + 17, 2 * 65_552 + 16, 200 * 1024] {
        let random = forged(&zero_bodies(len, &random_bytes(16 * 20, len as u64)));
        for step in [7, 1000, 70_000, usize::MAX] {
            assert_eq!(check_in_steps(&random, step).map(|e| e.payload_len), Ok(len as u64), "{len} {step}");
        }
        for fill in [&text[..], b"\0"] {
            let err = check(&forged(&zero_bodies(len, fill))).expect_err("no randomness at the tag positions");
            assert_eq!(err.reason(), "not_random", "{len}: {err}");
        }
    }
}

#[test]
fn only_zero_bodies_are_set_aside() {
    let tags = random_bytes(16 * 20, 12);
    // A short informative last body next to zero bodies (the CCTV trailing-garbage case).
    let mut payload = zero_bodies(65_552 + 16 + 20, &tags);
    payload[65_552 + 16..65_552 + 16 + 4].copy_from_slice(&tags[..4]);
    assert!(check(&forged(&payload)).is_ok());
    // A text body after a zero body is refused, while streaming or at the end.
    let mut payload = zero_bodies(2 * 65_552 + 16, &tags);
    payload[65_552 + 16..2 * 65_552].copy_from_slice(&repeat_to(b"secret,text\n", 65_536));
    assert_eq!(check(&forged(&payload)).map_err(|e| e.reason()), Err("not_random"));
    // An impossible length is refused as such, even after a deferred zero window.
    let short = forged(&zero_bodies(65_552 + 16 + 12, &tags));
    for result in [check(&short), check_in_steps(&short, 100)] {
        assert_eq!(result.map_err(|e| e.reason()), Err("payload_length"));
    }
}

#[test]
fn a_real_age_file_of_zeros_passes() {
    let recipient = age::x25519::Identity::generate().to_public();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).expect("one recipient");
    let mut file = Vec::new();
    let mut writer = encryptor.wrap_output(&mut file).expect("stream writer");
    std::io::Write::write_all(&mut writer, &vec![0; 200 * 1024]).expect("encrypt");
    writer.finish().expect("finish");
    let env = check_in_steps(&file, 4096).expect("real ciphertext passes");
    assert_eq!(env.chunks, 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn zero_bodies_with_random_tags_pass_at_any_valid_length(len in 32usize..300_000, seed: u64, step in 1usize..5000) {
        prop_assume!(stream_ok(len));
        let file = forged(&zero_bodies(len, &random_bytes(16 * 8, seed)));
        prop_assert_eq!(check(&file).map(|e| e.payload_len), Ok(len as u64));
        prop_assert_eq!(check_in_steps(&file, step), check(&file));
    }
}

/// Armours `binary` as age does, with `eol` line endings and `lead` before the begin line.
fn armoured(binary: &[u8], eol: &str, lead: &str) -> Vec<u8> {
    let b64 = BASE64_STANDARD.encode(binary);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    format!(
        "{lead}-----BEGIN AGE ENCRYPTED FILE-----{eol}{}{eol}-----END AGE ENCRYPTED FILE-----{eol}",
        lines.join(eol)
    )
    .into_bytes()
}

/// The header's `stored_len`, inspecting `file` in pieces of `step` bytes.
fn stored_len(file: &[u8], step: usize) -> u64 {
    let mut inspector = Inspector::new(Limits::default());
    for piece in file.chunks(step) {
        inspector.update(piece).expect("a good file");
    }
    inspector.finish().expect("a good file").header.stored_len
}

#[test]
fn the_stored_header_ends_where_the_header_does_and_no_later() {
    for stanzas in 1..=3 {
        let binary = forged_with(&x25519_stanza().repeat(stanzas), &random_bytes(300, 10));
        let header_len = binary.len() - 300;
        for step in [1, 7, 64, 1 << 20] {
            assert_eq!(stored_len(&binary, step), header_len as u64, "binary, pieces of {step}");
        }
        for (eol, lead) in [("\n", ""), ("\r\n", ""), ("\n", " \n\t")] {
            let file = armoured(&binary, eol, lead);
            let end = usize::try_from(stored_len(&file, 1)).expect("small");
            for step in [5, 64, 1 << 20] {
                assert_eq!(stored_len(&file, step), end as u64, "armour, pieces of {step}");
            }
            // The base64 up to `end` is whole groups that hold the header and at most 2 bytes
            // more; one character less no longer holds it.
            let body = &file[lead.len() + 34 + eol.len()..end];
            let chars = body.iter().filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/')).count();
            assert_eq!(chars % 4, 0, "{eol:?} {lead:?}");
            assert!((header_len..header_len + 3).contains(&(chars / 4 * 3)), "{chars} for {header_len}");
            assert!((chars - 1) / 4 * 3 < header_len);
        }
    }
}

/// A header with `stanzas`, then `payload`.
fn forged_with(stanzas: &str, payload: &[u8]) -> Vec<u8> {
    let mut file = header_with(stanzas);
    file.extend_from_slice(payload);
    file
}

/// A grease stanza with `tag`, `args` and a body of `body`.
fn grease_stanza(tag: &str, args: &[&str], body: &[u8]) -> String {
    let b64 = BASE64_STANDARD_NO_PAD.encode(body);
    let mut lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    if b64.len().is_multiple_of(64) {
        lines.push("");
    }
    let head = std::iter::once(tag).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    format!("-> {head}\n{}\n", lines.join("\n"))
}

/// A file with an X25519 stanza, then `extra` stanzas, then a random payload.
fn with_stanzas(extra: &str) -> Vec<u8> {
    forged_with(&format!("{}{extra}", x25519_stanza()), &random_bytes(64, 21))
}

#[test]
fn grease_is_bounded_to_what_grease_needs_and_carries_no_plaintext() {
    // As rage makes it: up to 8 characters and `-grease`, up to 4 arguments of up to 8
    // characters, up to 99 random bytes.
    for (n, seed) in [(0, 1), (1, 2), (48, 3), (99, 4)] {
        let file =
            with_stanzas(&grease_stanza("k#9!Q~_a-grease", &["1", "%Z", "abcdefgh", "~"], &random_bytes(n, seed)));
        assert!(check(&file).is_ok(), "{n} random bytes of grease pass");
    }
    let refused = |extra: String| match check(&with_stanzas(&extra)) {
        Err(EnvelopeError::MalformedStanza { reason, .. }) => reason,
        Err(EnvelopeError::MalformedHeader { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // 64 KiB of a document in a grease body: refused as soon as it is longer than grease needs.
    let document = repeat_to(b"Surname,Forename,Passport\nSMITH,JOHN,123456789\n", 64 * 1024);
    assert!(refused(grease_stanza("x-grease", &[], &document)).contains("99 bytes"));
    // Short, but plain text: not random.
    let text = repeat_to(b"SMITH JOHN 123456789 ", 99);
    assert!(refused(grease_stanza("x-grease", &[], &text)).contains("random"));
    // Long arguments or types, or more arguments.
    assert!(refused(grease_stanza("x-grease", &["Surname-SMITH"], &[])).contains("arguments"));
    assert!(refused(grease_stanza("x-grease", &["a", "b", "c", "d", "e"], &[])).contains("arguments"));
    assert!(refused(grease_stanza("SMITH-JOHN-grease", &[], &[])).contains("type"));
    // Two grease stanzas: age implementations add one.
    let two = format!("{}{}", grease_stanza("a-grease", &[], &[]), grease_stanza("b-grease", &[], &[]));
    assert!(refused(two).contains("more than one grease"));
}
