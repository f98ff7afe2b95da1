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
    pub fn build(self) -> HttpClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .user_agent(concat!("smart-ureq/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpClient {
            agent,
            allow_insecure_http: self.allow_insecure_http,
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// A blocking HTTP client that drives `smart-core` flows. Cheap to clone (the connection
/// pool is shared).
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    allow_insecure_http: bool,
    max_body_bytes: usize,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with the defaults (30 s timeout, no redirects, https or loopback only).
    pub fn new() -> Self {
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
    pub fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        check_url_security(&request.url, self.allow_insecure_http)?;
        let url = request.url.to_string();
        let transport = |e: ureq::Error| Error::Transport {
            url: url.clone(),
            message: e.to_string(),
        };
        let mut builder = ureq::http::Request::builder()
            .method(match request.method {
                Method::Post => "POST",
                _ => "GET",
            })
            .uri(request.url.as_str());
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let http_request = builder.body(request.body).map_err(|e| Error::Transport {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let mut response = self.agent.run(http_request).map_err(transport)?;
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
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::BodyTooLarge {
                    url: url.clone(),
                    limit: self.max_body_bytes,
                },
                other => transport(other),
            })?;
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
    pub fn run<F: Flow>(&self, flow: &mut F) -> Result<F::Output, Error> {
        loop {
            match flow.poll(now())? {
                Action::Ready(output) => return Ok(output),
                Action::Send(request) => match self.send(request) {
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
