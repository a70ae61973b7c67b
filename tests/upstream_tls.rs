//! TLS and mTLS to upstreams: the real gateway in front of the example
//! library service served over TLS (rustls, hyper) on loopback, with
//! certificates made here by rcgen. The upstream verified against a CA
//! bundle, refused when untrusted, SNI and verification under a configured
//! name, the `:authority` override, client certificates, descriptors by
//! reflection over mTLS, and a rotation of
//! both sides' material in the middle of a load loop with no failed request.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::backend::LibraryBackend;
use common::backend::pb::library::v1::library_service_server::LibraryServiceServer;
use common::certs::{Ca, Leaf, write_atomic};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{ExtendedKeyUsagePurpose, SanType};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

const BOOK: &str = "/v1/shelves/2/books/3";

// ---------------------------------------------------------------- the TLS upstream

/// What the upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    /// The SNI of the connection it came on.
    sni: Option<String>,
    /// The client certificate of that connection (DER), if any.
    client_cert: Option<Vec<u8>>,
    /// The request's `:authority`.
    authority: String,
    /// The request's path (health probes come too).
    path: String,
}

/// The example library service over TLS. Its certificate can be swapped,
/// and all its connections told to go away (GOAWAY, in-flight calls
/// finish), as a server restarting or enforcing a maximum connection age
/// does.
struct TlsUpstream {
    addr: SocketAddr,
    config: Arc<Mutex<Arc<ServerConfig>>>,
    goaway: watch::Sender<u64>,
    seen: Arc<Mutex<Vec<Seen>>>,
    handshakes: Arc<AtomicU64>,
    _stop: oneshot::Sender<()>,
}

fn server_config(leaf: &Leaf, client_ca: Option<&Ca>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.cert.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let (chain, key) = leaf.identity();
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

impl TlsUpstream {
    async fn start(leaf: &Leaf, client_ca: Option<&Ca>) -> TlsUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let up = TlsUpstream {
            addr,
            config: Arc::new(Mutex::new(server_config(leaf, client_ca))),
            goaway: watch::channel(0).0,
            seen: Arc::default(),
            handshakes: Arc::default(),
            _stop: stop,
        };
        let (config, goaway, seen, handshakes) = (
            up.config.clone(),
            up.goaway.clone(),
            up.seen.clone(),
            up.handshakes.clone(),
        );
        let mut routes = tonic::service::Routes::builder();
        routes
            .add_service(LibraryServiceServer::new(LibraryBackend::with_sample_data()))
            .add_service(common::backend::reflection_v1());
        let service = routes.routes();
        tokio::spawn(async move {
            loop {
                let tcp = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => return,
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(config.lock().unwrap().clone());
                let conn = Conn {
                    service: service.clone(),
                    goaway: goaway.subscribe(),
                    seen: seen.clone(),
                    handshakes: handshakes.clone(),
                };
                tokio::spawn(conn.serve(acceptor, tcp));
            }
        });
        up
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// New handshakes get `leaf`; every open connection is sent GOAWAY.
    fn rotate(&self, leaf: &Leaf, client_ca: Option<&Ca>) {
        *self.config.lock().unwrap() = server_config(leaf, client_ca);
        self.goaway_all();
    }

    fn goaway_all(&self) {
        self.goaway.send_modify(|g| *g += 1);
    }

    /// The library calls it answered (not health probes).
    fn seen(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.path.starts_with("/library."))
            .cloned()
            .collect()
    }
}

/// One accepted connection of the upstream.
struct Conn {
    service: tonic::service::Routes,
    goaway: watch::Receiver<u64>,
    seen: Arc<Mutex<Vec<Seen>>>,
    handshakes: Arc<AtomicU64>,
}

