//! OpenID Connect `id_token` claims, **decoded without signature verification**.
//!
//! SMART's `sso-openid-connect` profile returns an `id_token` whose `fhirUser` claim names
//! the signed-in user as a FHIR resource (OIDC-03). This module only *decodes* the claims:
//! the type is called [`UnverifiedIdTokenClaims`] so that code using them says so. Do not
//! make authorization decisions from them without verifying the signature against the
//! issuer's JWKS (OIDC-01, OIDC-02; not implemented yet).

use base64::Engine as _;
use url::Url;

use crate::error::{Document, Error, ParseError};
use crate::secret::IdToken;
use crate::types::FhirBaseUrl;

/// FHIR resource types a `fhirUser` may name (2.1.0 added `PractitionerRole`).
pub const FHIR_USER_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Person",
];

/// The claims of an `id_token`, **not verified**.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnverifiedIdTokenClaims {
    /// `iss`: the OpenID issuer (not necessarily the FHIR base; case B06).
    pub iss: Option<String>,
    /// `sub`: the subject identifier.
    pub sub: Option<String>,
    /// `aud`: a string or an array of strings (the `client_id`).
    pub aud: Option<serde_json::Value>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<u64>,
    /// `iat`, seconds since the epoch.
    pub iat: Option<u64>,
    /// `fhirUser`: an absolute URL or a reference relative to the FHIR base.
    #[serde(rename = "fhirUser")]
    pub fhir_user: Option<String>,
    /// `profile`: the SMART v1 predecessor of `fhirUser`.
    pub profile: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl UnverifiedIdTokenClaims {
    /// Decode the payload of a compact JWT **without checking its signature**.
    ///
    /// # Errors
    /// [`Error::Parse`] with [`Document::IdToken`] when it is not three base64url segments
    /// or the payload is not a JSON object. The message never quotes the token.
    pub fn decode(id_token: &IdToken) -> Result<Self, Error> {
        let mut parts = id_token.secret().split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(
                ParseError::new(Document::IdToken, "not a compact JWS (three segments)").into(),
            );
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| ParseError::new(Document::IdToken, "payload is not base64url"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ParseError::from_json(Document::IdToken, &e).into())
    }

    /// The user as a FHIR URL: `fhirUser` (or legacy `profile`), resolved against the FHIR
    /// base when relative (`Practitioner/7` → `{base}/Practitioner/7`, never `Url::join`).
    pub fn fhir_user_url(&self, fhir_base: &FhirBaseUrl) -> Option<Url> {
        let user = self.fhir_user.as_deref().or(self.profile.as_deref())?;
        fhir_base.resolve_reference(user)
    }

    /// The resource type and id of `fhirUser` (e.g. `("Practitioner", "7")`), when its last
    /// two path segments name one of [`FHIR_USER_TYPES`].
    pub fn fhir_user_reference(&self) -> Option<(&str, &str)> {
        let user = self.fhir_user.as_deref().or(self.profile.as_deref())?;
        let user = user.split(['?', '#']).next()?;
        let mut segs = user.trim_end_matches('/').rsplit('/');
        let id = segs.next()?;
        let ty = segs.next()?;
        (FHIR_USER_TYPES.contains(&ty) && !id.is_empty()).then_some((ty, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &serde_json::Value) -> IdToken {
        let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        IdToken::new(format!(
            "{}.{}.{}",
            e(br#"{"alg":"RS256"}"#),
            e(claims.to_string().as_bytes()),
            e(b"sig")
        ))
    }

    #[test]
    fn oidc_03_fhir_user_relative_and_absolute() {
        let base = FhirBaseUrl::new("https://ehr.example.org/r4").unwrap();
        let c = UnverifiedIdTokenClaims::decode(&jwt(&serde_json::json!({
            "iss": "https://auth.example.org", "sub": "u1", "aud": "app", "fhirUser": "Practitioner/7", "extra": 1
        })))
        .unwrap();
        assert_eq!(
            c.fhir_user_url(&base).unwrap().as_str(),
            "https://ehr.example.org/r4/Practitioner/7"
        );
        assert_eq!(c.fhir_user_reference(), Some(("Practitioner", "7")));
        assert_eq!(c.extra["extra"], 1);
        let abs = UnverifiedIdTokenClaims::decode(&jwt(&serde_json::json!({
            "fhirUser": "https://other.example.org/fhir/PractitionerRole/9"
        })))
        .unwrap();
        assert_eq!(
            abs.fhir_user_url(&base).unwrap().as_str(),
            "https://other.example.org/fhir/PractitionerRole/9"
        );
        assert_eq!(abs.fhir_user_reference(), Some(("PractitionerRole", "9")));
    }

    #[test]
    fn bad_tokens_are_parse_errors_without_content() {
        for bad in [
            "",
            "a.b",
            "a.!!!.c",
            "a.b.c.d",
            "eyJhIjoxfQ.e30",
            "x.bm90IGpzb24.y",
        ] {
            let err = UnverifiedIdTokenClaims::decode(&IdToken::new(bad)).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Parse(ParseError {
                        document: Document::IdToken,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let err = UnverifiedIdTokenClaims::decode(&IdToken::new("x.eyJzZWNyZXQtdmFsdWUiOg.y"))
            .unwrap_err();
        assert!(!err.to_string().contains("secret-value"));
    }
}
