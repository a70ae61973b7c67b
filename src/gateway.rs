//! The loaded gateway: descriptors, routes, backends and options, resolved
//! once at startup into an immutable snapshot that request handlers share.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use prost_reflect::DescriptorPool;

use crate::call::Backend;
use crate::config::{Config, ConfigError};
use crate::descriptors::{self, DescriptorError};
use crate::routing::rules::{self, Route, RouteTable, RuleError, RulesOptions};
use crate::transcode::{RequestOptions, ResponseOptions};
use crate::upstream::GrpcUpstream;
use crate::upstream::mock::MockBackend;
use crate::upstream::mock::record::Recorder;
use crate::upstream::mock::stubs::{StubError, StubStore, WatchGuard};

/// Request headers forwarded as metadata without configuration.
pub const DEFAULT_FORWARDED_HEADERS: &[&str] =
    &["authorization", "x-request-id", "traceparent", "tracestate"];

/// What the gateway is built from (the CLI's flags, resolved).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Descriptor sets, `.proto` files or directories.
    pub descriptors: Vec<PathBuf>,
    /// routes.yaml, if any.
    pub routes: Option<PathBuf>,
    /// `--upstream`: overrides the default upstream's URL.
    pub upstream: Option<String>,
    /// `--mock`.
    pub mock: bool,
    /// `--mock-seed`.
    pub mock_seed: Option<u64>,
    /// `--mock-stubs`.
    pub mock_stubs: Option<PathBuf>,
    /// `--mock-record`.
    pub mock_record: Option<PathBuf>,
}

impl Settings {
    /// Flags override routes.yaml.
    pub fn apply(&self, config: &mut Config) {
        config.mock.enabled |= self.mock;
        if let Some(seed) = self.mock_seed {
            config.mock.seed = seed;
        }
        if let Some(dir) = &self.mock_stubs {
            config.mock.stubs = Some(dir.clone());
        }
        if let Some(dir) = &self.mock_record {
            config.mock.record = Some(dir.clone());
        }
    }
}

