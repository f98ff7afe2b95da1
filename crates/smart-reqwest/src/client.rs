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
    /// Whole-request timeout. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Permit plain `http://` to non-loopback hosts. Off by default.
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
    /// [`Error::Transport`] if the TLS backend cannot be initialised.
    pub fn build(self) -> Result<HttpClient, Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("smart-reqwest/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
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

    /// Send one request and return the response, whatever its status.
    ///
    /// # Errors
    /// [`TransportError`] (timeout, connect, TLS, body too large, other) with the `reqwest`
    /// error as its source.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
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
