//! Authorizing your FHIR requests with [`SmartAuth`], a `reqwest-middleware` middleware.
//!
//! It takes its token from a [`TokenProvider`] — a [`BackendServicesAuth`] or a
//! [`SmartClient`] — and sets `Authorization: Bearer …` (marked sensitive, so it is never
//! logged by `reqwest`) on every request. On a `401` whose `WWW-Authenticate` challenge says
//! the token is invalid (or gives no reason; RFC 6750 §3.1) it reports the token rejected,
//! gets a new one and sends the request again **once** — only when the request can be
//! cloned (its body is not a stream) and a different token came back. Never in a loop, never
//! after a `403`.
//!
//! ```no_run
//! # async fn demo(auth: smart_reqwest::BackendServicesAuth) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use smart_reqwest::middleware::SmartAuth;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(SmartAuth::new(Arc::new(auth)))
//!     .build();
//! let patient = client
//!     .get("https://ehr.example.org/fhir/Patient/123")
//!     .header("accept", "application/fhir+json")
//!     .send()
//!     .await?;
//! # let _ = patient;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use http::Extensions;
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use smart_core::resource::{Advice, after_response};
use smart_core::secret::AuthorizationHeader;

use crate::{BackendServicesAuth, Error, SmartClient};

/// Where the middleware gets its token, and where it reports a rejected one.
pub trait TokenProvider: Send + Sync + 'static {
    /// The `Authorization` header value for the next request.
    fn authorization(&self) -> impl Future<Output = Result<AuthorizationHeader, Error>> + Send;

    /// The resource server rejected a request sent with `used` (a `401`): stop using that
    /// token. A later token is kept, so many callers may report the same rejection.
    ///
    /// # Errors
    /// Whatever the source reports.
    fn rejected(&self, used: &AuthorizationHeader) -> Result<(), Error>;
}

impl TokenProvider for BackendServicesAuth {
    async fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        BackendServicesAuth::authorization(self).await
    }

    fn rejected(&self, used: &AuthorizationHeader) -> Result<(), Error> {
        self.on_rejected(used)
    }
}

impl TokenProvider for SmartClient {
    async fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        SmartClient::authorization(self).await
    }

    fn rejected(&self, used: &AuthorizationHeader) -> Result<(), Error> {
        self.on_rejected(used)
    }
}

/// A `reqwest-middleware` middleware authorizing every request with a SMART token (see the
/// [module docs](self)).
pub struct SmartAuth<P> {
    provider: Arc<P>,
}

impl<P> SmartAuth<P> {
    /// Authorize with tokens from `provider`.
    pub fn new(provider: Arc<P>) -> Self {
        Self { provider }
    }
}

fn middleware_error(e: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::Middleware(anyhow::Error::new(e))
}

fn set_authorization(request: &mut Request, h: &AuthorizationHeader) -> Result<(), Error> {
    let mut v = HeaderValue::from_str(h.secret())
        .map_err(|_| Error::Config("the access token cannot be sent in a header".into()))?;
    v.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, v);
    Ok(())
}

#[async_trait::async_trait]
impl<P: TokenProvider> Middleware for SmartAuth<P> {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let used = self
            .provider
            .authorization()
            .await
            .map_err(middleware_error)?;
        set_authorization(&mut request, &used).map_err(middleware_error)?;
        let again = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        let www = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok());
        if after_response(response.status().as_u16(), www) != Advice::RenewAndRetry {
            return Ok(response);
        }
        self.provider.rejected(&used).map_err(middleware_error)?;
        let Some(mut again) = again else {
            // A streamed body cannot be sent twice: the caller gets the 401; the next request
            // carries a new token.
            return Ok(response);
        };
        let fresh = self
            .provider
            .authorization()
            .await
            .map_err(middleware_error)?;
        if fresh == used {
            return Ok(response);
        }
        set_authorization(&mut again, &fresh).map_err(middleware_error)?;
        next.run(again, extensions).await
    }
}
