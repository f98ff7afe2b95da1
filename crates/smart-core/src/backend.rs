//! SMART Backend Services (spec digest §4; SMART App Launch "Backend Services"):
//! `client_credentials` with a signed `client_assertion`, and the access-token cache.
//!
//! [`BackendServices`] is a [`Flow`] whose output is the current access token. Polled with a
//! warm cache it answers [`Action::Ready`] at once; on a cold cache, or when the token is within
//! the skew window of its expiry, it asks the driver to send a token request (after a
//! discovery request when no [`SmartConfiguration`] was supplied). Each token request carries
//! a freshly signed assertion with a new `jti` (case B24), so a retried request never replays
//! one.
//!
//! ```text
//!                 ┌──────── poll: no config ────────┐
//!                 ▼                                 │
//!   ┌─────────────────────┐  Ready(config)   ┌──────┴──────┐
//!   │ Discovering          ├────────────────▶│    Idle     │◀── invalidate() / abort()
//!   │ (Discovery flow)     │                 │ (no token)  │
//!   └─────────────────────┘                  └──────┬──────┘
//!                                      poll: Send(token request, fresh assertion)
//!                                                   ▼
//!                                          ┌────────────────┐  error → Idle, Err
//!                                          │ AwaitingToken  ├──────────────────────▶
//!                                          └───────┬────────┘
//!                                        2xx token │
//!                                                  ▼
//!                                          ┌────────────────┐ poll within skew of expiry
//!                                          │    Cached      ├──────▶ Send(token request)
//!                                          └────────────────┘ poll otherwise → Ready(token)
//! ```

use std::sync::Arc;

use url::Url;

use crate::assertion::{
    AssertionSigner, DEFAULT_ASSERTION_LIFETIME_SECS, MAX_ASSERTION_LIFETIME_SECS,
};
use crate::client_auth::ClientAuth;
use crate::discovery::{Discovered, Discovery, SmartConfiguration};
use crate::entropy::Entropy;
use crate::error::Error;
use crate::flow::{Action, Flow, HttpRequest, HttpResponse, check_url_security};
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};
use crate::types::{ClientId, FhirBaseUrl};

/// Default refresh skew: a cached token is renewed this many **seconds** before it expires.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 30;

/// The `grant_type` of a Backend Services token request (RFC 6749 §4.4).
pub const GRANT_TYPE_CLIENT_CREDENTIALS: &str = "client_credentials";

/// Configuration of a Backend Services client: the options of the TypeScript seed's
/// `BackendServicesAuth` (`issuer`, `clientId`, `scope`, `privateKey`/`alg`/`kid`,
/// `smartConfig`, `clockSkewSec`, `assertionLifetimeSec`) plus `jku` and an explicit opt-in
/// for plain-HTTP endpoints.
///
/// Build with [`BackendServicesConfig::new`] and the `with_*` methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BackendServicesConfig {
    /// The FHIR base URL (`issuer` in the seed), used for discovery when no
    /// [`smart_configuration`](Self::smart_configuration) is given.
    pub fhir_base: Option<FhirBaseUrl>,
    /// The registered `client_id`; also the assertion's `iss` and `sub`.
    pub client_id: ClientId,
    /// Space-delimited scopes to request, typically `system/*.rs` patterns (BES-04).
    pub scope: String,
    /// Signs the `client_assertion` (ES384 or RS384; `kid` comes from the signer).
    pub signer: Arc<dyn AssertionSigner>,
    /// Skip discovery and use this configuration (the seed's `smartConfig`).
    pub smart_configuration: Option<SmartConfiguration>,
    /// Renew a cached token this many **seconds** before its expiry (default 30).
    pub clock_skew_secs: u64,
    /// Assertion lifetime in **seconds**: `exp = now + lifetime`; at most 300 (default 240).
    /// Above 240 it narrows the server clock skew tolerated through a backdated `iat` (see
    /// [`AssertionClaims`](crate::assertion::AssertionClaims#clock-skew)).
    pub assertion_lifetime_secs: u64,
    /// Optional `jku` header: the registered JWKS URL (ASYM-09).
    pub jku: Option<String>,
    /// Allow plain `http://` endpoints on non-loopback hosts (never do this in production).
    pub allow_insecure_http: bool,
}

