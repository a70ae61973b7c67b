//! Whole messages as proto3 JSON, for protocols that carry a method's
//! request and response messages as JSON documents with no route around
//! them (Connect's JSON codec). What can be decided about a method's
//! messages is decided once, at load time.

use bytes::Bytes;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};

use super::body;
use super::budget::Shape;
use super::request::RequestOptions;
use super::response::{ResponseOptions, to_json_sorted};
use super::wire_json::WireJson;
use crate::routing::rules::{holds_maps, reaches};
use crate::status::GatewayError;

/// A method's request and response messages, ready for JSON both ways.
#[derive(Debug, Clone)]
pub struct MethodJson {
    input: MessageDescriptor,
    output: MessageDescriptor,
    input_shape: Shape,
    output_maps: bool,
    output_wire: Option<WireJson>,
}

impl MethodJson {
    /// Looks at `method`'s messages once (load time).
    pub fn new(method: &MethodDescriptor) -> MethodJson {
        let input = method.input();
        let dynamic = reaches(&input, |m| {
            matches!(
                m.full_name(),
                "google.protobuf.Struct"
                    | "google.protobuf.Value"
                    | "google.protobuf.ListValue"
                    | "google.protobuf.Any"
            )
        });
        let output = method.output();
        MethodJson {
            output_maps: holds_maps(&output),
            output_wire: WireJson::new(&output),
            input,
            output,
            input_shape: if dynamic {
                Shape::Dynamic
            } else {
                Shape::Typed
            },
        }
    }

    /// A JSON request message → its protobuf encoding. Errors name the
    /// field at fault, within the decoding budget; an empty body is the
    /// empty message.
    pub fn request(&self, json: &[u8], opts: &RequestOptions) -> Result<Bytes, GatewayError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Ok(Bytes::new());
        }
        let msg = body::message(&self.input, json, opts, self.input_shape)?;
        Ok(super::encode::to_bytes(&msg))
    }

    /// An encoded response message → proto3 JSON.
    pub fn response(&self, encoded: &[u8], opts: &ResponseOptions) -> Result<Bytes, GatewayError> {
        if let Some(wire) = &self.output_wire
            && let Some(json) = wire.render(encoded, opts)
        {
            return Ok(json);
        }
        let msg = DynamicMessage::decode(self.output.clone(), encoded).map_err(|e| {
            GatewayError::BadGateway(format!(
                "upstream response does not decode as {}: {e}",
                self.output.full_name()
            ))
        })?;
        to_json_sorted(&msg, opts, self.output_maps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_book() -> MethodJson {
        let pool = crate::descriptors::example_pool();
        let method = pool
            .get_service_by_name("library.v1.LibraryService")
            .and_then(|s| s.methods().find(|m| m.name() == "GetBook"))
            .unwrap();
        MethodJson::new(&method)
    }

    #[test]
    fn request_round_trip() {
        let m = get_book();
        let opts = RequestOptions::default();
        let encoded = m
            .request(br#"{"name": "shelves/1/books/2"}"#, &opts)
            .unwrap();
        assert_eq!(&encoded[..], b"\x0a\x11shelves/1/books/2");
        assert!(m.request(b"  ", &opts).unwrap().is_empty());
    }

    #[test]
    fn request_errors_name_the_field() {
        let err = get_book()
            .request(br#"{"nmae": "x"}"#, &RequestOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
    }

    #[test]
    fn response_renders_json() {
        let json = get_book()
            .response(b"\x0a\x03a/b\x12\x01T", &ResponseOptions::default())
            .unwrap();
        assert_eq!(&json[..], br#"{"name":"a/b","title":"T"}"#);
        let err = get_book().response(b"\xff\xff", &ResponseOptions::default());
        assert!(matches!(err, Err(GatewayError::BadGateway(_))));
    }
}
