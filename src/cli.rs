//! Command-line interface. Every flag can also be set with an environment
//! variable `PROTOGATE_<FLAG>`; flags win over the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::descriptors::DescriptorSource;
use crate::gateway::Settings;

/// protogate: a REST/JSON → gRPC gateway driven by descriptors at runtime.
#[derive(Debug, Parser)]
#[command(name = "protogate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log output format.
    #[arg(
        long,
        global = true,
        env = "PROTOGATE_LOG_FORMAT",
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    /// Threads that serve requests (default: the cores available to the
    /// process), each accepting on its own socket of `--listen` and calling
    /// upstreams on its own connections. Give fewer when the gateway shares
    /// its cores with other busy processes (a sidecar beside its service).
    #[arg(long, global = true, env = "PROTOGATE_WORKER_THREADS")]
    pub worker_threads: Option<std::num::NonZeroUsize>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of `serve`'s flags costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Print the route table.
    Routes(CommonArgs),
    /// Validate descriptors and routes.yaml; exit 1 listing every problem.
    Check(CommonArgs),
    /// Print the OpenAPI 3.1 document of the routes (as served at /openapi.json).
    Openapi(OpenapiArgs),
}

/// `openapi` flags.
#[derive(Debug, Clone, Args)]
pub struct OpenapiArgs {
    /// Descriptors and routes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output format.
    #[arg(
        long,
        env = "PROTOGATE_OPENAPI_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub format: DocFormat,
}

/// The `openapi` command's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocFormat {
    /// JSON, indented.
    Json,
    /// YAML.
    Yaml,
}

/// Flags shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// A FileDescriptorSet (.binpb/.pb/.desc), a .proto file, a directory of
    /// them, or `reflect://host:port` (a gRPC server's reflection service); repeatable.
    #[arg(
        long = "descriptors",
        env = "PROTOGATE_DESCRIPTORS",
        default_value = "descriptors",
        value_delimiter = ',',
        value_parser = parse_source
    )]
    pub descriptors: Vec<DescriptorSource>,
    /// Refuse to start when a rule cannot be served (else it is skipped
    /// with a warning); also `routing.strict` in routes.yaml.
    #[arg(long, env = "PROTOGATE_STRICT")]
    pub strict: bool,
    /// routes.yaml or a google.api.Service file (default: ./routes.yaml
    /// when it exists); repeatable (one service config per API), merged.
    #[arg(long, env = "PROTOGATE_ROUTES", value_delimiter = ',')]
    pub routes: Vec<PathBuf>,
    /// An include root for `.proto` imports and names, like protoc's `-I`;
    /// repeatable, searched in order (before routes.yaml's
    /// `descriptors.proto_path`).
    #[arg(
        short = 'I',
        long = "proto-path",
        env = "PROTOGATE_PROTO_PATH",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub proto_path: Vec<PathBuf>,
    /// Serve only the services matching these globs, e.g.
    /// `google.pubsub.v1.*`; repeatable (replaces routes.yaml's
    /// `descriptors.services`).
    #[arg(
        long = "services",
        env = "PROTOGATE_SERVICES",
        value_delimiter = ',',
        value_name = "GLOB"
    )]
    pub services: Vec<String>,
}

