//! Server streams as HTTP bodies: every message becomes one record, written
//! as soon as it arrives.
//!
//! - **NDJSON** (`application/x-ndjson`, the default): one JSON value per
//!   line. A failure after the first message is one last line,
//!   `{"@error": <google.rpc.Status JSON>}` (`@` cannot start a proto field
//!   name, so it never collides with a message). A clean end is the end of
//!   the body with no `@error` line (and `grpc-status: 0` trailers where the
//!   transport carries them).
//! - **NDJSON envelopes** (`streaming.ndjson_envelope: true`), as
//!   grpc-gateway writes them: `{"result": <message>}` lines, then
//!   `{"error": <status>}` on failure.
//! - **SSE** (`text/event-stream`): `id: <n>` and `data: <message>` per
//!   message; `event: error` with the status on failure; `event: end` on a
//!   clean end (an `EventSource` reconnects whenever a stream closes, so the
//!   client needs to know when not to); `: keep-alive` comments while idle.
//! - **HttpBody** streams (`google.api.HttpBody` messages): the chunks'
//!   bytes, concatenated, with the first chunk's content type.

use bytes::{BufMut, Bytes, BytesMut};

use super::partial_response::FieldSelection;
use super::response::{RenderedBody, ResponseOptions, render_selected};
use crate::routing::rules::Route;
use crate::status::GatewayError;

/// How a server stream is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// One JSON message per line; failures as an `@error` line.
    Ndjson,
    /// grpc-gateway's `{"result": …}` / `{"error": …}` lines.
    NdjsonEnvelope,
    /// Server-sent events.
    Sse,
    /// google.api.HttpBody chunks, concatenated.
    Raw,
}

impl StreamFormat {
    /// The response content type (for [`Raw`](Self::Raw), the first chunk's
    /// decides: see [`StreamEncoder::content_type`]).
    pub fn content_type(self) -> &'static str {
        match self {
            StreamFormat::Ndjson | StreamFormat::NdjsonEnvelope => "application/x-ndjson",
            StreamFormat::Sse => "text/event-stream",
            StreamFormat::Raw => "application/octet-stream",
        }
    }
}

/// Turns a stream's messages into records, one at a time.
///
/// ```
/// use prost::Message;
/// use prost_reflect::DynamicMessage;
/// use protogate::transcode::stream::{StreamEncoder, StreamFormat};
///
/// let pool = protogate::descriptors::load(&["descriptors".into()]).unwrap().pool;
/// let table = protogate::routing::rules::build(&pool, &[], &Default::default()).unwrap();
/// let hit = table.matcher.find(&http::Method::GET, "/v1/shelves/1/books:stream").unwrap();
/// let route = &table.routes[hit.route];
/// let book = DynamicMessage::deserialize(route.method.output(), serde_json::json!({"title": "Dune"})).unwrap();
/// let mut sse = StreamEncoder::new(StreamFormat::Sse, Default::default());
/// let record = sse.message(route, &book.encode_to_vec()).unwrap();
/// assert_eq!(&record[..], b"id: 1\ndata: {\"title\":\"Dune\"}\n\n");
/// assert_eq!(&sse.end().unwrap()[..], b"event: end\ndata: {}\n\n");
/// ```
#[derive(Debug)]
pub struct StreamEncoder {
    format: StreamFormat,
    opts: ResponseOptions,
    sent: u64,
    content_type: Option<String>,
    fields: Option<FieldSelection>,
}

impl StreamEncoder {
    /// An encoder writing `format`; JSON is always compact (one line per message).
    pub fn new(format: StreamFormat, opts: ResponseOptions) -> StreamEncoder {
        StreamEncoder {
            format,
            opts: ResponseOptions {
                pretty: false,
                ..opts
            },
            sent: 0,
            content_type: None,
            fields: None,
        }
    }

    /// The same encoder writing only `fields` of each message (`$fields`).
    pub fn with_fields(mut self, fields: Option<FieldSelection>) -> StreamEncoder {
        self.fields = fields;
        self
    }

