//! The `routes.yaml` schema: a google.api.Service `http:` section plus a few
//! sections of our own. Every struct rejects unknown keys, so a typo is an
//! error that names the key instead of a setting that silently does nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_norway::{Mapping, Value};

mod auth;
mod balance;
mod compression;
pub mod errors;
mod health;
mod http2;
mod merge;
mod rate_limit_service;
mod rate_limits;
mod retry;
mod service_auth;
mod service_backend;
mod service_config;
mod shedding;
mod units;
mod upstream_tls;

pub use auth::{
    AuthConfig, AuthRule, ClaimValues, DefaultPolicy, PeerRule, ProviderConfig, TokenSources,
};
pub use balance::{BalancePolicy, EjectionConfig, EndpointsConfig, HealthCheckConfig, PoolConfig};
pub use compression::{CompressionOptions, RestEncoding};
pub use health::{HealthOptions, Unimplemented};
pub use http2::{ListenerHttp2, UpstreamHttp2};
pub use rate_limit_service::{
    DEFAULT_RLS_TIMEOUT, DescriptorConfig, EntryConfig, EntryValue, FailureMode,
    RateLimitServiceConfig,
};
pub use rate_limits::{Rate, RateKey, RateLimitConfig};
pub use retry::{RetryBudget, RetryCode, RetryConfig};
pub use shedding::SheddingConfig;
pub use units::{ByteSize, ConfigDuration, parse_duration};
pub use upstream_tls::UpstreamTls;

/// The whole routes.yaml file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// google.api.Service `http` section: rules that map methods to routes.
    #[serde(default)]
    pub http: HttpConfig,
    /// Named upstreams, each serving some services (none listed = the default).
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Per-method deadlines by selector: `pkg.Service.Method`, `pkg.Service.*` or `*`.
    #[serde(default)]
    pub timeouts: BTreeMap<String, ConfigDuration>,
    /// JSON mapping options.
    #[serde(default)]
    pub json: JsonOptions,
    /// Route generation options.
    #[serde(default)]
    pub routing: RoutingOptions,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// Header ↔ metadata forwarding.
    #[serde(default)]
    pub headers: HeaderOptions,
    /// The mock backend.
    #[serde(default)]
    pub mock: MockConfig,
    /// Live reload.
    #[serde(default)]
    pub reload: ReloadOptions,
    /// Streaming over REST.
    #[serde(default)]
    pub streaming: StreamingOptions,
    /// Cross-origin requests from browsers.
    #[serde(default)]
    pub cors: CorsConfig,
    /// Response compression.
    #[serde(default)]
    pub compression: CompressionOptions,
    /// JWT authentication and per-method requirements.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Local rate limits: token buckets per method or route, per key.
    #[serde(default)]
    pub rate_limits: Vec<RateLimitConfig>,
    /// Global rate limits: a rate limit service (Envoy's protocol) decides.
    #[serde(default)]
    pub rate_limit_service: Option<RateLimitServiceConfig>,
    /// Upstream health checks (readiness).
    #[serde(default)]
    pub health: HealthOptions,
    /// The body of REST error responses: `status`, `grpc-gateway-v1` or a template.
    #[serde(default)]
    pub errors: errors::ErrorsConfig,
    /// Include paths for `.proto` sources and the services to serve.
    #[serde(default)]
    pub descriptors: DescriptorOptions,
    /// Load shedding: calls in flight and streams open at once.
    #[serde(default)]
    pub shedding: SheddingConfig,
    /// Checks the gateway makes of JSON requests beyond the proto3 mapping.
    #[serde(default)]
    pub validation: ValidationOptions,
    /// What the operator should hear about the file that is not an error
    /// (google.api.Service sections protogate ignores).
    #[serde(skip)]
    pub notices: Vec<String>,
}

/// The `validation:` section (off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationOptions {
    /// Refuse JSON requests that leave a `google.api.field_behavior =
    /// REQUIRED` field unset (400 naming every one), before any backend.
    pub required_fields: bool,
}

