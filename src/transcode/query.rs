//! Text → protobuf values, for path bindings and query parameters.
//!
//! Query keys follow grpc-gateway and Envoy: `a.b.c=v` for nested fields
//! (proto or JSON names), repeated keys for repeated fields, `m[key]=v` for
//! maps, enums by name or number, and the well-known types in their JSON
//! string forms (Timestamp as RFC 3339, Duration as `1.5s`, FieldMask as a
//! comma list, wrappers as their scalar).

use base64::Engine;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

use crate::routing::rules::top_field;

/// Parses one text value for a field (the element type for lists, the value
/// type for maps). The error says what was expected.
pub fn parse_value(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    parse_kind(&field.kind(), text)
}

fn parse_kind(kind: &Kind, text: &str) -> Result<Value, String> {
    // No trimming: `1%0A` is not the number 1.
    fn num<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
        text.parse::<T>()
            .map_err(|_| format!("{text:?} is not {what}"))
    }
    Ok(match kind {
        Kind::String => Value::String(text.to_string()),
        Kind::Bytes => Value::Bytes(decode_base64(text)?.into()),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{text:?} is not a boolean (true or false)")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(num(text, "a 32-bit integer")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(num(text, "a 64-bit integer")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(num(text, "an unsigned 32-bit integer")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(num(text, "an unsigned 64-bit integer")?),
        Kind::Float => finite(text, Value::F32(num(text, "a number")?))?,
        Kind::Double => finite(text, Value::F64(num(text, "a number")?))?,
        Kind::Enum(e) => {
            if let Some(v) = e.get_value_by_name(text) {
                Value::EnumNumber(v.number())
            } else if let Ok(n) = text.parse::<i32>() {
                Value::EnumNumber(n)
            } else {
                let names: Vec<_> = e.values().map(|v| v.name().to_string()).collect();
                return Err(format!(
                    "{text:?} is not a value of {} (one of {})",
                    e.full_name(),
                    names.join(", ")
                ));
            }
        }
        Kind::Message(m) => Value::Message(parse_message(m, text)?),
    })
}

/// Rust reads `1e39` as a float's Infinity: a value that is not finite must
/// have been written as `NaN`, `Infinity` or `-Infinity`.
fn finite(text: &str, v: Value) -> Result<Value, String> {
    let is_finite = match &v {
        Value::F32(x) => x.is_finite(),
        Value::F64(x) => x.is_finite(),
        _ => true,
    };
    if !is_finite {
        super::strict::check_non_finite(text)?;
    }
    Ok(v)
}

/// Well-known types that have a scalar JSON form.
fn parse_message(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    match desc.full_name() {
        name if crate::wkt::is_string_form(name) => {
            match name {
                "google.protobuf.Timestamp" => super::strict::check_timestamp(text)?,
                "google.protobuf.Duration" => super::strict::check_duration(text)?,
                _ => {}
            }
            let v = serde_json::Value::String(text.to_string());
            DynamicMessage::deserialize(desc.clone(), v).map_err(|e| {
                let hint = match desc.full_name() {
                    "google.protobuf.Timestamp" => {
                        "an RFC 3339 timestamp such as 2024-01-31T12:00:00Z"
                    }
                    "google.protobuf.Duration" => "a duration such as 1.5s",
                    _ => "a comma-separated list of field paths",
                };
                format!("{text:?} is not {hint} ({e})")
            })
        }
        name if crate::wkt::is_wrapper(name) => {
            let inner = desc
                .get_field_by_name("value")
                .ok_or_else(|| format!("{} has no value field", desc.full_name()))?;
            let mut msg = DynamicMessage::new(desc.clone());
            msg.set_field(&inner, parse_value(&inner, text)?);
            Ok(msg)
        }
        other => Err(format!(
            "is a message ({other}); set its fields with name.field=value"
        )),
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or_else(|| format!("{text:?} is not base64"))
}

/// A parsed query key: field names, and a map key on the last one.
#[derive(Debug, PartialEq, Eq)]
pub struct QueryKey<'a> {
    /// `a.b.c` split on dots.
    pub path: Vec<&'a str>,
    /// `m[key]`'s key.
    pub map_key: Option<&'a str>,
}

