//! The binary's serving threads (`--worker-threads`, `server::shards`): each
//! accepts on its own socket of the one address and calls the upstream on
//! connections of its own. Seen from outside: every connection is served,
//! and the backend sees one upstream connection per serving thread.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::process::{KillOnDrop, listening_address};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `protogate serve --worker-threads N` in front of `upstream`.
fn gateway(threads: &str, upstream: &str) -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--worker-threads",
            threads,
        ])
        .args(["--upstream", upstream, "--watch", "false"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = listening_address(&mut lines);
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (KillOnDrop(child), addr)
}

/// One GetBook on a connection of its own (so from a port of its own,
/// which is what the kernel spreads over the sockets).
async fn get_on_new_connection(addr: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head =
        format!("GET /v1/shelves/1/books/1 HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.unwrap();
    reply
}

/// Established TCP connections to `port` from elsewhere on loopback, from
/// the kernel's table (the gateway is the backend's only client here).
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[2].ends_with(&remote) && cols[3] == "01"
        })
        .count()
}

/// 64 GetBooks, each on a new connection, through a gateway with
/// `threads` serving threads; the backend's connections from the gateway.
async fn upstream_connections(threads: &str) -> usize {
    let (backend, _) = common::start_backend().await;
    let (_gw, addr) = gateway(threads, &backend.url());
    // 64 connections over at most 3 sockets: one gets none with a chance
    // under 1e-10.
    for _ in 0..64 {
        let reply = get_on_new_connection(&addr).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("The Left Hand of Darkness"), "{reply}");
    }
    connections_to(backend.addr.port())
}

#[tokio::test]
async fn each_serving_thread_accepts_and_calls_on_its_own_connection() {
    // The main thread's readiness probe may hold one more, whatever the
    // number of serving threads.
    let one = upstream_connections("1").await;
    let three = upstream_connections("3").await;
    assert!((1..=2).contains(&one), "{one}");
    assert_eq!(three, one + 2);
}
