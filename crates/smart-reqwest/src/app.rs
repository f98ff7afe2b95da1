use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

use smart_core::client_auth::ClientAuth;
use smart_core::context::FhirContextItem;
use smart_core::discovery::{Discovered, Discovery};
use smart_core::entropy::{Entropy, SystemEntropy};
use smart_core::error::IdTokenError;
use smart_core::id_token::{IdTokenVerifier, UnverifiedIdTokenClaims, VerifiedIdTokenClaims};
use smart_core::introspection::{self, Introspection, IntrospectionAuth, TokenTypeHint};
use smart_core::launch::{
    AppConfig, AuthorizationRequest, Launch, LaunchFlow, PendingAuthorization,
};
use smart_core::secret::{AuthorizationHeader, IdToken};
use smart_core::session::{Session, StoredToken};
use smart_core::token::TokenResponse;
use smart_core::{FhirBaseUrl, Flow};

use crate::store::{InMemoryTokenStore, TokenStore};
use crate::{Error, HttpClient};

/// Called with every new token set (after a code exchange and after each refresh), before
/// the new access token is used, so the caller can persist it.
pub type RotationHook = Arc<dyn Fn(&StoredToken) + Send + Sync>;

/// Fetch and parse `{fhir_base}/.well-known/smart-configuration` (with the CapabilityStatement
/// fallback); the seed's `discoverSmartConfiguration`.
///
/// # Errors
/// [`Error::Smart`] with a [`smart_core::Error::Discovery`] naming the URL and status.
pub async fn discover(http: &HttpClient, fhir_base: &FhirBaseUrl) -> Result<Discovered, Error> {
    http.run(&mut Discovery::new(fhir_base.clone())).await
}

/// Discover, then build the authorization request (the seed's `buildAuthorizeUrl` with PKCE
/// and `state` generated for you). Redirect the browser to `request.url` and keep
/// `request.pending` in the user's session.
///
/// # Errors
/// [`smart_core::error::CallbackError::IssNotAllowed`] (before any request), discovery
/// errors.
pub async fn begin_launch(
    http: &HttpClient,
    app: &AppConfig,
    launch: Launch,
) -> Result<AuthorizationRequest, Error> {
    http.run(&mut LaunchFlow::new(
        app.clone(),
        launch,
        Arc::new(SystemEntropy),
    )?)
    .await
}

/// Validate the callback and exchange the code (the seed's `exchangeCode`), returning a
/// ready [`SmartClient`] with an in-memory store.
///
/// # Errors
/// [`smart_core::Error::Callback`] (state, error redirect, RFC 9207 `iss`) before any
/// request; [`smart_core::Error::OAuth`] from the token endpoint (e.g. `invalid_grant`).
pub async fn complete_launch(
    http: &HttpClient,
    app: &AppConfig,
    pending: PendingAuthorization,
    redirect_url: &str,
) -> Result<SmartClient, Error> {
    let entropy: Arc<dyn Entropy> = Arc::new(SystemEntropy);
    let validated = pending.callback(app, redirect_url)?;
    let fhir_base = validated.exchange.fhir_base().clone();
    let token_endpoint = validated.exchange.token_endpoint().clone();
    let token = http
        .run(&mut validated.exchange.into_flow(entropy.clone()))
        .await?;
    let session = Session::new(app, fhir_base, token_endpoint, token, entropy);
    // Refreshes go through the caller's client (timeouts, insecure-http opt-in, body cap).
    SmartClient::builder(session)
        .http(http.clone())
        .build()
        .await
}

/// Refresh once, outside a [`SmartClient`] (the seed's `refreshToken`): `grant_type=refresh_token`
/// with the app's client authentication and an optional narrower `scope` (REFR-02, REFR-03).
/// Returns the raw response: a `SmartClient` merges it into its token set (keeping the old
/// refresh token when no new one is sent, REFR-04); here that is the caller's job (see
/// [`TokenResponse::merge_refresh`]).
///
/// # Errors
/// [`smart_core::Error::OAuth`] (e.g. `invalid_grant`), transport errors.
pub async fn refresh_token(
    http: &HttpClient,
    app: &AppConfig,
    token_endpoint: &url::Url,
    refresh_token: &smart_core::secret::RefreshToken,
    scope: Option<&str>,
) -> Result<TokenResponse, Error> {
    let now = crate::client::now();
    let request = smart_core::refresh::refresh_request(
        &app.client_auth,
        token_endpoint,
        refresh_token,
        scope,
        app.allow_insecure_http,
        now,
        &SystemEntropy,
    )?;
    let response = http.send(request).await?;
    smart_core::refresh::parse_refresh_response(
        &response,
        token_endpoint,
        crate::client::now(),
        refresh_token,
        &app.client_auth,
    )
    .map_err(Error::from)
}

