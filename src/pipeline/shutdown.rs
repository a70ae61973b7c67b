//! The end of the drain as calls see it: one signal that ends every call
//! still open when the drain's grace period is over, and the count of calls
//! open, so the process knows when none is left.
//!
//! The server puts a [`Shutdown`] in every request's extensions; the
//! [`Exchange`](super::Exchange) holds an [`OpenCall`] while the request
//! lives and ends its response stream with
//! [`GatewayError::ShuttingDown`](crate::status::GatewayError::ShuttingDown)
//! once [`Shutdown::cut`] is called. Per call that costs an `Arc` clone and
//! two atomic adds; per message, one relaxed load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The drain's cut and the calls open (see the module docs). Clones share
/// one state.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<State>);

#[derive(Debug, Default)]
struct State {
    cut: AtomicBool,
    notify: Notify,
    open: AtomicUsize,
}

impl Shutdown {
    /// Ends every call still open (and any that starts later) with
    /// UNAVAILABLE "the gateway is shutting down".
    pub fn cut(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }

    /// Whether [`cut`](Self::cut) was called.
    pub fn is_cut(&self) -> bool {
        // Relaxed: the flag guards no other data, and it is read per message.
        self.0.cut.load(Ordering::Relaxed)
    }

    /// Resolves once [`cut`](Self::cut) is called (at once if it was).
    pub async fn until_cut(&self) {
        // Created before the check: a cut in between still wakes it.
        let notified = self.0.notify.notified();
        if self.0.cut.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// Counts one call open until the returned guard is dropped.
    pub fn hold(&self) -> OpenCall {
        self.0.open.fetch_add(1, Ordering::Relaxed);
        OpenCall(self.clone())
    }

    /// Calls open now.
    pub fn open_calls(&self) -> usize {
        self.0.open.load(Ordering::Acquire)
    }

    /// Resolves once no call is open. Polled: it only runs at the end of a
    /// drain, where a few checks a second cost nothing.
    pub async fn calls_ended(&self) {
        while self.open_calls() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One call counted open by its [`Shutdown`] until dropped.
#[derive(Debug)]
pub struct OpenCall(Shutdown);

impl OpenCall {
    /// The shutdown this call is counted by.
    pub fn shutdown(&self) -> &Shutdown {
        &self.0
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        (self.0).0.open.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cut_wakes_waiters_and_later_ones() {
        let s = Shutdown::default();
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.until_cut().await }
        });
        tokio::task::yield_now().await;
        assert!(!s.is_cut());
        s.cut();
        waiting.await.unwrap();
        assert!(s.is_cut());
        // After the cut, a new wait resolves at once.
        s.until_cut().await;
    }

    #[tokio::test]
    async fn counts_calls_open() {
        let s = Shutdown::default();
        let (a, b) = (s.hold(), s.hold());
        assert_eq!(s.open_calls(), 2);
        assert_eq!(a.shutdown().open_calls(), 2);
        drop(a);
        drop(b);
        assert_eq!(s.open_calls(), 0);
        s.calls_ended().await;
    }
}
