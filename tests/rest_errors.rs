//! Upstream errors through the gateway: every gRPC code of the DESIGN.md
//! table from a real upstream status, the `{"code","message","details"}`
//! body with typed details decoded from `grpc-status-details-bin`, and
//! response metadata on error responses.

mod common;

use common::{Env, Reply};
use serde_json::{Value, json};

/// A GET with extra request headers.
async fn get_with(env: &Env, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = env.http.get(env.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// The single detail of an error body, checked to be of `google.rpc.<ty>`.
fn only_detail(j: &Value, ty: &str) -> Value {
    let details = j["details"].as_array().expect("details array");
    assert_eq!(details.len(), 1, "{j}");
    assert_eq!(
        details[0]["@type"],
        format!("type.googleapis.com/google.rpc.{ty}"),
        "{j}"
    );
    details[0].clone()
}

#[tokio::test]
async fn every_upstream_code_maps_to_its_http_status() {
    let env = Env::start().await;
    let table = [
        (1, 499),
        (2, 500),
        (3, 400),
        (4, 504),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (11, 400),
        (12, 501),
        (13, 500),
        (14, 503),
        (15, 500),
        (16, 401),
    ];
    for (code, status) in table {
        let message = format!("injected failure {code}");
        let r = get_with(
            &env,
            "/v1/shelves/1",
            &[
                ("grpc-metadata-x-fail-code", &code.to_string()),
                ("grpc-metadata-x-fail-message", &message),
            ],
        )
        .await;
        let j = r.assert_error(status, code);
        assert_eq!(j["message"], message, "code {code}: {j}");
        assert_eq!(j["details"], json!([]), "code {code}: {j}");
        // The status's own metadata comes back too.
        assert_eq!(
            r.header("grpc-metadata-x-failure"),
            Some("injected"),
            "code {code}: {:?}",
            r.headers
        );
    }
}

#[tokio::test]
async fn default_message_and_post_routes_fail_the_same_way() {
    let env = Env::start().await;
    let r = env
        .http
        .post(env.url("/v1/shelves"))
        .header("content-type", "application/json")
        .header("grpc-metadata-x-fail-code", "7")
        .body(r#"{"theme":"x"}"#)
        .send()
        .await
        .unwrap();
    let j = Reply::from(r).await.assert_error(403, 7);
    assert_eq!(j["message"], "injected");
    // Nothing was created.
    env.get("/v1/shelves/4").await.assert_error(404, 5);
}

#[tokio::test]
async fn ok_status_without_a_message_is_not_a_success() {
    let env = Env::start().await;
    let r = get_with(&env, "/v1/shelves/1", &[("grpc-metadata-x-fail-code", "0")]).await;
    assert!(
        r.status == 502 || r.status == 503,
        "status {}: {}",
        r.status,
        r.text()
    );
    let j = r.json();
    assert_ne!(j["code"], 0, "{j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
}

#[tokio::test]
async fn missing_shelf_carries_resource_info() {
    let env = Env::start().await;
    let j = env.get("/v1/shelves/99").await.assert_error(404, 5);
    assert_eq!(j["message"], "shelves/99 not found");
    assert_eq!(
        only_detail(&j, "ResourceInfo"),
        json!({
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceType": "library.v1.Shelf",
            "resourceName": "shelves/99",
            "description": "no such resource"
        })
    );
}

#[tokio::test]
async fn duplicate_id_carries_resource_info() {
    let env = Env::start().await;
    let r = env
        .send_json("POST", "/v1/shelves?shelfId=2", r#"{"theme":"again"}"#)
        .await;
    let j = r.assert_error(409, 6);
    let d = only_detail(&j, "ResourceInfo");
    assert_eq!(d["resourceName"], "shelves/2", "{j}");
    assert_eq!(d["resourceType"], "library.v1.Shelf", "{j}");
}

#[tokio::test]
async fn empty_title_carries_bad_request() {
    let env = Env::start().await;
    let r = env
        .send_json(
            "POST",
            "/v1/shelves/1/books",
            r#"{"title":"  ","pageCount":"3"}"#,
        )
        .await;
    let j = r.assert_error(400, 3);
    assert_eq!(j["message"], "invalid book.title: must not be empty");
    assert_eq!(
        only_detail(&j, "BadRequest"),
        json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "book.title", "description": "must not be empty"}]
        })
    );
}

#[tokio::test]
async fn deleting_a_non_empty_shelf_carries_precondition_failure() {
    let env = Env::start().await;
    let j = env
        .send_json("DELETE", "/v1/shelves/1", "")
        .await
        .assert_error(400, 9);
    let d = only_detail(&j, "PreconditionFailure");
    assert_eq!(
        d["violations"],
        json!([{
            "type": "NOT_EMPTY",
            "subject": "shelves/1",
            "description": "shelf shelves/1 holds 3 book(s); set force to delete them too"
        }]),
        "{j}"
    );
    assert_eq!(j["message"], d["violations"][0]["description"]);
    // `force` from the query lets it through.
    let r = env
        .send_json("DELETE", "/v1/shelves/1?force=true", "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({}));
    env.get("/v1/shelves/1").await.assert_error(404, 5);
}

#[tokio::test]
async fn injected_error_info_detail_is_decoded() {
    let env = Env::start().await;
    let r = get_with(
        &env,
        "/v1/shelves/1/books/1",
        &[
            ("grpc-metadata-x-fail-code", "16"),
            ("grpc-metadata-x-fail-message", "token expired"),
            ("grpc-metadata-x-fail-detail", "TOKEN_EXPIRED"),
        ],
    )
    .await;
    let j = r.assert_error(401, 16);
    assert_eq!(j["message"], "token expired");
    assert_eq!(
        only_detail(&j, "ErrorInfo"),
        json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "TOKEN_EXPIRED",
            "domain": "tests.protogate"
        })
    );
}

