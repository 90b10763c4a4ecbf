//! Statistical tests that real age ciphertext passes and plaintext fails.
//!
//! Every byte of an age payload (nonce, ChaCha20-Poly1305 ciphertext, tags) is
//! indistinguishable from independent uniform bytes, so a test refuses real ciphertext only
//! with the probability that uniform bytes pass its threshold. Each threshold below is a
//! rigorous (Chernoff) or carefully approximated (chi-square) tail bound, and the budget of
//! false refusals per file is the sum over all tests (see `mod.rs` for the total):
//!
//! * **Text fraction.** `T` is the 98 byte values of text (TAB, LF, CR, 0x20..=0x7E), so for
//!   uniform bytes the count `X` of text bytes is Binomial(n, p = 98/256). Chernoff–Hoeffding:
//!   `P(X >= qn) <= exp(-n D(q || p))` for `q > p`, with `D` the binary KL divergence in nats.
//!   We refuse when that bound is at most `2^-bits`. Plain text, CSV, JSON and base64 have
//!   `q = 1`, `D = ln(256/98) = 0.96`, so even a 32-byte payload is caught at `2^-44`.
//! * **Most frequent byte.** For each byte value the count is Binomial(n, 1/256); by the union
//!   bound over 256 values, `P(max >= qn) <= 256 exp(-n D(q || 1/256))`. Catches all-zero
//!   and repeated-byte payloads, UTF-16 and most non-Latin UTF-8 text at any size.
//! * **Distinct values.** If only `d` byte values occur, by the union bound over the
//!   `C(256, d)` sets of `d` values, `P <= C(256, d) (d/256)^n`: catches short repeated
//!   patterns that are too short for the frequency tests.
//! * **Chi-square on byte frequencies.** Pearson's statistic over 256 bins is approximately
//!   chi-square with 255 degrees of freedom when every expected count is large; we apply it
//!   only with at least 64 expected per bin (whole payload from 16 KiB, 64 KiB windows
//!   have 256). The tail quantile comes from the Wilson–Hilferty transform
//!   `t = k (1 - 2/(9k) + z sqrt(2/(9k)))^3` with `z` chosen so the normal tail bound
//!   `phi(z)/z` equals the target; to cover the approximation error in the far tail we
//!   compute the threshold for a target 2^16 times smaller than the one we claim.
//!   This catches compressed formats whose coders leave a bias (deflate, zstd, bzip2) once
//!   enough bytes have streamed.

/// Bits added to chi-square targets to absorb the error of the approximation in the tail.
const CHI_SQUARE_MARGIN_BITS: f64 = 16.0;
/// Degrees of freedom of the byte-frequency chi-square (256 bins).
const DF: f64 = 255.0;
/// Fewest bytes for a chi-square test used as a refusal: 64 expected per bin.
pub(super) const CHI_SQUARE_MIN_BYTES: u64 = 64 * 256;
/// Fewest bytes for the chi-square used as weak evidence next to a file signature.
const WEAK_CHI_SQUARE_MIN_BYTES: u64 = 5 * 256;

/// Whether `b` is a byte of plain text (TAB, LF, CR or printable ASCII).
pub(super) fn is_text(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e)
}

/// Number of text byte values.
const TEXT_VALUES: f64 = 98.0;

/// `n * D(k/n || p)` in nats if `k/n > p`, else 0: minus the log of the Chernoff bound on
/// `P(Binomial(n, p) >= k)`.
pub(super) fn chernoff_nats(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let (k, n) = (k as f64, n as f64);
    let q = k / n;
    if q <= p {
        return 0.0;
    }
    let term = |x: f64, y: f64| if x == 0.0 { 0.0 } else { x * (x / y).ln() };
    n * (term(q, p) + term(1.0 - q, 1.0 - p))
}

/// Pearson's chi-square statistic of byte counts against the uniform distribution.
pub(super) fn chi_square(counts: &[u64; 256], n: u64) -> f64 {
    let expected = n as f64 / 256.0;
    if expected == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .map(|&c| {
            let d = c as f64 - expected;
            d * d / expected
        })
        .sum::<f64>()
}

