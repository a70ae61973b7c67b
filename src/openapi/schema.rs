//! JSON Schemas (OpenAPI 3.1's dialect) for protobuf types, following the
//! proto3 JSON mapping and the gateway's `json:` options: 64-bit integers
//! as strings, bytes as base64, enums by name (or number with
//! `enums_as_ints`), the well-known types in their special forms, maps as
//! `additionalProperties`, oneofs as "at most one of", and every message
//! and enum a component reached by `$ref` (so recursive messages are fine).

use std::collections::{BTreeMap, HashSet};

use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, EnumDescriptor, ExtensionDescriptor,
    FieldDescriptor, Kind, MessageDescriptor,
};
use serde_json::{Map, Value, json};

use super::Options;
use super::comments::Comments;

/// `google.api.FieldBehavior` values the document uses.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;
const INPUT_ONLY: i32 = 4;

/// The components reached so far, and those still to describe.
pub struct Schemas<'a> {
    opts: &'a Options,
    comments: &'a Comments,
    field_behavior: Option<ExtensionDescriptor>,
    components: BTreeMap<String, Value>,
    queued: Vec<Pending>,
    seen: HashSet<String>,
}

enum Pending {
    Message(MessageDescriptor),
    Enum(EnumDescriptor),
}

/// A `$ref` to the component named `name`.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

