//! HEAD requests, answered as GET would be without the body (RFC 9110
//! §9.3.2); the matcher gives a HEAD the path's GET route.
//!
//! A whole answer is built exactly as for GET and the HTTP server drops its
//! body once its length is known (axum's router empties every HEAD
//! response after setting `Content-Length`; hyper never writes one), so
//! `Content-Length` and `Content-Encoding` are the ones GET would get. A
//! server stream is never started: the hooks run as for GET (auth, metadata
//! limits: a refusal is the same refusal), but a stand-in backend ends the
//! call at once, and the answer is the stream's headers alone.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};
use http::Method;
use tonic::metadata::MetadataMap;

use crate::call::{Backend, Call, CallEvent, CallResponse};
use crate::pipeline::Target;
use crate::routing::Route;
use crate::status::GatewayError;

/// Whether this is a HEAD whose GET answer would be a server stream.
pub(super) fn skips_stream(method: &Method, route: &Route) -> bool {
    method == Method::HEAD && route.method.is_server_streaming()
}

/// `target` with its backend (when it has one: no backend stays a 503)
/// replaced by one that never calls upstream.
pub(super) fn stand_in(target: &Target) -> Arc<Target> {
    let mut target = target.clone();
    if target.backend.is_some() {
        target.backend = Some(Arc::new(NoCall));
    }
    Arc::new(target)
}

/// Ends every call at once with OK and no messages.
struct NoCall;

impl Backend for NoCall {
    fn call(&self, _call: Call) -> BoxFuture<'static, Result<CallResponse, GatewayError>> {
        let ended = Ok(CallEvent::Trailers(MetadataMap::new()));
        let response = CallResponse {
            metadata: MetadataMap::new(),
            events: stream::iter([ended]).boxed(),
        };
        Box::pin(std::future::ready(Ok(response)))
    }
}
