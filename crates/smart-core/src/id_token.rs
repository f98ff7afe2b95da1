//! OpenID Connect `id_token`s: claims decoding ([`UnverifiedIdTokenClaims`]) and full
//! signature + claims verification ([`IdTokenVerifier`] → [`VerifiedIdTokenClaims`]).
//!
//! SMART's `sso-openid-connect` profile returns an `id_token` whose `fhirUser` claim names
//! the signed-in user as a FHIR resource. Before trusting it, verify it as OIDC Core 1.0
//! §3.1.3.7 requires, following the steps of SMART App Launch §"Scopes and Launch Context"
//! ("Steps for using an ID token"): the issuer's `jwks_uri` (from SMART discovery, or
//! `{issuer}/.well-known/openid-configuration`), the signing key by `kid`, the JWS signature
//! (RS256, which SMART servers must support; also RS384, ES256, ES384), then `iss`,
//! `aud`/`azp`, `exp`, `iat`, `nbf` and `nonce`.
//!
//! [`UnverifiedIdTokenClaims::decode`] only *decodes* (the name says so): do not make
//! authorization decisions from its output. [`IdTokenVerifier`] is a sans-IO [`Flow`] like
//! the others: it never reads a clock (`now` arrives in [`Flow::poll`]) and never opens a
//! socket.
//!
//! # Security
//! - Keys come only from the issuer's JWKS, never from token headers (`jku`, `jwk`, `x5u`
//!   and `x5c` are ignored); `alg: none` and the symmetric `HS*` algorithms are refused
//!   before any request; a `crit` header is refused.
//! - The header `alg` must fit the key (`kty`, `crv`, and the JWK's `alg`, `use`, `key_ops`
//!   when present). RSA keys must have 2048..=8192-bit moduli (RFC 7518 §3.3).
//! - Errors ([`IdTokenError`]) never contain the token.

use serde_json::Value;
use url::Url;

use crate::error::{Document, Error, IdTokenError, ParseError, TransportError};
use crate::flow::{Action, Flow, HttpRequest, HttpResponse};
use crate::jwk::verify::{KeyOutcome, SignedJws, jwks_keys};
use crate::request::DocumentGet;
use crate::secret::{IdToken, constant_time_eq};
use crate::time::UnixTime;
use crate::types::ClientId;

use openid_configuration::parse_openid_configuration;

pub use crate::jwk::verify::IdTokenAlgorithm;
pub use claims::{ClaimWarning, UnverifiedIdTokenClaims, VerifiedIdTokenClaims};
#[doc(hidden)]
pub use openid_configuration::fuzz_openid_configuration;
pub use openid_configuration::{OPENID_CONFIGURATION_PATH, openid_configuration_url};

mod claims;
mod openid_configuration;
#[cfg(test)]
mod tests;

pub use crate::types::FHIR_USER_TYPES;
/// The default allowed clock skew for `exp`, `iat` and `nbf`, in **seconds**.
pub const DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS: u64 = 60;

/// The most times an [`IdTokenVerifier`] fetches the JWKS for one token: once, plus one
/// refetch when the token's `kid` is not in it yet (some servers publish a rotated key only
/// after the first tokens it signs).
pub const MAX_JWKS_FETCHES: u8 = 2;

/// [`log_safe`](crate::oauth_error::log_safe), at most 200 characters: for token-supplied
/// strings in errors.
pub(crate) fn clean(s: &str) -> String {
    crate::oauth_error::log_safe(s, 200)
}

/// A compact JWS split and decoded; the claims are still untrusted.
struct ParsedToken {
    jws: SignedJws,
    claims: UnverifiedIdTokenClaims,
}

impl ParsedToken {
    fn parse(id_token: &IdToken) -> Result<Self, Error> {
        let jws = SignedJws::parse(id_token.secret())?;
        let claims = serde_json::from_slice(&jws.payload)
            .map_err(|e| ParseError::from_json(Document::IdToken, &e))?;
        Ok(Self { jws, claims })
    }
}

