//! One token issuer: its keys, the checks its tokens pass, and the claims
//! it sends upstream.

use std::str::FromStr;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

use std::sync::Arc;

use super::keys::{KeySet, KeySource};
use super::token::{Peek, refused};
use crate::config::ProviderConfig;
use crate::status::{AuthFailure, GatewayError};

/// The verified claims of a token.
pub type Claims = Map<String, Value>;

/// See the module docs.
pub struct Provider {
    /// The name in routes.yaml.
    pub name: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// The checks per accepted algorithm, built at load time.
    validations: Vec<(Algorithm, Validation)>,
    /// Its keys.
    pub keys: KeySource,
    /// Claim path (dots reach into objects) → metadata key.
    claims_to_metadata: Vec<(Vec<String>, AsciiMetadataKey)>,
    /// Whether `authorization` still reaches the upstream.
    pub forward_authorization: bool,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway: u64,
}

impl Provider {
    /// Builds provider `name`; the error says what is wrong with its
    /// configuration.
    pub fn load(name: &str, config: &ProviderConfig) -> Result<Provider, String> {
        if config.issuer.is_empty() {
            return Err("issuer is required".into());
        }
        let algorithms = config
            .algorithms
            .iter()
            .map(|a| {
                Algorithm::from_str(a).map_err(|_| {
                    format!("algorithms: {a:?} is not one of RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err("algorithms: name at least one".into());
        }
        let hmac = config.hmac_secret_env.is_some();
        if let Some(a) = algorithms.iter().find(|a| is_hmac(**a) != hmac) {
            return Err(if hmac {
                format!(
                    "algorithms: {a:?} needs a public key; hmac_secret_env only verifies HS256/384/512"
                )
            } else {
                format!("algorithms: {a:?} needs hmac_secret_env")
            });
        }
        let validations = algorithms
            .iter()
            .map(|a| (*a, validation(*a, config)))
            .collect();
        let claims_to_metadata = config
            .claims_to_metadata
            .iter()
            .map(|(claim, key)| {
                let parsed = AsciiMetadataKey::from_str(key)
                    .map_err(|_| format!("claims_to_metadata: {key:?} is not a metadata key"))?;
                Ok((claim.split('.').map(str::to_string).collect(), parsed))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Provider {
            name: name.to_string(),
            issuer: config.issuer.clone(),
            validations,
            keys: KeySource::load(name, config)?,
            claims_to_metadata,
            forward_authorization: config.forward_authorization,
            leeway: config.leeway.0.as_secs(),
        })
    }

    /// Whether tokens signed with `alg` are accepted.
    pub fn algorithm(&self, alg: &str) -> Result<Algorithm, GatewayError> {
        let denied = || {
            refused(
                AuthFailure::AlgorithmNotAllowed,
                &format!(
                    "algorithm {alg:?} is not accepted for issuer {:?}",
                    self.issuer
                ),
            )
        };
        let parsed = Algorithm::from_str(alg).map_err(|_| denied())?;
        self.validations
            .iter()
            .any(|(a, _)| *a == parsed)
            .then_some(parsed)
            .ok_or_else(denied)
    }

    /// Verifies `token` (whose unverified parts are `peek`): a key that fits
    /// its `kid` and `alg`, the signature, then `exp`, `nbf`, `iss`, `aud`.
    /// Returns the claims and the key set that verified them.
    pub fn verify(&self, token: &str, peek: &Peek) -> Result<(Claims, Arc<KeySet>), GatewayError> {
        let alg = self.algorithm(&peek.alg)?;
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
            .ok_or_else(|| GatewayError::Internal("validation missing".into()))?;
        let keys = self.keys.current();
        if keys.keys.is_empty() {
            return Err(refused(
                AuthFailure::NoKeys,
                &format!("no keys are available yet for issuer {:?}", self.issuer),
            ));
        }
        let mut tried = false;
        for key in keys.candidates(peek.kid.as_deref(), alg) {
            tried = true;
            match jsonwebtoken::decode::<Claims>(token, &key.key, validation) {
                Ok(data) => return Ok((data.claims, keys.clone())),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                Err(e) => return Err(rejection(e.kind())),
            }
        }
        Err(match (&peek.kid, tried) {
            (Some(kid), false) => refused(
                AuthFailure::UnknownKid,
                &format!("no key of issuer {:?} has kid {kid:?}", self.issuer),
            ),
            _ => refused(
                AuthFailure::BadSignature,
                "the token's signature does not verify",
            ),
        })
    }

    /// The metadata keys this provider sets from claims.
    pub fn metadata_keys(&self) -> impl Iterator<Item = &AsciiMetadataKey> {
        self.claims_to_metadata.iter().map(|(_, k)| k)
    }

    /// Adds the configured claims to `metadata` (client-sent values of
    /// those keys were already removed).
    pub fn claims_to_metadata(&self, claims: &Claims, metadata: &mut MetadataMap) {
        for (path, key) in &self.claims_to_metadata {
            let Some(value) = claim(claims, path) else {
                continue;
            };
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            match AsciiMetadataValue::try_from(text.as_str()) {
                Ok(v) => {
                    metadata.insert(key.clone(), v);
                }
                Err(_) => tracing::debug!(
                    key = key.as_str(),
                    "claim not forwarded: its value is not a valid header value"
                ),
            }
        }
    }
}

fn is_hmac(a: Algorithm) -> bool {
    matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn validation(alg: Algorithm, config: &ProviderConfig) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = config.leeway.0.as_secs();
    v.validate_nbf = true;
    v.set_issuer(&[&config.issuer]);
    if config.audiences.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(&config.audiences);
    }
    v
}

/// The claim at `path` (dots reach into objects).
pub fn claim<'a>(claims: &'a Claims, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(claims.get(first)?, |v, k| v.as_object()?.get(k))
}

fn rejection(kind: &ErrorKind) -> GatewayError {
    let (reason, detail) = match kind {
        ErrorKind::ExpiredSignature => (AuthFailure::Expired, "the token has expired"),
        ErrorKind::ImmatureSignature => {
            (AuthFailure::NotYetValid, "the token is not valid yet (nbf)")
        }
        ErrorKind::InvalidIssuer => (
            AuthFailure::WrongIssuer,
            "the token's issuer is not accepted",
        ),
        ErrorKind::InvalidAudience => (
            AuthFailure::WrongAudience,
            "the token's audience is not accepted",
        ),
        ErrorKind::InvalidAlgorithm => (
            AuthFailure::AlgorithmNotAllowed,
            "the token's algorithm does not fit the key",
        ),
        ErrorKind::InvalidSignature => (
            AuthFailure::BadSignature,
            "the token's signature does not verify",
        ),
        ErrorKind::MissingRequiredClaim(_) => (
            AuthFailure::Malformed,
            "the token lacks a required claim (exp)",
        ),
        _ => (AuthFailure::Malformed, "the token is not a well-formed JWT"),
    };
    refused(reason, detail)
}
