use std::time::{Duration, SystemTime};

use smart_core::error::{TransportError, TransportErrorKind};
use smart_core::http::{MAX_RESPONSE_BYTES, check_url_security};
use smart_core::{Error, HttpRequest, HttpResponse, Method, UnixTime};

/// Default whole-request timeout (seconds).
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Builder for [`HttpClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpClientBuilder {
    timeout: Duration,
    allow_insecure_http: bool,
    max_body_bytes: usize,
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            allow_insecure_http: false,
            max_body_bytes: MAX_RESPONSE_BYTES,
        }
    }
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

    /// Build the client.
    ///
    /// # Errors
    /// None today; the `Result` keeps the signature the same as the async driver's, whose
    /// TLS initialisation can fail.
    pub fn build(self) -> Result<HttpClient, Error> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .user_agent(concat!("smart-ureq/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
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

    /// Send one request and return the response, whatever its status.
    ///
    /// # Errors
    /// [`TransportError`] (timeout, connect, TLS, body too large, other) with the `ureq`
    /// error as its source; a refused URL is reported as [`TransportErrorKind::Other`] by
    /// [`send`](Self::send)'s callers through the flow, see [`check`](Self::check).
    pub fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
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

fn transport_error(url: &str, e: ureq::Error, limit: usize) -> TransportError {
    let kind = match &e {
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
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => {
            TransportErrorKind::Tls
        }
        ureq::Error::BodyExceedsLimit(_) => TransportErrorKind::BodyTooLarge { limit },
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