/// The `descriptors:` section: how `.proto` sources are found and which
/// services are served.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DescriptorOptions {
    /// Include roots for imports and import names, like protoc's `-I`
    /// (after any given with `--proto-path`). Relative to the working
    /// directory, as the command line's paths are.
    pub proto_path: Vec<PathBuf>,
    /// Serve only the services matching these globs (`google.pubsub.v1.*`);
    /// empty: every service except those of the built-in Google files.
    pub services: Vec<String>,
}

/// CORS: which browser origins may call the gateway. Off while
/// `allow_origins` is empty.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// `*`, or origins (`https://app.example.com`), `*` standing for any
    /// run of host characters (`https://*.example.com`, `http://localhost:*`).
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for (default: the one it asks for).
    pub allow_methods: Vec<String>,
    /// Request headers allowed besides the built-in list (content-type,
    /// authorization, gRPC-Web, Connect and tracing headers).
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read besides grpc-status, grpc-message
    /// and grpc-status-details-bin.
    pub expose_headers: Vec<String>,
    /// Allow cookies and HTTP auth (not with `allow_origins: ['*']`).
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer.
    pub max_age: Option<ConfigDuration>,
}

/// Streaming methods over REST (and the deadline of streaming calls in
/// every protocol).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamingOptions {
    /// Write NDJSON server streams as grpc-gateway does: `{"result": …}`
    /// lines and an `{"error": …}` line.
    pub ndjson_envelope: bool,
    /// An SSE stream with no message for this long gets a `: keep-alive`
    /// comment (0s: never).
    pub sse_keepalive: ConfigDuration,
    /// A stream with no message for this long ends with DEADLINE_EXCEEDED
    /// (0s: never).
    pub idle_timeout: ConfigDuration,
    /// The deadline of a streaming call when the client sends none and no
    /// `timeouts:` selector names the method.
    pub max_duration: ConfigDuration,
}

impl Default for StreamingOptions {
    fn default() -> Self {
        StreamingOptions {
            ndjson_envelope: false,
            sse_keepalive: ConfigDuration(Duration::from_secs(15)),
            idle_timeout: ConfigDuration(Duration::from_secs(300)),
            max_duration: ConfigDuration(Duration::from_secs(3600)),
        }
    }
}

/// Live reload: when the gateway rebuilds its configuration by itself
/// (SIGHUP and `POST /_protogate/reload` always work).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadOptions {
    /// Reload when routes.yaml or a descriptor file changes (`--watch`).
    pub watch: bool,
    /// Ask reflection servers for their descriptors again this often, and
    /// reload when they changed (`0s`: only at startup and on reload).
    pub reflection_interval: ConfigDuration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            watch: true,
            reflection_interval: ConfigDuration(Duration::ZERO),
        }
    }
}

/// The mock backend: answers from the descriptors alone, for all services or
/// chosen ones (the rest still go to their upstreams).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockConfig {
    /// Mock (`--mock`).
    pub enabled: bool,
    /// Only these services are mocked; empty = every service.
    pub services: Vec<String>,
    /// Seed of generated data (`--mock-seed`): same seed, same answers.
    pub seed: u64,
    /// Directory of stub files, hot-reloaded (`--mock-stubs`).
    pub stubs: Option<PathBuf>,
    /// Services whose AIP standard methods (Create/Get/List/Update/Delete)
    /// keep state in memory.
    pub stateful: Vec<String>,
    /// Record mode (`--mock-record`): proxy to the upstreams and write every
    /// exchange as a stub file in this directory.
    pub record: Option<PathBuf>,
    /// Calls the request journal keeps (default 1000; 0 turns it off).
    pub journal_max: Option<usize>,
    /// Faults for some calls, decided from `seed` (see the README).
    pub faults: Vec<crate::upstream::mock::faults::Fault>,
}

/// google.api.Http.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The rules; a rule for a selector replaces that method's annotation.
    #[serde(default)]
    pub rules: Vec<HttpRule>,
    /// Accepted for compatibility with google.api.Http; multi-segment
    /// variables are then fully decoded.
    #[serde(default, alias = "fullyDecodeReservedExpansion")]
    pub fully_decode_reserved_expansion: bool,
}

