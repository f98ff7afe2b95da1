//! Verifying a session's `id_token` end to end (SMART App Launch §"Scopes for requesting
//! identity data"; OpenID Connect Core 1.0 §3.1.3.7): [`VerifyIdToken`] discovers the FHIR
//! server's `issuer` and `jwks_uri`, then runs an [`IdTokenVerifier`].

use crate::discovery::{Discovered, Discovery};
use crate::error::{Error, IdTokenError, TransportError};
use crate::flow::{Action, Flow, HttpResponse};
use crate::id_token::{IdTokenVerifier, VerifiedIdTokenClaims};
use crate::secret::IdToken;
use crate::session::Session;
use crate::time::UnixTime;
use crate::types::{ClientId, FhirBaseUrl};

#[derive(Debug)]
enum State {
    Discovering(Box<Discovery>),
    Verifying(Box<IdTokenVerifier>),
}

/// A one-shot [`Flow`] verifying an `id_token` for a FHIR server: discovery of
/// `{fhir_base}/.well-known/smart-configuration` for the expected `issuer` (the OpenID
/// issuer, which is not the FHIR base) and its `jwks_uri`, then [`IdTokenVerifier`] (the
/// OpenID configuration when discovery has no `jwks_uri`, the JWKS, a second JWKS fetch for
/// an unknown `kid`). Output: the [`VerifiedIdTokenClaims`].
///
/// The verifier uses its defaults: 60 s of clock leeway, no `nonce` (SMART launches send
/// none). For other settings, build an [`IdTokenVerifier`] yourself.
///
/// Errors from the flow: discovery's errors; [`Error::IdToken`] with
/// [`IdTokenError::Discovery`] when the SMART configuration has no `issuer`, and the
/// verifier's signature and claims errors.
#[derive(Debug)]
pub struct VerifyIdToken {
    id_token: IdToken,
    client_id: ClientId,
    state: State,
}

impl VerifyIdToken {
    /// Verify `id_token`, issued to `client_id` by the server of `fhir_base`.
    pub fn new(id_token: IdToken, fhir_base: FhirBaseUrl, client_id: ClientId) -> Self {
        Self {
            id_token,
            client_id,
            state: State::Discovering(Box::new(Discovery::new(fhir_base))),
        }
    }

    /// Verify `session`'s `id_token`.
    ///
    /// # Errors
    /// [`IdTokenError::Missing`] when the session has no `id_token` (`openid` was not
    /// granted).
    pub fn for_session(session: &Session) -> Result<Self, Error> {
        let id_token = session
            .id_token()
            .ok_or(Error::IdToken(IdTokenError::Missing))?;
        Ok(Self::new(
            id_token,
            session.fhir_base().clone(),
            session.client_id().clone(),
        ))
    }

    fn start_verifying(&mut self, discovered: &Discovered) -> Result<(), Error> {
        let verifier =
            IdTokenVerifier::from_discovery(&self.id_token, discovered, self.client_id.clone())?;
        self.state = State::Verifying(Box::new(verifier));
        Ok(())
    }
}

impl Flow for VerifyIdToken {
    type Output = VerifiedIdTokenClaims;

    fn poll(&mut self, now: UnixTime) -> Result<Action<VerifiedIdTokenClaims>, Error> {
        loop {
            match &mut self.state {
                State::Discovering(d) => match d.poll(now)? {
                    Action::Ready(discovered) => self.start_verifying(&discovered)?,
                    Action::Send(r) => return Ok(Action::Send(r)),
                    Action::Sign(_)
                    | Action::Store(_)
                    | Action::WaitUntil(_)
                    | Action::WaitForFlight => {
                        return Err(Error::Misuse("discovery emitted an unexpected action"));
                    }
                },
                State::Verifying(v) => return v.poll(now),
            }
        }
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        match &mut self.state {
            State::Discovering(d) => d.handle_response(response, now),
            State::Verifying(v) => v.handle_response(response, now),
        }
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        now: UnixTime,
    ) -> Result<(), Error> {
        match &mut self.state {
            State::Discovering(d) => d.handle_transport_error(error, now),
            State::Verifying(v) => v.handle_transport_error(error, now),
        }
    }

    fn abort(&mut self) {
        match &mut self.state {
            State::Discovering(d) => d.abort(),
            State::Verifying(v) => v.abort(),
        }
    }
}
