//! Authorizing your FHIR requests: [`SmartAuth`], a `ureq` middleware, and
//! [`AuthorizedAgent`], an agent wrapper that also retries once after a rejected token.
//!
//! Both take their token from a [`TokenProvider`] — a [`BackendServicesAuth`] or a
//! [`SmartClient`]. They set `Authorization: Bearer …` (marked sensitive, so `ureq` never
//! logs it) on every request. On a `401` whose `WWW-Authenticate` challenge says the token
//! is invalid (or gives no reason; RFC 6750 §3.1) they report the token rejected, so the
//! source fetches a new one. A `403` never changes the token.
//!
//! `ureq`'s middleware cannot send a request twice, so [`SmartAuth`] leaves the retry to the
//! caller's next request; [`AuthorizedAgent::run`] sends the request again **once** with the
//! new token (its body is bytes, so it can be sent again) — never in a loop.

use std::sync::Arc;

use smart_core::resource::{Advice, after_response};
use smart_core::secret::AuthorizationHeader;
use ureq::http::{HeaderValue, Request, Response, header};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::{Body, SendBody};

use crate::{BackendServicesAuth, Error, SmartClient};

/// Where the middleware gets its token, and where it reports a rejected one.
pub trait TokenProvider: Send + Sync {
    /// The `Authorization` header value for the next request.
    ///
    /// # Errors
    /// Whatever getting a token fails with (see the implementor).
    fn authorization(&self) -> Result<AuthorizationHeader, Error>;

    /// The resource server rejected a request sent with `used` (a `401`): stop using that
    /// token. A later token is kept, so many callers may report the same rejection.
    ///
    /// # Errors
    /// Whatever the source reports.
    fn rejected(&self, used: &AuthorizationHeader) -> Result<(), Error>;
}

impl TokenProvider for BackendServicesAuth {
    fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        BackendServicesAuth::authorization(self)
    }

    fn rejected(&self, used: &AuthorizationHeader) -> Result<(), Error> {
        self.on_rejected(used)
    }
}

impl TokenProvider for SmartClient {
    fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        SmartClient::authorization(self)
    }

    fn rejected(&self, used: &AuthorizationHeader) -> Result<(), Error> {
        self.on_rejected(used)
    }
}

impl<P: TokenProvider + ?Sized> TokenProvider for Arc<P> {
    fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        (**self).authorization()
    }

    fn rejected(&self, used: &AuthorizationHeader) -> Result<(), Error> {
        (**self).rejected(used)
    }
}

/// `header` as a sensitive header value.
fn header_value(h: &AuthorizationHeader) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(h.secret())
        .map_err(|_| Error::Config("the access token cannot be sent in a header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn www_authenticate<B>(r: &Response<B>) -> Option<&str> {
    r.headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
}

/// A `ureq` middleware that authorizes every request of an agent with a SMART token (see the
/// [module docs](self)).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let auth: smart_ureq::BackendServicesAuth = unimplemented!();
/// use std::sync::Arc;
/// let agent: ureq::Agent = ureq::Agent::config_builder()
///     .middleware(smart_ureq::middleware::SmartAuth::new(Arc::new(auth)))
///     .build()
///     .into();
/// let patient = agent.get("https://ehr.example.org/fhir/Patient/123").call()?;
/// # let _ = patient;
/// # Ok(()) }
/// ```
pub struct SmartAuth<P> {
    provider: Arc<P>,
}

impl<P> SmartAuth<P> {
    /// Authorize with tokens from `provider`.
    pub fn new(provider: Arc<P>) -> Self {
        Self { provider }
    }
}

impl<P: TokenProvider + 'static> Middleware for SmartAuth<P> {
    fn handle(
        &self,
        mut request: Request<SendBody>,
        next: MiddlewareNext,
    ) -> Result<Response<Body>, ureq::Error> {
        let used = self
            .provider
            .authorization()
            .map_err(|e| ureq::Error::Other(Box::new(e)))?;
        let value = header_value(&used).map_err(|e| ureq::Error::Other(Box::new(e)))?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
        let response = next.handle(request)?;
        if after_response(response.status().as_u16(), www_authenticate(&response))
            == Advice::RenewAndRetry
        {
            self.provider
                .rejected(&used)
                .map_err(|e| ureq::Error::Other(Box::new(e)))?;
        }
        Ok(response)
    }
}

/// A `ureq::Agent` that authorizes each request with a SMART token and, after a rejected
/// token, gets a new one and sends the request again once (see the [module docs](self)).
pub struct AuthorizedAgent<P> {
    agent: ureq::Agent,
    provider: Arc<P>,
}

impl<P: TokenProvider> AuthorizedAgent<P> {
    /// Send through `agent` with tokens from `provider`.
    pub fn new(agent: ureq::Agent, provider: Arc<P>) -> Self {
        Self { agent, provider }
    }

    /// Send `request` authorized; after a `401` for a rejected token, once more with a new
    /// token. The answer is returned whatever its status (`ureq` turns 4xx/5xx into errors
    /// only if the agent is configured to).
    ///
    /// # Errors
    /// [`Error::Transport`] when sending fails (the `ureq` error is the source); the token
    /// source's errors.
    pub fn run(&self, request: Request<Vec<u8>>) -> Result<Response<Body>, Error> {
        let used = self.provider.authorization()?;
        let response = self.send(&request, &used)?;
        if after_response(response.status().as_u16(), www_authenticate(&response))
            != Advice::RenewAndRetry
        {
            return Ok(response);
        }
        self.provider.rejected(&used)?;
        let fresh = self.provider.authorization()?;
        if fresh == used {
            return Ok(response);
        }
        self.send(&request, &fresh)
    }

    /// `GET url` authorized, with `Accept: application/fhir+json`.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn get(&self, url: &str) -> Result<Response<Body>, Error> {
        let request = Request::get(url)
            .header(header::ACCEPT, "application/fhir+json")
            .body(Vec::new())
            .map_err(|e| Error::Config(format!("bad request: {e}")))?;
        self.run(request)
    }

    fn send(
        &self,
        request: &Request<Vec<u8>>,
        auth: &AuthorizationHeader,
    ) -> Result<Response<Body>, Error> {
        let mut r = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version());
        for (k, v) in request.headers() {
            if k != header::AUTHORIZATION {
                r = r.header(k, v);
            }
        }
        let r = r
            .header(header::AUTHORIZATION, header_value(auth)?)
            .body(request.body().clone())
            .map_err(|e| Error::Config(format!("bad request: {e}")))?;
        let url = request.uri().to_string();
        self.agent
            .run(r)
            .map_err(|e| Error::Transport(crate::client::transport_error(&url, e, 0)))
    }
}
