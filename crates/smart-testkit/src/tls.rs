//! A local HTTPS server with a CA generated for each server, for tests of custom root
//! certificates and client certificates (mTLS).
//!
//! [`TlsServer::start`] makes a fresh CA (`rcgen`, ECDSA P-256), a server certificate signed by it
//! for `localhost`, `127.0.0.1` and `::1`, and serves HTTP/1.1 over TLS (`rustls` with `ring`,
//! std threads) on `127.0.0.1:0`. A client that trusts [`TlsServer::ca_pem`] as a root
//! succeeds; one that uses only the public (web PKI) roots fails its handshake, and the server
//! counts that in [`TlsServer::failed_handshakes`].
//!
//! [`TlsServer::start_mtls`] also requires a client certificate signed by a second generated CA;
//! [`TlsServer::client_identity`] is one (certificate and key PEM).
//!
//! Each answer comes from the responder closure given at start (see [`smart_responder`] for a
//! ready-made SMART discovery + token endpoint). The API is blocking and cheap, so it also works
//! from `#[tokio::test]` code; dropping the server stops it.
//!
//! ```no_run
//! use smart_testkit::tls::{TlsServer, smart_responder};
//!
//! let server = TlsServer::start(smart_responder);
//! let base = format!("{}/fhir", server.url()); // https://localhost:PORT/fhir
//! let ca_pem: &str = server.ca_pem(); // give this to the client as its only custom root
//! # let _ = (base, ca_pem);
//! ```

use std::fmt;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use crate::hostile::{ReadError, Request, Response, read_request};
use crate::listener::{ConnListener, lock};

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Identity {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// Its private key, PKCS#8 (`-----BEGIN PRIVATE KEY-----`). A test key: never printed by
    /// `Debug`.
    pub key_pem: String,
}

impl Identity {
    /// The certificate followed by the key, in one PEM text (what e.g. `reqwest::Identity::from_pem`
    /// takes).
    pub fn pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A generated CA: its certificate and the issuer to sign leaves with.
struct Ca {
    pem: String,
    der: CertificateDer<'static>,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn generate_ca(name: &str) -> Ca {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("generate a CA key");
    let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
    Ca {
        pem: issuer.pem(),
        der: issuer.der().clone(),
        issuer,
    }
}

/// A leaf certificate signed by `ca`: a server one for `names`, or a client one.
fn generate_leaf(ca: &Ca, common_name: &str, names: &[&str], server: bool) -> (Identity, Leaf) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("certificate names");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().expect("generate a key");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign a leaf");
    let identity = Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    let leaf = Leaf {
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    };
    (identity, leaf)
}

