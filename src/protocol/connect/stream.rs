//! Connect streams (`application/connect+proto|json`): enveloped messages
//! both ways (flag 0x01: compressed per `Connect-Content-Encoding`), and an
//! end-of-stream message (flag 0x02) carrying `{"error"?, "metadata"}`.
//! The HTTP status is 200 once the call is understood; failures travel in
//! the end-of-stream message.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::StreamBody;
use serde_json::{Map, Value, json};
use tonic::metadata::{KeyAndValueRef, MetadataMap};

use super::{
    Encoding, check_version, client_timeout, error_json, error_response, is_call_metadata,
    metadata_headers, request_metadata,
};
use crate::call::{CallEvent, CallResponse, RequestStream};
use crate::gateway::Gateway;
use crate::pipeline::{Dispatch, Exchange};
use crate::protocol::compression::{ACCEPTED, Codec};
use crate::protocol::envelope;
use crate::protocol::grpc::{MessageCompression, request_messages};
use crate::status::GatewayError;

/// Connect's flag for the end-of-stream message.
const END_STREAM: u8 = 0x02;

/// Serves one streaming call.
pub(super) async fn handle(
    gw: Arc<Gateway>,
    req: Request<Body>,
    encoding: Encoding,
    mut exchange: Exchange,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let respond = MessageCompression::new(
        &gw,
        Codec::accepted_by(&parts.headers, "connect-accept-encoding"),
    );
    let path = parts.uri.path().to_string();
    let started = async {
        let target = gw
            .grpc_targets
            .get(&path)
            .ok_or_else(|| GatewayError::Unimplemented(format!("unknown method {path}")))?;
        exchange.resolve(target.clone());
        check_version(&parts.headers)?;
        if !target.method.is_client_streaming() && !target.method.is_server_streaming() {
            return Err(GatewayError::UnsupportedMediaType {
                content_type: "a unary method takes application/proto or application/json".into(),
            });
        }
        let codec = Codec::from_request(&parts.headers, "connect-content-encoding")?;
        let limit = usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX);
        let messages = request_messages(body, limit, codec);
        let requests = match encoding {
            Encoding::Proto => messages,
            Encoding::Json => from_json(gw.clone(), &path, messages),
        };
        exchange
            .dispatch(Dispatch {
                metadata: request_metadata(&parts.headers)?,
                requests,
                headers: &parts.headers,
                client_timeout: client_timeout(&parts.headers)?,
            })
            .await
    }
    .await;
    let response = match started {
        Ok(response) => response,
        Err(e @ GatewayError::UnsupportedMediaType { .. }) => {
            let resp = error_response(&gw, &e);
            exchange.finish(resp.status(), Err(&e));
            return resp;
        }
        Err(e) => failed_before_start(e),
    };
    let content_type = match encoding {
        Encoding::Proto => "application/connect+proto",
        Encoding::Json => "application/connect+json",
    };
    let mut headers = HeaderMap::new();
    metadata_headers(response.metadata, &mut headers);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "connect-accept-encoding",
        HeaderValue::from_static(ACCEPTED),
    );
    if respond.codec() != Codec::Identity {
        headers.insert(
            "connect-content-encoding",
            HeaderValue::from_static(respond.codec().name()),
        );
    }
    let out = Output {
        gw,
        path,
        encoding,
        respond,
    };
    let frames = frames(response.events, out, exchange);
    let mut resp = Response::new(Body::new(StreamBody::new(frames)));
    *resp.headers_mut() = headers;
    resp
}

/// A call refused before it started still answers 200 with the error in
/// its end-of-stream message, as the protocol asks.
fn failed_before_start(e: GatewayError) -> CallResponse {
    CallResponse {
        metadata: MetadataMap::new(),
        events: stream::iter([Err(e)]).boxed(),
    }
}

