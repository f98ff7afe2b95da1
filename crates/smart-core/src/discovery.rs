//! Discovery: `.well-known/smart-configuration` (SMART App Launch §"Conformance", spec digest
//! §2), with the deprecated CapabilityStatement `oauth-uris` extension as an optional fallback.
//!
//! * [`parse_smart_configuration`] and [`parse_capability_statement`] are pure parsers.
//! * [`Discovery`] is the sans-IO [`Flow`] that fetches
//!   `{base}/.well-known/smart-configuration` and, only if that answer is unusable (non-2xx or
//!   not JSON), `{base}/metadata` — one request at a time, never both at once.
//!
//! Parsing is lenient where the spec and real servers disagree (case ids refer to the team's
//! acceptance cases): missing `capabilities` (B04), missing `code_challenge_methods_supported`
//! (B03), unknown and legacy capability strings and relative endpoint URLs are accepted and
//! reported as [`DiscoveryWarning`]s. Only `token_endpoint` is a hard requirement.
//!
//! **PKCE decision (B03, DISC-06).** Discovery never fails because of
//! `code_challenge_methods_supported`: a backend-services client has no use for PKCE, and an
//! App Launch client always uses `S256` and never `plain`, whatever the document lists. A
//! missing list, or a list without `S256` (or with `plain`), produces a warning. Callers that
//! want to refuse such servers use [`SmartConfiguration::require_s256`], which returns
//! [`DiscoveryErrorKind::PkceS256Unsupported`] when the list is present and lacks `S256`.

use crate::error::{DiscoveryError, DiscoveryErrorKind, Error};
use crate::flow::{Action, Flow, HttpRequest, HttpResponse};
use crate::time::UnixTime;
use crate::types::FhirBaseUrl;
use serde_json::{Map, Value};
use url::Url;

/// The `oauth-uris` extension URL on `CapabilityStatement.rest.security` (legacy discovery).
pub const OAUTH_URIS_EXTENSION: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// The STU1 `capabilities` extension URL on `CapabilityStatement.rest.security` (legacy).
pub const CAPABILITIES_EXTENSION: &str =
    "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities";

