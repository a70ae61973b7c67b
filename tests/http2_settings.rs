//! HTTP/2 settings take effect on the wire: the listener advertises
//! `limits.http2`'s concurrent-stream limit and flow-control windows to a
//! raw h2 client; an upstream sees `upstreams.<name>.http2`'s windows; the
//! upstream keepalive PING timeout fails calls to an upstream that went
//! silent after its handshake (503, long before the call's deadline), and
//! `connect_timeout` bounds a TLS handshake that never completes. Every
//! peer is on loopback; assertions are on outcomes, never on exact timing.

mod common;

use std::future::poll_fn;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The longest any single wait below may take before the test fails.
const BOUND: Duration = Duration::from_secs(15);

/// A REST call the bundled descriptors route (GetShelf).
const SHELF: &str = "/v1/shelves/1";

async fn get(url: String) -> Reply {
    let client = reqwest::Client::new();
    let resp = tokio::time::timeout(BOUND, client.get(url).send())
        .await
        .expect("the gateway answers within the bound")
        .unwrap();
    Reply::from(resp).await
}

/// Waits until `stream`'s send capacity (what the peer's windows allow) is
/// `want`; returns the last capacity seen (so a wrong value shows).
async fn capacity_reaches(stream: &mut h2::SendStream<Bytes>, want: usize) -> usize {
    stream.reserve_capacity(64 << 20);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while stream.capacity() < want {
        let more = tokio::time::timeout_at(deadline, poll_fn(|cx| stream.poll_capacity(cx))).await;
        match more {
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    stream.capacity()
}

// ------------------------------------------------------------ the listener

/// What the listener advertised: SETTINGS_MAX_CONCURRENT_STREAMS, and the
/// capacity of a new request stream (the smaller of its stream window and
/// the connection window).
async fn listener_advertises(limits_http2: &str, want_capacity: usize) -> usize {
    let yaml = format!("mock: {{enabled: true}}\nlimits:\n  http2: {limits_http2}\n");
    let (gw, _) = common::start_gateway(&yaml, None).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (client, conn) = h2::client::Builder::new()
        .max_send_buffer_size(64 << 20)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    // One whole exchange first: the server's SETTINGS (and its connection
    // WINDOW_UPDATE) have arrived once its answer has.
    let req = http::Request::get(format!("http://{}/v1/shelves", gw.addr))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let max_streams = client.current_max_send_streams();
    // A request body not yet sent: its capacity is the advertised window.
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post(format!("http://{}/v1/shelves", gw.addr))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (_resp, mut body) = client.send_request(req, false).unwrap();
    let capacity = capacity_reaches(&mut body, want_capacity).await;
    assert_eq!(
        capacity, want_capacity,
        "request stream capacity with limits.http2 = {limits_http2}"
    );
    max_streams
}

#[tokio::test]
async fn listener_advertises_the_configured_streams_and_windows() {
    // Stream window below the connection window: the stream's shows.
    let streams = listener_advertises(
        "{max_concurrent_streams: 7, initial_stream_window: 100000, initial_connection_window: 300000}",
        100_000,
    )
    .await;
    assert_eq!(streams, 7);
    // Connection window below the stream window: the connection's shows.
    let streams = listener_advertises(
        "{initial_stream_window: 300000, initial_connection_window: 150000}",
        150_000,
    )
    .await;
    assert_eq!(streams, 200, "the default");
}

#[tokio::test]
async fn listener_defaults_are_the_documented_ones() {
    let streams = listener_advertises("{}", 1 << 20).await;
    assert_eq!(streams, 200);
}

// ------------------------------------------------------------- upstreams

/// A fake gRPC upstream (h2c) that reports the send capacity of each
/// response stream (what the gateway's windows allow) until `done`, then
/// ends the call with NOT_FOUND.
struct WindowProbe {
    addr: SocketAddr,
    seen: watch::Receiver<usize>,
    done: watch::Sender<bool>,
}

async fn window_probe() -> WindowProbe {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen) = watch::channel(0usize);
    let (done, done_rx) = watch::channel(false);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (seen_tx, done_rx) = (seen_tx.clone(), done_rx.clone());
            tokio::spawn(async move {
                let mut conn = h2::server::Builder::new()
                    .max_send_buffer_size(64 << 20)
                    .handshake::<_, Bytes>(tcp)
                    .await
                    .unwrap();
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    let (seen_tx, mut done_rx) = (seen_tx.clone(), done_rx.clone());
                    tokio::spawn(async move {
                        let head = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let mut send = respond.send_response(head, false).unwrap();
                        send.reserve_capacity(64 << 20);
                        seen_tx.send_replace(send.capacity());
                        loop {
                            tokio::select! {
                                more = poll_fn(|cx| send.poll_capacity(cx)) => match more {
                                    Some(Ok(_)) => { seen_tx.send_replace(send.capacity()); }
                                    _ => return,
                                },
                                _ = done_rx.wait_for(|d| *d) => break,
                            }
                        }
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", "5".parse().unwrap());
                        trailers.insert("grpc-message", "probed".parse().unwrap());
                        let _ = send.send_trailers(trailers);
                    });
                }
            });
        }
    });
    WindowProbe { addr, seen, done }
}

