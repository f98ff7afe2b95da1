//! A signed-in App Launch session: the current token set, automatic refresh within the skew
//! window, and invalidation on 401 (the state behind the seed's `SmartClient`).

use std::sync::Arc;

use url::Url;

use crate::client_auth::ClientAuth;
use crate::entropy::Entropy;
use crate::error::Error;
use crate::flow::{Action, Flow, HttpResponse};
use crate::launch::AppConfig;
use crate::refresh::{parse_refresh_response, refresh_request};
use crate::time::UnixTime;
use crate::token::TokenResponse;
use crate::types::{ClientId, FhirBaseUrl};

/// What a token store holds (the seed's `StoredToken`): an App Launch [`Session`] or a Backend
/// Services token, with what identifies it. Serialize it with serde; it contains the access
/// and refresh tokens, so encrypt it at rest.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct StoredToken {
    /// The FHIR base the tokens are for (always set for App Launch sessions; Backend Services
    /// tokens configured without a FHIR base have none).
    pub fhir_base: Option<FhirBaseUrl>,
    /// The token endpoint used for refresh.
    pub token_endpoint: Url,
    /// The `client_id` the tokens were issued to.
    pub client_id: ClientId,
    /// The current token set (launch context and `id_token` merged across refreshes).
    pub token: TokenResponse,
}

#[derive(Debug)]
enum State {
    Idle,
    Refreshing,
}

/// The App Launch session machine: a [`Flow`] whose output is the current token set.
///
/// `poll` answers [`Action::Ready`] while the access token is outside the skew window;
/// within it (or after [`invalidate`](Self::invalidate) or
/// [`request_refresh`](Self::request_refresh)) it emits a refresh request when a refresh
/// token exists, and [`Error::NoRefreshToken`] without any request when none does (case
/// B19). A rejected refresh (`invalid_grant`) drops the refresh token, so the session is
/// over and the caller must launch again.
#[derive(Debug)]
pub struct Session {
    client_auth: ClientAuth,
    fhir_base: FhirBaseUrl,
    token_endpoint: Url,
    token: Arc<TokenResponse>,
    clock_skew_secs: u64,
    allow_insecure_http: bool,
    entropy: Arc<dyn Entropy>,
    force_refresh: bool,
    access_token_invalid: bool,
    refresh_scope: Option<String>,
    state: State,
    refreshed: bool,
    /// A refresh just succeeded: the next `poll` hands the new token out even if it is already
    /// inside the skew window (e.g. `expires_in: 0`), so a driver loop cannot refresh forever.
    deliver_once: bool,
}

impl Session {
    /// A session from a completed code exchange.
    pub fn new(
        app: &AppConfig,
        fhir_base: FhirBaseUrl,
        token_endpoint: Url,
        token: TokenResponse,
        entropy: Arc<dyn Entropy>,
    ) -> Self {
        Self {
            client_auth: app.client_auth.clone(),
            fhir_base,
            token_endpoint,
            token: Arc::new(token),
            clock_skew_secs: app.clock_skew_secs,
            allow_insecure_http: app.allow_insecure_http,
            entropy,
            force_refresh: false,
            access_token_invalid: false,
            refresh_scope: None,
            state: State::Idle,
            refreshed: false,
            deliver_once: false,
        }
    }

    /// Rebuild a session from a token store.
    ///
    /// # Errors
    /// [`Error::Config`] when `stored` belongs to another `client_id` or has no FHIR base.
    pub fn from_stored(
        app: &AppConfig,
        stored: StoredToken,
        entropy: Arc<dyn Entropy>,
    ) -> Result<Self, Error> {
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
            entropy,
        ))
    }

    /// The persistent form.
    pub fn to_stored(&self) -> StoredToken {
        StoredToken {
            fhir_base: Some(self.fhir_base.clone()),
            token_endpoint: self.token_endpoint.clone(),
            client_id: self.client_auth.client_id().clone(),
            token: (*self.token).clone(),
        }
    }

    /// The current token set (possibly expired).
    pub fn token(&self) -> &Arc<TokenResponse> {
        &self.token
    }

    /// The FHIR base.
    pub fn fhir_base(&self) -> &FhirBaseUrl {
        &self.fhir_base
    }

    /// Whether a refresh token is held.
    pub fn can_refresh(&self) -> bool {
        self.token.refresh_token.is_some()
    }

    /// The FHIR server answered 401: the access token is no longer used; the next `poll`
    /// refreshes (or fails with [`Error::NoRefreshToken`]).
    pub fn invalidate(&mut self) {
        self.access_token_invalid = true;
    }

    /// Refresh on the next `poll` even if the token is fresh, optionally asking for a
    /// narrower `scope` (REFR-02: a subset of the original grant). The request is one-shot:
    /// if that refresh fails (an error response, or no refresh token), the error is returned
    /// once and later polls use the current token again while it is fresh.
    pub fn request_refresh(&mut self, scope: Option<String>) {
        self.force_refresh = true;
        self.refresh_scope = scope;
    }

    /// Whether the last `handle_response` rotated the token set (take-once: reading resets
    /// it). Adapters use it to persist and report every new token set before handing it out.
    pub fn take_refreshed(&mut self) -> bool {
        std::mem::take(&mut self.refreshed)
    }

    fn is_fresh(&self, now: UnixTime) -> bool {
        if self.access_token_invalid || self.force_refresh {
            return false;
        }
        match (self.token.expires_at, self.token.expires_in) {
            (Some(at), lifetime) => {
                let skew =
                    lifetime.map_or(self.clock_skew_secs, |l| self.clock_skew_secs.min(l / 2));
                now < at.minus_secs(skew)
            }
            // Unknown lifetime: usable until the resource server answers 401.
            (None, _) => true,
        }
    }
}

