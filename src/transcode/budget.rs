//! What decoding client input may cost, checked *before* decoding: how deep
//! values nest (every recursive walk over client input is bounded by one
//! limit), and about how much memory the decoded message will take.
//!
//! A JSON body is scanned once, byte by byte, without allocating: nesting
//! depth, objects and values are counted, and the decoded size is estimated
//! from them. The estimate is deliberately pessimistic: a decoded message
//! costs far more than its JSON (a `{}` becomes a message with its own field
//! table; inside `google.protobuf.Struct`, `Value` and `ListValue` even a bare
//! `1` does), so a small body must not be allowed to become gigabytes.

use crate::status::GatewayError;

/// The limits, from `limits:` in routes.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest nesting of client input: JSON values, query keys
    /// (`a.b.c`), field mask paths.
    pub max_depth: usize,
    /// The largest estimated size of a decoded request message, in bytes.
    pub max_decoded_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_depth: 64,
            max_decoded_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The deepest nesting protobuf decoders accept (prost's, C++'s and Java's
/// recursion limit): `limits.max_depth` is held to it, so that no message
/// the gateway lets through is one the upstream, or the gateway decoding
/// the answer, cannot read.
pub const PROTOBUF_MAX_DEPTH: usize = 100;

/// Estimated bytes of one decoded message (a field table and its entries).
pub const MESSAGE_COST: usize = 1024;
/// Estimated bytes of one decoded scalar, list element or map entry.
pub const VALUE_COST: usize = 64;

/// How a JSON body will decode: which values become messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Objects become messages; other values are plain fields.
    Typed,
    /// The target can hold `google.protobuf.Struct`/`Value`/`ListValue`, where
    /// every JSON value becomes a message.
    Dynamic,
}

/// What the scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JsonCost {
    /// The deepest nesting of arrays and objects.
    pub depth: usize,
    /// Objects.
    pub objects: usize,
    /// Values of any kind (members and elements included).
    pub values: usize,
    /// Whether some string could be a Timestamp or Duration that the decoder
    /// accepts and the proto3 JSON mapping rejects
    /// ([`super::strict::odd_time_text`]). Noted here because this scan reads
    /// every byte anyway: when it is false the strict check need not read the
    /// body a second time to look at the Timestamps and Durations it decoded.
    pub odd_times: bool,
}

impl JsonCost {
    /// The estimated decoded size.
    pub fn estimate(&self, shape: Shape) -> usize {
        match shape {
            Shape::Typed => self
                .objects
                .saturating_mul(MESSAGE_COST)
                .saturating_add(self.values.saturating_mul(VALUE_COST)),
            Shape::Dynamic => self.values.saturating_mul(MESSAGE_COST),
        }
    }
}

/// Scans `body` and refuses it when it nests deeper than `max_depth` (400)
/// or would decode to more than `max_decoded_bytes` (413). Malformed JSON is
/// left to the decoder, which names the error.
///
/// ```
/// use protogate::transcode::budget::{DecodeLimits, Shape, check_json};
/// let limits = DecodeLimits { max_depth: 3, max_decoded_bytes: 1 << 20 };
/// assert!(check_json(br#"{"a": [1, {"b": 2}]}"#, Shape::Typed, &limits).is_ok());
/// assert!(check_json(br#"[[[[1]]]]"#, Shape::Typed, &limits).is_err());
/// ```
pub fn check_json(
    body: &[u8],
    shape: Shape,
    limits: &DecodeLimits,
) -> Result<JsonCost, GatewayError> {
    let cost = scan(body, limits.max_depth)?;
    let estimate = cost.estimate(shape);
    if estimate > limits.max_decoded_bytes {
        return Err(GatewayError::DecodeBudget {
            estimate,
            limit: limits.max_decoded_bytes,
        });
    }
    Ok(cost)
}

fn scan(body: &[u8], max_depth: usize) -> Result<JsonCost, GatewayError> {
    let mut cost = JsonCost::default();
    let mut depth = 0usize;
    // Whether a value has started since the last `[`, `{`, `,` or `:`.
    let mut value_started = false;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(too_deep(max_depth));
                }
                cost.depth = cost.depth.max(depth);
                cost.values += 1;
                cost.objects += usize::from(b == b'{');
                value_started = false;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                value_started = true;
            }
            b',' | b':' => value_started = false,
            b'"' => {
                let (end, escaped) = string_end(body, i);
                if !cost.odd_times {
                    cost.odd_times = super::strict::odd_time_text(&body[i..end], escaped);
                }
                i = end + 1;
                if !value_started {
                    cost.values += 1;
                    value_started = true;
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => {
                if !value_started {
                    cost.values += 1;
                    value_started = true;
                }
            }
        }
    }
    Ok(cost)
}

/// The index of the quote that closes the string whose text starts at
/// `from` (`body.len()` when it is unterminated), and whether the string
/// holds an escape. Strings are most of a typical body, so they are skipped
/// eight bytes at a time while none of the eight is a quote or a backslash.
fn string_end(body: &[u8], from: usize) -> (usize, bool) {
    let mut escaped = false;
    let mut i = from;
    loop {
        while let Some(chunk) = body.get(i..i + 8) {
            // `get` gave exactly eight bytes; the fallback is never used.
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([b'"'; 8]));
            if has_byte(word, b'"') | has_byte(word, b'\\') != 0 {
                break;
            }
            i += 8;
        }
        match body.get(i) {
            None => return (body.len(), escaped),
            Some(b'"') => return (i, escaped),
            Some(b'\\') => {
                escaped = true;
                i += 2;
            }
            Some(_) => i += 1,
        }
    }
}

