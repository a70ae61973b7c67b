use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use protogate::cli::{Cli, Command, LogFormat};
use protogate::gateway::Gateway;
use protogate::{report, server};
use tracing_subscriber::EnvFilter;

// Every command runs inside the runtime: upstream channels are created (lazily
// connected) while the gateway loads.
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Routes(args) => match Gateway::load(&args.settings()) {
            Ok(gw) => {
                print!("{}", report::route_table(&gw));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => match Gateway::load(&args.settings()) {
            Ok(gw) => {
                println!("{}", report::summary(&gw));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}", report::problems(&e));
                ExitCode::FAILURE
            }
        },
        Command::Serve(args) => {
            let gw = match Gateway::load(&args.settings()) {
                Ok(gw) => Arc::new(gw),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            {
                let listener = match tokio::net::TcpListener::bind(args.listen).await {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("error: cannot listen on {}: {e}", args.listen);
                        return ExitCode::FAILURE;
                    }
                };
                let addr = listener.local_addr().unwrap_or(args.listen);
                if let Some(admin_addr) = args.admin_listen {
                    match tokio::net::TcpListener::bind(admin_addr).await {
                        Ok(l) => {
                            let local = l.local_addr().unwrap_or(admin_addr);
                            tracing::info!("admin endpoints on http://{local}/_protogate/");
                            tokio::spawn(server::serve_admin(
                                l,
                                gw.clone(),
                                server::shutdown_signal(),
                            ));
                        }
                        Err(e) => {
                            eprintln!("error: cannot listen on {admin_addr}: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                if let Some(m) = &gw.mock {
                    tracing::info!(
                        "mock mode ({m:?}): stubs at http://{addr}/_protogate/mock/stubs, unmatched requests at http://{addr}/_protogate/mock/unmatched"
                    );
                }
                if gw.backends.iter().all(Option::is_none) {
                    tracing::warn!(
                        "no upstream configured: every call will answer 503 (use --upstream or upstreams: in routes.yaml)"
                    );
                }
                tracing::info!(
                    routes = gw.routes().len(),
                    "protogate listening on http://{addr}"
                );
                match server::serve(listener, gw, server::shutdown_signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
