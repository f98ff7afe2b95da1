//! The `.well-known/smart-configuration` document as typed data: [`SmartConfiguration`],
//! [`Capability`], and the parse result [`Discovered`] with its [`DiscoveryWarning`]s.

use crate::error::DiscoveryErrorKind;
use crate::types::Endpoint;
use serde_json::{Map, Value};
use url::Url;

/// The `oauth-uris` extension URL on `CapabilityStatement.rest.security` (legacy discovery).
pub const OAUTH_URIS_EXTENSION: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// The STU1 `capabilities` extension URL on `CapabilityStatement.rest.security` (legacy).
pub const CAPABILITIES_EXTENSION: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities";

/// A SMART capability string (SMART App Launch §"Conformance", "Capabilities"). The set is open:
/// unknown strings, full-URI extension capabilities and the pre-STU1 names
/// `context-passthrough-banner` / `context-passthrough-style` are kept verbatim in
/// [`Capability::Other`].
///
/// Serialized as its string form ([`Capability::as_str`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// `launch-ehr`: EHR launch mode.
    LaunchEhr,
    /// `launch-standalone`: standalone launch mode.
    LaunchStandalone,
    /// `authorize-post`: POST-based authorization (2.0.0).
    AuthorizePost,
    /// `client-public`: public clients (no client authentication).
    ClientPublic,
    /// `client-confidential-symmetric`: client secret with HTTP Basic.
    ClientConfidentialSymmetric,
    /// `client-confidential-asymmetric`: `private_key_jwt` (2.0.0).
    ClientConfidentialAsymmetric,
    /// `sso-openid-connect`: SMART's OpenID Connect profile (`id_token` with `fhirUser`).
    SsoOpenidConnect,
    /// `context-banner`: `need_patient_banner` (EHR launch).
    ContextBanner,
    /// `context-style`: `smart_style_url` (EHR launch; experimental).
    ContextStyle,
    /// `context-ehr-patient`: `launch/patient` yields `patient` in an EHR launch.
    ContextEhrPatient,
    /// `context-ehr-encounter`: `launch/encounter` yields `encounter` in an EHR launch.
    ContextEhrEncounter,
    /// `context-standalone-patient`: `launch/patient` yields `patient` in a standalone launch.
    ContextStandalonePatient,
    /// `context-standalone-encounter`: `launch/encounter` yields `encounter` (standalone).
    ContextStandaloneEncounter,
    /// `permission-offline`: `offline_access` refresh tokens.
    PermissionOffline,
    /// `permission-online`: `online_access` refresh tokens (experimental in 2.2.0).
    PermissionOnline,
    /// `permission-patient`: `patient/` scopes.
    PermissionPatient,
    /// `permission-user`: `user/` scopes.
    PermissionUser,
    /// `permission-v1`: SMART v1 scope syntax.
    PermissionV1,
    /// `permission-v2`: SMART v2 scope syntax.
    PermissionV2,
    /// `smart-app-state`: App State API (2.1.0, experimental).
    SmartAppState,
    /// Any other string, kept verbatim (unknown, extension URI, or legacy name).
    Other(String),
}

const CAPABILITY_NAMES: &[(&str, Capability)] = &[
    ("launch-ehr", Capability::LaunchEhr),
    ("launch-standalone", Capability::LaunchStandalone),
    ("authorize-post", Capability::AuthorizePost),
    ("client-public", Capability::ClientPublic),
    (
        "client-confidential-symmetric",
        Capability::ClientConfidentialSymmetric,
    ),
    (
        "client-confidential-asymmetric",
        Capability::ClientConfidentialAsymmetric,
    ),
    ("sso-openid-connect", Capability::SsoOpenidConnect),
    ("context-banner", Capability::ContextBanner),
    ("context-style", Capability::ContextStyle),
    ("context-ehr-patient", Capability::ContextEhrPatient),
    ("context-ehr-encounter", Capability::ContextEhrEncounter),
    (
        "context-standalone-patient",
        Capability::ContextStandalonePatient,
    ),
    (
        "context-standalone-encounter",
        Capability::ContextStandaloneEncounter,
    ),
    ("permission-offline", Capability::PermissionOffline),
    ("permission-online", Capability::PermissionOnline),
    ("permission-patient", Capability::PermissionPatient),
    ("permission-user", Capability::PermissionUser),
    ("permission-v1", Capability::PermissionV1),
    ("permission-v2", Capability::PermissionV2),
    ("smart-app-state", Capability::SmartAppState),
];