/// The capacity the upstream sees on a call through a gateway whose
/// upstream has `http2` settings.
async fn upstream_sees(http2: &str, want: usize) -> usize {
    let mut probe = window_probe().await;
    let yaml = format!(
        "upstreams:\n  lib:\n    url: http://{}\n    http2: {http2}\n",
        probe.addr
    );
    let (gw, _) = common::start_gateway(&yaml, None).await;
    let call = tokio::spawn(get(format!("{}{SHELF}", gw.url())));
    let seen = tokio::time::timeout(Duration::from_secs(5), probe.seen.wait_for(|c| *c >= want))
        .await
        .map(|c| *c.unwrap())
        .unwrap_or_else(|_| *probe.seen.borrow());
    probe.done.send_replace(true);
    let reply = call.await.unwrap();
    reply.assert_error(404, 5);
    seen
}

#[tokio::test]
async fn upstream_connections_use_the_configured_windows() {
    assert_eq!(
        upstream_sees("{initial_stream_window: 100000}", 100_000).await,
        100_000
    );
    assert_eq!(
        upstream_sees(
            "{initial_stream_window: 300000, initial_connection_window: 150000}",
            150_000
        )
        .await,
        150_000
    );
    assert_eq!(upstream_sees("{}", 2 << 20).await, 2 << 20, "the default");
}

/// An upstream that completes the HTTP/2 handshake (its SETTINGS and the
/// ACK of the client's) on every connection, then reads and writes
/// nothing more: PINGs go unanswered, calls hang.
async fn silent_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            // The client preface (24 bytes) and its SETTINGS frame.
            let mut preface = [0u8; 24 + 9];
            if tcp.read_exact(&mut preface).await.is_err() {
                continue;
            }
            let len = usize::from(preface[24]) << 16
                | usize::from(preface[25]) << 8
                | usize::from(preface[26]);
            let mut payload = vec![0u8; len];
            let _ = tcp.read_exact(&mut payload).await;
            // Empty SETTINGS, then SETTINGS with ACK.
            let _ = tcp
                .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0])
                .await;
            held.push(tcp);
        }
    });
    addr
}

#[tokio::test]
async fn keepalive_timeout_fails_calls_to_a_silent_upstream() {
    let addr = silent_upstream().await;
    // Pings every 100ms, unanswered for 200ms: the connection is given up
    // and the call fails as unreachable, long before its 10s deadline.
    let yaml = format!(
        "limits: {{default_timeout: 10s}}\nupstreams:\n  lib:\n    url: http://{addr}\n    \
         http2: {{keepalive_interval: 100ms, keepalive_timeout: 200ms}}\n"
    );
    let (gw, _) = common::start_gateway(&yaml, None).await;
    let reply = get(format!("{}{SHELF}", gw.url())).await;
    reply.assert_error(503, 14);

    // Without pings the same upstream holds the call to its deadline.
    let yaml = format!(
        "limits: {{default_timeout: 1s}}\nupstreams:\n  lib:\n    url: http://{addr}\n    \
         http2: {{keepalive_interval: 0s}}\n"
    );
    let (gw, _) = common::start_gateway(&yaml, None).await;
    let reply = get(format!("{}{SHELF}", gw.url())).await;
    reply.assert_error(504, 4);
}

/// A TCP server that accepts connections and never says a word: a TLS
/// client waits for its ServerHello forever.
async fn mute_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

#[tokio::test]
async fn connect_timeout_bounds_a_handshake_that_never_completes() {
    let addr = mute_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, common::certs::Ca::new("http2 test CA").pem()).unwrap();
    let upstream = |http2: &str| {
        format!(
            "upstreams:\n  lib:\n    url: https://{addr}\n    tls: {{ca: {}}}\n    http2: {http2}\n",
            ca.display()
        )
    };
    // Connecting (TCP, TLS, HTTP/2) is given up after 300ms: 503, well
    // before the 10s deadline.
    let yaml = format!(
        "limits: {{default_timeout: 10s}}\n{}",
        upstream("{connect_timeout: 300ms}")
    );
    let (gw, _) = common::start_gateway(&yaml, None).await;
    get(format!("{}{SHELF}", gw.url()))
        .await
        .assert_error(503, 14);

    // A connect timeout longer than the deadline: the deadline ends the call.
    let yaml = format!(
        "limits: {{default_timeout: 1s}}\n{}",
        upstream("{connect_timeout: 60s}")
    );
    let (gw, _) = common::start_gateway(&yaml, None).await;
    get(format!("{}{SHELF}", gw.url()))
        .await
        .assert_error(504, 4);
}
