//! Reading and writing request/response fields by name, shared by the
//! generator's echo and the stateful store.

use prost_reflect::{DynamicMessage, Value};

/// A string field's value; `None` when the message has no such string field.
pub(crate) fn string_field(msg: &DynamicMessage, name: &str) -> Option<String> {
    msg.get_field_by_name(name)?.as_str().map(str::to_owned)
}

/// An integer field's value (any width; u64 beyond i64 saturates); `None`
/// when the message has no such integer field.
pub(crate) fn int_field(msg: &DynamicMessage, name: &str) -> Option<i64> {
    let v = msg.get_field_by_name(name)?;
    match v.as_ref() {
        Value::I32(n) => Some(i64::from(*n)),
        Value::I64(n) => Some(*n),
        Value::U32(n) => Some(i64::from(*n)),
        Value::U64(n) => Some(i64::try_from(*n).unwrap_or(i64::MAX)),
        _ => None,
    }
}

/// A bool field's value; false when absent (proto3's default).
pub(crate) fn bool_field(msg: &DynamicMessage, name: &str) -> bool {
    msg.get_field_by_name(name)
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Sets a field when the message has it with a fitting type; otherwise a no-op.
pub(crate) fn set(msg: &mut DynamicMessage, name: &str, value: Value) {
    let _ = msg.try_set_field_by_name(name, value);
}
