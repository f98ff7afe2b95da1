use std::time::{Duration, SystemTime};

use smart_core::flow::{MAX_RESPONSE_BYTES, check_url_security};
use smart_core::{Action, Flow, HttpRequest, HttpResponse, Method, UnixTime};

use crate::Error;

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
            .map_err(|e| Error::Transport {
                url: String::new(),
                message: e.to_string(),
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

    /// Send one request and return the response, whatever its status.
    ///
    /// # Errors
    /// [`Error::Smart`] with [`smart_core::Error::InsecureUrl`] for a refused URL,
    /// [`Error::Transport`] when the exchange fails, [`Error::BodyTooLarge`] past the cap.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        check_url_security(&request.url, self.allow_insecure_http)?;
        let url = request.url.to_string();
        let transport = |e: reqwest::Error| Error::Transport {
            url: url.clone(),
            // without_url: the URL is reported once, above; never echo bodies.
            message: e.without_url().to_string(),
        };
        let method = match request.method {
            Method::Post => reqwest::Method::POST,
            _ => reqwest::Method::GET,
        };
        let mut builder = self.client.request(method, request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let mut response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(Error::BodyTooLarge {
                    url,
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// Drive `flow` to completion: poll, send, feed the response, repeat. On a transport
    /// failure the flow is [`abort`](Flow::abort)ed (so a retry signs a new assertion).
    ///
    /// # Errors
    /// Whatever the flow or [`send`](Self::send) returns.
    pub async fn run<F: Flow + Send>(&self, flow: &mut F) -> Result<F::Output, Error> {
        loop {
            match flow.poll(now())? {
                Action::Ready(output) => return Ok(output),
                Action::Send(request) => match self.send(request).await {
                    Ok(response) => flow.handle_response(response, now())?,
                    Err(e) => {
                        flow.abort();
                        return Err(e);
                    }
                },
                _ => return Err(smart_core::Error::Misuse("unknown action").into()),
            }
        }
    }
}

/// The wall clock, read here in the driver (never in the core).
pub(crate) fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}
