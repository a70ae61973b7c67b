//! Field paths of request and response messages, resolved at load time:
//! path variables, body and response-body fields, the update mask, and the
//! message-shape questions routes answer once (maps, dynamic JSON types).

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::rules::BodyRule;

/// A path variable binds a scalar, an enum, or a repeated one of them
/// (comma-separated values, as grpc-gateway takes them).
pub(super) fn path_variable(fields: Vec<FieldDescriptor>) -> Result<Vec<FieldDescriptor>, String> {
    let Some(leaf) = fields.last() else {
        return Err("empty field path".into());
    };
    if leaf.is_map() {
        return Err("names a map field".into());
    }
    if matches!(leaf.kind(), Kind::Message(_)) {
        let what = if leaf.is_list() {
            "a repeated message"
        } else {
            "a message"
        };
        return Err(format!("names {what} field; bind a scalar field inside it"));
    }
    Ok(fields)
}

/// The body mapping: `""`, `"*"`, or a field path through singular
/// message fields (`payload.input_value`), returned with the mapping.
pub(super) fn body_rule(
    input: &MessageDescriptor,
    body: &str,
) -> Result<(BodyRule, Vec<FieldDescriptor>), String> {
    match body {
        "" => Ok((BodyRule::None, Vec::new())),
        "*" => Ok((BodyRule::Whole, Vec::new())),
        path => {
            let parts: Vec<String> = path.split('.').map(str::to_string).collect();
            let fields = resolve_path(input, &parts).map_err(|e| format!("body {path:?}: {e}"))?;
            let leaf = fields.last().cloned().ok_or("empty body field path")?;
            Ok((BodyRule::Field(leaf), fields))
        }
    }
}

/// Field names joined with `.`.
pub(super) fn field_path_str(fields: &[FieldDescriptor]) -> String {
    let names: Vec<&str> = fields.iter().map(FieldDescriptor::name).collect();
    names.join(".")
}

/// The request's `update_mask` field, or its only FieldMask field.
pub(super) fn update_mask_field(input: &MessageDescriptor) -> Option<FieldDescriptor> {
    let is_mask = |f: &FieldDescriptor| {
        !f.is_list()
            && matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
    };
    if let Some(f) = input.get_field_by_name("update_mask") {
        return is_mask(&f).then_some(f);
    }
    let mut masks = input.fields().filter(is_mask);
    let first = masks.next();
    if masks.next().is_some() { None } else { first }
}

/// True when `desc`, or a message type reachable through its fields, is
/// one that `is` picks.
pub fn reaches(desc: &MessageDescriptor, is: impl Fn(&MessageDescriptor) -> bool) -> bool {
    fn walk(
        desc: &MessageDescriptor,
        is: &dyn Fn(&MessageDescriptor) -> bool,
        seen: &mut Vec<String>,
    ) -> bool {
        if is(desc) {
            return true;
        }
        if seen.iter().any(|s| s == desc.full_name()) {
            return false;
        }
        seen.push(desc.full_name().to_string());
        desc.fields().any(|f| match f.kind() {
            prost_reflect::Kind::Message(m) => walk(&m, is, seen),
            _ => false,
        })
    }
    walk(desc, &is, &mut Vec::new())
}

/// True when `desc` holds a map field, directly or in a nested message
/// (well-known types aside).
pub fn holds_maps(desc: &MessageDescriptor) -> bool {
    fn walk(desc: &MessageDescriptor, seen: &mut Vec<String>) -> bool {
        if desc.full_name().starts_with("google.protobuf.")
            || seen.iter().any(|s| s == desc.full_name())
        {
            return false;
        }
        seen.push(desc.full_name().to_string());
        desc.fields().any(|f| {
            f.is_map()
                || match f.kind() {
                    Kind::Message(m) => walk(&m, seen),
                    _ => false,
                }
        })
    }
    walk(desc, &mut Vec::new())
}

/// A top-level field by proto name or JSON name.
pub fn top_field(msg: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    msg.get_field_by_name(name)
        .or_else(|| msg.get_field_by_json_name(name))
}

/// Resolves `a.b.c` through singular message fields.
pub fn resolve_path(
    msg: &MessageDescriptor,
    path: &[String],
) -> Result<Vec<FieldDescriptor>, String> {
    let mut out = Vec::with_capacity(path.len());
    let mut current = msg.clone();
    for (i, part) in path.iter().enumerate() {
        let f = top_field(&current, part)
            .ok_or_else(|| format!("{} has no field {part:?}", current.full_name()))?;
        if i + 1 < path.len() {
            match f.kind() {
                Kind::Message(m) if !f.is_list() && !f.is_map() => current = m,
                _ => {
                    return Err(format!(
                        "{part:?} is not a singular message field, so it cannot have subfields"
                    ));
                }
            }
        }
        out.push(f);
    }
    Ok(out)
}
