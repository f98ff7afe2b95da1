//! `id_token` verification errors.

use std::fmt;

/// Why an OpenID Connect `id_token` was rejected (OIDC Core 1.0 §3.1.3.7; SMART App Launch
/// §"Scopes and Launch Context", "Scopes for requesting identity data"). Produced by
/// [`crate::id_token::IdTokenVerifier`].
///
/// Never carries the token, its signature or a key: only claim *names*, the issuer and
/// `client_id` strings, `kid`s and `alg` names (control characters removed, truncated), and
/// times in seconds since the epoch. A structurally malformed token (not three base64url
/// segments, header or payload not a JSON object) is [`Error::Parse`](super::Error::Parse) with
/// [`Document::IdToken`](super::Document::IdToken) instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenError {
    /// There is no `id_token` to verify (the token response had none: was `openid` requested
    /// and granted?).
    Missing,
    /// The OpenID configuration (`{issuer}/.well-known/openid-configuration`) or the JWKS
    /// could not be used.
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
    /// it has no `kid`), even after fetching the JWKS a second time (a server may sign with a
    /// new key before its JWKS lists it).
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
    /// expected issuer is the OIDC issuer from discovery, not the FHIR base (on many EHRs the
    /// two differ).
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