/// google.api.HttpRule, in YAML (snake_case) or proto3 JSON (lowerCamel) form.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRule {
    /// The fully qualified method, e.g. `library.v1.LibraryService.GetBook`.
    #[serde(default)]
    pub selector: String,
    /// `GET` template.
    pub get: Option<String>,
    /// `PUT` template.
    pub put: Option<String>,
    /// `POST` template.
    pub post: Option<String>,
    /// `DELETE` template.
    pub delete: Option<String>,
    /// `PATCH` template.
    pub patch: Option<String>,
    /// Any other HTTP method, or `*` for all.
    pub custom: Option<CustomPattern>,
    /// `""` (no body), `"*"` (all fields not bound by the path) or a top-level field.
    #[serde(default)]
    pub body: String,
    /// A top-level response field to use as the HTTP body.
    #[serde(default, alias = "responseBody")]
    pub response_body: String,
    /// More routes for the same method (one level deep).
    #[serde(default, alias = "additionalBindings")]
    pub additional_bindings: Vec<HttpRule>,
}

/// google.api.CustomHttpPattern.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    /// The HTTP method, e.g. `HEAD`, or `*`.
    pub kind: String,
    /// The path template.
    pub path: String,
}

impl HttpRule {
    /// The (method, template) pairs this rule declares, ignoring additional bindings.
    pub fn patterns(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (m, t) in [
            ("GET", &self.get),
            ("PUT", &self.put),
            ("POST", &self.post),
            ("DELETE", &self.delete),
            ("PATCH", &self.patch),
        ] {
            if let Some(t) = t {
                out.push((m.to_string(), t.as_str()));
            }
        }
        if let Some(c) = &self.custom {
            out.push((c.kind.clone(), c.path.as_str()));
        }
        out
    }
}

/// One upstream gRPC server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `http://host:port` (h2c) or `https://host:port` (TLS).
    pub url: String,
    /// Fully qualified services it serves; empty = every service not served elsewhere.
    #[serde(default)]
    pub services: Vec<String>,
    /// Default deadline of calls to this upstream.
    pub timeout: Option<ConfigDuration>,
    /// Load descriptors from this upstream by gRPC server reflection (at
    /// startup, on reload and every `reload.reflection_interval`); the
    /// services it lists are routed to it.
    #[serde(default)]
    pub reflection: bool,
    /// Retries of failed calls (absent: none); see [`RetryConfig`].
    pub retry: Option<RetryConfig>,
    /// HTTP/2 connections to it, each carrying calls in turn (1: every call
    /// multiplexed on one connection).
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// TLS settings of an `https://` upstream (trusted CAs, client
    /// certificate, server name); see [`UpstreamTls`].
    pub tls: Option<UpstreamTls>,
    /// The `:authority` sent with every call instead of the URL's
    /// `host:port` (a virtual host behind a proxy or mesh sidecar).
    pub authority: Option<String>,
    /// HTTP/2 settings of its connections (keepalive, windows, connect
    /// timeout); see [`UpstreamHttp2`].
    #[serde(default)]
    pub http2: UpstreamHttp2,
    /// `host:port` addresses to dial instead of resolving the URL's host.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// How often the URL's host is resolved again (`0s`: once).
    pub dns_refresh: Option<ConfigDuration>,
    /// How calls pick an endpoint.
    #[serde(default)]
    pub balance: BalancePolicy,
    /// Connections per endpoint.
    #[serde(default)]
    pub pool: PoolConfig,
    /// Ejection of endpoints that keep failing calls.
    #[serde(default)]
    pub ejection: EjectionConfig,
    /// Active health checks of every endpoint.
    pub health_check: Option<HealthCheckConfig>,
}

impl UpstreamConfig {
    /// Problems a load should refuse, each naming its field.
    fn problems(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        match validate_upstream_url(&self.url) {
            Err(e) => out.push(format!("upstreams.{name}.url: {e}")),
            Ok(uri) if uri.scheme_str() == Some("http") && self.tls.is_some() => out.push(format!(
                "upstreams.{name}.tls: set, but {} is plaintext (h2c); use https://",
                self.url
            )),
            Ok(_) => {}
        }
        if let Some(tls) = &self.tls {
            out.extend(tls.problems(&format!("upstreams.{name}.tls")));
        }
        if let Some(a) = &self.authority
            && a.parse::<http::uri::Authority>().is_err()
        {
            out.push(format!(
                "upstreams.{name}.authority: {a:?} is not a host[:port]"
            ));
        }
        out.extend(self.http2.problems(&format!("upstreams.{name}.http2")));
        out.extend(self.endpoints().problems(&format!("upstreams.{name}")));
        out
    }

