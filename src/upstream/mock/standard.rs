//! Which methods are AIP standard methods (AIP-131 to AIP-135), by name
//! and shape, the resource type each serves, and the request fields that
//! name the resource and its parent ([`super::resource_fields`]).

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use super::resource_fields::{name_field_for, parent_field_for};

/// A standard method and the resource type it serves.
pub(super) enum Standard {
    Create(MessageDescriptor, NewResource),
    /// The resource type and the request field holding its name.
    Get(MessageDescriptor, FieldDescriptor),
    /// The resource type, the response's list field and the request's
    /// parent field (none: the whole collection).
    List(MessageDescriptor, FieldDescriptor, Option<FieldDescriptor>),
    Update(MessageDescriptor, FieldDescriptor),
    /// The resource type and the request field holding its name.
    Delete(MessageDescriptor, FieldDescriptor),
}

/// Where a Create finds the new resource.
pub(super) enum NewResource {
    /// AIP-133: in a field of the request, named under the request's parent
    /// field (if any) by a `<res>_id` field or the next free number.
    Field {
        field: FieldDescriptor,
        parent: Option<FieldDescriptor>,
    },
    /// The request *is* the resource, named in full by its own `name`
    /// (Pub/Sub's `CreateTopic(Topic)` under `PUT /v1/{name=…}`).
    Itself,
    /// The request names the new resource in full in this field and carries
    /// some of its fields under the same names (Pub/Sub's `CreateSnapshot`:
    /// `name`, `labels`).
    Named(FieldDescriptor),
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
    let returns = |rest: &str| rest == output.name() && has_name(&output);
    if let Some(rest) = name.strip_prefix("Create") {
        if !returns(rest) {
            return None;
        }
        if input.full_name() == output.full_name() {
            return Some(Standard::Create(output, NewResource::Itself));
        }
        let Some(field) = resource_field(&output) else {
            let name = name_field_for(&input, &output)?;
            return Some(Standard::Create(output, NewResource::Named(name)));
        };
        let parent = parent_field_for(&input, &output);
        return Some(Standard::Create(
            output,
            NewResource::Field { field, parent },
        ));
    }
    if let Some(rest) = name.strip_prefix("Get") {
        if !returns(rest) {
            return None;
        }
        return name_field_for(&input, &output).map(|f| Standard::Get(output, f));
    }
    if let Some(rest) = name.strip_prefix("Update") {
        if !returns(rest) {
            return None;
        }
        return resource_field(&output).map(|f| Standard::Update(output.clone(), f));
    }
    if name.starts_with("List") {
        return list(&input, &output);
    }
    if let Some(rest) = name.strip_prefix("Delete") {
        let res = if returns(rest) {
            output
        } else {
            let full = format!("{}.{rest}", input.package_name());
            input.parent_pool().get_message_by_name(&full)?
        };
        if !has_name(&res) {
            return None;
        }
        return name_field_for(&input, &res).map(|f| Standard::Delete(res, f));
    }
    None
}

/// A List: the response pages a repeated resource with `next_page_token`.
fn list(input: &MessageDescriptor, output: &MessageDescriptor) -> Option<Standard> {
    output
        .get_field_by_name("next_page_token")
        .filter(|f| f.kind() == Kind::String)?;
    output.fields().find_map(|f| match f.kind() {
        Kind::Message(m) if f.is_list() && !f.is_map() && has_name(&m) => {
            let parent = parent_field_for(input, &m);
            Some(Standard::List(m, f, parent))
        }
        _ => None,
    })
}

/// Whether `desc` has a singular string `name` field (a resource).
pub(super) fn has_name(desc: &MessageDescriptor) -> bool {
    desc.get_field_by_name("name")
        .is_some_and(|f| f.kind() == Kind::String && !f.is_list())
}
