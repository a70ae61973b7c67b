//! The mock backend: answers every method from the descriptors alone, so
//! frontend teams can work before the backend exists. It is a [`Backend`]
//! like the real upstream, so every protocol the gateway serves works in mock
//! mode unchanged.
//!
//! For each call, in order: a matching stub ([`stubs`]) answers; else, for a
//! stateful service, the in-memory CRUD store ([`state`]) answers AIP standard
//! methods; else the generator ([`generate`]) makes a deterministic, realistic
//! response (same method + request + seed → same bytes). Every response
//! carries `x-protogate-mock` metadata saying which of the three answered.
//! Every call is kept in the request [`journal`]; [`faults`] may fail it;
//! bidi calls are answered message by message (`bidi.rs`).

mod batch;
mod bidi;
mod custom;
pub mod faults;
mod fields;
pub mod generate;
pub mod journal;
mod mask;
pub mod record;
mod resource_fields;
mod standard;
pub mod state;
pub mod stubs;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor,
    SerializeOptions,
};
use tonic::metadata::{MetadataMap, MetadataValue};

use crate::call::{Backend, Call, CallEvent, CallResponse, RequestStream};
use crate::status::GatewayError;
use faults::{Faults, Fired};
use generate::Generator;
use journal::{EntryId, Journal};
use state::CrudStore;
use stubs::{StubOutcome, StubReply, StubRequest, StubStore};

/// How many unmatched requests the admin endpoint remembers.
const UNMATCHED_KEPT: usize = 50;
/// The largest request (encoded) the admin endpoint shows whole.
const UNMATCHED_MAX_BYTES: usize = 64 * 1024;
/// Messages a server stream yields when no stub says otherwise.
const GENERATED_STREAM_LEN: usize = 3;

/// The mock backend; cheap to clone.
#[derive(Clone)]
pub struct MockBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: DescriptorPool,
    generator: Generator,
    stubs: Arc<StubStore>,
    state: Arc<CrudStore>,
    stateful: HashSet<String>,
    unmatched: Mutex<VecDeque<serde_json::Value>>,
    journal: Arc<Journal>,
    faults: Faults,
}

/// What a mock backend is configured with besides its data sources.
#[derive(Debug, Default)]
pub struct MockOptions {
    /// Entries the request journal keeps ([`journal::DEFAULT_MAX_ENTRIES`]
    /// when unset; 0 turns it off).
    pub journal_max: Option<usize>,
    /// The journal to keep calls in (the one of the previous snapshot, so
    /// that a reload keeps it); a new one when unset.
    pub journal: Option<Arc<Journal>>,
    /// The global faults (`mock.faults`).
    pub faults: Faults,
}

impl std::fmt::Debug for MockBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBackend")
            .field("seed", &self.inner.generator.seed())
            .finish_non_exhaustive()
    }
}

impl MockBackend {
    /// A mock over `pool` with `stubs`; `stateful` lists the services whose
    /// standard methods keep their resources in `state` (shared across
    /// reloads while the descriptors stay the same).
    pub fn new(
        pool: DescriptorPool,
        seed: u64,
        stubs: Arc<StubStore>,
        state: Arc<CrudStore>,
        stateful: HashSet<String>,
        options: MockOptions,
    ) -> MockBackend {
        let journal = options.journal.unwrap_or_default();
        journal.set_max(options.journal_max.unwrap_or(journal::DEFAULT_MAX_ENTRIES));
        MockBackend {
            inner: Arc::new(Inner {
                generator: Generator::new(seed).with_pool(&pool),
                pool,
                stubs,
                state,
                stateful,
                unmatched: Mutex::new(VecDeque::new()),
                journal,
                faults: options.faults,
            }),
        }
    }

    /// The request journal, for the admin endpoint.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// The stubs, for the admin endpoint.
    pub fn stubs(&self) -> &Arc<StubStore> {
        &self.inner.stubs
    }

    /// Recent requests that no stub matched, newest last.
    pub fn unmatched(&self) -> Vec<serde_json::Value> {
        self.inner
            .unmatched
            .lock()
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Backend for MockBackend {
    fn call(&self, call: Call) -> BoxFuture<'static, Result<CallResponse, GatewayError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.answer(call).await })
    }

    fn wants_context(&self) -> bool {
        true
    }
}

/// What answered a call, reported as `x-protogate-mock` metadata.
enum Source {
    Stub(String),
    Stateful,
    Generated,
}

impl Inner {
    async fn answer(self: Arc<Self>, call: Call) -> Result<CallResponse, GatewayError> {
        let Call {
            method,
            requests,
            context,
            deadline,
            ..
        } = call;
        let entry = self.journal.begin(&method, &context);
        if method.is_client_streaming() && method.is_server_streaming() {
            return Ok(bidi::answer(
                self, method, requests, context, deadline, entry,
            ));
        }
        let (request, last) = self.read_requests(&method, requests, entry).await?;
        let mut key = method.full_name().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&last);

