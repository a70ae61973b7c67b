//! The units routes.yaml writes: durations (`30s`, `1.5s`, `250ms`) and
//! sizes (`4MiB`, `512KiB`, a number of bytes).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as `30s`, `1.5s`, `250ms`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Secs(s) => Duration::try_from_secs_f64(s).map_err(|e| e.to_string()),
            Raw::Text(t) => parse_duration(&t),
        };
        parsed.map(ConfigDuration).map_err(serde::de::Error::custom)
    }
}

/// Parses `30s`, `1.5s`, `250ms`, `2m`, `1h`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(protogate::config::parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(protogate::config::parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: use e.g. 30s, 1.5s, 250ms, 2m"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: use e.g. 30s, 1.5s, 250ms, 2m"))?;
    Duration::try_from_secs_f64(n * scale).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// A size in bytes, written as a number or with a unit (`4MiB`, `512KiB`, `1MB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(b) => Ok(ByteSize(b)),
            Raw::Text(t) => parse_size(&t)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1024 * 1024,
        "GB" => 1_000_000_000,
        "GiB" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size {text:?}: use e.g. 4194304, 4MiB, 512KiB"
            ));
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("invalid size {text:?}: use e.g. 4194304, 4MiB, 512KiB"))
}
