//! A call's final status as gRPC headers (`grpc-status`, `grpc-message`,
//! `grpc-status-details-bin`, and the status's metadata): trailers for
//! native gRPC and for streamed REST responses, headers for trailers-only
//! answers.

use http::{HeaderMap, HeaderValue};
use tonic::metadata::MetadataMap;

use crate::status::GatewayError;

/// The gRPC status a gateway error stands for (an upstream's own, as sent).
pub fn to_status(e: &GatewayError) -> tonic::Status {
    e.to_grpc_status()
}

/// grpc-status, grpc-message, grpc-status-details-bin and the status's metadata.
pub fn status_trailers(s: &tonic::Status) -> HeaderMap {
    let mut h = HeaderMap::new();
    if s.add_header(&mut h).is_err() {
        // Only a message that cannot be a header value gets here.
        h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(s.code() as i32));
    }
    h
}

/// `grpc-status: 0` with the call's trailing metadata.
pub fn ok_trailers(metadata: MetadataMap) -> HeaderMap {
    let mut h = metadata.into_headers();
    h.insert("grpc-status", HeaderValue::from_static("0"));
    h
}
