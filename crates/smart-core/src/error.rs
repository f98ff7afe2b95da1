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
    /// An OpenID Connect `id_token` failed verification (signature or claims; OIDC-01,
    /// OIDC-02, OIDC-04). See [`crate::id_token::IdTokenVerifier`].
    IdToken(IdTokenError),
    /// The token endpoint issued a token of a type this library does not use (only `Bearer`,
    /// compared case-insensitively, is supported; RFC 6749 §7.1). The token is discarded.
    UnsupportedTokenType {
        /// The `token_type` received (control characters removed).
        token_type: String,
    },
    /// The entropy source failed.
    Entropy,
    /// The access token is expired or was rejected, and there is no refresh token: the app
    /// must launch again (case B19). No request was made.
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        }
    }
}

impl std::error::Error for Error {}

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

/// Why discovery failed (SMART App Launch §"Discovery", spec digest §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryError {
    /// The URL that was fetched.
    pub url: String,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// What was wrong.
    pub kind: DiscoveryErrorKind,
}

/// The reason inside a [`DiscoveryError`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryErrorKind {
    /// The server answered with a non-2xx status.
    Status,
    /// The body was not JSON (e.g. an HTML login page).
    NotJson,
    /// The JSON did not have the required shape; the message names the field.
    Invalid(String),
    /// A required field is absent.
    MissingField(&'static str),
    /// `code_challenge_methods_supported` is present but lacks `S256` (never downgrade to
    /// `plain`).
    PkceS256Unsupported,
    /// Neither the well-known document nor the CapabilityStatement fallback was usable.
    NoUsableSource,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "discovery failed for {}", self.url)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        match &self.kind {
            DiscoveryErrorKind::Status => f.write_str(": unexpected HTTP status"),
            DiscoveryErrorKind::NotJson => f.write_str(": response is not JSON"),
            DiscoveryErrorKind::Invalid(m) => write!(f, ": invalid document: {m}"),
            DiscoveryErrorKind::MissingField(n) => write!(f, ": missing required field `{n}`"),
            DiscoveryErrorKind::PkceS256Unsupported => {
                f.write_str(": server does not support PKCE S256 (refusing to downgrade)")
            }
            DiscoveryErrorKind::NoUsableSource => {
                f.write_str(": neither .well-known/smart-configuration nor metadata was usable")
            }
        }
    }
}

/// Which document failed to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Document {
    /// `.well-known/smart-configuration`.
    SmartConfiguration,
    /// A FHIR CapabilityStatement (`[base]/metadata`).
    CapabilityStatement,
    /// A token-endpoint success response.
    TokenResponse,
    /// A token-endpoint error response.
    OAuthError,
    /// An `id_token` (JWT) or its claims.
    IdToken,
    /// A JSON Web Key or key set.
    Jwk,
    /// A PEM or DER private key.
    PrivateKey,
    /// An authorization redirect (callback) URL.
    CallbackUrl,
    /// An EHR launch URL (`iss`, `launch`).
    LaunchUrl,
    /// Launch context members of a token response.
    LaunchContext,
    /// A stored token set.
    StoredToken,
    /// A token-introspection response (RFC 7662 §2.2).
    Introspection,
}

/// A parse failure: the document kind and a message that never quotes the input's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Which document.
    pub document: Document,
    /// What was wrong (field names and positions only).
    pub message: String,
}

impl ParseError {
    /// A parse error for `document`.
    pub fn new(document: Document, message: impl Into<String>) -> Self {
        Self {
            document,
            message: message.into(),
        }
    }

