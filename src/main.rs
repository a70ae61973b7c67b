use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use protogate::cli::{Cli, Command, DocFormat, LogFormat, OpenapiArgs, ServeArgs};
use protogate::gateway::{Gateway, Resources};
use protogate::live::{self, Live};
use protogate::observe::log_writer::{self, BatchedWriter, FlushGuard};
use protogate::observe::trace::Otlp;
use protogate::pipeline::Hook;
use protogate::{report, server};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

// jemalloc, with a background thread purging freed pages after a second: a
// burst of large requests does not leave the process holding its peak.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol (the `_rjem_` prefix is
/// tikv-jemalloc-sys's); `MALLOC_CONF`-style text, NUL-terminated.
#[cfg(all(unix, not(target_env = "musl")))]
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static _rjem_malloc_conf: &[u8] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Loading, the admin listener and background work; requests are served
    // on threads of their own (`server::shards`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build();
    match runtime {
        // Every command runs inside the runtime: upstream channels are
        // created (lazily connected) while the gateway loads.
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    // Flushes buffered log lines when main returns.
    let _log_writer = init_logging(cli.log_format);
    let threads = serving_threads(&cli);
    match cli.command {
        Command::Routes(args) => match Gateway::load(&args.settings()).await {
            Ok(gw) => {
                print!("{}", report::route_table(&gw));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => match Gateway::load(&args.settings()).await {
            Ok(gw) => match report::skipped_problems(&gw) {
                // Rules `serve` would skip are problems too.
                Some(problems) => {
                    eprintln!("{problems}");
                    ExitCode::FAILURE
                }
                None => {
                    println!("{}", report::summary(&gw));
                    ExitCode::SUCCESS
                }
            },
            Err(e) => {
                eprintln!("{}", report::problems(&e));
                ExitCode::FAILURE
            }
        },
        Command::Openapi(args) => openapi(&args).await,
        Command::Serve(args) => match serve(args, threads).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `protogate openapi`: the document `serve` would answer at /openapi.json.
async fn openapi(args: &OpenapiArgs) -> ExitCode {
    let gw = match Gateway::load(&args.common.settings()).await {
        Ok(gw) => gw,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let doc = protogate::openapi::served(&gw);
    let text = match args.format {
        DocFormat::Json => Ok(doc.json()),
        DocFormat::Yaml => doc.yaml(),
    };
    match text {
        Ok(bytes) => {
            println!("{}", String::from_utf8_lossy(bytes).trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--worker-threads`, else one per core the process may use.
fn serving_threads(cli: &Cli) -> usize {
    cli.worker_threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, std::num::NonZeroUsize::get)
}

async fn serve(args: ServeArgs, threads: usize) -> Result<(), String> {
    if args.metrics {
        protogate::observe::metrics::install()?;
    }
    // No endpoint, no exporter and no tracing hook: tracing costs nothing.
    let otlp = match &args.otlp_endpoint {
        Some(endpoint) => {
            let otlp = Otlp::start(endpoint, &args.otlp_service_name)?;
            tracing::info!("tracing: spans exported over OTLP to {endpoint}");
            Some(otlp)
        }
        None => None,
    };
    let mut hooks: Vec<Arc<dyn Hook>> = Vec::new();
    // First, so that requests a later hook refuses are traced too.
    if let Some(otlp) = &otlp {
        hooks.push(Arc::new(otlp.hook()));
    }
    if args.metrics {
        hooks.push(Arc::new(protogate::observe::metrics::Metrics::default()));
    }
    if args.access_log {
        hooks.push(Arc::new(protogate::observe::access::AccessLog));
    }
    let forward = server::tls::ForwardPeer::new(
        args.tls.tls_forward_subject.as_deref(),
        args.tls.tls_forward_sans.as_deref(),
    )?;
    if !forward.is_empty() {
        hooks.push(Arc::new(forward));
    }
    let served = serve_with(args, hooks, threads).await;
    // Exports the spans still queued, whichever way serving ended.
    if let Some(otlp) = otlp
        && let Err(e) = otlp.shutdown().await
    {
        tracing::warn!("OTLP: the last spans were not exported: {e}");
    }
    served
}

/// Serves with `hooks` until a shutdown signal.
async fn serve_with(
    args: ServeArgs,
    hooks: Vec<Arc<dyn Hook>>,
    threads: usize,
) -> Result<(), String> {
    let live = Live::load(args.settings(), Arc::new(Resources::with_hooks(hooks)))
        .await
        .map_err(|e| e.to_string())?;
    let tls = match args.tls.settings() {
        Some(s) => Some(server::tls::TlsListener::load(s).map_err(|e| e.to_string())?),
        None => None,
    };
    let listeners = server::shards::bind(args.listen, threads)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(args.listen);
    if let Some(admin_addr) = args.admin_listen {
        let l = tokio::net::TcpListener::bind(admin_addr)
            .await
            .map_err(|e| format!("cannot listen on {admin_addr}: {e}"))?;
        let local = l.local_addr().unwrap_or(admin_addr);
        tracing::info!(
            "admin endpoints on http://{local}/_protogate/ (reload), /metrics, /healthz, /readyz"
        );
        // Stops with the main listener, after the drain: /readyz answers 503 meanwhile.
        tokio::spawn(server::serve_admin(
            l,
            live.clone(),
            server::stopped(live.clone()),
        ));
    }
    live::reload_on_sighup(&live);
    live::follow_reflection(&live);
    let gw = live.current();
    let _watch = gw
        .config
        .reload
        .watch
        .then(|| live::watch_files(&live))
        .flatten();
    if let Some(m) = &gw.mock {
        tracing::info!(
            "mock mode ({m:?}): stubs at http://{addr}/_protogate/mock/stubs, unmatched requests at http://{addr}/_protogate/mock/unmatched"
        );
    }
    for m in &gw.missing {
        tracing::warn!("not ready: {m} (retrying in the background)");
    }
    if gw.has_no_backend() {
        tracing::warn!(
            "no upstream configured: every call will answer 503 (use --upstream or upstreams: in routes.yaml)"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        routes = gw.routes().len(),
        worker_threads = threads,
        "protogate listening on {scheme}://{addr}"
    );
    drop(gw);
    let _tls_watch = tls.as_ref().and_then(watch_tls);
    let (delay, grace) = (args.drain_delay, args.drain_grace);
    tokio::spawn(server::drain_on_signal(live.clone(), delay, grace));
    server::shards::serve(listeners, live, tls)
        .await
        .map_err(|e| e.to_string())
}

/// Reloads the listener's certificate when its files change, and on SIGHUP.
fn watch_tls(tls: &Arc<server::tls::TlsListener>) -> Option<protogate::watch::DirWatch> {
    tls.watch()
        .inspect_err(|e| tracing::warn!("TLS: certificate rotation is off: {e}"))
        .ok()
}

/// Logs go to stderr through a buffer a background thread writes out every
/// few milliseconds (see `observe::log_writer`): a request never waits on
/// a write, nor wakes a thread, to log its access line. Lines are never
/// dropped. `None` (no thread could be started): written directly.
fn init_logging(format: LogFormat) -> Option<FlushGuard> {
    match BatchedWriter::new(std::io::stderr(), log_writer::FLUSH_EVERY) {
        Ok((writer, guard)) => {
            install_logging(format, writer);
            Some(guard)
        }
        Err(e) => {
            install_logging(format, std::io::stderr);
            tracing::warn!("logging unbuffered: no log writer thread ({e})");
            None
        }
    }
}

/// The global subscriber: `RUST_LOG`'s filter (default `info`), `format`,
/// lines to `writer`.
fn install_logging<W>(format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: log files and collectors get plain text
    // (and the escape codes cost time on every line).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
