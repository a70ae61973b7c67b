//! Global rate limits (`rate_limit_service:`): each call a descriptor names
//! is described to a rate limit service speaking Envoy's protocol
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`), which
//! counts it for every replica at once and answers OK or OVER_LIMIT.
//!
//! The descriptors are compiled at load time onto the destinations they
//! name (as `rate_limits:`), so a call no descriptor names costs one map
//! lookup and no request. A named call sends one request holding every
//! descriptor that names it, in configuration order; a descriptor whose
//! value the call lacks (no such header, no verified subject, not a REST
//! route) is left out, and with none left nothing is asked.
//!
//! OVER_LIMIT → 429 RESOURCE_EXHAUSTED with `Retry-After` (the longest
//! `duration_until_reset` of the descriptors over their limit). When the
//! service cannot decide (unreachable, slower than `timeout`, an error
//! status, an UNKNOWN answer) the call goes on (`failure_mode: allow`, the
//! default) or gets 503 UNAVAILABLE (`deny`). Every decision is counted in
//! `protogate_rate_limit_service_total{result}`. The check runs after the
//! local limits ([`Hook::admit`] after every `on_call`), so a call they
//! refuse never costs a request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::rls::{
    RateLimitDescriptor, RateLimitRequest, RateLimitResponse, ResponseCode, descriptor::Entry,
    rate_limit_service_client::RateLimitServiceClient,
};
use crate::auth::Subject;
use crate::auth::policy::{Destination, Selection};
use crate::call::Call;
use crate::config::{DescriptorConfig, EntryValue, FailureMode, RateLimitServiceConfig};
use crate::pipeline::{CallInfo, ClientAddr, Hook, Target};
use crate::routing::rules::RuleError;
use crate::status::GatewayError;
use crate::upstream::GrpcUpstream;

/// The global rate-limit hook of one snapshot.
pub struct GlobalLimits {
    service: Arc<Service>,
    /// Per destination (target id), the descriptors sent for its calls.
    by_target: HashMap<u64, Box<[Arc<DescriptorConfig>]>>,
}

impl std::fmt::Debug for GlobalLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalLimits")
            .field("url", &self.service.config.url)
            .field("destinations", &self.by_target.len())
            .finish()
    }
}

/// The rate limit service and how to ask it.
struct Service {
    channel: GrpcUpstream,
    config: RateLimitServiceConfig,
}

impl GlobalLimits {
    /// Compiles `config`'s descriptors onto `targets` (every method target
    /// and route target of a snapshot); `channel` reaches the service.
    /// Errors name the descriptor's field.
    pub fn build<'a>(
        config: &RateLimitServiceConfig,
        channel: GrpcUpstream,
        targets: impl Iterator<Item = &'a Target>,
        known_routes: &[&str],
    ) -> Result<GlobalLimits, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut selections = Vec::new();
        for (i, d) in config.descriptors.iter().enumerate() {
            match Selection::compile(d.selector.as_deref(), d.route.as_deref(), known_routes) {
                Ok(s) => selections.push((s, Arc::new(d.clone()))),
                Err(message) => errors.push(RuleError {
                    rule: format!("rate_limit_service.descriptors[{i}]"),
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut by_target = HashMap::new();
        for t in targets {
            let d = Destination {
                key: "",
                method: t.method.full_name(),
                route: t.route.as_deref(),
            };
            let named: Box<[Arc<DescriptorConfig>]> = selections
                .iter()
                .filter(|(s, _)| s.matches(&d))
                .map(|(_, c)| c.clone())
                .collect();
            if !named.is_empty() {
                by_target.insert(t.id, named);
            }
        }
        if by_target.is_empty() {
            tracing::warn!("rate_limit_service: no descriptor names a method or route");
        }
        let service = Arc::new(Service {
            channel,
            config: config.clone(),
        });
        Ok(GlobalLimits { service, by_target })
    }
}

impl Hook for GlobalLimits {
    fn admit(
        &self,
        call: &Call,
        info: &CallInfo<'_>,
    ) -> Option<BoxFuture<'static, Result<(), GatewayError>>> {
        let named = self.by_target.get(&info.target.id)?;
        let descriptors: Vec<RateLimitDescriptor> = named
            .iter()
            .filter_map(|d| describe(d, call, info))
            .collect();
        if descriptors.is_empty() {
            return None;
        }
        let request = RateLimitRequest {
            domain: self.service.config.domain.clone(),
            descriptors,
            hits_addend: 0,
        };
        Some(Box::pin(self.service.clone().decide(request)))
    }
}

/// `d` filled from the call, or `None` when the call lacks a value.
fn describe(d: &DescriptorConfig, call: &Call, info: &CallInfo<'_>) -> Option<RateLimitDescriptor> {
    let entries = d
        .entries
        .iter()
        .map(|e| {
            Some(Entry {
                key: e.key.clone(),
                value: value_of(&e.value, call, info)?,
            })
        })
        .collect::<Option<Vec<Entry>>>()?;
    Some(RateLimitDescriptor {
        entries,
        ..Default::default()
    })
}

fn value_of(value: &EntryValue, call: &Call, info: &CallInfo<'_>) -> Option<String> {
    Some(match value {
        EntryValue::Literal(text) => text.clone(),
        EntryValue::Method => info.target.method.full_name().to_string(),
        EntryValue::Service => info.target.method.parent_service().full_name().to_string(),
        EntryValue::Route => info.target.route.as_deref()?.to_string(),
        EntryValue::ClientIp => {
            let ip: IpAddr = call.extensions.get::<ClientAddr>()?.0.ip();
            ip.to_canonical().to_string()
        }
        EntryValue::Subject => call.extensions.get::<Subject>()?.0.clone(),
        EntryValue::Header(name) => info.headers.get(name)?.to_str().ok()?.to_string(),
    })
}

impl Service {
    /// Asks the service about one call, and applies the failure mode.
    async fn decide(self: Arc<Self>, request: RateLimitRequest) -> Result<(), GatewayError> {
        let timeout = self.config.timeout.0;
        let answer = tokio::time::timeout(timeout, self.ask(request)).await;
        let failure = match answer {
            Ok(Ok(response)) => match response.overall_code() {
                ResponseCode::Ok => return counted("ok", Ok(())),
                ResponseCode::OverLimit => {
                    return counted("over_limit", Err(over_limit(&response)));
                }
                ResponseCode::Unknown => "it answered UNKNOWN".to_string(),
            },
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {timeout:?}"),
        };
        let message = format!("rate limit service {}: {failure}", self.config.url);
        match self.config.failure_mode {
            FailureMode::Allow => {
                tracing::debug!("{message}; the call goes on (failure_mode: allow)");
                counted("failed_open", Ok(()))
            }
            FailureMode::Deny => counted(
                "failed_closed",
                Err(GatewayError::UpstreamUnavailable(message)),
            ),
        }
    }

    /// One `ShouldRateLimit` over the service's channel.
    async fn ask(&self, request: RateLimitRequest) -> Result<RateLimitResponse, String> {
        let service = self.channel.service().await?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(self.config.timeout.0);
        RateLimitServiceClient::new(service)
            .should_rate_limit(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| match crate::upstream::fault_of(&s) {
                Some(fault) => fault.to_string(),
                None => format!("{:?}: {}", s.code(), s.message()),
            })
    }
}

fn counted(result: &'static str, decision: Result<(), GatewayError>) -> Result<(), GatewayError> {
    metrics::counter!("protogate_rate_limit_service_total", "result" => result).increment(1);
    decision
}

/// The refusal for an OVER_LIMIT answer: the first limit over, and the
/// longest wait any descriptor over its limit names (at least a second).
fn over_limit(response: &RateLimitResponse) -> GatewayError {
    let over: Vec<_> = response
        .statuses
        .iter()
        .filter(|s| s.code() == ResponseCode::OverLimit)
        .collect();
    let retry_after = over
        .iter()
        .filter_map(|s| s.duration_until_reset.as_ref())
        .filter_map(|d| Duration::try_from(*d).ok())
        .max()
        .unwrap_or(Duration::from_secs(1));
    let limit = over
        .iter()
        .find_map(|s| s.current_limit.as_ref())
        .map_or_else(
            || "global (rate limit service)".to_string(),
            |l| {
                let unit = l.unit().as_str_name().to_ascii_lowercase();
                let name = if l.name.is_empty() { "global" } else { &l.name };
                format!(
                    "{name:?} ({} per {unit}, rate limit service)",
                    l.requests_per_unit
                )
            },
        );
    GatewayError::RateLimited {
        limit: limit.into(),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::super::rls::rate_limit_response::{DescriptorStatus, RateLimit, rate_limit::Unit};
    use super::*;

    fn status(code: ResponseCode, reset_secs: Option<i64>) -> DescriptorStatus {
        DescriptorStatus {
            code: code as i32,
            current_limit: Some(RateLimit {
                name: "per-ip".into(),
                requests_per_unit: 10,
                unit: Unit::Minute as i32,
            }),
            limit_remaining: 0,
            duration_until_reset: reset_secs
                .map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
        }
    }

    #[test]
    fn over_limit_waits_for_the_longest_reset_of_the_limits_over() {
        let response = RateLimitResponse {
            overall_code: ResponseCode::OverLimit as i32,
            statuses: vec![
                status(ResponseCode::Ok, Some(50)),
                status(ResponseCode::OverLimit, Some(7)),
                status(ResponseCode::OverLimit, Some(12)),
            ],
        };
        let GatewayError::RateLimited { limit, retry_after } = over_limit(&response) else {
            panic!("not RateLimited");
        };
        assert_eq!(retry_after, Duration::from_secs(12));
        assert_eq!(&*limit, "\"per-ip\" (10 per minute, rate limit service)");
    }

    #[test]
    fn over_limit_without_details_waits_a_second() {
        let response = RateLimitResponse {
            overall_code: ResponseCode::OverLimit as i32,
            statuses: vec![],
        };
        let GatewayError::RateLimited { retry_after, .. } = over_limit(&response) else {
            panic!("not RateLimited");
        };
        assert_eq!(retry_after, Duration::from_secs(1));
    }
}
