//! `rate_limits:`: local token buckets (this process only), each naming the
//! methods or routes it counts and what it counts per. A call every
//! matching limit admits goes on; one that any refuses is answered 429
//! RESOURCE_EXHAUSTED with `Retry-After`.
//!
//! ```
//! let yaml = r#"
//! rate_limits:
//!   - name: per-client
//!     selector: "*"
//!     key: ip
//!     rate: 100/s
//!     burst: 200
//!   - name: shelf-writes
//!     route: "POST /v1/shelves"
//!     key: header:x-api-key
//!     rate: 600/min
//!   - name: everyone
//!     selector: library.v1.LibraryService.*
//!     rate: 1000/s
//! "#;
//! let config = protogate::config::Config::parse(yaml).unwrap();
//! let limits = &config.rate_limits;
//! assert_eq!(limits[0].rate.per_period, 100);
//! assert_eq!(limits[0].burst(), 200);
//! assert_eq!(limits[1].burst(), 600); // one period's worth by default
//! assert_eq!(limits[2].key, protogate::config::RateKey::None);
//!
//! let err = protogate::config::Config::parse("rate_limits: [{name: a, selector: '*', rate: 10/s, key: cookie}]")
//!     .unwrap_err();
//! assert!(err.contains("rate_limits[0].key"), "{err}");
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Keys one limit may hold buckets for when none is configured.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The most keys a limit may be configured to hold.
pub const MAX_KEYS_LIMIT: usize = 10_000_000;

/// One limit of `rate_limits:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Names the limit in errors, logs and `protogate_rate_limited_total`.
    pub name: String,
    /// A glob on `package.Service.Method` (`*` matches any run of
    /// characters), as `auth.rules` selectors.
    #[serde(default)]
    pub selector: Option<String>,
    /// A route as `protogate routes` prints it: `GET /v1/{name=shelves/*}`.
    /// With a selector too, both must match.
    #[serde(default)]
    pub route: Option<String>,
    /// What the buckets are kept per (default `none`: one bucket).
    #[serde(default)]
    pub key: RateKey,
    /// Calls admitted per period, sustained: `100/s`, `600/min`, `5000/h`.
    pub rate: Rate,
    /// Calls admitted at once after a quiet spell (the bucket's size);
    /// default: the rate's count.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Keys (client addresses, header values, subjects) held at once; new
    /// keys past it share one overflow bucket until idle keys are swept.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

fn default_max_keys() -> usize {
    DEFAULT_MAX_KEYS
}

impl RateLimitConfig {
    /// The bucket's size.
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.rate.per_period)
    }

    /// Problems a load should refuse, each naming its field under `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            out.push(format!(
                "{at}.name: {:?} must be letters, digits, '-', '_', '.' or ':'",
                self.name
            ));
        }
        if self.selector.is_none() && self.route.is_none() {
            out.push(format!("{at}: name a selector or a route"));
        }
        if self.selector.as_deref() == Some("") {
            out.push(format!("{at}.selector: empty"));
        }
        if self.burst == Some(0) {
            out.push(format!("{at}.burst: must be at least 1"));
        }
        if !(1..=MAX_KEYS_LIMIT).contains(&self.max_keys) {
            out.push(format!(
                "{at}.max_keys: {} is not between 1 and {MAX_KEYS_LIMIT}",
                self.max_keys
            ));
        }
        out
    }
}

/// Problems of the whole section: each limit's, and names used twice.
pub fn problems(limits: &[RateLimitConfig]) -> Vec<String> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, limit) in limits.iter().enumerate() {
        let at = format!("rate_limits[{i}]");
        out.extend(limit.problems(&at));
        if !names.insert(limit.name.as_str()) {
            out.push(format!(
                "{at}.name: {:?} names another limit too",
                limit.name
            ));
        }
    }
    out
}

/// What a limit keeps a bucket per.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// One bucket for every call the limit matches.
    #[default]
    None,
    /// The client's IP address (the TCP peer's: a proxy's, behind one).
    Ip,
    /// A request header's value (lowercase name); calls without it share
    /// one bucket.
    Header(http::HeaderName),
    /// The subject (`sub`) of the verified token; calls without one share
    /// one bucket.
    Subject,
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateKey::None => f.write_str("none"),
            RateKey::Ip => f.write_str("ip"),
            RateKey::Header(h) => write!(f, "header:{h}"),
            RateKey::Subject => f.write_str("subject"),
        }
    }
}

impl std::str::FromStr for RateKey {
    type Err = String;

    fn from_str(text: &str) -> Result<RateKey, String> {
        match text {
            "none" => Ok(RateKey::None),
            "ip" => Ok(RateKey::Ip),
            "subject" => Ok(RateKey::Subject),
            _ => match text.strip_prefix("header:") {
                Some(name) => http::HeaderName::from_bytes(name.trim().as_bytes())
                    .map(RateKey::Header)
                    .map_err(|_| format!("{name:?} is not a valid header name")),
                None => Err(format!(
                    "{text:?} is not ip, header:<name>, subject or none"
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for RateKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Parsed::<RateKey>(PhantomData))
    }
}

/// A sustained rate: `per_period` calls every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Calls per period (at least 1).
    pub per_period: u32,
    /// A second, a minute or an hour.
    pub period: Duration,
}

impl Rate {
    /// The time one call's token takes to come back.
    pub fn interval(&self) -> Duration {
        self.period / self.per_period.max(1)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.per_period)
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let usage = || format!("{text:?} is not a rate: write e.g. 100/s, 600/min or 5000/h");
        let (count, unit) = text.split_once('/').ok_or_else(usage)?;
        let per_period: u32 = count.trim().parse().map_err(|_| usage())?;
        if per_period == 0 {
            return Err(format!("{text:?}: the count must be at least 1"));
        }
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(usage()),
        };
        Ok(Rate {
            per_period,
            period: Duration::from_secs(secs),
        })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Parsed::<Rate>(PhantomData))
    }
}

/// Parses a string value inside the visitor, so that a parse error is
/// reported at the value (`rate_limits[0].rate: …`), not at its mapping.
struct Parsed<T>(PhantomData<T>);

impl<T: std::str::FromStr<Err = String>> serde::de::Visitor<'_> for Parsed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_their_units() {
        let r: Rate = "100/s".parse().unwrap();
        assert_eq!(r.interval(), Duration::from_millis(10));
        assert_eq!("600/min".parse::<Rate>().unwrap().to_string(), "600/min");
        assert_eq!(
            "3/m".parse::<Rate>().unwrap().period,
            Duration::from_secs(60)
        );
        assert_eq!("5/h".parse::<Rate>().unwrap().to_string(), "5/h");
        for bad in ["100", "0/s", "10/day", "x/s", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_parse() {
        assert_eq!("ip".parse::<RateKey>(), Ok(RateKey::Ip));
        assert_eq!(
            "header:X-Api-Key".parse::<RateKey>().unwrap().to_string(),
            "header:x-api-key"
        );
        assert!("header:bad header".parse::<RateKey>().is_err());
        assert!("cookie".parse::<RateKey>().is_err());
    }
}
