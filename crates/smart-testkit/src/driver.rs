//! What the shared [scenarios](mod@crate::scenarios) need from a driver crate, as one trait.
//!
//! The scenarios are written once, as generic functions `fn scenario<D: Driver>()`, and run
//! against every driver: each driver crate's tests implement [`Driver`] for a marker type (one
//! small file, `tests/scenarios/harness.rs`) and instantiate the whole list with
//! [`scenarios!`](crate::scenarios!). `smart-testkit` cannot depend on the driver crates (they
//! depend on it for their tests), so everything here is expressed with `smart-core` types and
//! associated types for the driver's own client types.
//!
//! The trait is blocking: an async driver's implementation runs each call to completion on a
//! tokio runtime it keeps for the test binary (`block_on`), and
//! [`concurrent_tokens`](Driver::concurrent_tokens) runs its callers as tasks of a
//! multi-thread runtime; a blocking driver uses threads.

use std::sync::Arc;
use std::time::Duration;

use smart_core::backend::BackendServicesConfig;
use smart_core::client_auth::ClientAuth;
use smart_core::context::FhirContextItem;
use smart_core::discovery::Discovered;
use smart_core::entropy::Entropy;
use smart_core::id_token::{UnverifiedIdTokenClaims, VerifiedIdTokenClaims};
use smart_core::introspection::{Introspection, IntrospectionAuth, TokenTypeHint};
use smart_core::launch::{AppConfig, AuthorizationRequest, Launch, PendingAuthorization};
use smart_core::secret::{AccessToken, AuthorizationHeader, IdToken, RefreshToken};
use smart_core::session::Session;
use smart_core::store::{InMemoryTokenStore, StoredToken};
use smart_core::token::TokenResponse;
use smart_core::{CachedToken, Error, FhirBaseUrl, Flow, HttpRequest, HttpResponse};
use url::Url;

/// The settings of a driver's `HttpClient` the scenarios vary (`None`: the driver's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpOptions {
    /// Whole-request timeout.
    pub timeout: Option<Duration>,
    /// Permit plain `http://` to non-loopback hosts.
    pub allow_insecure_http: bool,
    /// Response-body cap in bytes.
    pub max_body_bytes: Option<usize>,
}

impl HttpOptions {
    /// With a whole-request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// With plain `http://` allowed (or not) to non-loopback hosts.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// With a response-body cap.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = Some(limit);
        self
    }
}

/// Called with every new token set of a `SmartClient` (the drivers' `RotationHook`).
pub type RotationHook = Arc<dyn Fn(&StoredToken) + Send + Sync>;

/// How a scenario builds a `SmartClient` around a [`Session`] (the drivers' builder).
#[derive(Default)]
pub struct ClientOptions<H> {
    /// The HTTP client (`None`: the driver's default).
    pub http: Option<H>,
    /// The token store (`None`: the builder's default in-memory store).
    pub store: Option<Arc<InMemoryTokenStore>>,
    /// The key to store under (`None`: [`Session::store_key`]).
    pub store_key: Option<String>,
    /// The rotation hook.
    pub on_rotate: Option<RotationHook>,
    /// The builder's `retry_policy` (`None`: the session's).
    pub retry: Option<smart_core::retry::RetryPolicy>,
}

/// Everything a `SmartClient`'s synchronous getters return, read at one moment. A driver fills
/// it with [`client_snapshot!`](crate::client_snapshot!), one field per getter of the same
/// name.
#[derive(Debug, Clone)]
pub struct ClientSnapshot {
    /// `store_key()`.
    pub store_key: String,
    /// `stored()`.
    pub stored: StoredToken,
    /// `tokens()`.
    pub tokens: Arc<CachedToken>,
    /// `fhir_base()`.
    pub fhir_base: FhirBaseUrl,
    /// `patient_id()`.
    pub patient_id: Option<String>,
    /// `encounter_id()`.
    pub encounter_id: Option<String>,
    /// `fhir_context()`.
    pub fhir_context: Vec<FhirContextItem>,
    /// `need_patient_banner()`.
    pub need_patient_banner: Option<bool>,
    /// `smart_style_url()`.
    pub smart_style_url: Option<String>,
    /// `scope()`.
    pub scope: Option<String>,
    /// `id_token()`.
    pub id_token: Option<IdToken>,
    /// `id_token_claims_unverified()`.
    pub id_token_claims_unverified: Option<UnverifiedIdTokenClaims>,
    /// `fhir_user()`, resolved against `fhir_base()`.
    pub fhir_user: Option<Url>,
}