/// Pick the key for `token` from the JWKS `keys` and verify the signature.
fn check_signature(token: &ParsedToken, keys: &[Value]) -> Result<KeyOutcome, IdTokenError> {
    token.jws.check_signature(keys)
}

#[derive(Debug)]
enum State {
    /// Next `poll` sends the OpenID configuration request, or the JWKS request once
    /// `jwks_uri` is known.
    Start,
    /// The next `poll` sends `get`'s request (a redirect hop); `jwks`: which document.
    Pending {
        jwks: bool,
        get: DocumentGet,
    },
    /// `get`'s request is in flight.
    Awaiting {
        jwks: bool,
        get: DocumentGet,
    },
    /// Signature verified; claims are checked against the `now` of the next `poll`.
    SignatureVerified,
    Failed(Error),
    /// The claims were handed out.
    Finished,
}

/// Verifies an OpenID Connect `id_token` (OIDC Core 1.0 §3.1.3.7; SMART App Launch §"Scopes
/// and Launch Context", "Steps for using an ID token"): a sans-IO [`Flow`] whose output is
/// [`VerifiedIdTokenClaims`].
///
/// Requests, in order (each a `GET` with `Accept: application/json`):
/// 1. unless a `jwks_uri` is known ([`with_jwks_uri`](Self::with_jwks_uri), or
///    [`from_discovery`](Self::from_discovery) with SMART's `jwks_uri`):
///    `{issuer}/.well-known/openid-configuration` (see [`openid_configuration_url`]), whose
///    `issuer` must equal the expected issuer; its `jwks_uri` is used;
/// 2. the JWKS; the key is the one whose `kid` equals the token's, or, when the token has no
///    `kid`, the only key usable with its `alg`;
/// 3. only if no key fits: the JWKS once more (the key may have been published late), then
///    [`IdTokenError::NoMatchingKey`]. At most [`MAX_JWKS_FETCHES`] JWKS requests.
///
/// Then, with the `now` of the `poll` that returns `Ready` and a clock skew (default
/// [`DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS`]): `iss` equals the expected issuer (the OIDC issuer,
/// **not** the FHIR base, which on many EHRs differs); `sub` is present; `aud` (string or array)
/// contains the `client_id`; `azp`, required when `aud` has several entries, equals the
/// `client_id`; `exp + skew > now`; `iat <= now + skew`; `nbf` (if any) `<= now + skew`; and
/// `nonce` equals the expected one when [`with_nonce`](Self::with_nonce) was used.
///
/// Errors are [`Error::IdToken`] (and [`Error::Parse`] for a malformed token, at
/// construction); once failed, every later `poll` returns the same error. `Debug` never
/// prints the token.
///
/// ```
/// use smart_core::id_token::IdTokenVerifier;
/// use smart_core::secret::IdToken;
/// use smart_core::{Action, ClientId, Flow, UnixTime};
///
/// # fn main() -> Result<(), smart_core::Error> {
/// // Header {"alg":"RS256"}, payload {"iss":"https://auth.example.org"} (signature elided).
/// let token = IdToken::new("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5vcmcifQ.c2ln");
/// let mut v = IdTokenVerifier::new(&token, "https://auth.example.org", ClientId::new("app"))?;
/// let Action::Send(req) = v.poll(UnixTime::from_secs(1_700_000_000))? else { unreachable!() };
/// assert_eq!(req.url.as_str(), "https://auth.example.org/.well-known/openid-configuration");
/// # Ok(()) }
/// ```
pub struct IdTokenVerifier {
    token: ParsedToken,
    issuer: String,
    client_id: ClientId,
    nonce: Option<String>,
    skew_secs: u64,
    jwks_uri: Option<Url>,
    jwks_fetches: u8,
    state: State,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("alg", &self.token.jws.alg)
            .field("kid", &self.token.jws.kid)
            .field("jwks_uri", &self.jwks_uri.as_ref().map(Url::as_str))
            .field("jwks_fetches", &self.jwks_fetches)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl IdTokenVerifier {
    /// Verify `id_token` for `client_id` against `expected_issuer` (SMART discovery's
    /// `issuer`, compared byte for byte with `iss`).
    ///
    /// # Errors
    /// Before any request: [`Error::Parse`] ([`Document::IdToken`]) when the token is not a
    /// compact JWS with JSON-object header and payload, a `string` `alg`, no `crit`;
    /// [`IdTokenError::UnsupportedAlg`] for `none`, `HS256` and every other algorithm but
    /// RS256, RS384, ES256, ES384.
    pub fn new(
        id_token: &IdToken,
        expected_issuer: impl Into<String>,
        client_id: ClientId,
    ) -> Result<Self, Error> {
        Ok(Self {
            token: ParsedToken::parse(id_token)?,
            issuer: expected_issuer.into(),
            client_id,
            nonce: None,
            skew_secs: DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS,
            jwks_uri: None,
            jwks_fetches: 0,
            state: State::Start,
        })
    }

    /// Verify against a SMART discovery result (`.well-known/smart-configuration`): the expected
    /// issuer is its `issuer`, and its `jwks_uri`, when present, is used directly (no OpenID
    /// configuration request).
    ///
    /// # Errors
    /// As [`new`](Self::new); [`IdTokenError::Discovery`] (naming the discovery URL) when the
    /// document has no `issuer` (required with `sso-openid-connect`).
    pub fn from_discovery(
        id_token: &IdToken,
        discovered: &crate::discovery::Discovered,
        client_id: ClientId,
    ) -> Result<Self, Error> {
        let Some(issuer) = discovered.config.issuer.clone() else {
            return Err(IdTokenError::Discovery {
                url: discovered.url.to_string(),
                status: None,
                reason: "the SMART configuration has no `issuer` (required with \
                         `sso-openid-connect`)"
                    .into(),
            }
            .into());
        };
        let verifier = Self::new(id_token, issuer, client_id)?;
        Ok(
            match discovered
                .config
                .jwks_uri
                .clone()
                .map(crate::Endpoint::into_url)
            {
                Some(uri) => verifier.with_jwks_uri(uri),
                None => verifier,
            },
        )
    }

    /// **Opt-in:** take the expected issuer from the token's own `iss`. The `iss` check then
    /// always passes; what remains is that the issuer's OpenID configuration names the same
    /// issuer and that its JWKS signed the token. Use only when no discovery `issuer` is
    /// available and the token came straight from the token endpoint over TLS.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`IdTokenError::MissingClaim("iss")`](IdTokenError::MissingClaim).
    pub fn trusting_token_issuer(id_token: &IdToken, client_id: ClientId) -> Result<Self, Error> {
        let mut verifier = Self::new(id_token, String::new(), client_id)?;
        let Some(iss) = verifier.token.claims.iss.clone() else {
            return Err(IdTokenError::MissingClaim("iss").into());
        };
        verifier.issuer = iss;
        Ok(verifier)
    }

    /// Fetch the JWKS from `jwks_uri` directly, skipping the OpenID configuration request.
    #[must_use]
    pub fn with_jwks_uri(mut self, jwks_uri: Url) -> Self {
        self.jwks_uri = Some(jwks_uri);
        self
    }

    /// Require the `nonce` claim to equal `nonce` (the value sent in the authorization
    /// request; OIDC Core §3.1.3.7 step 11). Compared in constant time.
    #[must_use]
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// The clock skew tolerated for `exp`, `iat` and `nbf`, in **seconds** (default
    /// [`DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS`]).
    #[must_use]
    pub fn with_clock_skew_secs(mut self, secs: u64) -> Self {
        self.skew_secs = secs;
        self
    }

    /// The issuer `iss` must equal.
    pub fn expected_issuer(&self) -> &str {
        &self.issuer
    }

    /// The token header's `alg`.
    pub fn algorithm(&self) -> IdTokenAlgorithm {
        self.token.jws.alg
    }

    /// The token header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.token.jws.kid.as_deref()
    }