/// Splits `a.b[key]` into names and map key.
///
/// ```
/// use protogate::transcode::query::parse_key;
/// let k = parse_key("filter.labels[env]").unwrap();
/// assert_eq!(k.path, vec!["filter", "labels"]);
/// assert_eq!(k.map_key, Some("env"));
/// ```
pub fn parse_key(key: &str) -> Option<QueryKey<'_>> {
    let (names, map_key) = match key.find('[') {
        Some(i) => {
            let rest = key[i + 1..].strip_suffix(']')?;
            if rest.contains(['[', ']']) {
                return None;
            }
            (&key[..i], Some(rest))
        }
        None => (key, None),
    };
    let path: Vec<&str> = names.split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(QueryKey { path, map_key })
}

/// Resolves a query key to fields. `Ok(None)` when a name is unknown.
pub fn resolve_key(
    msg: &MessageDescriptor,
    key: &QueryKey<'_>,
) -> Result<Option<Vec<FieldDescriptor>>, String> {
    let mut fields = Vec::with_capacity(key.path.len());
    let mut current = msg.clone();
    for (i, name) in key.path.iter().enumerate() {
        let Some(f) = top_field(&current, name) else {
            return Ok(None);
        };
        if i + 1 < key.path.len() {
            match f.kind() {
                Kind::Message(m) if !f.is_list() && !f.is_map() => current = m,
                _ => {
                    return Err(format!(
                        "{name:?} is not a singular message field, so it has no subfields"
                    ));
                }
            }
        }
        fields.push(f);
    }
    Ok(Some(fields))
}

/// Resolves `key` as field names written out whole, for names that hold
/// `.`, `[` or `]` themselves (a `json_name` may): at each level the longest
/// field name (JSON or proto) that the rest of the key starts with, followed
/// by `.` or the end. `None` when no reading resolves.
///
/// ```
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let req = pool.get_message_by_name("library.v1.ListBooksRequest").unwrap();
/// let fields = protogate::transcode::query::resolve_literal(&req, "filter.genre").unwrap();
/// assert_eq!(fields.len(), 2);
/// assert!(protogate::transcode::query::resolve_literal(&req, "filter.nope").is_none());
/// ```
pub fn resolve_literal(msg: &MessageDescriptor, key: &str) -> Option<Vec<FieldDescriptor>> {
    let mut fields = Vec::new();
    let mut current = msg.clone();
    let mut rest = key;
    loop {
        let (len, field) = longest_name(&current, rest)?;
        let tail = &rest[len..];
        if tail.is_empty() {
            fields.push(field);
            return Some(fields);
        }
        match field.kind() {
            Kind::Message(m) if !field.is_list() && !field.is_map() => current = m,
            _ => return None,
        }
        fields.push(field);
        rest = &tail[1..];
    }
}

/// The field whose name (JSON or proto) `text` starts with, followed by `.`
/// or the end; the longest such name, and its length.
fn longest_name(msg: &MessageDescriptor, text: &str) -> Option<(usize, FieldDescriptor)> {
    let mut best: Option<(usize, FieldDescriptor)> = None;
    for f in msg.fields() {
        for name in [f.json_name(), f.name()] {
            let whole = text
                .strip_prefix(name)
                .is_some_and(|t| t.is_empty() || t.starts_with('.'));
            if whole && best.as_ref().is_none_or(|(len, _)| name.len() > *len) {
                best = Some((name.len(), f.clone()));
            }
        }
    }
    best
}

