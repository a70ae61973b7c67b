//! What the proto3 JSON mapping rejects and the decoder underneath would
//! silently change: 64-bit integers out of range (read as floats and
//! clamped to the type's limits), floats and doubles out of range when sent
//! as strings (`"1e39"` read as Infinity), Timestamps with more than nine fractional
//! digits (truncated) or a 60th second, Durations out of range or with more
//! than nine fractional digits.
//!
//! Text values (query parameters, path variables) are checked before they
//! are parsed. JSON bodies are decoded first; then the message is walked for
//! *suspects* — a 64-bit integer at exactly its type's limit, a float that
//! is not finite, a Timestamp or Duration — and only when there is one is
//! the body read again to check what the client really sent. Timestamps and
//! Durations are common, so they are suspects only when the budget scan
//! (which reads every byte before decoding) saw a string that could be one
//! the decoder accepts and the mapping rejects ([`odd_time_text`]); a body
//! whose Timestamps and Durations are all well formed is read once.

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};

use super::budget::JsonCost;
use crate::status::GatewayError;

/// Checks an RFC 3339 timestamp as proto3 JSON allows it:
/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z|±HH:MM`, years 0001-9999, at most nine
/// fractional digits, seconds 00-59.
///
/// ```
/// use protogate::transcode::strict::check_timestamp;
/// assert!(check_timestamp("2024-02-29T23:59:59.123456789Z").is_ok());
/// assert!(check_timestamp("2024-02-29T23:59:60Z").is_err());
/// assert!(check_timestamp("2024-01-01T00:00:00.1234567891Z").is_err());
/// ```
pub fn check_timestamp(text: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{text:?} is not an RFC 3339 timestamp: {why}"));
    let b = text.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let s = b.get(from..from + n)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b.get(i) != Some(&c)) {
        return bad("expected YYYY-MM-DDTHH:MM:SS");
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        digits(0, 4),
        digits(5, 2),
        digits(8, 2),
        digits(11, 2),
        digits(14, 2),
        digits(17, 2),
    ) else {
        return bad("expected YYYY-MM-DDTHH:MM:SS");
    };
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in(year, month) {
        return bad("no such date");
    }
    if hour > 23 || min > 59 || sec > 59 {
        return bad("no such time of day (seconds run 00 to 59)");
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return bad("1 to 9 fractional digits");
        }
        i += 1 + n;
    }
    match &b[i.min(b.len())..] {
        b"Z" => Ok(()),
        [b'+' | b'-', _, _, b':', _, _] => match (digits(i + 1, 2), digits(i + 4, 2)) {
            (Some(h), Some(m)) if h <= 23 && m <= 59 => Ok(()),
            _ => bad("no such UTC offset"),
        },
        _ => bad("expected Z or a ±HH:MM offset at the end"),
    }
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Checks a proto3 JSON Duration: `-?seconds[.fraction]s`, at most nine
/// fractional digits, within ±315,576,000,000 s (10,000 years).
///
/// ```
/// use protogate::transcode::strict::check_duration;
/// assert!(check_duration("1.5s").is_ok());
/// assert!(check_duration("-315576000000s").is_ok());
/// assert!(check_duration("315576000001s").is_err());
/// assert!(check_duration("0.0000000001s").is_err());
/// ```
pub fn check_duration(text: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{text:?} is not a duration such as 1.5s: {why}"));
    let Some(body) = text.strip_suffix('s') else {
        return bad("it must end in s");
    };
    let body = body.strip_prefix('-').unwrap_or(body);
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return bad("expected whole seconds");
    }
    if body.contains('.') && (fraction.is_empty() || fraction.len() > 9) {
        return bad("1 to 9 fractional digits");
    }
    if !fraction.bytes().all(|c| c.is_ascii_digit()) {
        return bad("expected digits after the point");
    }
    match whole.parse::<u64>() {
        Ok(s) if s <= 315_576_000_000 => Ok(()),
        _ => bad("beyond ±315576000000s"),
    }
}

/// proto3 JSON's spellings of the values that are not finite numbers.
pub const NON_FINITE: [&str; 3] = ["NaN", "Infinity", "-Infinity"];

/// A float or double that decoded to a value that is not finite must have
/// been written as one of [`NON_FINITE`]; anything else (`"1e39"` into a
/// float, `"inf"`) overflowed or is not proto3 JSON.
///
/// ```
/// use protogate::transcode::strict::check_non_finite;
/// assert!(check_non_finite("-Infinity").is_ok());
/// assert!(check_non_finite("1e39").is_err());
/// ```
pub fn check_non_finite(text: &str) -> Result<(), String> {
    if NON_FINITE.contains(&text) {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is out of range for its type (only NaN, Infinity and -Infinity \
             stand for values that are not finite numbers)"
        ))
    }
}