/// Fill a [`ClientSnapshot`] from a driver's `SmartClient` (whose getters have the same names
/// in every driver).
#[macro_export]
macro_rules! client_snapshot {
    ($client:expr) => {{
        let c = $client;
        $crate::driver::ClientSnapshot {
            store_key: c.store_key(),
            stored: c.stored(),
            tokens: c.tokens(),
            fhir_base: c.fhir_base(),
            patient_id: c.patient_id(),
            encounter_id: c.encounter_id(),
            fhir_context: c.fhir_context(),
            need_patient_banner: c.need_patient_banner(),
            smart_style_url: c.smart_style_url(),
            scope: c.scope(),
            id_token: c.id_token(),
            id_token_claims_unverified: c.id_token_claims_unverified(),
            fhir_user: c.fhir_user().and_then(|u| u.url(&c.fhir_base())),
        }
    }};
}

/// A driver's `HttpClientBuilder` (`$builder`) with [`HttpOptions`] (`$options`) applied (the
/// builder methods have the same names in every driver); build it yourself.
#[macro_export]
macro_rules! http_builder {
    ($builder:expr, $options:expr) => {{
        let options: $crate::driver::HttpOptions = $options;
        let mut b = $builder.allow_insecure_http(options.allow_insecure_http);
        if let Some(t) = options.timeout {
            b = b.timeout(t);
        }
        if let Some(limit) = options.max_body_bytes {
            b = b.max_body_bytes(limit);
        }
        b
    }};
}

/// A driver's `SmartClientBuilder` (`$builder`) with [`ClientOptions`] (`$options`) applied (the
/// builder methods have the same names in every driver); build it yourself.
#[macro_export]
macro_rules! client_builder {
    ($builder:expr, $options:expr) => {{
        let options = $options;
        let mut b = $builder;
        if let Some(http) = options.http {
            b = b.http(http);
        }
        if let Some(store) = options.store {
            b = b.store(store);
        }
        if let Some(key) = options.store_key {
            b = b.store_key(key);
        }
        if let Some(hook) = options.on_rotate {
            b = b.on_rotate(hook);
        }
        if let Some(policy) = options.retry {
            b = b.retry_policy(policy);
        }
        b
    }};
}

