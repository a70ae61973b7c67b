//! `upstreams.<name>.retry`: which failed calls to an upstream are tried
//! again, how soon, and how many retries the upstream may see. Absent: no
//! retries (as in Envoy and gRPC clients).
//!
//! ```
//! let yaml = "upstreams:\n  lib:\n    url: http://127.0.0.1:50051\n    retry: {max_attempts: 2}\n";
//! let config = protogate::config::Config::parse(yaml).unwrap();
//! let retry = config.upstreams["lib"].retry.clone().unwrap();
//! assert_eq!(retry.max_attempts, 2);
//! assert_eq!(retry.codes, [protogate::config::RetryCode(tonic::Code::Unavailable)]);
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tonic::Code;

use super::ConfigDuration;

/// The most attempts a call may make (the first one included).
pub(crate) const MAX_ATTEMPTS_LIMIT: u32 = 10;

/// The highest `budget.min_per_second` accepted.
pub(crate) const MIN_PER_SECOND_LIMIT: u32 = 1_000_000;

/// Retries of one upstream's calls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts in all, the first one included (1: no retries).
    pub max_attempts: u32,
    /// The gRPC codes that make a call worth another attempt. A failure
    /// below gRPC (connection refused or reset) counts as UNAVAILABLE.
    pub codes: Vec<RetryCode>,
    /// Methods retried besides those whose `idempotency_level` is
    /// NO_SIDE_EFFECTS or IDEMPOTENT: `pkg.Service.Method`, `pkg.Service.*`
    /// or `*`. Client-streaming methods are never retried.
    pub methods: Vec<String>,
    /// The ceiling of the first backoff; each retry doubles it.
    pub initial_backoff: ConfigDuration,
    /// The highest ceiling of a backoff.
    pub max_backoff: ConfigDuration,
    /// How many retries the upstream may see.
    pub budget: RetryBudget,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            max_attempts: 3,
            codes: vec![RetryCode(Code::Unavailable)],
            methods: Vec::new(),
            initial_backoff: ConfigDuration(Duration::from_millis(25)),
            max_backoff: ConfigDuration(Duration::from_millis(250)),
            budget: RetryBudget::default(),
        }
    }
}

/// Retries allowed: a share of the calls of the last 10 seconds, plus a
/// floor per second.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryBudget {
    /// Retries as a share of calls, 0.0 to 1.0.
    pub ratio: f64,
    /// Retries allowed each second whatever the traffic.
    pub min_per_second: u32,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget {
            ratio: 0.2,
            min_per_second: 10,
        }
    }
}

/// A gRPC code written by name (`UNAVAILABLE`, any case) or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryCode(pub Code);

impl<'de> Deserialize<'de> for RetryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i32),
            Name(String),
        }
        let code = match Raw::deserialize(d)? {
            Raw::Number(n) => (1..=16).contains(&n).then(|| Code::from_i32(n)),
            Raw::Name(name) => code_by_name(&name),
        };
        code.map(RetryCode).ok_or_else(|| {
            serde::de::Error::custom(
                "not a gRPC error code: use a name such as UNAVAILABLE or RESOURCE_EXHAUSTED",
            )
        })
    }
}

/// The non-OK code named `name` (`UNAVAILABLE`, any case).
fn code_by_name(name: &str) -> Option<Code> {
    (1..=16)
        .map(Code::from_i32)
        .find(|c| crate::status::code_name(*c).eq_ignore_ascii_case(name.trim()))
}

impl RetryConfig {
    /// Problems a load should refuse, each naming its field under `at`
    /// (`upstreams.<name>.retry`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&self.max_attempts) {
            out.push(format!(
                "{at}.max_attempts: {} is not between 1 and {MAX_ATTEMPTS_LIMIT}",
                self.max_attempts
            ));
        }
        if self.codes.is_empty() {
            out.push(format!(
                "{at}.codes: empty; list at least one code (e.g. UNAVAILABLE)"
            ));
        }
        if self.initial_backoff.0.is_zero() {
            out.push(format!("{at}.initial_backoff: must be above 0"));
        }
        if self.max_backoff.0 < self.initial_backoff.0 {
            out.push(format!("{at}.max_backoff: below initial_backoff"));
        }
        for (i, s) in self.methods.iter().enumerate() {
            if !valid_selector(s) {
                out.push(format!(
                    "{at}.methods[{i}]: {s:?} is not pkg.Service.Method, pkg.Service.* or *"
                ));
            }
        }
        out.extend(self.budget.problems(&format!("{at}.budget")));
        out
    }
}