impl Conn {
    async fn serve(mut self, acceptor: tokio_rustls::TlsAcceptor, tcp: tokio::net::TcpStream) {
        let Ok(tls) = acceptor.accept(tcp).await else {
            return;
        };
        self.handshakes.fetch_add(1, Ordering::SeqCst);
        let session = tls.get_ref().1;
        let sni = session.server_name().map(str::to_string);
        let client_cert = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec());
        let (seen, service) = (self.seen.clone(), self.service.clone());
        let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            seen.lock().unwrap().push(Seen {
                sni: sni.clone(),
                client_cert: client_cert.clone(),
                authority: req
                    .uri()
                    .authority()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                path: req.uri().path().to_string(),
            });
            let mut service = service.clone();
            async move { tower::Service::call(&mut service, req).await }
        });
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc));
        tokio::pin!(conn);
        self.goaway.borrow_and_update();
        let mut going_away = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                changed = self.goaway.changed(), if !going_away => {
                    going_away = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- the gateway

use common::routes_with_upstream as routes;

/// A temporary directory of PEM files.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        write_atomic(&path, text);
        path
    }

    fn path(&self, name: &str) -> String {
        self.0.path().join(name).display().to_string()
    }
}

async fn get(gw: &common::Running, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{}{path}", gw.url())).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

fn server_leaf_named(ca: &Ca, dns: &str) -> Leaf {
    let sans = vec![SanType::DnsName(dns.try_into().unwrap())];
    ca.leaf(dns, sans, ExtendedKeyUsagePurpose::ServerAuth)
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn upstream_verified_against_the_ca_bundle() {
    let ca = Ca::new("upstream CA");
    let up = TlsUpstream::start(&ca.server("library"), None).await;
    let files = Files::new();
    files.write("ca.pem", &ca.pem());
    let tls = format!("    tls: {{ca: {}}}\n", files.path("ca.pem"));
    let (gw, _) = common::start_gateway(&routes(&up.url(), &tls), None).await;

    let (status, body) = get(&gw, BOOK).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["title"].is_string(), "{body}");
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // SNI is not sent for IP addresses; the authority is the URL's.
    assert_eq!(seen[0].sni, None);
    assert_eq!(seen[0].authority, format!("127.0.0.1:{}", up.addr.port()));
}

#[tokio::test]
async fn untrusted_upstream_is_refused_cleanly() {
    let ca = Ca::new("upstream CA");
    let up = TlsUpstream::start(&ca.server("library"), None).await;
    let files = Files::new();
    files.write("other-ca.pem", &Ca::new("another CA").pem());
    let tls = format!("    tls: {{ca: {}}}\n", files.path("other-ca.pem"));
    let (gw, _) = common::start_gateway(&routes(&up.url(), &tls), None).await;

    let (status, body) = get(&gw, BOOK).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], 14, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("TLS handshake"), "{message}");
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn without_a_bundle_the_system_roots_are_used() {
    let ca = Ca::new("upstream CA");
    let up = TlsUpstream::start(&ca.server("library"), None).await;
    let yaml = routes(&up.url(), "");
    let config = protogate::config::Config::parse(&yaml).unwrap();
    let resources = Arc::new(protogate::gateway::Resources::default());
    match protogate::gateway::Gateway::build_with(common::pool(), config, None, &resources) {
        // A machine with trusted roots: the test CA is not among them.
        Ok(_) => {
            let (gw, _) = common::start_gateway(&yaml, None).await;
            let (status, body) = get(&gw, BOOK).await;
            assert_eq!(status, 503, "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("UnknownIssuer"),
                "{body}"
            );
        }
        // A machine without any: the load says so and how to fix it.
        Err(e) => assert!(e.to_string().contains("no trusted roots"), "{e}"),
    }
}

