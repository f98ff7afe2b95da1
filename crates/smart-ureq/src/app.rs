use std::sync::Arc;

use smart_core::client_auth::ClientAuth;
use smart_core::context::FhirContextItem;
use smart_core::discovery::{Discovered, Discovery};
use smart_core::id_token::{UnverifiedIdTokenClaims, VerifiedIdTokenClaims};
use smart_core::introspection::{self, Introspection, IntrospectionAuth, TokenTypeHint};
use smart_core::launch::{
    AppConfig, AuthorizationRequest, Launch, LaunchFlow, PendingAuthorization,
};
use smart_core::oidc::VerifyIdToken;
use smart_core::secret::{AccessToken, AuthorizationHeader, IdToken, RefreshToken};
use smart_core::session::Session;
use smart_core::source::TokenSource as _;
use smart_core::store::{InMemoryTokenStore, StoredToken, TokenStore};
use smart_core::token::TokenResponse;
use smart_core::{CachedToken, Error, FhirBaseUrl};

use crate::HttpClient;
use crate::client::now;
use crate::source::{SourceHandle, StoreEventHook};

/// Called with every new token set (after a code exchange and after each refresh), before
/// the new access token is used, so the caller can persist or audit it.
pub type RotationHook = Arc<dyn Fn(&StoredToken) + Send + Sync>;

/// Fetch and parse `{fhir_base}/.well-known/smart-configuration` (with the CapabilityStatement
/// fallback).
///
/// # Errors
/// [`Error::Discovery`] naming the URL and status; [`Error::Transport`].
pub fn discover(http: &HttpClient, fhir_base: &FhirBaseUrl) -> Result<Discovered, Error> {
    http.run(Discovery::new(fhir_base.clone()).allow_insecure_http(http.allows_insecure_http()))
}

/// Discover, then build the authorization request (PKCE and `state` generated for you).
/// Redirect the browser to `request.url` and keep `request.pending` in the user's session.
///
/// # Errors
/// [`smart_core::error::CallbackError::IssNotAllowed`] (before any request), discovery
/// errors.
pub fn begin_launch(
    http: &HttpClient,
    app: &AppConfig,
    launch: Launch,
) -> Result<AuthorizationRequest, Error> {
    http.run(LaunchFlow::new(app.clone(), launch, app.entropy.clone())?)
}

/// Validate the callback and exchange the code, returning a ready [`SmartClient`] with an
/// in-memory store. The callback's warnings come first in the token's
/// [`warnings`](smart_core::token::TokenResponse::warnings).
///
/// # Errors
/// [`Error::Callback`] (state, error redirect, RFC 9207 `iss`) before any request;
/// [`Error::OAuth`] from the token endpoint (e.g. `invalid_grant`).
pub fn complete_launch(
    http: &HttpClient,
    app: &AppConfig,
    pending: PendingAuthorization,
    redirect_url: &str,
) -> Result<SmartClient, Error> {
    let exchange = pending.callback(app, redirect_url)?.into_exchange();
    let fhir_base = exchange.fhir_base().clone();
    let token_endpoint = exchange.token_endpoint().clone();
    let token = http.run(exchange)?;
    let session = Session::new(app, fhir_base, token_endpoint, token, now());
    SmartClient::builder(session).http(http.clone()).build()
}

/// Refresh once, outside a [`SmartClient`]: `grant_type=refresh_token` with the app's client
/// authentication and an optional narrower `scope`. Returns the raw response; merge it into a
/// stored token set with [`TokenResponse::merge_refresh`].
///
/// # Errors
/// [`Error::OAuth`] (e.g. `invalid_grant`), [`Error::Transport`], …
pub fn refresh_token(
    http: &HttpClient,
    app: &AppConfig,
    token_endpoint: &url::Url,
    refresh_token: &RefreshToken,
    scope: Option<&str>,
) -> Result<TokenResponse, Error> {
    http.run(smart_core::refresh::refresh(
        app.client_auth.clone(),
        token_endpoint.clone(),
        refresh_token.clone(),
        scope.map(str::to_owned),
        http.allows_insecure_http(),
        app.entropy.clone(),
    ))
}

/// Introspect `token` at `endpoint` (RFC 7662; SMART "Token Introspection"), authenticated
/// with the client's credentials or a bearer token. An inactive token is `Ok` with
/// `active: false`.
///
/// # Errors
/// [`Error::OAuth`] (e.g. 401 `invalid_client`), [`Error::Http`], [`Error::Parse`],
/// [`Error::Transport`]; never containing `token` or credentials.
pub fn introspect(
    http: &HttpClient,
    endpoint: &url::Url,
    token: &AccessToken,
    token_type_hint: Option<TokenTypeHint>,
    auth: IntrospectionAuth,
) -> Result<Introspection, Error> {
    http.run(introspection::introspect(
        endpoint.clone(),
        token.clone(),
        token_type_hint,
        auth,
        http.allows_insecure_http(),
        smart_core::entropy::default_entropy(),
    ))
}