/// Pre-STU1 capability names (renamed in 2018) and the name that replaced them.
pub(super) const LEGACY_CAPABILITIES: &[(&str, &str)] = &[
    ("context-passthrough-banner", "context-banner"),
    ("context-passthrough-style", "context-style"),
];

impl Capability {
    /// The capability string as it appears in discovery (`"launch-ehr"`, …, or the
    /// [`Other`](Capability::Other) text verbatim).
    pub fn as_str(&self) -> &str {
        if let Self::Other(s) = self {
            return s;
        }
        CAPABILITY_NAMES
            .iter()
            .find(|(_, c)| c == self)
            .map_or("", |(n, _)| n)
    }

    /// Whether this is a capability defined by SMART App Launch 2.x (not [`Other`](Capability::Other)).
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

impl From<&str> for Capability {
    /// Exact, case-sensitive match against the spec's names; anything else is
    /// [`Capability::Other`].
    fn from(s: &str) -> Self {
        // A `match` compiles to a length-then-bytes dispatch: no scan of the name table.
        match s {
            "launch-ehr" => Self::LaunchEhr,
            "launch-standalone" => Self::LaunchStandalone,
            "authorize-post" => Self::AuthorizePost,
            "client-public" => Self::ClientPublic,
            "client-confidential-symmetric" => Self::ClientConfidentialSymmetric,
            "client-confidential-asymmetric" => Self::ClientConfidentialAsymmetric,
            "sso-openid-connect" => Self::SsoOpenidConnect,
            "context-banner" => Self::ContextBanner,
            "context-style" => Self::ContextStyle,
            "context-ehr-patient" => Self::ContextEhrPatient,
            "context-ehr-encounter" => Self::ContextEhrEncounter,
            "context-standalone-patient" => Self::ContextStandalonePatient,
            "context-standalone-encounter" => Self::ContextStandaloneEncounter,
            "permission-offline" => Self::PermissionOffline,
            "permission-online" => Self::PermissionOnline,
            "permission-patient" => Self::PermissionPatient,
            "permission-user" => Self::PermissionUser,
            "permission-v1" => Self::PermissionV1,
            "permission-v2" => Self::PermissionV2,
            "smart-app-state" => Self::SmartAppState,
            _ => Self::Other(s.to_owned()),
        }
    }
}

impl AsRef<str> for Capability {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Capability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::from(s.as_ref()))
    }
}

/// A FHIR `Identifier` as used by `user_access_brand_identifier` (2.2.0): an **object**, not a
/// string. `value` SHALL and `system` SHOULD be present; both are optional here.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Identifier {
    /// `Identifier.system`, a URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// `Identifier.value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An entry of `associated_endpoints` (2.2.0, experimental): another endpoint sharing this
/// server's authorization mechanism.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AssociatedEndpoint {
    /// The endpoint (absolute after resolution; advertised text kept).
    pub url: Endpoint,
    /// Capabilities of that endpoint, e.g. `smart-app-state`.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