/// A SMART capability string (spec digest §2.3). The set is open: unknown strings, full-URI
/// extension capabilities and the pre-STU1 names `context-passthrough-banner` /
/// `context-passthrough-style` are kept verbatim in [`Capability::Other`].
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
const LEGACY_CAPABILITIES: &[(&str, &str)] = &[
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
        CAPABILITY_NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map_or_else(|| Self::Other(s.to_owned()), |(_, c)| c.clone())
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
    /// The endpoint URL (absolute after resolution).
    pub url: Url,
    /// Capabilities of that endpoint, e.g. `smart-app-state`.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

/// The `.well-known/smart-configuration` document (STU 2.2 field set, spec digest §2.2).
///
/// Array fields that the document omits are empty vectors; whether a REQUIRED or RECOMMENDED
/// field was absent is recorded in [`Discovered::warnings`] (see [`Discovered::is_missing`]).
/// Relative endpoint URLs have already been resolved. Unknown members are kept in
/// [`extra`](Self::extra). `Serialize`/`Deserialize` use the same member names as the document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmartConfiguration {
    /// `issuer`: the OIDC issuer; CONDITIONAL (present with `sso-openid-connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `jwks_uri`: the server's JWKS; CONDITIONAL (required with `sso-openid-connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Url>,
    /// `authorization_endpoint`: REQUIRED in 2.0/2.1, CONDITIONAL in 2.2 (required with
    /// `launch-ehr` or `launch-standalone`); absent on backend-services-only servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<Url>,
    /// `token_endpoint`: REQUIRED — the one field without which discovery fails.
    pub token_endpoint: Url,
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
    pub registration_endpoint: Option<Url>,
    /// `smart_app_state_endpoint`: 2.1 CONDITIONAL, 2.2 OPTIONAL and deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_app_state_endpoint: Option<Url>,
    /// `associated_endpoints`: 2.2 OPTIONAL, experimental.
    #[serde(default)]
    pub associated_endpoints: Vec<AssociatedEndpoint>,
    /// `user_access_brand_bundle`: 2.2 RECOMMENDED, URL of a Brand Bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_bundle: Option<Url>,
    /// `user_access_brand_identifier`: 2.2 RECOMMENDED, a FHIR Identifier **object**.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_access_brand_identifier: Option<Identifier>,
    /// `scopes_supported`: RECOMMENDED; not exhaustive (DISC-04).
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// `response_types_supported`: RECOMMENDED, e.g. `code`.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// `management_endpoint`: RECOMMENDED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_endpoint: Option<Url>,
    /// `introspection_endpoint`: RECOMMENDED (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<Url>,
    /// `revocation_endpoint`: RECOMMENDED (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    /// `capabilities`: REQUIRED by the spec; an open set (DISC-07).
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// `code_challenge_methods_supported`: REQUIRED (SHALL include `S256`, SHALL NOT include
    /// `plain`). Empty when absent (B03).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Every member this type does not model, with its original JSON value.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SmartConfiguration {
    /// A configuration with only `token_endpoint` set (for tests and manual configuration).
    pub fn new(token_endpoint: Url) -> Self {
        Self {
            issuer: None,
            jwks_uri: None,
            authorization_endpoint: None,
            token_endpoint,
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
    /// absent — which is *not* a reason to skip PKCE (B03): App Launch always sends S256.
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    }

    /// Strict PKCE check for callers that want to refuse servers that advertise PKCE methods
    /// without `S256` (DISC-06). An absent list passes (B03: the server may still do PKCE).
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

    /// Lenient `private_key_jwt` support (B04): `true` unless the server lists token-endpoint
    /// auth methods *and* `private_key_jwt` is not among them. Even then a backend client may
    /// still try (B04 says "warn but still try"); see [`private_key_jwt_advertised`](Self::private_key_jwt_advertised).
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
    /// `{base}/metadata`, the deprecated `oauth-uris` extension (legacy fallback, DISC-09).
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
    /// A relative endpoint URL was resolved against the FHIR base (DISC-03).
    RelativeUrlResolved,
    /// A pre-STU1 capability name (e.g. `context-passthrough-banner`).
    LegacyCapability,
    /// PKCE methods listed without `S256`, or with `plain` (the library still uses S256 only).
    Pkce,
    /// `token_endpoint_auth_methods_supported` lists methods but not `private_key_jwt`.
    AuthMethod,
    /// An endpoint is neither `https` nor loopback `http` (SEC-01).
    Insecure,
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
    /// `is_missing("capabilities")` distinguishes an absent list from an empty one (B04).
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

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

struct Ctx<'a> {
    base: &'a FhirBaseUrl,
    url: &'a Url,
    warnings: Vec<DiscoveryWarning>,
}

impl Ctx<'_> {
    fn warn(&mut self, field: &str, kind: WarningKind, message: impl Into<String>) {
        self.warnings.push(DiscoveryWarning {
            field: field.to_owned(),
            kind,
            message: message.into(),
        });
    }

    fn err(&self, kind: DiscoveryErrorKind) -> Error {
        Error::Discovery(DiscoveryError {
            url: self.url.to_string(),
            status: None,
            kind,
        })
    }

    fn invalid(&self, msg: impl Into<String>) -> Error {
        self.err(DiscoveryErrorKind::Invalid(msg.into()))
    }

    /// Resolve an endpoint URL: absolute URLs are kept; relative ones are resolved with RFC 3986
    /// (`new URL(rel, base)`) against the FHIR base *as a directory* (`{base}/`), so that
    /// `https://ehr/fhir` and `https://ehr/fhir/` give the same result (B01).
    fn endpoint(&mut self, field: &str, text: &str) -> Result<Url, Error> {
        let url = self.resolve(field, text)?;
        if !crate::flow::is_secure_or_loopback(&url) {
            self.warn(
                field,
                WarningKind::Insecure,
                "not an https (or loopback http) URL; flows will refuse to send credentials to it",
            );
        }
        Ok(url)
    }

    fn resolve(&mut self, field: &str, text: &str) -> Result<Url, Error> {
        match Url::parse(text) {
            Ok(u) => Ok(u),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                let dir = Url::parse(&format!("{}/", self.base.as_str()))
                    .map_err(|_| self.invalid(format!("`{field}`: FHIR base is not a URL")))?;
                let resolved = dir.join(text).map_err(|e| {
                    self.invalid(format!("`{field}` is not a valid URL reference: {e}"))
                })?;
                self.warn(
                    field,
                    WarningKind::RelativeUrlResolved,
                    format!("relative URL resolved against the FHIR base to {resolved}"),
                );
                Ok(resolved)
            }
            Err(e) => Err(self.invalid(format!("`{field}` is not a valid URL: {e}"))),
        }
    }

    fn opt_endpoint(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
    ) -> Result<Option<Url>, Error> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.warn(field, WarningKind::Other, "empty string treated as absent");
                Ok(None)
            }
            Some(Value::String(s)) => self.endpoint(field, s.trim()).map(Some),
            Some(_) => Err(self.invalid(format!("`{field}` must be a URL string"))),
        }
    }

    fn opt_string(&self, obj: &Map<String, Value>, field: &str) -> Result<Option<String>, Error> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(format!("`{field}` must be a string"))),
        }
    }

    /// `None` when absent (or null); error when not an array of strings.
    fn string_array(
        &self,
        obj: &Map<String, Value>,
        field: &str,
    ) -> Result<Option<Vec<String>>, Error> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.invalid(format!("`{field}[{i}]` must be a string"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.invalid(format!("`{field}` must be an array of strings"))),
        }
    }

    fn capabilities(&mut self, field: &str, list: Vec<String>) -> Vec<Capability> {
        list.into_iter()
            .map(|s| {
                if let Some((old, new)) = LEGACY_CAPABILITIES.iter().find(|(old, _)| *old == s) {
                    self.warn(
                        field,
                        WarningKind::LegacyCapability,
                        format!("pre-STU1 capability `{old}` (now `{new}`) kept as an unknown capability"),
                    );
                }
                Capability::from(s.as_str())
            })
            .collect()
    }
}