    /// Its endpoint settings, gathered.
    pub fn endpoints(&self) -> EndpointsConfig {
        let defaults = EndpointsConfig::default();
        EndpointsConfig {
            endpoints: self.endpoints.clone(),
            dns_refresh: self.dns_refresh.unwrap_or(defaults.dns_refresh),
            balance: self.balance,
            pool: self.pool.clone(),
            ejection: self.ejection.clone(),
            health_check: self.health_check.clone(),
        }
    }
}

/// HTTP/2 connections per upstream unless `connections:` says otherwise.
pub const DEFAULT_CONNECTIONS: usize = 1;

fn default_connections() -> usize {
    DEFAULT_CONNECTIONS
}

/// How request and response JSON is mapped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonOptions {
    /// Emit fields that hold their default value (`0`, `""`, `[]`).
    pub emit_defaults: bool,
    /// Use proto field names (`page_count`) instead of lowerCamel (`pageCount`) in responses.
    pub proto_field_names: bool,
    /// Emit enums as numbers instead of names.
    pub enums_as_ints: bool,
    /// Indent responses (also per request with `?pretty`).
    pub pretty: bool,
    /// What to do with JSON body fields the message does not have.
    pub unknown_fields: UnknownPolicy,
    /// What to do with query parameters that name no field.
    pub unknown_query_params: UnknownPolicy,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            emit_defaults: false,
            proto_field_names: false,
            enums_as_ints: false,
            pretty: false,
            unknown_fields: UnknownPolicy::Reject,
            unknown_query_params: UnknownPolicy::Reject,
        }
    }
}

/// Reject (400) or ignore unknown input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPolicy {
    /// Answer 400 naming the unknown field.
    Reject,
    /// Drop it silently.
    Ignore,
}

/// Route generation options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingOptions {
    /// Map methods with no rule to `POST /pkg.Service/Method` with body `*`.
    pub auto_map: bool,
    /// Refuse to start (or reload) when a rule cannot be served, instead of
    /// serving the others and skipping it with a warning (`--strict`).
    pub strict: bool,
}

impl Default for RoutingOptions {
    fn default() -> Self {
        RoutingOptions {
            auto_map: true,
            strict: false,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted request body (bytes, or `4MiB`, `512KiB`, …).
    pub max_body_bytes: ByteSize,
    /// Largest accepted upstream response message.
    pub max_response_bytes: ByteSize,
    /// Deadline of calls with no `grpc-timeout` header and no configured timeout.
    pub default_timeout: ConfigDuration,
    /// Deepest nesting of client input: JSON values, query keys (`a.b.c`),
    /// field mask paths. Every decoder checks it before recursing.
    pub max_depth: usize,
    /// Largest estimated memory a decoded request may take (413 beyond).
    pub max_decoded_bytes: ByteSize,
    /// Largest metadata sent upstream (name + value + 32 per entry, as
    /// HTTP/2 counts it): 431 for REST, RESOURCE_EXHAUSTED for gRPC beyond.
    pub max_metadata_bytes: ByteSize,
    /// Largest request head (request line and headers) the listener reads:
    /// 431 beyond.
    pub max_header_bytes: ByteSize,
    /// Longest wait for a request's head (on HTTP/1.1 keep-alive
    /// connections, also the longest idle time between requests).
    pub header_read_timeout: ConfigDuration,
    /// Longest wait for the rest of a REST request body: a body shorter than
    /// its Content-Length answers 408 instead of holding the request open.
    pub body_read_timeout: ConfigDuration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: ConfigDuration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The listener's HTTP/2 settings (keepalive, streams, windows); see
    /// [`ListenerHttp2`].
    pub http2: ListenerHttp2,
}

impl Default for Limits {
    fn default() -> Self {
        let decode = crate::transcode::budget::DecodeLimits::default();
        Limits {
            max_body_bytes: ByteSize(4 * 1024 * 1024),
            max_response_bytes: ByteSize(16 * 1024 * 1024),
            default_timeout: ConfigDuration(Duration::from_secs(30)),
            max_depth: decode.max_depth,
            max_decoded_bytes: ByteSize(decode.max_decoded_bytes as u64),
            max_metadata_bytes: ByteSize(crate::pipeline::DEFAULT_MAX_METADATA_BYTES as u64),
            max_header_bytes: ByteSize(32 * 1024),
            header_read_timeout: ConfigDuration(Duration::from_secs(10)),
            body_read_timeout: ConfigDuration(Duration::from_secs(30)),
            idle_timeout: ConfigDuration(Duration::from_secs(120)),
            max_connections: 10_000,
            http2: ListenerHttp2::default(),
        }
    }
}

/// Header ↔ metadata forwarding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderOptions {
    /// Request headers forwarded as metadata besides the built-in allowlist
    /// (`authorization`, `x-request-id`, `traceparent`, `tracestate`) and `Grpc-Metadata-*`.
    pub forward: Vec<String>,
}

/// Why routes.yaml could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column.
        message: String,
    },
}