    /// Build from a `serde_json` error without quoting any value from the input: serde's own
    /// messages may echo a string value (which could be a token), so only the error category
    /// and position are kept.
    pub fn from_json(document: Document, e: &serde_json::Error) -> Self {
        let what = match e.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "invalid JSON syntax",
            serde_json::error::Category::Data => "unexpected JSON shape",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        Self::new(
            document,
            format!("{what} at line {} column {}", e.line(), e.column()),
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not parse {:?}: {}", self.document, self.message)
    }
}

/// The authorization redirect failed validation (RFC 6749 §4.1.2, §10.12; RFC 9207).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackError {
    /// The redirect has no `state` parameter.
    MissingState,
    /// `state` does not match the pending authorization (possible CSRF).
    StateMismatch,
    /// No pending authorization matches (unknown or already used).
    UnknownState,
    /// The redirect has neither `code` nor `error`.
    MissingCode,
    /// The server redirected with an `error` (e.g. `access_denied`).
    Authorization(OAuthError),
    /// RFC 9207 `iss` differs from the expected issuer (possible mix-up attack).
    IssuerMismatch {
        /// The issuer expected from discovery (or the FHIR base).
        expected: String,
        /// The `iss` the redirect carried.
        received: String,
    },
    /// The redirect URL does not match the `redirect_uri` the request used.
    RedirectUriMismatch,
    /// The server promised RFC 9207 `iss` in authorization responses
    /// (`authorization_response_iss_parameter_supported`), but the redirect has none.
    MissingIssuer,
    /// An EHR launch URL lacks `iss`.
    MissingIss,
    /// An EHR launch URL lacks `launch`.
    MissingLaunch,
    /// `iss` is not on the caller's allow-list.
    IssNotAllowed(String),
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingState => f.write_str("callback has no `state` parameter"),
            Self::StateMismatch => {
                f.write_str("callback `state` does not match the pending authorization")
            }
            Self::UnknownState => {
                f.write_str("no pending authorization for this `state` (unknown or already used)")
            }
            Self::MissingCode => f.write_str("callback has neither `code` nor `error`"),
            Self::Authorization(e) => write!(f, "authorization failed: {e}"),
            Self::IssuerMismatch { expected, received } => {
                write!(
                    f,
                    "callback `iss` {received} does not match the expected issuer {expected}"
                )
            }
            Self::RedirectUriMismatch => {
                f.write_str("callback URL does not match the registered redirect_uri")
            }
            Self::MissingIssuer => f.write_str(
                "callback has no RFC 9207 `iss` although the server advertises it (possible mix-up)",
            ),
            Self::MissingIss => f.write_str("launch URL has no `iss` parameter"),
            Self::MissingLaunch => f.write_str("launch URL has no `launch` parameter"),
            Self::IssNotAllowed(iss) => write!(f, "`iss` {iss} is not on the allow-list"),
        }
    }
}

/// A malformed scope string (spec digest §6, SCOPE-01..SCOPE-03, CTX-04).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeError {
    /// The offending scope token.
    pub scope: String,
    /// Byte offset inside `scope` where the problem starts.
    pub position: usize,
    /// What kind of problem (for matching; the message says it in words).
    pub kind: ScopeErrorKind,
    /// What was expected.
    pub message: String,
}

/// The kind of a [`ScopeError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeErrorKind {
    /// An empty token.
    Empty,
    /// Whitespace inside one token (a list must be split first).
    Whitespace,
    /// A character outside RFC 6749 §3.3 `scope-token`.
    InvalidCharacter,
    /// Not a FHIR resource type or `*`.
    InvalidResourceType,
    /// No `.` and permissions after the resource type, or nothing after the `.`.
    MissingPermissions,
    /// A letter outside `cruds` (SCOPE-02).
    UnknownPermission,
    /// A permission letter appears twice.
    RepeatedPermission,
    /// Permission letters not an in-order subset of `cruds` (`.sr`; case B25).
    OutOfOrder,
    /// A malformed granular `?name=value` parameter (SCOPE-03), or parameters on a v1 scope.
    InvalidParameter,
    /// A malformed `launch/<type>[?role=<uri>]` scope (SCOPE-07, CTX-04).
    InvalidLaunch,
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid scope `{}` at byte {}: {}",
            self.scope, self.position, self.message
        )
    }
}