/// Introspect `token` at `endpoint` (RFC 7662; SMART "Token Introspection", INTRO-01): one
/// `POST` built by [`introspection_request`](smart_core::introspection::introspection_request),
/// authenticated with the client's credentials or a bearer token (`auth`), with an optional
/// `token_type_hint`. Find `endpoint` in discovery
/// (`SmartConfiguration::introspection_endpoint`). The HTTP client enforces its own
/// https/loopback policy on the endpoint.
///
/// An inactive, unknown, expired or revoked token is `Ok` with `active: false`, not an error.
///
/// # Errors
/// [`smart_core::Error::OAuth`] for an OAuth error answer (e.g. 401 `invalid_client`; values
/// this request sent are redacted from its texts), [`smart_core::Error::Http`] for another
/// non-2xx status, [`smart_core::Error::Parse`] for a malformed answer,
/// [`smart_core::Error::InsecureUrl`], client-authentication errors, transport errors.
pub async fn introspect(
    http: &HttpClient,
    endpoint: &url::Url,
    token: &str,
    token_type_hint: Option<TokenTypeHint>,
    auth: IntrospectionAuth<'_>,
) -> Result<Introspection, Error> {
    let request = introspection::introspection_request(
        endpoint,
        token,
        token_type_hint,
        auth,
        true, // the HttpClient applies its own allow_insecure_http policy in `send`
        crate::client::now(),
        &SystemEntropy,
    )?;
    let response = http.send(request).await?;
    introspection::parse_introspection_response(&response, endpoint)
        .map_err(|e| Error::from(introspection::redact_sent_values(e, token, auth)))
}

/// Revoke `token` at `endpoint` (RFC 7009 §2), authenticated with `client_auth` as at the
/// token endpoint, with an optional `token_type_hint`. Find `endpoint` in discovery
/// (`SmartConfiguration::revocation_endpoint`; SMART defines no revocation profile). `Ok`
/// also when the token was already invalid (RFC 7009 §2.2). Revoking a refresh token usually
/// revokes its access tokens too.
///
/// # Errors
/// [`smart_core::Error::OAuth`] (e.g. 400 `unsupported_token_type`, 401 `invalid_client`,
/// 503 `temporarily_unavailable`), [`smart_core::Error::Http`] for another non-2xx status,
/// [`smart_core::Error::InsecureUrl`], client-authentication errors, transport errors.
pub async fn revoke(
    http: &HttpClient,
    endpoint: &url::Url,
    token: &str,
    token_type_hint: Option<TokenTypeHint>,
    client_auth: &ClientAuth,
) -> Result<(), Error> {
    let request = introspection::revocation_request(
        endpoint,
        token,
        token_type_hint,
        client_auth,
        true, // the HttpClient applies its own allow_insecure_http policy in `send`
        crate::client::now(),
        &SystemEntropy,
    )?;
    let response = http.send(request).await?;
    introspection::parse_revocation_response(&response, endpoint).map_err(|e| {
        Error::from(introspection::redact_sent_values(
            e,
            token,
            IntrospectionAuth::Client(client_auth),
        ))
    })
}

/// Builder for [`SmartClient`].
#[must_use]
pub struct SmartClientBuilder {
    session: Session,
    http: Option<HttpClient>,
    store: Arc<dyn TokenStore>,
    store_key: Option<String>,
    on_rotate: Option<RotationHook>,
}

impl SmartClientBuilder {
    /// Use this HTTP client.
    pub fn http(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Persist token sets in `store` (default: in memory).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = store;
        self
    }

    /// The key to store under (the seed's `storeKey`, e.g. `smart:{user_id}`); default
    /// [`SmartClient::default_store_key`].
    pub fn store_key(mut self, key: impl Into<String>) -> Self {
        self.store_key = Some(key.into());
        self
    }

    /// Report every rotated token set to `hook` before it is used.
    pub fn on_rotate(mut self, hook: RotationHook) -> Self {
        self.on_rotate = Some(hook);
        self
    }

