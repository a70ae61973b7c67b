//! Thread per core: the main listener served by N threads, each running its
//! own single-threaded runtime and accepting on its own socket bound to the
//! same address (`SO_REUSEPORT`: the kernel spreads new connections over
//! them). A request, its connection and the upstream connection it calls
//! on are then driven by one thread, which never wakes another: the
//! upstream pool keeps each thread's connections apart ([`current`]).
//!
//! On the 2-core bench machine, where the gateway shares its cores with the
//! backend and the load generator, one runtime with two worker threads cost
//! 9–26% more CPU per request than two of these threads: cross-thread
//! wake-ups, work-stealing and a contended HTTP/2 connection lock.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

use super::conn::{ListenerLimits, connection_slots};
use super::tls::TlsListener;
use crate::live::Live;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// The serving thread the caller runs on, from 1; 0 off the serving threads
/// (the main runtime: loading, admin, background work; and every test that
/// serves in process).
pub fn current() -> usize {
    SHARD.with(Cell::get)
}

/// The backlog of each socket, as std's and tokio's own `bind` use.
const BACKLOG: u32 = 1024;

/// `n` listening sockets on `addr` (port 0: the first picks the port, the
/// others share it). Call it within a runtime (tokio's `listen` registers
/// the socket; each serving thread registers it again with its own).
pub fn bind(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(n);
    let mut at = addr;
    for _ in 0..n.max(1) {
        let socket = if at.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        socket.set_reuseport(true)?;
        socket.bind(at)?;
        let listener = socket.listen(BACKLOG)?;
        at = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// Serves the main listener on one thread per socket of `listeners` until
/// the gateway stops, then lets each thread's calls end (see
/// [`super::until_drained`]); resolves when every thread is done.
pub async fn serve(
    listeners: Vec<std::net::TcpListener>,
    live: Arc<Live>,
    tls: Option<Arc<TlsListener>>,
) -> io::Result<()> {
    // One connection limit for the address, whichever socket accepts.
    let slots = connection_slots(&ListenerLimits::from(&live.current().config.limits));
    let mut done = Vec::with_capacity(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        let (live, tls, slots) = (live.clone(), tls.clone(), slots.clone());
        std::thread::Builder::new()
            .name(format!("protogate-serve-{}", i + 1))
            .spawn(move || {
                SHARD.with(|s| s.set(i + 1));
                let _ = tx.send(run_one(listener, live, tls, slots));
            })?;
        done.push(rx);
    }
    let mut result = Ok(());
    for rx in done {
        let ended = rx
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a serving thread panicked")));
        if result.is_ok() {
            result = ended;
        }
    }
    result
}

/// One serving thread: its runtime lives until its calls have ended.
fn run_one(
    listener: std::net::TcpListener,
    live: Arc<Live>,
    tls: Option<Arc<TlsListener>>,
    slots: Arc<tokio::sync::Semaphore>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let stop = super::stopped(live.clone());
        let served = super::serve_sharing(listener, live.clone(), tls, slots, stop);
        super::until_drained(live, served).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sockets_share_one_port() {
        let listeners = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports.len(), 3);
        assert!(
            ports[0] != 0 && ports.iter().all(|p| *p == ports[0]),
            "{ports:?}"
        );
        // Another process (or a socket without SO_REUSEPORT) cannot join.
        assert!(std::net::TcpListener::bind(listeners[0].local_addr().unwrap()).is_err());
    }

    #[test]
    fn threads_off_the_shards_are_shard_zero() {
        assert_eq!(current(), 0);
        let seen = std::thread::spawn(|| {
            SHARD.with(|s| s.set(2));
            current()
        });
        assert_eq!(seen.join().unwrap(), 2);
        assert_eq!(current(), 0);
    }
}
