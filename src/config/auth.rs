//! The `auth:` section of routes.yaml: JWT providers, where tokens are
//! read from, and who may call what.
//!
//! ```yaml
//! auth:
//!   default: authenticated          # or anonymous
//!   token: { cookie: session, query: access_token }   # both off unless set
//!   providers:
//!     corp:
//!       issuer: https://id.example.com
//!       audiences: [library]
//!       algorithms: [RS256, ES256]
//!       jwks_url: https://id.example.com/.well-known/jwks.json
//!       claims_to_metadata: { sub: x-user-id }
//!   rules:
//!     - selector: library.v1.LibraryService.List*
//!       anonymous: true
//!     - route: DELETE /v1/{name=shelves/*}
//!       scopes: [library.admin]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigDuration;

/// JWT authentication and per-method requirements. Absent: every call is
/// anonymous and nothing is checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The policy of methods no rule names.
    #[serde(default)]
    pub default: DefaultPolicy,
    /// Where tokens are read from besides `Authorization: Bearer`.
    #[serde(default)]
    pub token: TokenSources,
    /// The token issuers, by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Requirements per method or route; the first rule that matches wins.
    #[serde(default)]
    pub rules: Vec<AuthRule>,
    /// How many verified tokens are remembered (a token's signature is then
    /// checked once, not per request); 0 turns the cache off.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

fn default_cache_size() -> usize {
    10_000
}

/// What a method no rule names requires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// A valid token from any provider.
    #[default]
    Authenticated,
    /// Nothing; a token that is sent must still be valid.
    Anonymous,
}

/// Token locations besides the `Authorization` header, for browsers'
/// EventSource and WebSocket, which cannot set headers. Off unless named.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSources {
    /// A cookie holding the bare token.
    pub cookie: Option<String>,
    /// A query parameter holding the bare token (REST, WebSocket and
    /// Connect GET); it never binds a request field.
    pub query: Option<String>,
}

/// One issuer of tokens and the keys its signatures verify with. Exactly
/// one key source is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The `iss` its tokens carry; also how a token finds its provider.
    pub issuer: String,
    /// Accepted `aud` values (any one suffices); empty: `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted `alg` values. Default: RS256.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// A JWKS document on disk.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS document fetched over HTTP(S), cached, refreshed on a timer
    /// and when a token names an unknown `kid`.
    pub jwks_url: Option<String>,
    /// A PEM public key (RSA, EC or Ed25519) on disk.
    pub pem_file: Option<PathBuf>,
    /// The environment variable holding the HMAC secret (HS* algorithms).
    pub hmac_secret_env: Option<String>,
    /// How often `jwks_url` is fetched again.
    #[serde(default = "default_refresh")]
    pub refresh_interval: ConfigDuration,
    /// The least time between two fetches of `jwks_url` caused by unknown
    /// `kid`s, so forged tokens cannot make the gateway hammer the issuer.
    #[serde(default = "default_min_refresh")]
    pub min_refresh_interval: ConfigDuration,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway: ConfigDuration,
    /// Verified claims sent upstream as metadata: claim name → metadata key.
    /// Client-sent values of those keys are always removed first.
    #[serde(default)]
    pub claims_to_metadata: BTreeMap<String, String>,
    /// Whether the `Authorization` header still reaches the upstream.
    #[serde(default = "yes")]
    pub forward_authorization: bool,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

fn default_refresh() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(600))
}

fn default_min_refresh() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}

fn default_leeway() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(60))
}

fn yes() -> bool {
    true
}

/// The requirement of the methods or route one rule names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRule {
    /// A glob on `package.Service.Method` (`*` matches any run of characters).
    pub selector: Option<String>,
    /// A route as `protogate routes` prints it: `GET /v1/{name=shelves/*}`.
    pub route: Option<String>,
    /// No token needed (one that is sent must still be valid).
    #[serde(default)]
    pub anonymous: bool,
    /// Scopes the token must all carry (`scope` or `scp`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Claims the token must carry: name (dots reach into objects) → the
    /// accepted values; a list claim needs one of them among its elements.
    #[serde(default)]
    pub claims: BTreeMap<String, ClaimValues>,
    /// Only tokens from these providers; empty: any provider.
    #[serde(default)]
    pub providers: Vec<String>,
    /// The client certificate (TLS listener with `--tls-client-ca`) the
    /// connection must have verified; with `anonymous: true`, the
    /// certificate alone admits the call.
    #[serde(default)]
    pub peer: Option<PeerRule>,
}

/// The verified client certificate a rule accepts: globs (`*` matches any
/// run of characters) on the RFC 4514 subject (`CN=app,O=Acme`) and on the
/// SANs as `DNS:…`, `URI:…`, `IP:…`, `email:…`. Each given field must match
/// (the subject one of its globs; some SAN one of its globs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRule {
    /// Accepted subjects.
    pub subject: Option<ClaimValues>,
    /// Accepted SANs.
    pub san: Option<ClaimValues>,
}

/// One accepted value or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ClaimValues {
    /// One value.
    One(String),
    /// Any of these.
    Any(Vec<String>),
}

impl ClaimValues {
    /// The accepted values.
    pub fn values(&self) -> Vec<String> {
        match self {
            ClaimValues::One(v) => vec![v.clone()],
            ClaimValues::Any(v) => v.clone(),
        }
    }
}
