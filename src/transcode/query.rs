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
        Kind::Float => Value::F32(num(text, "a number")?),
        Kind::Double => Value::F64(num(text, "a number")?),
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
    if let Some(oneof) = leaf.containing_oneof()
        && let Some(other) = oneof.fields().find(|f| f != leaf && target.has_field(f))
    {
        return Err(format!(
            "{} and {} are members of oneof {}: set only one",
            other.name(),
            leaf.name(),
            oneof.name()
        ));
    }
    if leaf.is_list() {
        if let Value::List(l) = target.get_field_mut(leaf) {
            l.push(value);
        }
    } else {
        target.set_field(leaf, value);
    }
    Ok(())
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
    }
}