/// A private key could not be loaded or used. The message never contains key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    /// What went wrong, e.g. "unsupported PEM label `CERTIFICATE`".
    pub message: String,
}

impl KeyError {
    /// A key error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key error: {}", self.message)
    }
}

/// Why an OpenID Connect `id_token` was rejected (OIDC Core 1.0 §3.1.3.7, spec digest §7;
/// SMART OIDC-01, OIDC-02, OIDC-04). Produced by [`crate::id_token::IdTokenVerifier`].
///
/// Never carries the token, its signature or a key: only claim *names*, the issuer and
/// `client_id` strings, `kid`s and `alg` names (control characters removed, truncated), and
/// times in seconds since the epoch. A structurally malformed token (not three base64url
/// segments, header or payload not a JSON object) is [`Error::Parse`] with
/// [`Document::IdToken`] instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenError {
    /// There is no `id_token` to verify (the token response had none: was `openid` requested
    /// and granted?).
    Missing,
    /// The OpenID configuration (`{issuer}/.well-known/openid-configuration`) or the JWKS
    /// could not be used (OIDC-02).
    Discovery {
        /// The URL that was fetched (or would have been).
        url: String,
        /// The HTTP status, when a response arrived.
        status: Option<u16>,
        /// What was wrong (member names, never response bytes).
        reason: String,
    },
    /// The `issuer` of the OpenID configuration differs from the expected issuer (OpenID
    /// Connect Discovery 1.0 §4.3): the document may belong to another server.
    ConfigurationIssuerMismatch {
        /// The issuer the verifier expected.
        expected: String,
        /// The configuration's `issuer`, `None` when absent.
        received: Option<String>,
    },
    /// The JOSE header `alg` is not one of `RS256`, `RS384`, `ES256`, `ES384` (e.g. `none`
    /// or the symmetric `HS256`, which a client must never accept for an `id_token`).
    UnsupportedAlg(String),
    /// No key in the JWKS matches the token (its `kid`, or any key usable with its `alg` when
    /// it has no `kid`), even after fetching the JWKS a second time (case B06).
    NoMatchingKey {
        /// The token's `kid`, if it has one.
        kid: Option<String>,
    },
    /// The token has no `kid` and the JWKS holds several keys usable with its `alg`
    /// (OIDC Core §10.1: a `kid` is then required).
    AmbiguousKey {
        /// How many keys would fit.
        candidates: usize,
    },
    /// The key the token names cannot verify it: its `kty`, `crv`, `alg`, `use` or `key_ops`
    /// does not fit the header `alg`, or the key is malformed or too small.
    KeyMismatch {
        /// The token's `kid`, if it has one.
        kid: Option<String>,
        /// The header `alg`.
        alg: String,
        /// Why the key does not fit.
        reason: String,
    },
    /// The signature does not verify with the selected key (tampered token or wrong key).
    BadSignature,
    /// `iss` differs from the expected issuer (OIDC Core §3.1.3.7 step 2). Note that the
    /// expected issuer is the OIDC issuer from discovery, not the FHIR base (case B06).
    IssuerMismatch {
        /// The issuer the verifier expected.
        expected: String,
        /// The token's `iss`.
        received: String,
    },
    /// `aud` does not contain the `client_id` (step 3), or is neither a string nor an array
    /// of strings.
    AudienceMismatch {
        /// The client's `client_id`.
        client_id: String,
    },
    /// `azp` is absent while `aud` lists several audiences, or differs from the `client_id`
    /// (steps 4 and 5).
    AuthorizedPartyMismatch {
        /// The client's `client_id`.
        client_id: String,
        /// The token's `azp`, `None` when absent.
        received: Option<String>,
    },
    /// A claim OIDC Core §2 requires (`iss`, `sub`, `aud`, `exp`, `iat`), or the `nonce` the
    /// caller expects, is absent.
    MissingClaim(&'static str),
    /// `exp` is not after `now` minus the allowed clock skew (step 9).
    Expired {
        /// The token's `exp`, seconds since the epoch.
        exp: u64,
        /// The verifier's `now`, seconds since the epoch.
        now: u64,
    },
    /// `iat` is later than `now` plus the allowed clock skew (step 10).
    IssuedInFuture {
        /// The token's `iat`, seconds since the epoch.
        iat: u64,
        /// The verifier's `now`, seconds since the epoch.
        now: u64,
    },
    /// `nbf` is later than `now` plus the allowed clock skew (RFC 7519 §4.1.5).
    NotYetValid {
        /// The token's `nbf`, seconds since the epoch.
        nbf: u64,
        /// The verifier's `now`, seconds since the epoch.
        now: u64,
    },
    /// `nonce` differs from the one the authorization request sent (step 11).
    NonceMismatch,
}

