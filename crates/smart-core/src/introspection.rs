//! Token introspection (RFC 7662; SMART App Launch §"Token Introspection") and token
//! revocation (RFC 7009; the IG defines only the
//! `revocation_endpoint` discovery member).
//!
//! Two one-shot [`Flow`](crate::flow::Flow)s, [`introspect`] and [`revoke`], each one `POST`;
//! their building blocks, the `*_request` functions (an [`HttpRequest`]) and the `parse_*`
//! functions (reading the [`HttpResponse`]), are public too. Find the endpoints in discovery
//! ([`SmartConfiguration::introspection_endpoint`](crate::discovery::SmartConfiguration::introspection_endpoint),
//! [`revocation_endpoint`](crate::discovery::SmartConfiguration::revocation_endpoint)).
//!
//! ```
//! use std::sync::Arc;
//! use smart_core::client_auth::ClientAuth;
//! use smart_core::entropy::DeterministicEntropy;
//! use smart_core::introspection::{introspect, IntrospectionAuth, TokenTypeHint};
//! use smart_core::secret::AccessToken;
//! use smart_core::{Action, Flow, HttpResponse, UnixTime};
//!
//! # fn main() -> Result<(), smart_core::Error> {
//! let endpoint = url::Url::parse("https://ehr.example.org/introspect").unwrap();
//! let mut flow = introspect(
//!     endpoint,
//!     AccessToken::new("2YotnFZFEjr1zCsicMWpAA"),
//!     Some(TokenTypeHint::AccessToken),
//!     IntrospectionAuth::Client(ClientAuth::public("my-app")),
//!     false,
//!     Arc::new(DeterministicEntropy::new(1)),
//! );
//! let now = UnixTime::from_secs(1_700_000_000);
//! let Action::Send(req) = flow.poll(now)? else { unreachable!() };
//! assert_eq!(
//!     req.body,
//!     b"token=2YotnFZFEjr1zCsicMWpAA&token_type_hint=access_token&client_id=my-app"
//! );
//! flow.handle_response(HttpResponse::new(200,
//!     r#"{"active":true,"patient":"Patient/456","scope":"patient/*.rs"}"#), now)?;
//! let Action::Ready(info) = flow.poll(now)? else { unreachable!() };
//! assert!(info.active);
//! assert_eq!(info.patient_id(), Some("456"));
//! # Ok(()) }
//! ```
//!
//! # Security
//! The token being introspected or revoked travels only in the POST body; it is never part of
//! an error or a `Debug` output, even when the server echoes it: the flows remove every value
//! they sent from the server's text.

use std::sync::Arc;

use crate::client_auth::ClientAuth;
use crate::context::{FhirContextItem, parse_launch_context};
use crate::entropy::Entropy;
use crate::error::{Document, Error, ParseError};
use crate::http::{HttpRequest, HttpResponse, check_url_security};
use crate::lenient::{BOM_WARNING, LBool, LSecs, LStr, LStrList, NoteKind, Notes, Seen, strip_bom};
use crate::oauth_error::parse_oauth_error;
use crate::redact::SentSecrets;
use crate::request::{Outgoing, authenticated_post};
use crate::secret::AccessToken;
use crate::sign::Prepared;
use crate::single::SingleRequest;
use crate::time::UnixTime;
use crate::types::Endpoint;
use serde_json::{Map, Value};
use url::Url;

mod response;
pub use response::{
    INTROSPECTION_LEEWAY_SECS, Introspection, parse_introspection_response,
    parse_revocation_response,
};

