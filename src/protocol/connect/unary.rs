//! Connect unary calls: `POST` with the bare message as the body
//! (`application/proto` or `application/json`, optionally compressed per
//! `Content-Encoding`), or `GET` with it in the query for methods marked
//! `NO_SIDE_EFFECTS`. The reply is the bare message; trailers come back as
//! `Trailer-`-prefixed headers; errors are Connect's JSON with the code's
//! HTTP status.

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use futures_util::StreamExt;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use tonic::metadata::MetadataMap;

use super::{
    Encoding, check_version, client_timeout, error_response, metadata_headers, request_metadata,
};
use crate::call::{CallEvent, CallResponse, single};
use crate::gateway::Gateway;
use crate::pipeline::{Dispatch, Exchange, Idempotency, Target};
use crate::protocol::body::read_body;
use crate::protocol::compression::{ACCEPTED, Codec};
use crate::status::GatewayError;

/// Serves a unary call; `encoding` is `None` for a GET (the query says).
pub(super) async fn handle(
    gw: Arc<Gateway>,
    req: Request<Body>,
    encoding: Option<Encoding>,
    mut exchange: Exchange,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let result = serve(&gw, &mut exchange, &parts, body, encoding).await;
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = error_response(&gw, &e);
            resp.headers_mut()
                .insert(header::ACCEPT_ENCODING, HeaderValue::from_static(ACCEPTED));
            exchange.finish(resp.status(), Err(&e));
            return resp;
        }
    };
    exchange.finish(resp.status(), Ok(()));
    resp
}

async fn serve(
    gw: &Gateway,
    exchange: &mut Exchange,
    parts: &Parts,
    body: Body,
    encoding: Option<Encoding>,
) -> Result<Response<Body>, GatewayError> {
    let target = resolve(gw, exchange, parts)?;
    check_version(&parts.headers)?;
    if target.method.is_client_streaming() || target.method.is_server_streaming() {
        return Err(GatewayError::UnsupportedMediaType {
            content_type: "a streaming method takes application/connect+proto or +json".into(),
        });
    }
    let (encoding, message) = match encoding {
        Some(encoding) => (encoding, posted_message(gw, parts, body).await?),
        None => {
            if target.idempotency != Idempotency::NoSideEffects {
                return Err(GatewayError::MethodNotAllowed {
                    method: "GET".into(),
                    path: parts.uri.path().to_string(),
                    allowed: vec!["POST".into()],
                });
            }
            query_message(gw, parts.uri.query().unwrap_or_default())?
        }
    };
    let path = parts.uri.path();
    let request = match encoding {
        Encoding::Proto => message,
        Encoding::Json => json(gw, path)?.request(&message, &gw.request_options)?,
    };
    let response = exchange
        .dispatch(Dispatch {
            metadata: request_metadata(&parts.headers)?,
            requests: single(request),
            headers: &parts.headers,
            client_timeout: client_timeout(&parts.headers)?,
        })
        .await?;
    let reply = collect(response).await?;
    let body = match encoding {
        Encoding::Proto => reply.message.clone(),
        Encoding::Json => json(gw, path)?.response(&reply.message, &gw.response_options)?,
    };
    Ok(respond(gw, &parts.headers, encoding, reply, body))
}

fn resolve(
    gw: &Gateway,
    exchange: &mut Exchange,
    parts: &Parts,
) -> Result<Arc<Target>, GatewayError> {
    let target = gw.grpc_targets.get(parts.uri.path()).ok_or_else(|| {
        GatewayError::Unimplemented(format!("unknown method {}", parts.uri.path()))
    })?;
    exchange.resolve(target.clone());
    Ok(target.clone())
}

fn json<'g>(
    gw: &'g Gateway,
    path: &str,
) -> Result<&'g crate::transcode::message::MethodJson, GatewayError> {
    gw.method_json
        .get(path)
        .ok_or_else(|| GatewayError::Unimplemented(format!("unknown method {path}")))
}

/// A POST's body, inflated per `Content-Encoding`.
async fn posted_message(gw: &Gateway, parts: &Parts, body: Body) -> Result<Bytes, GatewayError> {
    let codec = Codec::from_request(&parts.headers, "content-encoding")?;
    let raw = read_body(gw, &parts.headers, body).await?;
    decompress(gw, codec, raw)
}

