//! The authorization-code exchange (RFC 6749 §4.1.3; SMART App Launch §"Obtain access token").

use std::sync::Arc;

use url::Url;

use crate::client_auth::ClientAuth;
use crate::entropy::Entropy;
use crate::error::Error;
use crate::flow::{Action, Flow, HttpRequest, HttpResponse, check_url_security};
use crate::secret::{AuthorizationCode, PkceCodeVerifier};
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};
use crate::types::FhirBaseUrl;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ExchangeState {
    Ready,
    InFlight,
    Done,
}

/// A token request (code exchange or refresh): one POST, one [`TokenResponse`].
pub(crate) fn token_post(
    client_auth: &ClientAuth,
    token_endpoint: &Url,
    mut fields: Vec<(String, String)>,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<HttpRequest, Error> {
    check_url_security(token_endpoint, allow_insecure_http)?;
    let mut headers = Vec::new();
    client_auth.apply(&mut fields, &mut headers, token_endpoint, now, entropy)?;
    let mut req = HttpRequest::post_form(
        token_endpoint.clone(),
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    req.headers.extend(headers);
    Ok(req)
}

/// The authorization-code exchange (TOKEN-01..TOKEN-04): `grant_type=authorization_code`,
/// `code`, the same `redirect_uri`, `code_verifier`, plus client authentication (public:
/// `client_id` in the body; symmetric: HTTP Basic only; asymmetric: a fresh
/// `client_assertion` and no `client_id`). A [`Flow`] with output [`TokenResponse`]; the code
/// is sent at most once (a transport failure ends the flow: codes are single use).
pub struct CodeExchange {
    pub(super) client_auth: ClientAuth,
    pub(super) token_endpoint: Url,
    pub(super) code: AuthorizationCode,
    pub(super) code_verifier: PkceCodeVerifier,
    pub(super) redirect_uri: String,
    pub(super) fhir_base: FhirBaseUrl,
    pub(super) allow_insecure_http: bool,
    pub(super) state: ExchangeState,
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
    /// The FHIR base the tokens are for.
    pub fn fhir_base(&self) -> &FhirBaseUrl {
        &self.fhir_base
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// Build the exchange request. Needs entropy for an asymmetric client's assertion.
    ///
    /// # Errors
    /// [`Error::Misuse`] if already sent; errors of client authentication.
    pub fn request(&mut self, now: UnixTime, entropy: &dyn Entropy) -> Result<HttpRequest, Error> {
        if self.state != ExchangeState::Ready {
            return Err(Error::Misuse("the authorization code was already sent"));
        }
        let fields = vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), self.code.secret().into()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("code_verifier".into(), self.code_verifier.secret().into()),
        ];
        let req = token_post(
            &self.client_auth,
            &self.token_endpoint,
            fields,
            self.allow_insecure_http,
            now,
            entropy,
        )?;
        self.state = ExchangeState::InFlight;
        Ok(req)
    }

    /// Parse the token endpoint's answer.
    ///
    /// # Errors
    /// [`Error::OAuth`] (e.g. `invalid_grant` for a PKCE mismatch), [`Error::Http`],
    /// [`Error::Parse`]; [`Error::Misuse`] when no request is in flight.
    pub fn response(
        &mut self,
        response: &HttpResponse,
        now: UnixTime,
    ) -> Result<TokenResponse, Error> {
        if self.state != ExchangeState::InFlight {
            return Err(Error::Misuse("no code exchange in flight"));
        }
        self.state = ExchangeState::Done;
        parse_token_response(response, &self.token_endpoint, now).map_err(|e| {
            let mut sent = vec![self.code.secret(), self.code_verifier.secret()];
            sent.extend(self.client_auth.client_secret_value());
            crate::oauth_error::redact_echoed_secrets(e, &sent)
        })
    }

    /// Wrap as a [`Flow`] with the given entropy source.
    pub fn into_flow(self, entropy: Arc<dyn Entropy>) -> CodeExchangeFlow {
        CodeExchangeFlow {
            exchange: self,
            entropy,
            result: None,
        }
    }
}

/// [`CodeExchange`] as a [`Flow`] (output [`TokenResponse`]).
#[derive(Debug)]
pub struct CodeExchangeFlow {
    exchange: CodeExchange,
    entropy: Arc<dyn Entropy>,
    result: Option<TokenResponse>,
}

impl Flow for CodeExchangeFlow {
    type Output = TokenResponse;

    fn poll(&mut self, now: UnixTime) -> Result<Action<TokenResponse>, Error> {
        if let Some(t) = self.result.take() {
            return Ok(Action::Ready(t));
        }
        match self.exchange.state {
            ExchangeState::Ready => Ok(Action::Send(
                self.exchange.request(now, self.entropy.as_ref())?,
            )),
            ExchangeState::InFlight => {
                Err(Error::Misuse("poll called while the exchange is in flight"))
            }
            ExchangeState::Done => Err(Error::Misuse("the code exchange already finished")),
        }
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        self.result = Some(self.exchange.response(&response, now)?);
        Ok(())
    }

    fn abort(&mut self) {
        // The code may have reached the server: never resend it.
        self.exchange.state = ExchangeState::Done;
    }
}
