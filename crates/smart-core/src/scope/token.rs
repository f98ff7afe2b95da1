//! One scope token: [`Scope`], with [`OpaqueScope`] for the tokens kept verbatim and the URI
//! forms.

use std::fmt;

use super::parse::{self, ParseMode, ScopeWarning};
use super::{LaunchScope, ResourceScope};
use crate::error::Error;

/// A scope the library does not interpret: extension scopes (`__profilePhoto.manage`, full
/// URIs such as `https://ehr.example.org/scopes/x`), the URI forms of SMART scopes, and — in
/// lenient mode only — malformed SMART-looking tokens. Kept verbatim, never dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpaqueScope(String);

impl OpaqueScope {
    /// The scope token exactly as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn new(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for OpaqueScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One SMART scope token (SMART App Launch §"Scopes and Launch Context").
///
/// Parse with [`str::parse`] (strict) or [`Scope::parse_with`] (strict or lenient). `Display`
/// writes the canonical form; `Scope::from_str(&s.to_string()) == Ok(s)` for every value
/// obtained strictly or from a constructor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// A FHIR resource scope (`patient/Observation.rs`, `user/*.read`, granular forms).
    Resource(ResourceScope),
    /// A launch-context scope (`launch`, `launch/patient`, `launch/list?role=…`).
    Launch(LaunchScope),
    /// `openid`: OpenID Connect authentication, an `id_token` is issued.
    OpenId,
    /// `fhirUser`: the `fhirUser` claim in the `id_token` (needs `openid`).
    FhirUser,
    /// `profile`: the standard OIDC scope (legacy in SMART).
    Profile,
    /// `offline_access`: a refresh token usable while the user is offline.
    OfflineAccess,
    /// `online_access`: a refresh token usable while the user stays online (experimental).
    OnlineAccess,
    /// Any other token, kept verbatim.
    Other(OpaqueScope),
}

/// Prefix of the URI form of SMART scopes (SMART App Launch §"Scopes and Launch Context",
/// "Appendix: URI representation of scopes"): `http://smarthealthit.org/fhir/scopes/` followed by
/// the scope, e.g. `…/scopes/patient/Observation.rs`.
pub const SMART_SCOPE_URI_PREFIX: &str = "http://smarthealthit.org/fhir/scopes/";

/// Prefix of the URI form of OpenID Connect scopes (same appendix), e.g. `…#openid`.
pub const OIDC_SCOPE_URI_PREFIX: &str = "http://openid.net/specs/openid-connect-core-1_0#";

impl Scope {
    /// The URI form of this scope: `openid` and `profile` under
    /// [`OIDC_SCOPE_URI_PREFIX`], every other SMART scope under [`SMART_SCOPE_URI_PREFIX`];
    /// opaque scopes are returned unchanged (they are already URIs or vendor strings).
    pub fn to_uri(&self) -> String {
        match self {
            Self::OpenId | Self::Profile => format!("{OIDC_SCOPE_URI_PREFIX}{self}"),
            Self::Other(o) => o.as_str().to_owned(),
            other => format!("{SMART_SCOPE_URI_PREFIX}{other}"),
        }
    }

    /// Parse a scope given in URI form or in the short form: the prefix, if any, is
    /// removed and the rest parsed strictly.
    ///
    /// # Errors
    /// [`Error::Scope`] as [`FromStr`](std::str::FromStr) for the scope after the prefix.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        match uri
            .strip_prefix(SMART_SCOPE_URI_PREFIX)
            .or_else(|| uri.strip_prefix(OIDC_SCOPE_URI_PREFIX))
        {
            Some(short) if !short.is_empty() => short.parse(),
            _ => uri.parse(),
        }
    }

    /// Parse one scope token.
    ///
    /// In [`ParseMode::Strict`] malformed SMART scopes are errors; in [`ParseMode::Lenient`]
    /// out-of-order or repeated permission letters are accepted (normalised, with a warning)
    /// and any other malformed SMART-looking token becomes [`Scope::Other`] with a warning.
    /// Warnings are appended to `warnings`.
    ///
    /// # Errors
    /// [`Error::Scope`] naming the byte position: in both modes for an empty token or one
    /// containing whitespace; in strict mode also for a malformed scope (bad permission
    /// letters, order, type name, parameters, launch form) or a byte outside RFC 6749
    /// `scope-token` (`%x21 / %x23-5B / %x5D-7E`).
    pub fn parse_with(
        input: &str,
        mode: ParseMode,
        warnings: &mut Vec<ScopeWarning>,
    ) -> Result<Scope, Error> {
        parse::parse_token(input, mode, warnings)
    }

    /// Parse leniently, returning the scope and any warning.
    ///
    /// # Errors
    /// [`Error::Scope`] only for an empty token or one containing whitespace.
    pub fn parse_lenient(input: &str) -> Result<(Scope, Vec<ScopeWarning>), Error> {
        let mut w = Vec::new();
        let s = parse::parse_token(input, ParseMode::Lenient, &mut w)?;
        Ok((s, w))
    }

    /// The resource scope inside, if this is one.
    pub fn as_resource(&self) -> Option<&ResourceScope> {
        match self {
            Self::Resource(r) => Some(r),
            _ => None,
        }
    }

    /// The v2 form: v1 resource scopes are rewritten (`.read` ⇒ `.rs`, …); everything else is
    /// returned unchanged.
    pub fn to_v2(&self) -> Scope {
        match self {
            Self::Resource(r) => Self::Resource(r.to_v2()),
            other => other.clone(),
        }
    }

    /// The v1 form, or `None` for a resource scope with no v1 equivalent (see
    /// [`ResourceScope::to_v1`]). Non-resource scopes are returned unchanged.
    pub fn to_v1(&self) -> Option<Scope> {
        match self {
            Self::Resource(r) => r.to_v1().map(Self::Resource),
            other => Some(other.clone()),
        }
    }

    /// Whether two scopes mean the same thing: equal after converting both to v2.
    pub fn is_equivalent(&self, other: &Scope) -> bool {
        match (self, other) {
            (Self::Resource(a), Self::Resource(b)) => a.to_v2() == b.to_v2(),
            _ => self == other,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resource(r) => r.fmt(f),
            Self::Launch(l) => l.fmt(f),
            Self::OpenId => f.write_str("openid"),
            Self::FhirUser => f.write_str("fhirUser"),
            Self::Profile => f.write_str("profile"),
            Self::OfflineAccess => f.write_str("offline_access"),
            Self::OnlineAccess => f.write_str("online_access"),
            Self::Other(o) => o.fmt(f),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;

    /// Strict parse of one token (see [`Scope::parse_with`]).
    fn from_str(s: &str) -> Result<Self, Error> {
        parse::parse_token(s, ParseMode::Strict, &mut Vec::new())
    }
}

impl From<ResourceScope> for Scope {
    fn from(r: ResourceScope) -> Self {
        Self::Resource(r)
    }
}

impl From<LaunchScope> for Scope {
    fn from(l: LaunchScope) -> Self {
        Self::Launch(l)
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    /// Lenient parse of one token (warnings are dropped), so whatever was serialized comes
    /// back.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse_lenient(&s)
            .map(|(s, _)| s)
            .map_err(serde::de::Error::custom)
    }
}
