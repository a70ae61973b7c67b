//! google.rpc error details: the messages the gateway writes itself
//! ([`rpc`]) and the decoding of an upstream's `grpc-status-details-bin`.

use base64::Engine;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use serde_json::json;

/// The few google.rpc messages the gateway writes itself, so that errors
/// carry details whatever descriptors are loaded.
pub mod rpc {
    use bytes::Bytes;
    use prost::Message;

    /// `google.rpc.Status`.
    #[derive(Clone, PartialEq, Message)]
    pub struct Status {
        /// The gRPC code.
        #[prost(int32, tag = "1")]
        pub code: i32,
        /// The message.
        #[prost(string, tag = "2")]
        pub message: String,
        /// The details.
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<prost_types::Any>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct BadRequest {
        #[prost(message, repeated, tag = "1")]
        field_violations: Vec<FieldViolation>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct FieldViolation {
        #[prost(string, tag = "1")]
        field: String,
        #[prost(string, tag = "2")]
        description: String,
    }

    /// An encoded `google.rpc.Status` (code INVALID_ARGUMENT) whose one
    /// detail is a `google.rpc.BadRequest` naming `field`.
    pub fn bad_request(field: &str, description: &str) -> Bytes {
        let detail = BadRequest {
            field_violations: vec![FieldViolation {
                field: field.to_string(),
                description: description.to_string(),
            }],
        };
        let status = Status {
            code: tonic::Code::InvalidArgument as i32,
            message: format!("{field}: {description}"),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.BadRequest".into(),
                value: detail.encode_to_vec(),
            }],
        };
        status.encode_to_vec().into()
    }
}

/// Decodes `grpc-status-details-bin` (a serialized google.rpc.Status) into
/// its `details` in proto3 JSON.
pub fn decode_details(pool: &DescriptorPool, raw: &[u8]) -> Vec<serde_json::Value> {
    if raw.is_empty() {
        return Vec::new();
    }
    let Some(desc) = pool.get_message_by_name("google.rpc.Status") else {
        return Vec::new();
    };
    let Ok(status) = DynamicMessage::decode(desc, raw) else {
        return Vec::new();
    };
    let Some(details) = status.get_field_by_name("details") else {
        return Vec::new();
    };
    let Some(list) = details.as_list() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_message)
        .map(|any| serde_json::to_value(any).unwrap_or_else(|_| raw_any(any)))
        .collect()
}

/// An `Any` whose type is not in the pool: keep its bytes, base64.
fn raw_any(any: &DynamicMessage) -> serde_json::Value {
    let type_url = any
        .get_field_by_name("type_url")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let value = any
        .get_field_by_name("value")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    json!({
        "@type": type_url,
        "value": base64::engine::general_purpose::STANDARD.encode(&value),
    })
}