/// Each JSON request message as protobuf; the first bad one names its
/// index and field, and ends the stream (cancelling the call upstream).
fn from_json(gw: Arc<Gateway>, path: &str, messages: RequestStream) -> RequestStream {
    let path = path.to_string();
    messages
        .enumerate()
        .map(move |(i, m)| {
            let json = gw
                .method_json
                .get(&path)
                .ok_or_else(|| GatewayError::Unimplemented(format!("unknown method {path}")))?;
            json.request(&m?, &gw.request_options)
                .map_err(|e| e.at_index(i))
        })
        .scan(false, |failed, item| {
            if *failed {
                return futures_util::future::ready(None);
            }
            *failed = item.is_err();
            futures_util::future::ready(Some(item))
        })
        .boxed()
}

/// How response messages are written.
struct Output {
    gw: Arc<Gateway>,
    path: String,
    encoding: Encoding,
    respond: MessageCompression,
}

impl Output {
    fn message(&self, m: &[u8]) -> Result<Bytes, GatewayError> {
        match self.encoding {
            Encoding::Proto => Ok(self.respond.frame(m)),
            Encoding::Json => {
                let json = self
                    .gw
                    .method_json
                    .get(&self.path)
                    .ok_or_else(|| GatewayError::Internal("method vanished".into()))?;
                let rendered = json.response(m, &self.gw.response_options)?;
                Ok(self.respond.frame(&rendered))
            }
        }
    }

    fn end(&self, error: Option<&GatewayError>, trailers: &MetadataMap) -> Bytes {
        let mut end = Map::new();
        if let Some(e) = error {
            end.insert("error".into(), error_json(&self.gw.pool, e));
        }
        let metadata = metadata_json(trailers);
        if !metadata.is_empty() {
            end.insert("metadata".into(), Value::Object(metadata));
        }
        envelope::encode(END_STREAM, Value::Object(end).to_string().as_bytes())
    }
}

type FrameStream = BoxStream<'static, Result<Frame<Bytes>, Infallible>>;

fn frames(
    events: BoxStream<'static, Result<CallEvent, GatewayError>>,
    out: Output,
    exchange: Exchange,
) -> FrameStream {
    stream::unfold(Some((events, out, exchange)), |state| async move {
        let (mut events, out, exchange) = state?;
        let last = match events.next().await {
            Some(Ok(CallEvent::Message(m))) => match out.message(&m) {
                Ok(frame) => return Some((Ok(Frame::data(frame)), Some((events, out, exchange)))),
                Err(e) => {
                    exchange.finish(StatusCode::OK, Err(&e));
                    out.end(Some(&e), &MetadataMap::new())
                }
            },
            Some(Ok(CallEvent::Trailers(t))) => {
                exchange.finish(StatusCode::OK, Ok(()));
                out.end(None, &t)
            }
            Some(Err(e)) => {
                exchange.finish(StatusCode::OK, Err(&e));
                let trailers = match &e {
                    GatewayError::Upstream(s) => s.metadata().clone(),
                    _ => MetadataMap::new(),
                };
                out.end(Some(&e), &trailers)
            }
            None => {
                let e = GatewayError::Internal("the call ended without a status".into());
                exchange.finish(StatusCode::OK, Err(&e));
                out.end(Some(&e), &MetadataMap::new())
            }
        };
        Some((Ok(Frame::data(last)), None))
    })
    .boxed()
}

/// Trailers as `{"key": ["value", …]}` (binary values stay base64).
fn metadata_json(md: &MetadataMap) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for entry in md.iter() {
        let (key, value) = match entry {
            KeyAndValueRef::Ascii(k, v) => (k.as_str(), v.to_str().unwrap_or_default().to_string()),
            KeyAndValueRef::Binary(k, v) => (
                k.as_str(),
                String::from_utf8_lossy(v.as_encoded_bytes()).into_owned(),
            ),
        };
        if !is_call_metadata(key) {
            continue;
        }
        let values = out.entry(key.to_string()).or_insert_with(|| json!([]));
        if let Value::Array(list) = values {
            list.push(Value::String(value));
        }
    }
    out
}