/// Why the gateway could not be built; `check` lists every problem.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Descriptors.
    #[error(transparent)]
    Descriptors(#[from] DescriptorError),
    /// routes.yaml.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Rules, upstreams or timeouts that do not fit the descriptors.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<RuleError>),
    /// Stub files.
    #[error(transparent)]
    Stubs(#[from] StubError),
}

/// The immutable, loaded gateway.
pub struct Gateway {
    /// Every descriptor, for transcoding and error details.
    pub pool: DescriptorPool,
    /// Routes and their matcher.
    pub table: RouteTable,
    /// Per route id: the backend, if one is configured.
    pub backends: Vec<Option<Arc<dyn Backend>>>,
    /// Per route id: the deadline when the client sends no `grpc-timeout`.
    pub timeouts: Vec<Duration>,
    /// Request decoding options.
    pub request_options: RequestOptions,
    /// Response rendering options.
    pub response_options: ResponseOptions,
    /// Largest accepted request body.
    pub max_body_bytes: u64,
    /// Headers forwarded as metadata (lowercase).
    pub forwarded_headers: HashSet<HeaderName>,
    /// Every method by gRPC path (`/pkg.Service/Method`), for the native gRPC adapter.
    pub methods: HashMap<String, MethodTarget>,
    /// The mock backend, when any service is mocked.
    pub mock: Option<MockBackend>,
    /// The configuration it was built from.
    pub config: Config,
    /// Hot reload of the stub directory, for as long as the gateway lives.
    _stub_watch: Option<WatchGuard>,
}

/// Where calls to one method go.
#[derive(Clone)]
pub struct MethodTarget {
    /// The method.
    pub method: prost_reflect::MethodDescriptor,
    /// Its backend, if one is configured.
    pub backend: Option<Arc<dyn Backend>>,
    /// Its deadline when the client sends none.
    pub timeout: Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &self.table.routes.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads descriptors and routes.yaml and builds everything.
    pub fn load(settings: &Settings) -> Result<Gateway, LoadError> {
        let mut config = match &settings.routes {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        settings.apply(&mut config);
        let loaded = descriptors::load(&settings.descriptors)?;
        Gateway::build(loaded.pool, config, settings.upstream.as_deref())
    }

    /// Builds from an already loaded pool and config.
    pub fn build(
        pool: DescriptorPool,
        config: Config,
        upstream_override: Option<&str>,
    ) -> Result<Gateway, LoadError> {
        let opts = RulesOptions {
            auto_map: config.routing.auto_map,
            fully_decode_reserved_expansion: config.http.fully_decode_reserved_expansion,
        };
        let mut errors = Vec::new();
        let table = match rules::build(&pool, &config.http.rules, &opts) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let mut upstreams = resolve_upstreams(&pool, &config, upstream_override, &mut errors);
        check_services(&pool, "mock.services", &config.mock.services, &mut errors);
        check_services(&pool, "mock.stateful", &config.mock.stateful, &mut errors);
        if let Some(dir) = &config.mock.record {
            upstreams.record(dir, &pool, &mut errors);
        }
        check_timeout_selectors(&pool, &config, &mut errors);
        let forwarded_headers = forwarded_headers(&config, &mut errors);
        let Some(table) = table.filter(|_| errors.is_empty()) else {
            return Err(LoadError::Rules(errors));
        };
        // Naming services to mock turns mocking on for just those.
        let mut stub_watch = None;
        let mock = if config.mock.enabled || !config.mock.services.is_empty() {
            let stubs = Arc::new(match &config.mock.stubs {
                Some(dir) => StubStore::load_with_routes(dir, &pool, &table.routes)?,
                None => StubStore::empty(&pool),
            });
            if stubs.dir().is_some() {
                stub_watch = Some(stubs.watch()?);
            }
            Some(MockBackend::new(
                pool.clone(),
                config.mock.seed,
                stubs,
                config.mock.stateful.iter().cloned().collect(),
            ))
        } else {
            None
        };
        let mocked = |service: &str| {
            config.mock.services.is_empty() || config.mock.services.iter().any(|s| s == service)
        };

        // Every method (REST routes and native gRPC alike) resolves its
        // backend and deadline once, here.
        let mut methods = HashMap::new();
        for service in pool.services() {
            let name = service.full_name().to_string();
            let upstream = upstreams
                .by_service
                .get(&name)
                .or(upstreams.default.as_ref());
            let backend: Option<Arc<dyn Backend>> = match &mock {
                Some(m) if mocked(&name) => Some(Arc::new(m.clone())),
                _ => upstream.map(|(b, _)| b.clone()),
            };
            let upstream_timeout = upstream.and_then(|(_, t)| *t);
            for method in service.methods() {
                let timeout = timeout_for(&config, &method)
                    .or(upstream_timeout)
                    .unwrap_or(config.limits.default_timeout.0);
                methods.insert(
                    format!("/{}/{}", name, method.name()),
                    MethodTarget {
                        method,
                        backend: backend.clone(),
                        timeout,
                    },
                );
            }
        }
        let mut backends = Vec::with_capacity(table.routes.len());
        let mut timeouts = Vec::with_capacity(table.routes.len());
        for route in &table.routes {
            let target = methods.get(&route.grpc_path);
            backends.push(target.and_then(|t| t.backend.clone()));
            timeouts.push(target.map_or(config.limits.default_timeout.0, |t| t.timeout));
        }
        Ok(Gateway {
            pool,
            backends,
            timeouts,
            request_options: RequestOptions {
                unknown_fields: config.json.unknown_fields,
                unknown_query_params: config.json.unknown_query_params,
            },
            response_options: ResponseOptions::from(&config.json),
            max_body_bytes: config.limits.max_body_bytes.0,
            forwarded_headers,
            table,
            methods,
            mock,
            _stub_watch: stub_watch,
            config,
        })
    }

    /// The routes, in table order.
    pub fn routes(&self) -> &[Route] {
        &self.table.routes
    }
}

type UpstreamEntry = (Arc<dyn Backend>, Option<Duration>);

struct Upstreams {
    default: Option<UpstreamEntry>,
    by_service: HashMap<String, UpstreamEntry>,
}

fn resolve_upstreams(
    pool: &DescriptorPool,
    config: &Config,
    cli: Option<&str>,
    errors: &mut Vec<RuleError>,
) -> Upstreams {
    let max = usize::try_from(config.limits.max_response_bytes.0).unwrap_or(usize::MAX);
    let mut out = Upstreams {
        default: None,
        by_service: HashMap::new(),
    };
    let mut make = |name: &str, url: &str| -> Option<Arc<dyn Backend>> {
        match GrpcUpstream::new(url, max) {
            Ok(u) => Some(Arc::new(u)),
            Err(message) => {
                errors.push(RuleError {
                    rule: format!("upstream {name}"),
                    message,
                });
                None
            }
        }
    };
    let mut unknown_services = Vec::new();
    for (name, u) in &config.upstreams {
        let is_default = u.services.is_empty();
        // --upstream replaces the default upstream's URL.
        let url = match (is_default, cli) {
            (true, Some(cli)) => cli,
            _ => u.url.as_str(),
        };
        let Some(backend) = make(name, url) else {
            continue;
        };
        let entry = (backend, u.timeout.map(|t| t.0));
        if is_default {
            out.default = Some(entry);
            continue;
        }
        for s in &u.services {
            if pool.get_service_by_name(s).is_none() {
                unknown_services.push((name.clone(), s.clone()));
            }
            out.by_service.insert(s.clone(), entry.clone());
        }
    }
    if out.default.is_none()
        && let Some(cli) = cli
        && let Some(b) = make("--upstream", cli)
    {
        out.default = Some((b, None));
    }
    for (name, s) in unknown_services {
        errors.push(RuleError {
            rule: format!("upstreams.{name}.services"),
            message: format!("service {s} is not in the descriptors"),
        });
    }
    out
}

impl Upstreams {
    /// Record mode: every upstream records its exchanges as stub files.
    fn record(
        &mut self,
        dir: &std::path::Path,
        pool: &DescriptorPool,
        errors: &mut Vec<RuleError>,
    ) {
        let wrap = |b: &Arc<dyn Backend>, errors: &mut Vec<RuleError>| -> Arc<dyn Backend> {
            match Recorder::new(b.clone(), dir.to_path_buf(), pool.clone()) {
                Ok(r) => Arc::new(r),
                Err(e) => {
                    errors.push(RuleError {
                        rule: "mock.record".into(),
                        message: format!("{}: {e}", dir.display()),
                    });
                    b.clone()
                }
            }
        };
        if let Some((b, t)) = self.default.take() {
            self.default = Some((wrap(&b, errors), t));
        }
        for (b, _) in self.by_service.values_mut() {
            *b = wrap(b, errors);
        }
    }
}

fn check_services(
    pool: &DescriptorPool,
    section: &str,
    services: &[String],
    errors: &mut Vec<RuleError>,
) {
    for s in services {
        if pool.get_service_by_name(s).is_none() {
            errors.push(RuleError {
                rule: section.to_string(),
                message: format!("service {s} is not in the descriptors"),
            });
        }
    }
}

/// Most specific selector wins: `pkg.Service.Method`, then `pkg.Service.*`, then `*`.
fn timeout_for(config: &Config, method: &prost_reflect::MethodDescriptor) -> Option<Duration> {
    let service = format!("{}.*", method.parent_service().full_name());
    let method = method.full_name();
    [method, service.as_str(), "*"]
        .iter()
        .find_map(|s| config.timeouts.get(*s))
        .map(|d| d.0)
}

fn check_timeout_selectors(pool: &DescriptorPool, config: &Config, errors: &mut Vec<RuleError>) {
    let methods: BTreeSet<String> = pool
        .services()
        .flat_map(|s| {
            s.methods()
                .map(|m| m.full_name().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for sel in config.timeouts.keys() {
        let ok = sel == "*"
            || methods.contains(sel)
            || sel
                .strip_suffix(".*")
                .is_some_and(|s| pool.get_service_by_name(s).is_some());
        if !ok {
            errors.push(RuleError {
                rule: format!("timeouts.{sel}"),
                message: "selector names no method or service in the descriptors".into(),
            });
        }
    }
}

fn forwarded_headers(config: &Config, errors: &mut Vec<RuleError>) -> HashSet<HeaderName> {
    let mut out = HashSet::new();
    for h in DEFAULT_FORWARDED_HEADERS
        .iter()
        .copied()
        .chain(config.headers.forward.iter().map(String::as_str))
    {
        match HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()) {
            Ok(n) => {
                out.insert(n);
            }
            Err(_) => errors.push(RuleError {
                rule: "headers.forward".into(),
                message: format!("{h:?} is not a valid header name"),
            }),
        }
    }
    out
}
