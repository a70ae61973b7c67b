//! Policy-driven retries in front of an upstream ([`RetryBackend`]), from
//! `upstreams.<name>.retry` ([`RetryConfig`]).
//!
//! A failed call is tried again only when all of these hold:
//!
//! - the method is safe to repeat: its `idempotency_level` is
//!   NO_SIDE_EFFECTS or IDEMPOTENT, or `retry.methods` lists it; and it is
//!   not client-streaming (its request stream cannot be replayed; bidi
//!   streams are client-streaming too);
//! - nothing of the response reached the client: the backend failed the call
//!   before response headers (a connection failure, or a trailers-only
//!   status), or — unary methods only, whose one message is read before the
//!   call is handed on — the response ended with an error before its
//!   message. A server stream that failed after its headers is never retried;
//! - the failure is one of `retry.codes` (a failure below gRPC, such as a
//!   refused or reset connection, counts as UNAVAILABLE), and not the call's
//!   own deadline passing;
//! - attempts remain (`retry.max_attempts`, the first included), the backoff
//!   (full jitter: a random pause up to `initial_backoff` doubled per retry,
//!   at most `max_backoff`) ends before the deadline, and the budget allows
//!   it (a share of the calls of the last 10 seconds, plus a floor per
//!   second: tower's [`TpsBudget`]).
//!
//! When the backoff would pass the deadline no attempt starts: the call waits
//! out its deadline, so the exchange answers DEADLINE_EXCEEDED at the
//! deadline, as a gRPC client's retries do. Every attempt is sent what is
//! left of the deadline.
//!
//! This is apart from the connection's own re-send of a request the upstream
//! provably never took (`connection.rs`, `grpc.rs`), which needs no policy.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::uri::PathAndQuery;
use prost_reflect::{DescriptorPool, MethodDescriptor};
use tokio::time::Instant;
use tonic::Code;
use tonic::metadata::MetadataMap;
use tower::retry::budget::{Budget, TpsBudget};

use crate::call::{Backend, Call, CallContext, CallResponse, single};
use crate::config::RetryConfig;
use crate::status::GatewayError;

/// How long the budget remembers calls and retries.
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Why a retry policy cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryError {
    /// The settings are out of range (what `Config::parse` refuses).
    #[error("{0}")]
    Invalid(String),
    /// A `methods` selector names nothing in the descriptors.
    #[error("selector {0} names no method or service in the descriptors")]
    UnknownSelector(String),
    /// A `methods` selector names a client-streaming method.
    #[error("{0} is client-streaming: its request stream cannot be replayed")]
    ClientStreaming(String),
}

impl RetryError {
    /// The field under `upstreams.<name>.retry` at fault (`methods`, or
    /// empty when the message names it).
    pub fn field(&self) -> &'static str {
        match self {
            RetryError::Invalid(_) => "",
            RetryError::UnknownSelector(_) | RetryError::ClientStreaming(_) => ".methods",
        }
    }
}

/// A backend whose failed calls are tried again under a [`RetryConfig`].
pub struct RetryBackend {
    inner: Arc<dyn Backend>,
    policy: Arc<Policy>,
}

/// What a [`RetryBackend`] decides with, built once per configuration.
struct Policy {
    /// The upstream's name, for metrics and logs.
    upstream: Arc<str>,
    max_attempts: u32,
    codes: Vec<Code>,
    /// Full names of the methods safe to retry.
    methods: HashSet<Box<str>>,
    initial_backoff: Duration,
    max_backoff: Duration,
    budget: TpsBudget,
}

impl RetryBackend {
    /// Retries calls to `inner` (the upstream `upstream`) as `config` says;
    /// the methods it retries are found in `pool` now.
    pub fn new(
        inner: Arc<dyn Backend>,
        upstream: &str,
        config: &RetryConfig,
        pool: &DescriptorPool,
    ) -> Result<RetryBackend, RetryError> {
        let problems = config.problems("retry");
        if !problems.is_empty() {
            return Err(RetryError::Invalid(problems.join("; ")));
        }
        let budget = TpsBudget::new(
            BUDGET_WINDOW,
            config.budget.min_per_second,
            config.budget.ratio as f32,
        );
        let policy = Policy {
            upstream: upstream.into(),
            max_attempts: config.max_attempts,
            codes: config.codes.iter().map(|c| c.0).collect(),
            methods: safe_methods(pool, &config.methods)?,
            initial_backoff: config.initial_backoff.0,
            max_backoff: config.max_backoff.0,
            budget,
        };
        Ok(RetryBackend {
            inner,
            policy: Arc::new(policy),
        })
    }