#[tokio::test]
async fn error_responses_carry_response_metadata() {
    let env = Env::start().await;
    // A handler error: the backend's echo and x-served-by come back.
    let r = get_with(
        &env,
        "/v1/shelves/42",
        &[("grpc-metadata-x-echo-request-id", "req-7")],
    )
    .await;
    r.assert_error(404, 5);
    assert_eq!(
        r.header("grpc-metadata-x-echo-request-id"),
        Some("req-7"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("grpc-metadata-x-served-by"),
        Some("library-server"),
        "{:?}",
        r.headers
    );
    // Internal gRPC headers never leak as metadata.
    for (name, _) in &r.headers {
        let n = name.as_str();
        assert!(
            !n.starts_with("grpc-metadata-grpc-"),
            "{n} leaked: {:?}",
            r.headers
        );
        assert_ne!(n, "grpc-status", "{:?}", r.headers);
        assert_ne!(n, "grpc-status-details-bin", "{:?}", r.headers);
    }
}

#[tokio::test]
async fn error_bodies_have_exactly_the_status_shape() {
    let env = Env::start().await;
    let j = env.get("/v1/shelves/1/books/77").await.assert_error(404, 5);
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["code", "details", "message"], "{j}");
    assert_eq!(j["message"], "shelves/1/books/77 not found");
    assert_eq!(
        only_detail(&j, "ResourceInfo")["resourceType"],
        "library.v1.Book"
    );
}

#[tokio::test]
async fn upstream_messages_are_decoded_from_grpc_message() {
    let env = Env::start().await;
    // The backend's message quotes the name; tonic percent-encodes it on the
    // wire, and the gateway must hand back the original text.
    let j = env
        .get("/v1/shelves/caf%C3%A9%20100%25")
        .await
        .assert_error(400, 3);
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid name: `shelves/café 100%` is not a shelf name"),
        "{j}"
    );
    let r = get_with(
        &env,
        "/v1/shelves/1",
        &[
            ("grpc-metadata-x-fail-code", "10"),
            ("grpc-metadata-x-fail-message", "50% off: try again later"),
        ],
    )
    .await;
    let j = r.assert_error(409, 10);
    assert_eq!(j["message"], "50% off: try again later");
}
