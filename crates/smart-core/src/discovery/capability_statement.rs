//! The legacy discovery fallback: a FHIR CapabilityStatement's `oauth-uris` extension.

use super::members::Ctx;
use super::parse::parse_json_object;
use super::*;
use crate::error::{DiscoveryErrorKind, Error};
use crate::types::FhirBaseUrl;
use serde_json::Value;
use url::Url;

/// Parse a FHIR CapabilityStatement (`[base]/metadata`; DSTU2 `Conformance` too) for the
/// deprecated `oauth-uris` extension (SMART App Launch §"Conformance": conveying the
/// endpoints in the CapabilityStatement is deprecated; SMART App Launch 1.0 required it).
///
/// The extension is taken from whichever `rest[]` entry carries it under `security.extension`; no
/// `security.service` coding is required (many servers omit it). Sub-extensions `authorize`,
/// `token` (required), `register`, `manage`, `introspect`, `revoke` (`valueUri`, or `valueUrl`) map
/// to the corresponding endpoints; the STU1 `capabilities` extension (`valueCode`) is read if
/// present. The result has [`ConfigSource::CapabilityStatement`].
///
/// Tolerant like [`parse_smart_configuration`](super::parse_smart_configuration): one leading
/// byte-order mark is skipped, a single `rest` object is read as a one-element list, and an
/// optional endpoint that is not a valid URL is dropped, each with a warning.
///
/// # Errors
/// [`Error::Discovery`] with kind `NotJson`, `Invalid` (not a CapabilityStatement, an unusable
/// `token` URI), or `MissingField("token_endpoint")` when no `oauth-uris` extension with a
/// `token` URI exists.
pub fn parse_capability_statement(
    body: &[u8],
    base: &FhirBaseUrl,
    url: &Url,
) -> Result<Discovered, Error> {
    let (obj, bom) = parse_json_object(body, url)?;
    let mut cx = Ctx::new(base, url);
    if bom {
        cx.warn(
            "(body)",
            WarningKind::ByteOrderMark,
            crate::lenient::BOM_WARNING,
        );
    }
    match obj.get("resourceType") {
        Some(Value::String(t)) if t == "CapabilityStatement" || t == "Conformance" => {}
        _ => return Err(cx.invalid("`resourceType` is not CapabilityStatement")),
    }
    let lone;
    let rests = match obj.get("rest") {
        Some(Value::Array(r)) => r.as_slice(),
        None | Some(Value::Null) => &[],
        Some(v @ Value::Object(_)) => {
            cx.warn(
                "rest",
                WarningKind::WrongType,
                "`rest` is a single object, not an array; read as a one-element list",
            );
            lone = [v.clone()];
            &lone[..]
        }
        Some(other) => {
            cx.warn(
                "rest",
                WarningKind::WrongType,
                format!(
                    "`rest` is {}, not an array; ignored",
                    super::parse::json_type(other)
                ),
            );
            &[]
        }
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
    if token.trim().is_empty() {
        return Err(cx.err(DiscoveryErrorKind::MissingField("token_endpoint")));
    }
    let mut config = SmartConfiguration::new(cx.endpoint("token_endpoint", token.trim())?);
    for (sub, field) in [
        ("authorize", "authorization_endpoint"),
        ("register", "registration_endpoint"),
        ("manage", "management_endpoint"),
        ("introspect", "introspection_endpoint"),
        ("revoke", "revocation_endpoint"),
    ] {
        let Some(v) = get(sub) else { continue };
        let u = cx.opt_endpoint(field, crate::lenient::LStr(crate::lenient::Seen::Ok(v)));
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
