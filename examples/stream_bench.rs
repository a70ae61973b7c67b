//! The client side of `bench/stream.sh`: measures one server stream's
//! message rate (directly over gRPC, or through the gateway as NDJSON or
//! SSE), or holds many idle SSE streams open.
//!
//! ```text
//! stream_bench rate grpc   http://127.0.0.1:50051 1000000
//! stream_bench rate ndjson http://127.0.0.1:8080  1000000
//! stream_bench rate sse    http://127.0.0.1:8080  1000000
//! stream_bench idle        127.0.0.1:8080 10000 SECONDS
//! ```
//!
//! `rate` streams StreamBooks over shelves/1 (3 books) repeated until at
//! least N messages, counts them as they arrive and prints
//! `messages=<n> seconds=<s> rate=<msgs/s>`. `idle` opens N SSE streams of
//! a shelf whose books come an hour apart, waits until every stream has its
//! first event, prints `ready streams=<n>`, and holds them for SECONDS.

#[path = "library_server/backend.rs"]
mod backend;

use std::time::{Duration, Instant};

use backend::pb::library::v1::StreamBooksRequest;
use backend::pb::library::v1::library_service_client::LibraryServiceClient;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["rate", how, url, n] => rate(how, url, n.parse()?).await,
        ["idle", addr, n, secs] => idle(addr, n.parse()?, secs.parse()?).await,
        ["conns", addr, n, secs] => conns(addr, n.parse()?, secs.parse()?).await,
        ["kept", addr, n, secs] => kept(addr, n.parse()?, secs.parse()?).await,
        _ => Err(
            "usage: stream_bench rate grpc|ndjson|sse URL N | idle|conns|kept HOST:PORT N SECONDS"
                .into(),
        ),
    }
}

async fn rate(how: &str, url: &str, n: usize) -> Result<(), Error> {
    let repeat = n.div_ceil(3);
    let started = Instant::now();
    let count = match how {
        "grpc" => {
            let mut client = LibraryServiceClient::connect(url.to_string()).await?;
            let mut stream = client
                .stream_books(StreamBooksRequest {
                    parent: "shelves/1".into(),
                    interval: None,
                    repeat: i32::try_from(repeat)?,
                })
                .await?
                .into_inner();
            let mut count = 0;
            while stream.message().await?.is_some() {
                count += 1;
            }
            count
        }
        "ndjson" | "sse" => {
            let alt = if how == "sse" { "&alt=sse" } else { "" };
            let resp = reqwest::get(format!(
                "{url}/v1/shelves/1/books:stream?repeat={repeat}{alt}"
            ))
            .await?;
            let sep: &[u8] = if how == "sse" { b"\n\n" } else { b"\n" };
            count_records(resp, sep).await?
        }
        other => return Err(format!("unknown transport {other}").into()),
    };
    let secs = started.elapsed().as_secs_f64();
    println!(
        "messages={count} seconds={secs:.3} rate={:.0}",
        count as f64 / secs
    );
    Ok(())
}

/// Records in a streamed body; an SSE `end` event is not a message.
async fn count_records(resp: reqwest::Response, sep: &[u8]) -> Result<usize, Error> {
    let mut body = resp.bytes_stream();
    let (mut count, mut carry) = (0usize, Vec::new());
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        carry.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(i) = carry[start..].windows(sep.len()).position(|w| w == sep) {
            if !carry[start..start + i].starts_with(b"event: end") {
                count += 1;
            }
            start += i + sep.len();
        }
        carry.drain(..start);
    }
    Ok(count)
}

/// Opens `n` connections that send nothing: the listener's cost alone.
async fn conns(addr: &str, n: usize, secs: u64) -> Result<(), Error> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        open.push(tokio::net::TcpStream::connect(addr).await?);
    }
    println!("ready streams={}", open.len());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Ok(())
}

/// Opens `n` keep-alive connections that each made one unary request and
/// read its answer: an idle HTTP/1.1 connection's cost, to subtract from a
/// stream's.
async fn kept(addr: &str, n: usize, secs: u64) -> Result<(), Error> {
    let request = format!("GET /v1/shelves/1 HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    hold(addr, &request, |seen| seen.ends_with(b"}"), n, secs).await
}

/// Opens `n` SSE streams that wait an hour between messages, and holds them
/// once their first event has arrived.
async fn idle(addr: &str, n: usize, secs: u64) -> Result<(), Error> {
    let request = format!(
        "GET /v1/shelves/1/books:stream?alt=sse&interval=3600s HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
    );
    hold(
        addr,
        &request,
        |seen| seen.windows(7).any(|w| w == b"\ndata: "),
        n,
        secs,
    )
    .await
}

/// Opens `n` connections, sends `request` on each, reads until `answered`
/// says enough has arrived, then holds them all for `secs`.
async fn hold(
    addr: &str,
    request: &str,
    answered: fn(&[u8]) -> bool,
    n: usize,
    secs: u64,
) -> Result<(), Error> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.write_all(request.as_bytes()).await?;
        open.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            while !answered(&seen) {
                let got = tcp.read(&mut buf).await?;
                if got == 0 {
                    return Err::<_, std::io::Error>(std::io::ErrorKind::UnexpectedEof.into());
                }
                seen.extend_from_slice(&buf[..got]);
            }
            Ok(tcp)
        }));
    }
    let mut held = Vec::with_capacity(n);
    for task in open {
        held.push(task.await??);
    }
    println!("ready streams={}", held.len());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Ok(())
}
