//! The REST adapter: HTTP/JSON request → route → request message → Call →
//! response message → HTTP/JSON, with every failure in the one error shape.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Limited};
use prost::Message;

use super::metadata::{parse_grpc_timeout, request_metadata, response_headers};
use crate::call::{Call, CallContext};
use crate::gateway::Gateway;
use crate::routing::MatchError;
use crate::status::GatewayError;
use crate::transcode::{RenderedBody, RequestInput, build_request, render_response};

/// Serves one REST request.
pub async fn handle(gw: Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    let pretty = wants_pretty(req.uri().query());
    match serve(&gw, req, pretty).await {
        Ok(resp) => resp,
        Err((err, headers)) => error_response(&gw, &err, headers, pretty),
    }
}

type Failure = (GatewayError, HeaderMap);

fn fail(e: GatewayError) -> Failure {
    (e, HeaderMap::new())
}

async fn serve(gw: &Gateway, req: Request<Body>, pretty: bool) -> Result<Response<Body>, Failure> {
    let arrived = tokio::time::Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let hit = gw
        .table
        .matcher
        .find(&parts.method, path)
        .map_err(|e| match e {
            MatchError::NotFound => fail(GatewayError::NoRoute {
                method: parts.method.to_string(),
                path: path.to_string(),
            }),
            MatchError::MethodNotAllowed(allowed) => {
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    h.insert(header::ALLOW, v);
                }
                (
                    GatewayError::MethodNotAllowed {
                        method: parts.method.to_string(),
                        path: path.to_string(),
                        allowed,
                    },
                    h,
                )
            }
            MatchError::BadEncoding { field } => fail(GatewayError::bad_field(
                field,
                "path segment is not valid percent-encoded UTF-8",
            )),
        })?;
    let Some(route) = gw.table.routes.get(hit.route) else {
        return Err(fail(GatewayError::Internal("route id out of range".into())));
    };
    if route.is_streaming() {
        return Err(fail(GatewayError::Unimplemented(format!(
            "{} is a streaming method; REST transcoding serves unary methods only",
            route.method.full_name()
        ))));
    }

    let body = read_body(&parts.headers, body, gw.max_body_bytes)
        .await
        .map_err(fail)?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let input = RequestInput {
        http_method: &parts.method,
        bindings: &hit.bindings,
        query: parts.uri.query(),
        body: &body,
        content_type,
    };
    let message = build_request(route, &input, &gw.request_options).map_err(fail)?;
    let metadata = request_metadata(&parts.headers, &gw.forwarded_headers).map_err(fail)?;
    let timeout = match parts.headers.get("grpc-timeout") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(parse_grpc_timeout)
            .ok_or_else(|| {
                fail(GatewayError::bad_field(
                    "header grpc-timeout",
                    "expected up to 8 digits and a unit (H, M, S, m, u, n), e.g. 500m",
                ))
            })?,
        None => gw
            .timeouts
            .get(route.id)
            .copied()
            .unwrap_or(Duration::from_secs(30)),
    };
    let Some(backend) = gw.backends.get(route.id).cloned().flatten() else {
        return Err(fail(GatewayError::UpstreamUnavailable(format!(
            "no upstream is configured for {} (use --upstream or upstreams: in routes.yaml)",
            route.method.parent_service().full_name()
        ))));
    };

    let context = if backend.wants_context() {
        CallContext {
            route: Some(route.key.clone()),
            headers: parts.headers.clone(),
        }
    } else {
        CallContext::default()
    };
    let call = Call {
        method: route.method.clone(),
        path: route.grpc_path.clone(),
        metadata,
        context,
        requests: Box::pin(stream::once(
            async move { Bytes::from(message.encode_to_vec()) },
        )),
        timeout,
    };
    // The deadline runs from the request's arrival and covers the whole
    // exchange; dropping the future (deadline or client gone) resets the
    // upstream stream, which cancels the call there.
    let deadline = arrived + timeout;
    let expired = || tokio::time::Instant::now() >= deadline;
    if expired() {
        return Err(fail(GatewayError::DeadlineExceeded(timeout)));
    }
    let reply = tokio::time::timeout_at(deadline, async move {
        backend.call(call).await?.into_unary().await
    })
    .await
    .map_err(|_| fail(GatewayError::DeadlineExceeded(timeout)))?
    .map_err(|e| {
        // An upstream that gave up on our deadline may say CANCELLED.
        if expired() {
            return fail(GatewayError::DeadlineExceeded(timeout));
        }
        let mut h = HeaderMap::new();
        if let GatewayError::Upstream(s) = &e {
            response_headers(s.metadata(), &mut h);
        }
        (e, h)
    })?;
    // A reply that lands after the deadline (timers tick in milliseconds) is late.
    if expired() {
        return Err(fail(GatewayError::DeadlineExceeded(timeout)));
    }

    let mut opts = gw.response_options;
    opts.pretty |= pretty;
    let rendered = render_response(route, &reply.message, &opts).map_err(fail)?;
    let mut headers = HeaderMap::new();
    response_headers(&reply.metadata, &mut headers);
    let (content_type, bytes) = match rendered {
        RenderedBody::Json(b) => (HeaderValue::from_static("application/json"), b),
        RenderedBody::Raw { content_type, data } => (
            HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            data,
        ),
    };
    headers.insert(header::CONTENT_TYPE, content_type);
    let mut resp = Response::new(Body::from(bytes));
    *resp.headers_mut() = headers;
    Ok(resp)
}

async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit_usize).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::PayloadTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BadRequest {
            message: format!("failed to read request body: {e}"),
            violation: None,
        }),
    }
}

fn wants_pretty(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "pretty" && v != "false" && v != "0")
    })
}

/// Renders any gateway error in the JSON error shape.
pub fn error_response(
    gw: &Gateway,
    err: &GatewayError,
    extra: HeaderMap,
    pretty: bool,
) -> Response<Body> {
    let status = err.http_status();
    let json = err.to_json(&gw.pool);
    let body = if pretty {
        serde_json::to_vec_pretty(&json)
    } else {
        serde_json::to_vec(&json)
    }
    .unwrap_or_default();
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), error = %err, "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), error = %err, "request rejected");
    }
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    *headers = extra;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
