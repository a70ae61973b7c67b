//! The templates and rules real APIs publish, end to end through the real
//! gateway to a real tonic server that echoes the request message (the
//! probe service of tests/fixtures/hardening), so each test sees exactly
//! what the path, query and body bound: a variable after `**` (Firestore),
//! `{name=**/botSessions/*}`, a verb holding `:`, the root template, `/**`
//! on `/` and on empty segments, a nested body field, repeated fields bound
//! by the path, and Envoy's precedence between templates.

mod common;

use common::{Reply, Running};
use protogate::config::Config;
use protogate::gateway::Gateway;
use protogate::live::Live;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const ECHO: &str = "hardening.v1.ProbeService.Echo";

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hardening")
}

/// The gateway over the probe service with `Echo`'s rule given as YAML
/// (one rule, its bindings under `additional_bindings`), in front of the
/// echo server. Every binding must be served: none may be skipped.
async fn echo_gateway(rule: &str) -> (Running, Running) {
    let echo = common::start_echo().await;
    let pool = protogate::descriptors::load(&[fixture()]).unwrap().pool;
    let yaml = format!("http:\n  rules:\n    - selector: {ECHO}\n{rule}");
    let config = Config::parse(&yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"));
    let gw = Gateway::build(pool, config, Some(&echo.url())).unwrap();
    assert!(gw.skipped().is_empty(), "skipped: {:?}", gw.skipped());
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) =
        protogate::server::spawn(Live::fixed(gw), "127.0.0.1:0".parse().unwrap(), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    (Running::new(addr, tx), echo)
}

async fn send(gw: &Running, method: &str, path: &str, body: &str) -> Reply {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = reqwest::Client::new()
        .request(m, format!("{}{path}", gw.url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Reply::from(r).await
}

/// The echoed message of a 200 answer.
async fn echoed(gw: &Running, method: &str, path: &str, body: &str) -> Value {
    let r = send(gw, method, path, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
    r.json()
}

#[tokio::test]
async fn a_variable_after_double_wildcard_binds_firestore_style_paths() {
    let (gw, _echo) = echo_gateway(
        "      get: '/v1/{s=projects/*/databases/*/documents/*/**}/{node.v}'\n      \
         additional_bindings:\n        \
         - get: '/v1/{s=projects/*/databases/*/documents}/{node.v}'\n        \
         - get: '/v1/{s=projects/*/databases/*/documents/*/**}'\n",
    )
    .await;
    let docs = "/v1/projects/p/databases/d/documents";
    assert_eq!(
        echoed(&gw, "GET", &format!("{docs}/users/u1/posts"), "").await,
        json!({"s": "projects/p/databases/d/documents/users/u1", "node": {"v": "posts"}})
    );
    assert_eq!(
        echoed(&gw, "GET", &format!("{docs}/users/u1/a/b/posts"), "").await,
        json!({"s": "projects/p/databases/d/documents/users/u1/a/b", "node": {"v": "posts"}})
    );
    // A collection right under `documents`, and a document.
    assert_eq!(
        echoed(&gw, "GET", &format!("{docs}/users"), "").await,
        json!({"s": "projects/p/databases/d/documents", "node": {"v": "users"}})
    );
    assert_eq!(
        echoed(&gw, "GET", &format!("{docs}/users/u1"), "").await,
        json!({"s": "projects/p/databases/d/documents/users/u1"})
    );
}

#[tokio::test]
async fn a_variable_starting_with_double_wildcard() {
    let (gw, _echo) = echo_gateway("      get: '/v2/{s=**/botSessions/*}'\n").await;
    assert_eq!(
        echoed(&gw, "GET", "/v2/projects/p/bots/b/botSessions/s1", "").await,
        json!({"s": "projects/p/bots/b/botSessions/s1"})
    );
    send(&gw, "GET", "/v2/botSessions/s1", "")
        .await
        .assert_error(404, 5);
}

#[tokio::test]
async fn a_verb_holding_a_colon_after_a_variable() {
    let (gw, _echo) = echo_gateway(
        "      post: '/v1/example/{s}:custom:custom'\n      body: '*'\n      \
         additional_bindings:\n        \
         - {post: '/v1/example/{s}:custom', body: '*'}\n        \
         - {get: '/v1/example/{s}'}\n",
    )
    .await;
    assert_eq!(
        echoed(&gw, "POST", "/v1/example/u1:custom:custom", r#"{"i32": 1}"#).await,
        json!({"s": "u1", "i32": 1})
    );
    assert_eq!(
        echoed(&gw, "POST", "/v1/example/u1:custom", r#"{"i32": 2}"#).await,
        json!({"s": "u1", "i32": 2})
    );
    assert_eq!(
        echoed(&gw, "GET", "/v1/example/a:b", "").await,
        json!({"s": "a:b"})
    );
}

#[tokio::test]
async fn the_root_template_and_double_wildcard_on_the_root() {
    let (gw, _echo) =
        echo_gateway("      get: '/'\n      additional_bindings:\n        - get: '/{s=**}'\n")
            .await;
    assert_eq!(echoed(&gw, "GET", "/?i32=7", "").await, json!({"i32": 7}));
    assert_eq!(echoed(&gw, "GET", "/a", "").await, json!({"s": "a"}));
    // `**` takes empty segments too, and keeps them.
    assert_eq!(
        echoed(&gw, "GET", "/a//b/", "").await,
        json!({"s": "a//b/"})
    );

    let (gw, _echo) = echo_gateway("      get: '/{s=**}'\n").await;
    assert_eq!(echoed(&gw, "GET", "/", "").await, json!({}));
}

#[tokio::test]
async fn a_nested_body_field_path() {
    let (gw, _echo) = echo_gateway("      post: '/v1/deep/{s}'\n      body: 'node.child'\n").await;
    assert_eq!(
        echoed(&gw, "POST", "/v1/deep/x?i32=3", r#"{"v": "inner"}"#).await,
        json!({"s": "x", "i32": 3, "node": {"child": {"v": "inner"}}})
    );
    // The body is the sub-message, not the request.
    let r = send(&gw, "POST", "/v1/deep/x", r#"{"s": "top"}"#).await;
    r.assert_error(400, 3);
    // An empty body leaves it unset.
    assert_eq!(
        echoed(&gw, "POST", "/v1/deep/x", "").await,
        json!({"s": "x"})
    );
}

#[tokio::test]
async fn a_repeated_field_bound_by_the_path_takes_comma_separated_values() {
    let (gw, _echo) = echo_gateway(
        "      get: '/v1/nums/{nums}'\n      additional_bindings:\n        \
         - {post: '/v1/nums/{nums}', body: '*'}\n",
    )
    .await;
    assert_eq!(
        echoed(&gw, "GET", "/v1/nums/1,2,3", "").await,
        json!({"nums": ["1", "2", "3"]})
    );
    assert_eq!(
        echoed(&gw, "GET", "/v1/nums/5", "").await,
        json!({"nums": ["5"]})
    );
    // The path wins over the body, whole.
    assert_eq!(
        echoed(&gw, "POST", "/v1/nums/8,9", r#"{"nums": ["1"], "s": "b"}"#).await,
        json!({"nums": ["8", "9"], "s": "b"})
    );
    let r = send(&gw, "GET", "/v1/nums/1,x", "").await;
    let j = r.assert_error(400, 3);
    assert!(j.to_string().contains("nums"), "{j}");
}

#[tokio::test]
async fn precedence_follows_envoy_between_double_wildcard_templates() {
    // Which template answered shows in the field it bound.
    let (gw, _echo) = echo_gateway(
        "      get: '/v3/{s=**}/c'\n      additional_bindings:\n        \
         - get: '/v3/{node.v=**}/b/c'\n        \
         - get: '/v3/{a=**}'\n        \
         - get: '/v3/lit/{b}/c'\n",
    )
    .await;
    // `**` takes the fewest segments after which a template's rest matches.
    assert_eq!(
        echoed(&gw, "GET", "/v3/x/b/c", "").await,
        json!({"node": {"v": "x"}})
    );
    assert_eq!(
        echoed(&gw, "GET", "/v3/x/y/c", "").await,
        json!({"s": "x/y"})
    );
    // A literal beats `**` at its segment.
    assert_eq!(
        echoed(&gw, "GET", "/v3/lit/z/c", "").await,
        json!({"b": "z"})
    );
    // Nothing after `c`: the template ending in `**` takes all.
    assert_eq!(
        echoed(&gw, "GET", "/v3/x/c/d", "").await,
        json!({"a": "x/c/d"})
    );
    // Mid-template `**` needs a segment: `/v3/c` is `{a=**}`'s.
    assert_eq!(echoed(&gw, "GET", "/v3/c", "").await, json!({"a": "c"}));
}
