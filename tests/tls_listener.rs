//! TLS on the listener: the real gateway serving HTTPS in front of the real
//! example backend, spoken to by real rustls clients (HTTP/1.1 and HTTP/2
//! chosen by ALPN, gRPC through tonic), with certificates made here by
//! rcgen. mTLS accepted and refused, the client identity seen by hooks and
//! forwarded as metadata (spoofing stripped), and a certificate rotation in
//! the middle of a load loop with no failed request.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::backend::pb::library::v1::GetBookRequest;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::certs::{Ca, Leaf, write_atomic};
use common::process::{KillOnDrop, address_after};
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use protogate::config::Config;
use protogate::gateway::{Gateway, Resources};
use protogate::live::Live;
use protogate::pipeline::{Begin, Hook, PeerIdentity};
use protogate::server::tls::{ClientAuth, ForwardPeer, TlsListener, TlsSettings};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const BOOK: &str = "/v1/shelves/2/books/3";

/// The certificate files of one gateway, in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(server: &Leaf, client_ca: Option<&Ca>) -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        files.install(server);
        if let Some(ca) = client_ca {
            std::fs::write(files.path("client-ca.pem"), ca.pem()).unwrap();
        }
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn install(&self, server: &Leaf) {
        write_atomic(&self.path("tls.crt"), &server.cert_pem);
        write_atomic(&self.path("tls.key"), &server.key_pem);
    }

    fn settings(&self, client_auth: Option<ClientAuth>) -> TlsSettings {
        TlsSettings {
            cert: self.path("tls.crt"),
            key: self.path("tls.key"),
            client_ca: client_auth.map(|_| self.path("client-ca.pem")),
            client_auth: client_auth.unwrap_or_default(),
        }
    }
}

// ---------------------------------------------------------------- the gateway

/// Records the peer identity every request's hooks see in `on_begin`.
#[derive(Default)]
struct SeenPeers(Mutex<Vec<Option<PeerIdentity>>>);

impl Hook for SeenPeers {
    fn on_begin(&self, begin: &mut Begin<'_>) {
        let peer = begin.extensions.get::<PeerIdentity>().cloned();
        self.0.lock().unwrap().push(peer);
    }
}

/// The real backend and the gateway over TLS in front of it.
struct Gw {
    addr: SocketAddr,
    tls: Arc<TlsListener>,
    seen: Arc<SeenPeers>,
    _backend: common::Running,
    _stop: oneshot::Sender<()>,
}

async fn start(settings: TlsSettings) -> Gw {
    start_with(settings, "").await
}

/// Like [`start`], with `extra` appended to the bundled routes.yaml.
async fn start_with(settings: TlsSettings, extra: &str) -> Gw {
    let (backend, _) = common::start_backend().await;
    let tls = TlsListener::load(settings).expect("TLS material loads");
    let seen = Arc::new(SeenPeers::default());
    let forward =
        ForwardPeer::new(Some("x-echo-client-subject"), Some("x-echo-client-sans")).unwrap();
    let resources = Arc::new(Resources::with_hooks(vec![seen.clone(), Arc::new(forward)]));
    let config = Config::parse(&format!("{}\n{extra}", common::bundled_routes_yaml())).unwrap();
    let gw = Gateway::build_with(common::pool(), config, Some(&backend.url()), &resources).unwrap();
    let live = Live::fixed_with(gw, resources);
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) = protogate::server::spawn_tls(
        live,
        "127.0.0.1:0".parse().unwrap(),
        Some(tls.clone()),
        async {
            let _ = rx.await;
        },
    )
    .await
    .unwrap();
    Gw {
        addr,
        tls,
        seen,
        _backend: backend,
        _stop: tx,
    }
}

// ---------------------------------------------------------------- clients