impl<'a> Schemas<'a> {
    /// An empty set of components for types of `pool`.
    pub fn new(pool: &DescriptorPool, opts: &'a Options, comments: &'a Comments) -> Schemas<'a> {
        Schemas {
            opts,
            comments,
            field_behavior: pool.get_extension_by_name("google.api.field_behavior"),
            components: BTreeMap::new(),
            queued: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// The name a field has in JSON, as the gateway writes it.
    pub fn json_name<'f>(&self, f: &'f FieldDescriptor) -> &'f str {
        if self.opts.proto_field_names {
            f.name()
        } else {
            f.json_name()
        }
    }

    /// The schema of a message: its special form for well-known types, else
    /// a `$ref` to its component (described later, in [`Schemas::finish`]).
    pub fn message(&mut self, m: &MessageDescriptor) -> Value {
        if let Some(wkt) = well_known(m.full_name()) {
            return wkt;
        }
        if self.seen.insert(m.full_name().to_string()) {
            self.queued.push(Pending::Message(m.clone()));
        }
        reference(m.full_name())
    }

    /// The schema of a field's value, with its description, `readOnly`,
    /// `writeOnly` and `deprecated`.
    pub fn field(&mut self, f: &FieldDescriptor) -> Value {
        let mut schema = self.field_value(f);
        let Value::Object(obj) = &mut schema else {
            return schema;
        };
        let file = f.parent_file();
        if let Some(text) = self.comments.get(&file, f.path()) {
            obj.insert("description".into(), text.into());
        }
        let behavior = self.behavior(f);
        if behavior.contains(&OUTPUT_ONLY) {
            obj.insert("readOnly".into(), true.into());
        }
        if behavior.contains(&INPUT_ONLY) {
            obj.insert("writeOnly".into(), true.into());
        }
        if deprecated(&f.options()) {
            obj.insert("deprecated".into(), true.into());
        }
        schema
    }

    /// The schema of a field's value: an array for a repeated field, an
    /// object for a map, else its kind's.
    pub fn field_value(&mut self, f: &FieldDescriptor) -> Value {
        if f.is_map()
            && let Kind::Message(entry) = f.kind()
        {
            let key = entry.map_entry_key_field();
            let value = entry.map_entry_value_field();
            return json!({
                "type": "object",
                "propertyNames": key_names(&key.kind()),
                "additionalProperties": self.kind(&value.kind()),
            });
        }
        let item = self.kind(&f.kind());
        if f.is_list() {
            json!({ "type": "array", "items": item })
        } else {
            item
        }
    }

    /// The schema of one value of `kind`.
    pub fn kind(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => float("double"),
            Kind::Float => float("float"),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX })
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => int64("int64", "^-?[0-9]+$"),
            Kind::Uint64 | Kind::Fixed64 => int64("uint64", "^[0-9]+$"),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => bytes(),
            Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue" => {
                json!({ "type": "null" })
            }
            Kind::Enum(e) => {
                if self.seen.insert(e.full_name().to_string()) {
                    self.queued.push(Pending::Enum(e.clone()));
                }
                reference(e.full_name())
            }
            Kind::Message(m) => self.message(m),
        }
    }

    /// True when the field is `google.api.field_behavior = REQUIRED` (or a
    /// proto2 `required` field).
    pub fn is_required(&self, f: &FieldDescriptor) -> bool {
        f.cardinality() == Cardinality::Required || self.behavior(f).contains(&REQUIRED)
    }

    /// The field's `google.api.field_behavior` values.
    fn behavior(&self, f: &FieldDescriptor) -> Vec<i32> {
        let Some(ext) = &self.field_behavior else {
            return Vec::new();
        };
        let options = f.options();
        if !options.has_extension(ext) {
            return Vec::new();
        }
        match options.get_extension(ext).as_list() {
            Some(values) => values.iter().filter_map(|v| v.as_enum_number()).collect(),
            None => Vec::new(),
        }
    }

    /// Describes every component reached (the queue grows as messages
    /// reach others) and returns them by full name.
    pub fn finish(mut self) -> BTreeMap<String, Value> {
        while let Some(next) = self.queued.pop() {
            let (name, schema) = match next {
                Pending::Message(m) => (m.full_name().to_string(), self.describe_message(&m)),
                Pending::Enum(e) => (e.full_name().to_string(), self.describe_enum(&e)),
            };
            self.components.insert(name, schema);
        }
        self.components
    }

    fn describe_message(&mut self, m: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for f in m.fields() {
            let name = self.json_name(&f).to_string();
            if self.is_required(&f) {
                required.push(Value::from(name.clone()));
            }
            properties.insert(name, self.field(&f));
        }
        let mut out = Map::new();
        out.insert("type".into(), "object".into());
        if let Some(text) = self.comments.get(&m.parent_file(), m.path()) {
            out.insert("description".into(), text.into());
        }
        out.insert("properties".into(), properties.into());
        if !required.is_empty() {
            out.insert("required".into(), required.into());
        }
        // The gateway refuses unknown fields (proto names are also read,
        // but the document names each field once).
        if self.opts.reject_unknown_fields {
            out.insert("additionalProperties".into(), false.into());
        }
        let oneofs: Vec<Value> = m
            .oneofs()
            .filter(|o| !o.is_synthetic())
            .map(|o| {
                let names: Vec<String> =
                    o.fields().map(|f| self.json_name(&f).to_string()).collect();
                let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                let mut text = format!("`{}`: at most one of {}.", o.name(), listed.join(", "));
                if let Some(comment) = self.comments.get(&m.parent_file(), o.path()) {
                    text = format!("{comment}\n\n{text}");
                }
                let mut schema = at_most_one(&names);
                if let Value::Object(obj) = &mut schema {
                    obj.insert("description".into(), text.into());
                }
                schema
            })
            .collect();
        if !oneofs.is_empty() {
            out.insert("allOf".into(), oneofs.into());
        }
        if deprecated(&m.options()) {
            out.insert("deprecated".into(), true.into());
        }
        out.into()
    }

    fn describe_enum(&self, e: &EnumDescriptor) -> Value {
        let mut lines = Vec::new();
        if let Some(text) = self.comments.get(&e.parent_file(), e.path()) {
            lines.push(text.to_string());
        }
        for v in e.values() {
            if let Some(text) = self.comments.get(&e.parent_file(), v.path()) {
                lines.push(format!("- `{}`: {}", v.name(), text.replace('\n', " ")));
            }
        }
        let mut out = if self.opts.enums_as_ints {
            let numbers: Vec<i32> = e.values().map(|v| v.number()).collect();
            json!({ "type": "integer", "format": "int32", "enum": numbers })
        } else {
            let names: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
            json!({ "type": "string", "enum": names })
        };
        if !lines.is_empty()
            && let Value::Object(obj) = &mut out
        {
            obj.insert("description".into(), lines.join("\n").into());
        }
        out
    }
}