/// The chi-square (255 df) value whose upper tail is about `2^-bits` (Wilson–Hilferty).
pub(super) fn chi_square_threshold(bits: f64) -> f64 {
    // Solve phi(z)/z = 2^-bits, i.e. z^2/2 + ln z + ln sqrt(2 pi) = bits ln 2. The Mills
    // ratio bound gives Q(z) <= phi(z)/z, so this z is conservative for the normal tail.
    let target = bits * std::f64::consts::LN_2;
    let half_ln_two_pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let mut z = (2.0 * target).sqrt();
    for _ in 0..8 {
        z = (2.0 * (target - z.ln() - half_ln_two_pi)).max(1.0).sqrt();
    }
    let c = 2.0 / (9.0 * DF);
    DF * (1.0 - c + z * c.sqrt()).powi(3)
}

/// Which test refused, as the `reason` of `NotRandom`.
pub(super) type Refusal = &'static str;

/// Runs the tests on one set of byte counts, each at `2^-bits`: text fraction, most
/// frequent value, distinct values, and chi-square when there are enough bytes.
pub(super) fn check_counts(counts: &[u64; 256], n: u64, bits: f64) -> Result<(), Refusal> {
    check_text(counts, n, bits)?;
    let ln2 = std::f64::consts::LN_2;
    let max = counts.iter().copied().max().unwrap_or(0);
    if chernoff_nats(max, n, 1.0 / 256.0) >= (bits + 8.0) * ln2 {
        return Err("one byte value is far more frequent than in ciphertext");
    }
    if few_values_bits(counts, n) >= bits {
        return Err("it uses too few distinct byte values");
    }
    if n >= CHI_SQUARE_MIN_BYTES && chi_square(counts, n) >= chi_square_threshold(bits + CHI_SQUARE_MARGIN_BITS) {
        return Err("byte frequencies are not uniform (chi-square test)");
    }
    Ok(())
}

/// `-log2` of the bound on the chance that `n` uniform bytes use as few distinct values.
///
/// If only `d` values occur, all bytes fall in some set of `d` values: by the union bound
/// over the `C(256, d)` sets, `P <= C(256, d) (d/256)^n`. Strong for short repetitive data.
pub(super) fn few_values_bits(counts: &[u64; 256], n: u64) -> f64 {
    let d = counts.iter().filter(|&&c| c > 0).count();
    if d == 0 || d == 256 {
        return 0.0;
    }
    let log2_sets: f64 = (0..d).map(|i| ((256 - i) as f64 / (i + 1) as f64).log2()).sum();
    let log2_p = log2_sets + n as f64 * (d as f64 / 256.0).log2();
    (-log2_p).max(0.0)
}

/// The text-fraction test alone at `2^-bits`.
pub(super) fn check_text(counts: &[u64; 256], n: u64, bits: f64) -> Result<(), Refusal> {
    let text: u64 = (0..=255u8).filter(|&b| is_text(b)).map(|b| counts[usize::from(b)]).sum();
    if chernoff_nats(text, n, TEXT_VALUES / 256.0) >= bits * std::f64::consts::LN_2 {
        return Err("it is mostly plain text");
    }
    Ok(())
}

/// Weak evidence that bytes are not ciphertext, used only next to a file signature.
///
/// True if the text fraction has Chernoff bound `<= 2^-20`, or (with at least 5 expected per
/// bin) the chi-square exceeds the `2^-24` threshold, claimed as `2^-20`. By the union bound
/// the event has probability at most `2^-19` for uniform bytes: [`WEAK_BITS`].
pub(super) fn weak_evidence(counts: &[u64; 256], n: u64) -> bool {
    if check_text(counts, n, 20.0).is_err() {
        return true;
    }
    n >= WEAK_CHI_SQUARE_MIN_BYTES && chi_square(counts, n) >= chi_square_threshold(24.0)
}

/// Bits of evidence [`weak_evidence`] is worth.
pub(super) const WEAK_BITS: f64 = 19.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_hilferty_matches_known_quantiles() {
        // chi2(255) upper quantiles: 1e-3 -> 330.5 (tables), and the thresholds we rely on.
        let t10 = chi_square_threshold(1e-3f64.log2().abs());
        assert!((t10 - 330.5).abs() < 3.0, "{t10}");
        let t64 = chi_square_threshold(64.0);
        assert!((500.0..540.0).contains(&t64), "{t64}");
    }

    #[test]
    fn chernoff_is_zero_below_the_mean_and_grows_above() {
        assert_eq!(chernoff_nats(10, 100, 0.5), 0.0);
        let all_text = chernoff_nats(32, 32, TEXT_VALUES / 256.0);
        assert!((all_text - 32.0 * (256.0f64 / 98.0).ln()).abs() < 1e-9);
        assert!(all_text >= 44.0 * std::f64::consts::LN_2);
    }
}
