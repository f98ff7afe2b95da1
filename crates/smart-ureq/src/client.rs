use std::time::{Duration, SystemTime};

use smart_core::error::{TransportError, TransportErrorKind};
use smart_core::http::{MAX_RESPONSE_BYTES, check_url_security};
use smart_core::{Error, HttpRequest, HttpResponse, Method, UnixTime};

/// Default whole-request timeout (seconds).
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Builder for [`HttpClient`].
///
/// TLS: with the default `rustls` feature the client trusts Mozilla's root certificates
/// (bundled); with the `platform-verifier` feature it trusts the operating system's store
/// instead; with `native-tls` it uses the platform's TLS library. For a private CA, trust
/// exactly its certificates with [`root_certificates_pem`](Self::root_certificates_pem);
/// for mutual TLS, present a client certificate with
/// [`client_identity_pem`](Self::client_identity_pem).
#[derive(Clone)]
#[must_use]
pub struct HttpClientBuilder {
    timeout: Duration,
    allow_insecure_http: bool,
    max_body_bytes: usize,
    roots_pem: Option<Vec<u8>>,
    identity_pem: Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)>,
    agent: Option<ureq::Agent>,
}

impl std::fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("timeout", &self.timeout)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("custom_roots", &self.roots_pem.is_some())
            .field("client_identity", &self.identity_pem.is_some())
            .field("own_agent", &self.agent.is_some())
            .finish()
    }
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            allow_insecure_http: false,
            max_body_bytes: MAX_RESPONSE_BYTES,
            roots_pem: None,
            identity_pem: None,
            agent: None,
        }
    }
}

fn tls_error(message: impl Into<String>) -> Error {
    Error::Transport(TransportError::new("", TransportErrorKind::Tls, message))
}

