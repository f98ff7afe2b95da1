//! Parsing `.well-known/smart-configuration` (SMART App Launch §"Metadata").

use super::config::LEGACY_CAPABILITIES;
use super::*;
use crate::error::{DiscoveryError, DiscoveryErrorKind, Error};
use crate::types::FhirBaseUrl;
use serde_json::{Map, Value};
use url::Url;

pub(super) struct Ctx<'a> {
    pub(super) base: &'a FhirBaseUrl,
    pub(super) url: &'a Url,
    pub(super) warnings: Vec<DiscoveryWarning>,
}

impl Ctx<'_> {
    pub(super) fn warn(&mut self, field: &str, kind: WarningKind, message: impl Into<String>) {
        self.warnings.push(DiscoveryWarning {
            field: field.to_owned(),
            kind,
            message: message.into(),
        });
    }

    pub(super) fn err(&self, kind: DiscoveryErrorKind) -> Error {
        Error::Discovery(DiscoveryError {
            url: self.url.to_string(),
            status: None,
            kind,
        })
    }

    pub(super) fn invalid(&self, msg: impl Into<String>) -> Error {
        self.err(DiscoveryErrorKind::Invalid(msg.into()))
    }

    /// Resolve an endpoint URL: absolute URLs are kept; relative ones are resolved with RFC 3986
    /// (`new URL(rel, base)`) against the FHIR base *as a directory* (`{base}/`), so that
    /// `https://ehr/fhir` and `https://ehr/fhir/` give the same result (B01).
    pub(super) fn endpoint(&mut self, field: &str, text: &str) -> Result<Url, Error> {
        let url = self.resolve(field, text)?;
        if !crate::http::is_secure_or_loopback(&url) {
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

    pub(super) fn capabilities(&mut self, field: &str, list: Vec<String>) -> Vec<Capability> {
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

pub(super) const KNOWN_FIELDS: &[&str] = &[
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

pub(super) fn parse_json_object(
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
/// Never fails for PKCE reasons (see the [module docs](crate::discovery)).
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
