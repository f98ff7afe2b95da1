//! Refresh (RFC 6749 §6; SMART App Launch §"Refresh access token"): the request, and
//! [`refresh`], a one-shot [`Flow`](crate::flow::Flow) for refreshing outside a
//! [`Session`](crate::session::Session).

use std::sync::Arc;

use crate::client_auth::ClientAuth;
use crate::entropy::Entropy;
use crate::error::Error;
use crate::http::HttpRequest;
use crate::request::authenticated_post;
use crate::secret::RefreshToken;
use crate::sign::Prepared;
use crate::single::SingleRequest;
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};
use crate::types::Endpoint;

/// The `grant_type` of a refresh request (RFC 6749 §6).
pub const GRANT_TYPE_REFRESH_TOKEN: &str = "refresh_token";

pub(crate) fn refresh_outgoing(
    client_auth: &ClientAuth,
    token_endpoint: &Endpoint,
    refresh_token: &RefreshToken,
    scope: Option<&str>,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<Prepared, Error> {
    let mut fields = vec![
        ("grant_type".to_owned(), GRANT_TYPE_REFRESH_TOKEN.to_owned()),
        (
            "refresh_token".to_owned(),
            refresh_token.secret().to_owned(),
        ),
    ];
    if let Some(s) = scope {
        fields.push((
            "scope".into(),
            s.split_whitespace().collect::<Vec<_>>().join(" "),
        ));
    }
    authenticated_post(
        crate::request::PostTo {
            purpose: crate::http::Purpose::Refresh,
            endpoint: token_endpoint,
            allow_insecure_http,
        },
        client_auth,
        fields,
        &["refresh_token"],
        now,
        entropy,
    )
}

/// A refresh request (RFC 6749 §6; SMART App Launch §"Refresh access token"):
/// `grant_type=refresh_token`, the `refresh_token`, an optional narrower `scope` (a subset of
/// the original grant), and the same client authentication as the code exchange (an
/// asymmetric client signs a new assertion each time; a public client sends `client_id`).
///
/// A `private_key_jwt` assertion's `aud` is the endpoint's advertised text
/// ([`Endpoint::as_str`]). Prefer [`refresh`], which also reads the answer and keeps secrets
/// out of its errors.
///
/// # Errors
/// [`Error::InsecureUrl`]; client-authentication errors; [`Error::Config`] for a client whose
/// key is a [`RemoteSigner`](crate::assertion::RemoteSigner) (use [`refresh`]).
pub fn refresh_request(
    client_auth: &ClientAuth,
    token_endpoint: impl Into<Endpoint>,
    refresh_token: &RefreshToken,
    scope: Option<&str>,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<HttpRequest, Error> {
    refresh_outgoing(
        client_auth,
        &token_endpoint.into(),
        refresh_token,
        scope,
        allow_insecure_http,
        now,
        entropy,
    )?
    .into_request()
}

/// Refresh once, outside a [`Session`](crate::session::Session): a one-shot flow whose output
/// is the raw [`TokenResponse`] (merge it into a stored token set with
/// [`TokenResponse::merge_refresh`], which keeps the old refresh token when no new one is
/// sent, RFC 6749 §6). See [`refresh_request`] for the request.
///
/// Errors from the flow: [`Error::OAuth`] (e.g. `invalid_grant` for a spent or revoked
/// refresh token), [`Error::Http`], [`Error::Parse`], [`Error::UnsupportedTokenType`],
/// [`Error::Redirect`], [`Error::Transport`]; never containing the refresh token, client
/// secret or assertion, even when the server echoes them.
pub fn refresh(
    client_auth: ClientAuth,
    token_endpoint: impl Into<Endpoint>,
    refresh_token: RefreshToken,
    scope: Option<String>,
    allow_insecure_http: bool,
    entropy: Arc<dyn Entropy>,
) -> SingleRequest<TokenResponse> {
    let token_endpoint: Endpoint = token_endpoint.into();
    let url = token_endpoint.url().clone();
    SingleRequest::new(
        "refresh",
        url,
        Box::new(move |now| {
            refresh_outgoing(
                &client_auth,
                &token_endpoint,
                &refresh_token,
                scope.as_deref(),
                allow_insecure_http,
                now,
                entropy.as_ref(),
            )
        }),
        parse_token_response,
    )
}
