//! What a decoded request message must satisfy before it is sent, checked
//! once, in one walk over the message the body, query and path built:
//!
//! - it nests no deeper than `limits.max_depth` *as protobuf counts it*:
//!   every message and map entry is a level, so each JSON object inside a
//!   `google.protobuf.Struct` costs three (Struct → entry → Value). Protobuf
//!   decoders refuse nesting past 100 levels (prost, C++, Java), so a message
//!   that passed here but not there would fail only once the upstream (or
//!   the gateway rendering its echo) decodes it: a 500 instead of a 400.
//! - proto2 `required` fields are set (on every message present).

use prost_reflect::{
    DynamicMessage, FieldDescriptor, MapKey, MessageDescriptor, ReflectMessage, Value,
};

use super::budget::{DecodeLimits, PROTOBUF_MAX_DEPTH};
use crate::status::GatewayError;

/// Refuses a message nested deeper than the limit or missing a required
/// field (a 400 naming every missing field by its JSON path).
///
/// ```
/// use prost_reflect::DynamicMessage;
/// use protogate::transcode::{budget::DecodeLimits, validate::check_message};
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let book = pool.get_message_by_name("library.v1.Book").unwrap();
/// let msg = DynamicMessage::deserialize(book, serde_json::json!({"publisher": {"name": "P"}})).unwrap();
/// assert!(check_message(&msg, &DecodeLimits::default()).is_ok());
/// let shallow = DecodeLimits { max_depth: 1, ..DecodeLimits::default() };
/// assert!(check_message(&msg, &shallow).is_err());
/// ```
pub fn check_message(msg: &DynamicMessage, limits: &DecodeLimits) -> Result<(), GatewayError> {
    let max = limits.max_depth.min(PROTOBUF_MAX_DEPTH);
    // Every request passes this walk; only a failing one is walked again
    // to say where (the path costs allocations).
    if valid(msg, 1, max) {
        return Ok(());
    }
    let mut walk = Walk {
        max,
        too_deep: None,
        missing: Vec::new(),
    };
    walk.message(msg, 1, &mut Vec::new());
    if let Some(field) = walk.too_deep {
        return Err(GatewayError::bad_field(
            field,
            format!(
                "nests deeper than {} levels as protobuf counts them (every message and map \
                 entry is one; limits.max_depth, at most {PROTOBUF_MAX_DEPTH})",
                walk.max
            ),
        ));
    }
    match walk.missing.first() {
        None => Ok(()),
        Some(first) => Err(GatewayError::bad_field(
            first.clone(),
            format!(
                "required field{} not set: {}",
                if walk.missing.len() > 1 { "s" } else { "" },
                walk.missing.join(", ")
            ),
        )),
    }
}

/// Whether `msg`, at `depth`, is within `max` and has its required fields.
fn valid(msg: &DynamicMessage, depth: usize, max: usize) -> bool {
    if depth > max || lacks_required(msg) {
        return false;
    }
    let inner = |v: &Value, depth| match v {
        Value::Message(m) => valid(m, depth, max),
        _ => true,
    };
    msg.fields().all(|(_, value)| match value {
        Value::Message(m) => valid(m, depth + 1, max),
        Value::List(items) => items.iter().all(|v| inner(v, depth + 1)),
        Value::Map(entries) => {
            entries.is_empty() || (depth < max && entries.values().all(|v| inner(v, depth + 2)))
        }
        _ => true,
    })
}

/// Whether a required field of `msg` is unset (only proto2 has them).
fn lacks_required(msg: &DynamicMessage) -> bool {
    let desc = msg.descriptor();
    is_proto2(&desc) && desc.fields().any(|f| f.is_required() && !msg.has_field(&f))
}

/// proto2 files say so, or nothing (the default syntax).
fn is_proto2(desc: &MessageDescriptor) -> bool {
    matches!(desc.parent_file_descriptor_proto().syntax(), "proto2" | "")
}

