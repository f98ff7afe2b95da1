//! The authorization-code exchange (RFC 6749 §4.1.3; SMART App Launch §"Obtain access
//! token"): [`CodeExchange`], a one-shot [`Flow`].

use std::sync::Arc;

use crate::client_auth::ClientAuth;
use crate::entropy::Entropy;
use crate::error::{Error, TransportError};
use crate::flow::{Action, Flow, HttpResponse};
use crate::redact::SentSecrets;
use crate::request::{Outgoing, authenticated_post, refuse_redirect};
use crate::secret::{AuthorizationCode, PkceCodeVerifier};
use crate::sign::{Next, SignSlot};
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};
use crate::types::{Endpoint, FhirBaseUrl};

/// The `grant_type` of a code exchange (RFC 6749 §4.1.3).
pub const GRANT_TYPE_AUTHORIZATION_CODE: &str = "authorization_code";

enum State {
    /// The next poll sends the code (signing first with a remote signer).
    Ready,
    /// A remote signer is signing the client assertion; the code has not been sent.
    Signing,
    /// The code is in flight; these secrets went with it.
    InFlight(SentSecrets),
    /// The outcome, to hand out at the next poll (an error is repeated by later polls).
    Done(Result<Box<TokenResponse>, Error>),
    /// The token response was handed out.
    Finished,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ready => "Ready",
            Self::Signing => "Signing",
            Self::InFlight(_) => "InFlight",
            Self::Done(Ok(_)) => "Done",
            Self::Done(Err(_)) => "Failed",
            Self::Finished => "Finished",
        })
    }
}

/// The authorization-code exchange, a one-shot [`Flow`] whose output is the
/// [`TokenResponse`] (launch context, `id_token`, refresh token…). Built by
/// [`PendingAuthorization::callback`](crate::launch::PendingAuthorization::callback).
///
/// The request: `grant_type=authorization_code`, `code`, the same `redirect_uri`,
/// `code_verifier`, plus client authentication (public: `client_id` in the body; symmetric:
/// HTTP Basic only; asymmetric: a fresh `client_assertion` and no `client_id`).
///
/// The code is sent **at most once** (codes are single use, RFC 6749 §4.1.2): a transport
/// failure is final, and after [`abort`](Flow::abort) the flow fails with
/// [`Error::Misuse`] instead of resending. With a remote signer the first poll emits
/// [`Action::Sign`]; the code leaves only at the poll after
/// [`handle_signature`](Flow::handle_signature), so an `abort` while signing is harmless
/// (the next poll signs again). A redirect is refused ([`Error::Redirect`]).
/// Errors never contain the code, the `code_verifier` or the client's credentials, even when
/// the server echoes them.
pub struct CodeExchange {
    client_auth: ClientAuth,
    token_endpoint: Endpoint,
    code: AuthorizationCode,
    code_verifier: PkceCodeVerifier,
    redirect_uri: String,
    fhir_base: FhirBaseUrl,
    allow_insecure_http: bool,
    entropy: Arc<dyn Entropy>,
    state: State,
    slot: SignSlot,
    /// Put first among the token response's warnings (see
    /// [`ValidatedCallback::into_exchange`](super::ValidatedCallback::into_exchange)).
    pub(super) callback_warnings: Vec<String>,
}

impl std::fmt::Debug for CodeExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeExchange")
            .field("token_endpoint", &self.token_endpoint.as_str())
            .field("redirect_uri", &self.redirect_uri)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl CodeExchange {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        client_auth: ClientAuth,
        token_endpoint: Endpoint,
        code: AuthorizationCode,
        code_verifier: PkceCodeVerifier,
        redirect_uri: String,
        fhir_base: FhirBaseUrl,
        allow_insecure_http: bool,
        entropy: Arc<dyn Entropy>,
    ) -> Self {
        Self {
            client_auth,
            token_endpoint,
            code,
            code_verifier,
            redirect_uri,
            fhir_base,
            allow_insecure_http,
            entropy,
            state: State::Ready,
            slot: SignSlot::default(),
            callback_warnings: Vec::new(),
        }
    }

    /// The FHIR base the tokens are for.
    pub fn fhir_base(&self) -> &FhirBaseUrl {
        &self.fhir_base
    }

    /// The token endpoint, with the text the server advertised (the `aud` of a client
    /// assertion, byte for byte); it dereferences to its parsed [`Url`](url::Url). Pass it on to a
    /// [`Session`](crate::session::Session) so refreshes use the same `aud`.
    pub fn token_endpoint(&self) -> &Endpoint {
        &self.token_endpoint
    }

    /// The client authentication the exchange uses (and a session refreshing its tokens).
    pub fn client_auth(&self) -> &ClientAuth {
        &self.client_auth
    }

    fn outgoing(&self, now: UnixTime) -> Result<crate::sign::Prepared, Error> {
        let fields = vec![
            ("grant_type".into(), GRANT_TYPE_AUTHORIZATION_CODE.into()),
            ("code".into(), self.code.secret().into()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("code_verifier".into(), self.code_verifier.secret().into()),
        ];
        authenticated_post(
            crate::request::PostTo {
                purpose: crate::http::Purpose::CodeExchange,
                endpoint: &self.token_endpoint,
                allow_insecure_http: self.allow_insecure_http,
            },
            &self.client_auth,
            fields,
            &["code", "code_verifier"],
            now,
            self.entropy.as_ref(),
        )
    }

    fn finish(&mut self, result: Result<TokenResponse, Error>) -> Result<(), Error> {
        let out = result.as_ref().err().cloned();
        let callback_warnings = std::mem::take(&mut self.callback_warnings);
        self.state = State::Done(result.map(|mut token| {
            token.warnings.splice(0..0, callback_warnings);
            Box::new(token)
        }));
        out.map_or(Ok(()), Err)
    }
}