/// One step from a message to a value inside it. A map key is borrowed from
/// the message and spelled out only for a suspect's error: walking a map
/// costs no allocation per entry.
#[derive(Debug, Clone)]
enum Step<'m> {
    Field(FieldDescriptor),
    Index(usize),
    Key(&'m MapKey),
}

/// A value the decoder may have changed, and where it is.
struct Suspect<'m> {
    path: Vec<Step<'m>>,
    kind: SuspectKind,
}

enum SuspectKind {
    Int64,
    Uint64,
    NonFinite,
    Timestamp,
    Duration,
}

/// Checks what a decoded JSON body's suspects really were in `body`;
/// reads the body again only when there is a suspect. Scans `body` first;
/// a caller that has scanned it already uses [`check_decoded_scanned`].
pub fn check_decoded(msg: &DynamicMessage, body: &[u8], prefix: &str) -> Result<(), GatewayError> {
    check_decoded_scanned(msg, body, prefix, &super::budget::json_cost(body))
}

/// [`check_decoded`] for a body the budget scan has read (`cost`): its
/// Timestamps and Durations are looked at only if the scan saw an odd one.
pub fn check_decoded_scanned(
    msg: &DynamicMessage,
    body: &[u8],
    prefix: &str,
    cost: &JsonCost,
) -> Result<(), GatewayError> {
    let suspects = suspects(msg, cost.odd_times);
    if suspects.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => check_suspects(msg, &json, suspects, prefix),
        Err(_) => Ok(()),
    }
}

/// [`check_decoded`] for a body already read as JSON.
pub fn check_decoded_json(
    msg: &DynamicMessage,
    json: &serde_json::Value,
    prefix: &str,
) -> Result<(), GatewayError> {
    check_suspects(msg, json, suspects(msg, true), prefix)
}

/// Whether a JSON string, given as its raw text between the quotes
/// (`escaped` when it holds a backslash escape), could be a Timestamp or
/// Duration that prost-reflect accepts and [`check_timestamp`] or
/// [`check_duration`] rejects. It must never say no to one of those (the
/// check would be skipped); a yes costs only a second read of the body.
///
/// What prost-reflect accepts bounds the candidates: a Timestamp starts
/// `DDDD-DD-DDT` (its strict RFC 3339 check), a Duration is
/// `-?digits[.digits]s` (prost-types' parser). An escape could spell any
/// character, so an escaped string that may start with a digit or `-` is
/// taken as odd (rare in practice); other escapes spell characters no
/// Timestamp or Duration holds.
///
/// ```
/// use protogate::transcode::strict::odd_time_text;
/// assert!(!odd_time_text(b"2024-02-29T23:59:59.5Z", false));
/// assert!(odd_time_text(b"2024-02-29T23:59:60Z", false));
/// assert!(!odd_time_text(b"1.5s", false));
/// assert!(odd_time_text(b"1.0000000001s", false));
/// assert!(!odd_time_text(b"books", false));
/// ```
pub fn odd_time_text(raw: &[u8], escaped: bool) -> bool {
    match raw {
        [b'0'..=b'9' | b'-', ..] if escaped => true,
        [b'\\', b'u', ..] => true,
        [b'0'..=b'9' | b'-', ..] => {
            let Ok(text) = std::str::from_utf8(raw) else {
                // Not UTF-8: the decoder refuses the body anyway.
                return false;
            };
            let timestamp = raw.get(4) == Some(&b'-') && raw.get(10) == Some(&b'T');
            let duration = raw.last() == Some(&b's')
                && raw[..raw.len() - 1]
                    .iter()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.'));
            (timestamp && check_timestamp(text).is_err())
                || (duration && check_duration(text).is_err())
        }
        _ => false,
    }
}

fn suspects(msg: &DynamicMessage, times: bool) -> Vec<Suspect<'_>> {
    let mut out = Vec::new();
    // Most bodies have no suspect: a walk that keeps no path (and allocates
    // nothing) says so; only a body with one is walked again to say where.
    if has_suspect(msg, times) {
        collect(msg, times, &mut Vec::new(), &mut out);
    }
    out
}

/// Whether [`collect`] would find anything in `msg`.
fn has_suspect(msg: &DynamicMessage, times: bool) -> bool {
    msg.fields().any(|(field, value)| match value {
        Value::List(items) => {
            let kind = field.kind();
            may_hold_suspects(&kind, times) && items.iter().any(|v| is_or_holds(&kind, v, times))
        }
        Value::Map(entries) => {
            let kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            may_hold_suspects(&kind, times)
                && entries.values().any(|v| is_or_holds(&kind, v, times))
        }
        Value::Message(_) => is_or_holds(&field.kind(), value, times),
        v => scalar_suspect(v).is_some(),
    })
}

