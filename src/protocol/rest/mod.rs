//! The REST adapter: HTTP/JSON request → route → request message → Call →
//! response message → HTTP/JSON, with every failure in the configured error
//! shape (`errors:`, [`crate::error_format`]).
//!
//! It reads as the pipeline does: resolve the route, decode the body
//! and query into a message, [`Exchange::dispatch`], then encode the reply.
//! HEAD is GET without the body (`head.rs`).

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};

use super::body::read_body;
use super::metadata::{client_timeout, request_metadata, response_headers};
use crate::call::single;
use crate::error_format::RequestInfo;
use crate::gateway::Gateway;
use crate::pipeline::{Dispatch, Exchange, Protocol};
use crate::routing::{MatchError, Route, RouteMatch};
use crate::status::GatewayError;
use crate::transcode::system_params::{self, Alt, SystemParams};
use crate::transcode::{RenderedBody, RequestInput, build_request};

mod head;
mod stream;
mod upload;
mod ws;

/// What serving a request produced.
enum Reply {
    /// A complete answer.
    Done(Response<Body>),
    /// A server stream whose first message (or end) has arrived.
    Stream(stream::Started),
}

/// Serves one REST request.
pub async fn handle(gw: Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    if ws::is_upgrade(req.headers()) {
        let exchange = Exchange::begin(gw.hooks.clone(), Protocol::WebSocket, &req);
        return ws::handle(gw, req, exchange).await;
    }
    let pretty = wants_pretty(req.uri().query());
    let request = request_info(&gw, &req);
    let mut exchange = Exchange::begin(gw.hooks.clone(), Protocol::Rest, &req);
    match serve(&gw, &mut exchange, req, pretty).await {
        Ok(Reply::Done(resp)) => {
            exchange.finish(resp.status(), Ok(()));
            resp
        }
        Ok(Reply::Stream(started)) => stream::respond(started, exchange),
        Err(err) => {
            let resp = error_response(&gw, &err, pretty, request.as_ref());
            exchange.finish(resp.status(), Err(&err));
            resp
        }
    }
}

async fn serve(
    gw: &Arc<Gateway>,
    exchange: &mut Exchange,
    req: Request<Body>,
    pretty: bool,
) -> Result<Reply, GatewayError> {
    let (parts, body) = req.into_parts();
    check_transfer_encoding(&parts.headers)?;
    let (route, hit) = resolve(gw, &parts)?;
    let head_only = head::skips_stream(&parts.method, route);
    if let Some(target) = gw.route_targets.get(route.id) {
        exchange.resolve(if head_only {
            head::stand_in(target)
        } else {
            target.clone()
        });
    }
    // After resolving, so a 400 here is counted and logged with its route.
    let system = SystemParams::from_query(
        route,
        parts.uri.query(),
        gw.request_options.limits.max_depth,
    )?;

    let requests = if route.method.is_client_streaming() {
        upload::requests(gw.clone(), route.id, hit.bindings, &parts, body)?
    } else {
        single(unary_message(gw, route, &hit.bindings, &parts, body).await?)
    };
    let dispatch = Dispatch {
        metadata: request_metadata(&parts.headers, &gw.forwarded_headers)?,
        requests,
        headers: &parts.headers,
        client_timeout: client_timeout(&parts.headers)?,
    };
    let response = exchange.dispatch(dispatch).await?;
    if route.method.is_server_streaming() {
        let format = stream::format(gw, route.id, &parts.headers, system.alt == Alt::Sse);
        let started = stream::start(gw.clone(), route.id, response, format, system).await?;
        if head_only {
            return Ok(Reply::Done(stream::head(&started)));
        }
        return Ok(Reply::Stream(started));
    }
    let reply = response.into_unary().await?;
    encode(gw, route, &reply.metadata, &reply.message, pretty, &system).map(Reply::Done)
}

