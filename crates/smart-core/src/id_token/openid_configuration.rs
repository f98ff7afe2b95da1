//! OpenID Connect Discovery 1.0 for the `id_token` verifier: where the issuer's
//! configuration lives, and the `jwks_uri` it names.

use serde_json::Value;
use url::Url;

use super::clean;
use crate::error::IdTokenError;
use crate::flow::HttpResponse;

/// The path appended to an issuer to find its OpenID Provider configuration (OpenID Connect
/// Discovery 1.0 §4).
pub const OPENID_CONFIGURATION_PATH: &str = ".well-known/openid-configuration";

/// `{issuer}/.well-known/openid-configuration`: one trailing `/` of the issuer dropped, then
/// string concatenation (OpenID Connect Discovery 1.0 §4.1; never `Url::join`, which would
/// drop the issuer's last path segment).
///
/// # Errors
/// [`IdTokenError::Discovery`] when the issuer is not an absolute `http(s)` URL without query
/// or fragment.
pub fn openid_configuration_url(issuer: &str) -> Result<Url, IdTokenError> {
    let text = format!(
        "{}/{OPENID_CONFIGURATION_PATH}",
        issuer.strip_suffix('/').unwrap_or(issuer)
    );
    match Url::parse(&text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.query().is_none()
                && url.fragment().is_none()
                && !issuer.contains(['?', '#']) =>
        {
            Ok(url)
        }
        _ => Err(IdTokenError::Discovery {
            url: clean(&text),
            status: None,
            reason: "the issuer is not an absolute http(s) URL without query or fragment".into(),
        }),
    }
}

/// The `jwks_uri` of an OpenID Provider configuration whose `issuer` must equal `expected`.
/// One leading UTF-8 byte-order mark is skipped (RFC 8259 §8.1); a `jwks_uri` that is not an
/// absolute http(s) URL is refused.
pub(super) fn parse_openid_configuration(
    response: &HttpResponse,
    url: &Url,
    expected: &str,
) -> Result<Url, IdTokenError> {
    let fail = |reason: &str| IdTokenError::Discovery {
        url: url.to_string(),
        status: Some(response.status),
        reason: reason.into(),
    };
    if !response.is_success() {
        return Err(fail("unexpected HTTP status"));
    }
    let body = crate::lenient::strip_bom(&response.body).0;
    let Ok(Value::Object(config)) = serde_json::from_slice::<Value>(body) else {
        return Err(fail("the OpenID configuration is not a JSON object"));
    };
    let issuer = config.get("issuer").and_then(Value::as_str);
    if issuer != Some(expected) {
        return Err(IdTokenError::ConfigurationIssuerMismatch {
            expected: expected.to_owned(),
            received: issuer.map(clean),
        });
    }
    config
        .get("jwks_uri")
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| fail("`jwks_uri` is missing or not an absolute http(s) URL"))
}

/// Fuzz entry point: parse arbitrary bytes as an OpenID Provider configuration (any status)
/// and as a JWK Set; must never panic, and an accepted document's `jwks_uri` is an absolute
/// http(s) URL.
#[doc(hidden)]
pub fn fuzz_openid_configuration(data: &[u8]) {
    let Ok(url) = Url::parse("https://ehr.example.org/.well-known/openid-configuration") else {
        return;
    };
    for status in [200, 404] {
        let r = HttpResponse::new(status, data.to_vec());
        if let Ok(jwks) = parse_openid_configuration(&r, &url, "https://ehr.example.org") {
            assert!(
                matches!(jwks.scheme(), "http" | "https") && jwks.has_host(),
                "jwks_uri is an absolute http(s) URL"
            );
        }
    }
    let _ = crate::jwk::verify::jwks_keys(data);
}
