//! The crate's one error type, [`Error`], and its leaf detail types.
//!
//! No variant ever carries a response body, a token, a secret, a key, an authorization code
//! or a PKCE verifier: errors are safe to log. Leaf types derive `Clone + PartialEq` so tests
//! can `assert_eq!` on them.

use std::fmt;

/// Everything that can go wrong in `smart-core`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The authorization server answered with an OAuth 2.0 error (RFC 6749 §5.2), either in a
    /// token-endpoint response body or in an authorization redirect (§4.1.2.1).
    OAuth(OAuthError),
    /// A non-2xx HTTP status whose body was not an OAuth error document.
    Http {
        /// The URL that was requested (no query string secrets: token requests use POST bodies).
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// `.well-known/smart-configuration` (or the CapabilityStatement fallback) was unusable.
    Discovery(DiscoveryError),
    /// A document failed to parse. Carries the document kind and a message, never its bytes.
    Parse(ParseError),
    /// The authorization redirect (callback) failed validation.
    Callback(CallbackError),
    /// A scope string is malformed (SMART App Launch §"Scopes and Launch Context").
    Scope(ScopeError),
    /// A private key could not be loaded or used.
    Key(KeyError),
    /// An OpenID Connect `id_token` failed verification (signature or claims; OIDC Core 1.0
    /// §3.1.3.7). See [`crate::id_token::IdTokenVerifier`].
    IdToken(IdTokenError),
    /// The token endpoint issued a token of a type this library does not use (only `Bearer`,
    /// compared case-insensitively, is supported; RFC 6749 §7.1). The token is discarded.
    UnsupportedTokenType {
        /// The `token_type` received (control characters removed).
        token_type: String,
    },
    /// The token endpoint issued an access token that is not `1*VSCHAR` (RFC 6749
    /// Appendix A.12) or that contains a space: it would break the `Authorization: Bearer`
    /// header (RFC 6750 §2.1). The token is discarded; it is never printed or sent.
    InvalidAccessToken {
        /// What is wrong, e.g. "contains a control character" (never the token itself).
        reason: &'static str,
    },
    /// The entropy source failed.
    Entropy,
    /// The access token is expired or was rejected, and there is no refresh token: the app
    /// must launch again. No request was made.
    NoRefreshToken,
    /// Invalid configuration supplied by the caller (the message names the option).
    Config(String),
    /// A URL uses plain `http://` to a non-loopback host, or another refused scheme.
    InsecureUrl {
        /// The refused URL.
        url: String,
    },
    /// The state machine was driven out of order (e.g. `handle_response` without a request in
    /// flight). A bug in the driver, never caused by the network.
    Misuse(&'static str),
    /// The request could not be sent or its response could not be read (timeout, connection,
    /// TLS, oversized body). The underlying error is the [`source`](std::error::Error::source).
    Transport(TransportError),
    /// A token store failed. The underlying error is the [`source`](std::error::Error::source).
    Store(StoreError),
    /// A `POST` (token, introspection or revocation request) was answered with a redirect.
    /// Such requests carry credentials and are never redirected (RFC 6749 §3.2 requires the
    /// client to use the endpoint URL it was given); `GET`s of discovery documents follow up
    /// to five redirects instead.
    Redirect {
        /// The URL that was requested.
        url: String,
        /// The redirect status (301, 302, 303, 307 or 308).
        status: u16,
        /// The `Location` header (values the client sent are redacted), if any.
        location: Option<String>,
    },
}

/// `{e}` is this error alone; `{e:#}` adds its sources (as [`Error::report`]).
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return write!(f, "{}", self.report());
        }
        match self {
            Self::OAuth(e) => e.fmt(f),
            Self::Http { url, status } => write!(f, "HTTP {status} from {url}"),
            Self::Discovery(e) => e.fmt(f),
            Self::Parse(e) => e.fmt(f),
            Self::Callback(e) => e.fmt(f),
            Self::Scope(e) => e.fmt(f),
            Self::Key(e) => e.fmt(f),
            Self::IdToken(e) => e.fmt(f),
            Self::UnsupportedTokenType { token_type } => write!(
                f,
                "unsupported token_type `{token_type}`: only Bearer tokens are used (RFC 6749 §7.1)"
            ),
            Self::InvalidAccessToken { reason } => write!(
                f,
                "the access token {reason}: refused (RFC 6749 Appendix A.12 allows printable \
                 ASCII only, and a Bearer header no space)"
            ),
            Self::Entropy => f.write_str("the entropy source failed"),
            Self::NoRefreshToken => {
                f.write_str("the access token is expired or invalid and there is no refresh token")
            }
            Self::Config(m) => write!(f, "invalid configuration: {m}"),
            Self::InsecureUrl { url } => {
                write!(
                    f,
                    "refusing insecure URL {url} (https is required except on loopback)"
                )
            }
            Self::Misuse(m) => write!(f, "state machine misuse: {m}"),
            Self::Transport(e) => e.fmt(f),
            Self::Store(e) => e.fmt(f),
            Self::Redirect {
                url,
                status,
                location,
            } => {
                write!(f, "HTTP {status} redirect from {url}")?;
                if let Some(l) = location {
                    write!(f, " to {l}")?;
                }
                f.write_str(" refused: credentials are never sent to a redirected URL")
            }
        }
    }
}

