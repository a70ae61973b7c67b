//! Long-running operations: a method answering `google.longrunning.Operation`
//! gets a finished one whose `response` (and `metadata`) are generated
//! messages of the types its `google.longrunning.operation_info` declares,
//! as a client's operation poller expects to unpack.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor, Value};

use super::resource::random_id;
use super::{Draw, set};

/// The message type of an Operation.
pub(super) const OPERATION: &str = "google.longrunning.Operation";

impl Draw {
    /// Makes `op` a done operation for `method`: its declared response
    /// type packed in `response` (no `error`), its metadata type in
    /// `metadata`, and an `operations/<id>` name. Without `operation_info`
    /// (or with types the pool lacks) the generated operation stays as is.
    pub(super) fn complete_operation(&self, method: &MethodDescriptor, op: &mut DynamicMessage) {
        let Some((response, metadata)) = operation_types(method) else {
            return;
        };
        let Some(any_type) = method
            .parent_pool()
            .get_message_by_name("google.protobuf.Any")
        else {
            return;
        };
        let pack = |desc: &MessageDescriptor, path: &str| {
            let m = self.message(desc, path, 1, None);
            let mut any = DynamicMessage::new(any_type.clone());
            set(
                &mut any,
                "type_url",
                Value::String(format!("type.googleapis.com/{}", desc.full_name())),
            );
            set(&mut any, "value", Value::Bytes(m.encode_to_vec().into()));
            Some(Value::Message(any))
        };
        if let Some(r) = response.and_then(|d| pack(&d, "#operation.response")) {
            op.clear_field_by_name("error");
            set(op, "response", r);
            set(op, "done", Value::Bool(true));
        }
        if let Some(m) = metadata.and_then(|d| pack(&d, "#operation.metadata")) {
            set(op, "metadata", m);
        }
        let id = random_id(&mut self.rng("#operation.name"));
        set(op, "name", Value::String(format!("operations/{id}")));
    }
}

type Declared = (Option<MessageDescriptor>, Option<MessageDescriptor>);

/// The response and metadata types `operation_info` names (relative names
/// resolved in the method's package), if the method declares it.
fn operation_types(method: &MethodDescriptor) -> Option<Declared> {
    let pool = method.parent_pool();
    let ext = pool.get_extension_by_name("google.longrunning.operation_info")?;
    let opts = method.options();
    if !opts.has_extension(&ext) {
        return None;
    }
    let info = opts.get_extension(&ext);
    let info = info.as_message()?;
    let package = method.parent_service().package_name().to_owned();
    let resolve = |field: &str| {
        let name = info.get_field_by_name(field)?.as_str()?.to_owned();
        let name = name.trim_start_matches('.');
        pool.get_message_by_name(name)
            .or_else(|| pool.get_message_by_name(&format!("{package}.{name}")))
    };
    Some((resolve("response_type"), resolve("metadata_type")))
}
