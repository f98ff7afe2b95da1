//! Claims decoding without verification.

use super::*;
use crate::FhirBaseUrl;
use base64::Engine as _;

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
        c.fhir_user().unwrap().url(&base).unwrap().as_str(),
        "https://ehr.example.org/r4/Practitioner/7"
    );
    assert_eq!(
        c.fhir_user().as_ref().and_then(crate::FhirUser::reference),
        Some(("Practitioner", "7"))
    );
    assert_eq!(c.extra["extra"], 1);
    let abs = UnverifiedIdTokenClaims::decode(&jwt(&serde_json::json!({
        "fhirUser": "https://other.example.org/fhir/PractitionerRole/9"
    })))
    .unwrap();
    assert_eq!(
        abs.fhir_user().unwrap().url(&base).unwrap().as_str(),
        "https://other.example.org/fhir/PractitionerRole/9"
    );
    assert_eq!(
        abs.fhir_user()
            .as_ref()
            .and_then(crate::FhirUser::reference),
        Some(("PractitionerRole", "9"))
    );
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
    let err =
        UnverifiedIdTokenClaims::decode(&IdToken::new("x.eyJzZWNyZXQtdmFsdWUiOg.y")).unwrap_err();
    assert!(!err.to_string().contains("secret-value"));
}
