//! Errors about the protocol documents and values: discovery, parsing, the authorization
//! redirect, scopes and keys.

use std::fmt;

use super::OAuthError;

/// Why discovery failed (SMART App Launch §"Conformance", "Using .well-known").
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
    /// The server redirected with an `error` but **without `state`** (RFC 6749 §4.1.2.1 requires
    /// it): the reason is reported, but it is unverified — it cannot be tied to a pending
    /// authorization, so none is consumed and no token request is made.
    UnverifiedAuthorization(OAuthError),
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
            Self::UnverifiedAuthorization(e) => {
                write!(f, "the authorization server returned `{}`", e.error)?;
                if let Some(d) = &e.error_description {
                    write!(f, " ({d})")?;
                }
                f.write_str(" without `state` (unverified: not tied to a pending authorization)")
            }
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

/// A malformed scope string (SMART App Launch §"Scopes and Launch Context").
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
    /// A letter outside `cruds`.
    UnknownPermission,
    /// A permission letter appears twice.
    RepeatedPermission,
    /// Permission letters not an in-order subset of `cruds` (`.sr`).
    OutOfOrder,
    /// A malformed granular `?name=value` parameter, or parameters on a v1 scope.
    InvalidParameter,
    /// A malformed `launch/<type>[?role=<uri>]` scope.
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