#[tokio::test]
async fn server_name_overrides_sni_and_verification() {
    let ca = Ca::new("upstream CA");
    let up = TlsUpstream::start(&server_leaf_named(&ca, "books.internal"), None).await;
    let files = Files::new();
    files.write("ca.pem", &ca.pem());

    // Verified under the URL's host, the certificate does not match.
    let tls = format!("    tls: {{ca: {}}}\n", files.path("ca.pem"));
    let (gw, _) = common::start_gateway(&routes(&up.url(), &tls), None).await;
    let (status, body) = get(&gw, BOOK).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not valid for name"),
        "{body}"
    );

    let tls = format!(
        "    tls: {{ca: {}, server_name: books.internal}}\n    authority: books.example:8443\n",
        files.path("ca.pem")
    );
    let (gw, _) = common::start_gateway(&routes(&up.url(), &tls), None).await;
    let (status, body) = get(&gw, BOOK).await;
    assert_eq!(status, 200, "{body}");
    let seen = up.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.sni.as_deref(), Some("books.internal"));
    assert_eq!(last.authority, "books.example:8443");
}

#[tokio::test]
async fn client_certificate_for_mtls() {
    let ca = Ca::new("upstream CA");
    let client_ca = Ca::new("client CA");
    let up = TlsUpstream::start(&ca.server("library"), Some(&client_ca)).await;
    let client = client_ca.client("gateway");
    let files = Files::new();
    files.write("ca.pem", &ca.pem());
    files.write("client.crt", &client.cert_pem);
    files.write("client.key", &client.key_pem);

    let tls = format!("    tls: {{ca: {}}}\n", files.path("ca.pem"));
    let (gw, _) = common::start_gateway(&routes(&up.url(), &tls), None).await;
    let (status, body) = get(&gw, BOOK).await;
    assert_eq!(status, 503, "no client certificate: {body}");

    let tls = format!(
        "    tls: {{ca: {}, cert: {}, key: {}}}\n",
        files.path("ca.pem"),
        files.path("client.crt"),
        files.path("client.key")
    );
    let (gw, _) = common::start_gateway(&routes(&up.url(), &tls), None).await;
    let (status, body) = get(&gw, BOOK).await;
    assert_eq!(status, 200, "{body}");
    let seen = up.seen();
    assert_eq!(
        seen.last().unwrap().client_cert.as_deref(),
        Some(&client.der[..])
    );
}

#[tokio::test]
async fn bad_tls_settings_fail_the_load_naming_the_field_or_file() {
    let parse = |extra: &str, url: &str| {
        protogate::config::Config::parse(&routes(url, extra))
            .map(|_| ())
            .unwrap_err()
    };
    let e = parse("    tls: {cert: /x.crt}\n", "https://h:1");
    assert!(
        e.contains("upstreams.library.tls") && e.contains("`key`"),
        "{e}"
    );
    let e = parse("    tls: {ca: /x.pem}\n", "http://h:1");
    assert!(
        e.contains("upstreams.library.tls") && e.contains("https://"),
        "{e}"
    );
    let e = parse("    tls: {server_name: 'not a name'}\n", "https://h:1");
    assert!(e.contains("upstreams.library.tls.server_name"), "{e}");
    let e = parse("    authority: 'a b'\n", "https://h:1");
    assert!(e.contains("upstreams.library.authority"), "{e}");
    let e = parse("    tls: {ca_file: /x.pem}\n", "https://h:1");
    assert!(e.contains("ca_file"), "{e}");

    // A missing file: the load fails naming it.
    let yaml = routes(
        "https://127.0.0.1:1",
        "    tls: {ca: /nonexistent/ca.pem}\n",
    );
    let config = protogate::config::Config::parse(&yaml).unwrap();
    let resources = Arc::new(protogate::gateway::Resources::default());
    let e = protogate::gateway::Gateway::build_with(common::pool(), config, None, &resources)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
}

