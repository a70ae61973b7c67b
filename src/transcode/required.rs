//! `validation: {required_fields: true}`: fields marked
//! `google.api.field_behavior = REQUIRED` must be set in a JSON request
//! before anything is sent, or the request gets one 400 naming every
//! missing field by its JSON path (`book.title, book.authors[0].name`).
//!
//! "Set" is protobuf's presence: a proto3 scalar without presence holding
//! its default (`0`, `""`) is unset, as the upstream would see it. Nested
//! messages are checked where present. A request with an `update_mask`
//! (AIP-134) is checked at its top level only, unless the mask is `*`: a
//! partial update names the fields it changes and may leave out required
//! ones it does not touch.
//!
//! Which fields are required is read from the descriptors once per
//! configuration ([`RequiredFields::of`]); a request pays a walk over the
//! messages it holds, and only for types that have required fields.

use std::collections::HashMap;

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use crate::status::GatewayError;

/// `google.api.FieldBehavior.REQUIRED`.
const REQUIRED: i32 = 2;

/// Every message type of a pool that has REQUIRED fields, and those fields.
#[derive(Debug, Default)]
pub struct RequiredFields {
    by_type: HashMap<String, Box<[FieldDescriptor]>>,
}

impl RequiredFields {
    /// Reads the REQUIRED fields of every message type in `pool`.
    ///
    /// ```
    /// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
    /// let required = protogate::transcode::required::RequiredFields::of(&pool);
    /// assert_eq!(required.types(), 0); // the example API marks no field REQUIRED
    /// ```
    pub fn of(pool: &DescriptorPool) -> RequiredFields {
        let Some(ext) = pool.get_extension_by_name("google.api.field_behavior") else {
            return RequiredFields::default();
        };
        let mut by_type = HashMap::new();
        for message in pool.all_messages() {
            let required: Box<[FieldDescriptor]> = message
                .fields()
                .filter(|f| {
                    let options = f.options();
                    options.has_extension(&ext)
                        && options
                            .get_extension(&ext)
                            .as_list()
                            .is_some_and(|l| l.iter().any(|v| v.as_enum_number() == Some(REQUIRED)))
                })
                .collect();
            if !required.is_empty() {
                by_type.insert(message.full_name().to_string(), required);
            }
        }
        RequiredFields { by_type }
    }

    /// How many message types have required fields.
    pub fn types(&self) -> usize {
        self.by_type.len()
    }

    /// Refuses `request` when a required field is unset (a 400 naming
    /// every one, the first as the field).
    pub fn check(&self, request: &DynamicMessage) -> Result<(), GatewayError> {
        if self.by_type.is_empty() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let deep = !partial_update(request);
        self.walk(request, "", deep, &mut missing);
        match missing.first() {
            None => Ok(()),
            Some(first) => Err(GatewayError::bad_field(
                first.clone(),
                format!(
                    "required field{} not set (google.api.field_behavior REQUIRED): {}",
                    if missing.len() > 1 { "s" } else { "" },
                    missing.join(", ")
                ),
            )),
        }
    }

    fn walk(&self, msg: &DynamicMessage, at: &str, deep: bool, missing: &mut Vec<String>) {
        let desc = msg.descriptor();
        if let Some(required) = self.by_type.get(desc.full_name()) {
            for f in required.iter().filter(|f| !msg.has_field(f)) {
                missing.push(join(at, f.json_name()));
            }
        }
        if !deep {
            return;
        }
        for (field, value) in msg.fields() {
            if !self.may_hold_required(&field) {
                continue;
            }
            let here = join(at, field.json_name());
            match value {
                Value::Message(m) => self.walk(m, &here, true, missing),
                Value::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Value::Message(m) = item {
                            self.walk(m, &format!("{here}[{i}]"), true, missing);
                        }
                    }
                }
                Value::Map(entries) => {
                    for (key, item) in entries {
                        if let Value::Message(m) = item {
                            let key = key_text(key);
                            self.walk(m, &format!("{here}[{key:?}]"), true, missing);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether a message field's values could hold a required field (the
    /// well-known types never do).
    fn may_hold_required(&self, field: &FieldDescriptor) -> bool {
        let message = match field.kind() {
            Kind::Message(m) if field.is_map() => match m.map_entry_value_field().kind() {
                Kind::Message(v) => v,
                _ => return false,
            },
            Kind::Message(m) => m,
            _ => return false,
        };
        !message.full_name().starts_with("google.protobuf.")
    }
}

/// A request carrying an `update_mask` that is not `*`.
fn partial_update(request: &DynamicMessage) -> bool {
    let desc: MessageDescriptor = request.descriptor();
    let Some(mask) = desc.get_field_by_name("update_mask") else {
        return false;
    };
    if !matches!(mask.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask") {
        return false;
    }
    let value = request.get_field(&mask);
    let everything = value
        .as_message()
        .and_then(|m| m.get_field_by_name("paths"))
        .and_then(|p| {
            p.as_list()
                .map(|l| l.iter().any(|v| v.as_str() == Some("*")))
        })
        .unwrap_or(false);
    !everything
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

fn key_text(key: &prost_reflect::MapKey) -> String {
    match key {
        prost_reflect::MapKey::String(s) => s.clone(),
        prost_reflect::MapKey::Bool(b) => b.to_string(),
        prost_reflect::MapKey::I32(n) => n.to_string(),
        prost_reflect::MapKey::I64(n) => n.to_string(),
        prost_reflect::MapKey::U32(n) => n.to_string(),
        prost_reflect::MapKey::U64(n) => n.to_string(),
    }
}
