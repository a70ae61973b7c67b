//! Admin endpoints: what a frontend developer needs when a stub does not match.
//!
//! - `GET /_protogate/mock/stubs`: the loaded stubs (id, file, method or route,
//!   priority, remaining uses).
//! - `GET /_protogate/mock/unmatched`: the most recent requests no stub matched,
//!   with their method, route, request message and headers.
//!
//! Served on `--admin-listen`, and in mock mode on the main listener too.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Response, StatusCode, header};

use crate::gateway::Gateway;

/// The admin routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    let stubs_gw = gw.clone();
    Router::new()
        .route(
            "/_protogate/mock/stubs",
            get(move || {
                let gw = stubs_gw.clone();
                async move { json(gw.mock.as_ref().map(|m| m.stubs().describe())) }
            }),
        )
        .route(
            "/_protogate/mock/unmatched",
            get(move || {
                let gw = gw.clone();
                async move {
                    json(
                        gw.mock
                            .as_ref()
                            .map(|m| serde_json::Value::Array(m.unmatched())),
                    )
                }
            }),
        )
}

fn json(value: Option<serde_json::Value>) -> Response<Body> {
    let (status, body) = match value {
        Some(v) => (StatusCode::OK, v),
        None => (
            StatusCode::NOT_FOUND,
            serde_json::json!({"code": 5, "message": "mock mode is off", "details": []}),
        ),
    };
    let mut resp = Response::new(Body::from(
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    ));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
