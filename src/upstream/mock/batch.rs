//! The batch rule, for answers to requests that send many things at once
//! and get one id back for each (Pub/Sub's `Publish`: `messages` in,
//! `message_ids` out): a repeated response field called `<x>_ids` is sized
//! to the request's repeated field named the plural of `<x>`. Sizing a
//! response list to a request list in general cannot be guessed; this
//! naming pair can. Generated answers draw the ids from the call's seed,
//! the stateful store from its counter (fresh ids on every call).

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, ReflectMessage, Value};

use super::generate::pluralize;

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