impl Config {
    /// Reads and validates a routes.yaml file (or a google.api.Service
    /// file, see [`Config::parse`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Reads several routes files (one service config per API) and merges
    /// them: rules and lists add up, a setting given differently in two
    /// files is an error naming both.
    pub fn load_all(paths: &[PathBuf]) -> Result<Config, ConfigError> {
        match paths {
            [] => Ok(Config::default()),
            [one] => Config::load(one),
            _ => {
                let mut docs = Vec::new();
                let mut notices = Vec::new();
                for p in paths {
                    // Each file alone first, so a typo names its file.
                    let one = Config::load(p)?;
                    notices.extend(one.notices.iter().map(|n| format!("{}: {n}", p.display())));
                    let (doc, _) = document(&read(p)?).map_err(|message| ConfigError::Invalid {
                        path: p.clone(),
                        message,
                    })?;
                    docs.push((p.clone(), doc));
                }
                let all = PathBuf::from(
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" + "),
                );
                let invalid = |message: String| ConfigError::Invalid {
                    path: all.clone(),
                    message,
                };
                let merged = merge::merge_all(docs).map_err(|c| invalid(c.join("\n")))?;
                let mut config: Config = serde_norway::from_value(Value::Mapping(merged))
                    .map_err(|e| invalid(e.to_string()))?;
                config.validate().map_err(invalid)?;
                config.notices = notices;
                Ok(config)
            }
        }
    }

    /// Parses and validates routes.yaml text. A whole google.api.Service
    /// file is accepted too: its `apis`, `backend` and `authentication`
    /// sections become protogate's, the rest is ignored with a notice.
    ///
    /// ```
    /// let err = protogate::config::Config::parse("json: {emit_default: true}").unwrap_err();
    /// assert!(err.contains("unknown field `emit_default`"), "{err}");
    /// ```
    pub fn parse(text: &str) -> Result<Config, String> {
        let (doc, notices) = document(text)?;
        let mut config: Config = match &notices {
            // Plain routes.yaml: parsed from the text, so errors carry lines.
            None if doc.is_empty() => Config::default(),
            None => serde_norway::from_str(text).map_err(|e| e.to_string())?,
            Some(_) => serde_norway::from_value(Value::Mapping(doc)).map_err(|e| e.to_string())?,
        };
        config.validate()?;
        config.notices = notices.unwrap_or_default();
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let defaults: Vec<&String> = self
            .upstreams
            .iter()
            .filter(|(_, u)| u.services.is_empty())
            .map(|(n, _)| n)
            .collect();
        if defaults.len() > 1 {
            problems.push(format!(
                "upstreams: only one upstream may omit `services` (the default); found {}",
                defaults
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut seen = BTreeMap::new();
        for (name, u) in &self.upstreams {
            problems.extend(u.problems(name));
            for s in &u.services {
                if let Some(other) = seen.insert(s.clone(), name.clone()) {
                    problems.push(format!(
                        "upstreams: service {s} is assigned to both {other} and {name}"
                    ));
                }
            }
        }
        problems.extend(self.limits.http2.problems("limits.http2"));
        problems.extend(rate_limits::problems(&self.rate_limits));
        if let Some(rls) = &self.rate_limit_service {
            problems.extend(rls.problems());
        }
        problems.extend(self.shedding.problems());
        for (i, rule) in self.http.rules.iter().enumerate() {
            if rule.selector.is_empty() {
                problems.push(format!("http.rules[{i}]: selector is required"));
            }
        }
        for (name, u) in &self.upstreams {
            if let Some(r) = &u.retry {
                problems.extend(r.problems(&format!("upstreams.{name}.retry")));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The file as a YAML mapping, google.api.Service sections translated
/// (the notices are `Some` exactly when the file is a service config).
fn document(text: &str) -> Result<(Mapping, Option<Vec<String>>), String> {
    // An empty file (or only comments) is a valid, empty configuration.
    if text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    }) {
        return Ok((Mapping::new(), None));
    }
    let mut doc: Mapping = match serde_norway::from_str(text).map_err(|e| e.to_string())? {
        Value::Mapping(m) => m,
        Value::Null => Mapping::new(),
        _ => return Err("expected a mapping of sections at the top level".into()),
    };
    if !service_config::is_service_config(&doc) {
        return Ok((doc, None));
    }
    let notices = service_config::translate(&mut doc)?;
    Ok((doc, Some(notices)))
}

/// Checks an upstream URL: `http://` or `https://` with a host and port.
pub fn validate_upstream_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("invalid URL {url:?}: scheme must be http or https")),
    }
    if uri.host().is_none() {
        return Err(format!("invalid URL {url:?}: no host"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_config_rules() {
        let c = Config::parse(
            r#"
http:
  rules:
    - selector: a.B.C
      get: /v1/{name=things/*}
      additional_bindings:
        - post: /v1/things:search
          body: "*"
    - selector: a.B.D
      custom: {kind: HEAD, path: /v1/x}
      response_body: items
"#,
        )
        .unwrap();
        assert_eq!(c.http.rules.len(), 2);
        assert_eq!(c.http.rules[0].additional_bindings[0].body, "*");
        assert_eq!(
            c.http.rules[1].patterns(),
            vec![("HEAD".to_string(), "/v1/x")]
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        for (yaml, key) in [
            ("htp: {}", "htp"),
            ("http: {rulez: []}", "rulez"),
            ("http: {rules: [{selector: a.B.C, gett: /x}]}", "gett"),
            ("limits: {max_body: 1}", "max_body"),
            (
                "upstreams: {a: {url: 'http://x:1', service: []}}",
                "service",
            ),
        ] {
            let err = Config::parse(yaml).unwrap_err();
            assert!(
                err.contains(&format!("unknown field `{key}`")),
                "{yaml}: {err}"
            );
        }
    }

    #[test]
    fn durations_and_sizes() {
        let c = Config::parse(
            "limits: {max_body_bytes: 512KiB, default_timeout: 250ms}\ntimeouts: {'a.B.*': 2}",
        )
        .unwrap();
        assert_eq!(c.limits.max_body_bytes, ByteSize(512 * 1024));
        assert_eq!(c.limits.default_timeout.0, Duration::from_millis(250));
        assert_eq!(c.timeouts["a.B.*"].0, Duration::from_secs(2));
        assert!(Config::parse("limits: {max_body_bytes: 4XB}").is_err());
        assert!(Config::parse("limits: {default_timeout: forever}").is_err());
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn upstream_validation() {
        let err = Config::parse(
            "upstreams: {a: {url: 'ftp://x:1'}, b: {url: 'http://y:2'}, c: {url: 'http://z:3', services: [s.S]}, d: {url: 'http://w:4', services: [s.S]}}",
        )
        .unwrap_err();
        assert!(err.contains("upstreams.a.url"), "{err}");
        assert!(err.contains("only one upstream may omit"), "{err}");
        assert!(
            err.contains("service s.S is assigned to both c and d"),
            "{err}"
        );
    }

    #[test]
    fn empty_file_is_empty_config() {
        let c = Config::parse("# nothing here\n\n").unwrap();
        assert!(c.http.rules.is_empty());
        assert!(c.routing.auto_map);
    }
}
