//! Validating the authorization redirect (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207).

use url::Url;

use super::{AppConfig, CodeExchange, EhrLaunch, PendingAuthorization};
use crate::error::{CallbackError, Document, Error, OAuthError, ParseError};
use crate::oauth_error::clean_text;
use crate::redact::SentSecrets;
use crate::secret::{AuthorizationCode, constant_time_eq};
use crate::time::UnixTime;

/// The parameters of an authorization redirect (RFC 6749 §4.1.2 / §4.1.2.1, RFC 9207).
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackParams {
    /// `code`, if present.
    pub code: Option<AuthorizationCode>,
    /// `state`, if present.
    pub state: Option<String>,
    /// `error`, if present.
    pub error: Option<String>,
    /// `error_description`, if present.
    pub error_description: Option<String>,
    /// `error_uri`, if present.
    pub error_uri: Option<String>,
    /// RFC 9207 `iss`, if present (the *authorization server's* issuer, not the FHIR base).
    pub iss: Option<String>,
    /// The callback URL without its query, for comparison with `redirect_uri`.
    pub base: String,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code)
            .field("state", &self.state.as_ref().map(|_| "[redacted]"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

/// Parse a redirect URL. The first occurrence of each parameter wins; unknown parameters
/// (such as a registered `redirect_uri`'s own query) are ignored.
///
/// # Errors
/// [`Error::Parse`] with [`Document::CallbackUrl`] when it is not an absolute URL.
pub fn parse_callback(redirect_url: &str) -> Result<CallbackParams, Error> {
    let url = Url::parse(redirect_url)
        .map_err(|e| ParseError::new(Document::CallbackUrl, format!("not an absolute URL: {e}")))?;
    let mut p = CallbackParams {
        code: None,
        state: None,
        error: None,
        error_description: None,
        error_uri: None,
        iss: None,
        base: url_without_query(&url),
    };
    for (k, v) in url.query_pairs() {
        let v = v.into_owned();
        match k.as_ref() {
            "code" if p.code.is_none() => p.code = Some(AuthorizationCode::new(v)),
            "state" if p.state.is_none() => p.state = Some(v),
            "error" if p.error.is_none() => p.error = Some(v),
            "error_description" if p.error_description.is_none() => p.error_description = Some(v),
            "error_uri" if p.error_uri.is_none() => p.error_uri = Some(v),
            "iss" if p.iss.is_none() => p.iss = Some(v),
            _ => {}
        }
    }
    Ok(p)
}

/// The `error` of an error redirect, cleaned: redirect parameters are attacker-reachable
/// text, so they get the same treatment as token-endpoint error bodies (control characters
/// removed, length capped) before they reach logs.
fn redirect_error(p: &CallbackParams, secrets: &SentSecrets) -> Option<OAuthError> {
    let clean = |s: &str| Some(echo(s, secrets).trim().to_owned()).filter(|t| !t.is_empty());
    let error = p.error.as_deref()?;
    Some(OAuthError {
        status: None,
        error: clean(error).unwrap_or_default(),
        error_description: p.error_description.as_deref().and_then(clean),
        error_uri: p.error_uri.as_deref().and_then(clean),
    })
}

/// The error for a redirect without `state`: the server's own error, marked unverified, when
/// it sent one; [`CallbackError::MissingState`] otherwise.
fn missing_state(p: &CallbackParams, secrets: &SentSecrets) -> CallbackError {
    match redirect_error(p, secrets) {
        Some(e) => CallbackError::UnverifiedAuthorization(e),
        None => CallbackError::MissingState,
    }
}

/// The secrets of a callback: its `code` and `state`, and with the pending entry the expected
/// `state` and the PKCE `code_verifier`. A server may copy any of them into another
/// parameter; none is ever repeated in an error or a warning.
fn callback_secrets(p: &CallbackParams, pending: Option<&PendingAuthorization>) -> SentSecrets {
    let mut secrets = SentSecrets::new();
    if let Some(code) = &p.code {
        secrets.add(code.secret());
    }
    if let Some(state) = &p.state {
        secrets.add(state);
    }
    if let Some(pending) = pending {
        secrets.add(pending.state.secret());
        secrets.add(pending.code_verifier.secret());
    }
    secrets
}

/// A callback parameter as the library repeats it in an error or warning: made safe to log
/// first (which may join text around removed control characters), then with the callback's
/// secrets replaced by `[redacted]`.
fn echo(text: &str, secrets: &SentSecrets) -> String {
    secrets.scrub(&clean_text(text))
}

fn url_without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The outcome of a validated callback, with any warnings (e.g. an RFC 9207 `iss` that could
/// not be checked because discovery had no `issuer`).
#[derive(Debug)]
pub struct ValidatedCallback {
    /// The code exchange to run.
    pub exchange: CodeExchange,
    /// Non-fatal observations.
    pub warnings: Vec<String>,
}

impl ValidatedCallback {
    /// The code exchange, carrying the callback's [`warnings`](Self::warnings): they come
    /// first among the [`warnings`](crate::token::TokenResponse::warnings) of the token
    /// response it produces, so a session built from that response keeps them (e.g. no
    /// RFC 9207 `iss` from a server that does not advertise it).
    pub fn into_exchange(self) -> CodeExchange {
        let mut exchange = self.exchange;
        exchange.callback_warnings = self.warnings;
        exchange
    }
}

impl PendingAuthorization {
    /// Validate the redirect (`state`, RFC 6749 §4.1.2 and §4.1.2.1; RFC 9207) and produce the
    /// code exchange.
    /// Consumes `self`: the pending entry is spent whatever the outcome.
    ///
    /// Checks in order: `state` present ([`CallbackError::MissingState`]; an error redirect
    /// without `state` is [`CallbackError::UnverifiedAuthorization`] carrying the server's
    /// `error` and `error_description`) and equal in
    /// constant time ([`CallbackError::StateMismatch`]); the URL matches `redirect_uri`
    /// ([`CallbackError::RedirectUriMismatch`]); an `error` parameter
    /// ([`CallbackError::Authorization`]); RFC 9207 `iss`, when present, equal to the
    /// discovered issuer ([`CallbackError::IssuerMismatch`]; when discovery had no issuer the
    /// check is skipped with a warning; a missing `iss` is
    /// [`CallbackError::MissingIssuer`] when the server advertised
    /// `authorization_response_iss_parameter_supported`); a `code`
    /// ([`CallbackError::MissingCode`]).
    /// No request is made on any error.
    ///
    /// # Errors
    /// [`Error::Callback`] as above; [`Error::Parse`] for a malformed URL; [`Error::Config`]
    /// if `app` has another `client_id` than the request.
    pub fn callback(self, app: &AppConfig, redirect_url: &str) -> Result<ValidatedCallback, Error> {
        let p = parse_callback(redirect_url)?;
        let secrets = callback_secrets(&p, Some(&self));
        let state = p
            .state
            .as_deref()
            .ok_or_else(|| missing_state(&p, &secrets))?;
        if !constant_time_eq(state, self.state.secret()) {
            return Err(CallbackError::StateMismatch.into());
        }
        let expected = Url::parse(&self.redirect_uri)
            .map(|u| url_without_query(&u))
            .unwrap_or_default();
        if p.base != expected {
            return Err(CallbackError::RedirectUriMismatch.into());
        }
        if let Some(e) = redirect_error(&p, &secrets) {
            return Err(CallbackError::Authorization(e).into());
        }
        let mut warnings = Vec::new();
        if p.iss.is_none() && self.require_iss {
            return Err(CallbackError::MissingIssuer.into());
        }
        if let Some(iss) = &p.iss {
            match &self.issuer {
                Some(expected) if iss != expected => {
                    return Err(CallbackError::IssuerMismatch {
                        expected: expected.clone(),
                        received: echo(iss, &secrets),
                    }
                    .into());
                }
                Some(_) => {}
                None => warnings.push(format!(
                    "callback carries RFC 9207 iss {}, but discovery gave no issuer to check it against",
                    echo(iss, &secrets)
                )),
            }
        }
        // An empty `code=` is no code: never post an empty authorization code.
        let code = p
            .code
            .filter(|c| !c.secret().is_empty())
            .ok_or(CallbackError::MissingCode)?;
        if app.client_id() != &self.client_id {
            return Err(Error::Config(
                "the app's client_id differs from the authorization request's".into(),
            ));
        }
        Ok(ValidatedCallback {
            exchange: CodeExchange::new(
                app.client_auth.clone(),
                self.token_endpoint,
                code,
                self.code_verifier,
                self.redirect_uri,
                self.fhir_base,
                app.allow_insecure_http,
                app.entropy.clone(),
            ),
            warnings,
        })
    }
}

/// Fuzz entry point: parse arbitrary bytes as a callback URL and as an EHR launch URL; must
/// never panic.
#[doc(hidden)]
pub fn fuzz_callback_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(p) = parse_callback(&text) {
        let _ = format!("{p:?}");
    }
    let _ = EhrLaunch::from_url(&text);
}

/// An in-memory set of pending authorizations keyed by `state`, for apps (and the CLI) that
/// keep several launches open at once. [`take`](Self::take) removes the entry it returns, so
/// a replayed callback finds nothing ([`CallbackError::UnknownState`]).
#[derive(Debug, Default)]
pub struct PendingAuthorizations {
    entries: std::collections::HashMap<[u8; 32], PendingAuthorization>,
}

fn state_key(state: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(state.as_bytes()).into()
}

impl PendingAuthorizations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember `pending` under its `state`.
    pub fn insert(&mut self, pending: PendingAuthorization) {
        self.entries
            .insert(state_key(pending.state.secret()), pending);
    }

    /// Number of pending entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop entries created before `cutoff` (seconds since the epoch).
    pub fn expire_before(&mut self, cutoff: UnixTime) {
        self.entries.retain(|_, p| p.created_at >= cutoff);
    }

    /// Remove and return the entry for the callback's `state` (looked up by SHA-256 digest,
    /// so the lookup does not leak timing about stored states).
    ///
    /// # Errors
    /// [`CallbackError::MissingState`] when the URL has no `state`, or
    /// [`CallbackError::UnverifiedAuthorization`] when it is an error redirect without `state`
    /// (no entry is removed either way); [`CallbackError::UnknownState`] when no entry
    /// matches; [`Error::Parse`] for a malformed URL.
    pub fn take(&mut self, redirect_url: &str) -> Result<PendingAuthorization, Error> {
        let p = parse_callback(redirect_url)?;
        let state = p
            .state
            .clone()
            .ok_or_else(|| missing_state(&p, &callback_secrets(&p, None)))?;
        self.entries
            .remove(&state_key(&state))
            .ok_or_else(|| CallbackError::UnknownState.into())
    }
}