/// A rustls client trusting `ca`, offering `alpn`, with an optional client
/// certificate.
fn client(ca: &Ca, alpn: &[&[u8]], identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => {
            let (chain, key) = leaf.identity();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// One answer: status, HTTP version, headers, body.
struct Answer {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A GET on a new TLS connection, in the protocol ALPN chose.
async fn get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Answer, BoxError> {
    let mut req = Request::get(format!("https://localhost{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(addr, config, req.body(Full::new(Bytes::new()))?).await
}

/// `req` on a new TLS connection, in the protocol ALPN chose.
async fn send(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    req: Request<Full<Bytes>>,
) -> Result<Answer, BoxError> {
    let tls = connect(addr, config).await?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let resp = if h2 {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        send.send_request(req).await?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        send.send_request(req).await?
    };
    let (parts, body) = resp.into_parts();
    Ok(Answer {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
    })
}

fn title(a: &Answer) -> String {
    let j: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    j["title"].as_str().unwrap_or_default().to_string()
}

/// A tonic client over one TLS connection (ALPN h2).
async fn grpc_client(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> LibraryServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let config = config.clone();
            async move { connect(addr, config).await.map(TokioIo::new) }
        }))
        .await
        .unwrap();
    LibraryServiceClient::new(channel)
}

async fn grpc_get_book(client: &mut LibraryServiceClient<tonic::transport::Channel>) -> String {
    client
        .get_book(GetBookRequest {
            name: "shelves/2/books/3".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .title
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn http1_and_http2_by_alpn_and_grpc_over_tls() {
    let ca = Ca::new("server ca");
    let files = Files::new(&ca.server("gateway"), None);
    let gw = start(files.settings(None)).await;

    let h1 = get(gw.addr, client(&ca, &[b"http/1.1"], None), BOOK, &[])
        .await
        .unwrap();
    assert_eq!((h1.status, h1.version), (StatusCode::OK, Version::HTTP_11));
    assert_eq!(title(&h1), "Cosmos");

    let h2 = get(gw.addr, client(&ca, &[b"h2", b"http/1.1"], None), BOOK, &[])
        .await
        .unwrap();
    assert_eq!((h2.status, h2.version), (StatusCode::OK, Version::HTTP_2));
    assert_eq!(title(&h2), "Cosmos");

    // No ALPN at all: HTTP/1.1.
    let plain = get(gw.addr, client(&ca, &[], None), BOOK, &[])
        .await
        .unwrap();
    assert_eq!(plain.version, Version::HTTP_11);

    let mut grpc = grpc_client(gw.addr, client(&ca, &[b"h2"], None)).await;
    assert_eq!(grpc_get_book(&mut grpc).await, "Cosmos");

    // gRPC-Web over HTTP/1.1 and TLS, as a browser sends it.
    let msg = prost::Message::encode_to_vec(&GetBookRequest {
        name: "shelves/2/books/3".into(),
    });
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&msg);
    let req = Request::post("https://localhost/library.v1.LibraryService/GetBook")
        .header("content-type", "application/grpc-web+proto")
        .body(Full::new(Bytes::from(frame)))
        .unwrap();
    let web = send(gw.addr, client(&ca, &[b"http/1.1"], None), req)
        .await
        .unwrap();
    assert_eq!(
        (web.status, web.version),
        (StatusCode::OK, Version::HTTP_11)
    );
    let body = String::from_utf8_lossy(&web.body);
    assert!(
        body.contains("Cosmos") && body.contains("grpc-status:0"),
        "{body}"
    );

    // A plaintext client on the TLS port fails its handshake; the listener
    // goes on serving.
    let r = reqwest::get(format!("http://{}{BOOK}", gw.addr)).await;
    assert!(r.is_err() || r.is_ok_and(|r| !r.status().is_success()));
    let again = get(gw.addr, client(&ca, &[b"h2"], None), BOOK, &[])
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::OK);
    assert!(gw.tls.handshake_failures() >= 1);
    // No client CA: no identity, and a client's own values are dropped.
    let spoof = get(
        gw.addr,
        client(&ca, &[b"h2"], None),
        BOOK,
        &[("grpc-metadata-x-echo-client-subject", "CN=admin")],
    )
    .await
    .unwrap();
    assert_eq!(spoof.header("grpc-metadata-x-echo-client-subject"), None);
    assert!(gw.seen.0.lock().unwrap().iter().all(Option::is_none));
}

#[tokio::test]
async fn mtls_required_accepts_a_verified_client_and_refuses_others() {
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let files = Files::new(&server_ca.server("gateway"), Some(&client_ca));
    let gw = start(files.settings(Some(ClientAuth::Required))).await;

    let alice = client_ca.client("alice");
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let a = get(
            gw.addr,
            client(&server_ca, &[alpn], Some(&alice)),
            BOOK,
            // Spoofed: replaced by the verified identity.
            &[("grpc-metadata-x-echo-client-subject", "CN=admin")],
        )
        .await
        .unwrap();
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(
            a.header("grpc-metadata-x-echo-client-subject"),
            Some("CN=alice,O=Protogate Tests")
        );
        assert_eq!(
            a.header("grpc-metadata-x-echo-client-sans"),
            Some("URI:spiffe://tests.protogate/client,DNS:client.tests.protogate")
        );
    }
    let seen = gw.seen.0.lock().unwrap().clone();
    let peer = seen.last().cloned().flatten().expect("hooks see the peer");
    assert_eq!(&*peer.subject, "CN=alice,O=Protogate Tests");
    assert_eq!(peer.sans.len(), 2);

    let mut grpc = grpc_client(gw.addr, client(&server_ca, &[b"h2"], Some(&alice))).await;
    assert_eq!(grpc_get_book(&mut grpc).await, "Cosmos");

    // No certificate, and one from another CA: refused.
    let before = gw.tls.handshake_failures();
    let none = get(gw.addr, client(&server_ca, &[b"h2"], None), BOOK, &[]).await;
    assert!(none.is_err(), "a client without a certificate was served");
    let mallory = Ca::new("other ca").client("mallory");
    let other = get(
        gw.addr,
        client(&server_ca, &[b"h2"], Some(&mallory)),
        BOOK,
        &[],
    )
    .await;
    assert!(other.is_err(), "a client of another CA was served");
    assert_eq!(gw.tls.handshake_failures(), before + 2);
}

#[tokio::test]
async fn mtls_optional_serves_clients_without_a_certificate() {
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let files = Files::new(&server_ca.server("gateway"), Some(&client_ca));
    let gw = start(files.settings(Some(ClientAuth::Optional))).await;

    let anon = get(
        gw.addr,
        client(&server_ca, &[b"h2"], None),
        BOOK,
        &[("grpc-metadata-x-echo-client-sans", "URI:spoofed")],
    )
    .await
    .unwrap();
    assert_eq!(anon.status, StatusCode::OK);
    assert_eq!(anon.header("grpc-metadata-x-echo-client-sans"), None);

    let bob = client_ca.client("bob");
    let a = get(gw.addr, client(&server_ca, &[b"h2"], Some(&bob)), BOOK, &[])
        .await
        .unwrap();
    assert_eq!(
        a.header("grpc-metadata-x-echo-client-subject"),
        Some("CN=bob,O=Protogate Tests")
    );
    // A certificate that does not verify is still refused.
    let mallory = Ca::new("other ca").client("mallory");
    let other = get(
        gw.addr,
        client(&server_ca, &[b"h2"], Some(&mallory)),
        BOOK,
        &[],
    )
    .await;
    assert!(other.is_err());
}

/// An auth rule on the client certificate: GetBook only for `CN=alice`
/// with a SAN under spiffe://tests.protogate/, no token needed.
const PEER_RULE: &str = r#"
auth:
  default: anonymous
  providers:
    idp: {issuer: https://idp.test, algorithms: [RS256], jwks_url: "http://127.0.0.1:9/jwks"}
  rules:
    - selector: library.v1.LibraryService.GetBook
      anonymous: true
      peer: {subject: "CN=alice,*", san: ["URI:spiffe://tests.protogate/*"]}
"#;

#[tokio::test]
async fn auth_rules_match_the_client_certificate() {
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let files = Files::new(&server_ca.server("gateway"), Some(&client_ca));
    let gw = start_with(files.settings(Some(ClientAuth::Optional)), PEER_RULE).await;
    let (alice, bob) = (client_ca.client("alice"), client_ca.client("bob"));

    let a = get(
        gw.addr,
        client(&server_ca, &[b"h2"], Some(&alice)),
        BOOK,
        &[],
    )
    .await
    .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    for who in [Some(&bob), None] {
        let r = get(gw.addr, client(&server_ca, &[b"http/1.1"], who), BOOK, &[])
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    }
    // Other methods keep the default (anonymous).
    let shelves = get(
        gw.addr,
        client(&server_ca, &[b"h2"], None),
        "/v1/shelves",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(shelves.status, StatusCode::OK);

    let mut grpc = grpc_client(gw.addr, client(&server_ca, &[b"h2"], Some(&bob))).await;
    let denied = grpc
        .get_book(GetBookRequest {
            name: "shelves/2/books/3".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let mut grpc = grpc_client(gw.addr, client(&server_ca, &[b"h2"], Some(&alice))).await;
    assert_eq!(grpc_get_book(&mut grpc).await, "Cosmos");
}

/// Whether a new handshake is served `leaf`.
async fn serves(addr: SocketAddr, ca: &Ca, leaf: &Leaf) -> bool {
    let Ok(tls) = connect(addr, client(ca, &[b"h2"], None)).await else {
        return false;
    };
    tls.get_ref().1.peer_certificates().and_then(|c| c.first()) == Some(&leaf.der)
}

#[tokio::test]
async fn rotation_under_load_fails_no_request() {
    let ca = Ca::new("server ca");
    let (first, second) = (ca.server("first"), ca.server("second"));
    let files = Files::new(&first, None);
    let gw = start(files.settings(None)).await;
    let _watch = gw.tls.watch().unwrap();
    assert!(serves(gw.addr, &ca, &first).await);

    // A connection made before the rotation, used after it.
    let mut kept = grpc_client(gw.addr, client(&ca, &[b"h2"], None)).await;
    assert_eq!(grpc_get_book(&mut kept).await, "Cosmos");

    // The load: new connections (so new handshakes), HTTP/1.1 and HTTP/2.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for i in 0..4 {
        let alpn: &'static [u8] = if i % 2 == 0 { b"h2" } else { b"http/1.1" };
        let config = client(&ca, &[alpn], None);
        let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), gw.addr);
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match get(addr, config.clone(), BOOK, &[]).await {
                    Ok(a) if a.status == StatusCode::OK => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ok.load(Ordering::Relaxed) < 50 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    files.install(&second);
    while !serves(gw.addr, &ca, &second).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_rotation = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < at_rotation + 50 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A bad key: logged, and the second certificate keeps serving.
    write_atomic(
        &files.path("tls.key"),
        "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n",
    );
    assert!(gw.tls.reload().is_err());
    assert!(serves(gw.addr, &ca, &second).await);

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the rotation"
    );
    assert!(ok.load(Ordering::Relaxed) >= at_rotation + 50);
    assert_eq!(
        grpc_get_book(&mut kept).await,
        "Cosmos",
        "the old connection still serves"
    );
}

/// `protogate serve --tls-cert --tls-key`: the binary's flags; readiness
/// and metrics (admin listener, plaintext) with the main listener on TLS.
#[tokio::test]
async fn the_binary_serves_https_with_the_tls_flags() {
    let ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let files = Files::new(&ca.server("gateway"), Some(&client_ca));
    let (backend, _) = common::start_backend().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &backend.url(),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(files.path("tls.crt"))
        .args(["--tls-client-auth", "optional", "--tls-client-ca"])
        .arg(files.path("client-ca.pem"))
        .env("PROTOGATE_TLS_KEY", files.path("tls.key"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = KillOnDrop(child);
    let mut lines = BufReader::new(stderr).lines();
    let admin = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| address_after(&l, "admin endpoints on http://"))
        .expect("protogate exited before listening");
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| address_after(&l, "listening on https://"))
        .expect("protogate exited before listening");
    // The access log: the request made with a client certificate names it.
    let (peer_line, peer_seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("protogate::access") && line.contains("peer=\"CN=carol") {
                let _ = peer_line.send(line);
            }
        }
    });
    let addr: SocketAddr = addr.parse().unwrap();
    let a = get(addr, client(&ca, &[b"h2"], None), BOOK, &[])
        .await
        .unwrap();
    assert_eq!((a.status, a.version), (StatusCode::OK, Version::HTTP_2));
    assert_eq!(title(&a), "Cosmos");
    let carol = client_ca.client("carol");
    let a = get(addr, client(&ca, &[b"h2"], Some(&carol)), BOOK, &[])
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    let line = peer_seen
        .recv_timeout(Duration::from_secs(10))
        .expect("an access-log line naming the client certificate");
    assert!(line.contains("O=Protogate Tests"), "{line}");

    // A plaintext request on the TLS port: a failed handshake, counted.
    let _ = reqwest::get(format!("http://{addr}{BOOK}")).await;
    let ready = async {
        while !reqwest::get(format!("http://{admin}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("/readyz answers 200");
    // The server counts the failure as it drops the connection: poll.
    let mut metrics = String::new();
    for _ in 0..250 {
        metrics = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("protogate_tls_handshake_failures_total 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metrics.contains("protogate_tls_handshake_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# HELP protogate_tls_handshake_failures_total"),
        "{metrics}"
    );
    assert!(metrics.contains("protocol=\"rest\""), "{metrics}");
}
