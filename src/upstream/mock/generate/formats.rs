//! How realistic values look: lowercase words, domain suffixes, titles,
//! sentences, ISBN-13s, opaque tokens and RFC 3339 timestamps.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fake::Fake;
use fake::faker::company::en::CatchPhrase;
use fake::faker::internet::en::DomainSuffix;
use fake::faker::lorem::en::{Sentence, Word};
use fake::rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::names::capitalize;

pub(super) fn pick<'a>(list: &[&'a str], rng: &mut ChaCha8Rng) -> &'a str {
    if list.is_empty() {
        return "";
    }
    list[rng.random_range(0..list.len())]
}

pub(super) fn lower_word(rng: &mut ChaCha8Rng) -> String {
    let w: String = Word().fake_with_rng(rng);
    w.to_lowercase()
}

pub(super) fn domain_suffix(rng: &mut ChaCha8Rng) -> String {
    DomainSuffix().fake_with_rng(rng)
}

/// A short title-cased phrase (`Adaptive Zero Tolerance Hub`).
pub(super) fn title(rng: &mut ChaCha8Rng) -> String {
    let phrase: String = CatchPhrase().fake_with_rng(rng);
    phrase
        .split(' ')
        .map(capitalize)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A capitalized lorem sentence with its full stop.
pub(super) fn sentence(rng: &mut ChaCha8Rng) -> String {
    let s: String = Sentence(4..10).fake_with_rng(rng);
    capitalize(&s)
}

/// A hyphenated ISBN-13 with a valid check digit (fake's can hyphenate
/// badly).
pub(super) fn isbn13(rng: &mut ChaCha8Rng) -> String {
    let mut digits = vec![9u32, 7, 8];
    digits.extend((0..9).map(|_| rng.random_range(0..10u32)));
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let s: String = digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &s[..3],
        &s[3..4],
        &s[4..8],
        &s[8..12],
        &s[12..]
    )
}

pub(super) fn token(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(12..=18);
    let bytes: Vec<u8> = (0..n).map(|_| rng.random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(super) fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::super::names::{TIME_FROM, TIME_TO};
    use super::*;

    #[test]
    fn timestamps_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(TIME_FROM), "2021-01-01T00:00:00Z");
        assert_eq!(rfc3339(TIME_TO), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
