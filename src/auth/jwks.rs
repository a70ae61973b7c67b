//! A JWKS fetched over HTTP(S): first when a token needs it (so `protogate
//! check` and a snapshot that never serves fetch nothing), then on a timer,
//! and when a token names a `kid` the set lacks (key rotation), at most once
//! per `min_refresh_interval`. A failed fetch keeps the last good set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::keys::KeySet;
use crate::config::ProviderConfig;

/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// See the module docs.
pub struct RemoteJwks {
    provider: String,
    url: http::Uri,
    keys: ArcSwap<KeySet>,
    min_interval: Duration,
    refresh_interval: Duration,
    /// Whether the timer task runs (started by the first use).
    started: AtomicBool,
    /// Itself, for the timer task (which must not keep it alive).
    this: Weak<RemoteJwks>,
    /// When the last fetch started; held across a fetch, so that requests
    /// waiting on a rotation share one fetch.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl RemoteJwks {
    /// Keeps `url` fresh for provider `name`, from its first use on.
    pub fn start(name: &str, url: &str, config: &ProviderConfig) -> Result<Arc<Self>, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("jwks_url: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("jwks_url {url:?} is not an http(s) URL"));
        }
        Ok(Arc::new_cyclic(|this| RemoteJwks {
            provider: name.to_string(),
            url: uri,
            keys: ArcSwap::default(),
            min_interval: config.min_refresh_interval.0,
            refresh_interval: config.refresh_interval.0,
            started: AtomicBool::new(false),
            this: this.clone(),
            last_fetch: tokio::sync::Mutex::new(None),
        }))
    }

    /// The keys as of now (empty until the first fetch succeeds). The
    /// first call starts the timer that keeps them fresh.
    pub fn current(&self) -> Arc<KeySet> {
        if !self.started.swap(true, Ordering::Relaxed)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(keep_fresh(self.this.clone(), self.refresh_interval));
        }
        self.keys.load_full()
    }

    /// Fetches again because a token named a `kid` the set lacks, unless a
    /// fetch started within `min_refresh_interval` (then this waits for it
    /// if it is still running, and returns).
    pub async fn refresh_for_unknown_kid(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.fetch("unknown_kid").await;
    }

    /// Whether an unknown `kid` may cause a fetch now (no fetch within
    /// `min_refresh_interval`, or one still running).
    pub fn may_refresh(&self) -> bool {
        match self.last_fetch.try_lock() {
            Ok(last) => last.is_none_or(|t| t.elapsed() >= self.min_interval),
            Err(_) => true,
        }
    }

    async fn fetch(&self, cause: &'static str) {
        let result = match tokio::time::timeout(FETCH_TIMEOUT, self.get()).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}s", FETCH_TIMEOUT.as_secs())),
        };
        let outcome = match result {
            Ok(set) => {
                tracing::debug!(provider = %self.provider, keys = set.keys.len(), cause, "JWKS fetched");
                self.keys.store(Arc::new(set));
                "success"
            }
            Err(why) => {
                let kept = self.keys.load().keys.len();
                tracing::warn!(
                    provider = %self.provider,
                    url = %self.url,
                    "JWKS fetch failed ({why}); keeping the {kept} key(s) fetched before"
                );
                "failure"
            }
        };
        metrics::counter!(
            "protogate_jwks_fetches_total",
            "provider" => self.provider.clone(),
            "result" => outcome,
        )
        .increment(1);
    }

    async fn get(&self) -> Result<KeySet, String> {
        let client = client()?;
        let response = client
            .get(self.url.clone())
            .await
            .map_err(|e| format!("cannot fetch: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("answered HTTP {}", response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the document: {e}"))?
            .to_bytes();
        let set = KeySet::from_jwks(&body)?;
        if set.keys.is_empty() {
            return Err("the JWKS holds no usable signing key".into());
        }
        Ok(set)
    }
}

/// Fetches on a timer until the provider is dropped (a reload replaced
/// it). Until a fetch succeeds, retries every `min_refresh_interval`. A
/// fetch a token caused within `min_refresh_interval` counts as this one.
async fn keep_fresh(jwks: Weak<RemoteJwks>, every: Duration) {
    loop {
        let Some(j) = jwks.upgrade() else { return };
        {
            let mut last = j.last_fetch.lock().await;
            if last.is_none_or(|t| t.elapsed() >= j.min_interval) {
                *last = Some(Instant::now());
                j.fetch("timer").await;
            }
        }
        let wait = if j.keys.load().keys.is_empty() {
            j.min_interval.max(Duration::from_millis(100))
        } else {
            every
        };
        drop(j);
        tokio::time::sleep(wait).await;
    }
}

/// One HTTP(S) client for every provider, trusting the system's roots.
fn client() -> Result<&'static HttpsClient, String> {
    static CLIENT: OnceLock<Result<HttpsClient, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|e| format!("no trusted root certificates: {e}"))?
                .https_or_http()
                .enable_http1()
                .build();
            Ok(Client::builder(TokioExecutor::new()).build(https))
        })
        .as_ref()
        .map_err(Clone::clone)
}
