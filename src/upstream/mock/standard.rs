//! Which methods are AIP standard methods (AIP-131 to AIP-135), by name
//! and shape, and the resource type each serves.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};

/// A standard method and the resource type it serves.
pub(super) enum Standard {
    Create(MessageDescriptor, FieldDescriptor),
    Get(MessageDescriptor),
    List(MessageDescriptor, FieldDescriptor),
    Update(MessageDescriptor, FieldDescriptor),
    Delete(MessageDescriptor),
}

/// Recognises a standard method by name and shape.
pub(super) fn standard(method: &MethodDescriptor) -> Option<Standard> {
    if method.is_client_streaming() || method.is_server_streaming() {
        return None;
    }
    let name = method.name();
    let input = method.input();
    let output = method.output();
    let resource_field = |res: &MessageDescriptor| {
        input.fields().find(|f| {
            !f.is_list() && matches!(f.kind(), Kind::Message(m) if m.full_name() == res.full_name())
        })
    };
    let has_name_input = input
        .get_field_by_name("name")
        .is_some_and(|f| f.kind() == Kind::String && !f.is_list());
    if let Some(rest) = name.strip_prefix("Create") {
        if rest == output.name() && has_name(&output) {
            return resource_field(&output).map(|f| Standard::Create(output.clone(), f));
        }
    } else if let Some(rest) = name.strip_prefix("Get") {
        if rest == output.name() && has_name(&output) && has_name_input {
            return Some(Standard::Get(output));
        }
    } else if let Some(rest) = name.strip_prefix("Update") {
        if rest == output.name() && has_name(&output) {
            return resource_field(&output).map(|f| Standard::Update(output.clone(), f));
        }
    } else if name.starts_with("List") {
        output
            .get_field_by_name("next_page_token")
            .filter(|f| f.kind() == Kind::String)?;
        return output.fields().find_map(|f| match f.kind() {
            Kind::Message(m) if f.is_list() && !f.is_map() && has_name(&m) => {
                Some(Standard::List(m, f))
            }
            _ => None,
        });
    } else if let Some(rest) = name.strip_prefix("Delete") {
        if !has_name_input {
            return None;
        }
        if rest == output.name() && has_name(&output) {
            return Some(Standard::Delete(output));
        }
        let full = format!("{}.{rest}", input.package_name());
        let res = input.parent_pool().get_message_by_name(&full)?;
        return has_name(&res).then_some(Standard::Delete(res));
    }
    None
}

fn has_name(desc: &MessageDescriptor) -> bool {
    desc.get_field_by_name("name")
        .is_some_and(|f| f.kind() == Kind::String && !f.is_list())
}
