//! A signed-in App Launch session (SMART App Launch §"Refresh access token"): a token-source
//! [`Flow`] holding the current token set, refreshing it ahead of expiry, and answering
//! questions about its launch context.
//!
//! Like [`BackendServices`](crate::backend::BackendServices), a [`Session`] hands out a fresh
//! token without any request; inside the skew window one caller refreshes while the others
//! keep the still-valid token; failures are retried and backed off as [`crate::retry`]
//! describes. A refresh keeps the old refresh token when the server sends no new one, and a
//! rejected refresh token (`invalid_grant`) is dropped: the session is then over. With a
//! store shared between processes ([`Session::with_store`]), processes take turns refreshing
//! and each new token set is stored **before** it is used, so two processes never spend the
//! same refresh token and a crash loses none.

use std::sync::Arc;

use url::Url;

use crate::client_auth::ClientAuth;
use crate::context::FhirContextItem;
use crate::entropy::Entropy;
use crate::error::{Error, TransportError};
use crate::flow::{Action, Flow};
use crate::http::{HttpRequest, HttpResponse};
use crate::id_token::UnverifiedIdTokenClaims;
use crate::launch::AppConfig;
use crate::refresh::refresh_outgoing;
use crate::retry::RetryPolicy;
use crate::secret::AuthorizationHeader;
use crate::secret::IdToken;
use crate::sign::Prepared;
use crate::source::{CachedToken, Engine, Fetcher, TokenSource};
use crate::store::{LeaseConfig, StoreEvent, StoreResult, StoredToken};
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};
use crate::types::FhirUser;
use crate::types::{ClientId, Endpoint, FhirBaseUrl};

/// The `refresh_token` part of the session: the refresh request and the merge.
#[derive(Debug)]
struct RefreshGrant {
    client_auth: ClientAuth,
    fhir_base: FhirBaseUrl,
    token_endpoint: Endpoint,
    allow_insecure_http: bool,
    /// A narrower scope for the next refresh only.
    scope: Option<String>,
    store_key: String,
}

impl Fetcher for RefreshGrant {
    fn setup_request(&mut self, _now: UnixTime) -> Result<Option<HttpRequest>, Error> {
        Ok(None)
    }

    fn setup_response(&mut self, _response: HttpResponse, _now: UnixTime) -> Result<(), Error> {
        Err(Error::Misuse("a session sends no setup request"))
    }

    fn setup_transport_error(&mut self, error: TransportError, _now: UnixTime) -> Error {
        Error::Transport(error)
    }

    fn setup_abort(&mut self) {}

    fn store_key(&self) -> Option<String> {
        Some(self.store_key.clone())
    }

    fn precheck(&self, current: Option<&TokenResponse>) -> Result<(), Error> {
        match current {
            Some(t) if t.refresh_token.is_some() => Ok(()),
            _ => Err(Error::NoRefreshToken),
        }
    }

    fn fetch(
        &mut self,
        current: Option<&TokenResponse>,
        now: UnixTime,
        entropy: &dyn Entropy,
    ) -> Result<Prepared, Error> {
        let refresh_token = current
            .and_then(|t| t.refresh_token.as_ref())
            .ok_or(Error::NoRefreshToken)?;
        refresh_outgoing(
            &self.client_auth,
            &self.token_endpoint,
            refresh_token,
            self.scope.as_deref(),
            self.allow_insecure_http,
            now,
            entropy,
        )
    }

    fn fetch_url(&self) -> Option<Url> {
        Some(self.token_endpoint.url().clone())
    }

    fn fetched(
        &mut self,
        response: &HttpResponse,
        current: Option<&TokenResponse>,
        now: UnixTime,
    ) -> Result<TokenResponse, Error> {
        let new = parse_token_response(response, &self.token_endpoint, now)?;
        Ok(match current {
            Some(old) => old.merge_refresh(new),
            None => new,
        })
    }

    fn failed(&mut self, error: &Error, current: Option<&TokenResponse>) -> Option<TokenResponse> {
        match error {
            Error::OAuth(e) if e.error == "invalid_grant" => {
                // The refresh token is dead (revoked, expired or rotated away): drop it so it
                // is never sent again; the session is over.
                let mut t = current?.clone();
                t.refresh_token = None;
                t.expires_at = Some(UnixTime::EPOCH);
                Some(t)
            }
            _ => None,
        }
    }

    fn flight_over(&mut self) {
        self.scope = None;
    }

