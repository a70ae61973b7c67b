//! `/openapi.json` and `/openapi.yaml`: the serving snapshot's OpenAPI
//! document ([`crate::openapi`]), built once per snapshot, on a blocking
//! thread the first time (a large API takes a while); and the `/docs` page
//! ([`super::docs`]). A route of the API at the same path wins.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

use super::docs;
use crate::gateway::Gateway;
use crate::openapi;

/// The document or the `/docs` page, when the request asks for one (GET or
/// HEAD, no route of the API at that path); `None` otherwise.
pub(super) async fn answer(
    gw: &Arc<Gateway>,
    method: &Method,
    path: &str,
) -> Option<Response<Body>> {
    let yaml = match path {
        "/openapi.json" => false,
        "/openapi.yaml" => true,
        _ => return docs::answer(gw, method, path),
    };
    if (method != Method::GET && method != Method::HEAD)
        || gw.table.matcher.find(method, path).is_ok()
    {
        return None;
    }
    let rendered = match openapi::built(gw).filter(|d| !yaml || d.has_yaml()) {
        Some(doc) => render(&doc, yaml),
        None => {
            let gw = gw.clone();
            let work = tokio::task::spawn_blocking(move || render(&openapi::served(&gw), yaml));
            work.await.unwrap_or_else(|e| Err(e.to_string()))
        }
    };
    Some(match rendered {
        Ok(body) => reply(body, yaml, *method == Method::HEAD),
        Err(e) => {
            tracing::warn!("{path}: {e}");
            let mut resp = Response::new(Body::from(format!("cannot render the document: {e}")));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    })
}

fn render(doc: &openapi::Rendered, yaml: bool) -> Result<Bytes, String> {
    match yaml {
        false => Ok(doc.json().clone()),
        true => doc.yaml().cloned().map_err(str::to_string),
    }
}

fn reply(body: Bytes, yaml: bool, head: bool) -> Response<Body> {
    let content_type = match yaml {
        true => "application/yaml",
        false => "application/json",
    };
    let len = body.len();
    let mut resp = Response::new(if head {
        Body::empty()
    } else {
        Body::from(body)
    });
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}
