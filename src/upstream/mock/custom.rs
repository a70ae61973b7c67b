//! References to stored resources, and custom methods (AIP-136) on them:
//! `Publish` on a topic, `Pull` on a subscription, a subscription's
//! `topic`. The store knows whether the resource exists, so a call naming a
//! missing one is NOT_FOUND; a custom method's answer itself is generated,
//! its batch ids from the store's counter ([`super::batch`]).

use std::collections::HashSet;

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, MethodDescriptor};

use super::resource_fields::{is_string, reference, resource_option};
use super::standard::{Standard, standard};

/// A request field naming a resource the store keeps, and that resource's type.
pub(super) struct Reference {
    pub(super) field: FieldDescriptor,
    pub(super) resource: MessageDescriptor,
}

/// The fields of `method`'s request that name resources the store keeps:
/// string fields whose `google.api.resource_reference.type` is a type that
/// a standard Create of a `stateful` service makes. A reference to the
/// method's own output type is left out: it names what the method makes or
/// returns, which the store looks up itself.
pub(super) fn references(method: &MethodDescriptor, stateful: &HashSet<String>) -> Vec<Reference> {
    let output_kind = resource_option(&method.output()).map(|o| o.kind);
    let mut created = None;
    method
        .input()
        .fields()
        .filter(is_string)
        .filter_map(|field| {
            let (kind, _) = reference(&field)?;
            if kind.is_empty() || Some(&kind) == output_kind.as_ref() {
                return None;
            }
            let created = created.get_or_insert_with(|| created_types(method, stateful));
            let resource = created.iter().find(|(k, _)| *k == kind)?.1.clone();
            Some(Reference { field, resource })
        })
        .collect()
}

/// The annotated resource types the standard Creates of the `stateful`
/// services make.
fn created_types(
    method: &MethodDescriptor,
    stateful: &HashSet<String>,
) -> Vec<(String, MessageDescriptor)> {
    method
        .parent_pool()
        .services()
        .filter(|s| stateful.contains(s.full_name()))
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter_map(|m| match standard(&m)? {
            Standard::Create(res, _) => Some((resource_option(&res)?.kind, res)),
            _ => None,
        })
        .collect()
}

/// A new `res` holding the request's fields that `res` has under the same
/// name and type (a `Create` request that carries the resource's fields
/// itself, like Pub/Sub's `CreateSnapshot`: `name`, `labels`).
pub(super) fn copy_same_fields(
    request: &DynamicMessage,
    res: &MessageDescriptor,
) -> DynamicMessage {
    let mut resource = DynamicMessage::new(res.clone());
    for (f, v) in request.fields() {
        let Some(to) = res.get_field_by_name(f.name()) else {
            continue;
        };
        if to.kind() == f.kind() && to.is_list() == f.is_list() && to.is_map() == f.is_map() {
            let _ = resource.try_set_field(&to, v.clone());
        }
    }
    resource
}