/// Sets (or appends, or inserts into a map) the value at `fields`.
pub fn set_path(
    msg: &mut DynamicMessage,
    fields: &[FieldDescriptor],
    map_key: Option<&str>,
    text: &str,
) -> Result<(), String> {
    let Some((leaf, parents)) = fields.split_last() else {
        return Err("empty field path".into());
    };
    let mut target = msg;
    for f in parents {
        // get_field_mut would silently clear another member of f's oneof.
        check_oneof(target, f)?;
        target = match target.get_field_mut(f) {
            Value::Message(m) => m,
            _ => return Err(format!("{} is not a message", f.name())),
        };
    }
    if leaf.is_map() {
        let Some(k) = map_key else {
            return Err(format!(
                "{} is a map; use {}[key]=value",
                leaf.name(),
                leaf.name()
            ));
        };
        let Kind::Message(entry) = leaf.kind() else {
            return Err(format!("{} is not a map", leaf.name()));
        };
        let key = parse_map_key(&entry.map_entry_key_field(), k)?;
        let value = parse_value(&entry.map_entry_value_field(), text)?;
        if let Value::Map(m) = target.get_field_mut(leaf) {
            m.insert(key, value);
        }
        return Ok(());
    }
    if map_key.is_some() {
        return Err(format!("{} is not a map", leaf.name()));
    }
    let value = parse_value(leaf, text)?;
    check_oneof(target, leaf)?;
    if leaf.is_list() {
        if let Value::List(l) = target.get_field_mut(leaf) {
            l.push(value);
        }
    } else {
        target.set_field(leaf, value);
    }
    Ok(())
}

/// Refuses to set `field` when another member of its oneof is set.
fn check_oneof(msg: &DynamicMessage, field: &FieldDescriptor) -> Result<(), String> {
    let Some(oneof) = field.containing_oneof() else {
        return Ok(());
    };
    match oneof.fields().find(|f| f != field && msg.has_field(f)) {
        Some(other) => Err(format!(
            "{} and {} are members of oneof {}: set only one",
            other.name(),
            field.name(),
            oneof.name()
        )),
        None => Ok(()),
    }
}

fn parse_map_key(field: &FieldDescriptor, text: &str) -> Result<MapKey, String> {
    Ok(match parse_value(field, text)? {
        Value::String(s) => MapKey::String(s),
        Value::Bool(b) => MapKey::Bool(b),
        Value::I32(n) => MapKey::I32(n),
        Value::I64(n) => MapKey::I64(n),
        Value::U32(n) => MapKey::U32(n),
        Value::U64(n) => MapKey::U64(n),
        other => return Err(format!("{other:?} cannot be a map key")),
    })
}

/// True when `msg` (or a message it holds) is google.api.HttpBody.
pub fn is_http_body(msg: &MessageDescriptor) -> bool {
    msg.full_name() == "google.api.HttpBody"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            parse_key("a.b"),
            Some(QueryKey {
                path: vec!["a", "b"],
                map_key: None
            })
        );
        assert_eq!(parse_key("m[k.x]").unwrap().map_key, Some("k.x"));
        assert_eq!(parse_key("a..b"), None);
        assert_eq!(parse_key("m[k"), None);
        assert_eq!(parse_key("m[a][b]"), None);
    }

    #[test]
    fn scalars() {
        assert_eq!(parse_kind(&Kind::Int64, "-12"), Ok(Value::I64(-12)));
        assert_eq!(parse_kind(&Kind::Bool, "true"), Ok(Value::Bool(true)));
        assert!(parse_kind(&Kind::Bool, "yes").is_err());
        assert!(
            parse_kind(&Kind::Uint32, "-1")
                .unwrap_err()
                .contains("unsigned")
        );
        assert_eq!(parse_kind(&Kind::Double, "1.5"), Ok(Value::F64(1.5)));
        assert_eq!(
            parse_kind(&Kind::Bytes, "aGk"),
            Ok(Value::Bytes(b"hi".to_vec().into()))
        );
        assert!(parse_kind(&Kind::Int32, "99999999999").is_err());
        assert!(parse_kind(&Kind::Float, "1e39").is_err());
        assert!(parse_kind(&Kind::Float, "inf").is_err());
        assert!(parse_kind(&Kind::Double, "1e309").is_err());
        assert_eq!(
            parse_kind(&Kind::Float, "-Infinity"),
            Ok(Value::F32(f32::NEG_INFINITY))
        );
        assert_eq!(parse_kind(&Kind::Float, "3.4e38"), Ok(Value::F32(3.4e38)));
    }
}