        let stub = self.stubs.find(&StubRequest {
            method: &method,
            route: context.route.as_deref(),
            message: &request,
            headers: &context.headers,
        });
        let stub_fault = stub
            .as_ref()
            .and_then(|r| Some((r.stub_id.as_str(), r.fault.as_deref()?)));
        let fired = self.faults.decide(&method, stub_fault);
        if let Some(f) = &fired {
            self.journal.fault(entry, f.fault.kind.as_str(), &f.id);
            if f.fault.is_immediate() {
                return Err(f.fault.error());
            }
            if f.fault.kind == faults::FaultKind::Timeout {
                faults::wait_past(deadline).await;
            }
        }
        let response = self.answer_with(&method, &context, &request, &key, stub, entry);
        let response = response.await?;
        Ok(match &fired {
            Some(Fired { fault, .. }) if fault.kind != faults::FaultKind::Timeout => {
                faults::cut(response, fault)
            }
            _ => response,
        })
    }

    /// Reads the request messages one by one as they arrive, each decoded
    /// (a malformed one fails the call at once) and journaled; the last one
    /// stands for a client stream. A malformed frame abandons the call, as
    /// a real server would see it.
    async fn read_requests(
        &self,
        method: &MethodDescriptor,
        mut requests: RequestStream,
        entry: EntryId,
    ) -> Result<(DynamicMessage, Bytes), GatewayError> {
        let mut last = None;
        while let Some(m) = requests.next().await {
            let bytes = m?;
            let message = decode_request(method, &bytes)?;
            self.journal.request(entry, &message);
            last = Some((message, bytes));
        }
        match last {
            Some(last) => Ok(last),
            // An empty client stream is a valid call; a unary call without
            // its message is not, and real servers (tonic, grpc-go) say INTERNAL.
            None if method.is_client_streaming() => {
                Ok((DynamicMessage::new(method.input()), Bytes::new()))
            }
            None => Err(GatewayError::Upstream(tonic::Status::internal(
                "missing request message",
            ))),
        }
    }

    /// The answer of a stub, the stateful store or the generator.
    async fn answer_with(
        &self,
        method: &MethodDescriptor,
        context: &crate::call::CallContext,
        request: &DynamicMessage,
        key: &[u8],
        stub: Option<StubReply>,
        entry: EntryId,
    ) -> Result<CallResponse, GatewayError> {
        if let Some(reply) = stub {
            self.journal
                .answered_by(entry, &format!("stub:{}", reply.stub_id));
            return self.answer_from_stub(method, request, key, reply).await;
        }
        self.remember_unmatched(method, context.route.as_deref(), request, &context.headers);

        let service = method.parent_service().full_name().to_string();
        if self.stateful.contains(&service)
            && let Some(result) =
                self.state
                    .handle_with(method, request, &self.generator, key, &self.stateful)
        {
            self.journal.answered_by(entry, "stateful");
            let msg = result.map_err(GatewayError::Upstream)?;
            return Ok(respond(Source::Stateful, vec![(Duration::ZERO, msg)]));
        }
        self.journal.answered_by(entry, "generated");
        let count = if method.is_server_streaming() {
            GENERATED_STREAM_LEN
        } else {
            1
        };
        let messages = (0..count)
            .map(|i| {
                let mut k = key.to_vec();
                if i > 0 {
                    k.extend_from_slice(&(i as u64).to_le_bytes());
                }
                (Duration::ZERO, self.generator.respond(method, request, &k))
            })
            .collect();
        Ok(respond(Source::Generated, messages))
    }

    async fn answer_from_stub(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        key: &[u8],
        reply: StubReply,
    ) -> Result<CallResponse, GatewayError> {
        if !reply.latency.is_zero() {
            tokio::time::sleep(reply.latency).await;
        }
        let id = reply.stub_id.clone();
        let messages = self.stub_messages(method, request, key, reply)?;
        Ok(respond(Source::Stub(id), messages))
    }

    /// A stub's messages (each after its delay), or its error.
    fn stub_messages(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        key: &[u8],
        reply: StubReply,
    ) -> Result<Vec<(Duration, DynamicMessage)>, GatewayError> {
        let id = reply.stub_id;
        let fill = reply.fill;
        match reply.outcome {
            StubOutcome::Message(json) => {
                let msg = self.stub_message(method.output(), &json, request, key, &id, fill)?;
                Ok(vec![(Duration::ZERO, msg)])
            }
            StubOutcome::Stream(items) => {
                let mut messages = Vec::with_capacity(items.len());
                for (i, (delay, json)) in items.iter().enumerate() {
                    let mut k = key.to_vec();
                    k.extend_from_slice(&(i as u64).to_le_bytes());
                    let msg = self.stub_message(method.output(), json, request, &k, &id, fill)?;
                    messages.push((*delay, msg));
                }
                Ok(messages)
            }
            StubOutcome::Error {
                code,
                message,
                details,
            } => Err(GatewayError::Upstream(
                self.stub_status(code, &message, &details, &id)?,
            )),
        }
    }