/// The `token_type_hint` parameter (RFC 7662 §2.1, RFC 7009 §2.1; values registered in
/// RFC 7009 §4.1.2). Only a hint: servers search all token types when it is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    /// The value sent on the wire: `access_token` or `refresh_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// How the caller authenticates to the introspection endpoint (SMART App Launch §"Token
/// Introspection").
///
/// SMART 2.0.0/2.1.0: clients SHOULD be able to authenticate with their client credentials;
/// 2.2.0: servers SHALL (if the endpoint is protected) accept an appropriately-scoped SMART
/// App or Backend Services bearer token. Not every server supports both (the local sandbox
/// supports client credentials only).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum IntrospectionAuth {
    /// Client authentication exactly as at the token endpoint ([`ClientAuth::apply`]): public
    /// clients send `client_id` in the body, symmetric clients HTTP Basic, asymmetric clients
    /// a fresh `client_assertion` whose `aud` is the introspection endpoint URL.
    Client(ClientAuth),
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1; SMART 2.2.0), e.g. a Backend Services
    /// token with the scope the server requires. No client credentials in the body.
    Bearer(AccessToken),
}

/// Build a token-introspection request (RFC 7662 §2.1): `POST endpoint` with
/// `Content-Type: application/x-www-form-urlencoded`, `Accept: application/json` and the
/// form body `token=…[&token_type_hint=…]`, followed by the client-authentication fields of
/// `auth` (or an `Authorization: Bearer` header).
///
/// `token` is the token to inspect (an access or refresh token; pass
/// [`AccessToken::secret`] / [`RefreshToken::secret`](crate::secret::RefreshToken::secret)).
/// `now` (seconds since the epoch) and `entropy` are used only for a `private_key_jwt`
/// assertion (`jti`, `exp = now + lifetime`). Prefer [`introspect`], which also reads the
/// answer and keeps secrets out of its errors.
///
/// # Errors
/// [`Error::InsecureUrl`] when `endpoint` is not `https` (or loopback `http`, or any `http`
/// with `allow_insecure_http`) or carries user info ([`check_url_security`]);
/// [`Error::Config`] for an empty `token`; from [`ClientAuth::apply`]: [`Error::Config`]
/// (also for a client whose key is a [`RemoteSigner`](crate::assertion::RemoteSigner): use
/// [`introspect`]), [`Error::Entropy`], [`Error::Key`].
pub fn introspection_request(
    endpoint: impl Into<Endpoint>,
    token: &str,
    token_type_hint: Option<TokenTypeHint>,
    auth: &IntrospectionAuth,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<HttpRequest, Error> {
    introspection_outgoing(
        &endpoint.into(),
        token,
        token_type_hint,
        auth,
        allow_insecure_http,
        now,
        entropy,
    )?
    .into_request()
}

fn introspection_outgoing(
    endpoint: &Endpoint,
    token: &str,
    token_type_hint: Option<TokenTypeHint>,
    auth: &IntrospectionAuth,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<Prepared, Error> {
    let fields = token_fields(token, token_type_hint)?;
    match auth {
        IntrospectionAuth::Client(client_auth) => authenticated_post(
            crate::request::PostTo {
                purpose: crate::http::Purpose::Introspection,
                endpoint,
                allow_insecure_http,
            },
            client_auth,
            fields,
            &["token"],
            now,
            entropy,
        ),
        IntrospectionAuth::Bearer(bearer) => {
            check_url_security(endpoint.url(), allow_insecure_http)?;
            if bearer.secret().is_empty() {
                return Err(Error::Config(
                    "the introspection bearer token is empty".into(),
                ));
            }
            let mut request = HttpRequest::post_form(
                endpoint.url().clone(),
                fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            request.headers.push((
                "authorization".into(),
                format!("Bearer {}", bearer.secret()),
            ));
            request.context.purpose = crate::http::Purpose::Introspection;
            let mut sent = SentSecrets::new();
            sent.add(token);
            sent.add(bearer.secret());
            Ok(Prepared::Ready(Outgoing { request, sent }))
        }
    }
}

/// Build a token-revocation request (RFC 7009 §2.1): `POST endpoint` with the form body
/// `token=…[&token_type_hint=…]` and `client_auth` applied as at the token endpoint
/// ([`ClientAuth::apply`]; a `private_key_jwt` assertion gets `aud` = the revocation endpoint
/// URL). Revoking a refresh token normally revokes the access tokens of the same grant too
/// (RFC 7009 §2.1, "SHOULD"). Prefer [`revoke`].
///
/// # Errors
/// As [`introspection_request`] with [`IntrospectionAuth::Client`].
pub fn revocation_request(
    endpoint: impl Into<Endpoint>,
    token: &str,
    token_type_hint: Option<TokenTypeHint>,
    client_auth: &ClientAuth,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<HttpRequest, Error> {
    let fields = token_fields(token, token_type_hint)?;
    let endpoint = endpoint.into();
    authenticated_post(
        crate::request::PostTo {
            purpose: crate::http::Purpose::Revocation,
            endpoint: &endpoint,
            allow_insecure_http,
        },
        client_auth,
        fields,
        &["token"],
        now,
        entropy,
    )?
    .into_request()
}

fn token_fields(
    token: &str,
    token_type_hint: Option<TokenTypeHint>,
) -> Result<Vec<(String, String)>, Error> {
    if token.is_empty() {
        return Err(Error::Config(
            "the token to introspect or revoke is empty".into(),
        ));
    }
    let mut fields = vec![("token".to_owned(), token.to_owned())];
    if let Some(h) = token_type_hint {
        fields.push(("token_type_hint".into(), h.as_str().into()));
    }
    Ok(fields)
}

/// Introspect `token` at `endpoint` (RFC 7662; SMART App Launch §"Token Introspection"): a
/// one-shot flow of one `POST` ([`introspection_request`]) whose output is the
/// [`Introspection`] ([`parse_introspection_response`]). An inactive, unknown, expired or
/// revoked token is `Ready` with `active: false`, not an error.
///
/// Errors from the flow: [`Error::OAuth`] (e.g. 401 `invalid_client`), [`Error::Http`],
/// [`Error::Parse`], [`Error::Redirect`], [`Error::Transport`], and the request's
/// ([`introspection_request`]); never containing `token`, a bearer token or client
/// credentials, even when the server echoes them.
pub fn introspect(
    endpoint: impl Into<Endpoint>,
    token: AccessToken,
    token_type_hint: Option<TokenTypeHint>,
    auth: IntrospectionAuth,
    allow_insecure_http: bool,
    entropy: Arc<dyn Entropy>,
) -> SingleRequest<Introspection> {
    let endpoint: Endpoint = endpoint.into();
    let url = endpoint.url().clone();
    SingleRequest::new(
        "introspection",
        url,
        Box::new(move |now| {
            introspection_outgoing(
                &endpoint,
                token.secret(),
                token_type_hint,
                &auth,
                allow_insecure_http,
                now,
                entropy.as_ref(),
            )
        }),
        |response, url, _now| parse_introspection_response(response, url),
    )
}

/// Revoke `token` at `endpoint` (RFC 7009): a one-shot flow of one `POST`
/// ([`revocation_request`]); `Ready(())` also when the token was already invalid (RFC 7009
/// §2.2). Revoking a refresh token usually revokes its access tokens too.
///
/// Errors from the flow: [`Error::OAuth`] (e.g. 400 `unsupported_token_type`, 401
/// `invalid_client`, 503 `temporarily_unavailable`), [`Error::Http`], [`Error::Redirect`],
/// [`Error::Transport`], and the request's; never containing `token` or client credentials.
pub fn revoke(
    endpoint: impl Into<Endpoint>,
    token: AccessToken,
    token_type_hint: Option<TokenTypeHint>,
    client_auth: ClientAuth,
    allow_insecure_http: bool,
    entropy: Arc<dyn Entropy>,
) -> SingleRequest<()> {
    let endpoint: Endpoint = endpoint.into();
    let url = endpoint.url().clone();
    SingleRequest::new(
        "revocation",
        url,
        Box::new(move |now| {
            let fields = token_fields(token.secret(), token_type_hint)?;
            authenticated_post(
                crate::request::PostTo {
                    purpose: crate::http::Purpose::Revocation,
                    endpoint: &endpoint,
                    allow_insecure_http,
                },
                &client_auth,
                fields,
                &["token"],
                now,
                entropy.as_ref(),
            )
        }),
        |response, url, _now| parse_revocation_response(response, url),
    )
}