/// Whether a value of `kind` is a suspect or holds one.
fn is_or_holds(kind: &Kind, v: &Value, times: bool) -> bool {
    match (kind, v) {
        (Kind::Message(m), Value::Message(inner)) => match m.full_name() {
            "google.protobuf.Timestamp" | "google.protobuf.Duration" => times,
            _ => has_suspect(inner, times),
        },
        _ => scalar_suspect(v).is_some(),
    }
}

fn check_suspects(
    msg: &DynamicMessage,
    json: &serde_json::Value,
    suspects: Vec<Suspect<'_>>,
    prefix: &str,
) -> Result<(), GatewayError> {
    for s in suspects {
        let Some(value) = locate(json, msg, &s.path) else {
            continue;
        };
        if let Err(why) = verify(&s.kind, value) {
            return Err(GatewayError::bad_field(display(prefix, &s.path), why));
        }
    }
    Ok(())
}

/// Walks `msg` for suspects, with the path to each; Timestamps and
/// Durations only when `times`.
fn collect<'m>(
    msg: &'m DynamicMessage,
    times: bool,
    path: &mut Vec<Step<'m>>,
    out: &mut Vec<Suspect<'m>>,
) {
    for (field, value) in msg.fields() {
        // Only what can be or hold a suspect is stepped into: a step costs a
        // descriptor clone, and most fields are strings and small numbers.
        let kind = match value {
            Value::List(_) => field.kind(),
            Value::Map(_) => match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            },
            Value::Message(_) => field.kind(),
            v if scalar_suspect(v).is_some() => field.kind(),
            _ => continue,
        };
        path.push(Step::Field(field.clone()));
        match value {
            // A long list or map of strings (or of anything else that
            // cannot be a suspect) is skipped, not walked.
            Value::List(items) if may_hold_suspects(&kind, times) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    collect_value(&kind, v, times, path, out);
                    path.pop();
                }
            }
            Value::Map(entries) if may_hold_suspects(&kind, times) => {
                for (k, v) in entries {
                    path.push(Step::Key(k));
                    collect_value(&kind, v, times, path, out);
                    path.pop();
                }
            }
            Value::List(_) | Value::Map(_) => {}
            v => collect_value(&kind, v, times, path, out),
        }
        path.pop();
    }
}

/// What a plain value is suspected of, if anything: a 64-bit integer at
/// its type's limit (where the decoder clamps), a float that is not finite.
fn scalar_suspect(v: &Value) -> Option<SuspectKind> {
    match v {
        Value::I64(n) if *n == i64::MAX || *n == i64::MIN => Some(SuspectKind::Int64),
        Value::U64(n) if *n == u64::MAX => Some(SuspectKind::Uint64),
        Value::F32(x) if !x.is_finite() => Some(SuspectKind::NonFinite),
        Value::F64(x) if !x.is_finite() => Some(SuspectKind::NonFinite),
        _ => None,
    }
}

/// Whether a value of `kind` can be, or hold, a suspect: a 64-bit integer,
/// a float, a message (other than a Timestamp or Duration unless `times`).
fn may_hold_suspects(kind: &Kind, times: bool) -> bool {
    match kind {
        Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64
        | Kind::Uint64
        | Kind::Fixed64
        | Kind::Float
        | Kind::Double => true,
        Kind::Message(m) => {
            times
                || !matches!(
                    m.full_name(),
                    "google.protobuf.Timestamp" | "google.protobuf.Duration"
                )
        }
        _ => false,
    }
}

fn collect_value<'m>(
    kind: &Kind,
    v: &'m Value,
    times: bool,
    path: &mut Vec<Step<'m>>,
    out: &mut Vec<Suspect<'m>>,
) {
    let kind = match (kind, v) {
        (Kind::Message(m), Value::Message(inner)) => match m.full_name() {
            // Their fields are plain numbers the decoder computed, never
            // suspects of their own.
            "google.protobuf.Timestamp" => times.then_some(SuspectKind::Timestamp),
            "google.protobuf.Duration" => times.then_some(SuspectKind::Duration),
            _ => {
                collect(inner, times, path, out);
                None
            }
        },
        _ => scalar_suspect(v),
    };
    if let Some(kind) = kind {
        out.push(Suspect {
            path: path.clone(),
            kind,
        });
    }
}