/// Revoke `token` at `endpoint` (RFC 7009), authenticated as at the token endpoint. `Ok` also
/// when the token was already invalid.
///
/// # Errors
/// [`Error::OAuth`] (e.g. 400 `unsupported_token_type`), [`Error::Http`],
/// [`Error::Transport`].
pub fn revoke(
    http: &HttpClient,
    endpoint: &url::Url,
    token: &AccessToken,
    token_type_hint: Option<TokenTypeHint>,
    client_auth: &ClientAuth,
) -> Result<(), Error> {
    http.run(introspection::revoke(
        endpoint.clone(),
        token.clone(),
        token_type_hint,
        client_auth.clone(),
        http.allows_insecure_http(),
        smart_core::entropy::default_entropy(),
    ))
}

/// Builder for [`SmartClient`].
#[must_use]
pub struct SmartClientBuilder {
    session: Session,
    http: Option<HttpClient>,
    store: Arc<dyn TokenStore>,
    store_key: Option<String>,
    on_rotate: Option<RotationHook>,
    on_store_event: Option<StoreEventHook>,
    persist_now: bool,
}

impl SmartClientBuilder {
    /// Use this HTTP client.
    pub fn http(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Retry and back off refresh requests with `policy` (default
    /// [`RetryPolicy::default`](smart_core::retry::RetryPolicy::default): 3 attempts, see
    /// [`smart_core::retry`]).
    pub fn retry_policy(mut self, policy: smart_core::retry::RetryPolicy) -> Self {
        self.session = self.session.with_retry_policy(policy);
        self
    }

    /// The session was just read from the store given to [`store`](Self::store), as
    /// [`SmartClient::restore`] reads it: `build` does not write it back (by default it
    /// stores the session at once), so a refresh token another process rotated and stored
    /// meanwhile is never overwritten by this older copy.
    pub fn already_stored(mut self) -> Self {
        self.persist_now = false;
        self
    }

    /// Persist token sets in `store` (default: in memory).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = store;
        self
    }

    /// The key to store under (e.g. `smart:{user_id}`); default
    /// [`Session::store_key`].
    pub fn store_key(mut self, key: impl Into<String>) -> Self {
        self.store_key = Some(key.into());
        self
    }

    /// Report every new token set to `hook` before it is used.
    pub fn on_rotate(mut self, hook: RotationHook) -> Self {
        self.on_rotate = Some(hook);
        self
    }

    /// Report store events (failures the client works around) to `hook`.
    pub fn on_store_event(mut self, hook: StoreEventHook) -> Self {
        self.on_store_event = Some(hook);
        self
    }

    /// Build the client and persist the current token set.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails; [`Error::InsecureUrl`] from the default client.
    pub fn build(self) -> Result<SmartClient, Error> {
        let http = match self.http {
            Some(h) => h,
            None => HttpClient::new()?,
        };
        let mut session = self.session;
        let persist_now = self.persist_now;
        session.set_store(self.store_key, self.store.lease_config(), persist_now);
        let mut source = SourceHandle::new(session, http);
        source.store = Some(self.store);
        source.on_store_event = self.on_store_event;
        if let Some(hook) = self.on_rotate {
            source.on_new_token = Some(Box::new(move |s: &Session| hook(&s.to_stored())));
        }
        let client = SmartClient { source };
        if persist_now {
            // Store the new session now (the first poll's store step).
            client.source.run()?;
        }
        Ok(client)
    }
}

/// An App Launch client: holds the token set, exposes the launch context, gives the
/// `Authorization` header and refreshes ahead of expiry when a refresh token exists.
/// Thread-safe: a fresh token is read without a lock; concurrent callers share one refresh.
pub struct SmartClient {
    source: SourceHandle<Session>,
}

impl std::fmt::Debug for SmartClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartClient")
            .field("store_key", &self.store_key())
            .finish_non_exhaustive()
    }
}

impl SmartClient {
    /// A builder around a session (from [`complete_launch`] or [`Session::from_stored`]).
    pub fn builder(session: Session) -> SmartClientBuilder {
        SmartClientBuilder {
            session,
            http: None,
            store: Arc::new(InMemoryTokenStore::new()),
            store_key: None,
            on_rotate: None,
            on_store_event: None,
            persist_now: true,
        }
    }

    /// Restore a client from `store` under `key`.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Config`] when nothing is stored under `key` or it belongs
    /// to another `client_id`.
    pub fn restore(app: &AppConfig, store: Arc<dyn TokenStore>, key: &str) -> Result<Self, Error> {
        Self::restore_inner(None, app, store, key)
    }

    /// [`restore`](Self::restore) with your own HTTP client (TLS settings, proxy, timeouts)
    /// for its refreshes.
    ///
    /// # Errors
    /// As [`restore`](Self::restore).
    pub fn restore_with(
        http: &HttpClient,
        app: &AppConfig,
        store: Arc<dyn TokenStore>,
        key: &str,
    ) -> Result<Self, Error> {
        Self::restore_inner(Some(http.clone()), app, store, key)
    }