const KNOWN_FIELDS: &[&str] = &[
    "issuer",
    "jwks_uri",
    "authorization_endpoint",
    "token_endpoint",
    "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported",
    "grant_types_supported",
    "registration_endpoint",
    "smart_app_state_endpoint",
    "associated_endpoints",
    "user_access_brand_bundle",
    "user_access_brand_identifier",
    "scopes_supported",
    "response_types_supported",
    "management_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "capabilities",
    "code_challenge_methods_supported",
];

fn parse_json_object(
    body: &[u8],
    url: &Url,
    status: Option<u16>,
) -> Result<Map<String, Value>, Error> {
    let not = |kind| {
        Error::Discovery(DiscoveryError {
            url: url.to_string(),
            status,
            kind,
        })
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(not(DiscoveryErrorKind::Invalid(
            "the document is not a JSON object".into(),
        ))),
        Err(_) => Err(not(DiscoveryErrorKind::NotJson)),
    }
}

/// Parse a `.well-known/smart-configuration` body (spec digest §2.2).
///
/// `base` is the FHIR base URL (relative endpoints are resolved against it, RFC 3986, as
/// `new URL(rel, base + "/")`), `url` the URL the body was fetched from (used in errors and
/// [`Discovered::url`]).
///
/// # Errors
/// [`Error::Discovery`] with kind
/// * [`NotJson`](DiscoveryErrorKind::NotJson) — the body is not JSON (e.g. an HTML page);
/// * [`Invalid`](DiscoveryErrorKind::Invalid) — not a JSON object, or a member has the wrong
///   shape (the message names the member, never its value);
/// * [`MissingField("token_endpoint")`](DiscoveryErrorKind::MissingField) — B04 (c).
///
/// Never fails for PKCE reasons (see the [module docs](self)).
pub fn parse_smart_configuration(
    body: &[u8],
    base: &FhirBaseUrl,
    url: &Url,
) -> Result<Discovered, Error> {
    let obj = parse_json_object(body, url, None)?;
    let mut cx = Ctx {
        base,
        url,
        warnings: Vec::new(),
    };

    let Some(token_endpoint) = cx.opt_endpoint(&obj, "token_endpoint")? else {
        return Err(cx.err(DiscoveryErrorKind::MissingField("token_endpoint")));
    };
    let mut config = SmartConfiguration::new(token_endpoint);
    config.issuer = cx.opt_string(&obj, "issuer")?;
    config.jwks_uri = cx.opt_endpoint(&obj, "jwks_uri")?;
    config.authorization_endpoint = cx.opt_endpoint(&obj, "authorization_endpoint")?;
    config.registration_endpoint = cx.opt_endpoint(&obj, "registration_endpoint")?;
    config.smart_app_state_endpoint = cx.opt_endpoint(&obj, "smart_app_state_endpoint")?;
    config.user_access_brand_bundle = cx.opt_endpoint(&obj, "user_access_brand_bundle")?;
    config.management_endpoint = cx.opt_endpoint(&obj, "management_endpoint")?;
    config.introspection_endpoint = cx.opt_endpoint(&obj, "introspection_endpoint")?;
    config.revocation_endpoint = cx.opt_endpoint(&obj, "revocation_endpoint")?;

    let arrays = |cx: &Ctx<'_>, f| cx.string_array(&obj, f);
    let methods = arrays(&cx, "token_endpoint_auth_methods_supported")?;
    let algs = arrays(&cx, "token_endpoint_auth_signing_alg_values_supported")?;
    let grants = arrays(&cx, "grant_types_supported")?;
    let scopes = arrays(&cx, "scopes_supported")?;
    let responses = arrays(&cx, "response_types_supported")?;
    let caps = arrays(&cx, "capabilities")?;
    let pkce = arrays(&cx, "code_challenge_methods_supported")?;

    // user_access_brand_identifier: a FHIR Identifier object (2.2.0).
    config.user_access_brand_identifier = match obj.get("user_access_brand_identifier") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            let s = |k: &str| match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(cx.invalid(format!(
                    "`user_access_brand_identifier.{k}` must be a string"
                ))),
            };
            Some(Identifier {
                system: s("system")?,
                value: s("value")?,
            })
        }
        Some(_) => {
            return Err(
                cx.invalid("`user_access_brand_identifier` must be a FHIR Identifier object")
            );
        }
    };

    // associated_endpoints: [{url, capabilities[]}] (2.2.0, experimental).
    match obj.get("associated_endpoints") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::Object(m) = item else {
                    return Err(
                        cx.invalid(format!("`associated_endpoints[{i}]` must be an object"))
                    );
                };
                let field = format!("associated_endpoints[{i}].url");
                let url = match m.get("url") {
                    Some(Value::String(s)) if !s.trim().is_empty() => {
                        cx.endpoint(&field, s.trim())?
                    }
                    _ => return Err(cx.invalid(format!("`{field}` must be a URL string"))),
                };
                let cap_field = format!("associated_endpoints[{i}].capabilities");
                let caps = cx.string_array(m, "capabilities").map_err(|_| {
                    cx.invalid(format!("`{cap_field}` must be an array of strings"))
                })?;
                let capabilities = cx.capabilities(&cap_field, caps.unwrap_or_default());
                config
                    .associated_endpoints
                    .push(AssociatedEndpoint { url, capabilities });
            }
        }
        Some(_) => return Err(cx.invalid("`associated_endpoints` must be an array")),
    }

    config.token_endpoint_auth_signing_alg_values_supported = algs.unwrap_or_default();
    config.response_types_supported = responses.unwrap_or_default();

    match grants {
        Some(g) => config.grant_types_supported = g,
        None => cx.warn(
            "grant_types_supported",
            WarningKind::MissingRequired,
            "REQUIRED field absent",
        ),
    }
    match caps {
        Some(c) => config.capabilities = cx.capabilities("capabilities", c),
        None => cx.warn(
            "capabilities",
            WarningKind::MissingRequired,
            "REQUIRED field absent; no SMART capability is advertised (B04)",
        ),
    }
    match pkce {
        Some(p) => {
            if !p.iter().any(|m| m == "S256") {
                cx.warn(
                    "code_challenge_methods_supported",
                    WarningKind::Pkce,
                    "`S256` is not listed; the library still uses S256 and never `plain`",
                );
            }
            if p.iter().any(|m| m == "plain") {
                cx.warn(
                    "code_challenge_methods_supported",
                    WarningKind::Pkce,
                    "`plain` is listed (forbidden by SMART 2.x); it is never used",
                );
            }
            config.code_challenge_methods_supported = p;
        }
        None => cx.warn(
            "code_challenge_methods_supported",
            WarningKind::MissingRequired,
            "REQUIRED field absent; PKCE with S256 is still used (B03)",
        ),
    }
    if let Some(m) = methods {
        if !m.is_empty() && !m.iter().any(|x| x == "private_key_jwt") {
            cx.warn(
                "token_endpoint_auth_methods_supported",
                WarningKind::AuthMethod,
                "`private_key_jwt` is not listed; asymmetric clients may still try (B04)",
            );
        }
        config.token_endpoint_auth_methods_supported = m;
    }
    match scopes {
        Some(s) => config.scopes_supported = s,
        None => cx.warn(
            "scopes_supported",
            WarningKind::MissingRecommended,
            "RECOMMENDED field absent",
        ),
    }
    if config.response_types_supported.is_empty() && !obj.contains_key("response_types_supported") {
        cx.warn(
            "response_types_supported",
            WarningKind::MissingRecommended,
            "RECOMMENDED field absent",
        );
    }
    for (field, present) in [
        ("management_endpoint", config.management_endpoint.is_some()),
        (
            "introspection_endpoint",
            config.introspection_endpoint.is_some(),
        ),
        ("revocation_endpoint", config.revocation_endpoint.is_some()),
    ] {
        if !present {
            cx.warn(
                field,
                WarningKind::MissingRecommended,
                "RECOMMENDED field absent",
            );
        }
    }
    let launch = config.has_capability(&Capability::LaunchEhr)
        || config.has_capability(&Capability::LaunchStandalone);
    if launch && config.authorization_endpoint.is_none() {
        cx.warn(
            "authorization_endpoint",
            WarningKind::MissingRequired,
            "required with `launch-ehr`/`launch-standalone` but absent",
        );
    }
    if config.has_capability(&Capability::SsoOpenidConnect) {
        for (field, present) in [
            ("issuer", config.issuer.is_some()),
            ("jwks_uri", config.jwks_uri.is_some()),
        ] {
            if !present {
                cx.warn(
                    field,
                    WarningKind::MissingRequired,
                    "required with `sso-openid-connect` but absent",
                );
            }
        }
    }

    config.extra = obj
        .into_iter()
        .filter(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
        .collect();

    Ok(Discovered {
        config,
        warnings: cx.warnings,
        source: ConfigSource::WellKnown,
        url: url.clone(),
    })
}