    /// The stub's (partial) message, unset fields generated.
    fn stub_message(
        &self,
        desc: MessageDescriptor,
        json: &serde_json::Value,
        request: &DynamicMessage,
        key: &[u8],
        id: &str,
        fill: bool,
    ) -> Result<DynamicMessage, GatewayError> {
        let options = DeserializeOptions::new().deny_unknown_fields(true);
        // An Any of Empty may come in Python's and Google's form (no `value`).
        let decoded = crate::transcode::any_json::deserialize_value(&desc, json, &options);
        let mut msg = decoded.map_err(|e| {
            GatewayError::Internal(format!(
                "stub {id}: its message is not a valid {}: {e}",
                desc.full_name()
            ))
        })?;
        if fill {
            self.generator.fill_unset(&mut msg, request, key);
        }
        Ok(msg)
    }

    /// A status whose details are encoded as `grpc-status-details-bin`.
    fn stub_status(
        &self,
        code: i32,
        message: &str,
        details: &[serde_json::Value],
        id: &str,
    ) -> Result<tonic::Status, GatewayError> {
        let code = tonic::Code::from_i32(code);
        let mut status = if details.is_empty() {
            tonic::Status::new(code, message)
        } else {
            let desc = self
                .pool
                .get_message_by_name("google.rpc.Status")
                .ok_or_else(|| GatewayError::Internal("google.rpc.Status missing".into()))?;
            let json = serde_json::json!({
                "code": code as i32,
                "message": message,
                "details": details,
            });
            let options = DeserializeOptions::new();
            let encoded = crate::transcode::any_json::deserialize_value(&desc, &json, &options)
                .map_err(|e| {
                    GatewayError::Internal(format!("stub {id}: invalid error details: {e}"))
                })?
                .encode_to_vec();
            tonic::Status::with_details(code, message, encoded.into())
        };
        if let Ok(v) = MetadataValue::try_from(format!("stub:{id}")) {
            status.metadata_mut().insert("x-protogate-mock", v);
        }
        Ok(status)
    }

    fn remember_unmatched(
        &self,
        method: &MethodDescriptor,
        route: Option<&str>,
        request: &DynamicMessage,
        headers: &http::HeaderMap,
    ) {
        // Kept for the admin endpoint: a huge request is summarised, so that
        // the ring of recent requests cannot hold gigabytes.
        let size = request.encoded_len();
        let body = if size > UNMATCHED_MAX_BYTES {
            serde_json::json!({
                "omitted": format!("a {size}-byte request (more than {UNMATCHED_MAX_BYTES} bytes)")
            })
        } else {
            request
                .serialize_with_options(
                    serde_json::value::Serializer,
                    &SerializeOptions::new().use_proto_field_name(true),
                )
                .unwrap_or(serde_json::Value::Null)
        };
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .filter(|(k, _)| k.as_str() != "authorization" && k.as_str() != "cookie")
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                )
            })
            .collect();
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let entry = serde_json::json!({
            "method": method.full_name(),
            "route": route,
            "request": body,
            "headers": headers,
            "unix_ms": at,
        });
        if let Ok(mut u) = self.unmatched.lock() {
            if u.len() == UNMATCHED_KEPT {
                u.pop_front();
            }
            u.push_back(entry);
        }
    }
}

/// `bytes` as the method's request message.
fn decode_request(
    method: &MethodDescriptor,
    bytes: &Bytes,
) -> Result<DynamicMessage, GatewayError> {
    DynamicMessage::decode(method.input(), bytes.clone()).map_err(|e| {
        GatewayError::Upstream(tonic::Status::invalid_argument(format!(
            "request does not decode as {}: {e}",
            method.input().full_name()
        )))
    })
}

/// A call response yielding `messages` (each after its delay), then trailers.
fn respond(source: Source, messages: Vec<(Duration, DynamicMessage)>) -> CallResponse {
    let mut metadata = MetadataMap::new();
    let label = match &source {
        Source::Stub(id) => format!("stub:{id}"),
        Source::Stateful => "stateful".to_string(),
        Source::Generated => "generated".to_string(),
    };
    if let Ok(v) = MetadataValue::try_from(label) {
        metadata.insert("x-protogate-mock", v);
    }
    let events: BoxStream<'static, Result<CallEvent, GatewayError>> = stream::iter(messages)
        .then(|(delay, msg)| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(CallEvent::Message(crate::transcode::encode::to_bytes(&msg)))
        })
        .chain(stream::once(async {
            Ok(CallEvent::Trailers(MetadataMap::new()))
        }))
        .boxed();
    CallResponse { metadata, events }
}
