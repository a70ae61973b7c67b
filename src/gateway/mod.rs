//! The loaded gateway: descriptors, routes, targets and options, resolved
//! once into an immutable snapshot that request handlers share. A reload
//! builds a new snapshot beside the old one ([`crate::live`]); the
//! long-lived parts both use live in [`Resources`].

mod checks;
mod hooks;
mod resources;
mod upstreams;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use prost_reflect::DescriptorPool;

use crate::call::Backend;
use crate::config::{Config, ConfigError};
use crate::descriptors::{self, DescriptorError, DescriptorSource};
use crate::error_format::ErrorFormat;
use crate::pipeline::shed::Shedding;
use crate::pipeline::{Hooks, Target};
use crate::routing::SkippedRule;
use crate::routing::rules::{self, Route, RouteTable, RuleError, RulesOptions};
use crate::status::GatewayError;
use crate::transcode::budget::DecodeLimits;
use crate::transcode::message::MethodJson;
use crate::transcode::required::RequiredFields;
use crate::transcode::{RequestOptions, ResponseOptions};
use crate::upstream::mock::faults::Faults;
use crate::upstream::mock::stubs::StubError;
use crate::upstream::mock::{MockBackend, MockOptions};
use checks::{check_allow_list, check_services, check_timeout_selectors, forwarded_headers};
use hooks::{auth_hook, global_limits_hook, rate_limits_hook};
pub use resources::Resources;
use upstreams::Upstreams;

/// Request headers forwarded as metadata without configuration.
pub const DEFAULT_FORWARDED_HEADERS: &[&str] =
    &["authorization", "x-request-id", "traceparent", "tracestate"];

/// What the gateway is built from (the CLI's flags, resolved).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Descriptor sets, `.proto` files, directories, or reflection servers.
    pub descriptors: Vec<DescriptorSource>,
    /// routes.yaml files (or google.api.Service files), merged in order.
    pub routes: Vec<PathBuf>,
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
    /// `--watch`.
    pub watch: Option<bool>,
    /// `--strict`: a rule that cannot be served fails the load.
    pub strict: bool,
    /// `-I`/`--proto-path`: searched before routes.yaml's.
    pub proto_path: Vec<PathBuf>,
    /// `--services`: replaces routes.yaml's allow-list when given.
    pub services: Vec<String>,
}

