//! The cost of verifying one JWT, per algorithm, through the gateway's own
//! path: [`token::peek`] (pick the provider and key) then
//! [`Provider::verify`] (signature, `exp`, `nbf`, `iss`, `aud`). Keys are
//! generated when the bench starts (tests/common/jwt.rs).
//!
//! ```text
//! cargo bench --bench jwt             # measure
//! cargo bench --bench jwt -- --test   # run each once (CI smoke)
//! ```

#[path = "../tests/common/jwt.rs"]
mod jwt;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use protogate::auth::provider::Provider;
use protogate::auth::token;
use serde_json::json;

/// A provider from its routes.yaml text.
fn provider(yaml: &str) -> Provider {
    let yaml = format!("auth:\n  providers:\n    p: {yaml}\n");
    let config = protogate::config::Config::parse(&yaml).expect("bench config parses");
    let auth = config.auth.expect("auth section");
    Provider::load("p", &auth.providers["p"]).expect("provider loads")
}

fn token(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, iss: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    let claims = json!({
        "iss": iss, "aud": "library", "sub": "user-1",
        "exp": jwt::now() + 3600, "iat": jwt::now(), "scope": "library.read",
    });
    jsonwebtoken::encode(&header, &claims, key).expect("token signs")
}

fn bench(c: &mut Criterion) {
    let k = jwt::keys();
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |file: &str, text: String| {
        let p = dir.path().join(file);
        std::fs::write(&p, text).expect("key file written");
        p.display().to_string()
    };
    let rsa = write("rsa.json", jwt::jwks(&[&k.rsa_jwk, &k.rsa_next_jwk]));
    let ec = write("ec.json", jwt::jwks(&[&k.ec_jwk]));
    let ed = write("ed.pem", k.ed_public_pem.clone());
    let cases = [
        (
            "RS256 (2048-bit, JWKS of 2)",
            format!("{{issuer: r, audiences: [library], algorithms: [RS256], jwks_file: {rsa}}}"),
            token(Algorithm::RS256, Some("rsa-1"), &k.rsa, "r"),
        ),
        (
            "ES256",
            format!("{{issuer: e, audiences: [library], algorithms: [ES256], jwks_file: {ec}}}"),
            token(Algorithm::ES256, Some("ec-1"), &k.ec, "e"),
        ),
        (
            "EdDSA (PEM)",
            format!("{{issuer: d, audiences: [library], algorithms: [EdDSA], pem_file: {ed}}}"),
            token(Algorithm::EdDSA, None, &k.ed, "d"),
        ),
        (
            "HS256",
            format!(
                "{{issuer: h, audiences: [library], algorithms: [HS256], hmac_secret_env: {}}}",
                jwt::HMAC_ENV
            ),
            token(Algorithm::HS256, None, &k.hmac, "h"),
        ),
    ];
    let mut group = c.benchmark_group("jwt verify");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for (name, yaml, tok) in cases {
        let provider = provider(&yaml);
        let peek = token::peek(&tok).expect("token peeks");
        provider.verify(&tok, &peek).expect("token verifies");
        group.bench_function(name, |b| {
            b.iter(|| {
                let peek = token::peek(black_box(&tok)).expect("peek");
                black_box(provider.verify(&tok, &peek).expect("verify"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