/// Non-zero when one of the eight bytes of `word` is `byte` (the classic
/// SWAR zero-byte test on `word` XOR `byte` repeated).
fn has_byte(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// [`check_json`]'s scan without limits, for a caller that only wants to
/// know what the body holds.
pub fn json_cost(body: &[u8]) -> JsonCost {
    // Without a depth limit the scan cannot fail; if it somehow did, the
    // cost says "look again" rather than "nothing to see".
    scan(body, usize::MAX).unwrap_or(JsonCost {
        odd_times: true,
        ..JsonCost::default()
    })
}

/// A 400 naming the depth limit.
pub fn too_deep(max_depth: usize) -> GatewayError {
    GatewayError::BadRequest {
        message: format!("the input nests deeper than {max_depth} levels (limits.max_depth)"),
        violation: None,
    }
}

/// Refuses a dotted path (`a.b.c`: a query key or a field mask path) with
/// more than `max_depth` segments, naming `what`.
pub fn check_path_depth(path: &str, what: &str, max_depth: usize) -> Result<(), GatewayError> {
    let segments = path.split('.').count();
    if segments > max_depth {
        return Err(GatewayError::bad_field(
            what,
            format!("{segments} nested fields exceed the limit of {max_depth} (limits.max_depth)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(json: &str) -> JsonCost {
        scan(json.as_bytes(), 1000).unwrap()
    }

    #[test]
    fn counts_objects_and_values() {
        assert_eq!(
            cost(r#"{"a": 1, "b": [1, 2, "x,]"], "c": {"d": null}}"#),
            JsonCost {
                depth: 2,
                objects: 2,
                values: 12,
                odd_times: false,
            }
        );
        assert_eq!(cost("[]").values, 1);
        assert_eq!(cost(r#""a\"b{""#).values, 1);
        assert_eq!(cost(r#""a\"b{""#).depth, 0);
    }

    #[test]
    fn strings_end_at_their_closing_quote_wherever_it_falls() {
        // Quotes and escapes at every offset around the eight-byte steps.
        for n in 0..20 {
            let text = "x".repeat(n);
            assert_eq!(
                string_end(format!("{text}\"").as_bytes(), 0),
                (n, false),
                "{n}"
            );
            let escaped = format!("{text}\\\"{text}\"");
            assert_eq!(string_end(escaped.as_bytes(), 0), (2 * n + 2, true), "{n}");
            // The array, the object, its key and its value, and two strings.
            let body = format!(r#"["{text}", {{"k{text}": "\\"}}, "{text}"]"#);
            assert_eq!(cost(&body).values, 6, "{body}");
        }
        assert_eq!(string_end(b"abc", 0), (3, false));
        assert_eq!(string_end(b"abcdefghijk\\", 0), (12, true));
        assert_eq!(cost(r#"["unterminated"#).values, 2);
    }

    #[test]
    fn notes_timestamps_and_durations_the_decoder_would_change() {
        let odd = |json: &str| cost(json).odd_times;
        assert!(!odd(
            r#"{"t": "2024-01-01T00:00:00Z", "d": "1.5s", "n": "books"}"#
        ));
        assert!(odd(r#"{"a": ["x", {"t": "2024-01-01T23:59:60Z"}]}"#));
        assert!(odd(r#"{"d": "1.0000000001s"}"#));
        assert!(odd(r#"{"d": "\u0031s"}"#));
        assert!(!odd(r#"{"q": "say \"hi\""}"#));
        assert!(json_cost(br#"{"d": "315576000001s"}"#).odd_times);
    }

    #[test]
    fn depth_is_checked_while_scanning() {
        let deep = "[".repeat(100_000);
        let err = scan(deep.as_bytes(), 64).unwrap_err();
        assert!(err.to_string().contains("64 levels"), "{err}");
        assert_eq!(scan("[".repeat(64).as_bytes(), 64).unwrap().depth, 64);
    }

    #[test]
    fn a_list_of_ones_is_expensive_only_where_values_are_messages() {
        let body = format!("{{\"f\": [{}1]}}", "1,".repeat(100_000));
        let c = cost(&body);
        assert_eq!(c.values, 100_004);
        let limits = DecodeLimits {
            max_depth: 64,
            max_decoded_bytes: 16 << 20,
        };
        assert!(check_json(body.as_bytes(), Shape::Typed, &limits).is_ok());
        let err = check_json(body.as_bytes(), Shape::Dynamic, &limits).unwrap_err();
        assert_eq!(err.http_status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn dotted_paths() {
        assert!(check_path_depth("a.b.c", "q", 3).is_ok());
        let err = check_path_depth("a.b.c.d", "q", 3).unwrap_err();
        assert!(err.to_string().contains("limits.max_depth"), "{err}");
    }
}
