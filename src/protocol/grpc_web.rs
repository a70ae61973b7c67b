//! The gRPC-Web adapter: tonic-web translates the request into native gRPC
//! (base64 text decoded, content type rewritten) and the answer back
//! (trailers as the final 0x80 frame, base64 for `-text`), around the
//! native gRPC adapter. So gRPC-Web calls take the same path as gRPC calls —
//! dispatch, hooks, compression, limits — in front of an upstream or the
//! mock.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Request, Response, header};
use tonic_web::GrpcWebLayer;
use tower::{Layer, ServiceExt};

use super::grpc;
use crate::gateway::Gateway;
use crate::pipeline::Protocol;

/// True for the four gRPC-Web content types (binary and text, with or
/// without `+proto`).
pub fn is_grpc_web(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            // Exactly these, as tonic-web recognises them.
            matches!(
                ct,
                "application/grpc-web"
                    | "application/grpc-web+proto"
                    | "application/grpc-web-text"
                    | "application/grpc-web-text+proto"
            )
        })
}

/// Serves one gRPC-Web call.
pub async fn handle(gw: Arc<Gateway>, mut req: Request<Body>) -> Response<Body> {
    answer_text_in_text(req.headers_mut());
    let native = tower::service_fn(move |req: Request<tonic::body::Body>| {
        let gw = gw.clone();
        async move {
            let response = grpc::handle_as(gw, req.map(Body::new), Protocol::GrpcWeb).await;
            Ok::<_, Infallible>(response)
        }
    });
    match GrpcWebLayer::new().layer(native).oneshot(req).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

/// A text (base64) request gets a text answer, as Envoy gives it: tonic-web
/// decides by `Accept` alone, which clients other than Google's leave at
/// `*/*`.
fn answer_text_in_text(headers: &mut HeaderMap) {
    let text = headers
        .get(header::CONTENT_TYPE)
        .filter(|ct| ct.as_bytes().starts_with(b"application/grpc-web-text"))
        .cloned();
    if let Some(ct) = text {
        headers.insert(header::ACCEPT, ct);
    }
}