/// The `.well-known/smart-configuration` document (STU 2.2 field set; SMART App Launch
/// §"Conformance", "Metadata").
///
/// Array fields that the document omits are empty vectors; whether a REQUIRED or RECOMMENDED
/// field was absent is recorded in [`Discovered::warnings`] (see [`Discovered::is_missing`]).
/// Relative endpoint URLs have already been resolved. Every endpoint is an [`Endpoint`]: the
/// parsed URL that requests go to, with the advertised text that string comparisons and the
/// `aud` of client assertions use (RFC 7523 §3). Unknown members are kept in
/// [`extra`](Self::extra). `Serialize`/`Deserialize` use the same member names as the
/// document (endpoints as their advertised text).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmartConfiguration {
    /// `issuer`: the OIDC issuer; CONDITIONAL (present with `sso-openid-connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `jwks_uri`: the server's JWKS; CONDITIONAL (required with `sso-openid-connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Endpoint>,
    /// `authorization_endpoint`: REQUIRED in 2.0/2.1, CONDITIONAL in 2.2 (required with
    /// `launch-ehr` or `launch-standalone`); absent on backend-services-only servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<Endpoint>,
    /// `token_endpoint`: REQUIRED — the one field without which discovery fails.
    pub token_endpoint: Endpoint,
    /// `token_endpoint_auth_methods_supported`: OPTIONAL, e.g. `private_key_jwt`,
    /// `client_secret_basic`.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `token_endpoint_auth_signing_alg_values_supported` (RFC 8414): e.g. `RS384`, `ES384`.
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// `grant_types_supported`: REQUIRED; `authorization_code`, `client_credentials`, others.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// `registration_endpoint`: OPTIONAL (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Endpoint>,
    /// `smart_app_state_endpoint`: 2.1 CONDITIONAL, 2.2 OPTIONAL and deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_app_state_endpoint: Option<Endpoint>,
    /// `associated_endpoints`: 2.2 OPTIONAL, experimental.
    #[serde(default)]
    pub associated_endpoints: Vec<AssociatedEndpoint>,
    /// `user_access_brand_bundle`: 2.2 RECOMMENDED, URL of a Brand Bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_bundle: Option<Endpoint>,
    /// `user_access_brand_identifier`: 2.2 RECOMMENDED, a FHIR Identifier **object**.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_identifier: Option<Identifier>,
    /// `scopes_supported`: RECOMMENDED; not exhaustive (the server may support more).
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// `response_types_supported`: RECOMMENDED, e.g. `code`.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// `management_endpoint`: RECOMMENDED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_endpoint: Option<Endpoint>,
    /// `introspection_endpoint`: RECOMMENDED (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<Endpoint>,
    /// `revocation_endpoint`: RECOMMENDED (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Endpoint>,
    /// `capabilities`: REQUIRED by the spec; an open set (unknown strings and full URIs are
    /// kept).
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// `code_challenge_methods_supported`: REQUIRED (SHALL include `S256`, SHALL NOT include
    /// `plain`). Empty when absent (some servers omit it although they support PKCE).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Every member this type does not model, with its original JSON value.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SmartConfiguration {
    /// A configuration with only `token_endpoint` set (for tests and manual configuration).
    /// A [`Url`] converts into an [`Endpoint`] whose advertised text is its normalised form;
    /// pass an [`Endpoint::parse`]d value to keep the text exactly as the server advertises it.
    pub fn new(token_endpoint: impl Into<Endpoint>) -> Self {
        Self {
            issuer: None,
            jwks_uri: None,
            authorization_endpoint: None,
            token_endpoint: token_endpoint.into(),
            token_endpoint_auth_methods_supported: Vec::new(),
            token_endpoint_auth_signing_alg_values_supported: Vec::new(),
            grant_types_supported: Vec::new(),
            registration_endpoint: None,
            smart_app_state_endpoint: None,
            associated_endpoints: Vec::new(),
            user_access_brand_bundle: None,
            user_access_brand_identifier: None,
            scopes_supported: Vec::new(),
            response_types_supported: Vec::new(),
            management_endpoint: None,
            introspection_endpoint: None,
            revocation_endpoint: None,
            capabilities: Vec::new(),
            code_challenge_methods_supported: Vec::new(),
            extra: Map::new(),
        }
    }

    /// Whether `capabilities` lists `c` (exact match; legacy names are only
    /// [`Capability::Other`]).
    pub fn has_capability(&self, c: &Capability) -> bool {
        self.capabilities.contains(c)
    }

    /// Whether `code_challenge_methods_supported` lists `S256`. `false` when the list is
    /// absent — which is *not* a reason to skip PKCE: App Launch always sends S256.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    }

    /// Strict PKCE check for callers that want to refuse servers that advertise PKCE methods
    /// without `S256` (the IG requires servers to list it). An absent list passes: the server
    /// may still do PKCE.
    ///
    /// # Errors
    /// [`DiscoveryErrorKind::PkceS256Unsupported`] when the list is present and lacks `S256`.
    pub fn require_s256(&self) -> Result<(), DiscoveryErrorKind> {
        if self.code_challenge_methods_supported.is_empty() || self.supports_s256() {
            Ok(())
        } else {
            Err(DiscoveryErrorKind::PkceS256Unsupported)
        }
    }

    /// Whether `token_endpoint_auth_methods_supported` lists `private_key_jwt`: `None` when
    /// the list is absent or empty (nothing advertised either way).
    pub fn private_key_jwt_advertised(&self) -> Option<bool> {
        if self.token_endpoint_auth_methods_supported.is_empty() {
            None
        } else {
            Some(
                self.token_endpoint_auth_methods_supported
                    .iter()
                    .any(|m| m == "private_key_jwt"),
            )
        }
    }

    /// Lenient `private_key_jwt` support: `true` unless the server lists token-endpoint
    /// auth methods *and* `private_key_jwt` is not among them. Even then a backend client may
    /// still try, with a warning (some servers accept it without advertising it); see
    /// [`private_key_jwt_advertised`](Self::private_key_jwt_advertised).
    pub fn supports_private_key_jwt(&self) -> bool {
        self.private_key_jwt_advertised().unwrap_or(true)
    }

    /// Whether `grant_types_supported` lists `client_credentials` (Backend Services; there is no
    /// capability string for it).
    pub fn supports_client_credentials(&self) -> bool {
        self.grant_types_supported
            .iter()
            .any(|g| g == "client_credentials")
    }

    /// Whether `token_endpoint_auth_signing_alg_values_supported` lists `alg` (e.g. `ES384`).
    /// `None` when the list is absent or empty.
    pub fn signing_alg_advertised(&self, alg: &str) -> Option<bool> {
        if self
            .token_endpoint_auth_signing_alg_values_supported
            .is_empty()
        {
            None
        } else {
            Some(
                self.token_endpoint_auth_signing_alg_values_supported
                    .iter()
                    .any(|a| a == alg),
            )
        }
    }
}

