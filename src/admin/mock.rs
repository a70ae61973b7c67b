//! The mock's admin endpoints beyond stubs and unmatched requests:
//!
//! - `GET /_protogate/mock/requests`: the request journal, filtered by
//!   `method`, `route`, `header=name:value` (repeatable), `since`, `until`
//!   ([`Filter::parse`]); `DELETE` clears it.
//! - `GET /_protogate/mock/scenarios`: every scenario the stubs name, its
//!   current state, the states its stubs mention, and those stubs.
//! - `POST /_protogate/mock/scenarios/reset`: every scenario back to
//!   `Started`; `POST /_protogate/mock/scenarios/{name}/reset`: one (404
//!   when no stub names it).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::{get, post};
use http::{Response, StatusCode, Uri};
use serde_json::json;

use super::{json_response, mock_json};
use crate::live::Live;
use crate::upstream::mock::journal::Filter;

/// The journal (and scenario) routes.
pub(super) fn routes(live: Arc<Live>) -> Router {
    let (list, clear) = (live.clone(), live.clone());
    let (scenarios, reset_all, reset_one) = (live.clone(), live.clone(), live);
    Router::new()
        .route(
            "/_protogate/mock/requests",
            get(move |uri: Uri| async move { requests(&list, &uri) }).delete(move || async move {
                let gw = clear.current();
                mock_json(
                    gw.mock
                        .as_ref()
                        .map(|m| json!({"cleared": m.journal().clear()})),
                )
            }),
        )
        .route(
            "/_protogate/mock/scenarios",
            get(move || async move {
                let gw = scenarios.current();
                mock_json(gw.mock.as_ref().map(|m| m.stubs().describe_scenarios()))
            }),
        )
        .route(
            "/_protogate/mock/scenarios/reset",
            post(move || async move { reset(&reset_all, None) }),
        )
        .route(
            "/_protogate/mock/scenarios/{name}/reset",
            post(move |Path(name): Path<String>| async move { reset(&reset_one, Some(&name)) }),
        )
}

/// Resets one scenario or all, answering the scenarios as they are now.
fn reset(live: &Live, name: Option<&str>) -> Response<Body> {
    let gw = live.current();
    let Some(mock) = gw.mock.as_ref() else {
        return mock_json(None);
    };
    match mock.stubs().reset_scenarios(name) {
        Ok(()) => json_response(StatusCode::OK, mock.stubs().describe_scenarios()),
        Err(e) => json_response(
            StatusCode::NOT_FOUND,
            json!({"code": 5, "message": e.to_string(), "details": []}),
        ),
    }
}

fn requests(live: &Live, uri: &Uri) -> Response<Body> {
    let filter = match Filter::parse(uri.query()) {
        Ok(f) => f,
        Err(e) => return bad_request(&e.field, &e.to_string()),
    };
    let gw = live.current();
    mock_json(gw.mock.as_ref().map(|m| m.journal().list(&filter)))
}

/// 400 INVALID_ARGUMENT in the JSON error shape, naming `field`.
fn bad_request(field: &str, message: &str) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({
            "code": 3,
            "message": message,
            "details": [{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }],
        }),
    )
}