    fn stored(&self, token: &TokenResponse) -> Option<StoredToken> {
        Some(StoredToken {
            fhir_base: Some(self.fhir_base.clone()),
            token_endpoint: self.token_endpoint.clone(),
            client_id: self.client_auth.client_id().clone(),
            token: token.clone(),
        })
    }

    fn adopt(
        &self,
        stored: StoredToken,
        _current: Option<&TokenResponse>,
    ) -> Result<TokenResponse, &'static str> {
        if stored.belongs_to(&self.token_endpoint, self.client_auth.client_id()) {
            Ok(stored.token)
        } else {
            Err("it was issued by another token endpoint or to another client_id")
        }
    }

    fn store_ttl_secs(&self, token: &CachedToken, now: UnixTime) -> Option<u64> {
        if token.refresh_token.is_some() {
            None
        } else {
            token.usable_until().map(|u| now.secs_until(u).max(1))
        }
    }
}

/// An App Launch session: a token-source [`Flow`] whose output is the current token set
/// ([`Arc<CachedToken>`]). See the [module docs](self).
///
/// `poll` answers [`Action::Ready`] while the access token is fresh; inside the skew window
/// (or after [`invalidate`](Self::invalidate) or [`request_refresh`](Self::request_refresh))
/// it emits a refresh request when a refresh token exists, and [`Error::NoRefreshToken`]
/// without any request when none does and the access token is no longer usable.
#[derive(Debug)]
pub struct Session {
    engine: Engine<RefreshGrant>,
}

impl Session {
    /// A session from a completed code exchange, received at `now`. Its store key (see
    /// [`with_store`](Self::with_store)) is [`StoredToken::default_key`] of this first token
    /// set, kept for the session's life.
    pub fn new(
        app: &AppConfig,
        fhir_base: FhirBaseUrl,
        token_endpoint: impl Into<Endpoint>,
        token: TokenResponse,
        now: UnixTime,
    ) -> Self {
        let token_endpoint: Endpoint = token_endpoint.into();
        let stored = StoredToken {
            fhir_base: Some(fhir_base.clone()),
            token_endpoint: token_endpoint.clone(),
            client_id: app.client_id().clone(),
            token,
        };
        let store_key = stored.default_key();
        let grant = RefreshGrant {
            client_auth: app.client_auth.clone(),
            fhir_base,
            token_endpoint,
            allow_insecure_http: app.allow_insecure_http,
            scope: None,
            store_key,
        };
        let mut engine = Engine::new(grant, app.entropy.clone(), app.clock_skew_secs);
        engine.restore(stored.token, now);
        Self { engine }
    }

    /// Rebuild a session from a token store (`now`: the current time).
    ///
    /// # Errors
    /// [`Error::Config`] when `stored` belongs to another `client_id` or has no FHIR base.
    pub fn from_stored(app: &AppConfig, stored: StoredToken, now: UnixTime) -> Result<Self, Error> {
        if &stored.client_id != app.client_id() {
            return Err(Error::Config(
                "stored session belongs to another client_id".into(),
            ));
        }
        let fhir_base = stored.fhir_base.ok_or_else(|| {
            Error::Config("stored token has no FHIR base: not an App Launch session".into())
        })?;
        Ok(Self::new(
            app,
            fhir_base,
            stored.token_endpoint,
            stored.token,
            now,
        ))
    }

    /// Share the session through a token store under `key` (default: the key fixed at
    /// creation, [`store_key`](Self::store_key)): the current token set is stored at the
    /// next poll, each new one is stored before it is used; with `lease` enabled, processes
    /// sharing the store take turns refreshing and adopt each other's results.
    #[must_use]
    pub fn with_store(mut self, key: Option<String>, lease: LeaseConfig) -> Self {
        self.set_store(key, lease, true);
        self
    }

    /// [`with_store`](Self::with_store) in place.
    ///
    /// `persist_now`: store the current token set at the next poll — for a new session
    /// (after a code exchange); not for one just read from the store, which another process
    /// may have rotated since (writing it back would bring a spent refresh token back).
    pub fn set_store(&mut self, key: Option<String>, lease: LeaseConfig, persist_now: bool) {
        if let Some(k) = key {
            self.engine.fetcher.store_key = k;
        }
        self.engine.set_store(lease, persist_now);
    }

