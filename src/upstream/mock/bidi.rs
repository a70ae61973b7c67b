//! Bidi streams, answered message by message as they arrive: each incoming
//! message is matched against the stubs on its own (a stub's message or
//! stream answers it, its error ends the call), else the generator answers
//! it with one message made from it (an echo of its fields). The answers go
//! out before the next message is read, so a client that waits for each
//! answer before sending the next is answered in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use prost::Message;
use prost_reflect::MethodDescriptor;
use tokio::time::Instant;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::faults::{self, FaultKind};
use super::journal::EntryId;
use super::stubs::StubRequest;
use super::{Inner, decode_request};
use crate::call::{CallContext, CallEvent, CallResponse, RequestStream};
use crate::status::GatewayError;

/// One answer waiting to go out: a message after its delay, or the error
/// that ends the call.
type Pending = (Duration, Result<Bytes, GatewayError>);

/// A bidi call in progress.
struct Bidi {
    call: Answerer,
    requests: RequestStream,
    pending: VecDeque<Pending>,
    over: bool,
}

/// What answering one message needs (apart from the request stream, which
/// is not `Sync`, so that answering can await).
struct Answerer {
    inner: Arc<Inner>,
    method: MethodDescriptor,
    context: CallContext,
    deadline: Instant,
    entry: EntryId,
}

/// The response of a bidi call: headers at once, then the answers to each
/// message as it arrives. Global faults are decided when the call begins.
pub(super) fn answer(
    inner: Arc<Inner>,
    method: MethodDescriptor,
    requests: RequestStream,
    context: CallContext,
    deadline: Instant,
    entry: EntryId,
) -> CallResponse {
    let fired = inner.faults.decide(&method, None);
    if let Some(f) = &fired {
        inner.journal.fault(entry, f.fault.kind.as_str(), &f.id);
    }
    let call = Bidi {
        call: Answerer {
            inner,
            method,
            context,
            deadline,
            entry,
        },
        requests,
        pending: VecDeque::new(),
        over: false,
    };
    let mut events: BoxStream<'static, Result<CallEvent, GatewayError>> =
        stream::unfold(call, Bidi::next).boxed();
    let mut metadata = MetadataMap::new();
    // Each message may be answered by another stub: the journal says which.
    metadata.insert("x-protogate-mock", MetadataValue::from_static("stream"));
    if let Some(f) = fired {
        if f.fault.is_immediate() {
            events = stream::once(async move { Err(f.fault.error()) }).boxed();
        } else if f.fault.kind == FaultKind::Timeout {
            events = stream::once(faults::wait_past(deadline))
                .filter_map(|()| std::future::ready(None))
                .chain(events)
                .boxed();
        } else {
            return faults::cut(CallResponse { metadata, events }, &f.fault);
        }
    }
    CallResponse { metadata, events }
}

impl Bidi {
    async fn next(mut self) -> Option<(Result<CallEvent, GatewayError>, Bidi)> {
        loop {
            if let Some((delay, item)) = self.pending.pop_front() {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                self.over |= item.is_err();
                return Some((item.map(CallEvent::Message), self));
            }
            if self.over {
                return None;
            }
            match self.requests.next().await {
                None => {
                    self.over = true;
                    return Some((Ok(CallEvent::Trailers(MetadataMap::new())), self));
                }
                Some(Err(e)) => {
                    self.over = true;
                    return Some((Err(e), self));
                }
                Some(Ok(bytes)) => {
                    let answers = self.call.answer_one(bytes).await;
                    self.pending.extend(answers);
                }
            }
        }
    }
}

impl Answerer {
    /// The answers to one incoming message.
    async fn answer_one(&self, bytes: Bytes) -> Vec<Pending> {
        let inner = &self.inner;
        let request = match decode_request(&self.method, &bytes) {
            Ok(r) => r,
            Err(e) => return vec![(Duration::ZERO, Err(e))],
        };
        inner.journal.request(self.entry, &request);
        let mut key = self.method.full_name().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&bytes);
        let stub = inner.stubs.find(&StubRequest {
            method: &self.method,
            route: self.context.route.as_deref(),
            message: &request,
            headers: &self.context.headers,
        });
        let Some(reply) = stub else {
            let ctx = &self.context;
            inner.remember_unmatched(&self.method, ctx.route.as_deref(), &request, &ctx.headers);
            inner.journal.answered_by(self.entry, "generated");
            let msg = inner.generator.respond(&self.method, &request, &key);
            return vec![(Duration::ZERO, Ok(msg.encode_to_vec().into()))];
        };
        inner
            .journal
            .answered_by(self.entry, &format!("stub:{}", reply.stub_id));
        let fired = reply
            .fault
            .as_deref()
            .and_then(|f| inner.faults.decide_stub(&reply.stub_id, f));
        if let Some(f) = &fired {
            inner
                .journal
                .fault(self.entry, f.fault.kind.as_str(), &f.id);
            match f.fault.kind {
                FaultKind::Timeout => faults::wait_past(self.deadline).await,
                _ => return vec![(Duration::ZERO, Err(f.fault.error()))],
            }
        }
        if !reply.latency.is_zero() {
            tokio::time::sleep(reply.latency).await;
        }
        match inner.stub_messages(&self.method, &request, &key, reply) {
            Ok(messages) => messages
                .into_iter()
                .map(|(delay, m)| (delay, Ok(m.encode_to_vec().into())))
                .collect(),
            Err(e) => vec![(Duration::ZERO, Err(e))],
        }
    }
}
