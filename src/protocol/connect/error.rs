//! Connect's error model: `{"code": "not_found", "message": …, "details":
//! [{"type", "value", "debug"}]}`, with the HTTP status of the code (the
//! same table as google.rpc.Code and the rest of the gateway).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};
use tonic::Code;

use crate::status::{GatewayError, rpc};

/// Connect's name for a gRPC code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        // Connect spells it the American way; every other name is gRPC's.
        Code::Cancelled => "canceled",
        other => crate::status::code_label(other),
    }
}

/// The error as Connect's JSON. Details keep their bytes (`value`, base64
/// without padding) and, when the loaded descriptors know their type, show
/// them decoded as `debug`.
pub fn error_json(pool: &DescriptorPool, e: &GatewayError) -> Value {
    let status = e.to_grpc_status();
    let mut out = json!({ "code": code_name(status.code()) });
    if !status.message().is_empty() {
        out["message"] = Value::String(status.message().to_string());
    }
    let details = details(pool, status.details());
    if !details.is_empty() {
        out["details"] = Value::Array(details);
    }
    out
}

fn details(pool: &DescriptorPool, raw: &[u8]) -> Vec<Value> {
    let Ok(status) = rpc::Status::decode(raw) else {
        return Vec::new();
    };
    status
        .details
        .iter()
        .map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
            let mut detail = json!({
                "type": type_name,
                "value": STANDARD_NO_PAD.encode(&any.value),
            });
            if let Some(debug) = decoded(pool, type_name, &any.value) {
                detail["debug"] = debug;
            }
            detail
        })
        .collect()
}

fn decoded(pool: &DescriptorPool, type_name: &str, value: &[u8]) -> Option<Value> {
    let desc = pool.get_message_by_name(type_name)?;
    let msg = DynamicMessage::decode(desc, value).ok()?;
    serde_json::to_value(&msg).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_carry_a_bad_request_detail() {
        let pool = crate::descriptors::example_pool();
        let e = GatewayError::bad_field("book.pageCount", "not an integer");
        let j = error_json(&pool, &e);
        assert_eq!(j["code"], "invalid_argument");
        assert_eq!(j["details"][0]["type"], "google.rpc.BadRequest");
        let field = &j["details"][0]["debug"]["fieldViolations"][0]["field"];
        assert_eq!(field, "book.pageCount");
        let value = j["details"][0]["value"].as_str().unwrap();
        assert!(!value.ends_with('='), "unpadded: {value}");
    }

    #[test]
    fn plain_errors_have_no_details() {
        let e = GatewayError::Unimplemented("no".into());
        let j = error_json(&DescriptorPool::new(), &e);
        assert_eq!(j, json!({"code": "unimplemented", "message": "no"}));
    }
}
