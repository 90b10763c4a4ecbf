//! Known file formats behind a forged age header.
//!
//! A magic number alone is weak: uniform ciphertext starts with a given 4-byte magic with
//! probability 2^-32, far above our budget. So each format is recognised by *rules*: a
//! conjunction of fixed events, each with a known probability for uniform bytes, on
//! disjoint parts of the payload (the head: the first 64 bytes; the tail: the last 16; the
//! body: the rest, judged by [`random::weak_evidence`]). The evidence of an event is
//! `-log2` of its probability; a rule refuses when its events sum to at least
//! [`RULE_BITS`], so each rule fires on ciphertext with probability at most 2^-48. Counting
//! every subset of optional events as its own rule, the detectors below hold 39 rules (each
//! doc comment gives its count), so by the union bound they refuse ciphertext with
//! probability at most 39 x 2^-48.

use super::random;

/// Evidence a rule needs to refuse, in bits.
pub(super) const RULE_BITS: f64 = 48.0;
/// Length of the head region.
pub(super) const HEAD: usize = 64;
/// Length of the tail region.
pub(super) const TAIL: usize = 16;

/// What the detectors may look at.
#[derive(Debug)]
pub(super) struct Evidence<'a> {
    /// The head region (up to 64 bytes).
    pub(super) head: &'a [u8],
    /// The tail region and the payload length, once known and disjoint from the head.
    pub(super) tail: Option<(&'a [u8; TAIL], u64)>,
    /// Whether the body showed weak statistical evidence.
    pub(super) body_weak: bool,
}

/// Evidence of a byte that must be one of `k` values.
fn one_of(k: u32) -> f64 {
    8.0 - f64::from(k).log2()
}

/// Evidence of a byte of printable ASCII (95 values).
fn printable() -> f64 {
    one_of(95)
}

/// Whether `h` has `pattern` at `at`.
fn has(h: &[u8], at: usize, pattern: &[u8]) -> bool {
    h.get(at..at + pattern.len()) == Some(pattern)
}

/// The body's weak evidence, if present.
fn body(e: &Evidence<'_>) -> f64 {
    if e.body_weak { random::WEAK_BITS } else { 0.0 }
}