    /// Use `policy` for retries and backoff of refresh requests.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.engine.policy = policy;
        self
    }

    /// The key the session is stored under.
    pub fn store_key(&self) -> &str {
        &self.engine.fetcher.store_key
    }

    /// The persistent form.
    pub fn to_stored(&self) -> StoredToken {
        StoredToken {
            fhir_base: Some(self.engine.fetcher.fhir_base.clone()),
            token_endpoint: self.engine.fetcher.token_endpoint.clone(),
            client_id: self.client_id().clone(),
            token: self.token().response().clone(),
        }
    }

    /// The current token set (possibly expired).
    pub fn token(&self) -> Arc<CachedToken> {
        match self.engine.cached() {
            Some(c) => c.clone(),
            // A session is created with a token set and never loses it.
            None => unreachable_token(),
        }
    }

    /// The FHIR base.
    pub fn fhir_base(&self) -> &FhirBaseUrl {
        &self.engine.fetcher.fhir_base
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        self.engine.fetcher.token_endpoint.url()
    }

    /// The `client_id`.
    pub fn client_id(&self) -> &ClientId {
        self.engine.fetcher.client_auth.client_id()
    }

    /// The client authentication used for refresh (and for revocation or introspection).
    pub fn client_auth(&self) -> &ClientAuth {
        &self.engine.fetcher.client_auth
    }

    /// The entropy source.
    pub fn entropy(&self) -> &Arc<dyn Entropy> {
        self.engine.entropy()
    }

    /// Whether a refresh token is held.
    pub fn can_refresh(&self) -> bool {
        self.token().refresh_token.is_some()
    }

    /// The FHIR server answered 401: the access token is never handed out again; the next
    /// `poll` refreshes (or fails with [`Error::NoRefreshToken`]).
    pub fn invalidate(&mut self) {
        self.engine.invalidate();
    }

    /// Refresh at the next `poll` even if the token is fresh, optionally asking for a
    /// narrower `scope` (a subset of the original grant, RFC 6749 §6). If that refresh fails
    /// the error is returned (to every caller of that flight); afterwards the current token
    /// is used again while it is fresh.
    pub fn request_refresh(&mut self, scope: Option<String>) {
        self.engine.fetcher.scope = scope;
        self.engine.force_fetch();
    }

    /// Whether the token set changed since the last call (take-once): drivers use it to
    /// report every new token set.
    pub fn take_refreshed(&mut self) -> bool {
        self.engine.take_refreshed()
    }

    /// What happened with the store since the last call, for the driver to report.
    pub fn take_store_events(&mut self) -> Vec<StoreEvent> {
        self.engine.take_events()
    }

    /// Whether a flight (a refresh) is in progress.
    pub fn is_refreshing(&self) -> bool {
        self.engine.in_flight()
    }

    /// `patient` from the launch context: a Patient id.
    pub fn patient_id(&self) -> Option<String> {
        self.token().context.patient.clone()
    }

    /// `encounter` from the launch context: an Encounter id.
    pub fn encounter_id(&self) -> Option<String> {
        self.token().context.encounter.clone()
    }

    /// `fhirContext` items.
    pub fn fhir_context(&self) -> Vec<FhirContextItem> {
        self.token().context.fhir_context.clone()
    }

    /// `need_patient_banner`.
    pub fn need_patient_banner(&self) -> Option<bool> {
        self.token().context.need_patient_banner
    }

    /// `smart_style_url`.
    pub fn smart_style_url(&self) -> Option<String> {
        self.token().context.smart_style_url.clone()
    }

    /// The granted `scope` (may differ from the request).
    pub fn scope(&self) -> Option<String> {
        self.token().scope.clone()
    }

    /// The raw `id_token`, if `openid` was granted.
    pub fn id_token(&self) -> Option<IdToken> {
        self.token().id_token.clone()
    }

    /// The `id_token` claims, **not signature-verified**.
    pub fn id_token_claims_unverified(&self) -> Option<UnverifiedIdTokenClaims> {
        UnverifiedIdTokenClaims::decode(self.token().id_token.as_ref()?).ok()
    }

    /// `fhirUser` (or `profile`) from the unverified `id_token`; [`FhirUser::url`] with
    /// [`fhir_base`](Self::fhir_base) resolves it.
    pub fn fhir_user_unverified(&self) -> Option<FhirUser> {
        self.id_token_claims_unverified()?.fhir_user()
    }
}

#[cold]
fn unreachable_token() -> Arc<CachedToken> {
    // Never reached: `Session::new` caches a token and nothing removes it (invalidation
    // replaces it with an unusable copy).
    Arc::new(CachedToken::new(
        TokenResponse::empty(),
        UnixTime::EPOCH,
        0,
        0,
    ))
}

impl Flow for Session {
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

impl TokenSource for Session {
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
