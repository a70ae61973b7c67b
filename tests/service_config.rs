//! A google.api.Service file (ESPv2 / Cloud Endpoints style) as routes.yaml,
//! unchanged: `apis` choose the services, `backend.rules` the upstream and
//! deadline, `authentication` the JWT checks; the other sections are
//! accepted with a notice; several files merge.

mod common;
#[path = "common/jwt.rs"]
mod jwt;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, Header};
use protogate::config::Config;
use serde_json::json;
use tokio::net::TcpListener;

use common::{Running, start_backend, start_gateway};
use jwt::{jwks, keys, now};

/// Serves `document` at `/jwks` on loopback; stops with the runtime.
async fn jwks_server(document: String) -> String {
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let body = document.clone();
            async move { body }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/jwks")
}

/// The service config of the example API, as Cloud Endpoints users write it.
fn endpoints_yaml(backend: &str, jwks_url: &str) -> String {
    format!(
        r#"
type: google.api.Service
config_version: 3
name: library.endpoints.acme.dev
title: Library API
apis:
- name: library.v1.LibraryService
documentation:
  summary: A library.
usage:
  rules:
  - selector: "*"
    allow_unregistered_calls: true
system_parameters:
  rules:
  - selector: "*"
    parameters:
    - name: api_key
      http_header: x-api-key
backend:
  rules:
  - selector: "*"
    address: grpc://{backend}
    deadline: 5.0
  - selector: library.v1.LibraryService.GetBook
    deadline: 0.25
authentication:
  providers:
  - id: acme
    issuer: https://id.acme.dev
    jwks_uri: {jwks_url}
  rules:
  - selector: "*"
    requirements:
    - provider_id: acme
  - selector: library.v1.LibraryService.ListShelves
    allow_without_credential: true
http:
  rules:
  - selector: library.v1.LibraryService.GetShelf
    get: /v1/{{name=shelves/*}}
  - selector: library.v1.LibraryService.ListShelves
    get: /v1/shelves
"#,
        backend = backend.trim_start_matches("http://"),
    )
}

fn token(aud: &str) -> String {
    let claims = json!({
        "iss": "https://id.acme.dev", "aud": aud, "sub": "u1",
        "exp": now() + 300, "iat": now(),
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(&header, &claims, &keys().rsa).unwrap()
}

async fn get(gateway: &Running, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", gateway.url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn an_endpoints_service_config_drops_in_unchanged() {
    let (backend, _store) = start_backend().await;
    let jwks_url = jwks_server(jwks(&[&keys().rsa_jwk])).await;
    let yaml = endpoints_yaml(&backend.url(), &jwks_url);
    let config = Config::parse(&yaml).unwrap();
    assert!(
        config.notices.iter().any(|n| n.contains("documentation")
            && n.contains("usage")
            && n.contains("system_parameters")),
        "{:?}",
        config.notices
    );
    assert_eq!(config.descriptors.services, ["library.v1.LibraryService"]);
    // No --upstream: backend.rules says where the service lives.
    let (gateway, _gw) = start_gateway(&yaml, None).await;

    // allow_without_credential: no token needed.
    let (status, body) = get(&gateway, "/v1/shelves", None).await;
    assert_eq!(status, 200, "{body}");
    // Every other method needs a token of the provider, whose audience
    // defaults to the service name as ESPv2's does.
    let (status, _) = get(&gateway, "/v1/shelves/1", None).await;
    assert_eq!(status, 401);
    let good = token("https://library.endpoints.acme.dev/");
    let (status, body) = get(&gateway, "/v1/shelves/1", Some(&good)).await;
    assert_eq!(status, 200, "{body}");
    let per_api = token("https://library.endpoints.acme.dev/library.v1.LibraryService");
    assert_eq!(get(&gateway, "/v1/shelves/1", Some(&per_api)).await.0, 200);
    let (status, _) = get(&gateway, "/v1/shelves/1", Some(&token("someone-else"))).await;
    assert_eq!(status, 401);
}

#[test]
fn backend_rules_become_upstreams_and_timeouts() {
    let yaml = endpoints_yaml("http://10.0.0.7:8080", "http://127.0.0.1:9/jwks");
    let config = Config::parse(&yaml).unwrap();
    let (name, upstream) = config.upstreams.iter().next().unwrap();
    assert_eq!(upstream.url, "http://10.0.0.7:8080", "{name}");
    assert!(upstream.services.is_empty(), "`*` is the default upstream");
    let get_book = &config.timeouts["library.v1.LibraryService.GetBook"];
    assert_eq!(get_book.0, std::time::Duration::from_millis(250));
    assert_eq!(config.timeouts["*"].0, std::time::Duration::from_secs(5));
}

#[test]
fn what_cannot_be_honoured_is_an_error_not_silence() {
    let bad = |yaml: &str, expect: &str| {
        let e = Config::parse(yaml).unwrap_err();
        assert!(e.contains(expect), "{yaml}\n→ {e}");
    };
    bad("type: google.api.Other\nname: x", "google.api.Service");
    bad(
        "name: x\nbackend: {rules: [{selector: '*', address: 'https://x:1'}]}",
        "gRPC backends",
    );
    bad(
        "name: x\nbackend: {rules: [{selector: 'a.B.*', address: 'grpc://x:1', jwt_audience: y}]}",
        "jwt_audience",
    );
    bad(
        "name: x\nbackend: {rules: [{selector: a.B.Get, address: 'grpc://x:1'}, {selector: a.B.List, address: 'grpc://y:1'}]}",
        "routes per service",
    );
    bad(
        "name: x\nauthentication: {providers: [{id: a, issuer: i}]}",
        "jwks_uri is required",
    );
    bad(
        "name: x\nauthentication: {providers: [{id: a, issuer: i, jwks_uri: 'http://k'}], rules: [{selector: '*', requirements: [{provider_id: a, audiences: z}]}]}",
        "requirements[].audiences",
    );
    // protogate's own sections still reject typos in a service config.
    bad("name: x\njson: {emit_default: true}", "emit_default");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn several_service_configs_merge_and_conflicts_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.yaml",
        "type: google.api.Service\nname: a\napis: [{name: a.v1.A}]\nhttp: {rules: [{selector: a.v1.A.Get, get: /a}]}\njson: {unknown_query_params: reject}\n",
    );
    let b = write(
        dir.path(),
        "b.yaml",
        "type: google.api.Service\nname: b\napis: [{name: b.v1.B}]\nhttp: {rules: [{selector: b.v1.B.Get, get: /b}]}\n",
    );
    let config = Config::load_all(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(config.descriptors.services, ["a.v1.A", "b.v1.B"]);
    assert_eq!(config.http.rules.len(), 2);
    let c = write(
        dir.path(),
        "c.yaml",
        "json: {unknown_query_params: ignore}\n",
    );
    let e = Config::load_all(&[a.clone(), c.clone()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("json.unknown_query_params"), "{e}");
    assert!(e.contains("a.yaml") && e.contains("c.yaml"), "{e}");
    // A typo in one file names that file.
    let d = write(dir.path(), "d.yaml", "jsno: {}\n");
    let e = Config::load_all(&[a, d]).unwrap_err().to_string();
    assert!(e.contains("d.yaml") && e.contains("jsno"), "{e}");
}
