//! Signing keys for the JWT tests and bench, generated when first used
//! (RSA, EC P-256, Ed25519, HMAC), and JWKS documents of them. Included
//! with `#[path]` by tests/auth.rs and benches/jwt.rs.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

pub const HMAC_ENV: &str = "PROTOGATE_AUTH_TEST_HMAC";
pub const HMAC_SECRET: &str = "a-test-secret-of-more-than-32-bytes!!";

/// Signing keys made once per test process.
pub struct Keys {
    pub rsa: EncodingKey,
    pub rsa_jwk: Jwk,
    /// A second RSA key, published later (rotation).
    pub rsa_next: EncodingKey,
    pub rsa_next_jwk: Jwk,
    /// The RSA public key as PEM (for the HS/RS confusion attack).
    pub rsa_public_pem: String,
    pub ec: EncodingKey,
    pub ec_jwk: Jwk,
    pub ed: EncodingKey,
    pub ed_public_pem: String,
    pub hmac: EncodingKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use p256::pkcs8::EncodePrivateKey;
        use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let rsa_key = |rng: &mut ChaCha20Rng, kid: &str| {
            let private = rsa::PrivateKey::new(rng, 2048).unwrap();
            let der = private.to_pkcs1_der().unwrap();
            let key = EncodingKey::from_rsa_der(der.as_bytes());
            let pem = private
                .to_public_key()
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .unwrap();
            (key.clone(), jwk(&key, Algorithm::RS256, kid), pem)
        };
        let (rsa, rsa_jwk, rsa_public_pem) = rsa_key(&mut rng, "rsa-1");
        let (rsa_next, rsa_next_jwk, _) = rsa_key(&mut rng, "rsa-2");
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let ec_secret = p256::SecretKey::from_slice(&seed).unwrap();
        let ec = EncodingKey::from_ec_der(ec_secret.to_pkcs8_der().unwrap().as_bytes());
        rng.fill_bytes(&mut seed);
        let ed_public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let ed = EncodingKey::from_ed_der(&[ED25519_PKCS8_PREFIX, &seed[..]].concat());
        let ed_public_pem = pem(
            "PUBLIC KEY",
            &[ED25519_SPKI_PREFIX, ed_public.as_bytes()].concat(),
        );
        // SAFETY: set once, before any gateway of this process reads it.
        unsafe { std::env::set_var(HMAC_ENV, HMAC_SECRET) };
        Keys {
            ec_jwk: jwk(&ec, Algorithm::ES256, "ec-1"),
            rsa,
            rsa_jwk,
            rsa_next,
            rsa_next_jwk,
            rsa_public_pem,
            ec,
            ed,
            ed_public_pem,
            hmac: EncodingKey::from_secret(HMAC_SECRET.as_bytes()).unwrap(),
        }
    })
}

/// DER framing of a bare Ed25519 key (RFC 8410): a PKCS#8 private key and
/// a SubjectPublicKeyInfo are these bytes, then the 32 key bytes.
const ED25519_PKCS8_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

pub fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

pub fn jwks(keys: &[&Jwk]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| (*k).clone()).collect(),
    })
    .unwrap()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
