//! The protocol-neutral middle of the gateway: a [`Call`] made by a protocol
//! adapter and run by a [`Backend`] (the real upstream or, later, the mock).
//!
//! Messages travel as encoded protobuf bytes, so a Backend never needs
//! generated types and adapters that only re-frame bytes never decode them.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use prost_reflect::MethodDescriptor;
use tonic::metadata::MetadataMap;

use crate::status::GatewayError;

/// One gRPC call, ready to run.
pub struct Call {
    /// The resolved method.
    pub method: MethodDescriptor,
    /// `/pkg.Service/Method`.
    pub path: String,
    /// Request metadata (already filtered by the adapter).
    pub metadata: MetadataMap,
    /// The encoded request messages: exactly one for unary calls.
    pub requests: BoxStream<'static, Bytes>,
    /// The call's deadline, from `grpc-timeout` or configuration.
    pub timeout: Duration,
    /// Where the call came from, for backends that look past the message
    /// (the mock matches stubs on routes and headers); see [`Backend::wants_context`].
    pub context: CallContext,
}

/// The HTTP side of a call, filled only for backends that ask for it.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The REST route, as `protogate routes` prints it: `GET /v1/{name=shelves/*}`.
    pub route: Option<String>,
    /// The request headers as received.
    pub headers: http::HeaderMap,
}

/// What a backend yields while a call runs.
#[derive(Debug)]
pub enum CallEvent {
    /// One encoded response message.
    Message(Bytes),
    /// Trailing metadata; the call ended with OK.
    Trailers(MetadataMap),
}

/// A call in progress: response headers plus the stream of events. A failing
/// status arrives as an `Err` item (carrying its trailers).
pub struct CallResponse {
    /// Response header metadata.
    pub metadata: MetadataMap,
    /// Messages, then trailers; or an error.
    pub events: BoxStream<'static, Result<CallEvent, GatewayError>>,
}

/// Runs calls. Implemented by the upstream gRPC client and the mock backend.
pub trait Backend: Send + Sync + 'static {
    /// Starts a call; resolves once response headers (or an error) arrive.
    fn call(&self, call: Call) -> BoxFuture<'static, Result<CallResponse, GatewayError>>;

    /// Whether [`Call::context`] should be filled (it costs a header copy).
    fn wants_context(&self) -> bool {
        false
    }
}

/// The outcome of a unary call, collected.
#[derive(Debug)]
pub struct UnaryReply {
    /// Headers and trailers, merged.
    pub metadata: MetadataMap,
    /// The response message.
    pub message: Bytes,
}

impl CallResponse {
    /// Collects exactly one message and the trailers.
    pub async fn into_unary(self) -> Result<UnaryReply, GatewayError> {
        use futures_util::StreamExt;
        let CallResponse {
            mut metadata,
            mut events,
        } = self;
        let mut message = None;
        while let Some(event) = events.next().await {
            match event? {
                CallEvent::Message(m) => {
                    if message.replace(m).is_some() {
                        return Err(GatewayError::BadGateway(
                            "upstream sent more than one message for a unary call".into(),
                        ));
                    }
                }
                CallEvent::Trailers(t) => merge_metadata(&mut metadata, t),
            }
        }
        let message = message.ok_or_else(|| {
            GatewayError::BadGateway("upstream ended a unary call without a message".into())
        })?;
        Ok(UnaryReply { metadata, message })
    }
}

/// Appends every entry of `from` to `into`.
pub fn merge_metadata(into: &mut MetadataMap, from: MetadataMap) {
    let mut headers = std::mem::take(into).into_headers();
    for (k, v) in from.into_headers().iter() {
        headers.append(k.clone(), v.clone());
    }
    *into = MetadataMap::from_headers(headers);
}
