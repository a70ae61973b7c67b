//! CORS from `cors:` in routes.yaml: preflights answered at the edge (no
//! backend call), allowed origins (exact and patterns) get the headers and
//! the gRPC status headers exposed, other origins get none, and the layer
//! follows a reload of the configuration.

mod common;

async fn preflight(env: &common::Env, origin: &str) -> reqwest::Response {
    env.http
        .request(reqwest::Method::OPTIONS, env.url("/v1/shelves/1"))
        .header("origin", origin)
        .header("access-control-request-method", "DELETE")
        .header("access-control-request-headers", "content-type, x-grpc-web")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn allowed_origins_get_cors_headers_and_others_do_not() {
    let env = common::Env::with_routes(&format!(
        "{}\ncors: {{allow_origins: ['https://app.example.com', 'https://*.preview.example.com'], max_age: 600s}}\n",
        common::bundled_routes_yaml()
    ))
    .await;
    for origin in [
        "https://app.example.com",
        "https://pr-7.preview.example.com",
    ] {
        let r = preflight(&env, origin).await;
        assert!(r.status().is_success(), "{}", r.status());
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], origin);
        assert_eq!(h["access-control-allow-methods"], "DELETE");
        let allowed = h["access-control-allow-headers"].to_str().unwrap();
        assert!(
            allowed.contains("x-grpc-web") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert_eq!(h["access-control-max-age"], "600");
        let r = env
            .http
            .get(env.url("/v1/shelves/1"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
        let exposed = r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(
            exposed.contains("grpc-status") && exposed.contains("grpc-status-details-bin"),
            "{exposed}"
        );
    }
    let r = preflight(&env, "https://evil.example.net").await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_cors_configured_no_headers_are_added() {
    let env = common::Env::start().await;
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn credentials_with_any_origin_is_a_load_error() {
    let config =
        protogate::config::Config::parse("cors: {allow_origins: ['*'], allow_credentials: true}")
            .unwrap();
    let err = protogate::gateway::Gateway::build(common::pool(), config, None).unwrap_err();
    assert!(err.to_string().contains("allow_credentials"), "{err}");
}