/// One step from the root to a message inside it.
enum Step<'a> {
    Field(FieldDescriptor),
    Index(usize),
    Key(&'a MapKey),
}

struct Walk {
    max: usize,
    /// The top-level field under which the message nests too deep.
    too_deep: Option<String>,
    missing: Vec<String>,
}

impl Walk {
    fn message<'a>(&mut self, msg: &'a DynamicMessage, depth: usize, path: &mut Vec<Step<'a>>) {
        if self.too_deep.is_some() {
            return;
        }
        if depth > self.max {
            self.too_deep = Some(top(path));
            return;
        }
        self.required(msg, path);
        for (field, value) in msg.fields() {
            path.push(Step::Field(field));
            match value {
                Value::Message(m) => self.message(m, depth + 1, path),
                Value::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Value::Message(m) = item {
                            path.push(Step::Index(i));
                            self.message(m, depth + 1, path);
                            path.pop();
                        }
                    }
                }
                Value::Map(entries) => self.map(entries, depth, path),
                _ => {}
            }
            path.pop();
        }
    }

    /// A map's entries are messages of their own, one level down.
    fn map<'a>(
        &mut self,
        entries: &'a std::collections::HashMap<MapKey, Value>,
        depth: usize,
        path: &mut Vec<Step<'a>>,
    ) {
        if entries.is_empty() {
            return;
        }
        if depth + 1 > self.max {
            self.too_deep = Some(top(path));
            return;
        }
        for (key, value) in entries {
            if let Value::Message(m) = value {
                path.push(Step::Key(key));
                self.message(m, depth + 2, path);
                path.pop();
            }
        }
    }

    /// Notes the required fields `msg` lacks (only proto2 has them).
    fn required(&mut self, msg: &DynamicMessage, path: &[Step<'_>]) {
        let desc = msg.descriptor();
        if !is_proto2(&desc) {
            return;
        }
        for field in desc.fields().filter(FieldDescriptor::is_required) {
            if !msg.has_field(&field) {
                self.missing.push(display(path, field));
            }
        }
    }
}

/// The first field of `path` (JSON name), or `body` at the root.
fn top(path: &[Step<'_>]) -> String {
    match path.first() {
        Some(Step::Field(f)) => f.json_name().to_string(),
        _ => "body".to_string(),
    }
}

/// `book.authors[2].name`, in JSON names.
fn display(path: &[Step<'_>], last: FieldDescriptor) -> String {
    let mut out = String::new();
    for step in path {
        push_step(&mut out, step);
    }
    push_step(&mut out, &Step::Field(last));
    out
}

fn push_step(out: &mut String, step: &Step<'_>) {
    match step {
        Step::Field(f) => {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(f.json_name());
        }
        Step::Index(i) => out.push_str(&format!("[{i}]")),
        Step::Key(k) => out.push_str(&format!("[{}]", key_text(k))),
    }
}

fn key_text(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(json: serde_json::Value) -> DynamicMessage {
        let desc = crate::descriptors::example_pool()
            .get_message_by_name("library.v1.Book")
            .unwrap();
        DynamicMessage::deserialize(desc, json).unwrap()
    }

    fn check(msg: &DynamicMessage, max_depth: usize) -> Result<(), GatewayError> {
        let limits = DecodeLimits {
            max_depth,
            ..DecodeLimits::default()
        };
        check_message(msg, &limits)
    }

    #[test]
    fn map_entries_and_messages_are_levels() {
        let labels = book(serde_json::json!({"title": "t", "labels": {"a": "b"}}));
        assert!(check(&labels, 2).is_ok());
        let e = check(&labels, 1).unwrap_err();
        assert!(
            e.to_string().starts_with("labels: nests deeper than 1"),
            "{e}"
        );
        let publisher = book(serde_json::json!({"publisher": {"name": "p"}}));
        assert!(check(&publisher, 2).is_ok());
        assert!(check(&publisher, 1).is_err());
        // An empty map adds no level.
        assert!(check(&book(serde_json::json!({"labels": {}})), 1).is_ok());
    }
}
