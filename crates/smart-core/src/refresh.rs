//! Refresh (RFC 6749 §6; SMART App Launch §"Refresh access token").

use url::Url;

use crate::client_auth::ClientAuth;
use crate::entropy::Entropy;
use crate::error::Error;
use crate::flow::{Flow, HttpRequest, HttpResponse};
use crate::launch::token_post;
use crate::secret::RefreshToken;
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};

/// A refresh request (REFR-02, REFR-03): `grant_type=refresh_token`, the `refresh_token`, an
/// optional narrower `scope`, and the same client authentication as the exchange (an
/// asymmetric client signs a new assertion each time; a public client sends `client_id`).
///
/// # Errors
/// [`Error::InsecureUrl`]; client-authentication errors.
pub fn refresh_request(
    client_auth: &ClientAuth,
    token_endpoint: &Url,
    refresh_token: &RefreshToken,
    scope: Option<&str>,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<HttpRequest, Error> {
    let mut fields = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
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
    token_post(
        client_auth,
        token_endpoint,
        fields,
        allow_insecure_http,
        now,
        entropy,
    )
}

/// Parse the answer to a [`refresh_request`] (REFR-02..REFR-04): as
/// [`parse_token_response`], but any value this client sent (the refresh token, a client
/// secret) that the server echoed into an OAuth error text is replaced by `[redacted]`.
/// The caller merges a success into its token set ([`TokenResponse::merge_refresh`]).
///
/// # Errors
/// [`Error::OAuth`] (e.g. `invalid_grant`), [`Error::Http`], [`Error::Parse`],
/// [`Error::UnsupportedTokenType`].
pub fn parse_refresh_response(
    response: &HttpResponse,
    token_endpoint: &Url,
    now: UnixTime,
    refresh_token: &RefreshToken,
    client_auth: &ClientAuth,
) -> Result<TokenResponse, Error> {
    parse_token_response(response, token_endpoint, now).map_err(|e| {
        let mut sent = vec![refresh_token.secret()];
        sent.extend(client_auth.client_secret_value());
        crate::oauth_error::redact_echoed_secrets(e, &sent)
    })
}
