//! Well-known types in valid forms: Timestamp, Duration, FieldMask,
//! wrappers, Struct/Value/ListValue, Any, Empty and google.api.HttpBody.

use std::collections::HashMap;

use fake::rand::RngExt;
use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, Value};
use rand_chacha::ChaCha8Rng;

use super::formats::{lower_word, sentence};
use super::names::{TIME_FROM, TIME_TO, words};
use super::{Draw, HTTP_BODY, Site, is_well_known, put, set};

impl Draw {
    /// A well-known type in a valid form: `None` when `desc` is not one,
    /// `Some(None)` when it is but none can be made (an Any without Empty
    /// in the pool).
    pub(super) fn well_known(
        &self,
        desc: &MessageDescriptor,
        site: Site<'_>,
        path: &str,
        depth: usize,
    ) -> Option<Option<DynamicMessage>> {
        let mut rng = self.rng(path);
        let mut msg = DynamicMessage::new(desc.clone());
        match desc.full_name() {
            "google.protobuf.Timestamp" => {
                set(
                    &mut msg,
                    "seconds",
                    Value::I64(rng.random_range(TIME_FROM..TIME_TO)),
                );
                set(
                    &mut msg,
                    "nanos",
                    Value::I32(rng.random_range(0..1000) * 1_000_000),
                );
            }
            "google.protobuf.Duration" => {
                let short = words(site.name).any(|w| {
                    ["timeout", "deadline", "ttl", "interval", "delay", "backoff"].contains(&w)
                });
                let seconds = if short {
                    rng.random_range(1..=60)
                } else {
                    rng.random_range(60..=36_000)
                };
                set(&mut msg, "seconds", Value::I64(seconds));
                set(
                    &mut msg,
                    "nanos",
                    Value::I32(rng.random_range(0..4) * 250_000_000),
                );
            }
            "google.protobuf.FieldMask" => {
                let paths = mask_paths(site.owner, &mut rng);
                set(&mut msg, "paths", Value::List(paths));
            }
            name if crate::wkt::is_wrapper(name) => {
                let field = desc.get_field_by_name("value")?;
                if let Some(v) = self.single(&field.kind(), site, &format!("{path}.value"), depth) {
                    put(&mut msg, &field, v);
                }
            }
            "google.protobuf.Struct" => {
                let entry = match desc.get_field_by_name("fields")?.kind() {
                    Kind::Message(e) => e,
                    _ => return Some(None),
                };
                let Kind::Message(value_desc) = entry.map_entry_value_field().kind() else {
                    return Some(None);
                };
                let mut fields = HashMap::new();
                let n = rng.random_range(2..=3);
                for i in 0..n * 4 {
                    if fields.len() == n {
                        break;
                    }
                    let mut r = self.rng(&format!("{path}{{{i}}}"));
                    let key = MapKey::String(lower_word(&mut r));
                    fields
                        .entry(key)
                        .or_insert_with(|| Value::Message(json_value(&value_desc, &mut r)));
                }
                set(&mut msg, "fields", Value::Map(fields));
            }
            "google.protobuf.Value" => return Some(Some(json_value(desc, &mut rng))),
            "google.protobuf.ListValue" => {
                let Kind::Message(value_desc) = desc.get_field_by_name("values")?.kind() else {
                    return Some(None);
                };
                let n = rng.random_range(2..=3);
                let values = (0..n)
                    .map(|_| Value::Message(json_value(&value_desc, &mut rng)))
                    .collect();
                set(&mut msg, "values", Value::List(values));
            }
            "google.protobuf.Any" => {
                // Any other payload would need a type the JSON side can resolve.
                let empty = desc
                    .parent_pool()
                    .get_message_by_name("google.protobuf.Empty");
                if empty.is_none() {
                    return Some(None);
                }
                set(
                    &mut msg,
                    "type_url",
                    Value::String("type.googleapis.com/google.protobuf.Empty".into()),
                );
            }
            "google.protobuf.Empty" => {}
            HTTP_BODY => {
                set(
                    &mut msg,
                    "content_type",
                    Value::String("text/plain; charset=utf-8".into()),
                );
                set(
                    &mut msg,
                    "data",
                    Value::Bytes(sentence(&mut rng).into_bytes().into()),
                );
            }
            _ => return None,
        }
        Some(Some(msg))
    }
}

/// FieldMask paths: one or two proto3-JSON-safe field names of the first
/// singular message field next to the mask (UpdateBookRequest.book).
fn mask_paths(owner: Option<&MessageDescriptor>, rng: &mut ChaCha8Rng) -> Vec<Value> {
    let target = owner.and_then(|o| {
        o.fields().find_map(|f| match f.kind() {
            Kind::Message(m) if !f.is_list() && !is_well_known(&m) => Some(m),
            _ => None,
        })
    });
    let Some(target) = target else {
        return Vec::new();
    };
    // Names that survive the lowerCamel round trip of the JSON form.
    let names: Vec<String> = target
        .fields()
        .map(|f| f.name().to_owned())
        .filter(|n| {
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !n.contains("__")
                && !n.ends_with('_')
                && n.split('_')
                    .skip(1)
                    .all(|w| w.starts_with(|c: char| c.is_ascii_lowercase()))
        })
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    let start = rng.random_range(0..names.len());
    let take = rng.random_range(1..=2).min(names.len());
    (0..take)
        .map(|i| Value::String(names[(start + i) % names.len()].clone()))
        .collect()
}

/// A small google.protobuf.Value: a string, a number or a bool.
fn json_value(desc: &MessageDescriptor, rng: &mut ChaCha8Rng) -> DynamicMessage {
    let mut v = DynamicMessage::new(desc.clone());
    match rng.random_range(0..3) {
        0 => set(&mut v, "string_value", Value::String(lower_word(rng))),
        1 => set(
            &mut v,
            "number_value",
            Value::F64(f64::from(rng.random_range(0..100_000)) / 100.0),
        ),
        _ => set(&mut v, "bool_value", Value::Bool(rng.random_bool(0.5))),
    }
    v
}
