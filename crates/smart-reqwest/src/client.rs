use std::time::{Duration, SystemTime};

use smart_core::error::{TransportError, TransportErrorKind};
use smart_core::http::{MAX_RESPONSE_BYTES, check_url_security};
use smart_core::{Error, HttpRequest, HttpResponse, Method, UnixTime};

/// Default whole-request timeout (seconds).
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Builder for [`HttpClient`].
///
/// TLS: with the default `rustls` feature the client trusts the operating system's
/// certificate store; with the `webpki-roots` feature it trusts Mozilla's root certificates
/// (bundled) instead, for containers without a store; with `native-tls` it uses the
/// platform's TLS library. For a private CA, trust exactly its certificates with
/// [`root_certificates_pem`](Self::root_certificates_pem); for mutual TLS, present a client
/// certificate with [`client_identity_pem`](Self::client_identity_pem). Or start from your
/// own `reqwest::ClientBuilder` ([`reqwest_builder`](Self::reqwest_builder)).
#[must_use]
pub struct HttpClientBuilder {
    timeout: Duration,
    allow_insecure_http: bool,
    max_body_bytes: usize,
    roots_pem: Option<Vec<u8>>,
    /// The certificate chain and the private key, both PEM.
    identity_pem: Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)>,
    reqwest: Option<reqwest::ClientBuilder>,
}

impl std::fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("timeout", &self.timeout)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("custom_roots", &self.roots_pem.is_some())
            .field("client_identity", &self.identity_pem.is_some())
            .field("own_builder", &self.reqwest.is_some())
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
            reqwest: None,
        }
    }
}

fn tls_error(message: impl Into<String>) -> Error {
    Error::Transport(TransportError::new("", TransportErrorKind::Tls, message))
}

impl HttpClientBuilder {
    /// Whole-request timeout (connect, send, receive). Default 30 s.
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
    /// and its intermediates, `private_key_pem` its key (PKCS#8, PKCS#1 or SEC1 PEM with
    /// rustls; PKCS#8 with `native-tls` alone).
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

    /// Start from your own `reqwest::ClientBuilder` (its proxy, TLS, pool and DNS settings).
    /// The driver sets what it needs on it: no redirects (`redirect::Policy::none()`), the
    /// timeout, the user agent; and it still refuses plain `http://` except to loopback and
    /// caps bodies. This builder's TLS options apply on top of yours.
    pub fn reqwest_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.reqwest = Some(builder);
        self
    }

    /// Build the client.
    ///
    /// # Errors
    /// [`Error::Transport`] (kind `Tls`) for unreadable root certificates or client identity,
    /// or when the TLS backend cannot be initialised.
    pub fn build(self) -> Result<HttpClient, Error> {
        let mut builder = self
            .reqwest
            .unwrap_or_default()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("smart-reqwest/", env!("CARGO_PKG_VERSION")));
        #[cfg(feature = "webpki-roots")]
        if self.roots_pem.is_none() {
            let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok());
            builder = builder.tls_certs_only(roots);
        }
        if let Some(pem) = &self.roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| tls_error(format!("root certificates: {e}")))?;
            if certs.is_empty() {
                return Err(tls_error("root certificates: no CERTIFICATE block"));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some((chain, key)) = &self.identity_pem {
            #[cfg(feature = "rustls")]
            let id = {
                let mut pem = zeroize::Zeroizing::new(chain.clone());
                pem.push(b'\n');
                pem.extend_from_slice(key);
                reqwest::Identity::from_pem(&pem)
            };
            #[cfg(not(feature = "rustls"))]
            let id = reqwest::Identity::from_pkcs8_pem(chain, key);
            let id =
                id.map_err(|_| tls_error("client certificate: not a certificate chain and key"))?;
            builder = builder.identity(id);
        }
        let client = builder.build().map_err(|e| {
            Error::Transport(
                TransportError::new("", TransportErrorKind::Tls, e.to_string()).with_source(e),
            )
        })?;
        Ok(HttpClient {
            client,
            allow_insecure_http: self.allow_insecure_http,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// An async HTTP client that drives `smart-core` flows. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    allow_insecure_http: bool,
    max_body_bytes: usize,
}

impl HttpClient {
    /// A client with the defaults (30 s timeout, no redirects, https or loopback only).
    ///
    /// # Errors
    /// [`Error::Transport`] if the TLS backend cannot be initialised.
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

    /// The https-or-loopback rule for `request` (with this client's opt-in for plain
    /// `http://`).
    ///
    /// # Errors
    /// [`Error::InsecureUrl`].
    pub fn check(&self, request: &HttpRequest) -> Result<(), Error> {
        check_url_security(&request.url, self.allow_insecure_http)
    }

    /// Send one request and return the response, whatever its status: what the driver loop
    /// does for every [`Action::Send`](smart_core::Action::Send), for your own use (e.g.
    /// the FHIR request a token authorizes). No redirect is followed.
    ///
    /// # Errors
    /// [`Error::InsecureUrl`] for plain `http://` to a non-loopback host (unless allowed);
    /// [`Error::Transport`] (timeout, connect, TLS, body too large, other) with the driver's
    /// error as its source.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.check(&request)?;
        self.exchange(request).await.map_err(Error::Transport)
    }

    /// Send without the URL check (the loop checks first).
    pub(crate) async fn exchange(
        &self,
        request: HttpRequest,
    ) -> Result<HttpResponse, TransportError> {
        let url = request.url.to_string();
        let method = match request.method {
            Method::Post => reqwest::Method::POST,
            Method::Get => reqwest::Method::GET,
        };
        let mut builder = self.client.request(method, request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let mut response = builder.send().await.map_err(|e| transport_error(&url, e))?;
        if response.url().as_str() != url {
            // Only a client built to follow redirects gets here: refuse what it fetched.
            return Err(TransportError::new(
                &url,
                TransportErrorKind::Other,
                "the HTTP client followed a redirect; build it with redirect::Policy::none()",
            ));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&url, e))?
        {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(TransportError::new(
                    &url,
                    TransportErrorKind::BodyTooLarge {
                        limit: self.max_body_bytes,
                    },
                    "",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Classify a `reqwest` error: its own timeout and connect flags, then the error chain for a
/// TLS failure (certificate, handshake), keeping the error as the source.
fn transport_error(url: &str, e: reqwest::Error) -> TransportError {
    let e = e.without_url();
    let mut chain = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        chain.push_str(&s.to_string().to_ascii_lowercase());
        chain.push(' ');
        source = s.source();
    }
    let tls = ["certificate", "tls", "handshake", "unknownissuer"]
        .iter()
        .any(|w| chain.contains(w));
    let kind = if e.is_timeout() || chain.contains("timed out") {
        TransportErrorKind::Timeout
    } else if tls {
        TransportErrorKind::Tls
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Other
    };
    // The whole chain: reqwest's top-level message ("error sending request") says little.
    let message = chain.trim().to_owned();
    TransportError::new(url, kind, message).with_source(e)
}

/// The wall clock, read here in the driver (never in the core).
pub(crate) fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}