    /// How many JWKS responses were handled so far (at most [`MAX_JWKS_FETCHES`]).
    pub fn jwks_fetches(&self) -> u8 {
        self.jwks_fetches
    }

    /// Verify against a JWK Set the caller already has (e.g. cached), without any request or
    /// refetch: signature, then claims at `now`.
    ///
    /// # Errors
    /// [`Error::Parse`] ([`Document::Jwk`]) when `jwks` is not a JWK Set; otherwise as the
    /// flow, with [`IdTokenError::NoMatchingKey`] straight away for an unknown `kid`.
    pub fn verify_with_jwks(
        &self,
        jwks: &[u8],
        now: UnixTime,
    ) -> Result<VerifiedIdTokenClaims, Error> {
        let keys = jwks_keys(jwks).map_err(|m| ParseError::new(Document::Jwk, m))?;
        match check_signature(&self.token, &keys)? {
            KeyOutcome::Verified => self.check_claims(now).map_err(Error::from),
            KeyOutcome::NotFound => Err(self.no_matching_key().into()),
        }
    }

    fn no_matching_key(&self) -> IdTokenError {
        IdTokenError::NoMatchingKey {
            kid: self.token.jws.kid.as_deref().map(clean),
        }
    }

    /// OIDC Core §3.1.3.7 steps 2–5 and 9–11 (signature already verified).
    fn check_claims(&self, now: UnixTime) -> Result<VerifiedIdTokenClaims, IdTokenError> {
        let c = &self.token.claims;
        let client_id = self.client_id.as_str();
        let iss = c.iss.as_deref().ok_or(IdTokenError::MissingClaim("iss"))?;
        if iss != self.issuer {
            return Err(IdTokenError::IssuerMismatch {
                expected: self.issuer.clone(),
                received: clean(iss),
            });
        }
        if c.sub.is_none() {
            return Err(IdTokenError::MissingClaim("sub"));
        }
        let audience_mismatch = || IdTokenError::AudienceMismatch {
            client_id: client_id.to_owned(),
        };
        let audiences = match &c.aud {
            None => return Err(IdTokenError::MissingClaim("aud")),
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(audience_mismatch)?,
            Some(_) => return Err(audience_mismatch()),
        };
        if !audiences.contains(&client_id) {
            return Err(audience_mismatch());
        }
        let azp = c.extra.get("azp");
        if azp.is_some() || audiences.len() > 1 {
            let azp = azp.and_then(Value::as_str);
            if azp != Some(client_id) {
                return Err(IdTokenError::AuthorizedPartyMismatch {
                    client_id: client_id.to_owned(),
                    received: azp.map(clean),
                });
            }
        }
        let now_secs = now.as_secs();
        let exp = c.exp.ok_or(IdTokenError::MissingClaim("exp"))?;
        if exp.saturating_add(self.skew_secs) <= now_secs {
            return Err(IdTokenError::Expired { exp, now: now_secs });
        }
        let iat = c.iat.ok_or(IdTokenError::MissingClaim("iat"))?;
        let latest = now.plus_secs(self.skew_secs).as_secs();
        if iat > latest {
            return Err(IdTokenError::IssuedInFuture { iat, now: now_secs });
        }
        if let Some(nbf) = c.extra.get("nbf").and_then(Value::as_u64)
            && nbf > latest
        {
            return Err(IdTokenError::NotYetValid { nbf, now: now_secs });
        }
        if let Some(expected) = &self.nonce {
            let nonce = c
                .extra
                .get("nonce")
                .and_then(Value::as_str)
                .ok_or(IdTokenError::MissingClaim("nonce"))?;
            if !constant_time_eq(nonce, expected) {
                return Err(IdTokenError::NonceMismatch);
            }
        }
        Ok(VerifiedIdTokenClaims {
            claims: c.clone(),
            alg: self.token.jws.alg,
            kid: self.token.jws.kid.clone(),
        })
    }