    /// Whether calls of `method` may be retried.
    pub fn retries(&self, method: &MethodDescriptor) -> bool {
        self.policy.methods.contains(method.full_name())
    }
}

/// The methods of `pool` safe to retry: declared idempotent or selected,
/// never client-streaming.
fn safe_methods(
    pool: &DescriptorPool,
    selectors: &[String],
) -> Result<HashSet<Box<str>>, RetryError> {
    for s in selectors {
        check_selector(pool, s)?;
    }
    let methods = pool
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| !m.is_client_streaming())
        .filter(|m| declared_safe(m) || selectors.iter().any(|s| selects(s, m)))
        .map(|m| Box::from(m.full_name()))
        .collect();
    Ok(methods)
}

/// A selector must name something; a method it names exactly must be
/// replayable.
fn check_selector(pool: &DescriptorPool, selector: &str) -> Result<(), RetryError> {
    if selector == "*" {
        return Ok(());
    }
    if let Some(service) = selector.strip_suffix(".*") {
        return match pool.get_service_by_name(service) {
            Some(_) => Ok(()),
            None => Err(RetryError::UnknownSelector(selector.into())),
        };
    }
    let method = selector.rsplit_once('.').and_then(|(service, method)| {
        pool.get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)
    });
    match method {
        None => Err(RetryError::UnknownSelector(selector.into())),
        Some(m) if m.is_client_streaming() => Err(RetryError::ClientStreaming(selector.into())),
        Some(_) => Ok(()),
    }
}

/// Whether `selector` (`*`, `pkg.Service.*`, `pkg.Service.Method`) selects `m`.
fn selects(selector: &str, m: &MethodDescriptor) -> bool {
    selector == "*"
        || selector == m.full_name()
        || selector.strip_suffix(".*") == Some(m.parent_service().full_name())
}

/// Whether `m`'s `idempotency_level` is NO_SIDE_EFFECTS (1) or IDEMPOTENT (2).
fn declared_safe(m: &MethodDescriptor) -> bool {
    let level = m
        .options()
        .get_field_by_name("idempotency_level")
        .and_then(|v| v.as_enum_number());
    matches!(level, Some(1 | 2))
}

impl Backend for RetryBackend {
    fn call(&self, call: Call) -> BoxFuture<'static, Result<CallResponse, GatewayError>> {
        // Every call earns the budget its share, retried or not.
        self.policy.budget.deposit();
        if !self.retries(&call.method) {
            return self.inner.call(call);
        }
        let inner = self.inner.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let Call {
                method,
                path,
                metadata,
                mut requests,
                deadline,
                context,
                extensions,
            } = call;
            let message = match requests.next().await {
                Some(m) => m?,
                // No message to replay: one attempt, as it came.
                None => {
                    let mut call = Call::new(method, path, metadata, requests, deadline);
                    call.context = context;
                    call.extensions = extensions;
                    return inner.call(call).await;
                }
            };
            let replay = Replay {
                method,
                path,
                metadata,
                message,
                deadline,
                context,
                extensions,
            };
            policy.run(inner.as_ref(), &replay).await
        })
    }

    fn wants_context(&self) -> bool {
        self.inner.wants_context()
    }
}

/// A call whose one request message is kept, to be sent once per attempt.
struct Replay {
    method: MethodDescriptor,
    path: PathAndQuery,
    metadata: MetadataMap,
    message: Bytes,
    deadline: Instant,
    context: CallContext,
    extensions: http::Extensions,
}

impl Replay {
    /// The call of one attempt.
    fn call(&self) -> Call {
        Call {
            method: self.method.clone(),
            path: self.path.clone(),
            metadata: self.metadata.clone(),
            requests: single(self.message.clone()),
            deadline: self.deadline,
            context: self.context.clone(),
            extensions: self.extensions.clone(),
        }
    }

    /// `package.Service/Method`, as the other metrics label methods.
    fn method_label(&self) -> &str {
        self.path.as_str().trim_start_matches('/')
    }
}

/// An attempt that failed before anything reached the client.
struct Failure {
    error: GatewayError,
    /// The response headers, when the failure came after them (a unary
    /// response that ended in an error before its message).
    headers: Option<MetadataMap>,
}