/// A driver crate as the scenarios see it. See the [module docs](self).
pub trait Driver: Sized + 'static {
    /// The driver's name, for messages (`"ureq"`, `"reqwest"`).
    const NAME: &'static str;
    /// Whether a token source renews a still-valid token in the background (the caller that
    /// finds it inside the skew window gets it at once) rather than in the calling thread.
    const RENEWS_IN_BACKGROUND: bool;

    /// The driver's `HttpClient`.
    type Http: Clone + Send + Sync + 'static;
    /// The driver's `BackendServicesAuth`.
    type Auth: std::fmt::Debug + Send + Sync + 'static;
    /// The driver's `SmartClient`.
    type Client: std::fmt::Debug + Send + Sync + 'static;

    // ---- HTTP -------------------------------------------------------------------------------

    /// `HttpClient::builder()` with `options`, built.
    ///
    /// # Errors
    /// As the driver's builder.
    fn http(options: HttpOptions) -> Result<Self::Http, Error>;

    /// `HttpClient::new()`.
    ///
    /// # Panics
    /// When the client cannot be built.
    fn default_http() -> Self::Http {
        Self::http(HttpOptions::default()).expect("HttpClient::new")
    }

    /// `http.send(request)`.
    ///
    /// # Errors
    /// [`Error::InsecureUrl`], [`Error::Transport`].
    fn send(http: &Self::Http, request: HttpRequest) -> Result<HttpResponse, Error>;

    /// `http.run(flow)`.
    ///
    /// # Errors
    /// Whatever the flow or the driver returns.
    fn run<F: Flow + Send>(http: &Self::Http, flow: F) -> Result<F::Output, Error>
    where
        F::Output: Send;

    // ---- Backend Services -------------------------------------------------------------------

    /// `BackendServicesAuth::new(config)`.
    ///
    /// # Errors
    /// As the driver's constructor.
    fn backend(config: BackendServicesConfig) -> Result<Self::Auth, Error>;

    /// `BackendServicesAuth::with_client(config, http, entropy)`.
    ///
    /// # Errors
    /// As the driver's constructor.
    fn backend_with_client(
        config: BackendServicesConfig,
        http: Self::Http,
        entropy: Arc<dyn Entropy>,
    ) -> Result<Self::Auth, Error>;

    /// `auth.with_store(store, key)`.
    fn backend_with_store(
        auth: Self::Auth,
        store: Arc<InMemoryTokenStore>,
        key: Option<String>,
    ) -> Self::Auth;

    /// `auth.token()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn token(auth: &Self::Auth) -> Result<Arc<CachedToken>, Error>;

    /// `auth.access_token()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn access_token(auth: &Self::Auth) -> Result<AccessToken, Error>;

    /// `auth.authorization()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn authorization(auth: &Self::Auth) -> Result<AuthorizationHeader, Error>;

    /// `auth.on_unauthorized()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn on_unauthorized(auth: &Self::Auth) -> Result<(), Error>;

    /// `GET url` (with `Accept: application/fhir+json`) through the driver's FHIR request
    /// authorization — `smart_reqwest::middleware::SmartAuth` in a `reqwest-middleware`
    /// client, `smart_ureq::middleware::AuthorizedAgent` — with tokens from `auth`; the status
    /// and body of the answer.
    ///
    /// # Errors
    /// The token source's errors; transport errors.
    fn authorized_get(auth: &Arc<Self::Auth>, url: &str) -> Result<(u16, String), Error>;

    /// `callers` callers (threads, or tasks of a multi-thread runtime) released at once by a
    /// barrier, each calling `auth.token()`; their results in caller order.
    fn concurrent_tokens(
        auth: &Arc<Self::Auth>,
        callers: usize,
    ) -> Vec<Result<Arc<CachedToken>, Error>>;

    // ---- App Launch and the free functions --------------------------------------------------

    /// `discover(http, fhir_base)`.
    ///
    /// # Errors
    /// As the driver's function.
    fn discover(http: &Self::Http, fhir_base: &FhirBaseUrl) -> Result<Discovered, Error>;

    /// `begin_launch(http, app, launch)`.
    ///
    /// # Errors
    /// As the driver's function.
    fn begin_launch(
        http: &Self::Http,
        app: &AppConfig,
        launch: Launch,
    ) -> Result<AuthorizationRequest, Error>;

    /// `complete_launch(http, app, pending, redirect_url)`.
    ///
    /// # Errors
    /// As the driver's function.
    fn complete_launch(
        http: &Self::Http,
        app: &AppConfig,
        pending: PendingAuthorization,
        redirect_url: &str,
    ) -> Result<Self::Client, Error>;

    /// `refresh_token(http, app, token_endpoint, refresh_token, scope)`.
    ///
    /// # Errors
    /// As the driver's function.
    fn refresh_token(
        http: &Self::Http,
        app: &AppConfig,
        token_endpoint: &Url,
        refresh_token: &RefreshToken,
        scope: Option<&str>,
    ) -> Result<TokenResponse, Error>;

    /// `introspect(http, endpoint, token, hint, auth)`.
    ///
    /// # Errors
    /// As the driver's function.
    fn introspect(
        http: &Self::Http,
        endpoint: &Url,
        token: &AccessToken,
        token_type_hint: Option<TokenTypeHint>,
        auth: IntrospectionAuth,
    ) -> Result<Introspection, Error>;

    /// `revoke(http, endpoint, token, hint, client_auth)`.
    ///
    /// # Errors
    /// As the driver's function.
    fn revoke(
        http: &Self::Http,
        endpoint: &Url,
        token: &AccessToken,
        token_type_hint: Option<TokenTypeHint>,
        client_auth: &ClientAuth,
    ) -> Result<(), Error>;

    // ---- SmartClient ------------------------------------------------------------------------

    /// `SmartClient::builder(session)` with `options`, built.
    ///
    /// # Errors
    /// As the driver's builder.
    fn client(session: Session, options: ClientOptions<Self::Http>) -> Result<Self::Client, Error>;

    /// `SmartClient::restore(app, store, key)`.
    ///
    /// # Errors
    /// As the driver's function.
    fn restore(
        app: &AppConfig,
        store: Arc<InMemoryTokenStore>,
        key: &str,
    ) -> Result<Self::Client, Error>;

    /// `client.token()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn client_token(client: &Self::Client) -> Result<Arc<CachedToken>, Error>;

    /// `client.authorization()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn client_authorization(client: &Self::Client) -> Result<AuthorizationHeader, Error>;

    /// `client.refresh(scope)`.
    ///
    /// # Errors
    /// As the driver's method.
    fn client_refresh(
        client: &Self::Client,
        scope: Option<&str>,
    ) -> Result<Arc<CachedToken>, Error>;

    /// `client.on_unauthorized()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn client_on_unauthorized(client: &Self::Client) -> Result<(), Error>;

    /// `client.verify_id_token()`.
    ///
    /// # Errors
    /// As the driver's method.
    fn client_verify_id_token(client: &Self::Client) -> Result<VerifiedIdTokenClaims, Error>;

    /// The client's getters ([`client_snapshot!`](crate::client_snapshot!)).
    fn snapshot(client: &Self::Client) -> ClientSnapshot;
}
