//! SMART Backend Services (SMART App Launch §"Backend Services"): `client_credentials` with a
//! signed `client_assertion` (RFC 7523), and the access-token cache.
//!
//! [`BackendServices`] is a token-source [`Flow`] whose output is the current token
//! ([`CachedToken`]). Polled with a fresh token it answers [`Action::Ready`] at once; on a cold
//! cache it discovers the token endpoint (unless a [`SmartConfiguration`] was supplied) and
//! requests a token; inside the skew window before expiry one caller renews it while the
//! others keep using the still-valid token. Each token request carries a freshly signed
//! assertion with a new `jti`, so a retried request never replays one. Failures are retried
//! and backed off as [`crate::retry`] describes; a store, when configured, is consulted and
//! updated as [`crate::store`] describes.
//!
//! ```text
//!   cold ──poll──▶ [GET smart-configuration] ──▶ [store: Get / lease] ──▶ POST token
//!     ▲                                                                     │ 2xx
//!     │ invalidate (401)                                                   ▼
//!     └──────────── fresh: Ready(token) ◀── [store: Set / release] ◀── cached
//!                   skew window: one caller renews, others Ready(still-valid token)
//! ```

use std::sync::Arc;

use url::Url;

use crate::assertion::{
    AssertionKey, AssertionSigner, DEFAULT_ASSERTION_LIFETIME_SECS, MAX_ASSERTION_LIFETIME_SECS,
    RemoteSigner,
};
use crate::client_auth::ClientAuth;
use crate::discovery::{Discovered, Discovery, SmartConfiguration};
use crate::entropy::Entropy;
use crate::error::{Error, TransportError};
use crate::flow::{Action, Flow};
use crate::http::{HttpRequest, HttpResponse, check_url_security};
use crate::request::authenticated_post;
use crate::retry::RetryPolicy;
use crate::secret::AuthorizationHeader;
use crate::sign::Prepared;
use crate::source::{CachedToken, Engine, Fetcher, TokenSource};
use crate::store::{LeaseConfig, StoreEvent, StoreResult, StoredToken};
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};
use crate::types::{ClientId, FhirBaseUrl};

pub use crate::store::CacheKey;

/// Default refresh skew: a cached token is renewed this many **seconds** before it expires.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 30;

/// The `grant_type` of a Backend Services token request (RFC 6749 §4.4).
pub const GRANT_TYPE_CLIENT_CREDENTIALS: &str = "client_credentials";

/// Configuration of a Backend Services client: the FHIR base URL, `client_id`, scope, the
/// signer (key, algorithm and `kid`), an optional ready SMART configuration, the token cache's
/// skew and the assertion lifetime, plus `jku` and an explicit opt-in for plain-HTTP
/// endpoints.
///
/// Build with [`BackendServicesConfig::new`] and the `with_*` methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackendServicesConfig {
    /// The FHIR base URL, used for discovery when no
    /// [`smart_configuration`](Self::smart_configuration) is given.
    pub fhir_base: Option<FhirBaseUrl>,
    /// The registered `client_id`; also the assertion's `iss` and `sub`.
    pub client_id: ClientId,
    /// Space-delimited scopes to request, typically `system/*.rs` patterns
    /// (SMART App Launch §"Backend Services").
    pub scope: String,
    /// Signs the `client_assertion` (ES384 or RS384; `kid` comes from the signer): a local
    /// signer, or a [`RemoteSigner`] (KMS, HSM) that the token source asks its driver to
    /// await ([`Action::Sign`]) with no lock held.
    pub signer: AssertionKey,
    /// Skip discovery and use this configuration.
    pub smart_configuration: Option<SmartConfiguration>,
    /// Renew a cached token this many **seconds** before its expiry (default 30).
    pub clock_skew_secs: u64,
    /// Assertion lifetime in **seconds**: `exp = now + lifetime`; at most 300 (default 240).
    /// Above 240 it narrows the server clock skew tolerated through a backdated `iat` (see
    /// [`AssertionClaims`](crate::assertion::AssertionClaims#clock-skew)).
    pub assertion_lifetime_secs: u64,
    /// Optional `jku` header: the registered JWKS URL (IG "Client Authentication: Asymmetric").
    pub jku: Option<String>,
    /// Allow plain `http://` endpoints on non-loopback hosts (never do this in production).
    pub allow_insecure_http: bool,
    /// Retries within a token request and backoff between failed ones (see
    /// [`crate::retry`]).
    pub retry: RetryPolicy,
}

