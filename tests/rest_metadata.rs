//! Headers ↔ metadata through the gateway and the example backend, which
//! echoes every `x-echo-*` metadata entry back as response metadata and
//! always sends `x-served-by`.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use common::{Env, Reply};

/// A GET of a shelf with extra request headers (appended, so a name may repeat).
async fn get_shelf_with(env: &Env, headers: &[(&str, &str)]) -> Reply {
    let mut req = env.http.get(env.url("/v1/shelves/1"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = Reply::from(req.send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

/// Every value of a response header.
fn all(r: &Reply, name: &str) -> Vec<String> {
    r.headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn decode_b64(v: &str) -> Vec<u8> {
    STANDARD
        .decode(v)
        .or_else(|_| STANDARD_NO_PAD.decode(v))
        .unwrap_or_else(|e| panic!("{v:?} is not base64: {e}"))
}

#[tokio::test]
async fn grpc_metadata_headers_round_trip() {
    let env = Env::start().await;
    let r = get_shelf_with(&env, &[("Grpc-Metadata-x-echo-a", "1")]).await;
    assert_eq!(r.json()["name"], "shelves/1");
    assert_eq!(all(&r, "grpc-metadata-x-echo-a"), ["1"], "{:?}", r.headers);
    assert_eq!(
        all(&r, "grpc-metadata-x-served-by"),
        ["library-server"],
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn repeated_metadata_keeps_every_value() {
    let env = Env::start().await;
    let r = get_shelf_with(
        &env,
        &[
            ("grpc-metadata-x-echo-tag", "red"),
            ("grpc-metadata-x-echo-tag", "blue"),
        ],
    )
    .await;
    assert_eq!(
        all(&r, "grpc-metadata-x-echo-tag"),
        ["red", "blue"],
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn binary_metadata_round_trips_as_base64() {
    let env = Env::start().await;
    let raw: &[u8] = &[0, 1, 2, 0xfe, 0xff, b'\n', 0x80];
    for encoded in [STANDARD.encode(raw), STANDARD_NO_PAD.encode(raw)] {
        let r = get_shelf_with(&env, &[("grpc-metadata-x-echo-blob-bin", &encoded)]).await;
        let back = all(&r, "grpc-metadata-x-echo-blob-bin");
        assert_eq!(back.len(), 1, "{:?}", r.headers);
        assert_eq!(decode_b64(&back[0]), raw, "sent {encoded}");
    }
}

#[tokio::test]
async fn invalid_binary_metadata_is_a_400_naming_the_header() {
    let env = Env::start().await;
    let r = Reply::from(
        env.http
            .get(env.url("/v1/shelves/1"))
            .header("grpc-metadata-x-echo-blob-bin", "not base64!")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let j = r.assert_error(400, 3);
    assert!(
        j.to_string().contains("grpc-metadata-x-echo-blob-bin"),
        "{j}"
    );
}

#[tokio::test]
async fn allowlisted_plain_header_is_forwarded() {
    let env = Env::with_routes("headers: {forward: [x-echo-forwarded, X-Echo-Mixed-Case]}\n").await;
    let r = get_shelf_with(
        &env,
        &[
            ("x-echo-forwarded", "v"),
            ("x-echo-mixed-case", "w"),
            ("x-echo-other", "no"),
        ],
    )
    .await;
    assert_eq!(
        all(&r, "grpc-metadata-x-echo-forwarded"),
        ["v"],
        "{:?}",
        r.headers
    );
    assert_eq!(
        all(&r, "grpc-metadata-x-echo-mixed-case"),
        ["w"],
        "{:?}",
        r.headers
    );
    assert!(
        r.header("grpc-metadata-x-echo-other").is_none(),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn plain_headers_are_not_forwarded_unless_allowlisted() {
    let env = Env::start().await;
    let r = get_shelf_with(&env, &[("x-echo-plain", "v"), ("x-tenant", "acme")]).await;
    assert!(
        r.header("grpc-metadata-x-echo-plain").is_none(),
        "{:?}",
        r.headers
    );
    // A plain request header never comes back under its own name either.
    assert!(r.header("x-echo-plain").is_none(), "{:?}", r.headers);
}

#[tokio::test]
async fn grpc_metadata_reaches_the_upstream_interceptor() {
    let env = Env::start().await;
    // `x-fail-code` only has an effect if it arrives as metadata.
    let r = Reply::from(
        env.http
            .get(env.url("/v1/shelves/1"))
            .header("Grpc-Metadata-X-Fail-Code", "5")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(404, 5);
    // Sent as a plain header, it is not forwarded and the call succeeds.
    get_shelf_with(&env, &[("x-fail-code", "5")]).await;
}

#[tokio::test]
async fn client_grpc_prefixed_metadata_is_not_forwarded() {
    let env = Env::start().await;
    // If either reached the backend, it would try to gunzip the request (or
    // reject the encoding) and the call would fail.
    get_shelf_with(&env, &[("grpc-metadata-grpc-encoding", "gzip")]).await;
    get_shelf_with(&env, &[("grpc-encoding", "gzip")]).await;
    let r = get_shelf_with(&env, &[("grpc-metadata-grpc-foo", "bar")]).await;
    assert!(
        r.header("grpc-metadata-grpc-foo").is_none(),
        "{:?}",
        r.headers
    );
}

#[tokio::test]
async fn response_metadata_on_every_kind_of_route() {
    let env = Env::start().await;
    let echo = ("grpc-metadata-x-echo-call", "c1");
    // A POST with a named body, a response_body route and an HttpBody route.
    let r = Reply::from(
        env.http
            .post(env.url("/v1/shelves/3/books"))
            .header("content-type", "application/json")
            .header(echo.0, echo.1)
            .body(r#"{"title":"Howl"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(all(&r, "grpc-metadata-x-echo-call"), ["c1"]);
    for path in ["/v1/shelves/1/stats", "/v1/shelves/1/books/1/cover"] {
        let r = Reply::from(
            env.http
                .get(env.url(path))
                .header(echo.0, echo.1)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(all(&r, "grpc-metadata-x-echo-call"), ["c1"], "{path}");
        assert_eq!(
            all(&r, "grpc-metadata-x-served-by"),
            ["library-server"],
            "{path}"
        );
    }
}