impl Flow for Session {
    type Output = Arc<TokenResponse>;

    fn poll(&mut self, now: UnixTime) -> Result<Action<Self::Output>, Error> {
        if matches!(self.state, State::Refreshing) {
            return Err(Error::Misuse("poll called while a refresh is in flight"));
        }
        let just_refreshed = std::mem::take(&mut self.deliver_once);
        if self.is_fresh(now)
            || (just_refreshed && !self.access_token_invalid && !self.force_refresh)
        {
            return Ok(Action::Ready(self.token.clone()));
        }
        let Some(refresh_token) = self.token.refresh_token.as_ref() else {
            // An explicit refresh request is answered (with this error) once; it must not
            // make a still-fresh access token unusable afterwards.
            self.force_refresh = false;
            self.refresh_scope = None;
            return Err(Error::NoRefreshToken);
        };
        let req = refresh_request(
            &self.client_auth,
            &self.token_endpoint,
            refresh_token,
            self.refresh_scope.as_deref(),
            self.allow_insecure_http,
            now,
            self.entropy.as_ref(),
        )?;
        self.state = State::Refreshing;
        Ok(Action::Send(req))
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        if !matches!(
            std::mem::replace(&mut self.state, State::Idle),
            State::Refreshing
        ) {
            return Err(Error::Misuse(
                "handle_response called with no refresh in flight",
            ));
        }
        let parsed = match self.token.refresh_token.as_ref() {
            Some(rt) => {
                parse_refresh_response(&response, &self.token_endpoint, now, rt, &self.client_auth)
            }
            None => Err(Error::Misuse(
                "a refresh was in flight without a refresh token",
            )),
        };
        match parsed {
            Ok(new) => {
                self.token = Arc::new(self.token.merge_refresh(new));
                self.force_refresh = false;
                self.access_token_invalid = false;
                self.refresh_scope = None;
                self.refreshed = true;
                self.deliver_once = true;
                Ok(())
            }
            Err(Error::OAuth(e)) if e.error == "invalid_grant" => {
                // The refresh token is dead (revoked, expired or rotated away): drop it so it
                // is never sent again; the session is over.
                let mut t = (*self.token).clone();
                t.refresh_token = None;
                t.expires_at = Some(UnixTime::EPOCH);
                self.token = Arc::new(t);
                self.refreshed = true;
                self.force_refresh = false;
                self.refresh_scope = None;
                Err(Error::OAuth(e))
            }
            Err(e) => {
                // The explicit request (and its scope) was answered: report the error once;
                // an expired or invalidated token still refreshes on the next poll.
                self.force_refresh = false;
                self.refresh_scope = None;
                Err(e)
            }
        }
    }

    fn abort(&mut self) {
        self.state = State::Idle;
    }
}

impl StoredToken {
    /// The default token-store key for this token set: distinct for every token endpoint,
    /// client, user (`id_token` `sub` or `fhirUser`, else `patient`) and grant (the first
    /// refresh token, else the access token), so two launches, servers or users never share
    /// a slot. See [`store_key`].
    pub fn default_key(&self) -> String {
        let t = &self.token;
        let user = t
            .id_token
            .as_ref()
            .and_then(|i| crate::id_token::UnverifiedIdTokenClaims::decode(i).ok())
            .and_then(|c| c.sub.or(c.fhir_user))
            .or_else(|| t.context.patient.clone())
            .unwrap_or_default();
        let grant = t
            .refresh_token
            .as_ref()
            .map_or(t.access_token.secret(), |r| r.secret());
        store_key(&self.token_endpoint, &self.client_id, &user, grant)
    }
}

/// A token-store key for a session: `smart-app:` and the hex SHA-256 of the length-prefixed
/// token endpoint, `client_id`, user and grant, so no two servers, clients, users or grants
/// collide and the key reveals none of them.
pub fn store_key(token_endpoint: &Url, client_id: &ClientId, user: &str, grant: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for part in [token_endpoint.as_str(), client_id.as_str(), user, grant] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("smart-app:{hex}")
}