/// Parse a FHIR CapabilityStatement (`[base]/metadata`; DSTU2 `Conformance` too) for the
/// deprecated `oauth-uris` extension (spec digest §2.1, DISC-09).
///
/// The extension is taken from whichever `rest[]` entry carries it under `security.extension`;
/// no `security.service` coding is required (B05). Sub-extensions `authorize`, `token`
/// (required), `register`, `manage`, `introspect`, `revoke` (`valueUri`, or `valueUrl`) map to
/// the corresponding endpoints; the STU1 `capabilities` extension (`valueCode`) is read if
/// present. The result has [`ConfigSource::CapabilityStatement`].
///
/// # Errors
/// [`Error::Discovery`] with kind `NotJson`, `Invalid` (not a CapabilityStatement, bad URL),
/// or `MissingField("token_endpoint")` when no `oauth-uris` extension with a `token` URI exists.
pub fn parse_capability_statement(
    body: &[u8],
    base: &FhirBaseUrl,
    url: &Url,
) -> Result<Discovered, Error> {
    let obj = parse_json_object(body, url, None)?;
    let mut cx = Ctx {
        base,
        url,
        warnings: Vec::new(),
    };
    match obj.get("resourceType") {
        Some(Value::String(t)) if t == "CapabilityStatement" || t == "Conformance" => {}
        _ => return Err(cx.invalid("`resourceType` is not CapabilityStatement")),
    }
    let rests = match obj.get("rest") {
        Some(Value::Array(r)) => r.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err(cx.invalid("`rest` must be an array")),
    };
    let mut uris: Vec<(String, String)> = Vec::new();
    let mut caps: Option<Vec<String>> = None;
    for rest in rests {
        let Some(exts) = rest
            .get("security")
            .and_then(|s| s.get("extension"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for ext in exts {
            match ext.get("url").and_then(Value::as_str) {
                Some(OAUTH_URIS_EXTENSION) if uris.is_empty() => {
                    for sub in ext
                        .get("extension")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let name = sub.get("url").and_then(Value::as_str);
                        let value = sub
                            .get("valueUri")
                            .or_else(|| sub.get("valueUrl"))
                            .and_then(Value::as_str);
                        if let (Some(n), Some(v)) = (name, value) {
                            uris.push((n.to_owned(), v.to_owned()));
                        }
                    }
                }
                Some(CAPABILITIES_EXTENSION) => {
                    if let Some(code) = ext.get("valueCode").and_then(Value::as_str) {
                        caps.get_or_insert_with(Vec::new).push(code.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    let get = |name: &str| uris.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let Some(token) = get("token") else {
        return Err(cx.err(DiscoveryErrorKind::MissingField("token_endpoint")));
    };
    let mut config = SmartConfiguration::new(cx.endpoint("token_endpoint", token.trim())?);
    for (sub, field) in [
        ("authorize", "authorization_endpoint"),
        ("register", "registration_endpoint"),
        ("manage", "management_endpoint"),
        ("introspect", "introspection_endpoint"),
        ("revoke", "revocation_endpoint"),
    ] {
        let Some(v) = get(sub) else { continue };
        let u = Some(cx.endpoint(field, v.trim())?);
        match sub {
            "authorize" => config.authorization_endpoint = u,
            "register" => config.registration_endpoint = u,
            "manage" => config.management_endpoint = u,
            "introspect" => config.introspection_endpoint = u,
            _ => config.revocation_endpoint = u,
        }
    }
    match caps {
        Some(c) => config.capabilities = cx.capabilities("capabilities", c),
        None => cx.warn(
            "capabilities",
            WarningKind::MissingRequired,
            "a CapabilityStatement carries no SMART capabilities (legacy discovery)",
        ),
    }
    cx.warn(
        "code_challenge_methods_supported",
        WarningKind::MissingRequired,
        "not available from a CapabilityStatement; PKCE with S256 is still used",
    );
    Ok(Discovered {
        config,
        warnings: cx.warnings,
        source: ConfigSource::CapabilityStatement,
        url: url.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// The Flow
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum State {
    Start,
    WellKnownInFlight,
    FallbackPending {
        status: Option<u16>,
        kind: DiscoveryErrorKind,
    },
    MetadataInFlight {
        status: Option<u16>,
        kind: DiscoveryErrorKind,
    },
    Done(Box<Discovered>),
    Failed(Error),
    Finished,
}

/// The discovery [`Flow`] (output: [`Discovered`]).
///
/// 1. `GET {base}/.well-known/smart-configuration` with `Accept: application/json` (DISC-01/02).
///    A 2xx JSON answer is parsed with [`parse_smart_configuration`]; its result (success *or*
///    error, e.g. a missing `token_endpoint`) is final — `/metadata` is not consulted (B05).
/// 2. Only if that answer is unusable — non-2xx, or not JSON (an HTML page) — and the fallback
///    is enabled: `GET {base}/metadata` (after the first response arrived; never both at
///    once), parsed with [`parse_capability_statement`].
/// 3. If both fail: [`Error::Discovery`] with the well-known URL and status and kind
///    [`NoUsableSource`](DiscoveryErrorKind::NoUsableSource); with the fallback disabled, the
///    well-known failure itself ([`Status`](DiscoveryErrorKind::Status) or
///    [`NotJson`](DiscoveryErrorKind::NotJson)).
///
/// Errors are returned from [`handle_response`](Flow::handle_response) and again from the next
/// [`poll`](Flow::poll).
#[derive(Debug)]
pub struct Discovery {
    base: FhirBaseUrl,
    fallback: bool,
    state: State,
}

impl Discovery {
    /// Discovery for the FHIR server at `base`, with the CapabilityStatement fallback enabled.
    pub fn new(base: FhirBaseUrl) -> Self {
        Self {
            base,
            fallback: true,
            state: State::Start,
        }
    }

    /// Disable the CapabilityStatement fallback: only the well-known document is used.
    #[must_use]
    pub fn without_fallback(mut self) -> Self {
        self.fallback = false;
        self
    }

    /// The well-known URL this flow fetches.
    pub fn well_known_url(&self) -> Url {
        self.base.well_known()
    }

    /// The `/metadata` URL of the fallback.
    pub fn metadata_url(&self) -> Url {
        self.base
            .append("metadata")
            .unwrap_or_else(|_| self.base.url())
    }

    fn wk_error(&self, status: Option<u16>, kind: DiscoveryErrorKind) -> Error {
        Error::Discovery(DiscoveryError {
            url: self.well_known_url().to_string(),
            status,
            kind,
        })
    }

    fn fail(&mut self, e: Error) -> Result<(), Error> {
        self.state = State::Failed(e.clone());
        Err(e)
    }
}

impl Flow for Discovery {
    type Output = Discovered;

    fn poll(&mut self, _now: UnixTime) -> Result<Action<Discovered>, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Start => {
                self.state = State::WellKnownInFlight;
                Ok(Action::Send(HttpRequest::get_json(self.well_known_url())))
            }
            State::FallbackPending { status, kind } => {
                self.state = State::MetadataInFlight { status, kind };
                let mut req = HttpRequest::get_json(self.metadata_url());
                req.headers = vec![(
                    "accept".into(),
                    "application/fhir+json, application/json".into(),
                )];
                Ok(Action::Send(req))
            }
            State::Done(d) => Ok(Action::Ready(*d)),
            State::Failed(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
            s @ (State::WellKnownInFlight | State::MetadataInFlight { .. }) => {
                self.state = s;
                Err(Error::Misuse(
                    "poll called while a discovery request is in flight",
                ))
            }
            State::Finished => Err(Error::Misuse("discovery already produced its output")),
        }
    }

    fn handle_response(&mut self, response: HttpResponse, _now: UnixTime) -> Result<(), Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::WellKnownInFlight => {
                let url = self.well_known_url();
                let status = Some(response.status);
                let unusable = if !response.is_success() {
                    Some(DiscoveryErrorKind::Status)
                } else if serde_json::from_slice::<serde::de::IgnoredAny>(&response.body).is_err() {
                    Some(DiscoveryErrorKind::NotJson)
                } else {
                    None
                };
                match unusable {
                    None => match parse_smart_configuration(&response.body, &self.base, &url) {
                        Ok(d) => {
                            self.state = State::Done(Box::new(d));
                            Ok(())
                        }
                        Err(Error::Discovery(mut e)) => {
                            e.status = status;
                            self.fail(Error::Discovery(e))
                        }
                        Err(e) => self.fail(e),
                    },
                    Some(kind) if self.fallback => {
                        self.state = State::FallbackPending { status, kind };
                        Ok(())
                    }
                    Some(kind) => {
                        let e = self.wk_error(status, kind);
                        self.fail(e)
                    }
                }
            }
            State::MetadataInFlight { status, kind: _ } => {
                let url = self.metadata_url();
                let parsed = if response.is_success() {
                    parse_capability_statement(&response.body, &self.base, &url).ok()
                } else {
                    None
                };
                match parsed {
                    Some(d) => {
                        self.state = State::Done(Box::new(d));
                        Ok(())
                    }
                    None => {
                        let e = self.wk_error(status, DiscoveryErrorKind::NoUsableSource);
                        self.fail(e)
                    }
                }
            }
            other => {
                self.state = other;
                Err(Error::Misuse(
                    "handle_response called with no discovery request in flight",
                ))
            }
        }
    }

    fn abort(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Finished) {
            State::WellKnownInFlight => State::Start,
            State::MetadataInFlight { status, kind } => State::FallbackPending { status, kind },
            other => other,
        };
    }
}

/// Fuzz entry point: parse arbitrary bytes as a smart-configuration (and as a
/// CapabilityStatement); must never panic. A parsed configuration must survive a serde
/// round trip unchanged (floats in unknown members up to rounding).
#[doc(hidden)]
pub fn fuzz_smart_configuration(data: &[u8]) {
    let Ok(base) = FhirBaseUrl::new("https://ehr.example.org/fhir") else {
        return;
    };
    let url = base.well_known();
    if let Ok(d) = parse_smart_configuration(data, &base, &url) {
        let json = serde_json::to_vec(&d.config).expect("a parsed configuration serializes");
        let back: SmartConfiguration =
            serde_json::from_slice(&json).expect("a serialized configuration deserializes");
        crate::fuzzing::assert_json_approx_eq(&back, &d.config, "configuration serde round trip");
        let again =
            parse_smart_configuration(&json, &base, &url).expect("re-parse of serialized form");
        crate::fuzzing::assert_json_approx_eq(&again.config, &d.config, "configuration re-parse");
    }
    let _ = parse_capability_statement(data, &base, &url);
}