impl HttpClientBuilder {
    /// Whole-request timeout (connect, send, receive). Default 30 s. Not applied to an agent
    /// of your own ([`agent`](Self::agent)), which keeps its timeouts.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Permit plain `http://` to non-loopback hosts. Off by default: tokens and assertions
    /// would cross the network in clear text.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Response-body cap in bytes (default 1 MiB).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Trust exactly the certificates in `pem` (one or more `CERTIFICATE` blocks) as root
    /// CAs, instead of the default roots: for servers behind a private CA.
    pub fn root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots_pem = Some(pem.as_ref().to_vec());
        self
    }

    /// Present this client certificate (mutual TLS): `cert_chain_pem` holds the certificate
    /// and its intermediates, `private_key_pem` its key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub fn client_identity_pem(
        mut self,
        cert_chain_pem: impl AsRef<[u8]>,
        private_key_pem: impl AsRef<[u8]>,
    ) -> Self {
        self.identity_pem = Some((
            cert_chain_pem.as_ref().to_vec(),
            zeroize::Zeroizing::new(private_key_pem.as_ref().to_vec()),
        ));
        self
    }

    /// Send through your own `ureq::Agent` (its proxy, TLS and pool settings). The driver
    /// still refuses plain `http://` except to loopback, never follows a redirect (it sets
    /// `max_redirects(0)` on each request) and caps bodies. TLS options of this builder do
    /// not apply to it.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    fn tls_config(&self) -> Result<Option<ureq::tls::TlsConfig>, Error> {
        if self.roots_pem.is_none() && self.identity_pem.is_none() {
            return Ok(None);
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = &self.roots_pem {
            let certs = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error(format!("root certificates: {e}")))?;
            if certs.is_empty() {
                return Err(tls_error("root certificates: no CERTIFICATE block"));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        if let Some((chain, key)) = &self.identity_pem {
            let certs = ureq::tls::parse_pem(chain)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error(format!("client certificate: {e}")))?;
            let key = ureq::tls::PrivateKey::from_pem(key)
                .map_err(|_| tls_error("client certificate: the private key is not a PEM key"))?;
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&certs, key)));
        }
        Ok(Some(tls.build()))
    }

    /// Build the client.
    ///
    /// # Errors
    /// [`Error::Transport`] (kind `Tls`) for unreadable root certificates or client identity.
    pub fn build(self) -> Result<HttpClient, Error> {
        let agent = match self.agent.clone() {
            Some(a) => a,
            None => {
                let mut config = ureq::Agent::config_builder()
                    .timeout_global(Some(self.timeout))
                    .max_redirects(0)
                    .max_redirects_will_error(false)
                    .http_status_as_error(false)
                    .user_agent(concat!("smart-ureq/", env!("CARGO_PKG_VERSION")));
                #[cfg(feature = "platform-verifier")]
                {
                    config = config.tls_config(
                        ureq::tls::TlsConfig::builder()
                            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                            .build(),
                    );
                }
                if let Some(tls) = self.tls_config()? {
                    config = config.tls_config(tls);
                }
                config.build().into()
            }
        };
        Ok(HttpClient {
            agent,
            allow_insecure_http: self.allow_insecure_http,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// A blocking HTTP client that sends the requests of `smart-core` flows. Cheap to clone (the
/// connection pool is shared).
///
/// It never follows a redirect (flows decide: discovery documents are followed with the
/// https-or-loopback rule applied to every hop, credential-carrying `POST`s never), refuses
/// plain `http://` except to loopback hosts, caps response bodies, and hands every status to
/// the flow. Failures are [`Error::Transport`] with a [`TransportErrorKind`] and the `ureq`
/// error as the source.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    allow_insecure_http: bool,
    max_body_bytes: usize,
}

impl HttpClient {
    /// A client with the defaults (30 s timeout, no redirects, https or loopback only).
    ///
    /// # Errors
    /// As [`HttpClientBuilder::build`].
    pub fn new() -> Result<Self, Error> {
        HttpClientBuilder::default().build()
    }

    /// A builder for non-default settings.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// Whether plain `http://` to non-loopback hosts is allowed.
    pub fn allows_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    /// Send one request and return the response, whatever its status: what the driver loop
    /// does for every [`Action::Send`](smart_core::Action::Send), for your own use (e.g.
    /// the FHIR request a token authorizes). No redirect is followed.
    ///
    /// # Errors
    /// [`Error::InsecureUrl`] for plain `http://` to a non-loopback host (unless allowed);
    /// [`Error::Transport`] (timeout, connect, TLS, body too large, other) with the driver's
    /// error as its source.
    pub fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.check(&request)?;
        self.exchange(request).map_err(Error::Transport)
    }

    /// Send without the URL check (the loop checks first).
    pub(crate) fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = request.url.to_string();
        let mut builder = ureq::http::Request::builder()
            .method(match request.method {
                Method::Post => "POST",
                Method::Get => "GET",
            })
            .uri(request.url.as_str());
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let http_request = builder
            .body(request.body)
            .map_err(|e| TransportError::new(&url, TransportErrorKind::Other, e.to_string()))?;
        // Whatever the agent's own settings: no redirects, every status to the flow.
        let http_request = self
            .agent
            .configure_request(http_request)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .build();
        let mut response = self
            .agent
            .run(http_request)
            .map_err(|e| transport_error(&url, e, self.max_body_bytes))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_body_bytes as u64)
            .read_to_vec()
            .map_err(|e| transport_error(&url, e, self.max_body_bytes))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// The https-or-loopback rule for `request` (with this client's opt-in for plain
    /// `http://`).
    ///
    /// # Errors
    /// [`Error::InsecureUrl`].
    pub fn check(&self, request: &HttpRequest) -> Result<(), Error> {
        check_url_security(&request.url, self.allow_insecure_http)
    }
}

/// Whether an error chain describes a TLS failure (a certificate not trusted, a handshake
/// refused): TLS libraries report through I/O errors, so the chain's text is the evidence.
fn mentions_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        let text = s.to_string().to_ascii_lowercase();
        if ["certificate", "tls", "handshake", "unknownissuer"]
            .iter()
            .any(|w| text.contains(w))
        {
            return true;
        }
        source = s.source();
    }
    false
}

pub(crate) fn transport_error(url: &str, e: ureq::Error, limit: usize) -> TransportError {
    let kind = match &e {
        ureq::Error::Io(io) if io.get_ref().is_some_and(|inner| mentions_tls(inner)) => {
            TransportErrorKind::Tls
        }
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                TransportErrorKind::Timeout
            }
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::NotConnected
            | std::io::ErrorKind::AddrNotAvailable
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof => TransportErrorKind::Connect,
            _ => TransportErrorKind::Other,
        },
        ureq::Error::Tls(_) | ureq::Error::TlsRequired => TransportErrorKind::Tls,
        #[cfg(feature = "rustls")]
        ureq::Error::Rustls(_) => TransportErrorKind::Tls,
        ureq::Error::BodyExceedsLimit(n) => TransportErrorKind::BodyTooLarge {
            limit: if limit > 0 {
                limit
            } else {
                usize::try_from(*n).unwrap_or(usize::MAX)
            },
        },
        _ => TransportErrorKind::Other,
    };
    let message = match kind {
        TransportErrorKind::Timeout => format!("timeout ({e})"),
        _ => e.to_string(),
    };
    TransportError::new(url, kind, message).with_source(e)
}

/// The wall clock, read here in the driver (never in the core).
pub(crate) fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}
