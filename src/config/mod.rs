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
mod http_rules;
mod limits;
mod merge;
mod rate_limit_service;
mod rate_limits;
mod retry;
mod service_auth;
mod service_backend;
mod service_config;
mod shedding;
mod units;
mod upstream;
mod upstream_tls;

pub use auth::{
    AuthConfig, AuthRule, ClaimValues, DefaultPolicy, PeerRule, ProviderConfig, TokenSources,
};
pub use balance::{BalancePolicy, EjectionConfig, EndpointsConfig, HealthCheckConfig, PoolConfig};
pub use compression::{CompressionOptions, RestEncoding};
pub use health::{HealthOptions, Unimplemented};
pub use http_rules::{CustomPattern, HttpConfig, HttpRule};
pub use http2::{ListenerHttp2, UpstreamHttp2};
pub use limits::Limits;
pub use rate_limit_service::{
    DEFAULT_RLS_TIMEOUT, DescriptorConfig, EntryConfig, EntryValue, FailureMode,
    RateLimitServiceConfig,
};
pub use rate_limits::{Rate, RateKey, RateLimitConfig};
pub use retry::{RetryBudget, RetryCode, RetryConfig};
pub use shedding::SheddingConfig;
pub use units::{ByteSize, ConfigDuration, parse_duration};
pub use upstream::{DEFAULT_CONNECTIONS, UpstreamConfig, validate_upstream_url};
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