    fn restore_inner(
        http: Option<HttpClient>,
        app: &AppConfig,
        store: Arc<dyn TokenStore>,
        key: &str,
    ) -> Result<Self, Error> {
        let stored = store
            .get(key)?
            .ok_or_else(|| Error::Config(format!("no session stored under key `{key}`")))?;
        let session = Session::from_stored(app, stored, now())?;
        let mut builder = Self::builder(session);
        if let Some(http) = http {
            builder = builder.http(http);
        }
        // Read from the store: another process may rotate it; never write it back as is.
        builder.already_stored().store(store).store_key(key).build()
    }

    /// The key this client's token set is stored under.
    pub fn store_key(&self) -> String {
        self.source.with(|s| s.store_key().to_owned())
    }

    /// The current token set, refreshed first if it is within the skew window.
    ///
    /// # Errors
    /// [`Error::NoRefreshToken`] when it expired and cannot be refreshed; [`Error::OAuth`]
    /// when the refresh is rejected (the refresh token is then dropped); transport and store
    /// errors.
    pub fn token(&self) -> Result<Arc<CachedToken>, Error> {
        self.source.token()
    }

    /// `Authorization: Bearer …` for the next FHIR request (RFC 6750 §2.1).
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        match self.source.fresh_authorization() {
            Some(h) => Ok(h),
            None => Ok(self.source.run()?.authorization().clone()),
        }
    }

    /// Refresh now, optionally with a narrower `scope`.
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub fn refresh(&self, scope: Option<&str>) -> Result<Arc<CachedToken>, Error> {
        self.source
            .with(|s| s.request_refresh(scope.map(str::to_owned)));
        self.source.run()
    }

    /// The FHIR server answered 401: stop using the access token; the next call refreshes
    /// (or fails with [`Error::NoRefreshToken`]).
    ///
    /// # Errors
    /// None today; the `Result` matches the Backend Services source.
    pub fn on_unauthorized(&self) -> Result<(), Error> {
        self.source.with(Session::invalidate);
        Ok(())
    }

    /// The FHIR server answered 401 to a request sent with `used`: if that is still the
    /// current token it is never used again (the next call refreshes); a token refreshed since
    /// is kept.
    ///
    /// # Errors
    /// None today; the `Result` matches the Backend Services source.
    pub fn on_rejected(&self, used: &AuthorizationHeader) -> Result<(), Error> {
        self.source.with(|s| s.invalidate_if(used));
        Ok(())
    }

    /// The persistent form of the session (what the store holds).
    pub fn stored(&self) -> StoredToken {
        self.source.with(|s| s.to_stored())
    }

    /// The current token set (possibly expired), without refreshing.
    pub fn tokens(&self) -> Arc<CachedToken> {
        self.source.with(|s| s.token())
    }

    /// The FHIR base URL.
    pub fn fhir_base(&self) -> FhirBaseUrl {
        self.source.with(|s| s.fhir_base().clone())
    }

    /// `patient` from the launch context.
    pub fn patient_id(&self) -> Option<String> {
        self.source.with(|s| s.patient_id())
    }

    /// `encounter` from the launch context.
    pub fn encounter_id(&self) -> Option<String> {
        self.source.with(|s| s.encounter_id())
    }

    /// `fhirContext` items.
    pub fn fhir_context(&self) -> Vec<FhirContextItem> {
        self.source.with(|s| s.fhir_context())
    }

    /// `need_patient_banner`.
    pub fn need_patient_banner(&self) -> Option<bool> {
        self.source.with(|s| s.need_patient_banner())
    }

    /// `smart_style_url`.
    pub fn smart_style_url(&self) -> Option<String> {
        self.source.with(|s| s.smart_style_url())
    }

    /// The granted `scope` (may differ from the request).
    pub fn scope(&self) -> Option<String> {
        self.source.with(|s| s.scope())
    }

    /// The raw `id_token`, if `openid` was granted.
    pub fn id_token(&self) -> Option<IdToken> {
        self.source.with(|s| s.id_token())
    }

    /// The `id_token` claims, **not signature-verified** (see
    /// [`verify_id_token`](Self::verify_id_token)).
    pub fn id_token_claims_unverified(&self) -> Option<UnverifiedIdTokenClaims> {
        self.source.with(|s| s.id_token_claims_unverified())
    }

    /// `fhirUser` (or `profile`) from the unverified `id_token`:
    /// `client.fhir_user()?.url(&client.fhir_base())` is its absolute URL.
    pub fn fhir_user(&self) -> Option<smart_core::FhirUser> {
        self.source.with(|s| s.fhir_user_unverified())
    }

    /// Verify the `id_token` — signature and claims (OpenID Connect Core 1.0 §3.1.3.7) —
    /// and return its claims: discovery for the expected `issuer` and `jwks_uri`, then the
    /// JWKS (and the OpenID configuration when discovery has no `jwks_uri`). Nothing is
    /// cached; 60 s of clock leeway; no `nonce`.
    ///
    /// # Errors
    /// [`Error::IdToken`] ([`smart_core::error::IdTokenError::Missing`] without an
    /// `id_token`; signature and claims errors), discovery and transport errors.
    pub fn verify_id_token(&self) -> Result<VerifiedIdTokenClaims, Error> {
        let flow = self.source.with(|s| VerifyIdToken::for_session(s))?;
        self.source.http.run(flow)
    }
}