/// Polls `cond` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_of_both_sides_under_load_fails_no_request() {
    let (ca1, ca2) = (Ca::new("upstream CA 1"), Ca::new("upstream CA 2"));
    let client_ca = Ca::new("client CA");
    let (client_a, client_b) = (client_ca.client("gateway A"), client_ca.client("gateway B"));
    let up = TlsUpstream::start(&ca1.server("library 1"), Some(&client_ca)).await;
    let files = Files::new();
    files.write("ca.pem", &ca1.pem());
    files.write("client.crt", &client_a.cert_pem);
    files.write("client.key", &client_a.key_pem);
    let tls = format!(
        "    tls: {{ca: {}, cert: {}, key: {}}}\n    connections: 2\n",
        files.path("ca.pem"),
        files.path("client.crt"),
        files.path("client.key")
    );
    let (gw, _) = common::start_gateway(&routes(&up.url(), &tls), None).await;

    // The load: 8 clients in a loop until told to stop, counting failures.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let url = format!("{}{BOOK}", gw.url());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), url.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::SeqCst) {
                    match http.get(&url).send().await {
                        Ok(r) if r.status() == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => {
                            let why =
                                format!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                            failed.lock().unwrap().push(why);
                        }
                        Err(e) => failed.lock().unwrap().push(e.to_string()),
                    }
                }
            })
        })
        .collect();
    let served = |n: u64| {
        let ok = ok.clone();
        move || ok.load(Ordering::SeqCst) >= n
    };
    eventually("the first answers", served(50)).await;

    // The gateway's side: trust both CAs, present client certificate B.
    files.write("ca.pem", &format!("{}{}", ca1.pem(), ca2.pem()));
    files.write("client.crt", &client_b.cert_pem);
    files.write("client.key", &client_b.key_pem);
    // Reloaded once new connections present B (open ones keep A).
    let presents_b = || {
        up.goaway_all();
        up.seen()
            .iter()
            .rev()
            .take(20)
            .any(|s| s.client_cert.as_deref() == Some(&client_b.der[..]))
    };
    for _ in 0..100 {
        if presents_b() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        presents_b(),
        "the gateway presents the rotated client certificate"
    );

    // The upstream's side: a certificate from the second CA.
    let handshakes = up.handshakes.load(Ordering::SeqCst);
    up.rotate(&ca2.server("library 2"), Some(&client_ca));
    let after = ok.load(Ordering::SeqCst);
    eventually("answers over the rotated certificate", || {
        up.handshakes.load(Ordering::SeqCst) > handshakes && ok.load(Ordering::SeqCst) > after + 100
    })
    .await;

    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(ok.load(Ordering::SeqCst) > 150);
}

#[tokio::test]
async fn reflection_over_mtls_uses_the_upstream_tls_settings() {
    let ca = Ca::new("upstream CA");
    let client_ca = Ca::new("client CA");
    let up = TlsUpstream::start(&ca.server("library"), Some(&client_ca)).await;
    let client = client_ca.client("gateway");
    let files = Files::new();
    files.write("ca.pem", &ca.pem());
    files.write("client.crt", &client.cert_pem);
    files.write("client.key", &client.key_pem);
    let routes_yaml = files.write(
        "routes.yaml",
        &format!(
            "upstreams:\n  library:\n    url: {}\n    reflection: true\n    tls: {{ca: {}, cert: {}, key: {}}}\n",
            up.url(),
            files.path("ca.pem"),
            files.path("client.crt"),
            files.path("client.key")
        ),
    );
    let settings = protogate::gateway::Settings {
        descriptors: vec![],
        routes: vec![routes_yaml],
        ..protogate::gateway::Settings::default()
    };
    let gw = common::start_live(settings, protogate::gateway::Resources::default()).await;
    assert!(
        gw.live.current().missing.is_empty(),
        "{:?}",
        gw.live.current().missing
    );
    let resp = reqwest::get(format!("{}{BOOK}", gw.url)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|s| s.path.starts_with("/grpc.reflection.v1.")
                && s.client_cert.as_deref() == Some(&client.der[..])),
        "{seen:?}"
    );
}