/// Where a [`Discovered`] configuration came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// `{base}/.well-known/smart-configuration` (the 2.x mechanism).
    WellKnown,
    /// `{base}/metadata`, the deprecated `oauth-uris` extension (legacy fallback).
    CapabilityStatement,
}

/// What a [`DiscoveryWarning`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A REQUIRED field is absent but parsing continued (`capabilities`,
    /// `grant_types_supported`, `code_challenge_methods_supported`).
    MissingRequired,
    /// A RECOMMENDED field is absent.
    MissingRecommended,
    /// A relative endpoint URL was resolved against the FHIR base (SMART App Launch
    /// §"Conformance": endpoints SHALL be absolute; clients SHOULD resolve relative ones).
    RelativeUrlResolved,
    /// A pre-STU1 capability name (e.g. `context-passthrough-banner`).
    LegacyCapability,
    /// PKCE methods listed without `S256`, or with `plain` (the library still uses S256 only).
    Pkce,
    /// `token_endpoint_auth_methods_supported` lists methods but not `private_key_jwt`.
    AuthMethod,
    /// An endpoint is neither `https` nor loopback `http` (the IG requires TLS).
    Insecure,
    /// A member had the wrong JSON type or form: it was normalised (a single string read as
    /// a one-element list) or dropped (a non-string list item, an object where a string
    /// belongs). The message names the member.
    WrongType,
    /// An optional endpoint is not a valid URL reference; it was dropped.
    InvalidUrl,
    /// The body started with a UTF-8 byte-order mark, which was skipped (RFC 8259 §8.1).
    /// The warning's `field` is `"(body)"`.
    ByteOrderMark,
    /// Anything else worth knowing (e.g. an empty endpoint string).
    Other,
}

/// A non-fatal problem found while parsing a discovery document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryWarning {
    /// The document member concerned, e.g. `"capabilities"`.
    pub field: String,
    /// The category.
    pub kind: WarningKind,
    /// Human-readable detail (never contains secrets; discovery documents hold none).
    pub message: String,
}

impl std::fmt::Display for DiscoveryWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

/// A parsed discovery result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// The configuration.
    pub config: SmartConfiguration,
    /// Non-fatal problems, in document order.
    pub warnings: Vec<DiscoveryWarning>,
    /// Which document it came from.
    pub source: ConfigSource,
    /// The URL the document was fetched from.
    pub url: Url,
}

impl Discovered {
    /// Whether `field` (a REQUIRED or RECOMMENDED member) was absent from the document — e.g.
    /// `is_missing("capabilities")` distinguishes an absent list from an empty one.
    pub fn is_missing(&self, field: &str) -> bool {
        self.warnings.iter().any(|w| {
            w.field == field
                && matches!(
                    w.kind,
                    WarningKind::MissingRequired | WarningKind::MissingRecommended
                )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_name_maps_both_ways() {
        for (name, cap) in CAPABILITY_NAMES {
            assert_eq!(Capability::from(*name), *cap, "{name}");
            assert_eq!(cap.as_str(), *name);
        }
        assert_eq!(
            Capability::from("Launch-EHR"),
            Capability::Other("Launch-EHR".into())
        );
    }
}
