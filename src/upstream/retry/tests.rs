use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::stream;

use super::*;
use crate::call::CallEvent;
use crate::config::{RetryBudget, RetryCode};

/// What the scripted backend does on one attempt.
#[derive(Clone, Copy)]
enum Step {
    Ok,
    /// A trailers-only status: `Backend::call` fails.
    Status(Code),
    /// The connection failed below gRPC.
    Unreachable,
    /// Response headers, then a status before any message.
    StatusAfterHeaders(Code),
    /// One message, then a status.
    MessageThenStatus(Code),
}

/// A backend that plays `steps` in turn (the last one repeats) and counts
/// its attempts.
struct Scripted {
    steps: Vec<Step>,
    attempts: AtomicUsize,
}

impl Scripted {
    fn new(steps: &[Step]) -> Arc<Scripted> {
        Arc::new(Scripted {
            steps: steps.to_vec(),
            attempts: AtomicUsize::new(0),
        })
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

fn events(items: Vec<Result<CallEvent, GatewayError>>) -> CallResponse {
    CallResponse {
        metadata: MetadataMap::new(),
        events: stream::iter(items).boxed(),
    }
}

fn status(code: Code) -> GatewayError {
    GatewayError::Upstream(tonic::Status::new(code, "scripted"))
}

impl Backend for Scripted {
    fn call(&self, mut call: Call) -> BoxFuture<'static, Result<CallResponse, GatewayError>> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        let step = self.steps[n.min(self.steps.len() - 1)];
        Box::pin(async move {
            let request = call.requests.next().await;
            assert!(matches!(request, Some(Ok(ref m)) if &m[..] == b"request"));
            assert!(
                call.requests.next().await.is_none(),
                "one message per attempt"
            );
            let message = || Ok(CallEvent::Message(Bytes::from_static(b"reply")));
            let trailers = || Ok(CallEvent::Trailers(MetadataMap::new()));
            match step {
                Step::Ok => Ok(events(vec![message(), trailers()])),
                Step::Status(c) => Err(status(c)),
                Step::Unreachable => Err(GatewayError::UpstreamUnavailable("refused".into())),
                Step::StatusAfterHeaders(c) => Ok(events(vec![Err(status(c))])),
                Step::MessageThenStatus(c) => Ok(events(vec![message(), Err(status(c))])),
            }
        })
    }
}

fn pool() -> DescriptorPool {
    crate::descriptors::load(&["descriptors".into()])
        .expect("bundled descriptors")
        .pool
}

fn method(pool: &DescriptorPool, name: &str) -> MethodDescriptor {
    pool.get_service_by_name("library.v1.LibraryService")
        .and_then(|s| s.methods().find(|m| m.name() == name))
        .expect("method of the bundled API")
}

/// Quick backoffs, a budget that never runs out.
fn config() -> RetryConfig {
    RetryConfig {
        initial_backoff: crate::config::ConfigDuration(Duration::from_millis(1)),
        max_backoff: crate::config::ConfigDuration(Duration::from_millis(2)),
        budget: RetryBudget {
            ratio: 1.0,
            min_per_second: 1000,
        },
        ..RetryConfig::default()
    }
}

fn retrying(inner: &Arc<Scripted>, config: &RetryConfig) -> RetryBackend {
    let inner: Arc<dyn Backend> = inner.clone();
    RetryBackend::new(inner, "lib", config, &pool()).expect("valid policy")
}

async fn call(
    backend: &RetryBackend,
    name: &str,
    within: Duration,
) -> Result<CallResponse, GatewayError> {
    let m = method(&pool(), name);
    let path = crate::call::grpc_path(&m);
    let deadline = Instant::now() + within;
    let call = Call::new(
        m,
        path,
        MetadataMap::new(),
        single(Bytes::from_static(b"request")),
        deadline,
    );
    backend.call(call).await
}

/// The call's final code: OK, or the first error's.
async fn code(result: Result<CallResponse, GatewayError>) -> Code {
    let response = match result {
        Ok(r) => r,
        Err(e) => return e.code(),
    };
    let mut events = response.events;
    while let Some(e) = events.next().await {
        if let Err(e) = e {
            return e.code();
        }
    }
    Code::Ok
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn retry_idempotent_method_until_success() {
    use Step::*;
    let inner = Scripted::new(&[Status(Code::Unavailable), Unreachable, Ok]);
    let backend = retrying(&inner, &config());
    assert_eq!(
        code(call(&backend, "GetShelf", SECOND).await).await,
        Code::Ok
    );
    assert_eq!(inner.attempts(), 3);
}

#[tokio::test]
async fn retry_stops_at_max_attempts() {
    let inner = Scripted::new(&[Step::Status(Code::Unavailable)]);
    let backend = retrying(&inner, &config());
    let result = call(&backend, "GetBook", SECOND).await;
    assert_eq!(code(result).await, Code::Unavailable);
    assert_eq!(inner.attempts(), 3);
}

#[tokio::test]
async fn retry_skips_methods_not_declared_or_listed() {
    let inner = Scripted::new(&[Step::Status(Code::Unavailable), Step::Ok]);
    let backend = retrying(&inner, &config());
    for name in ["CreateShelf", "GetShelfStats"] {
        assert!(!backend.retries(&method(&pool(), name)), "{name}");
    }
    let result = call(&backend, "CreateShelf", SECOND).await;
    assert_eq!(code(result).await, Code::Unavailable);
    assert_eq!(inner.attempts(), 1);
}

#[tokio::test]
async fn retry_listed_methods() {
    let inner = Scripted::new(&[Step::Status(Code::Unavailable), Step::Ok]);
    let listed = RetryConfig {
        methods: vec!["library.v1.LibraryService.GetShelfStats".into()],
        ..config()
    };
    let backend = retrying(&inner, &listed);
    assert_eq!(
        code(call(&backend, "GetShelfStats", SECOND).await).await,
        Code::Ok
    );
    assert_eq!(inner.attempts(), 2);
    assert!(!backend.retries(&method(&pool(), "CreateShelf")));
    let all = RetryConfig {
        methods: vec!["library.v1.LibraryService.*".into()],
        ..config()
    };
    let backend = retrying(&inner, &all);
    let p = pool();
    assert!(backend.retries(&method(&p, "CreateShelf")));
    assert!(backend.retries(&method(&p, "StreamBooks")));
    // Client-streaming and bidi methods cannot be replayed, even when selected.
    for name in ["ImportBooks", "UploadBook", "Discuss"] {
        assert!(!backend.retries(&method(&p, name)), "{name}");
    }
}

#[test]
fn retry_selectors_must_name_something_replayable() {
    let cases = [
        ("library.v1.LibraryService.Nope", "names no method"),
        ("library.v1.Nope.*", "names no method"),
        ("library.v1.LibraryService.ImportBooks", "client-streaming"),
    ];
    for (selector, expected) in cases {
        let config = RetryConfig {
            methods: vec![selector.into()],
            ..config()
        };
        let inner: Arc<dyn Backend> = Scripted::new(&[Step::Ok]);
        let error = RetryBackend::new(inner, "lib", &config, &pool())
            .err()
            .expect(selector);
        assert!(error.to_string().contains(expected), "{selector}: {error}");
        assert_eq!(error.field(), ".methods");
    }
}

#[test]
fn retry_refuses_invalid_settings() {
    let config = RetryConfig {
        max_attempts: 0,
        ..config()
    };
    let inner: Arc<dyn Backend> = Scripted::new(&[Step::Ok]);
    let error = RetryBackend::new(inner, "lib", &config, &pool())
        .err()
        .expect("refused");
    assert!(error.to_string().contains("retry.max_attempts"), "{error}");
}

#[tokio::test]
async fn retry_only_configured_codes() {
    let inner = Scripted::new(&[Step::Status(Code::Internal), Step::Ok]);
    let backend = retrying(&inner, &config());
    assert_eq!(
        code(call(&backend, "GetShelf", SECOND).await).await,
        Code::Internal
    );
    assert_eq!(inner.attempts(), 1);

    let aborted = RetryConfig {
        codes: vec![RetryCode(Code::Aborted)],
        ..config()
    };
    let inner = Scripted::new(&[Step::Status(Code::Aborted), Step::Ok]);
    let backend = retrying(&inner, &aborted);
    assert_eq!(
        code(call(&backend, "GetShelf", SECOND).await).await,
        Code::Ok
    );
    assert_eq!(inner.attempts(), 2);
    // A connection failure is UNAVAILABLE, which this policy does not list.
    let inner = Scripted::new(&[Step::Unreachable, Step::Ok]);
    let backend = retrying(&inner, &aborted);
    assert_eq!(
        code(call(&backend, "GetShelf", SECOND).await).await,
        Code::Unavailable
    );
    assert_eq!(inner.attempts(), 1);
}

#[tokio::test]
async fn retry_never_the_calls_own_deadline() {
    let with_deadlines = RetryConfig {
        codes: vec![RetryCode(Code::DeadlineExceeded)],
        ..config()
    };
    let backend = retrying(&Scripted::new(&[Step::Ok]), &with_deadlines);
    let own = GatewayError::DeadlineExceeded(SECOND);
    assert_eq!(backend.policy.retryable(&own), None);
    let upstreams = status(Code::DeadlineExceeded);
    assert_eq!(
        backend.policy.retryable(&upstreams),
        Some("deadline_exceeded")
    );
}

#[tokio::test]
async fn retry_unary_error_before_its_message() {
    let inner = Scripted::new(&[Step::StatusAfterHeaders(Code::Unavailable), Step::Ok]);
    let backend = retrying(&inner, &config());
    assert_eq!(
        code(call(&backend, "GetShelf", SECOND).await).await,
        Code::Ok
    );
    assert_eq!(inner.attempts(), 2);
    // Given up: the error comes after the headers, as it did upstream.
    let inner = Scripted::new(&[Step::StatusAfterHeaders(Code::Internal)]);
    let backend = retrying(&inner, &config());
    let response = call(&backend, "GetShelf", SECOND).await;
    assert!(response.is_ok(), "headers were received");
    assert_eq!(code(response).await, Code::Internal);
    assert_eq!(inner.attempts(), 1);
}

#[tokio::test]
async fn retry_server_stream_only_before_headers() {
    let listed = RetryConfig {
        methods: vec!["library.v1.LibraryService.StreamBooks".into()],
        ..config()
    };
    let inner = Scripted::new(&[Step::Status(Code::Unavailable), Step::Ok]);
    let backend = retrying(&inner, &listed);
    assert_eq!(
        code(call(&backend, "StreamBooks", SECOND).await).await,
        Code::Ok
    );
    assert_eq!(inner.attempts(), 2);
    for step in [
        Step::MessageThenStatus(Code::Unavailable),
        Step::StatusAfterHeaders(Code::Unavailable),
    ] {
        let inner = Scripted::new(&[step, Step::Ok]);
        let backend = retrying(&inner, &listed);
        let result = call(&backend, "StreamBooks", SECOND).await;
        assert_eq!(code(result).await, Code::Unavailable);
        assert_eq!(inner.attempts(), 1);
    }
}

#[tokio::test]
async fn retry_waits_out_a_deadline_the_backoff_would_pass() {
    let slow = RetryConfig {
        initial_backoff: crate::config::ConfigDuration(Duration::from_secs(3600)),
        max_backoff: crate::config::ConfigDuration(Duration::from_secs(3600)),
        ..config()
    };
    let inner = Scripted::new(&[Step::Status(Code::Unavailable)]);
    let backend = retrying(&inner, &slow);
    let started = Instant::now();
    let within = Duration::from_millis(50);
    let result = call(&backend, "GetShelf", within).await;
    assert_eq!(code(result).await, Code::Unavailable);
    assert!(started.elapsed() >= within, "returned at the deadline");
    assert_eq!(inner.attempts(), 1);
}

#[tokio::test]
async fn retry_budget_bounds_retries() {
    let budgeted = RetryConfig {
        budget: RetryBudget {
            ratio: 0.2,
            min_per_second: 0,
        },
        ..config()
    };
    let inner = Scripted::new(&[Step::Status(Code::Unavailable)]);
    let backend = retrying(&inner, &budgeted);
    let calls = 100;
    for _ in 0..calls {
        let _ = call(&backend, "GetShelf", SECOND).await;
    }
    let retries = inner.attempts() - calls;
    assert!(retries > 0, "some retries");
    assert!(retries <= calls / 5, "{retries} retries for {calls} calls");
}

#[test]
fn retry_backoff_is_full_jitter_under_the_ceiling() {
    let backend = retrying(
        &Scripted::new(&[Step::Ok]),
        &RetryConfig {
            initial_backoff: crate::config::ConfigDuration(Duration::from_millis(25)),
            max_backoff: crate::config::ConfigDuration(Duration::from_millis(250)),
            ..config()
        },
    );
    for (retry, ceiling) in [(1, 25), (2, 50), (3, 100), (4, 200), (5, 250), (40, 250)] {
        let ceiling = Duration::from_millis(ceiling);
        let pauses: Vec<Duration> = (0..500).map(|_| backend.policy.backoff(retry)).collect();
        assert!(pauses.iter().all(|p| *p <= ceiling), "retry {retry}");
        let low = pauses.iter().filter(|p| **p < ceiling / 2).count();
        assert!(
            (150..350).contains(&low),
            "retry {retry}: {low} of 500 below half"
        );
    }
}