impl Error {
    /// This error and its sources on one line, `error: source: source…` — for logs and for a
    /// `main` that prints what went wrong:
    ///
    /// ```
    /// use smart_core::error::{TransportError, TransportErrorKind};
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    /// let url = "https://ehr.example.org/token";
    /// let e = smart_core::Error::Transport(
    ///     TransportError::new(url, TransportErrorKind::Connect, io.to_string()).with_source(io),
    /// );
    /// assert_eq!(e.to_string(), "request to https://ehr.example.org/token could not connect");
    /// assert_eq!(
    ///     e.report().to_string(),
    ///     "request to https://ehr.example.org/token could not connect: connection refused"
    /// );
    /// assert_eq!(format!("{e:#}"), e.report().to_string());
    /// ```
    pub fn report(&self) -> Report<'_> {
        Report(self)
    }
}

/// An error with its whole `source()` chain, joined by `": "` (see [`Error::report`]).
#[derive(Clone, Copy)]
pub struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => e.source_error().map(|s| &**s as _),
            Self::Store(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

/// An OAuth 2.0 error response (RFC 6749 §5.2 for the token endpoint, §4.1.2.1 for the
/// authorization redirect).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OAuthError {
    /// HTTP status of the token-endpoint response; `None` for an error redirect.
    pub status: Option<u16>,
    /// The `error` code, e.g. `invalid_client`, `invalid_grant`, `access_denied`.
    pub error: String,
    /// `error_description`, human-readable text from the server.
    pub error_description: Option<String>,
    /// `error_uri`, a page describing the error.
    pub error_uri: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OAuth error `{}`", self.error)?;
        if let Some(d) = &self.error_description {
            write!(f, ": {d}")?;
        }
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if let Some(u) = &self.error_uri {
            write!(f, " see {u}")?;
        }
        Ok(())
    }
}

mod id_token;
mod protocol;
mod transport;

pub use id_token::IdTokenError;
pub use protocol::{
    CallbackError, DiscoveryError, DiscoveryErrorKind, Document, KeyError, ParseError, ScopeError,
    ScopeErrorKind,
};
pub use transport::{ErrorSource, StoreError, StoreErrorKind, TransportError, TransportErrorKind};

macro_rules! from_leaf {
    ($($leaf:ident => $variant:ident),*) => {$(
        impl From<$leaf> for Error {
            fn from(e: $leaf) -> Self { Self::$variant(e) }
        }
    )*};
}
from_leaf!(OAuthError => OAuth, DiscoveryError => Discovery, ParseError => Parse,
    CallbackError => Callback, ScopeError => Scope, KeyError => Key, IdTokenError => IdToken,
    TransportError => Transport, StoreError => Store);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_never_quotes_values() {
        let e = serde_json::from_str::<u64>("\"eyJsecret-token\"").unwrap_err();
        let p = ParseError::from_json(Document::TokenResponse, &e);
        assert!(!p.to_string().contains("eyJsecret"), "{p}");
        assert!(p.to_string().contains("TokenResponse"));
    }

    #[test]
    fn oauth_error_display() {
        let e = OAuthError {
            status: Some(400),
            error: "invalid_client".into(),
            error_description: Some("bad aud".into()),
            error_uri: None,
        };
        assert_eq!(
            e.to_string(),
            "OAuth error `invalid_client`: bad aud (HTTP 400)"
        );
    }
}