impl Failure {
    /// The failure as the caller sees it when it is not retried.
    fn into_result(self) -> Result<CallResponse, GatewayError> {
        match self.headers {
            None => Err(self.error),
            Some(metadata) => Ok(CallResponse {
                metadata,
                events: futures_util::stream::iter([Err(self.error)]).boxed(),
            }),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Pause this long, then try again.
    Retry(Duration),
    /// Pass the failure on now.
    GiveUp,
    /// The backoff would pass the deadline: wait it out, then fail.
    WaitOutDeadline,
}

impl Policy {
    /// Attempts until one succeeds or the policy gives up.
    async fn run(
        &self,
        inner: &dyn Backend,
        replay: &Replay,
    ) -> Result<CallResponse, GatewayError> {
        let mut attempt = 1;
        loop {
            let failure = match try_once(inner, replay).await {
                Ok(response) => return Ok(response),
                Err(f) => f,
            };
            match self.next(attempt, &failure.error, replay) {
                Next::Retry(pause) => tokio::time::sleep(pause).await,
                Next::GiveUp => return failure.into_result(),
                Next::WaitOutDeadline => {
                    tokio::time::sleep_until(replay.deadline).await;
                    return failure.into_result();
                }
            }
            attempt += 1;
        }
    }

    /// Decides after attempt number `attempt` failed with `error`, and
    /// counts the decision.
    fn next(&self, attempt: u32, error: &GatewayError, replay: &Replay) -> Next {
        let Some(reason) = self.retryable(error) else {
            return Next::GiveUp;
        };
        let method = replay.method_label();
        if attempt >= self.max_attempts {
            self.skipped(method, "attempts");
            return Next::GiveUp;
        }
        let pause = self.backoff(attempt);
        if Instant::now() + pause >= replay.deadline {
            self.skipped(method, "deadline");
            return Next::WaitOutDeadline;
        }
        if !self.budget.withdraw() {
            self.skipped(method, "budget");
            return Next::GiveUp;
        }
        tracing::debug!(upstream = %self.upstream, method, reason, attempt, ?pause, "retrying the call");
        metrics::counter!(
            "protogate_upstream_retries_total",
            "upstream" => self.upstream.to_string(),
            "method" => method.to_string(),
            "reason" => reason,
        )
        .increment(1);
        Next::Retry(pause)
    }

    /// The metrics `reason` of a failure worth retrying (`unreachable`
    /// below gRPC, else the code's name in lower case); `None` otherwise.
    /// The call's own deadline passing is never retried.
    fn retryable(&self, error: &GatewayError) -> Option<&'static str> {
        match error {
            GatewayError::UpstreamUnavailable(_) if self.codes.contains(&Code::Unavailable) => {
                Some("unreachable")
            }
            GatewayError::Upstream(s) if self.codes.contains(&s.code()) => {
                Some(crate::status::code_label(s.code()))
            }
            _ => None,
        }
    }

    /// The pause before retry number `retry` (1 for the first): full
    /// jitter, uniform between zero and `initial_backoff · 2^(retry-1)`,
    /// capped at `max_backoff`.
    fn backoff(&self, retry: u32) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1));
        let ceiling = self
            .initial_backoff
            .checked_mul(doubling)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random_up_to(nanos))
    }

    /// Counts a retryable failure that was passed on.
    fn skipped(&self, method: &str, why: &'static str) {
        tracing::debug!(upstream = %self.upstream, method, why, "not retrying the call");
        metrics::counter!(
            "protogate_upstream_retries_skipped_total",
            "upstream" => self.upstream.to_string(),
            "method" => method.to_string(),
            "reason" => why,
        )
        .increment(1);
    }
}

/// One attempt. A unary response is held until its first event, so that
/// one ending in an error before its message can be retried.
async fn try_once(inner: &dyn Backend, replay: &Replay) -> Result<CallResponse, Failure> {
    let response = inner.call(replay.call()).await.map_err(|error| Failure {
        error,
        headers: None,
    })?;
    if replay.method.is_server_streaming() {
        return Ok(response);
    }
    let CallResponse {
        metadata,
        mut events,
    } = response;
    match events.next().await {
        Some(Err(error)) => Err(Failure {
            error,
            headers: Some(metadata),
        }),
        first => Ok(CallResponse {
            metadata,
            events: futures_util::stream::iter(first).chain(events).boxed(),
        }),
    }
}

/// A random number in `0..=max`: jitter needs spread, not secrecy.
fn random_up_to(max: u64) -> u64 {
    fastrand::u64(0..=max)
}

#[cfg(test)]
mod tests;