impl BackendServicesConfig {
    /// A configuration with the defaults: skew 30 s, assertion lifetime 240 s (a minute of margin
    /// under the 300 s ceiling, so a server whose clock lags the client's by up to a minute does
    /// not see `exp` more than five minutes ahead and answer `invalid_client`), no `jku`. Set
    /// [`with_fhir_base`](Self::with_fhir_base) or
    /// [`with_smart_configuration`](Self::with_smart_configuration) before use.
    pub fn new(
        client_id: ClientId,
        scope: impl Into<String>,
        signer: Arc<dyn AssertionSigner>,
    ) -> Self {
        Self::with_key(client_id, scope.into(), AssertionKey::Local(signer))
    }

    /// As [`new`](Self::new), with the key behind a [`RemoteSigner`] (a KMS or HSM; RFC 7523
    /// §3, IG "Client Authentication: Asymmetric"): each token request's assertion has its
    /// claims fixed in [`poll`](Flow::poll), which then returns [`Action::Sign`]; the driver
    /// awaits the signature without holding the token source's lock and reports it with
    /// [`handle_signature`](Flow::handle_signature), and the next poll sends the request. A
    /// signature arriving more than `lifetime − min(60 s, lifetime/2)` after the claims were
    /// fixed is discarded and the assertion made again (see [`crate::sign`]).
    pub fn new_with_remote_signer(
        client_id: ClientId,
        scope: impl Into<String>,
        signer: Arc<dyn RemoteSigner>,
    ) -> Self {
        Self::with_key(client_id, scope.into(), AssertionKey::Remote(signer))
    }

    fn with_key(client_id: ClientId, scope: String, signer: AssertionKey) -> Self {
        Self {
            fhir_base: None,
            client_id,
            scope,
            signer,
            smart_configuration: None,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            assertion_lifetime_secs: DEFAULT_ASSERTION_LIFETIME_SECS,
            jku: None,
            allow_insecure_http: false,
            retry: RetryPolicy::default(),
        }
    }

    /// Discover endpoints from `{fhir_base}/.well-known/smart-configuration`.
    #[must_use]
    pub fn with_fhir_base(mut self, fhir_base: FhirBaseUrl) -> Self {
        self.fhir_base = Some(fhir_base);
        self
    }

    /// Use this configuration instead of discovery.
    #[must_use]
    pub fn with_smart_configuration(mut self, config: SmartConfiguration) -> Self {
        self.smart_configuration = Some(config);
        self
    }

    /// Renew tokens `secs` seconds before expiry.
    #[must_use]
    pub fn with_clock_skew_secs(mut self, secs: u64) -> Self {
        self.clock_skew_secs = secs;
        self
    }

    /// Assertion lifetime in seconds (1..=300).
    #[must_use]
    pub fn with_assertion_lifetime_secs(mut self, secs: u64) -> Self {
        self.assertion_lifetime_secs = secs;
        self
    }

    /// Send a `jku` header equal to the registered JWKS URL.
    #[must_use]
    pub fn with_jku(mut self, jku: impl Into<String>) -> Self {
        self.jku = Some(jku.into());
        self
    }

    /// Permit plain-HTTP endpoints on non-loopback hosts.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Use `policy` for retries and backoff.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
}

/// The `client_credentials` part of the token source: discovery, the token request.
#[derive(Debug)]
struct ClientCredentials {
    config: BackendServicesConfig,
    client_auth: ClientAuth,
    smart_configuration: Option<SmartConfiguration>,
    discovery: Option<Discovery>,
    discovered: Option<Discovered>,
    store_key: Option<String>,
}

