//! `upstreams:` (and `--upstream`) resolved into backends: which upstream
//! serves which service. Channels come from [`Resources`], so an upstream
//! whose URL and settings did not change keeps its connection across reloads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use prost_reflect::DescriptorPool;

use super::Resources;
use crate::call::Backend;
use crate::config::{Config, UpstreamConfig};
use crate::routing::rules::RuleError;
use crate::upstream::mock::record::Recorder;
use crate::upstream::{GrpcUpstream, Transport};

/// One configured upstream, ready to serve calls.
#[derive(Clone)]
pub(super) struct Upstream {
    /// Its name in routes.yaml (`--upstream` when only given on the command line).
    pub name: Arc<str>,
    pub backend: Arc<dyn Backend>,
    /// Default deadline of its calls.
    pub timeout: Option<Duration>,
}

/// Which upstream serves which service.
pub(super) struct Upstreams {
    default: Option<Upstream>,
    by_service: HashMap<String, Upstream>,
    /// Name → URL, for reports and reload diffs.
    pub urls: BTreeMap<String, String>,
    /// Every channel in use.
    pub channels: Vec<GrpcUpstream>,
}

impl Upstreams {
    /// The upstream of `service`: its own, else the default.
    pub fn for_service(&self, service: &str) -> Option<&Upstream> {
        self.by_service.get(service).or(self.default.as_ref())
    }

    /// Record mode: every upstream records its exchanges as stub files.
    pub fn record(
        &mut self,
        dir: &std::path::Path,
        pool: &DescriptorPool,
        errors: &mut Vec<RuleError>,
    ) {
        let wrap = |u: &mut Upstream, errors: &mut Vec<RuleError>| match Recorder::new(
            u.backend.clone(),
            dir.to_path_buf(),
            pool.clone(),
        ) {
            Ok(r) => u.backend = Arc::new(r),
            Err(e) => errors.push(RuleError {
                rule: "mock.record".into(),
                message: format!("{}: {e}", dir.display()),
            }),
        };
        if let Some(u) = self.default.as_mut() {
            wrap(u, errors);
        }
        for u in self.by_service.values_mut() {
            wrap(u, errors);
        }
    }
}

/// Resolves `upstreams:` against the pool; `cli` (`--upstream`) replaces the
/// default upstream's URL, or is the default when none is configured.
/// Services a reflection server listed (`reflected`, by URL) go to the
/// upstream at that URL unless `services:` assigns them elsewhere; with no
/// default upstream, a `reflect://` source serves what it listed itself.
pub(super) fn resolve(
    pool: &DescriptorPool,
    config: &Config,
    cli: Option<&str>,
    reflected: &BTreeMap<String, Vec<String>>,
    resources: &Resources,
    errors: &mut Vec<RuleError>,
) -> Upstreams {
    let max = usize::try_from(config.limits.max_response_bytes.0).unwrap_or(usize::MAX);
    let mut out = Upstreams {
        default: None,
        by_service: HashMap::new(),
        urls: BTreeMap::new(),
        channels: Vec::new(),
    };
    let mut make =
        |name: &str, url: &str, timeout: Option<Duration>, transport: &Transport| match resources
            .channel(url, max, transport)
        {
            Ok(u) => {
                out.urls.insert(name.to_string(), url.to_string());
                out.channels.push(u.clone());
                Some::<Upstream>(Upstream {
                    name: name.into(),
                    backend: Arc::new(u),
                    timeout,
                })
            }
            Err(message) => {
                errors.push(RuleError {
                    rule: format!("upstream {name}"),
                    message,
                });
                None
            }
        };
    let mut unknown_services = Vec::new();
    let mut retry_errors = Vec::new();
    let mut default = None;
    let mut by_service = HashMap::new();
    for (name, u) in &config.upstreams {
        let is_default = u.services.is_empty();
        let url = match (is_default, cli) {
            (true, Some(cli)) => cli,
            _ => u.url.as_str(),
        };
        let Some(mut upstream) = make(name, url, u.timeout.map(|t| t.0), &transport(u)) else {
            continue;
        };
        if let Some(retry) = &u.retry {
            with_retries(&mut upstream, retry, pool, &mut retry_errors);
        }
        if is_default {
            default = Some(upstream);
            continue;
        }
        for s in &u.services {
            if pool.get_service_by_name(s).is_none() {
                unknown_services.push((name.clone(), s.clone()));
            }
            by_service.insert(s.clone(), upstream.clone());
        }
    }
    if default.is_none()
        && let Some(cli) = cli
    {
        default = make("--upstream", cli, None, &Transport::default());
    }
    // Reflected services follow the upstream they were reflected from.
    let mut at_url: HashMap<String, Upstream> = HashMap::new();
    for (name, u) in &config.upstreams {
        let url = match (u.services.is_empty(), cli) {
            (true, Some(cli)) => cli,
            _ => u.url.as_str(),
        };
        let chosen = if u.services.is_empty() {
            default.clone()
        } else {
            u.services.first().and_then(|s| by_service.get(s).cloned())
        };
        if u.reflection
            && let Some(up) = chosen.filter(|up| *up.name == **name)
        {
            at_url.insert(url.to_string(), up);
        }
    }
    for (url, services) in reflected {
        let upstream = match at_url.get(url) {
            Some(u) => Some(u.clone()),
            None if default.is_none() => make(
                &format!("reflect://{}", strip_scheme(url)),
                url,
                None,
                &Transport::default(),
            ),
            None => None,
        };
        for s in services {
            if let (Some(u), false) = (&upstream, by_service.contains_key(s)) {
                by_service.insert(s.clone(), u.clone());
            }
        }
    }
    errors.extend(retry_errors);
    for (name, s) in unknown_services {
        errors.push(RuleError {
            rule: format!("upstreams.{name}.services"),
            message: format!("service {s} is not in the descriptors"),
        });
    }
    out.default = default;
    out.by_service = by_service;
    out
}

/// How calls reach the reflection server at `url`: as the upstream at
/// that URL, if any, else plainly (system roots for `https://`).
pub(super) fn transport_for(config: &Config, url: &str) -> Transport {
    config
        .upstreams
        .values()
        .find(|u| u.url == url)
        .map_or_else(Transport::default, transport)
}

/// How calls reach `u`.
fn transport(u: &UpstreamConfig) -> Transport {
    Transport {
        connections: u.connections,
        tls: u.tls.clone(),
        authority: u.authority.clone(),
        endpoints: u.endpoints(),
        http2: u.http2,
    }
}

/// Puts `upstream`'s backend behind its `retry:` policy (a wrapper per
/// snapshot: the policy and its budget are not part of the channel's key).
fn with_retries(
    upstream: &mut Upstream,
    retry: &crate::config::RetryConfig,
    pool: &DescriptorPool,
    errors: &mut Vec<RuleError>,
) {
    use crate::upstream::retry::RetryBackend;
    match RetryBackend::new(upstream.backend.clone(), &upstream.name, retry, pool) {
        Ok(r) => upstream.backend = Arc::new(r),
        Err(e) => errors.push(RuleError {
            rule: format!("upstreams.{}.retry{}", upstream.name, e.field()),
            message: e.to_string(),
        }),
    }
}

fn strip_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}
