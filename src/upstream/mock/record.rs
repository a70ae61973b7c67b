//! Record mode: proxy calls to the real upstream and write each exchange as a
//! stub file, so a team can capture a real backend once and replay it
//! offline with `--mock --mock-stubs DIR`.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use super::generate::{FNV_OFFSET, fnv1a};
use crate::call::{Backend, Call, CallEvent, CallResponse};
use crate::status::{GatewayError, decode_details};

/// Wraps a backend and records every unary or server-streaming exchange.
pub struct Recorder {
    inner: Arc<dyn Backend>,
    dir: PathBuf,
    pool: DescriptorPool,
}

impl Recorder {
    /// Records calls to `inner` as stub files in `dir` (created if needed).
    pub fn new(
        inner: Arc<dyn Backend>,
        dir: PathBuf,
        pool: DescriptorPool,
    ) -> std::io::Result<Recorder> {
        std::fs::create_dir_all(&dir)?;
        Ok(Recorder { inner, dir, pool })
    }
}

fn to_json(desc: MessageDescriptor, bytes: &[u8]) -> serde_json::Value {
    DynamicMessage::decode(desc, bytes)
        .ok()
        .and_then(|m| {
            m.serialize_with_options(
                serde_json::value::Serializer,
                &SerializeOptions::new().use_proto_field_name(true),
            )
            .ok()
        })
        .unwrap_or(serde_json::Value::Null)
}

impl Backend for Recorder {
    fn call(&self, call: Call) -> BoxFuture<'static, Result<CallResponse, GatewayError>> {
        let inner = self.inner.clone();
        let dir = self.dir.clone();
        let pool = self.pool.clone();
        Box::pin(async move {
            let method = call.method.clone();
            // Buffer the request messages so they can be both sent and recorded;
            // a malformed one abandons the call before anything is sent.
            let requests: Vec<Bytes> = call
                .requests
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            let recorded_request = requests.last().cloned().unwrap_or_default();
            let call = Call {
                requests: stream::iter(requests.into_iter().map(Ok)).boxed(),
                ..call
            };
            let outcome = match inner.call(call).await {
                Ok(resp) => {
                    let metadata = resp.metadata;
                    let events: Vec<Result<CallEvent, GatewayError>> = resp.events.collect().await;
                    Ok((metadata, events))
                }
                Err(e) => Err(e),
            };
            // Named by method and request: recording the same call again
            // replaces its stub rather than adding a duplicate.
            let n = fnv1a(
                fnv1a(fnv1a(FNV_OFFSET, method.full_name().as_bytes()), &[0]),
                &recorded_request,
            );
            let request_json = to_json(method.input(), &recorded_request);
            let mut conditions = serde_json::Map::new();
            if let serde_json::Value::Object(fields) = &request_json {
                for (k, v) in fields {
                    conditions.insert(k.clone(), serde_json::json!({ "equals": v }));
                }
            }
            let mut messages = Vec::new();
            let mut error = None;
            match &outcome {
                Ok((_, events)) => {
                    for e in events {
                        match e {
                            Ok(CallEvent::Message(m)) => messages.push(to_json(method.output(), m)),
                            Ok(CallEvent::Trailers(_)) => {}
                            Err(e) => error = Some(error_json(e, &pool)),
                        }
                    }
                }
                Err(e) => error = Some(error_json(e, &pool)),
            }
            // Recorded messages are complete: what they leave unset is a default.
            let response = match (error, method.is_server_streaming()) {
                (Some(err), _) => serde_json::json!({ "error": err }),
                (None, true) => serde_json::json!({
                    "fill": false,
                    "stream": messages.into_iter().map(|m| serde_json::json!({"message": m})).collect::<Vec<_>>()
                }),
                (None, false) => serde_json::json!({
                    "fill": false,
                    "message": messages.into_iter().next().unwrap_or_default(),
                }),
            };
            let stub = serde_json::json!({
                "stubs": [{
                    "id": format!("recorded-{}-{n:016x}", method.name()),
                    "method": method.full_name(),
                    "match": { "request": conditions },
                    "response": escape_templates(response),
                }]
            });
            let file = dir.join(format!("{}-{n:016x}.yaml", method.full_name()));
            match serde_norway::to_string(&stub) {
                Ok(text) => {
                    if let Err(e) = std::fs::write(&file, text) {
                        tracing::error!(file = %file.display(), error = %e, "cannot write recorded stub");
                    } else {
                        tracing::info!(file = %file.display(), "recorded stub");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode recorded stub"),
            }
            let (metadata, events) = outcome?;
            Ok(CallResponse {
                metadata,
                events: stream::iter(events).boxed(),
            })
        })
    }
}

fn error_json(e: &GatewayError, pool: &DescriptorPool) -> serde_json::Value {
    let details = match e {
        GatewayError::Upstream(s) => decode_details(pool, s.details()),
        _ => Vec::new(),
    };
    // A detail whose type the pool lacks stays raw bytes, which a stub cannot replay.
    let details: Vec<serde_json::Value> = details
        .into_iter()
        .filter(|d| {
            let known = d
                .get("@type")
                .and_then(|t| t.as_str())
                .and_then(|t| t.rsplit('/').next())
                .is_some_and(|name| pool.get_message_by_name(name).is_some());
            if !known {
                tracing::warn!(detail = %d, "not recording an error detail of unknown type");
            }
            known
        })
        .collect();
    serde_json::json!({
        "code": e.code() as i32,
        "message": e.to_string(),
        "details": details,
    })
}

/// Recorded text is data, not a template: wrap anything minijinja would read.
fn escape_templates(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::String(s)
            if s.contains("{{") || s.contains("{%") || s.contains("{#") =>
        {
            serde_json::Value::String(format!("{{% raw %}}{s}{{% endraw %}}"))
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(escape_templates).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, escape_templates(v)))
                .collect(),
        ),
        other => other,
    }
}