impl ClientCredentials {
    fn scope(&self) -> String {
        self.config
            .scope
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn cache_key(&self) -> Option<CacheKey> {
        self.smart_configuration.as_ref().map(|sc| CacheKey {
            token_endpoint: sc.token_endpoint.as_str().to_owned(),
            client_id: self.config.client_id.as_str().to_owned(),
            scope: self.scope(),
        })
    }

    fn accept_discovery(&mut self, discovered: Discovered) -> Result<(), Error> {
        check_url_security(
            &discovered.config.token_endpoint,
            self.config.allow_insecure_http,
        )?;
        self.smart_configuration = Some(discovered.config.clone());
        self.discovered = Some(discovered);
        Ok(())
    }

    fn discovery(&mut self) -> Result<&mut Discovery, Error> {
        if self.discovery.is_none() {
            let base = self
                .config
                .fhir_base
                .clone()
                .ok_or_else(|| Error::Config("no FHIR base URL to discover from".into()))?;
            self.discovery =
                Some(Discovery::new(base).allow_insecure_http(self.config.allow_insecure_http));
        }
        self.discovery
            .as_mut()
            .ok_or(Error::Misuse("discovery not started"))
    }
}

impl Fetcher for ClientCredentials {
    fn setup_request(&mut self, now: UnixTime) -> Result<Option<HttpRequest>, Error> {
        if self.smart_configuration.is_some() {
            return Ok(None);
        }
        let step = self.discovery()?.poll(now);
        match step {
            Ok(Action::Send(req)) => Ok(Some(req)),
            Ok(Action::Ready(discovered)) => {
                self.discovery = None;
                self.accept_discovery(discovered)?;
                Ok(None)
            }
            Ok(
                Action::Sign(_) | Action::Store(_) | Action::WaitUntil(_) | Action::WaitForFlight,
            ) => {
                self.discovery = None;
                Err(Error::Misuse(
                    "discovery asked for an action it never emits",
                ))
            }
            Err(e) => {
                self.discovery = None;
                Err(e)
            }
        }
    }

    fn setup_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        let result = self.discovery()?.handle_response(response, now);
        if result.is_err() {
            self.discovery = None;
        }
        result
    }

    fn setup_transport_error(&mut self, error: TransportError, now: UnixTime) -> Error {
        let e = match self.discovery() {
            Ok(d) => d
                .handle_transport_error(error, now)
                .err()
                .unwrap_or(Error::Misuse("discovery ignored a transport error")),
            Err(e) => e,
        };
        self.discovery = None;
        e
    }

    fn setup_abort(&mut self) {
        if let Some(d) = self.discovery.as_mut() {
            d.abort();
        }
    }

    fn store_key(&self) -> Option<String> {
        self.store_key
            .clone()
            .or_else(|| self.cache_key().map(|k| k.to_string()))
    }

    fn precheck(&self, _current: Option<&TokenResponse>) -> Result<(), Error> {
        Ok(())
    }

    fn fetch(
        &mut self,
        _current: Option<&TokenResponse>,
        now: UnixTime,
        entropy: &dyn Entropy,
    ) -> Result<Prepared, Error> {
        let sc = self
            .smart_configuration
            .as_ref()
            .ok_or(Error::Misuse("no SMART configuration after discovery"))?;
        let fields = vec![
            ("grant_type".into(), GRANT_TYPE_CLIENT_CREDENTIALS.into()),
            ("scope".into(), self.scope()),
        ];
        authenticated_post(
            crate::request::PostTo {
                purpose: crate::http::Purpose::TokenRequest,
                endpoint: &sc.token_endpoint,
                allow_insecure_http: self.config.allow_insecure_http,
            },
            &self.client_auth,
            fields,
            &[],
            now,
            entropy,
        )
    }

    fn fetch_url(&self) -> Option<Url> {
        self.smart_configuration
            .as_ref()
            .map(|sc| sc.token_endpoint.url().clone())
    }

    fn fetched(
        &mut self,
        response: &HttpResponse,
        _current: Option<&TokenResponse>,
        now: UnixTime,
    ) -> Result<TokenResponse, Error> {
        let url = self
            .fetch_url()
            .ok_or(Error::Misuse("no token endpoint after discovery"))?;
        parse_token_response(response, &url, now)
    }