fn map_key_text(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// The JSON the client sent for `path` (fields by JSON or proto name; a
/// wrapper's `value` is the wrapper's own JSON).
fn locate<'a>(
    json: &'a serde_json::Value,
    root: &DynamicMessage,
    path: &[Step<'_>],
) -> Option<&'a serde_json::Value> {
    let mut current = json;
    let mut container = Some(root.descriptor());
    for step in path {
        current = match step {
            Step::Field(f) => {
                let wrapper = container
                    .as_ref()
                    .is_some_and(|m| crate::wkt::is_wrapper(m.full_name()));
                container = f.kind().as_message().cloned();
                if wrapper {
                    current
                } else {
                    let obj = current.as_object()?;
                    obj.get(f.json_name()).or_else(|| obj.get(f.name()))?
                }
            }
            Step::Index(i) => current.as_array()?.get(*i)?,
            Step::Key(k) => current.as_object()?.get(&map_key_text(k))?,
        };
    }
    Some(current)
}

fn verify(kind: &SuspectKind, value: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value as J;
    match (kind, value) {
        (SuspectKind::Int64, J::Number(n)) if !n.is_i64() => {
            Err(format!("{n} is out of range for a 64-bit integer"))
        }
        (SuspectKind::Uint64, J::Number(n)) if !n.is_u64() => Err(format!(
            "{n} is out of range for an unsigned 64-bit integer"
        )),
        (SuspectKind::NonFinite, J::String(s)) => check_non_finite(s),
        (SuspectKind::Timestamp, J::String(s)) => check_timestamp(s),
        (SuspectKind::Duration, J::String(s)) => check_duration(s),
        _ => Ok(()),
    }
}

fn display(prefix: &str, path: &[Step<'_>]) -> String {
    let mut out = prefix.to_string();
    for step in path {
        match step {
            Step::Field(f) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(f.json_name());
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(k) => out.push_str(&format!("[{:?}]", map_key_text(k))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for ok in [
            "1970-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2024-02-29T12:00:00+05:30",
            "2024-02-29T12:00:00.5-08:00",
        ] {
            assert!(check_timestamp(ok).is_ok(), "{ok}");
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567890Z",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2024-01-01T00:00:00+25:00",
            "2024-01-01T00:00:00Zjunk",
        ] {
            assert!(check_timestamp(bad).is_err(), "{bad}");
        }
    }

    /// Every Timestamp or Duration string prost-reflect accepts and the
    /// checks reject is one the budget scan notes, so skipping the look
    /// at Timestamps and Durations when it noted none loses nothing.
    #[test]
    fn odd_times_are_noted_wherever_the_decoder_lets_them_through() {
        let pool = crate::descriptors::example_pool();
        let book = pool.get_message_by_name("library.v1.Book").expect("Book");
        let cases = [
            ("publishTime", "2024-01-01T23:59:60Z"),
            ("publishTime", "2024-01-01T00:00:00.1234567891Z"),
            ("publishTime", "2023-02-29T00:00:00Z"),
            ("publishTime", "2024-01-01T00:00:00+24:00"),
            ("readTime", "1.0000000001s"),
            ("readTime", "315576000001s"),
            ("readTime", "-315576000001s"),
        ];
        let mut let_through = 0;
        for (field, text) in cases {
            let body = format!(r#"{{"{field}": "{text}"}}"#);
            let Ok(msg) = DynamicMessage::deserialize(
                book.clone(),
                &mut serde_json::Deserializer::from_str(&body),
            ) else {
                continue;
            };
            let_through += 1;
            assert!(odd_time_text(text.as_bytes(), false), "{text}");
            let err = check_decoded(&msg, body.as_bytes(), "book").unwrap_err();
            assert!(err.to_string().contains(&format!("book.{field}")), "{err}");
        }
        // The decoder lets some through, or this test would pin nothing.
        assert!(let_through >= 2, "{let_through}");

        let good = r#"{"publishTime": "2024-01-01T00:00:00Z", "readTime": "1.5s"}"#;
        let msg = DynamicMessage::deserialize(
            book.clone(),
            &mut serde_json::Deserializer::from_str(good),
        )
        .expect("good book");
        let cost = crate::transcode::budget::json_cost(good.as_bytes());
        assert!(!cost.odd_times);
        assert!(suspects(&msg, cost.odd_times).is_empty());
        assert!(check_decoded(&msg, good.as_bytes(), "book").is_ok());
    }

    #[test]
    fn durations() {
        for ok in ["0s", "1s", "-1.5s", "0.000000001s", "315576000000s"] {
            assert!(check_duration(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1",
            "s",
            "1.s",
            "1.0000000001s",
            "315576000001s",
            "--1s",
            "1e3s",
        ] {
            assert!(check_duration(bad).is_err(), "{bad}");
        }
    }
}