fn decompress(gw: &Gateway, codec: Codec, raw: Bytes) -> Result<Bytes, GatewayError> {
    // The protocol: zero-length content is never decompressed.
    if codec == Codec::Identity || raw.is_empty() {
        return Ok(raw);
    }
    let limit = usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX);
    codec.decompress(&raw, limit)
}

/// A GET's message: `message` (percent-encoded, or base64url when
/// `base64=1`), its `encoding` and `compression`, and `connect=v1`.
fn query_message(gw: &Gateway, query: &str) -> Result<(Encoding, Bytes), GatewayError> {
    let mut message = None;
    let mut encoding = None;
    let mut base64 = false;
    let mut compression = "identity".to_string();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "message" => message = Some(v.into_owned()),
            "encoding" => encoding = Some(v.into_owned()),
            "base64" => base64 = v == "1",
            "compression" => compression = v.into_owned(),
            "connect" if v != "v1" => {
                return Err(GatewayError::bad_field(
                    "query connect",
                    format!("unsupported version {v:?}; this server speaks v1"),
                ));
            }
            _ => {}
        }
    }
    let encoding = match encoding.as_deref() {
        Some("json") => Encoding::Json,
        Some("proto") => Encoding::Proto,
        other => {
            return Err(GatewayError::UnsupportedMediaType {
                content_type: format!("encoding={} (use json or proto)", other.unwrap_or("")),
            });
        }
    };
    let message = message.unwrap_or_default();
    let raw = if base64 {
        let trimmed = message.trim_end_matches('=');
        URL_SAFE_NO_PAD
            .decode(trimmed)
            .or_else(|_| URL_SAFE.decode(&message))
            .map_err(|e| GatewayError::bad_field("query message", format!("not base64url: {e}")))?
    } else {
        message.into_bytes()
    };
    let codec = Codec::from_name(&compression, "query compression")?;
    Ok((encoding, decompress(gw, codec, raw.into())?))
}

/// A unary call's outcome, headers and trailers apart.
struct Reply {
    headers: MetadataMap,
    trailers: MetadataMap,
    message: Bytes,
}

async fn collect(response: CallResponse) -> Result<Reply, GatewayError> {
    let CallResponse {
        metadata,
        mut events,
    } = response;
    let mut message = None;
    let mut trailers = MetadataMap::new();
    while let Some(event) = events.next().await {
        match event? {
            CallEvent::Message(m) if message.is_none() => message = Some(m),
            CallEvent::Message(_) => {
                return Err(GatewayError::BadGateway(
                    "upstream sent more than one message for a unary call".into(),
                ));
            }
            CallEvent::Trailers(t) => trailers = t,
        }
    }
    let message = message.ok_or_else(|| {
        GatewayError::BadGateway("upstream ended a unary call without a message".into())
    })?;
    Ok(Reply {
        headers: metadata,
        trailers,
        message,
    })
}

fn respond(
    gw: &Gateway,
    request: &HeaderMap,
    encoding: Encoding,
    reply: Reply,
    body: Bytes,
) -> Response<Body> {
    let mut headers = HeaderMap::new();
    metadata_headers(reply.headers, &mut headers);
    for (name, value) in reply.trailers.into_headers() {
        let Some(name) = name else { continue };
        if name.as_str().starts_with("grpc-") {
            continue;
        }
        if let Ok(prefixed) = HeaderName::try_from(format!("trailer-{name}")) {
            headers.append(prefixed, value);
        }
    }
    let content_type = match encoding {
        Encoding::Proto => "application/proto",
        Encoding::Json => "application/json",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let options = &gw.config.compression;
    let min = usize::try_from(options.min_size.0).unwrap_or(usize::MAX);
    let body = if options.messages
        && body.len() >= min
        && Codec::accepted_by(request, "accept-encoding") == Codec::Gzip
    {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Codec::Gzip.compress(&body)
    } else {
        body
    };
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let mut resp = Response::new(Body::from(body));
    *resp.headers_mut() = headers;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn get_is_only_for_known_query_shapes() {
        let q = |s: &str| super::super::shape(&Method::GET, &HeaderMap::new(), Some(s));
        assert!(q("encoding=json&message=%7B%7D").is_some());
        assert!(q("message=x").is_none());
        assert!(q("pageSize=1").is_none());
    }
}
