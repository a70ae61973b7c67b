//! A provider's verification keys: read once (a JWKS or PEM file, an HMAC
//! secret) or fetched from a JWKS URL and kept fresh (see [`super::jwks`]).

use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::jwks::RemoteJwks;
use crate::config::ProviderConfig;

/// One verification key.
pub struct Key {
    /// The JWK's `kid`, if it has one.
    pub kid: Option<String>,
    /// The JWK's `alg`, if it names one: the key verifies only that.
    pub alg: Option<Algorithm>,
    /// The key itself.
    pub key: DecodingKey,
}

impl Key {
    /// Whether this key may verify a token signed with `alg` (same family,
    /// and the JWK's own `alg` when it names one): an RSA public key is
    /// never used as an HMAC secret.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.family() && self.alg.is_none_or(|a| a == alg)
    }
}

/// The keys a provider holds at one moment.
#[derive(Default)]
pub struct KeySet {
    /// Every usable key; JWKs of unsupported types are left out.
    pub keys: Vec<Key>,
}

impl KeySet {
    /// The keys of a JWKS document. Keys this gateway cannot use (unknown
    /// `kty`, encryption keys) are skipped; a document that is not a JWKS
    /// is an error.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, String> {
        let set: JwkSet =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys = set
            .keys
            .iter()
            .filter(|jwk| jwk.is_supported())
            .filter(|jwk| {
                !matches!(
                    jwk.common.public_key_use,
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                )
            })
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(Key {
                    kid: jwk.common.key_id.clone(),
                    alg: jwk.common.key_algorithm.and_then(signing_algorithm),
                    key,
                })
            })
            .collect();
        Ok(KeySet { keys })
    }

    /// One PEM public key (RSA, EC or Ed25519), tried in that order.
    pub fn from_pem(pem: &[u8]) -> Result<KeySet, String> {
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|_| "not a PEM RSA, EC or Ed25519 public key".to_string())?;
        Ok(KeySet {
            keys: vec![Key {
                kid: None,
                alg: None,
                key,
            }],
        })
    }

    /// An HMAC secret.
    pub fn from_secret(secret: &[u8]) -> Result<KeySet, String> {
        let key = DecodingKey::from_secret(secret).map_err(|e| e.to_string())?;
        Ok(KeySet {
            keys: vec![Key {
                kid: None,
                alg: None,
                key,
            }],
        })
    }

    /// The keys that may verify a token with this `kid` and `alg`: those
    /// with that `kid` when the token names one, else every key that fits.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .filter(move |k| k.fits(alg))
    }

    /// Whether some key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// A JWK `alg` that signs (JWKs may also name encryption algorithms).
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Algorithm::from_str(&format!("{alg:?}")).ok()
}

/// Where a provider's keys come from.
pub enum KeySource {
    /// Read at load time; a reload reads them again.
    Fixed(Arc<KeySet>),
    /// A JWKS URL, fetched and refreshed in the background.
    Remote(Arc<RemoteJwks>),
}

impl KeySource {
    /// The keys as of now.
    pub fn current(&self) -> Arc<KeySet> {
        match self {
            KeySource::Fixed(k) => k.clone(),
            KeySource::Remote(r) => r.current(),
        }
    }

    /// Reads the one key source `config` names.
    pub fn load(name: &str, config: &ProviderConfig) -> Result<KeySource, String> {
        let sources = [
            config.jwks_file.is_some(),
            config.jwks_url.is_some(),
            config.pem_file.is_some(),
            config.hmac_secret_env.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(
                "set exactly one of jwks_file, jwks_url, pem_file, hmac_secret_env".to_string(),
            );
        }
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let fixed = |set: Result<KeySet, String>| set.map(|s| KeySource::Fixed(Arc::new(s)));
        if let Some(path) = &config.jwks_file {
            return fixed(KeySet::from_jwks(&read(path)?).and_then(non_empty));
        }
        if let Some(path) = &config.pem_file {
            return fixed(KeySet::from_pem(&read(path)?));
        }
        if let Some(var) = &config.hmac_secret_env {
            let secret = std::env::var(var)
                .map_err(|_| format!("environment variable {var} (hmac_secret_env) is not set"))?;
            if secret.len() < 32 {
                return Err(format!(
                    "the HMAC secret in {var} is {} bytes; use at least 32",
                    secret.len()
                ));
            }
            return fixed(KeySet::from_secret(secret.as_bytes()));
        }
        let url = config.jwks_url.as_deref().unwrap_or_default();
        RemoteJwks::start(name, url, config).map(KeySource::Remote)
    }
}

fn non_empty(set: KeySet) -> Result<KeySet, String> {
    if set.keys.is_empty() {
        Err("the JWKS holds no usable signing key".into())
    } else {
        Ok(set)
    }
}

/// A key set that can be swapped whole while readers hold the old one.
pub type SharedKeys = ArcSwap<KeySet>;