    /// Record `e` as the final outcome (later polls repeat it) and return it.
    fn fail(&mut self, e: IdTokenError) -> Error {
        let e = Error::IdToken(e);
        self.state = State::Failed(e.clone());
        e
    }
}

impl Flow for IdTokenVerifier {
    type Output = VerifiedIdTokenClaims;

    /// `Send` the OpenID configuration or JWKS request, or `Ready` with the claims checked
    /// at `now` once the signature is verified.
    fn poll(&mut self, now: UnixTime) -> Result<Action<VerifiedIdTokenClaims>, Error> {
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start => {
                let (jwks, url) = match &self.jwks_uri {
                    Some(jwks) => (true, jwks.clone()),
                    None => (
                        false,
                        openid_configuration_url(&self.issuer).map_err(|e| self.fail(e))?,
                    ),
                };
                let purpose = if jwks {
                    crate::http::Purpose::Jwks
                } else {
                    crate::http::Purpose::OpenIdConfiguration
                };
                let get = DocumentGet::new(HttpRequest::get_json(url).with_purpose(purpose), false);
                let req = get.request();
                self.state = State::Awaiting { jwks, get };
                Ok(Action::Send(req))
            }
            State::Pending { jwks, get } => {
                let req = get.request();
                self.state = State::Awaiting { jwks, get };
                Ok(Action::Send(req))
            }
            s @ State::Awaiting { .. } => {
                self.state = s;
                Err(Error::Misuse(
                    "IdTokenVerifier::poll called while a request is in flight",
                ))
            }
            State::SignatureVerified => match self.check_claims(now) {
                Ok(claims) => {
                    self.state = State::Finished;
                    Ok(Action::Ready(claims))
                }
                Err(e) => Err(self.fail(e)),
            },
            State::Failed(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
            State::Finished => {
                self.state = State::Finished;
                Err(Error::Misuse("the id_token was already verified"))
            }
        }
    }