/// A format detector: bits of evidence for its best rule, or 0.
type Detector = fn(&Evidence<'_>) -> f64;

/// The format the payload is recognised as, if any rule fires.
pub(super) fn detect(e: &Evidence<'_>) -> Option<&'static str> {
    let detectors: [(&'static str, Detector); 17] = [
        ("gzip", gzip),
        ("zip", zip),
        ("png", png),
        ("pdf", pdf),
        ("jpeg", jpeg),
        ("7z", seven_zip),
        ("xz", xz),
        ("zstd", zstd),
        ("bzip2", bzip2),
        ("sqlite", sqlite),
        ("openpgp armor", pgp_armor),
        ("utf-8 text", utf8_bom),
        ("elf", elf),
        ("gif", gif),
        ("riff", riff),
        ("mp4", mp4),
        ("ms office", ole2),
    ];
    detectors.into_iter().find(|(_, f)| f(e) >= RULE_BITS).map(|(kind, _)| kind)
}

/// gzip (RFC 1952): magic, deflate method, reserved flags clear, XFL and OS values;
/// optionally a NUL-terminated printable file name, an ISIZE plausible for the length
/// (at most 64 times the compressed size), and body evidence. 8 rules.
fn gzip(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    if h.len() < 10 || !has(h, 0, &[0x1f, 0x8b, 0x08]) {
        return 0.0;
    }
    let flags = h[3];
    if flags & 0xe0 != 0 || !matches!(h[8], 0 | 2 | 4) || !(h[9] <= 13 || h[9] == 255) {
        return 0.0;
    }
    let mut bits = 24.0 + 3.0 + one_of(3) + one_of(15);
    // FNAME set and FEXTRA clear (2 bits), then at least 4 printable bytes and a NUL after
    // only printable bytes: P <= 1/4 * r^4 * sum_m r^m / 256 with r = 95/256.
    if flags & 0x0c == 0x08 {
        let name = &h[10..];
        let printable_run = name.iter().take_while(|&&b| (0x20..=0x7e).contains(&b)).count();
        if printable_run >= 4 && name.get(printable_run) == Some(&0) {
            let r: f64 = 95.0 / 256.0;
            bits += 2.0 + 4.0 * printable() + 8.0 + (1.0 - r).log2();
        }
    }
    if let Some((tail, len)) = e.tail {
        let isize = u32::from_le_bytes([tail[12], tail[13], tail[14], tail[15]]);
        let max = len.saturating_mul(64);
        if max < 1 << 32 && u64::from(isize) <= max {
            bits += 32.0 - ((max + 1) as f64).log2();
        }
    }
    bits + body(e)
}

/// zip local file header: magic, version needed below 6.4, reserved flag bits clear, a
/// known compression method. 1 rule.
fn zip(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    if h.len() < 10 || !has(h, 0, b"PK\x03\x04") {
        return 0.0;
    }
    let method_known = h[9] == 0 && matches!(h[8], 0 | 8 | 9 | 12 | 14 | 93 | 95 | 98 | 99);
    if h[4] >= 64 || h[5] != 0 || h[7] & !0x28 != 0 || !method_known {
        return 0.0;
    }
    32.0 + 2.0 + 8.0 + 6.0 + one_of(9) + 8.0
}

/// PNG: the 8-byte signature. 1 rule.
fn png(e: &Evidence<'_>) -> f64 {
    if has(e.head, 0, b"\x89PNG\r\n\x1a\n") { 64.0 } else { 0.0 }
}

/// PDF: `%PDF-1.x` or `%PDF-2.x`. 1 rule.
fn pdf(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let ok = has(h, 0, b"%PDF-")
        && matches!(h.get(5), Some(b'1' | b'2'))
        && h.get(6) == Some(&b'.')
        && h.get(7).is_some_and(u8::is_ascii_digit);
    if ok { 40.0 + one_of(2) + 8.0 + one_of(10) } else { 0.0 }
}

/// JPEG: SOI and a marker; JFIF or Exif identifiers, or else the EOI marker at the end
/// and body evidence. 1 + 1 + 4 rules.
fn jpeg(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    if !has(h, 0, &[0xff, 0xd8, 0xff]) {
        return 0.0;
    }
    if h.get(3) == Some(&0xe0) && has(h, 6, b"JFIF\0") {
        return 24.0 + 8.0 + 40.0;
    }
    if h.get(3) == Some(&0xe1) && has(h, 6, b"Exif\0\0") {
        return 24.0 + 8.0 + 48.0;
    }
    if !h.get(3).is_some_and(|m| (0xc0..=0xfe).contains(m)) {
        return 0.0;
    }
    let eoi = e.tail.is_some_and(|(t, _)| t[14..] == [0xff, 0xd9]);
    24.0 + one_of(63) + if eoi { 16.0 } else { 0.0 } + body(e)
}

/// 7z: 6-byte signature and major version 0, minor at most 4. 1 rule.
fn seven_zip(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let ok = has(h, 0, b"7z\xbc\xaf\x27\x1c") && h.get(6) == Some(&0) && h.get(7).is_some_and(|&v| v <= 4);
    if ok { 48.0 + 8.0 + one_of(5) } else { 0.0 }
}

/// xz: 6-byte magic and valid stream flags. 1 rule.
fn xz(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let ok = has(h, 0, b"\xfd7zXZ\0") && h.get(6) == Some(&0) && matches!(h.get(7), Some(0 | 1 | 4 | 10));
    if ok { 48.0 + 8.0 + one_of(4) } else { 0.0 }
}

/// zstd (RFC 8878): frame magic and reserved descriptor bit clear; optionally a single
/// last block (raw or compressed) whose size makes the frame end exactly at the end of the
/// payload (1 + 1 + 21 bits), and body evidence. 4 rules.
fn zstd(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let Some(&fhd) = h.get(4) else { return 0.0 };
    if !has(h, 0, b"\x28\xb5\x2f\xfd") || fhd & 0x08 != 0 {
        return 0.0;
    }
    let single_segment = fhd & 0x20 != 0;
    let window = usize::from(!single_segment);
    let dict = [0, 1, 2, 4][usize::from(fhd & 0x03)];
    let fcs = [usize::from(single_segment), 2, 4, 8][usize::from(fhd >> 6)];
    let checksum = if fhd & 0x04 != 0 { 4 } else { 0 };
    let block_at = 5 + window + dict + fcs;
    let single_block = match (h.get(block_at..block_at + 3), e.tail) {
        (Some(b), Some((_, len))) => {
            let block = u32::from_le_bytes([b[0], b[1], b[2], 0]);
            let (last, kind, size) = (block & 1 == 1, (block >> 1) & 3, u64::from(block >> 3));
            last && (kind == 0 || kind == 2) && (block_at + 3 + checksum) as u64 + size == len
        }
        _ => false,
    };
    32.0 + 1.0 + if single_block { 23.0 } else { 0.0 } + body(e)
}

/// bzip2: `BZh1`..`BZh9` then a block or end-of-stream magic. 2 rules.
fn bzip2(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let level = h.get(3).is_some_and(|b| (b'1'..=b'9').contains(b));
    let block = has(h, 4, &[0x31, 0x41, 0x59, 0x26, 0x53, 0x59]) || has(h, 4, &[0x17, 0x72, 0x45, 0x38, 0x50, 0x90]);
    if has(h, 0, b"BZh") && level && block { 24.0 + one_of(9) + 47.0 } else { 0.0 }
}

/// SQLite 3 database: the 16-byte header string. 1 rule.
fn sqlite(e: &Evidence<'_>) -> f64 {
    if has(e.head, 0, b"SQLite format 3\0") { 128.0 } else { 0.0 }
}

/// ASCII-armoured OpenPGP. 1 rule.
fn pgp_armor(e: &Evidence<'_>) -> f64 {
    if has(e.head, 0, b"-----BEGIN PGP ") { 120.0 } else { 0.0 }
}

/// UTF-8 byte-order mark, then 16 bytes of text, and body evidence. 4 rules.
fn utf8_bom(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    if !has(h, 0, b"\xef\xbb\xbf") {
        return 0.0;
    }
    let text = h.get(3..19).is_some_and(|t| t.iter().all(|&b| random::is_text(b)));
    24.0 + if text { 16.0 * one_of(98) } else { 0.0 } + body(e)
}

/// ELF executable: magic, class, data encoding, version 1. 1 rule.
fn elf(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let ok = has(h, 0, b"\x7fELF")
        && matches!(h.get(4), Some(1 | 2))
        && matches!(h.get(5), Some(1 | 2))
        && h.get(6) == Some(&1);
    if ok { 32.0 + 7.0 + 7.0 + 8.0 } else { 0.0 }
}

/// GIF: `GIF87a` or `GIF89a` and the trailer byte at the end. 2 rules.
fn gif(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    if !(has(h, 0, b"GIF8") && matches!(h.get(4), Some(b'7' | b'9')) && h.get(5) == Some(&b'a')) {
        return 0.0;
    }
    let trailer = e.tail.is_some_and(|(t, _)| t[15] == 0x3b);
    32.0 + 7.0 + 8.0 + if trailer { 8.0 } else { 0.0 }
}

/// RIFF containers: WAVE, AVI and WebP. 3 rules (one per form type).
fn riff(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let form = has(h, 8, b"WAVE") || has(h, 8, b"AVI ") || has(h, 8, b"WEBP");
    if has(h, 0, b"RIFF") && form { 64.0 - 3f64.log2() } else { 0.0 }
}

/// ISO base media (MP4, MOV, HEIC): a small first box of type `ftyp` with a printable
/// brand. 1 rule.
fn mp4(e: &Evidence<'_>) -> f64 {
    let h = e.head;
    let brand = h.get(8..12).is_some_and(|b| b.iter().all(|c| (0x20..=0x7e).contains(c)));
    if has(h, 4, b"ftyp") && has(h, 0, &[0, 0]) && brand { 32.0 + 16.0 + 4.0 * printable() } else { 0.0 }
}

/// OLE2 compound file (legacy Microsoft Office, MSI). 1 rule.
fn ole2(e: &Evidence<'_>) -> f64 {
    if has(e.head, 0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") { 64.0 } else { 0.0 }
}
