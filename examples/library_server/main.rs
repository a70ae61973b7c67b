//! A real gRPC backend for the bundled example API (`library.v1.LibraryService`),
//! for trying protogate by hand:
//!
//! ```text
//! cargo run --example library_server -- --listen 127.0.0.1:50051
//! cargo run -- serve --upstream http://127.0.0.1:50051
//! ```
//!
//! Once it listens it prints `library_server listening on <addr>` (the real
//! address, useful with port 0). It stops on Ctrl-C. Beside the library it
//! serves reflection and `grpc.health.v1.Health` (tonic-health: SERVING for
//! `""` and `library.v1.LibraryService`), which the gateway's `/readyz`
//! checks. See `backend.rs` for the behaviour, including the `x-echo-*`
//! metadata contract.

mod backend;

use std::net::SocketAddr;

use clap::Parser;
use tokio::net::TcpListener;

use backend::LibraryBackend;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(about = "Example gRPC backend for protogate: the library.v1 shelves-and-books API")]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,

    /// Start with an empty library instead of the sample shelves and books.
    #[arg(long)]
    no_sample_data: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    let backend = if args.no_sample_data {
        LibraryBackend::new()
    } else {
        LibraryBackend::with_sample_data()
    };
    println!("library_server listening on {}", listener.local_addr()?);
    backend::serve(listener, backend, async {
        // If the signal handler cannot be installed, serve until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await?;
    Ok(())
}