    /// Build the client and persist the current token set.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    pub async fn build(self) -> Result<SmartClient, Error> {
        let key = self
            .store_key
            .unwrap_or_else(|| SmartClient::default_store_key(&self.session.to_stored()));
        let http = match self.http {
            Some(h) => h,
            None => HttpClient::new()?,
        };
        let client = SmartClient {
            http,
            session: Mutex::new(self.session),
            store: self.store,
            key,
            on_rotate: self.on_rotate,
        };
        let stored = client.lock().await.to_stored();
        client.persist(&stored).await?;
        Ok(client)
    }
}

/// An App Launch client (the seed's `SmartClient`): holds the token set, exposes the launch
/// context, gives the `Authorization` header and refreshes automatically within the skew
/// window when a refresh token exists. Task-safe; concurrent callers wait for a single
/// refresh.
pub struct SmartClient {
    http: HttpClient,
    session: Mutex<Session>,
    store: Arc<dyn TokenStore>,
    key: String,
    on_rotate: Option<RotationHook>,
}

impl std::fmt::Debug for SmartClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartClient")
            .field("store_key", &self.key)
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
        }
    }

    /// Restore a client from `store` under `key`.
    ///
    /// # Errors
    /// [`Error::Store`]; [`smart_core::Error::Config`] when nothing is stored under `key` or it
    /// belongs to another `client_id`.
    pub async fn restore(
        app: &AppConfig,
        store: Arc<dyn TokenStore>,
        key: &str,
    ) -> Result<Self, Error> {
        let stored = store.get(key).await.map_err(Error::Store)?.ok_or_else(|| {
            smart_core::Error::Config(format!("no session stored under key `{key}`"))
        })?;
        let session = Session::from_stored(app, stored, Arc::new(SystemEntropy))?;
        Self::builder(session)
            .store(store)
            .store_key(key)
            .build()
            .await
    }

    /// The default store key: distinct for every token endpoint, client, user (`id_token`
    /// `sub`/`fhirUser` or `patient`) and grant (a digest of the first refresh or access
    /// token), so two launches, servers or users never share a slot.
    pub fn default_store_key(stored: &StoredToken) -> String {
        stored.default_key()
    }

    /// The key this client's token set is stored under.
    pub fn store_key(&self) -> &str {
        &self.key
    }

    async fn lock(&self) -> MutexGuard<'_, Session> {
        let mut guard = self.session.lock().await;
        // A cancelled holder may have left a refresh in flight.
        guard.abort();
        guard
    }

    async fn persist(&self, stored: &StoredToken) -> Result<(), Error> {
        if let Some(hook) = &self.on_rotate {
            hook(stored);
        }
        self.store
            .set(&self.key, stored)
            .await
            .map_err(Error::Store)
    }

    async fn drive(&self, session: &mut Session) -> Result<Arc<TokenResponse>, Error> {
        let result = self.http.run(session).await;
        if session.take_refreshed() {
            self.persist(&session.to_stored()).await?;
        }
        result
    }

    /// The current token set, refreshed first if it is within the skew window.
    ///
    /// # Errors
    /// [`smart_core::Error::NoRefreshToken`] when it expired and cannot be refreshed;
    /// [`smart_core::Error::OAuth`] when the refresh is rejected (the refresh token is then
    /// dropped); transport and store errors.
    pub async fn token(&self) -> Result<Arc<TokenResponse>, Error> {
        let mut session = self.lock().await;
        self.drive(&mut session).await
    }

    /// `Authorization: Bearer …` for the next FHIR request (RESP-03).
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub async fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        let t = self.token().await?;
        Ok(AuthorizationHeader::new(format!(
            "Bearer {}",
            t.access_token.secret()
        )))
    }

    /// Refresh now, optionally with a narrower `scope` (the seed's `refreshToken`).
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub async fn refresh(&self, scope: Option<&str>) -> Result<Arc<TokenResponse>, Error> {
        let mut session = self.lock().await;
        session.request_refresh(scope.map(str::to_owned));
        self.drive(&mut session).await
    }

    /// The FHIR server answered 401: stop using the access token; the next call refreshes
    /// (or fails with [`smart_core::Error::NoRefreshToken`]).
    pub async fn on_unauthorized(&self) {
        self.lock().await.invalidate();
    }

    /// The persistent form of the session (what the store holds).
    pub async fn stored(&self) -> StoredToken {
        self.lock().await.to_stored()
    }

    /// An immutable snapshot of the current token set (the seed's `tokens`).
    pub async fn tokens(&self) -> Arc<TokenResponse> {
        self.lock().await.token().clone()
    }

    /// The FHIR base URL.
    pub async fn fhir_base(&self) -> FhirBaseUrl {
        self.lock().await.fhir_base().clone()
    }

    /// `patient` from the launch context.
    pub async fn patient_id(&self) -> Option<String> {
        self.tokens().await.context.patient.clone()
    }

    /// `encounter` from the launch context.
    pub async fn encounter_id(&self) -> Option<String> {
        self.tokens().await.context.encounter.clone()
    }

    /// `fhirContext` items.
    pub async fn fhir_context(&self) -> Vec<FhirContextItem> {
        self.tokens().await.context.fhir_context.clone()
    }

    /// `need_patient_banner`.
    pub async fn need_patient_banner(&self) -> Option<bool> {
        self.tokens().await.context.need_patient_banner
    }

    /// `smart_style_url`.
    pub async fn smart_style_url(&self) -> Option<String> {
        self.tokens().await.context.smart_style_url.clone()
    }

    /// The granted `scope` (may differ from the request; RESP-02).
    pub async fn scope(&self) -> Option<String> {
        self.tokens().await.scope.clone()
    }

    /// The raw `id_token`, if `openid` was granted.
    pub async fn id_token(&self) -> Option<IdToken> {
        self.tokens().await.id_token.clone()
    }

    /// The `id_token` claims, **not signature-verified** (see
    /// [`verify_id_token`](Self::verify_id_token) for verified claims).
    pub async fn id_token_claims_unverified(&self) -> Option<UnverifiedIdTokenClaims> {
        let t = self.tokens().await;
        UnverifiedIdTokenClaims::decode(t.id_token.as_ref()?).ok()
    }

    /// `fhirUser` resolved against the FHIR base (from the unverified `id_token`; use
    /// [`verify_id_token`](Self::verify_id_token) before trusting it).
    pub async fn fhir_user(&self) -> Option<url::Url> {
        let base = self.fhir_base().await;
        self.id_token_claims_unverified()
            .await?
            .fhir_user_url(&base)
    }

    /// Verify the `id_token` — signature and claims (OIDC Core 1.0 §3.1.3.7; SMART OIDC-01,
    /// OIDC-02, OIDC-04) — and return its claims, e.g. a trustworthy `fhirUser`
    /// ([`VerifiedIdTokenClaims::fhir_user_url`]).
    ///
    /// Kept simple: every call rediscovers the FHIR base ([`discover`]: one request) for the
    /// expected `issuer` (the OIDC issuer, not the FHIR base: case B06) and `jwks_uri`, then
    /// runs an [`IdTokenVerifier`] through this client's HTTP client: one JWKS request, a
    /// second only if the token's `kid` is not in the first answer (B06), preceded by
    /// `{issuer}/.well-known/openid-configuration` when discovery has no `jwks_uri`. Nothing
    /// is cached. Claims are checked against the system clock with the default 60 s skew
    /// ([`DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS`](smart_core::id_token::DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS));
    /// no `nonce` is checked (the launch sends none). For other policies (a cached JWKS, a
    /// nonce, another skew) build an [`IdTokenVerifier`] yourself and [`HttpClient::run`] it.
    ///
    /// # Errors
    /// [`smart_core::Error::IdToken`]: [`IdTokenError::Missing`] when the token set has no
    /// `id_token` (no `openid` scope); [`IdTokenError::Discovery`] when the SMART
    /// configuration has no `issuer` or the OpenID configuration / JWKS is unusable; the
    /// signature and claims errors ([`IdTokenError::BadSignature`],
    /// [`IdTokenError::NoMatchingKey`], [`IdTokenError::IssuerMismatch`],
    /// [`IdTokenError::Expired`], …). Discovery and transport errors as for [`discover`].
    pub async fn verify_id_token(&self) -> Result<VerifiedIdTokenClaims, Error> {
        let id_token = self
            .id_token()
            .await
            .ok_or(smart_core::Error::IdToken(IdTokenError::Missing))?;
        let client_id = self.stored().await.client_id;
        let discovered = discover(&self.http, &self.fhir_base().await).await?;
        let mut verifier = IdTokenVerifier::from_discovery(&id_token, &discovered, client_id)?;
        self.http.run(&mut verifier).await
    }
}
