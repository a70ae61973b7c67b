//! The protocol-neutral middle of the gateway: a [`Call`] made by a protocol
//! adapter and run by a [`Backend`] (the real upstream or the mock).
//!
//! Messages travel as encoded protobuf bytes, so a Backend never needs
//! generated types and adapters that only re-frame bytes never decode them.
//!
//! ```
//! use bytes::Bytes;
//! use futures_util::StreamExt;
//! use protogate::call::{Backend, Call, CallEvent, CallResponse, grpc_path, single};
//! use protogate::status::GatewayError;
//!
//! /// A backend that answers every call with the request it was sent.
//! struct Echo;
//!
//! impl Backend for Echo {
//!     fn call(&self, call: Call) -> futures_util::future::BoxFuture<'static, Result<CallResponse, GatewayError>> {
//!         Box::pin(async move {
//!             let mut requests = call.requests;
//!             let first = requests.next().await.unwrap_or(Ok(Bytes::new()))?;
//!             let events = futures_util::stream::iter([
//!                 Ok(CallEvent::Message(first)),
//!                 Ok(CallEvent::Trailers(Default::default())),
//!             ]);
//!             Ok(CallResponse { metadata: Default::default(), events: events.boxed() })
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
//! let method = pool.get_service_by_name("library.v1.LibraryService").unwrap()
//!     .methods().find(|m| m.name() == "GetShelf").unwrap();
//! let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
//! let request = Bytes::from_static(b"\x0a\x09shelves/1");
//! let call = Call::new(method.clone(), grpc_path(&method), Default::default(), single(request), deadline);
//! let reply = Echo.call(call).await.unwrap().into_unary().await.unwrap();
//! assert_eq!(&reply.message[..], b"\x0a\x09shelves/1");
//! # });
//! ```

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use http::uri::PathAndQuery;
use prost_reflect::MethodDescriptor;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use crate::status::GatewayError;

/// The request messages of a call. An `Err` item means the client sent
/// something malformed or oversized: the backend must abandon the call
/// (cancel it upstream), never treat it as a clean end of the stream.
pub type RequestStream = BoxStream<'static, Result<Bytes, GatewayError>>;

/// One gRPC call, ready to run.
pub struct Call {
    /// The resolved method.
    pub method: MethodDescriptor,
    /// `/pkg.Service/Method`, built once at load time.
    pub path: PathAndQuery,
    /// Request metadata (already filtered by the adapter).
    pub metadata: MetadataMap,
    /// The encoded request messages: exactly one for unary calls.
    pub requests: RequestStream,
    /// When the call must be over; the upstream is sent what is left of it.
    pub deadline: Instant,
    /// Where the call came from, for backends that look past the message
    /// (the mock matches stubs on routes and headers); see [`Backend::wants_context`].
    pub context: CallContext,
    /// What hooks learned of the request (the verified token's subject, the
    /// trace context), read back in their [`Outcome`](crate::pipeline::Outcome).
    pub extensions: http::Extensions,
}

impl Call {
    /// A call to `method` at `path` (see [`grpc_path`]; load-time code keeps
    /// one per method) with the request messages of `requests`.
    pub fn new(
        method: MethodDescriptor,
        path: PathAndQuery,
        metadata: MetadataMap,
        requests: RequestStream,
        deadline: Instant,
    ) -> Call {
        Call {
            method,
            path,
            metadata,
            requests,
            deadline,
            context: CallContext::default(),
            extensions: http::Extensions::new(),
        }
    }

    /// What is left of the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A request stream of exactly one message (unary and server-streaming calls).
pub fn single(message: Bytes) -> RequestStream {
    Box::pin(futures_util::stream::once(async move { Ok(message) }))
}

/// `/pkg.Service/Method` for `method`. Load-time code calls this once per
/// method; a fully qualified name always makes a valid path.
pub fn grpc_path(method: &MethodDescriptor) -> PathAndQuery {
    let text = format!("/{}/{}", method.parent_service().full_name(), method.name());
    PathAndQuery::try_from(text).unwrap_or_else(|_| PathAndQuery::from_static("/"))
}

/// The HTTP side of a call, filled only for backends that ask for it.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The REST route, as `protogate routes` prints it: `GET /v1/{name=shelves/*}`.
    pub route: Option<String>,
    /// The request headers as received.
    pub headers: http::HeaderMap,
    /// The client's protocol (`rest`, `grpc`, `grpc-web`, `connect`,
    /// `websocket`), when the adapter is known.
    pub protocol: Option<&'static str>,
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

impl CallResponse {
    /// Waits until a reply of at most one message is complete (its status
    /// included) and replays it. A pass-through adapter that answers only
    /// then writes headers, message and trailers in one go: one write and
    /// one wake-up of the client instead of two or three, and no later for
    /// the client, which acts on a unary reply only with its status. A
    /// reply that turns out to stream is passed on from its second message.
    pub async fn completed(self) -> CallResponse {
        use futures_util::StreamExt;
        let CallResponse {
            metadata,
            mut events,
        } = self;
        let mut seen = Vec::with_capacity(2);
        let mut ended = true;
        while let Some(event) = events.next().await {
            let last = !matches!(event, Ok(CallEvent::Message(_)));
            seen.push(event);
            if last {
                break;
            }
            if seen.len() > 1 {
                ended = false;
                break;
            }
        }
        let replay = futures_util::stream::iter(seen);
        CallResponse {
            metadata,
            events: if ended {
                replay.boxed()
            } else {
                replay.chain(events).boxed()
            },
        }
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