    fn failed(
        &mut self,
        _error: &Error,
        _current: Option<&TokenResponse>,
    ) -> Option<TokenResponse> {
        None
    }

    fn flight_over(&mut self) {}

    fn stored(&self, token: &TokenResponse) -> Option<StoredToken> {
        Some(StoredToken {
            fhir_base: self.config.fhir_base.clone(),
            token_endpoint: self.smart_configuration.as_ref()?.token_endpoint.clone(),
            client_id: self.config.client_id.clone(),
            token: token.clone(),
        })
    }

    fn adopt(
        &self,
        stored: StoredToken,
        _current: Option<&TokenResponse>,
    ) -> Result<TokenResponse, &'static str> {
        let endpoint = self
            .fetch_url()
            .ok_or("the token endpoint is not known yet")?;
        if stored.belongs_to(&endpoint, &self.config.client_id) {
            Ok(stored.token)
        } else {
            Err("it was issued by another token endpoint or to another client_id")
        }
    }

    fn store_ttl_secs(&self, token: &CachedToken, now: UnixTime) -> Option<u64> {
        token.usable_until().map(|u| now.secs_until(u).max(1))
    }
}

/// The Backend Services token source: a token-source [`Flow`] with output
/// [`Arc<CachedToken>`]. See the [module docs](self).
///
/// Poll it each time a token is needed: a fresh token is returned without a request. Call
/// [`invalidate`](Self::invalidate) when the resource server answers 401.
#[derive(Debug)]
pub struct BackendServices {
    engine: Engine<ClientCredentials>,
}

impl BackendServices {
    /// Validate `config` and build the token source. `entropy` supplies every `jti` (and the
    /// jitter of retry delays).
    ///
    /// # Errors
    /// [`Error::Config`] when the assertion lifetime is 0 or over 300 s, neither a FHIR base
    /// nor a configuration is given, or the scope is empty; [`Error::InsecureUrl`] for a
    /// plain-HTTP endpoint on a non-loopback host.
    pub fn new(config: BackendServicesConfig, entropy: Arc<dyn Entropy>) -> Result<Self, Error> {
        if config.assertion_lifetime_secs == 0
            || config.assertion_lifetime_secs > MAX_ASSERTION_LIFETIME_SECS
        {
            return Err(Error::Config(format!(
                "assertion_lifetime_secs must be 1..={MAX_ASSERTION_LIFETIME_SECS}, got {}",
                config.assertion_lifetime_secs
            )));
        }
        if config.scope.split_whitespace().next().is_none() {
            return Err(Error::Config("scope must not be empty".into()));
        }
        if let Some(base) = &config.fhir_base {
            check_url_security(&base.url(), config.allow_insecure_http)?;
        }
        let smart_configuration = config.smart_configuration.clone();
        if let Some(sc) = &smart_configuration {
            check_url_security(&sc.token_endpoint, config.allow_insecure_http)?;
        } else if config.fhir_base.is_none() {
            return Err(Error::Config(
                "either a FHIR base URL (for discovery) or a SMART configuration is required"
                    .into(),
            ));
        }
        let client_auth = ClientAuth::ConfidentialAsymmetric {
            client_id: config.client_id.clone(),
            signer: config.signer.clone(),
            assertion_lifetime_secs: config.assertion_lifetime_secs,
            jku: config.jku.clone(),
        };
        let skew = config.clock_skew_secs;
        let policy = config.retry;
        let fetcher = ClientCredentials {
            config,
            client_auth,
            smart_configuration,
            discovery: None,
            discovered: None,
            store_key: None,
        };
        let mut engine = Engine::new(fetcher, entropy, skew);
        engine.policy = policy;
        Ok(Self { engine })
    }

    /// Consult and update a token store (see [`crate::store`]): load a stored token once the
    /// token endpoint is known, save every new token, delete a rejected one. `key` defaults
    /// to the [`CacheKey`] string. With `lease` enabled, processes sharing the store take
    /// turns fetching.
    #[must_use]
    pub fn with_store(mut self, key: Option<String>, lease: LeaseConfig) -> Self {
        self.set_store(key, lease);
        self
    }