struct Leaf {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// The PEM of a freshly generated CA that signed nothing: a root no test server chains to.
pub fn unrelated_ca_pem() -> String {
    generate_ca("smart-testkit unrelated CA").pem
}

/// A client certificate and key signed by a CA that no [`TlsServer`] trusts.
pub fn untrusted_client_identity() -> Identity {
    let ca = generate_ca("smart-testkit untrusted client CA");
    generate_leaf(&ca, "smart-testkit untrusted client", &[], false).0
}

/// A responder for a minimal SMART server: `GET /fhir/.well-known/smart-configuration` (whose
/// endpoints are `https://{Host}/...`), `POST /token` (a Bearer token `tls-test-token`, 300 s),
/// anything else 404.
pub fn smart_responder(req: &Request) -> Response {
    let host = req.header("host").unwrap_or("localhost");
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/fhir/.well-known/smart-configuration") => Response::json(
            200,
            serde_json::json!({
                "issuer": format!("https://{host}"),
                "authorization_endpoint": format!("https://{host}/authorize"),
                "token_endpoint": format!("https://{host}/token"),
                "jwks_uri": format!("https://{host}/jwks"),
                "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
                "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
                "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
                "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "offline_access", "system/*.rs"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "capabilities": ["launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
                                 "client-confidential-asymmetric", "context-standalone-patient", "permission-v2"],
            }),
        ),
        ("POST", "/token") => Response::token("tls-test-token", 300),
        _ => Response::oauth_error(
            404,
            "not_found",
            &format!("no route for {} {}", req.method, req.path),
        ),
    }
}

type Responder = dyn Fn(&Request) -> Response + Send + Sync;

#[derive(Default)]
struct TlsState {
    requests: Vec<Request>,
    handshakes: usize,
    failed: Vec<String>,
}

struct TlsShared {
    config: Arc<ServerConfig>,
    responder: Box<Responder>,
    state: Mutex<TlsState>,
    /// Notified on every handshake (completed or failed) and request.
    changed: Condvar,
}

impl TlsShared {
    fn update(&self, f: impl FnOnce(&mut TlsState)) {
        f(&mut lock(&self.state));
        self.changed.notify_all();
    }
}

/// A loopback HTTPS server with its own generated CA (see the [module docs](self)).
pub struct TlsServer {
    shared: Arc<TlsShared>,
    addr: SocketAddr,
    ca_pem: String,
    client_ca_pem: String,
    client_identity: Identity,
    mtls: bool,
    listener: ConnListener,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("url", &self.url())
            .field("mtls", &self.mtls)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Generates the certificates and starts serving; every request is answered by
    /// `responder` (on the connection's thread).
    ///
    /// # Panics
    /// When a certificate cannot be generated or no loopback port bound.
    pub fn start(responder: impl Fn(&Request) -> Response + Send + Sync + 'static) -> TlsServer {
        TlsServer::start_inner(Box::new(responder), false)
    }

    /// Like [`start`](Self::start), but the handshake also requires a client certificate
    /// signed by [`client_ca_pem`](Self::client_ca_pem), e.g. [`client_identity`](Self::client_identity).
    pub fn start_mtls(
        responder: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> TlsServer {
        TlsServer::start_inner(Box::new(responder), true)
    }

    fn start_inner(responder: Box<Responder>, mtls: bool) -> TlsServer {
        let ca = generate_ca("smart-testkit test CA");
        let (_, server_leaf) =
            generate_leaf(&ca, "localhost", &["localhost", "127.0.0.1", "::1"], true);
        let client_ca = generate_ca("smart-testkit client CA");
        let (client_identity, _) = generate_leaf(&client_ca, "smart-testkit client", &[], false);

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let builder = if mtls {
            let mut roots = RootCertStore::empty();
            roots.add(client_ca.der.clone()).expect("client CA root");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(
                vec![server_leaf.cert, ca.der.clone()],
                PrivateKeyDer::Pkcs8(server_leaf.key),
            )
            .expect("server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let shared = Arc::new(TlsShared {
            config: Arc::new(config),
            responder,
            state: Mutex::new(TlsState::default()),
            changed: Condvar::new(),
        });
        let mut listener = ConnListener::bind();
        let addr = listener.addr();
        let s = Arc::clone(&shared);
        listener.serve("tls", move |stream, id| serve_tls(&s, &stream, id));
        TlsServer {
            shared,
            addr,
            ca_pem: ca.pem,
            client_ca_pem: client_ca.pem,
            client_identity,
            mtls,
            listener,
        }
    }

    /// `https://localhost:PORT` (no trailing slash): the name the certificate is for.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// `https://127.0.0.1:PORT`: the certificate also names this IP address.
    pub fn ip_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// `{url}{path}`, e.g. `url_for("/token")`.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// The socket address it listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM of the CA that signed the server certificate: the custom root a client needs.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Whether the handshake requires a client certificate ([`start_mtls`](Self::start_mtls)).
    pub fn requires_client_cert(&self) -> bool {
        self.mtls
    }

    /// The PEM of the CA whose client certificates the server accepts (under mTLS).
    pub fn client_ca_pem(&self) -> &str {
        &self.client_ca_pem
    }

    /// A client certificate and key signed by [`client_ca_pem`](Self::client_ca_pem).
    pub fn client_identity(&self) -> &Identity {
        &self.client_identity
    }

    /// Every request read so far, in order of arrival.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.state).requests.clone()
    }

    /// How many requests to `path` (any method) were read.
    pub fn count(&self, path: &str) -> usize {
        lock(&self.shared.state)
            .requests
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// How many TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        lock(&self.shared.state).handshakes
    }

    /// The error of every handshake that failed, in order: the client rejected the
    /// certificate (`received fatal alert: UnknownCA`, or `unexpected end of file` when it just
    /// hung up, as ureq does), or, under mTLS, sent none (`peer sent no certificates`) or one
    /// from another CA (`invalid peer certificate: UnknownIssuer`).
    ///
    /// The server notes a failure a moment after the client sees it: use
    /// [`wait_for_failed_handshakes`](Self::wait_for_failed_handshakes) right after a failed
    /// request.
    pub fn failed_handshakes(&self) -> Vec<String> {
        lock(&self.shared.state).failed.clone()
    }

    /// Blocks until at least `n` handshakes failed, or `timeout` passed; returns whether they
    /// did.
    pub fn wait_for_failed_handshakes(&self, n: usize, timeout: Duration) -> bool {
        let st = self
            .shared
            .changed
            .wait_timeout_while(lock(&self.shared.state), timeout, |st| st.failed.len() < n)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        st.failed.len() >= n
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.listener.stop();
    }
}

fn serve_tls(shared: &Arc<TlsShared>, stream: &TcpStream, conn_id: u64) {
    let Ok(conn) = ServerConnection::new(Arc::clone(&shared.config)) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, stream);
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            shared.update(|st| st.failed.push(e.to_string()));
            return;
        }
    }
    shared.update(|st| st.handshakes += 1);
    let mut reader = BufReader::new(tls);
    loop {
        let parsed = match read_request(&mut reader) {
            Ok(Some(p)) => p,
            Ok(None) | Err(ReadError::Io) => break,
            Err(ReadError::Bad(status, why)) => {
                let r = Response::text(status, why).header("Connection", "close");
                let _ = reader.get_mut().write_all(&r.to_bytes());
                break;
            }
        };
        let mut req = None;
        shared.update(|st| {
            let r = parsed.into_request(conn_id, st.requests.len() as u64);
            st.requests.push(r.clone());
            req = Some(r);
        });
        let Some(req) = req else { return };
        let resp = (shared.responder)(&req);
        let bytes = if req.method == "HEAD" {
            resp.head_bytes()
        } else {
            resp.to_bytes()
        };
        let w = reader.get_mut();
        if w.write_all(&bytes).and_then(|()| w.flush()).is_err() {
            return;
        }
        if resp.closes() || !req.keep_alive() {
            break;
        }
    }
    let tls = reader.get_mut();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