impl fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("id_token verification failed: ")?;
        match self {
            Self::Missing => f.write_str("the token response has no id_token"),
            Self::Discovery {
                url,
                status,
                reason,
            } => {
                write!(f, "{url}")?;
                if let Some(s) = status {
                    write!(f, " (HTTP {s})")?;
                }
                write!(f, ": {reason}")
            }
            Self::ConfigurationIssuerMismatch { expected, received } => write!(
                f,
                "the OpenID configuration's issuer {} is not the expected issuer {expected}",
                received.as_deref().unwrap_or("(absent)")
            ),
            Self::UnsupportedAlg(alg) => write!(
                f,
                "unsupported alg `{alg}` (RS256, RS384, ES256 and ES384 are accepted)"
            ),
            Self::NoMatchingKey { kid: Some(kid) } => {
                write!(f, "no key with kid `{kid}` in the JWKS (fetched twice)")
            }
            Self::NoMatchingKey { kid: None } => {
                f.write_str("no key in the JWKS fits the token's alg (fetched twice)")
            }
            Self::AmbiguousKey { candidates } => write!(
                f,
                "the token has no kid and {candidates} keys in the JWKS fit its alg"
            ),
            Self::KeyMismatch { kid, alg, reason } => write!(
                f,
                "the JWKS key{} cannot verify {alg}: {reason}",
                kid.as_deref()
                    .map(|k| format!(" `{k}`"))
                    .unwrap_or_default()
            ),
            Self::BadSignature => f.write_str("the signature is invalid"),
            Self::IssuerMismatch { expected, received } => {
                write!(f, "iss {received} is not the expected issuer {expected}")
            }
            Self::AudienceMismatch { client_id } => {
                write!(f, "aud does not contain the client_id {client_id}")
            }
            Self::AuthorizedPartyMismatch {
                client_id,
                received,
            } => write!(
                f,
                "azp {} is not the client_id {client_id}",
                received
                    .as_deref()
                    .unwrap_or("(absent, with several audiences)")
            ),
            Self::MissingClaim(c) => write!(f, "the `{c}` claim is missing"),
            Self::Expired { exp, now } => write!(f, "expired at {exp} (now {now})"),
            Self::IssuedInFuture { iat, now } => {
                write!(f, "issued in the future at {iat} (now {now})")
            }
            Self::NotYetValid { nbf, now } => write!(f, "not valid before {nbf} (now {now})"),
            Self::NonceMismatch => f.write_str("nonce does not match the authorization request"),
        }
    }
}

macro_rules! from_leaf {
    ($($leaf:ident => $variant:ident),*) => {$(
        impl From<$leaf> for Error {
            fn from(e: $leaf) -> Self { Self::$variant(e) }
        }
    )*};
}
from_leaf!(OAuthError => OAuth, DiscoveryError => Discovery, ParseError => Parse,
    CallbackError => Callback, ScopeError => Scope, KeyError => Key, IdTokenError => IdToken);

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