impl RetryBudget {
    /// Problems a load should refuse, each naming its field under `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !(0.0..=1.0).contains(&self.ratio) {
            out.push(format!(
                "{at}.ratio: {} is not between 0.0 and 1.0",
                self.ratio
            ));
        }
        if self.min_per_second > MIN_PER_SECOND_LIMIT {
            out.push(format!(
                "{at}.min_per_second: {} is above {MIN_PER_SECOND_LIMIT}",
                self.min_per_second
            ));
        }
        out
    }
}

/// `*`, `pkg.Service.*` or `pkg.Service.Method`.
fn valid_selector(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let name = s.strip_suffix(".*").unwrap_or(s);
    name.contains('.')
        && name
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RetryConfig, String> {
        let text = format!("upstreams:\n  lib:\n    url: http://127.0.0.1:1\n    retry: {yaml}\n");
        crate::config::Config::parse(&text)
            .map(|c| c.upstreams["lib"].retry.clone().unwrap_or_default())
    }

    #[test]
    fn retry_defaults() {
        let r = parse("{}").unwrap();
        assert_eq!(r, RetryConfig::default());
        assert_eq!(r.max_attempts, 3);
        assert_eq!(r.initial_backoff.0, Duration::from_millis(25));
        assert_eq!(r.max_backoff.0, Duration::from_millis(250));
        assert_eq!(r.budget.ratio, 0.2);
        assert_eq!(r.budget.min_per_second, 10);
    }

    #[test]
    fn retry_absent_is_none() {
        let c = crate::config::Config::parse("upstreams:\n  lib:\n    url: http://127.0.0.1:1\n")
            .unwrap();
        assert!(c.upstreams["lib"].retry.is_none());
    }

    #[test]
    fn retry_codes_by_name_or_number() {
        let r = parse("{codes: [unavailable, RESOURCE_EXHAUSTED, 10]}").unwrap();
        let codes: Vec<Code> = r.codes.iter().map(|c| c.0).collect();
        assert_eq!(
            codes,
            [Code::Unavailable, Code::ResourceExhausted, Code::Aborted]
        );
        for bad in ["[OK]", "[0]", "[UNAVAIL]", "[17]"] {
            let e = parse(&format!("{{codes: {bad}}}")).unwrap_err();
            assert!(e.contains("not a gRPC error code"), "{bad}: {e}");
        }
    }

    #[test]
    fn retry_unknown_field_is_named() {
        let e = parse("{max_attempt: 2}").unwrap_err();
        assert!(e.contains("unknown field `max_attempt`"), "{e}");
        let e = parse("{budget: {percent: 20}}").unwrap_err();
        assert!(e.contains("unknown field `percent`"), "{e}");
    }

    #[test]
    fn retry_problems_name_the_field() {
        let cases = [
            ("{max_attempts: 0}", "upstreams.lib.retry.max_attempts"),
            ("{max_attempts: 11}", "upstreams.lib.retry.max_attempts"),
            ("{codes: []}", "upstreams.lib.retry.codes"),
            (
                "{initial_backoff: 0s}",
                "upstreams.lib.retry.initial_backoff",
            ),
            (
                "{initial_backoff: 1s, max_backoff: 10ms}",
                "upstreams.lib.retry.max_backoff",
            ),
            ("{methods: [Get]}", "upstreams.lib.retry.methods[0]"),
            ("{methods: ['a.B/C']}", "upstreams.lib.retry.methods[0]"),
            ("{budget: {ratio: 1.5}}", "upstreams.lib.retry.budget.ratio"),
            (
                "{budget: {ratio: -0.1}}",
                "upstreams.lib.retry.budget.ratio",
            ),
            (
                "{budget: {min_per_second: 2000000}}",
                "upstreams.lib.retry.budget.min_per_second",
            ),
        ];
        for (yaml, field) in cases {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(field), "{yaml}: {e}");
        }
    }

    #[test]
    fn retry_selectors() {
        for ok in ["*", "a.B.*", "a.b.C.Method", "pkg.S.M_2"] {
            assert!(valid_selector(ok), "{ok}");
        }
        for bad in ["", "M", ".a.B", "a..B", "a.B.", "a.B/M", "a.B.**", "a b.C"] {
            assert!(!valid_selector(bad), "{bad}");
        }
    }
}