    /// The format.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// The content type of a raw (HttpBody) stream, once its first chunk was
    /// encoded.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// One message as its record.
    pub fn message(&mut self, route: &Route, encoded: &[u8]) -> Result<Bytes, GatewayError> {
        self.sent += 1;
        let rendered = render_selected(route, encoded, &self.opts, self.fields.as_ref())?;
        let json = match rendered {
            RenderedBody::Raw { content_type, data } => {
                self.content_type.get_or_insert(content_type);
                return Ok(data);
            }
            RenderedBody::Json(json) => json,
        };
        let mut out = BytesMut::with_capacity(json.len() + 24);
        match self.format {
            StreamFormat::Ndjson | StreamFormat::Raw => {
                out.put_slice(&json);
                out.put_u8(b'\n');
            }
            StreamFormat::NdjsonEnvelope => {
                out.put_slice(b"{\"result\":");
                out.put_slice(&json);
                out.put_slice(b"}\n");
            }
            StreamFormat::Sse => {
                out.put_slice(format!("id: {}\ndata: ", self.sent).as_bytes());
                out.put_slice(&json);
                out.put_slice(b"\n\n");
            }
        }
        Ok(out.freeze())
    }

    /// The terminal record for a failure after the stream started
    /// (`status` is the google.rpc.Status JSON). Raw streams have none:
    /// their failure shows in the trailers and an unfinished body.
    pub fn error(&self, status: &serde_json::Value) -> Option<Bytes> {
        let text = status.to_string();
        Some(Bytes::from(match self.format {
            StreamFormat::Ndjson => format!("{{\"@error\":{text}}}\n"),
            StreamFormat::NdjsonEnvelope => format!("{{\"error\":{text}}}\n"),
            StreamFormat::Sse => format!("event: error\ndata: {text}\n\n"),
            StreamFormat::Raw => return None,
        }))
    }

    /// The record marking a clean end (SSE only).
    pub fn end(&self) -> Option<Bytes> {
        (self.format == StreamFormat::Sse).then(|| Bytes::from_static(b"event: end\ndata: {}\n\n"))
    }

    /// A keep-alive record for an idle stream (SSE only: a comment).
    pub fn keep_alive(&self) -> Option<Bytes> {
        (self.format == StreamFormat::Sse).then(|| Bytes::from_static(b": keep-alive\n\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_reflect::DynamicMessage;

    fn book_route() -> Route {
        let t = crate::transcode::example_routes();
        let hit = t
            .matcher
            .find(&http::Method::GET, "/v1/shelves/1/books:stream")
            .unwrap();
        t.routes[hit.route].clone()
    }

    fn book(route: &Route, title: &str) -> Vec<u8> {
        DynamicMessage::deserialize(route.method.output(), serde_json::json!({"title": title}))
            .unwrap()
            .encode_to_vec()
    }

    #[test]
    fn every_format_writes_its_records() {
        let route = book_route();
        let status = serde_json::json!({"code": 5, "message": "gone", "details": []});
        let mut nd = StreamEncoder::new(StreamFormat::Ndjson, ResponseOptions::default());
        assert_eq!(
            &nd.message(&route, &book(&route, "a")).unwrap()[..],
            b"{\"title\":\"a\"}\n"
        );
        assert_eq!(
            &nd.error(&status).unwrap()[..],
            b"{\"@error\":{\"code\":5,\"message\":\"gone\",\"details\":[]}}\n"
        );
        assert!(nd.end().is_none() && nd.keep_alive().is_none());
        let mut env = StreamEncoder::new(StreamFormat::NdjsonEnvelope, ResponseOptions::default());
        assert_eq!(
            &env.message(&route, &book(&route, "a")).unwrap()[..],
            b"{\"result\":{\"title\":\"a\"}}\n"
        );
        assert!(env.error(&status).unwrap().starts_with(b"{\"error\":{"));
        let mut sse = StreamEncoder::new(
            StreamFormat::Sse,
            ResponseOptions {
                pretty: true,
                ..Default::default()
            },
        );
        sse.message(&route, &book(&route, "a")).unwrap();
        assert_eq!(
            &sse.message(&route, &book(&route, "b")).unwrap()[..],
            b"id: 2\ndata: {\"title\":\"b\"}\n\n"
        );
        assert!(
            sse.error(&status)
                .unwrap()
                .starts_with(b"event: error\ndata: {")
        );
        assert_eq!(&sse.keep_alive().unwrap()[..], b": keep-alive\n\n");
    }
}
