//! Admin endpoints, served on `--admin-listen` (and in mock mode on the main
//! listener too):
//!
//! - `POST /_protogate/reload`: rebuilds the configuration from its files
//!   and swaps it in; answers the [`ReloadReport`](crate::live::ReloadReport)
//!   (200), or 400 in the JSON error shape listing every problem when the
//!   new configuration is refused and the old one keeps serving.
//! - `GET /_protogate/reload`: the serving generation, reload counts and the
//!   latest report.
//! - `GET /metrics`: Prometheus metrics (text format 0.0.4), when the
//!   process installed the recorder (the binary does).
//! - `GET /healthz`: the process is up (200 until it exits, drain
//!   included). `GET /readyz`: 200 when every descriptor source has loaded
//!   and every upstream in use answers its health check SERVING, else 503
//!   in the JSON error shape naming each thing not ready; 503 from the
//!   moment shutdown begins ([`crate::health`]).
//! - `GET /_protogate/mock/stubs`: the loaded stubs (id, file, method or
//!   route, priority, remaining uses).
//! - `GET /_protogate/mock/unmatched`: the most recent requests no stub
//!   matched, with their method, route, request message and headers.
//! - `/_protogate/mock/requests` and `/_protogate/mock/scenarios`: the
//!   request journal and scenarios (`admin/mock.rs`).

mod mock;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::health::Phase;
use crate::live::Live;

/// The admin routes.
pub fn router(live: Arc<Live>) -> Router {
    let (stubs, unmatched, reload, status, ready) = (
        live.clone(),
        live.clone(),
        live.clone(),
        live.clone(),
        live.clone(),
    );
    mock::routes(live)
        .route(
            "/_protogate/reload",
            get(move || async move { reload_status(&status) }).post(move || async move {
                let report = reload.reload("admin").await;
                let body = serde_json::to_value(&report).unwrap_or_default();
                if report.ok {
                    json_response(StatusCode::OK, body)
                } else {
                    let mut err = json!({
                        "code": 3,
                        "message": format!(
                            "reload refused ({} problem(s)); still serving generation {}",
                            report.problems.len(),
                            report.generation
                        ),
                        "details": [],
                    });
                    if let (Some(e), serde_json::Value::Object(r)) = (err.as_object_mut(), body) {
                        e.extend(r);
                    }
                    json_response(StatusCode::BAD_REQUEST, err)
                }
            }),
        )
        .route("/metrics", get(|| async { metrics_response() }))
        .route(
            "/healthz",
            get(|| async { json_response(StatusCode::OK, json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || async move { readiness(&ready).await }),
        )
        .route(
            "/_protogate/mock/stubs",
            get(move || async move {
                mock_json(stubs.current().mock.as_ref().map(|m| m.stubs().describe()))
            }),
        )
        .route(
            "/_protogate/mock/unmatched",
            get(move || async move {
                let gw = unmatched.current();
                mock_json(
                    gw.mock
                        .as_ref()
                        .map(|m| serde_json::Value::Array(m.unmatched())),
                )
            }),
        )
}

fn reload_status(live: &Live) -> Response<Body> {
    let stats = live.stats();
    json_response(
        StatusCode::OK,
        json!({
            "generation": live.generation(),
            "succeeded": stats.succeeded.load(Ordering::Relaxed),
            "failed": stats.failed.load(Ordering::Relaxed),
            "last": stats.last(),
        }),
    )
}

async fn readiness(live: &Live) -> Response<Body> {
    let gw = live.current();
    let ready = live.health().readiness(&gw).await;
    let upstreams: serde_json::Map<String, serde_json::Value> = ready
        .upstreams
        .iter()
        .map(|u| {
            let status = json!({"url": u.url, "ready": u.ready, "status": u.probe.to_string()});
            (u.name.clone(), status)
        })
        .collect();
    if ready.is_ready() {
        return json_response(
            StatusCode::OK,
            json!({"status": "ready", "routes": gw.routes().len(), "upstreams": upstreams}),
        );
    }
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({
            "code": 14,
            "message": format!("not ready: {}", ready.problems().join("; ")),
            "details": [],
            "draining": ready.phase != Phase::Serving,
            "missing": ready.missing,
            "upstreams": upstreams,
        }),
    )
}

fn mock_json(value: Option<serde_json::Value>) -> Response<Body> {
    match value {
        Some(v) => json_response(StatusCode::OK, v),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"code": 5, "message": "mock mode is off", "details": []}),
        ),
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
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

/// The Prometheus scrape, or 404 when no recorder is installed.
fn metrics_response() -> Response<Body> {
    match crate::observe::metrics::render() {
        Some(text) => {
            let mut resp = Response::new(Body::from(text));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"code": 5, "message": "metrics are not enabled in this process", "details": []}),
        ),
    }
}