    /// [`with_store`](Self::with_store) in place.
    pub fn set_store(&mut self, key: Option<String>, lease: LeaseConfig) {
        self.engine.fetcher.store_key = key;
        self.engine.set_store(lease, false);
    }

    /// The configuration in use.
    pub fn config(&self) -> &BackendServicesConfig {
        &self.engine.fetcher.config
    }

    /// The SMART configuration, once supplied or discovered.
    pub fn smart_configuration(&self) -> Option<&SmartConfiguration> {
        self.engine.fetcher.smart_configuration.as_ref()
    }

    /// The discovery result (with its warnings and source), when discovery ran.
    pub fn discovered(&self) -> Option<&Discovered> {
        self.engine.fetcher.discovered.as_ref()
    }

    /// The cache key, once the token endpoint is known.
    pub fn cache_key(&self) -> Option<CacheKey> {
        self.engine.fetcher.cache_key()
    }

    /// The key this source stores its token under (the explicit one, else the
    /// [`CacheKey`] string), once known.
    pub fn store_key(&self) -> Option<String> {
        self.engine.fetcher.store_key()
    }

    /// The cached token, fresh or not.
    pub fn cached(&self) -> Option<&Arc<CachedToken>> {
        self.engine.cached()
    }

    /// Put a token received at `now` into the cache (e.g. one you stored yourself). It is
    /// used only while it is outside the skew window.
    pub fn restore(&mut self, token: TokenResponse, now: UnixTime) {
        self.engine.restore(token, now);
    }

    /// The resource server rejected the cached token (401): it is never handed out again and
    /// the next [`poll`](Flow::poll) requests a new one (deleting the stored copy first, with
    /// a store).
    pub fn invalidate(&mut self) {
        self.engine.invalidate();
    }

    /// When the cached token will be renewed (its expiry minus the skew), if one is cached
    /// and its lifetime is known.
    pub fn next_refresh_at(&self) -> Option<UnixTime> {
        self.engine
            .cached()
            .filter(|c| c.usable_until().is_some())
            .map(|c| c.fresh_until())
    }

    /// Whether a flight (getting a new token) is in progress.
    pub fn is_fetching(&self) -> bool {
        self.engine.in_flight()
    }

    /// What happened with the store since the last call (failures, ignored entries), for the
    /// driver to report.
    pub fn take_store_events(&mut self) -> Vec<StoreEvent> {
        self.engine.take_events()
    }

    /// Whether a new token arrived since the last call (take-once).
    pub fn take_new_token(&mut self) -> bool {
        self.engine.take_refreshed()
    }
}

impl Flow for BackendServices {
    type Output = Arc<CachedToken>;

    fn poll(&mut self, now: UnixTime) -> Result<Action<Self::Output>, Error> {
        self.engine.poll(now, false)
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        self.engine.handle_response(response, now)
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        now: UnixTime,
    ) -> Result<(), Error> {
        self.engine.handle_transport_error(error, now)
    }

    fn handle_store(&mut self, result: StoreResult, now: UnixTime) -> Result<(), Error> {
        self.engine.handle_store(result, now)
    }

    fn handle_signature(
        &mut self,
        signature: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        self.engine.handle_signature(signature, now)
    }

    fn abort(&mut self) {
        self.engine.abort();
    }
}

impl TokenSource for BackendServices {
    fn poll_flight(&mut self, now: UnixTime) -> Result<Action<Arc<CachedToken>>, Error> {
        self.engine.poll(now, true)
    }

    fn cached_token(&self) -> Option<Arc<CachedToken>> {
        self.engine.cached().cloned()
    }

    fn take_store_events(&mut self) -> Vec<StoreEvent> {
        self.engine.take_events()
    }

    fn take_new_token(&mut self) -> bool {
        self.engine.take_refreshed()
    }

    fn invalidate(&mut self) {
        self.engine.invalidate();
    }

    fn invalidate_if(&mut self, used: &AuthorizationHeader) -> bool {
        self.engine.invalidate_if(used)
    }
}
