//! `/openapi.json` and `/openapi.yaml`: the serving snapshot's OpenAPI
//! document ([`crate::openapi`]), built once per snapshot. A route of the
//! API at the same path wins.

use axum::body::Body;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};

use crate::gateway::Gateway;
use crate::openapi;

/// The document, when `req` asks for it (GET or HEAD of one of the two
/// paths that no route of the API serves); `None` otherwise.
pub(super) fn answer(gw: &Gateway, req: &Request<Body>) -> Option<Response<Body>> {
    let path = req.uri().path();
    let yaml = match path {
        "/openapi.json" => false,
        "/openapi.yaml" => true,
        _ => return None,
    };
    let method = req.method();
    if (method != Method::GET && method != Method::HEAD)
        || gw.table.matcher.find(method, path).is_ok()
    {
        return None;
    }
    let doc = openapi::served(gw);
    let (body, content_type) = match (yaml, &doc.yaml) {
        (false, _) => (doc.json.clone(), "application/json"),
        (true, Ok(text)) => (text.clone(), "application/yaml"),
        (true, Err(e)) => {
            tracing::warn!("/openapi.yaml: {e}");
            let mut resp = Response::new(Body::from(format!("cannot render YAML: {e}")));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return Some(resp);
        }
    };
    let len = body.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Some(resp)
}