/// `serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Descriptors and routes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The default upstream gRPC server, e.g. http://127.0.0.1:50051.
    #[arg(long, env = "PROTOGATE_UPSTREAM")]
    pub upstream: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "PROTOGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the admin endpoints (mock stubs and unmatched requests).
    #[arg(long, env = "PROTOGATE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Answer from the descriptors alone, with no backend (all services, or
    /// `mock.services` in routes.yaml).
    #[arg(long, env = "PROTOGATE_MOCK")]
    pub mock: bool,
    /// Seed of the mock's generated data.
    #[arg(long, env = "PROTOGATE_MOCK_SEED")]
    pub mock_seed: Option<u64>,
    /// Directory of mock stub files (YAML or JSON), hot-reloaded.
    #[arg(long, env = "PROTOGATE_MOCK_STUBS")]
    pub mock_stubs: Option<PathBuf>,
    /// Proxy to the upstream and record every exchange as a stub file here.
    #[arg(long, env = "PROTOGATE_MOCK_RECORD")]
    pub mock_record: Option<PathBuf>,
    /// Reload when routes.yaml or descriptor files change (default: true,
    /// or `reload.watch` in routes.yaml); `--watch false` turns it off.
    #[arg(long, env = "PROTOGATE_WATCH", action = ArgAction::Set, value_name = "BOOL")]
    pub watch: Option<bool>,
    /// Record Prometheus metrics (served on `/metrics`); `--metrics false`
    /// turns the recording off (`/metrics` then answers 404).
    #[arg(long, env = "PROTOGATE_METRICS", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics: bool,
    /// Write one access-log event per request (INFO, target
    /// `protogate::access`).
    #[arg(long, env = "PROTOGATE_ACCESS_LOG", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,
    /// Trace every request and export the spans over OTLP/gRPC to this
    /// collector, e.g. http://127.0.0.1:4317. Unset: nothing is traced or
    /// exported (the client's `traceparent` still reaches the upstream).
    /// Read from OpenTelemetry's own variable, not a PROTOGATE_ one.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported spans (OpenTelemetry's variable).
    #[arg(
        long,
        env = "OTEL_SERVICE_NAME",
        value_name = "NAME",
        default_value = "protogate"
    )]
    pub otlp_service_name: String,
    /// On SIGTERM or Ctrl-C, keep serving this long with readiness off
    /// (`/readyz` 503, grpc.health.v1 NOT_SERVING) before the listener
    /// stops, so load balancers stop sending first (`0s`: stop at once).
    #[arg(long, env = "PROTOGATE_DRAIN_DELAY", default_value = "5s", value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub drain_delay: std::time::Duration,
    /// After the drain delay, how long calls still open (streams, slow
    /// unary calls) get to finish before each is ended with UNAVAILABLE
    /// "the gateway is shutting down" (`0s`: at once). The delay plus this
    /// should stay under the orchestrator's kill timeout (Kubernetes'
    /// terminationGracePeriodSeconds, 30s by default).
    #[arg(long, env = "PROTOGATE_DRAIN_GRACE", default_value = "20s", value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub drain_grace: std::time::Duration,
    /// TLS on the listener.
    #[command(flatten)]
    pub tls: TlsArgs,
}

fn parse_source(text: &str) -> Result<DescriptorSource, String> {
    Ok(DescriptorSource::parse(text))
}

impl CommonArgs {
    /// The gateway settings these flags describe.
    pub fn settings(&self) -> Settings {
        let mut routes = self.routes.clone();
        let default = PathBuf::from("routes.yaml");
        if routes.is_empty() && default.exists() {
            routes.push(default);
        }
        Settings {
            descriptors: self.descriptors.clone(),
            routes,
            strict: self.strict,
            proto_path: self.proto_path.clone(),
            services: self.services.clone(),
            ..Settings::default()
        }
    }
}

impl ServeArgs {
    /// The gateway settings these flags describe.
    pub fn settings(&self) -> Settings {
        Settings {
            upstream: self.upstream.clone(),
            mock: self.mock,
            mock_seed: self.mock_seed,
            mock_stubs: self.mock_stubs.clone(),
            mock_record: self.mock_record.clone(),
            watch: self.watch,
            ..self.common.settings()
        }
    }
}

/// `serve`'s TLS flags (see README, "TLS").
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (HTTP/2 and HTTP/1.1 by
    /// ALPN); reloaded when the file changes.
    #[arg(
        long,
        env = "PROTOGATE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(
        long,
        env = "PROTOGATE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Verify client certificates against this PEM CA bundle (mTLS).
    #[arg(
        long,
        env = "PROTOGATE_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// With `--tls-client-ca`: whether clients must present a certificate.
    #[arg(long, env = "PROTOGATE_TLS_CLIENT_AUTH", value_enum, default_value_t)]
    pub tls_client_auth: crate::server::tls::ClientAuth,
    /// Forward the client certificate's subject upstream as this metadata
    /// (client-sent values of that name are always dropped).
    #[arg(long, env = "PROTOGATE_TLS_FORWARD_SUBJECT", value_name = "HEADER")]
    pub tls_forward_subject: Option<String>,
    /// Forward the client certificate's SANs (`DNS:a,URI:b`) upstream as this
    /// metadata (client-sent values of that name are always dropped).
    #[arg(long, env = "PROTOGATE_TLS_FORWARD_SANS", value_name = "HEADER")]
    pub tls_forward_sans: Option<String>,
}

impl TlsArgs {
    /// The listener's TLS settings; `None`: plaintext.
    pub fn settings(&self) -> Option<crate::server::tls::TlsSettings> {
        Some(crate::server::tls::TlsSettings {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
            client_auth: self.tls_client_auth,
        })
    }
}
