//! JWT authentication end to end: keys and a JWKS generated here (RSA, EC,
//! Ed25519, HMAC), a real tonic backend that records the metadata it
//! receives, and the real gateway spoken to over REST, Connect and native
//! gRPC. Every rejection reason, scope and claim policies, claims reaching
//! the backend with spoofed values stripped, cookie and query tokens, and
//! JWKS URL rotation with its rate limit and last-good-set fallback.

mod common;
#[path = "common/jwt.rs"]
mod jwt;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::backend::LibraryBackend;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::library_service_server::LibraryServiceServer;
use common::backend::pb::library::v1::{GetShelfRequest, ListShelvesRequest};
use common::{Running, start_gateway};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use jwt::{HMAC_ENV, jwks, keys, now};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::MetadataMap;

/// Claims a valid RSA-provider token carries; tests override some.
fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": "https://rsa.test",
        "aud": "library",
        "sub": "user-1",
        "exp": now() + 300,
        "iat": now(),
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A good RS256 token with `extra` claims.
fn rsa_token(extra: Value) -> String {
    sign(Algorithm::RS256, Some("rsa-1"), &keys().rsa, &claims(extra))
}

/// The example backend, recording the metadata of every call it receives.
async fn recording_backend() -> (Running, Arc<Mutex<Vec<MetadataMap>>>) {
    let seen: Arc<Mutex<Vec<MetadataMap>>> = Arc::default();
    let record = seen.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let svc = LibraryServiceServer::with_interceptor(
        LibraryBackend::with_sample_data(),
        move |req: tonic::Request<()>| {
            record.lock().unwrap().push(req.metadata().clone());
            Ok(req)
        },
    );
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await;
    });
    (Running::new(addr, tx), seen)
}