impl Settings {
    /// routes.yaml (or the defaults), with the flags applied.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load_all(&self.routes)?;
        self.apply(&mut config);
        Ok(config)
    }

    /// Every server descriptors come from by reflection: `reflect://`
    /// sources, and upstreams with `reflection: true` (at the URL they are
    /// called at, after `--upstream`).
    pub fn reflection_urls(&self, config: &Config) -> Vec<String> {
        let mut urls: Vec<String> = self
            .descriptors
            .iter()
            .filter_map(|s| match s {
                DescriptorSource::Reflection(url) => Some(url.clone()),
                DescriptorSource::Path(_) => None,
            })
            .collect();
        for u in config.upstreams.values().filter(|u| u.reflection) {
            let url = match (&self.upstream, u.services.is_empty()) {
                (Some(cli), true) => cli.clone(),
                _ => u.url.clone(),
            };
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        urls
    }

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
        if let Some(watch) = self.watch {
            config.reload.watch = watch;
        }
        config.routing.strict |= self.strict;
        let d = &mut config.descriptors;
        d.proto_path = self
            .proto_path
            .iter()
            .chain(&d.proto_path)
            .cloned()
            .collect();
        if !self.services.is_empty() {
            d.services = self.services.clone();
        }
    }

    /// How descriptors load under `config`.
    pub fn load_options(config: &Config) -> descriptors::LoadOptions {
        descriptors::LoadOptions {
            proto_path: config.descriptors.proto_path.clone(),
            services: descriptors::ServiceFilter::new(config.descriptors.services.iter().cloned()),
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
    /// The background load itself failed.
    #[error("loading failed: {0}")]
    Task(String),
}

/// The immutable, loaded gateway: one snapshot of the configuration.
/// Request handlers hold an `Arc` of it for as long as they run, so a reload
/// never changes the rules under a request in flight.
pub struct Gateway {
    /// Every descriptor, for transcoding and error details.
    pub pool: DescriptorPool,
    /// Routes and their matcher.
    pub table: RouteTable,
    /// Per route id: where its calls go.
    pub route_targets: Vec<Arc<Target>>,
    /// Every method by gRPC path (`/pkg.Service/Method`), for the framed protocols.
    pub grpc_targets: HashMap<String, Arc<Target>>,
    /// Every method by gRPC path, its messages ready for JSON (Connect).
    pub method_json: HashMap<String, MethodJson>,
    /// The hooks run at the dispatch seam.
    pub hooks: Hooks,
    /// Request decoding options.
    pub request_options: RequestOptions,
    /// Response rendering options.
    pub response_options: ResponseOptions,
    /// Largest accepted request body.
    pub max_body_bytes: u64,
    /// Headers forwarded as metadata (lowercase).
    pub forwarded_headers: HashSet<HeaderName>,
    /// The mock backend, when any service is mocked.
    pub mock: Option<MockBackend>,
    /// Upstream name → URL, as configured.
    pub upstreams: BTreeMap<String, String>,
    /// The upstream channels it calls: the resources keep these alive.
    pub(crate) channels: Vec<crate::upstream::GrpcUpstream>,
    /// Descriptor sources that provided nothing yet (reflection from a
    /// server that is down), with the reason: the gateway is not ready.
    pub missing: Vec<String>,
    /// The servers descriptors are fetched from by reflection.
    pub reflection_urls: Vec<String>,
    /// CORS, when origins are configured.
    pub cors: Option<tower_http::cors::CorsLayer>,
    /// The shape of REST error bodies (`errors:`).
    pub error_format: ErrorFormat,
    /// The load-shedding limits it uses (`shedding:`), sized as configured.
    pub shedding: Shedding,
    /// The configuration it was built from.
    pub config: Config,
    /// Its OpenAPI document, built when first asked for.
    pub openapi: crate::openapi::Lazy,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &self.table.routes.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads descriptors and routes.yaml and builds everything, with fresh
    /// resources (no reload, no hooks). Reflection sources are asked once;
    /// one that cannot answer is an error: what `routes` and `check` use.
    pub async fn load(settings: &Settings) -> Result<Gateway, LoadError> {
        let resources = Resources::default();
        let config = settings.config()?;
        resources
            .refresh_reflection(&settings.reflection_urls(&config), &config)
            .await;
        let gw = Gateway::load_with(settings, &resources)?;
        match gw.missing.is_empty() {
            true => Ok(gw),
            false => Err(LoadError::Descriptors(DescriptorError::Unreachable {
                sources: gw.missing.join("; "),
            })),
        }
    }

    /// Loads descriptors and routes.yaml and builds everything, reusing
    /// `resources` where their configuration is unchanged. Reflection
    /// sources take what [`Resources::refresh_reflection`] last fetched.
    pub fn load_with(settings: &Settings, resources: &Resources) -> Result<Gateway, LoadError> {
        let config = settings.config()?;
        let reflection_urls = settings.reflection_urls(&config);
        let mut sources: Vec<DescriptorSource> = settings.descriptors.clone();
        for url in &reflection_urls {
            let s = DescriptorSource::Reflection(url.clone());
            if !sources.contains(&s) {
                sources.push(s);
            }
        }
        let loaded = descriptors::load_with(
            &sources,
            &resources.reflected(),
            &Settings::load_options(&config),
        )?;
        for notice in config.notices.iter().chain(&loaded.notices) {
            tracing::info!("{notice}");
        }
        // Where a skipped routes.yaml rule is written (one of these files).
        let routes_file = (!settings.routes.is_empty()).then(|| {
            let names: Vec<String> = settings
                .routes
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            names.join(", ")
        });
        let mut gw = Gateway::build_loaded(
            &loaded,
            config,
            settings.upstream.as_deref(),
            resources,
            routes_file,
        )?;
        gw.missing = loaded.missing;
        gw.reflection_urls = reflection_urls;
        Ok(gw)
    }

    /// Builds from an already loaded pool and config, with fresh resources.
    pub fn build(
        pool: DescriptorPool,
        config: Config,
        upstream_override: Option<&str>,
    ) -> Result<Gateway, LoadError> {
        Gateway::build_with(pool, config, upstream_override, &Resources::default())
    }

    /// Builds from an already loaded pool and config. Nothing in `resources`
    /// changes until [`Resources::commit`] is called with the result.
    pub fn build_with(
        pool: DescriptorPool,
        config: Config,
        upstream_override: Option<&str>,
        resources: &Resources,
    ) -> Result<Gateway, LoadError> {
        let loaded = descriptors::Descriptors::from_pool(pool);
        Gateway::build_loaded(&loaded, config, upstream_override, resources, None)
    }

    fn build_loaded(
        loaded: &descriptors::Descriptors,
        config: Config,
        upstream_override: Option<&str>,
        resources: &Resources,
        routes_file: Option<String>,
    ) -> Result<Gateway, LoadError> {
        let pool = loaded.pool.clone();
        let served = Settings::load_options(&config).services;
        let opts = RulesOptions {
            auto_map: config.routing.auto_map,
            fully_decode_reserved_expansion: config.http.fully_decode_reserved_expansion,
            strict: config.routing.strict,
            config_file: routes_file,
            services: served.clone(),
        };
        let mut errors = Vec::new();
        check_allow_list(&pool, &served, &mut errors);
        let table = match rules::build(&pool, &config.http.rules, &opts) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let mut upstreams = upstreams::resolve(
            &pool,
            &config,
            upstream_override,
            &loaded.reflected_services,
            resources,
            &mut errors,
        );
        check_services(&pool, "mock.services", &config.mock.services, &mut errors);
        check_services(&pool, "mock.stateful", &config.mock.stateful, &mut errors);
        if let Some(dir) = &config.mock.record {
            upstreams.record(dir, &pool, &mut errors);
        }
        check_timeout_selectors(&pool, &config, &mut errors);
        let forwarded_headers = forwarded_headers(&config, &mut errors);
        let cors = crate::cors::layer(&config.cors).unwrap_or_else(|message| {
            errors.push(RuleError {
                rule: "cors".into(),
                message,
            });
            None
        });
        let error_format = ErrorFormat::build(&config.errors, &config.json).unwrap_or_else(|e| {
            errors.push(RuleError {
                rule: e.setting().into(),
                message: e.to_string(),
            });
            ErrorFormat::default()
        });
        // When the load fails anyway, the rules it would skip are listed too.
        if !errors.is_empty()
            && let Some(t) = &table
        {
            errors.extend(t.skipped.iter().map(SkippedRule::to_error));
        }
        let Some(table) = table.filter(|_| errors.is_empty()) else {
            return Err(LoadError::Rules(errors));
        };
        // Naming services to mock turns mocking on for just those.
        let mock = if config.mock.enabled || !config.mock.services.is_empty() {
            let stubs = resources.stubs_for(config.mock.stubs.as_deref(), &pool, &table.routes)?;
            Some(MockBackend::new(
                pool.clone(),
                config.mock.seed,
                stubs,
                {
                    let state = resources.mock_state(&pool);
                    state.set_max_depth(config.limits.max_depth);
                    state
                },
                config.mock.stateful.iter().cloned().collect(),
                MockOptions {
                    journal_max: config.mock.journal_max,
                    journal: Some(resources.mock_journal()),
                    faults: Faults::new(config.mock.seed, config.mock.faults.clone(), &pool)
                        .map_err(StubError)?,
                },
            ))
        } else {
            None
        };
        let shedding = resources.shed_limits().build(
            &config.shedding,
            upstreams
                .urls
                .keys()
                .map(String::as_str)
                .chain(mock.as_ref().map(|_| "mock")),
        );
        let grpc_targets = method_targets(
            &pool,
            &config,
            &served,
            &upstreams,
            mock.as_ref(),
            &shedding,
        );
        let route_targets: Vec<Arc<Target>> = table
            .routes
            .iter()
            .map(|route| {
                let target = grpc_targets.get(&route.grpc_path).map_or_else(
                    || {
                        Target::new(
                            route.method.clone(),
                            None,
                            "none".into(),
                            config.limits.default_timeout.0,
                        )
                    },
                    |t| t.through_route(&route.key),
                );
                Arc::new(target)
            })
            .collect();
        // Auth first, then local rate limits (`key: subject` reads what
        // auth verified), then global ones (asked only for calls the local
        // ones admitted), then the hooks every snapshot runs.
        let mut hooks = resources.hooks();
        if let Some(global) =
            global_limits_hook(&config, &grpc_targets, &route_targets, &table, resources)?
        {
            hooks = hooks.prepend(Arc::new(global));
        }
        if let Some(limits) =
            rate_limits_hook(&config, &grpc_targets, &route_targets, &table, resources)?
        {
            hooks = hooks.prepend(Arc::new(limits));
        }
        if let Some(auth) = &config.auth {
            hooks = hooks.prepend(Arc::new(auth_hook(auth, &grpc_targets, &table)?));
        }
        let method_json = grpc_targets
            .iter()
            .map(|(path, t)| (path.clone(), MethodJson::new(&t.method)))
            .collect();
        let required = config
            .validation
            .required_fields
            .then(|| Arc::new(RequiredFields::of(&pool)));
        Ok(Gateway {
            pool,
            route_targets,
            grpc_targets,
            method_json,
            hooks,
            request_options: RequestOptions {
                unknown_fields: config.json.unknown_fields,
                unknown_query_params: config.json.unknown_query_params,
                limits: DecodeLimits {
                    max_depth: config.limits.max_depth,
                    max_decoded_bytes: usize::try_from(config.limits.max_decoded_bytes.0)
                        .unwrap_or(usize::MAX),
                },
                credentials_param: config
                    .auth
                    .as_ref()
                    .and_then(|a| a.token.query.as_deref())
                    .map(Into::into),
                required,
            },
            response_options: ResponseOptions::from(&config.json),
            max_body_bytes: config.limits.max_body_bytes.0,
            forwarded_headers,
            table,
            mock,
            channels: upstreams.channels,
            upstreams: upstreams.urls,
            missing: Vec::new(),
            reflection_urls: Vec::new(),
            cors,
            error_format,
            shedding,
            config,
            openapi: Default::default(),
        })
    }

    /// The routes, in table order.
    pub fn routes(&self) -> &[Route] {
        &self.table.routes
    }

    /// The rules that are not served, and why (none under `routing.strict`).
    pub fn skipped(&self) -> &[SkippedRule] {
        &self.table.skipped
    }

    /// The route with id `id` (ids come from this snapshot's matcher).
    pub fn route(&self, id: usize) -> Result<&Route, GatewayError> {
        self.table
            .routes
            .get(id)
            .ok_or_else(|| GatewayError::Internal(format!("route id {id} out of range")))
    }

    /// The largest upstream message accepted.
    pub fn max_response_bytes(&self) -> usize {
        usize::try_from(self.config.limits.max_response_bytes.0).unwrap_or(usize::MAX)
    }

    /// True when no method has a backend: every call would answer 503.
    pub fn has_no_backend(&self) -> bool {
        self.grpc_targets.values().all(|t| t.backend.is_none())
    }
}

/// Every method (REST routes and framed protocols alike) resolves its
/// backend and deadline once, here.
fn method_targets(
    pool: &DescriptorPool,
    config: &Config,
    served: &descriptors::ServiceFilter,
    upstreams: &Upstreams,
    mock: Option<&MockBackend>,
    shedding: &Shedding,
) -> HashMap<String, Arc<Target>> {
    let mocked = |service: &str| {
        config.mock.services.is_empty() || config.mock.services.iter().any(|s| s == service)
    };
    let mut out = HashMap::new();
    for service in pool.services().filter(|s| served.allows(s)) {
        let name = service.full_name().to_string();
        let upstream = upstreams.for_service(&name);
        let (backend, label): (Option<Arc<dyn Backend>>, Arc<str>) = match mock {
            Some(m) if mocked(&name) => (Some(Arc::new(m.clone())), "mock".into()),
            _ => match upstream {
                Some(u) => (Some(u.backend.clone()), u.name.clone()),
                None => (None, "none".into()),
            },
        };
        let upstream_timeout = upstream.and_then(|u| u.timeout);
        for method in service.methods() {
            // A stream lives as long as it needs to, within streaming.max_duration.
            let streaming = method.is_client_streaming() || method.is_server_streaming();
            let timeout = match timeout_for(config, &method) {
                Some(t) => t,
                None if streaming => config.streaming.max_duration.0,
                None => upstream_timeout.unwrap_or(config.limits.default_timeout.0),
            };
            let mut target = Target::new(method, backend.clone(), label.clone(), timeout);
            target.max_metadata_bytes =
                usize::try_from(config.limits.max_metadata_bytes.0).unwrap_or(usize::MAX);
            target.admission = shedding.admission(&target.upstream, streaming);
            out.insert(target.path.as_str().to_string(), Arc::new(target));
        }
    }
    out
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