impl Flow for CodeExchange {
    type Output = TokenResponse;

    fn poll(&mut self, now: UnixTime) -> Result<Action<TokenResponse>, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Ready => {
                let next = match self.slot.take_signed() {
                    Some(signed) => Next::Send(signed),
                    None => match self.outgoing(now) {
                        Ok(prepared) => self.slot.begin(prepared),
                        Err(e) => {
                            self.state = State::Ready;
                            return Err(e);
                        }
                    },
                };
                match next {
                    Next::Send(Outgoing { request, sent }) => {
                        self.state = State::InFlight(sent);
                        Ok(Action::Send(request))
                    }
                    Next::Sign(request) => {
                        self.state = State::Signing;
                        Ok(Action::Sign(request))
                    }
                }
            }
            State::Signing => {
                self.state = State::Signing;
                Err(Error::Misuse("poll called while a signature is pending"))
            }
            State::InFlight(sent) => {
                self.state = State::InFlight(sent);
                Err(Error::Misuse(
                    "poll called while the code exchange is in flight",
                ))
            }
            State::Done(Ok(token)) => Ok(Action::Ready(*token)),
            State::Done(Err(e)) => {
                self.state = State::Done(Err(e.clone()));
                Err(e)
            }
            State::Finished => Err(Error::Misuse("the code exchange already finished")),
        }
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        if !matches!(self.state, State::InFlight(_)) {
            // Nothing in flight: the state stays as it was.
            return Err(Error::Misuse(
                "handle_response called with no code exchange in flight",
            ));
        }
        let State::InFlight(sent) = std::mem::replace(&mut self.state, State::Finished) else {
            return Err(Error::Misuse(
                "handle_response called with no code exchange in flight",
            ));
        };
        let result = match refuse_redirect(&response, &self.token_endpoint, &sent) {
            Some(e) => Err(e),
            None => parse_token_response(&response, &self.token_endpoint, now)
                .map_err(|e| sent.scrub_error(e)),
        };
        self.finish(result)
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        _now: UnixTime,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::InFlight(_)) {
            // Nothing in flight: the state stays as it was.
            return Err(Error::Misuse(
                "handle_transport_error called with no code exchange in flight",
            ));
        }
        let State::InFlight(sent) = std::mem::replace(&mut self.state, State::Finished) else {
            return Err(Error::Misuse(
                "handle_transport_error called with no code exchange in flight",
            ));
        };
        // The code may have reached the server: never resend it.
        self.finish(Err(sent.scrub_error(Error::Transport(error))))
    }

    fn handle_signature(
        &mut self,
        signature: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::Signing) {
            return Err(Error::Misuse(
                "handle_signature called with no signature pending",
            ));
        }
        match self.slot.signature(signature, now) {
            Ok(()) => {
                self.state = State::Ready;
                Ok(())
            }
            Err(e) => {
                self.slot.reset();
                self.finish(Err(e))
            }
        }
    }

    fn abort(&mut self) {
        if matches!(self.state, State::Signing) {
            // Nothing was sent: the next poll signs a new assertion.
            self.slot.reset();
            self.state = State::Ready;
        }
        if matches!(self.state, State::InFlight(_)) {
            // The code may have reached the server: never resend it.
            self.state = State::Done(Err(Error::Misuse(
                "the code exchange was abandoned after the code was sent; codes are single use",
            )));
        }
    }
}