/// A JWKS endpoint whose document (or failure) the test controls.
struct JwksServer {
    url: String,
    document: Arc<Mutex<Option<String>>>,
    hits: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn jwks_server(initial: String) -> JwksServer {
    let document = Arc::new(Mutex::new(Some(initial)));
    let hits = Arc::new(AtomicUsize::new(0));
    let (doc, count) = (document.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let body = doc.lock().unwrap().clone();
            async move {
                match body {
                    Some(b) => (http::StatusCode::OK, b),
                    None => (http::StatusCode::INTERNAL_SERVER_ERROR, "down".to_string()),
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    JwksServer {
        url: format!("http://{addr}/jwks"),
        document,
        hits,
        _stop: tx,
    }
}

/// Everything one test talks to.
struct Env {
    gateway: Running,
    _backend: Running,
    seen: Arc<Mutex<Vec<MetadataMap>>>,
    jwks: JwksServer,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Env {
        Env::start_with("").await
    }

    /// The gateway with five providers; `rsa_extra` is added to the RSA
    /// provider's settings.
    async fn start_with(rsa_extra: &str) -> Env {
        let k = keys();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let rsa_jwks = write("rsa.json", &jwks(&[&k.rsa_jwk]));
        let ec_jwks = write("ec.json", &jwks(&[&k.ec_jwk]));
        let ed_pem = write("ed.pem", &k.ed_public_pem);
        let jwks = jwks_server(self::jwks(&[&k.rsa_jwk])).await;
        let (backend, seen) = recording_backend().await;
        let yaml = format!(
            r#"
auth:
  token: {{cookie: session, query: access_token}}
  providers:
    rsa:
      issuer: https://rsa.test
      audiences: [library]
      algorithms: [RS256]
      jwks_file: {rsa_jwks}
      leeway: 5s
      claims_to_metadata: {{sub: x-user-id, org.role: x-user-role, scope: x-user-scopes}}
      {rsa_extra}
    ec:
      issuer: https://ec.test
      algorithms: [ES256]
      jwks_file: {ec_jwks}
      claims_to_metadata: {{sub: x-user-id}}
    ed:
      issuer: https://ed.test
      algorithms: [EdDSA]
      pem_file: {ed_pem}
      leeway: 0s
    hmac:
      issuer: https://hmac.test
      algorithms: [HS256]
      hmac_secret_env: {HMAC_ENV}
    remote:
      issuer: https://remote.test
      algorithms: [RS256]
      jwks_url: {url}
      min_refresh_interval: 300ms
      refresh_interval: 1h
  rules:
    - selector: library.v1.LibraryService.ListShelves
      anonymous: true
    - selector: library.v1.LibraryService.Delete*
      scopes: [library.admin]
    - route: POST /v1/shelves
      claims: {{org.role: [editor, admin]}}
    - selector: library.v1.LibraryService.GetShelfStats
      providers: [ec]
"#,
            url = jwks.url
        );
        let (gateway, _) = start_gateway(&yaml, Some(&backend.url())).await;
        Env {
            gateway,
            _backend: backend,
            seen,
            jwks,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    /// GET /v1/shelves/1 with `token` as a bearer token.
    async fn get_shelf(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("/v1/shelves/1"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// The metadata of the last call the backend received.
    fn last_seen(&self) -> MetadataMap {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

/// Asserts a REST 401/403 with the JSON error shape and the challenge.
async fn assert_refused(r: reqwest::Response, status: u16, error: Option<&str>, says: &str) {
    assert_eq!(r.status().as_u16(), status, "{says}");
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    match error {
        Some(e) => assert!(challenge.contains(&format!("error=\"{e}\"")), "{challenge}"),
        None => assert_eq!(challenge, "Bearer realm=\"protogate\""),
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], if status == 401 { 16 } else { 7 }, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

#[tokio::test]
async fn every_rejection_reason_is_a_401_naming_it() {
    let env = Env::start().await;
    let k = keys();
    let r = env.http.get(env.url("/v1/shelves/1")).send().await.unwrap();
    assert_refused(r, 401, None, "needs a bearer token").await;
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .basic_auth("user", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_refused(r, 401, Some("invalid_token"), "not \"Bearer <token>\"").await;
    let cases: Vec<(String, &str)> = vec![
        ("not-a-jwt".into(), "not a JWT"),
        ("a.b.c".into(), "not base64url"),
        (rsa_token(json!({"exp": now() - 60})), "expired"),
        (rsa_token(json!({"nbf": now() + 120})), "not valid yet"),
        (
            rsa_token(json!({"iss": "https://evil.test"})),
            "\"https://evil.test\" is not a configured provider",
        ),
        (rsa_token(json!({"aud": "billing"})), "audience"),
        (rsa_token(json!({"exp": null})), "lacks a required claim"),
        (
            sign(Algorithm::RS256, Some("rsa-9"), &k.rsa, &claims(json!({}))),
            "no key of issuer \"https://rsa.test\" has kid \"rsa-9\"",
        ),
        (
            sign(
                Algorithm::RS256,
                Some("rsa-1"),
                &k.rsa_next,
                &claims(json!({})),
            ),
            "signature does not verify",
        ),
        (
            sign(Algorithm::ES256, Some("ec-1"), &k.ec, &claims(json!({}))),
            "algorithm \"ES256\" is not accepted",
        ),
        (unsigned(&claims(json!({}))), "alg \"none\""),
        // HS/RS key confusion: an HMAC over the RSA public key.
        (
            sign(
                Algorithm::HS256,
                Some("rsa-1"),
                &EncodingKey::from_secret(k.rsa_public_pem.as_bytes()).unwrap(),
                &claims(json!({})),
            ),
            "algorithm \"HS256\" is not accepted",
        ),
    ];
    for (token, says) in cases {
        let r = env.get_shelf(&token).await;
        assert_refused(r, 401, Some("invalid_token"), says).await;
        // The same refusal in Connect's own error shape.
        let r = env
            .http
            .post(env.url("/library.v1.LibraryService/GetShelf"))
            .header("content-type", "application/json")
            .bearer_auth(&token)
            .body(r#"{"name": "shelves/1"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "Connect: {says}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unauthenticated", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "Connect: {message:?} should say {says:?}"
        );
    }
    assert!(
        env.seen.lock().unwrap().is_empty(),
        "nothing reached the backend"
    );
}

/// An unsigned token: `alg: none` and an empty signature.
fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

#[tokio::test]
async fn rsa_ec_eddsa_and_hmac_tokens_verify() {
    let env = Env::start().await;
    let k = keys();
    let iss = |i: &str| claims(json!({"iss": i}));
    let tokens = [
        rsa_token(json!({})),
        sign(
            Algorithm::ES256,
            Some("ec-1"),
            &k.ec,
            &iss("https://ec.test"),
        ),
        sign(Algorithm::EdDSA, None, &k.ed, &iss("https://ed.test")),
        sign(Algorithm::HS256, None, &k.hmac, &iss("https://hmac.test")),
    ];
    for token in tokens {
        let r = env.get_shelf(&token).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

#[tokio::test]
async fn leeway_tolerates_small_clock_skew() {
    let env = Env::start().await;
    // leeway: 5s on the RSA provider.
    let r = env.get_shelf(&rsa_token(json!({"exp": now() - 2}))).await;
    assert_eq!(r.status(), 200);
    let r = env.get_shelf(&rsa_token(json!({"nbf": now() + 2}))).await;
    assert_eq!(r.status(), 200);
    let r = env.get_shelf(&rsa_token(json!({"exp": now() - 30}))).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn anonymous_methods_need_no_token_but_refuse_a_bad_one() {
    let env = Env::start().await;
    let r = env.http.get(env.url("/v1/shelves")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = env
        .http
        .get(env.url("/v1/shelves"))
        .bearer_auth(rsa_token(json!({"exp": now() - 600})))
        .send()
        .await
        .unwrap();
    assert_refused(r, 401, Some("invalid_token"), "expired").await;
}

#[tokio::test]
async fn scopes_and_claims_decide_with_403() {
    let env = Env::start().await;
    let delete = |token: String| {
        env.http
            .delete(env.url("/v1/shelves/2?force=true"))
            .bearer_auth(token)
            .send()
    };
    let r = delete(rsa_token(json!({"scope": "library.read"})))
        .await
        .unwrap();
    assert_refused(
        r,
        403,
        Some("insufficient_scope"),
        "lacks scope \"library.admin\"",
    )
    .await;
    let r = delete(rsa_token(json!({"scp": ["library.read", "library.admin"]})))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let create = |token: String| {
        env.http
            .post(env.url("/v1/shelves"))
            .bearer_auth(token)
            .json(&json!({"theme": "Poetry"}))
            .send()
    };
    let r = create(rsa_token(json!({"org": {"role": "viewer"}})))
        .await
        .unwrap();
    assert_refused(r, 403, Some("insufficient_scope"), "claim \"org.role\"").await;
    let r = create(rsa_token(json!({"org": {"role": "editor"}})))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_rule_can_restrict_the_providers() {
    let env = Env::start().await;
    let k = keys();
    // GetShelfStats accepts only the EC provider's tokens.
    let r = env
        .http
        .get(env.url("/v1/shelves/1/stats"))
        .bearer_auth(rsa_token(json!({})))
        .send()
        .await
        .unwrap();
    assert_refused(
        r,
        401,
        Some("invalid_token"),
        "not accepted for this method",
    )
    .await;
    let ec = sign(
        Algorithm::ES256,
        Some("ec-1"),
        &k.ec,
        &claims(json!({"iss": "https://ec.test"})),
    );
    let r = env
        .http
        .get(env.url("/v1/shelves/1/stats"))
        .bearer_auth(ec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn claims_reach_the_backend_and_spoofed_values_do_not() {
    let env = Env::start().await;
    let token = rsa_token(json!({"sub": "alice", "org": {"role": "admin"}, "scope": "a b"}));
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .bearer_auth(&token)
        .header("grpc-metadata-x-user-id", "mallory")
        .header("grpc-metadata-x-user-role", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let md = env.last_seen();
    let all = |k: &str| {
        md.get_all(k)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("x-user-id"), ["alice"]);
    assert_eq!(all("x-user-role"), ["admin"]);
    assert_eq!(all("x-user-scopes"), ["a b"]);
    assert_eq!(all("authorization"), [format!("Bearer {token}")]);

    // Anonymous: the spoofed keys are stripped all the same.
    let r = env
        .http
        .get(env.url("/v1/shelves"))
        .header("grpc-metadata-x-user-id", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(env.last_seen().get("x-user-id").is_none());
}

#[tokio::test]
async fn the_authorization_header_can_stay_at_the_gateway() {
    let env = Env::start_with("forward_authorization: false").await;
    let r = env.get_shelf(&rsa_token(json!({}))).await;
    assert_eq!(r.status(), 200);
    let md = env.last_seen();
    assert!(md.get("authorization").is_none());
    assert_eq!(md.get("x-user-id").unwrap(), "user-1");
}

#[tokio::test]
async fn tokens_from_a_cookie_or_the_query() {
    let env = Env::start().await;
    let token = rsa_token(json!({}));
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .header("cookie", format!("theme=dark; session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The parameter never binds a field, and is not an unknown parameter.
    let r = env
        .http
        .get(env.url(&format!("/v1/shelves/1?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "shelves/1");
}

#[tokio::test]
async fn connect_and_grpc_get_their_own_codes() {
    let env = Env::start().await;
    let connect = |token: Option<String>, path: &str| {
        let mut req = env
            .http
            .post(env.url(&format!("/library.v1.LibraryService/{path}")))
            .header("content-type", "application/json")
            .body(r#"{"name": "shelves/2"}"#);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = connect(None, "GetShelf").await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated", "{body}");
    let r = connect(Some(rsa_token(json!({"exp": now() - 600}))), "GetShelf")
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let r = connect(Some(rsa_token(json!({}))), "DeleteShelf")
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "permission_denied"
    );

    let mut grpc = LibraryServiceClient::connect(env.gateway.url())
        .await
        .unwrap();
    let get = |token: Option<String>| {
        let mut req = tonic::Request::new(GetShelfRequest {
            name: "shelves/1".into(),
        });
        if let Some(t) = token {
            req.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        req
    };
    let e = grpc.get_shelf(get(None)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let e = grpc
        .get_shelf(get(Some(unsigned(&claims(json!({}))))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(e.message().contains("alg \"none\""), "{}", e.message());
    let ok = grpc.get_shelf(get(Some(rsa_token(json!({}))))).await;
    assert_eq!(ok.unwrap().into_inner().name, "shelves/1");
    // The same anonymous policy, whichever protocol reaches the method.
    let list = grpc
        .list_shelves(ListShelvesRequest::default())
        .await
        .unwrap();
    assert!(!list.into_inner().shelves.is_empty());
}

#[tokio::test]
async fn jwks_url_rotation_is_fetched_once_and_rate_limited() {
    let env = Env::start().await;
    let k = keys();
    let remote = |kid: &str, key: &EncodingKey| {
        sign(
            Algorithm::RS256,
            Some(kid),
            key,
            &claims(json!({"iss": "https://remote.test"})),
        )
    };
    // The first token waits for the first fetch.
    let r = env.get_shelf(&remote("rsa-1", &k.rsa)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let after_first = env.jwks.hits.load(Ordering::SeqCst);
    assert!(after_first >= 1);

    // The issuer rotates: a token with the new kid makes one fetch.
    *env.jwks.document.lock().unwrap() = Some(jwks(&[&k.rsa_jwk, &k.rsa_next_jwk]));
    tokio::time::sleep(Duration::from_millis(350)).await; // past min_refresh_interval
    let r = env.get_shelf(&remote("rsa-2", &k.rsa_next)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let after_rotation = env.jwks.hits.load(Ordering::SeqCst);
    assert_eq!(after_rotation, after_first + 1);

    // Unknown kids cannot make the gateway hammer the issuer.
    for i in 0..20 {
        let r = env.get_shelf(&remote(&format!("forged-{i}"), &k.rsa)).await;
        assert_eq!(r.status(), 401);
    }
    assert!(env.jwks.hits.load(Ordering::SeqCst) <= after_rotation + 1);

    // The issuer fails: the keys fetched before keep working.
    *env.jwks.document.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = env.get_shelf(&remote("rsa-3", &k.rsa)).await;
    assert_eq!(r.status(), 401);
    let r = env.get_shelf(&remote("rsa-2", &k.rsa_next)).await;
    assert_eq!(r.status(), 200);

    // The issuer retires rsa-1: once the set is refreshed, tokens it
    // signed are refused, even those verified (and cached) before.
    let old = remote("rsa-1", &k.rsa);
    assert_eq!(env.get_shelf(&old).await.status(), 200);
    *env.jwks.document.lock().unwrap() = Some(jwks(&[&k.rsa_next_jwk]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = env.get_shelf(&remote("rsa-4", &k.rsa)).await;
    assert_eq!(r.status(), 401);
    let r = env.get_shelf(&old).await;
    assert_refused(r, 401, Some("invalid_token"), "has kid \"rsa-1\"").await;
}

#[tokio::test]
async fn a_verified_token_is_cached_until_it_expires() {
    let env = Env::start().await;
    let k = keys();
    // The Ed25519 provider has no leeway.
    let exp = now() + 1;
    let token = sign(
        Algorithm::EdDSA,
        None,
        &k.ed,
        &claims(json!({"iss": "https://ed.test", "exp": exp})),
    );
    assert_eq!(env.get_shelf(&token).await.status(), 200);
    assert_eq!(env.get_shelf(&token).await.status(), 200);
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = env.get_shelf(&token).await;
    assert_refused(r, 401, Some("invalid_token"), "expired").await;
}

#[tokio::test]
async fn bad_auth_configuration_is_refused_with_the_key_named() {
    let pool = common::pool();
    let cases = [
        (
            "auth: {providers: {a: {issuer: x, algorithms: [RS256]}}}",
            "auth.providers.a: set exactly one of",
        ),
        (
            "auth: {providers: {a: {issuer: x, algorithms: [XS1], hmac_secret_env: NOPE}}}",
            "\"XS1\" is not one of",
        ),
        (
            "auth: {providers: {a: {issuer: x, algorithms: [RS256], hmac_secret_env: NOPE}}}",
            "needs a public key",
        ),
        (
            "auth: {providers: {a: {issuer: x, algorithms: [HS256], hmac_secret_env: PROTOGATE_UNSET_VAR}}}",
            "PROTOGATE_UNSET_VAR (hmac_secret_env) is not set",
        ),
        (
            "auth: {providers: {a: {issuer: x, jwks_url: 'ftp://x'}}, rules: [{route: GET /nope}]}",
            "auth.rules[0]: route \"GET /nope\" is not a route",
        ),
        (
            "auth: {providers: {a: {issuer: x, jwks_url: 'http://127.0.0.1:9/'}}, rules: [{selector: '*', providers: [b]}]}",
            "\"b\" is not a provider",
        ),
        ("auth: {}", "name at least one token provider"),
    ];
    for (yaml, says) in cases {
        let config = protogate::config::Config::parse(yaml).unwrap();
        let e = protogate::gateway::Gateway::build(pool.clone(), config, None)
            .err()
            .unwrap_or_else(|| panic!("{yaml} should be refused"));
        assert!(e.to_string().contains(says), "{yaml}: {e}");
    }
}
