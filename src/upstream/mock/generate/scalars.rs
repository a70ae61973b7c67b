//! Numbers, bools, bytes and enum values chosen by field name and type.

use fake::rand::RngExt;
use prost_reflect::EnumDescriptor;
use rand_chacha::ChaCha8Rng;

use super::names::{TIME_FROM, TIME_TO, is_image_word, words};

/// A valid 1×1 PNG, for image-like bytes fields and HttpBody answers.
pub(super) const TINY_PNG: [u8; 69] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf0, 0xaa, 0xda, 0x01,
    0x00, 0x02, 0x8e, 0x01, 0x7d, 0x9e, 0xbe, 0xb8, 0x54, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

const MONEY_WORDS: &[&str] = &[
    "price", "amount", "cost", "fee", "balance", "salary", "total", "subtotal", "tax", "revenue",
    "budget", "charge", "payment", "discount", "income", "spend",
];

pub(super) fn int_for(name: &str, wide: bool, signed: bool, rng: &mut ChaCha8Rng) -> i64 {
    let n = name.to_ascii_lowercase();
    let toks: Vec<&str> = words(&n).collect();
    let last = toks.last().copied().unwrap_or("");
    let first = toks.first().copied().unwrap_or("");
    let has = |t: &str| toks.contains(&t);
    let last_in = |list: &[&str]| list.contains(&last);
    if last_in(&["time", "at", "timestamp", "epoch"]) || has("unix") {
        let secs = rng.random_range(TIME_FROM..TIME_TO);
        return if wide && (has("ms") || has("millis")) {
            secs * 1000 + rng.random_range(0..1000)
        } else {
            secs
        };
    }
    if last_in(&["ms", "millis", "latency"]) {
        return rng.random_range(1..=5000);
    }
    if last_in(&["seconds", "secs", "duration", "timeout", "ttl", "interval"]) {
        return rng.random_range(1..=3600);
    }
    if last == "id" || last == "ids" {
        return if wide {
            rng.random_range(1..=9_999_999)
        } else {
            rng.random_range(1..=99_999)
        };
    }
    if toks.iter().any(|t| MONEY_WORDS.contains(t)) && !has("count") {
        return if has("micros") && wide {
            rng.random_range(1..=50_000) * 10_000
        } else if has("cents") || has("micros") {
            rng.random_range(100..=50_000)
        } else {
            rng.random_range(1..=500)
        };
    }
    let (lo, hi) = match (n.as_str(), last) {
        ("page_count" | "num_pages", _) | (_, "pages") => (24, 1200),
        ("page_size", _) => (10, 50),
        ("page" | "page_number", _) => (1, 20),
        (_, "age") => (18, 90),
        (_, "rating" | "stars") => (1, 5),
        (_, "score" | "percent" | "percentage" | "progress") => (0, 100),
        (_, "year") => (1950, 2025),
        (_, "month") => (1, 12),
        (_, "day") => (1, 28),
        (_, "hour" | "hours") => (0, 23),
        (_, "minute" | "minutes" | "second") => (0, 59),
        (_, "port") => (1024, 65535),
        (_, "width" | "height") => (100, 1920),
        (_, "priority" | "level" | "rank" | "position" | "order" | "index" | "weight") => (1, 10),
        (_, "version" | "revision" | "generation") => (1, 20),
        _ if last_in(&[
            "count", "counts", "total", "totals", "quantity", "qty", "size", "length",
        ]) || first == "num"
            || first == "total" =>
        {
            (0, 500)
        }
        // Signed encodings hint at negatives; zero would read as unset.
        _ if signed => {
            let n = rng.random_range(1..=1000);
            return if rng.random_bool(0.5) { -n } else { n };
        }
        _ if wide => (1, 100_000),
        _ => (1, 1000),
    };
    rng.random_range(lo..=hi)
}

pub(super) fn to_i32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(super) fn float_for(name: &str, rng: &mut ChaCha8Rng) -> f64 {
    let n = name.to_ascii_lowercase();
    let toks: Vec<&str> = words(&n).collect();
    let last = toks.last().copied().unwrap_or("");
    let hundredths =
        |rng: &mut ChaCha8Rng, lo: i32, hi: i32| f64::from(rng.random_range(lo..=hi)) / 100.0;
    if toks.iter().any(|t| MONEY_WORDS.contains(t)) {
        return hundredths(rng, 100, 50_000);
    }
    match last {
        "rating" | "stars" => f64::from(rng.random_range(10..=50)) / 10.0,
        "lat" | "latitude" => f64::from(rng.random_range(-90_000_000..=90_000_000)) / 1e6,
        "lng" | "lon" | "long" | "longitude" => {
            f64::from(rng.random_range(-180_000_000..=180_000_000)) / 1e6
        }
        "percent" | "percentage" | "progress" | "score" => {
            f64::from(rng.random_range(0..=1000)) / 10.0
        }
        "ratio" | "probability" | "confidence" | "fraction" | "share" => hundredths(rng, 0, 100),
        "temperature" | "temp" => f64::from(rng.random_range(-100..=400)) / 10.0,
        "weight" | "height" | "width" | "length" | "distance" | "size" => {
            hundredths(rng, 10, 10_000)
        }
        _ => hundredths(rng, 1, 100_000),
    }
}

pub(super) fn bool_for(name: &str, rng: &mut ChaCha8Rng) -> bool {
    let negative = [
        "deleted",
        "archived",
        "disabled",
        "blocked",
        "banned",
        "locked",
        "hidden",
        "suspended",
        "spam",
        "expired",
        "failed",
        "error",
        "deprecated",
    ];
    let positive = [
        "available",
        "enabled",
        "active",
        "verified",
        "published",
        "visible",
        "public",
        "valid",
        "success",
    ];
    if words(name).any(|w| negative.contains(&w)) {
        rng.random_bool(0.1)
    } else if words(name).any(|w| positive.contains(&w)) {
        rng.random_bool(0.8)
    } else {
        rng.random_bool(0.5)
    }
}

pub(super) fn bytes_for(name: &str, rng: &mut ChaCha8Rng) -> Vec<u8> {
    if words(name).any(is_image_word) {
        return TINY_PNG.to_vec();
    }
    let n = rng.random_range(4..=16);
    (0..n).map(|_| rng.random::<u8>()).collect()
}

/// Any value of `e` but a zero `*_UNSPECIFIED`/`*_UNKNOWN` one.
pub(super) fn pick_enum(e: &EnumDescriptor, rng: &mut ChaCha8Rng) -> i32 {
    let unspecified = |name: &str| {
        let n = name.to_ascii_uppercase();
        n == "UNSPECIFIED"
            || n == "UNKNOWN"
            || n.ends_with("_UNSPECIFIED")
            || n.ends_with("_UNKNOWN")
    };
    let mut numbers: Vec<i32> = e
        .values()
        .filter(|v| !(v.number() == 0 && unspecified(v.name())))
        .map(|v| v.number())
        .collect();
    if numbers.is_empty() {
        numbers = e.values().map(|v| v.number()).collect();
    }
    if numbers.is_empty() {
        return 0;
    }
    numbers[rng.random_range(0..numbers.len())]
}
