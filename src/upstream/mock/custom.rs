//! References to stored resources, and custom methods (AIP-136) on them:
//! `Publish` on a topic, `Pull` on a subscription, a subscription's
//! `topic`. The store knows whether the resource exists, so a call naming a
//! missing one is NOT_FOUND; a custom method's answer itself is generated,
//! with one rule for batches (see [`fill_ids`]).

use std::collections::HashSet;

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use prost_reflect::{ReflectMessage, Value};

use super::generate::pluralize;
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

/// The batch rule: a repeated response field called `<x>_ids` gets one id
/// from `next_id` per element of the request's repeated field named the
/// plural of `<x>`, in order (`Publish`: `messages` → `message_ids`).
/// String fields get decimal ids, integer fields the numbers; other fields
/// and responses without such a pair are left as generated.
pub(super) fn fill_ids(
    response: &mut DynamicMessage,
    request: &DynamicMessage,
    mut next_id: impl FnMut() -> u64,
) {
    let fields: Vec<FieldDescriptor> = response.descriptor().fields().collect();
    for field in fields.iter().filter(|f| f.is_list() && !f.is_map()) {
        let Some(stem) = field.name().strip_suffix("_ids") else {
            continue;
        };
        let Some(batch) = request.descriptor().get_field_by_name(&pluralize(stem)) else {
            continue;
        };
        if !batch.is_list() || batch.is_map() {
            continue;
        }
        let count = request
            .get_field(&batch)
            .as_list()
            .map_or(0, <[Value]>::len);
        let ids: Option<Vec<Value>> = (0..count).map(|_| id_value(field, next_id())).collect();
        if let Some(ids) = ids {
            let _ = response.try_set_field(field, Value::List(ids));
        }
    }
}

/// `n` as a value of the field's kind; `None` for kinds ids are not.
fn id_value(field: &FieldDescriptor, n: u64) -> Option<Value> {
    Some(match field.kind() {
        Kind::String => Value::String(n.to_string()),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(i64::try_from(n).ok()?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(n),
        _ => return None,
    })
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