impl BackendServicesConfig {
    /// A configuration with the defaults: skew 30 s, assertion lifetime 240 s (a minute of
    /// margin under the 300 s ceiling for clock drift; case B20), no `jku`.
    /// Set [`with_fhir_base`](Self::with_fhir_base) or
    /// [`with_smart_configuration`](Self::with_smart_configuration) before use.
    pub fn new(
        client_id: ClientId,
        scope: impl Into<String>,
        signer: Arc<dyn AssertionSigner>,
    ) -> Self {
        Self {
            fhir_base: None,
            client_id,
            scope: scope.into(),
            signer,
            smart_configuration: None,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            assertion_lifetime_secs: DEFAULT_ASSERTION_LIFETIME_SECS,
            jku: None,
            allow_insecure_http: false,
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
}

/// The token cache key: `(token endpoint, client_id, scope)`. Two configurations that differ
/// in any of the three never share a cached token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The exact token endpoint URL.
    pub token_endpoint: String,
    /// The `client_id`.
    pub client_id: String,
    /// The requested scope string, normalised to single spaces.
    pub scope: String,
}

impl std::fmt::Display for CacheKey {
    /// A string form for external token stores: `smart-bs:{endpoint} {client_id} {scope}`
    /// with each part percent-encoded so no part can forge another.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        write!(
            f,
            "smart-bs:{}:{}:{}",
            enc(&self.token_endpoint),
            enc(&self.client_id),
            enc(&self.scope)
        )
    }
}

#[derive(Debug)]
enum InFlight {
    None,
    Discovery,
    Token { token_url: Url },
}

/// The Backend Services state machine (a [`Flow`] with output `Arc<TokenResponse>`): a
/// single-token cache with a skew window, discovery on first use, and invalidation.
///
/// Drive it with [`Flow::poll`] each time a token is needed: a fresh cached token is returned
/// without any request. Call [`invalidate`](Self::invalidate) when the resource server
/// answers 401.
#[derive(Debug)]
pub struct BackendServices {
    config: BackendServicesConfig,
    client_auth: ClientAuth,
    entropy: Arc<dyn Entropy>,
    smart_configuration: Option<SmartConfiguration>,
    discovery: Option<Discovery>,
    discovered: Option<Discovered>,
    in_flight: InFlight,
    /// A discovery fallback request prepared in `handle_response`, sent by the next `poll`.
    queued: Option<HttpRequest>,
    cached: Option<Arc<TokenResponse>>,
    /// A token was just received: the next `poll` hands it out even if it is already inside
    /// the skew window (e.g. `expires_in: 0`), so a driver loop cannot request tokens forever.
    deliver_once: bool,
}

