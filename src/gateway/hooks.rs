//! The policy hooks a snapshot builds from routes.yaml, each compiled onto
//! the snapshot's destinations: auth, local rate limits, global rate limits.

use super::*;

/// The auth hook: every gRPC method and every route gets its requirement.
pub(super) fn auth_hook(
    config: &crate::config::AuthConfig,
    grpc_targets: &HashMap<String, Arc<Target>>,
    table: &RouteTable,
) -> Result<crate::auth::Auth, LoadError> {
    use crate::auth::policy::Destination;
    let methods = grpc_targets.iter().map(|(path, t)| Destination {
        key: path,
        method: t.method.full_name(),
        route: None,
    });
    let routes = table.routes.iter().map(|r| Destination {
        key: &r.key,
        method: r.method.full_name(),
        route: Some(&r.key),
    });
    let known: Vec<&str> = table.routes.iter().map(|r| r.key.as_str()).collect();
    crate::auth::Auth::build(config, methods.chain(routes), &known).map_err(LoadError::Rules)
}

/// The rate-limit hook, when `rate_limits:` names any limit: every gRPC
/// method and every route gets the limits that name it.
pub(super) fn rate_limits_hook(
    config: &Config,
    grpc_targets: &HashMap<String, Arc<Target>>,
    route_targets: &[Arc<Target>],
    table: &RouteTable,
    resources: &Resources,
) -> Result<Option<crate::limits::rate::RateLimits>, LoadError> {
    let known: Vec<&str> = table.routes.iter().map(|r| r.key.as_str()).collect();
    let targets = grpc_targets.values().chain(route_targets).map(|t| &**t);
    crate::limits::rate::RateLimits::build(
        &config.rate_limits,
        targets,
        &known,
        resources.rate_buckets(),
    )
    .map_err(LoadError::Rules)
}

/// The global rate-limit hook, when `rate_limit_service:` is configured;
/// its channel comes from `resources`, so an unchanged service keeps its
/// connection across reloads.
pub(super) fn global_limits_hook(
    config: &Config,
    grpc_targets: &HashMap<String, Arc<Target>>,
    route_targets: &[Arc<Target>],
    table: &RouteTable,
    resources: &Resources,
) -> Result<Option<crate::limits::global::GlobalLimits>, LoadError> {
    let Some(rls) = &config.rate_limit_service else {
        return Ok(None);
    };
    let transport = crate::upstream::Transport {
        tls: rls.tls.clone(),
        ..Default::default()
    };
    // Its answers are a few bytes: the default response limit is plenty.
    let max = usize::try_from(config.limits.max_response_bytes.0).unwrap_or(usize::MAX);
    let channel = resources
        .channel(&rls.url, max, &transport)
        .map_err(|message| {
            LoadError::Rules(vec![RuleError {
                rule: "rate_limit_service.url".into(),
                message,
            }])
        })?;
    let known: Vec<&str> = table.routes.iter().map(|r| r.key.as_str()).collect();
    let targets = grpc_targets.values().chain(route_targets).map(|t| &**t);
    crate::limits::global::GlobalLimits::build(rls, channel, targets, &known)
        .map(Some)
        .map_err(LoadError::Rules)
}