/// The one request message of a unary or server-streaming call: the body
/// (read within `limits.body_read_timeout`), the query and the path.
async fn unary_message(
    gw: &Gateway,
    route: &Route,
    bindings: &[String],
    parts: &Parts,
    body: Body,
) -> Result<Bytes, GatewayError> {
    let body = read_body(gw, &parts.headers, body).await?;
    let input = RequestInput {
        http_method: &parts.method,
        bindings,
        query: parts.uri.query(),
        body: &body,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    };
    let message = build_request(route, &input, &gw.request_options)?;
    Ok(crate::transcode::encode::to_bytes(&message))
}

/// Only `chunked` is decoded: a body in another transfer coding (`gzip,
/// chunked`) would reach the JSON decoder still encoded.
fn check_transfer_encoding(headers: &HeaderMap) -> Result<(), GatewayError> {
    for v in headers.get_all(header::TRANSFER_ENCODING) {
        let chunked_only = v.to_str().is_ok_and(|t| {
            t.split(',')
                .all(|c| c.trim().eq_ignore_ascii_case("chunked"))
        });
        if !chunked_only {
            return Err(GatewayError::bad_field(
                "header transfer-encoding",
                format!(
                    "{:?} is not supported: send the body uncompressed, chunked or with a content-length",
                    String::from_utf8_lossy(v.as_bytes())
                ),
            ));
        }
    }
    Ok(())
}

/// The route a request's method and path match.
fn resolve<'g>(gw: &'g Gateway, parts: &Parts) -> Result<(&'g Route, RouteMatch), GatewayError> {
    let path = parts.uri.path();
    let hit = gw
        .table
        .matcher
        .find(&parts.method, path)
        .map_err(|e| match e {
            MatchError::NotFound => GatewayError::NoRoute {
                method: parts.method.to_string(),
                path: path.to_string(),
            },
            MatchError::MethodNotAllowed(allowed) => GatewayError::MethodNotAllowed {
                method: parts.method.to_string(),
                path: path.to_string(),
                allowed,
            },
            MatchError::BadEncoding { field } => {
                GatewayError::bad_field(field, "path segment is not valid percent-encoded UTF-8")
            }
        })?;
    let route = gw.route(hit.route)?;
    Ok((route, hit))
}

/// The reply message as the HTTP response.
fn encode(
    gw: &Gateway,
    route: &Route,
    metadata: &tonic::metadata::MetadataMap,
    message: &[u8],
    pretty: bool,
    system: &SystemParams,
) -> Result<Response<Body>, GatewayError> {
    let mut opts = system.response_options(gw.response_options);
    opts.pretty |= pretty && system.pretty.is_none();
    let rendered = system.render(route, message, &opts)?;
    let mut headers = HeaderMap::new();
    response_headers(metadata, &mut headers);
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

fn wants_pretty(query: Option<&str>) -> bool {
    system_params::wants_pretty(query)
}

/// The request's method, URI and id, kept only when the error format
/// shows them (a template).
pub fn request_info<B>(gw: &Gateway, req: &Request<B>) -> Option<RequestInfo> {
    gw.error_format
        .wants_request()
        .then(|| RequestInfo::new(req.method(), req.uri(), req.headers()))
}

/// Renders any gateway error in the configured error shape (`errors:`),
/// with the error's own headers (`Allow`) and, for upstream errors, their
/// metadata as `Grpc-Metadata-*` headers.
pub fn error_response(
    gw: &Gateway,
    err: &GatewayError,
    pretty: bool,
    request: Option<&RequestInfo>,
) -> Response<Body> {
    let status = err.http_status();
    let rendered = gw.error_format.render(err, &gw.pool, request, pretty);
    log_error(status, err);
    let mut headers = err.headers();
    if let GatewayError::Upstream(s) = err {
        response_headers(s.metadata(), &mut headers);
    }
    if matches!(
        err,
        GatewayError::PayloadTooLarge { .. } | GatewayError::BodyTimeout(_)
    ) {
        // The body was not (all) read: the connection cannot carry another
        // request, and the client must not try (HTTP/2 drops this header).
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    headers.insert(header::CONTENT_TYPE, rendered.content_type);
    let mut resp = Response::new(Body::from(rendered.body));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

fn log_error(status: StatusCode, err: &GatewayError) {
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), error = %err, "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), error = %err, "request rejected");
    }
}