/// At most one of `names` is present: exactly one branch holds, the last
/// when none is.
fn at_most_one(names: &[String]) -> Value {
    let each: Vec<Value> = names.iter().map(|n| json!({ "required": [n] })).collect();
    let mut branches = each.clone();
    branches.push(json!({ "not": { "anyOf": each } }));
    json!({ "oneOf": branches })
}

/// `deprecated = true` in a descriptor's options.
pub fn deprecated(options: &DynamicMessage) -> bool {
    options
        .get_field_by_name("deprecated")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Map keys are strings in JSON; integer and bool keys are written as
/// their text.
fn key_names(kind: &Kind) -> Value {
    match kind {
        Kind::Bool => json!({ "enum": ["true", "false"] }),
        Kind::String => json!({ "type": "string" }),
        _ => json!({ "pattern": "^-?[0-9]+$" }),
    }
}

/// Floats are numbers, and the strings `NaN`, `Infinity`, `-Infinity`.
fn float(format: &str) -> Value {
    json!({ "oneOf": [
        { "type": "number", "format": format },
        { "type": "string", "enum": ["NaN", "Infinity", "-Infinity"] },
    ] })
}

/// 64-bit integers are decimal strings in proto3 JSON.
fn int64(format: &str, pattern: &str) -> Value {
    json!({ "type": "string", "format": format, "pattern": pattern })
}

fn bytes() -> Value {
    json!({ "type": "string", "format": "byte", "contentEncoding": "base64" })
}

/// The proto3 JSON forms of the well-known types, inline; `None` for other
/// messages.
fn well_known(name: &str) -> Option<Value> {
    let nullable = |t: &str, extra: Value| {
        let mut v = json!({ "type": [t, "null"] });
        if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
            o.extend(e);
        }
        v
    };
    Some(match name {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => json!({
            "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "A duration in seconds with up to nine fractional digits, ending in `s`: `1.5s`.",
        }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "A field mask: field paths separated by commas, in lowerCamelCase (`title,publisher.name`).",
        }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({ "description": "Any JSON value." }),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.Empty" => json!({ "type": "object", "properties": {} }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string", "description": "A type URL: `type.googleapis.com/<full message name>`." } },
            "required": ["@type"],
            "additionalProperties": true,
            "description": "A message of the type `@type` names: its fields beside `@type`, or `value` for a well-known type with a special JSON form.",
        }),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => {
            json!({ "type": ["number", "string", "null"] })
        }
        "google.protobuf.Int32Value" => nullable("integer", json!({ "format": "int32" })),
        "google.protobuf.UInt32Value" => nullable("integer", json!({ "minimum": 0 })),
        "google.protobuf.Int64Value" => nullable(
            "string",
            json!({ "format": "int64", "pattern": "^-?[0-9]+$" }),
        ),
        "google.protobuf.UInt64Value" => nullable(
            "string",
            json!({ "format": "uint64", "pattern": "^[0-9]+$" }),
        ),
        "google.protobuf.BoolValue" => nullable("boolean", json!({})),
        "google.protobuf.StringValue" => nullable("string", json!({})),
        "google.protobuf.BytesValue" => nullable("string", json!({ "contentEncoding": "base64" })),
        _ => return None,
    })
}

/// True for message types written as something other than an object
/// (their query parameter is one value).
pub fn is_scalar_form(name: &str) -> bool {
    crate::wkt::is_wrapper(name) || crate::wkt::is_string_form(name)
}