    fn handle_response(&mut self, response: HttpResponse, _now: UnixTime) -> Result<(), Error> {
        if !matches!(self.state, State::Awaiting { .. }) {
            // Nothing in flight: the state stays as it was.
            return Err(Error::Misuse(
                "IdTokenVerifier::handle_response called with no request in flight",
            ));
        }
        let State::Awaiting { jwks, mut get } = std::mem::replace(&mut self.state, State::Start)
        else {
            return Err(Error::Misuse(
                "IdTokenVerifier::handle_response called with no request in flight",
            ));
        };
        let response = match get.handle(response) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.state = State::Pending { jwks, get };
                return Ok(());
            }
            Err(e) => {
                self.state = State::Failed(e.clone());
                return Err(e);
            }
        };
        let url = get.url().clone();
        if !jwks {
            return match parse_openid_configuration(&response, &url, &self.issuer) {
                Ok(jwks_uri) => {
                    self.jwks_uri = Some(jwks_uri);
                    Ok(())
                }
                Err(e) => Err(self.fail(e)),
            };
        }
        self.jwks_fetches = self.jwks_fetches.saturating_add(1);
        if !response.is_success() {
            return Err(self.fail(IdTokenError::Discovery {
                url: url.to_string(),
                status: Some(response.status),
                reason: "unexpected HTTP status".into(),
            }));
        }
        let keys = match jwks_keys(&response.body) {
            Ok(keys) => keys,
            Err(reason) => {
                return Err(self.fail(IdTokenError::Discovery {
                    url: url.to_string(),
                    status: Some(response.status),
                    reason: reason.into(),
                }));
            }
        };
        match check_signature(&self.token, &keys) {
            Ok(KeyOutcome::Verified) => {
                self.state = State::SignatureVerified;
                Ok(())
            }
            // B06: the key may be published late; the next poll refetches once.
            Ok(KeyOutcome::NotFound) if self.jwks_fetches < MAX_JWKS_FETCHES => Ok(()),
            Ok(KeyOutcome::NotFound) => {
                let e = self.no_matching_key();
                Err(self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        _now: UnixTime,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::Awaiting { .. }) {
            return Err(Error::Misuse(
                "IdTokenVerifier::handle_transport_error called with no request in flight",
            ));
        }
        let e = Error::Transport(error);
        self.state = State::Failed(e.clone());
        Err(e)
    }

    /// Forget the request in flight; the next `poll` sends it again.
    fn abort(&mut self) {
        if let State::Awaiting { jwks, get } = std::mem::replace(&mut self.state, State::Start) {
            self.state = State::Pending { jwks, get };
        }
    }
}