impl BackendServices {
    /// Validate `config` and build the machine. `entropy` supplies every `jti`.
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
        Ok(Self {
            config,
            client_auth,
            entropy,
            smart_configuration,
            discovery: None,
            discovered: None,
            in_flight: InFlight::None,
            queued: None,
            cached: None,
            deliver_once: false,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &BackendServicesConfig {
        &self.config
    }

    /// The SMART configuration, once supplied or discovered.
    pub fn smart_configuration(&self) -> Option<&SmartConfiguration> {
        self.smart_configuration.as_ref()
    }

    /// The discovery result (with its warnings and source), when discovery ran.
    pub fn discovered(&self) -> Option<&Discovered> {
        self.discovered.as_ref()
    }

    /// The cache key, once the token endpoint is known.
    pub fn cache_key(&self) -> Option<CacheKey> {
        self.smart_configuration.as_ref().map(|sc| CacheKey {
            token_endpoint: sc.token_endpoint.as_str().to_owned(),
            client_id: self.config.client_id.as_str().to_owned(),
            scope: self
                .config
                .scope
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })
    }

    /// The cached token response, fresh or not.
    pub fn cached(&self) -> Option<&Arc<TokenResponse>> {
        self.cached.as_ref()
    }

    /// Put a previously stored token into the cache (e.g. loaded from a token store). It is
    /// used only while it is outside the skew window.
    pub fn restore(&mut self, token: Arc<TokenResponse>) {
        self.cached = Some(token);
        self.deliver_once = false;
    }

    /// Forget the cached token: the resource server answered 401, or the caller wants a new
    /// one. The next [`poll`](Flow::poll) requests a token.
    pub fn invalidate(&mut self) {
        self.cached = None;
        self.deliver_once = false;
    }

    /// When the cached token should be renewed (`expires_at - skew`), if one is cached and
    /// its lifetime is known. (quinn's `poll_timeout` analogue.)
    pub fn next_refresh_at(&self) -> Option<UnixTime> {
        let t = self.cached.as_ref()?;
        let expires_at = t.expires_at?;
        Some(expires_at.minus_secs(self.effective_skew(t)))
    }

    /// Whether a request is in flight (the driver owes a response or an abort).
    pub fn is_awaiting_response(&self) -> bool {
        !matches!(self.in_flight, InFlight::None)
    }

    /// The skew for this token: the configured skew, but at most half the token's lifetime,
    /// so a token that lives less than twice the skew is still reused.
    fn effective_skew(&self, t: &TokenResponse) -> u64 {
        match t.expires_in {
            Some(lifetime) => self.config.clock_skew_secs.min(lifetime / 2),
            None => self.config.clock_skew_secs,
        }
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

    fn fresh_cached(&self, now: UnixTime) -> Option<Arc<TokenResponse>> {
        let t = self.cached.as_ref()?;
        match self.next_refresh_at() {
            // No expiry known: valid until the resource server says otherwise (401).
            None if t.expires_at.is_none() => Some(t.clone()),
            Some(refresh_at) if now < refresh_at => Some(t.clone()),
            _ => None,
        }
    }

    fn token_request(&self, sc: &SmartConfiguration, now: UnixTime) -> Result<HttpRequest, Error> {
        let token_url = sc.token_endpoint.clone();
        check_url_security(&token_url, self.config.allow_insecure_http)?;
        let mut fields: Vec<(String, String)> = vec![
            ("grant_type".into(), GRANT_TYPE_CLIENT_CREDENTIALS.into()),
            (
                "scope".into(),
                self.config
                    .scope
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ];
        let mut headers = Vec::new();
        self.client_auth.apply(
            &mut fields,
            &mut headers,
            &token_url,
            now,
            self.entropy.as_ref(),
        )?;
        let mut req = HttpRequest::post_form(
            token_url,
            fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        req.headers.extend(headers);
        Ok(req)
    }
}

impl Flow for BackendServices {
    type Output = Arc<TokenResponse>;

    fn poll(&mut self, now: UnixTime) -> Result<Action<Self::Output>, Error> {
        if self.is_awaiting_response() {
            return Err(Error::Misuse("poll called while a request is in flight"));
        }
        if std::mem::take(&mut self.deliver_once) {
            if let Some(t) = &self.cached {
                return Ok(Action::Ready(t.clone()));
            }
        }
        if let Some(req) = self.queued.take() {
            // The discovery fallback request prepared by `handle_response`.
            self.in_flight = InFlight::Discovery;
            return Ok(Action::Send(req));
        }
        if let Some(t) = self.fresh_cached(now) {
            return Ok(Action::Ready(t));
        }
        if self.smart_configuration.is_none() {
            let discovery = match self.discovery.as_mut() {
                Some(d) => d,
                None => {
                    let base =
                        self.config.fhir_base.clone().ok_or_else(|| {
                            Error::Config("no FHIR base URL to discover from".into())
                        })?;
                    self.discovery.insert(Discovery::new(base))
                }
            };
            match discovery.poll(now) {
                Ok(Action::Send(req)) => {
                    self.in_flight = InFlight::Discovery;
                    return Ok(Action::Send(req));
                }
                Ok(Action::Ready(discovered)) => {
                    self.discovery = None;
                    self.accept_discovery(discovered)?;
                }
                Err(e) => {
                    self.discovery = None;
                    return Err(e);
                }
            }
        }
        let Some(sc) = self.smart_configuration.as_ref() else {
            return Err(Error::Misuse("no SMART configuration after discovery"));
        };
        let req = self.token_request(sc, now)?;
        self.in_flight = InFlight::Token {
            token_url: req.url.clone(),
        };
        Ok(Action::Send(req))
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        match std::mem::replace(&mut self.in_flight, InFlight::None) {
            InFlight::None => Err(Error::Misuse(
                "handle_response called with no request in flight",
            )),
            InFlight::Discovery => {
                let Some(d) = self.discovery.as_mut() else {
                    return Err(Error::Misuse(
                        "discovery response without a discovery in progress",
                    ));
                };
                // Finish discovery here (not in the next poll), so the driver sees the token
                // endpoint, and so the cache key, before the token request is built: a token
                // store can then be consulted in between.
                let step = d.handle_response(response, now).and_then(|()| d.poll(now));
                match step {
                    Ok(Action::Ready(discovered)) => {
                        self.discovery = None;
                        self.accept_discovery(discovered)
                    }
                    Ok(Action::Send(fallback)) => {
                        self.queued = Some(fallback);
                        Ok(())
                    }
                    Err(e) => {
                        self.discovery = None;
                        Err(e)
                    }
                }
            }
            InFlight::Token { token_url } => {
                let token = parse_token_response(&response, &token_url, now)?;
                self.cached = Some(Arc::new(token));
                self.deliver_once = true;
                Ok(())
            }
        }
    }

    fn abort(&mut self) {
        // A dropped queued fallback leaves the inner discovery "in flight": abort it too, so
        // the next poll re-offers the fallback instead of failing with `Misuse`.
        let had_queued = self.queued.take().is_some();
        if had_queued || matches!(self.in_flight, InFlight::Discovery) {
            if let Some(d) = self.discovery.as_mut() {
                d.abort();
            }
        }
        self.in_flight = InFlight::None;
    }
}
