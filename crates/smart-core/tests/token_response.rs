//! Token-endpoint responses, OAuth errors and launch context: IG examples (§6.4, §6.6, §7, §8),
//! real-server recordings, acceptance cases B13, B15, B16, B19, B27.

use serde_json::{Value, json};
use smart_core::context::{FhirContextItem, LaunchContext, parse_launch_context};
use smart_core::error::{Document, OAuthError, ParseError};
use smart_core::oauth_error::parse_oauth_error;
use smart_core::secret::RefreshToken;
use smart_core::token::{TokenResponse, parse_token_response};
use smart_core::{Error, HttpResponse, UnixTime};
use url::Url;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn token_url() -> Url {
    Url::parse("https://ehr.example.org/oauth2/token").unwrap()
}

fn parse(status: u16, body: &[u8]) -> Result<TokenResponse, Error> {
    parse_token_response(&HttpResponse::new(status, body.to_vec()), &token_url(), NOW)
}

fn ok(body: &[u8]) -> TokenResponse {
    parse(200, body).unwrap()
}

/// A real-server recording: `{status, body, ...}` → (status, body bytes, body JSON).
fn recording(text: &str) -> (u16, Vec<u8>, Value) {
    let v: Value = serde_json::from_str(text).unwrap();
    let status = u16::try_from(v["status"].as_u64().unwrap()).unwrap();
    let body = v["body"].clone();
    (status, serde_json::to_vec(&body).unwrap(), body)
}

fn parse_error_message(e: Error) -> String {
    match e {
        Error::Parse(ParseError {
            document: Document::TokenResponse,
            message,
        }) => message,
        other => panic!("expected a TokenResponse parse error, got {other:?}"),
    }
}

// ----- IG examples ---------------------------------------------------------------------------------

#[test]
fn ig_6_4_token_response() {
    let body = include_bytes!("fixtures/token/ig-6.4-token.json");
    let raw: Value = serde_json::from_slice(body).unwrap();
    let t = ok(body);
    assert_eq!(
        t.access_token.secret(),
        raw["access_token"].as_str().unwrap()
    );
    assert_eq!(
        t.refresh_token.as_ref().unwrap().secret(),
        raw["refresh_token"].as_str().unwrap()
    );
    assert!(t.is_bearer());
    assert_eq!(t.expires_in, Some(3600));
    assert_eq!(t.expires_at, Some(UnixTime::from_secs(1_700_003_600)));
    assert_eq!(
        t.granted_scopes(),
        [
            "launch/patient",
            "patient/Observation.rs",
            "patient/Patient.rs"
        ]
    );
    assert_eq!(
        t.context.patient.as_deref(),
        Some("87a339d0-8cae-418e-89c7-8651e6aab3c6")
    );
    assert_eq!(t.context.need_patient_banner, Some(true));
    assert_eq!(
        t.context.smart_style_url.as_deref(),
        Some("https://smart.argo.run/smart-style.json")
    );
    assert!(t.id_token.is_none());
    assert!(t.extra.is_empty());
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn ig_6_6_refresh_response() {
    let t = ok(include_bytes!("fixtures/token/ig-6.6-refresh.json"));
    assert_eq!(
        t.scope.as_deref(),
        Some("launch/patient patient/Observation.rs patient/Patient.rs offline_access")
    );
    assert!(t.has_scope("offline_access"));
    assert!(t.refresh_token.is_some());
    assert_eq!(t.expires_at, Some(UnixTime::from_secs(1_700_003_600)));
}

#[test]
fn ig_7_backend_services_response() {
    let t = ok(include_bytes!("fixtures/token/ig-7-backend.json"));
    assert_eq!(t.scope.as_deref(), Some("system/*.rs"));
    assert_eq!(t.expires_in, Some(3600));
    assert!(t.refresh_token.is_none());
    assert!(t.context.is_empty());
}

#[test]
fn ig_8_1_reference_objects_and_missing_token_type() {
    let t = ok(include_bytes!("fixtures/token/ig-8.1-context.json"));
    assert_eq!(t.access_token.secret(), "secret-xyz");
    assert_eq!(t.token_type, "Bearer");
    assert!(t.warnings.iter().any(|w| w.contains("token_type")));
    assert_eq!(t.context.patient.as_deref(), Some("123"));
    assert_eq!(
        t.context.fhir_context,
        [
            FhirContextItem::from_reference("DiagnosticReport/123"),
            FhirContextItem::from_reference("Organization/789")
        ]
    );
    assert_eq!(t.context.fhir_context[0].role(), "launch");
}

#[test]
fn ig_8_2_fhir_context_with_roles() {
    let t = ok(include_bytes!("fixtures/token/ig-8.2-roles.json"));
    let items = &t.context.fhir_context;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].reference.as_deref(), Some("List/123"));
    assert_eq!(items[0].role(), "https://example.org/med-list-at-home");
    assert_eq!(items[1].reference.as_deref(), Some("List/456"));
    assert_eq!(items[1].role(), "https://example.org/med-list-at-hospital");
    assert_eq!(t.context.items_with_role("launch").count(), 0);
    assert_eq!(items[0].resource_type(), Some("List"));
}

#[test]
fn ig_8_3_fhir_context_canonical() {
    let t = ok(include_bytes!("fixtures/token/ig-8.3-canonical.json"));
    let item = &t.context.fhir_context[0];
    assert_eq!(
        item.canonical.as_deref(),
        Some("https://example.org/Questionnaire/123/|v2023-05-03")
    );
    assert_eq!(item.r#type.as_deref(), Some("Questionnaire"));
    assert_eq!(
        item.role(),
        "https://example.org/role/questionnaire-to-display"
    );
    assert_eq!(item.reference, None);
}

#[test]
fn ig_8_4_fhir_context_strings_from_2_0() {
    let t = ok(include_bytes!("fixtures/token/ig-8.4-strings.json"));
    let refs: Vec<_> = t
        .context
        .fhir_context
        .iter()
        .map(|i| i.reference.as_deref().unwrap())
        .collect();
    assert_eq!(refs, ["DiagnosticReport/123", "Organization/789"]);
    assert!(
        t.context
            .fhir_context
            .iter()
            .all(|i| i.role() == "launch" && i.role.is_none())
    );
}

#[test]
fn ig_8_5_authorization_details_kept() {
    let t = ok(include_bytes!(
        "fixtures/token/ig-8.5-authorization-details.json"
    ));
    let ad = t.authorization_details.as_ref().unwrap();
    assert_eq!(ad[1]["patient"], json!("r2-456-id"));
    assert_eq!(
        ad[0]["locations"],
        json!(["https://ehr.example.org/fhir/r4"])
    );
    assert_eq!(t.context.patient.as_deref(), Some("r4-123-id"));
}

#[test]
fn fhir_context_2_2_identifier_and_bad_items_are_lenient() {
    let body = br#"{"access_token":"A","token_type":"bearer","scope":"launch","fhirContext":[
        {"identifier":{"system":"urn:x","value":"42"},"type":"Patient","role":"https://example.org/subject"},
        {"role":"https://example.org/r"},
        7,
        {"reference":"Observation/1","role":"","vendor":1},
        "Encounter/9"
    ]}"#;
    let t = ok(body);
    assert!(t.is_bearer());
    let items = &t.context.fhir_context;
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].identifier,
        Some(json!({"system":"urn:x","value":"42"}))
    );
    assert_eq!(items[0].resource_type(), Some("Patient"));
    assert_eq!(items[1].reference.as_deref(), Some("Observation/1"));
    assert_eq!(items[1].role(), "launch"); // empty role is not a role (CTX-02)
    assert_eq!(items[1].extra["vendor"], json!(1));
    assert_eq!(items[2].reference.as_deref(), Some("Encounter/9"));
    // dropped item 1 and 2, empty role, Encounter with launch role
    assert_eq!(t.context.warnings.len(), 4, "{:?}", t.context.warnings);
    assert!(t.warnings.iter().any(|w| w.contains("fhirContext[2]")));
}

// ----- real-server recordings --------------------------------------------------------------------

#[test]
fn real_server_success_responses() {
    for (name, text, scope, has_refresh, has_id, patient) in [
        (
            "ehr",
            include_str!("fixtures/real-server/ehr-token.json"),
            "launch openid fhirUser offline_access user/*.rs patient/*.rs",
            true,
            true,
            Some("stub-patient-1"),
        ),
        (
            "patient",
            include_str!("fixtures/real-server/app-patient-standalone-token.json"),
            "launch/patient launch/encounter openid fhirUser offline_access patient/*.rs",
            true,
            true,
            Some("stub-patient-1"),
        ),
        (
            "provider",
            include_str!("fixtures/real-server/app-provider-standalone-token.json"),
            "launch/patient launch/encounter openid fhirUser offline_access patient/*.rs",
            true,
            true,
            Some("stub-patient-1"),
        ),
        (
            "refresh",
            include_str!("fixtures/real-server/app-patient-standalone-refresh.json"),
            "launch/patient launch/encounter openid fhirUser offline_access patient/*.rs",
            true,
            true,
            Some("stub-patient-1"),
        ),
        (
            "bs-es384",
            include_str!("fixtures/real-server/bs-token-es384.json"),
            "system/Patient.rs system/Observation.read",
            false,
            false,
            None,
        ),
        (
            "bs-downgraded",
            include_str!("fixtures/real-server/bs-token-scope-downgraded.json"),
            "system/Patient.rs",
            false,
            false,
            None,
        ),
    ] {
        let (status, body, raw) = recording(text);
        assert_eq!(status, 200, "{name}");
        let t = parse(status, &body).unwrap();
        assert_eq!(
            t.access_token.secret(),
            raw["access_token"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(t.scope.as_deref(), Some(scope), "{name}");
        assert_eq!(t.refresh_token.is_some(), has_refresh, "{name}");
        assert_eq!(t.id_token.is_some(), has_id, "{name}");
        assert_eq!(t.context.patient.as_deref(), patient, "{name}");
        let lifetime = raw["expires_in"].as_u64().unwrap();
        assert_eq!(t.expires_at, Some(NOW.plus_secs(lifetime)), "{name}");
        assert!(t.warnings.is_empty(), "{name}: {:?}", t.warnings);
        if patient.is_some() {
            assert_eq!(
                t.context.encounter.as_deref(),
                Some("stub-encounter-1"),
                "{name}"
            );
            assert_eq!(t.context.need_patient_banner, Some(true), "{name}");
            assert_eq!(
                t.context.smart_style_url.as_deref(),
                Some("http://127.0.0.1:8445/smart-style.json")
            );
        }
        // Storage round trip.
        let back: TokenResponse =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t, "{name}");
    }
    let (_, body, _) = recording(include_str!("fixtures/real-server/bs-token-es384.json"));
    assert_eq!(ok(&body).expires_in, Some(600));
}

#[test]
fn real_server_error_responses() {
    for (text, error, desc_start) in [
        (
            include_str!("fixtures/real-server/app-err-bad-code.json"),
            "invalid_client",
            "Invalid token (supplied as code",
        ),
        (
            include_str!("fixtures/real-server/app-err-pkce-mismatch.json"),
            "invalid_grant",
            "Invalid grant or Invalid PKCE",
        ),
        (
            include_str!("fixtures/real-server/bs-err-wrong-aud.json"),
            "invalid_client",
            "Invalid token 'aud' value",
        ),
        (
            include_str!("fixtures/real-server/bs-err-expired.json"),
            "invalid_client",
            "Invalid token. jwt expired",
        ),
    ] {
        let (status, body, raw) = recording(text);
        assert_eq!(status, 401);
        match parse(status, &body).unwrap_err() {
            Error::OAuth(e) => {
                assert_eq!(e.status, Some(401));
                assert_eq!(e.error, error);
                let d = e.error_description.as_deref().unwrap();
                assert!(d.starts_with(desc_start), "{d}");
                // Server text is kept, cut at 1024 characters.
                let full: String = raw["error_description"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .take(1024)
                    .collect();
                assert_eq!(d, full);
                assert_eq!(e.error_uri, None);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_oauth_error(status, &body).unwrap().error, error);
    }
}

// ----- errors never leak body text ------------------------------------------------------------------

#[test]
fn error_display_never_contains_body_text() {
    let fake = "eyJFAKE.TOKEN.sig";
    let bodies: Vec<(u16, String)> = vec![
        (500, format!("<html>{fake}</html>")),
        (502, format!("{{\"access_token\":\"{fake}\"}}")),
        (
            200,
            format!(
                "{{\"access_token\":\"{fake}\",\"token_type\":\"Bearer\",\"expires_in\":\"{fake}\"}}"
            ),
        ),
        // A token with a character a Bearer header cannot carry is refused, not quoted.
        (200, format!("{{\"access_token\":\"{fake} x\"}}")),
        (
            200,
            format!("{{\"access_token\":\"{fake}\\r\\nX-Evil: 1\"}}"),
        ),
        (200, format!("{{\"access_token\":\"{fake}\"")),
        (200, format!("[\"{fake}\"]")),
        (200, format!("{{\"token\":\"{fake}\"}}")),
    ];
    for (status, body) in bodies {
        let e = parse(status, body.as_bytes()).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("FAKE"), "{shown}");
    }
    assert_eq!(
        parse(500, b"<html>eyJFAKE</html>").unwrap_err(),
        Error::Http {
            url: "https://ehr.example.org/oauth2/token".into(),
            status: 500
        }
    );
}

#[test]
fn debug_of_token_response_contains_no_token() {
    let body =
        br#"{"access_token":"AT-SECRET-1","token_type":"Bearer","refresh_token":"RT-SECRET-2",
        "id_token":"IDT-SECRET-3","scope":"openid","vendor_token":"VT-SECRET-4","patient":"p1"}"#;
    let t = ok(body);
    let d = format!("{t:?}");
    assert!(!d.contains("SECRET"), "{d}");
    assert!(d.contains("AccessToken([redacted])"));
    assert!(d.contains("vendor_token"));
    assert!(d.contains("p1"));
}

#[test]
fn missing_or_bad_access_token_is_a_parse_error() {
    for (body, field) in [
        (&br#"{"token_type":"Bearer"}"#[..], "access_token"),
        (
            br#"{"access_token":"","token_type":"Bearer"}"#,
            "access_token",
        ),
        (
            br#"{"access_token":7,"token_type":"Bearer"}"#,
            "access_token",
        ),
    ] {
        assert!(parse_error_message(parse(200, body).unwrap_err()).contains(field));
    }
    // Round 2 (N04 kind): a wrong-typed `token_type` is taken as Bearer, a wrong-typed
    // `id_token` dropped, each with a warning naming it.
    for (body, field) in [
        (&br#"{"access_token":"A","token_type":9}"#[..], "token_type"),
        (br#"{"access_token":"A","id_token":{}}"#, "id_token"),
    ] {
        let t = parse(200, body).unwrap();
        assert!(t.is_bearer());
        assert!(t.id_token.is_none());
        assert!(
            t.warnings
                .iter()
                .any(|w| w.starts_with(&format!("`{field}` is "))),
            "{:?}",
            t.warnings
        );
    }
}

#[test]
fn oauth_error_documents() {
    // 200 with an error document (no access_token) is an OAuth error too.
    match parse(200, br#"{"error":"invalid_scope"}"#).unwrap_err() {
        Error::OAuth(e) => assert_eq!((e.status, e.error.as_str()), (Some(200), "invalid_scope")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse_oauth_error(400, br#"{"error":"invalid_grant","error_description":"bad\u0007 code","error_uri":"https://e/x"}"#),
        Some(OAuthError {
            status: Some(400),
            error: "invalid_grant".into(),
            error_description: Some("bad code".into()),
            error_uri: Some("https://e/x".into()),
        })
    );
    assert_eq!(parse_oauth_error(400, b"<html>"), None);
    assert_eq!(parse_oauth_error(400, br#"{"error":""}"#), None);
    assert_eq!(parse_oauth_error(400, br#"{"error":5}"#), None);
    assert_eq!(
        parse_oauth_error(400, br#"{"error":"x","error_description":5}"#)
            .unwrap()
            .error_description,
        None
    );
    assert!(matches!(
        parse(401, br#"{"message":"nope"}"#),
        Err(Error::Http { status: 401, .. })
    ));
}

// ----- B13 -----------------------------------------------------------------------------------------

#[test]
fn b13_expires_in_string_missing_null_and_invalid() {
    let lines: Vec<&str> = include_str!("fixtures/cases/B13-expires-in-variants.jsonl")
        .lines()
        .collect();
    assert_eq!(lines.len(), 4);
    let t = ok(lines[0].as_bytes());
    assert_eq!(t.expires_in, Some(3600));
    assert_eq!(t.expires_at, Some(UnixTime::from_secs(1_700_003_600)));
    assert!(t.warnings.iter().any(|w| w.contains("expires_in")));
    for line in &lines[1..3] {
        let t = ok(line.as_bytes());
        assert_eq!(t.expires_in, None);
        assert_eq!(t.expires_at, None);
        assert!(
            !t.is_expired(UnixTime::from_secs(u64::MAX), 0),
            "unknown expiry is never expired"
        );
    }
    assert!(
        parse_error_message(parse(200, lines[3].as_bytes()).unwrap_err()).contains("expires_in")
    );
    let negative =
        br#"{"access_token":"A1","token_type":"Bearer","expires_in":-5,"scope":"openid"}"#;
    assert!(parse_error_message(parse(200, negative).unwrap_err()).contains("expires_in"));
    let float =
        br#"{"access_token":"A1","token_type":"Bearer","expires_in":300.0,"scope":"openid"}"#;
    assert_eq!(ok(float).expires_in, Some(300));
}

#[test]
fn is_expired_uses_skew() {
    let t =
        ok(br#"{"access_token":"A","token_type":"Bearer","expires_in":300,"scope":"system/*.rs"}"#);
    assert!(!t.is_expired(NOW, 0));
    assert!(!t.is_expired(NOW.plus_secs(269), 30));
    assert!(t.is_expired(NOW.plus_secs(270), 30));
    assert!(t.is_expired(NOW.plus_secs(300), 0));
}

// ----- B15 -----------------------------------------------------------------------------------------

#[test]
fn b15_scope_as_json_array() {
    let t = ok(include_bytes!("fixtures/cases/B15-scope-array.json"));
    assert_eq!(
        t.scope.as_deref(),
        Some("openid fhirUser launch/patient patient/Patient.read")
    );
    assert_eq!(
        t.granted_scopes(),
        [
            "openid",
            "fhirUser",
            "launch/patient",
            "patient/Patient.read"
        ]
    );
    assert!(
        t.warnings
            .iter()
            .any(|w| w == "`scope` is a JSON array; joined with spaces")
    );
    let stored = serde_json::to_value(&t).unwrap();
    assert_eq!(
        stored["scope"],
        json!("openid fhirUser launch/patient patient/Patient.read")
    );

    // Round 2 (N04 kind; reverses the round-1 error): a non-string item is dropped with a
    // warning naming `scope`; the string items are the granted scope.
    let t = parse(
        200,
        include_bytes!("fixtures/cases/B15-scope-array-bad.json"),
    )
    .unwrap();
    assert!(
        t.warnings
            .iter()
            .any(|w| w.starts_with("`scope` has 1 array item(s) that are not strings")),
        "{:?}",
        t.warnings
    );
}

// ----- B16 -----------------------------------------------------------------------------------------

#[test]
fn b16_granted_scope_differs_from_request() {
    let t = ok(include_bytes!("fixtures/cases/B16-scope-differs.json"));
    let granted = t.granted_scopes();
    assert_eq!(
        granted,
        [
            "launch/patient",
            "openid",
            "fhirUser",
            "patient/Observation.rs",
            "patient/Immunization.rs"
        ]
    );
    assert!(!t.has_scope("patient/Condition.rs"));
    assert!(t.has_scope("patient/Immunization.rs"));
    assert!(!t.has_scope("offline_access"));
    assert!(!t.scope_inferred);
    assert!(t.warnings.is_empty());
}

#[test]
fn b16_missing_scope_is_inferred_from_the_request_with_a_warning() {
    let requested =
        "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Condition.rs";
    let mut t = ok(include_bytes!("fixtures/cases/B16-no-scope.json"));
    assert_eq!(t.scope, None);
    assert!(t.granted_scopes().is_empty());
    assert!(t.warnings.iter().any(|w| w.contains("`scope` is absent")));
    t.infer_missing_scope(requested);
    assert!(t.scope_inferred);
    assert_eq!(t.scope.as_deref(), Some(requested));
    assert!(t.has_scope("patient/Condition.rs"));
}

// ----- B19 / REFR-04 -----------------------------------------------------------------------------

#[test]
fn b19_refresh_merge() {
    let stored = ok(br#"{"access_token":"A0","token_type":"Bearer","expires_in":3600,"refresh_token":"R1",
        "scope":"openid fhirUser launch online_access patient/*.rs","id_token":"I0","patient":"p1",
        "fhirContext":[{"reference":"Encounter/e1","role":"https://x/r"}],"need_patient_banner":true}"#);
    let later = |body: &[u8]| {
        parse_token_response(
            &HttpResponse::new(200, body.to_vec()),
            &token_url(),
            NOW.plus_secs(4000),
        )
        .unwrap()
    };

    // (a) no refresh_token, no expires_in, no scope, no context
    let m = stored.merge_refresh(later(br#"{"access_token":"A1","token_type":"bearer"}"#));
    assert_eq!(m.access_token.secret(), "A1");
    assert_eq!(m.refresh_token, Some(RefreshToken::new("R1")));
    assert_eq!(m.expires_in, None);
    assert_eq!(m.expires_at, None, "old lifetime must not be extended");
    assert_eq!(m.scope, stored.scope);
    assert!(m.scope_inferred);
    assert_eq!(m.id_token.as_ref().unwrap().secret(), "I0");
    assert_eq!(m.context.patient.as_deref(), Some("p1"));
    assert_eq!(m.context.fhir_context, stored.context.fhir_context);
    assert_eq!(m.context.need_patient_banner, Some(true));

    // (b) refresh_token null → keep R1
    let m = stored.merge_refresh(later(br#"{"access_token":"A1","token_type":"Bearer","refresh_token":null,"expires_in":60,"scope":"openid"}"#));
    assert_eq!(m.refresh_token.as_ref().unwrap().secret(), "R1");
    assert_eq!(m.expires_at, Some(NOW.plus_secs(4060)));
    assert_eq!(m.scope.as_deref(), Some("openid"));
    assert!(!m.scope_inferred);

    // (c) rotation → R2; new context wins
    let m = stored.merge_refresh(later(br#"{"access_token":"A2","token_type":"Bearer","refresh_token":"R2","expires_in":60,"scope":"openid","patient":"p2","id_token":"I2"}"#));
    assert_eq!(m.refresh_token.as_ref().unwrap().secret(), "R2");
    assert_eq!(m.context.patient.as_deref(), Some("p2"));
    assert_eq!(m.id_token.as_ref().unwrap().secret(), "I2");

    // (d) "" → keep R1, with a warning
    let new = later(br#"{"access_token":"A3","token_type":"Bearer","refresh_token":"","expires_in":60,"scope":"openid"}"#);
    assert!(new.refresh_token.is_none());
    assert!(new.warnings.iter().any(|w| w.contains("refresh_token")));
    let m = stored.merge_refresh(new);
    assert_eq!(m.refresh_token.as_ref().unwrap().secret(), "R1");
    assert!(m.warnings.iter().any(|w| w.contains("refresh_token")));

    // (e) 400 invalid_grant → OAuth error
    match parse(400, br#"{"error":"invalid_grant"}"#).unwrap_err() {
        Error::OAuth(e) => assert_eq!(e.error, "invalid_grant"),
        other => panic!("{other:?}"),
    }
}

// ----- B27 / CTX-01 --------------------------------------------------------------------------------

#[test]
fn b27_need_patient_banner_string_and_vendor_extras() {
    let t = ok(include_bytes!("fixtures/cases/B27-epic-style.json"));
    let c = &t.context;
    assert_eq!(c.need_patient_banner, Some(false));
    assert!(t.warnings.iter().any(|w| w.contains("need_patient_banner")));
    assert_eq!(c.patient.as_deref(), Some("eAbc.123"));
    assert_eq!(c.encounter.as_deref(), Some("eEnc9"));
    assert_eq!(c.tenant.as_deref(), Some("t-42"));
    assert_eq!(c.intent.as_deref(), Some("reconcile-medications"));
    assert_eq!(
        c.smart_style_url.as_deref(),
        Some("https://ehr.example.org/style/abc%3D.json")
    );
    for map in [&t.extra, &c.extensions] {
        assert_eq!(map.len(), 3);
        assert_eq!(map["location"], json!("eLoc1"));
        assert_eq!(map["loginDepartment"], json!("eDep7"));
        assert_eq!(map["__epic.dstu2.patient"], json!("T1.Zq"));
    }
    // persisted with the session
    let back: TokenResponse = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back.extra["__epic.dstu2.patient"], json!("T1.Zq"));
    assert_eq!(back, t);
}

#[test]
fn b27_need_patient_banner_variants() {
    let ctx = |v: Value| {
        let Value::Object(m) = json!({ "need_patient_banner": v }) else {
            unreachable!()
        };
        parse_launch_context(&m).unwrap()
    };
    assert_eq!(ctx(json!(true)).need_patient_banner, Some(true));
    assert!(ctx(json!(true)).warnings.is_empty());
    assert_eq!(ctx(json!("true")).need_patient_banner, Some(true));
    assert_eq!(ctx(json!("false")).need_patient_banner, Some(false));
    let other = ctx(json!("maybe"));
    assert_eq!(other.need_patient_banner, None);
    assert_eq!(other.warnings.len(), 1);
    assert_eq!(ctx(json!(1)).need_patient_banner, None);
}

#[test]
fn launch_context_extensions_and_shapes() {
    let Value::Object(m) = json!({
        "access_token": "A", "token_type": "Bearer", "scope": "launch", "state": "s",
        "patient": 123, "encounter": "e1",
        "https://ehr.example.org/props/dark-mode": true, "__darkMode": true,
        "intent": 5, "tenant": "2ddd6c3a-8e9a-44c6-a305-52111ad302a2"
    }) else {
        unreachable!()
    };
    let c = parse_launch_context(&m).unwrap();
    assert_eq!(c.patient.as_deref(), Some("123"));
    assert_eq!(c.intent, None); // unknown intent → default UI (CTX-03)
    assert_eq!(
        c.tenant.as_deref(),
        Some("2ddd6c3a-8e9a-44c6-a305-52111ad302a2")
    );
    assert_eq!(c.extensions.len(), 2);
    assert_eq!(
        c.extensions["https://ehr.example.org/props/dark-mode"],
        json!(true)
    );
    assert_eq!(c.extensions["__darkMode"], json!(true));
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);

    // Round 2 (N04 kind): a `patient` that cannot be an id is dropped with a warning.
    let Value::Object(bad) = json!({"patient": {"reference": "Patient/1"}}) else {
        unreachable!()
    };
    let c = parse_launch_context(&bad).unwrap();
    assert_eq!(c.patient, None);
    assert_eq!(
        c.warnings,
        ["`patient` is an object, not a string id; ignored"]
    );
    assert!(LaunchContext::default().is_empty());
}

#[test]
fn fuzz_entry_points_tolerate_deep_nesting() {
    // 126 nested arrays parse on the wire; the storage form nests them deeper.
    let deep = format!(
        r#"{{"access_token":"A","x":{}{}}}"#,
        "[".repeat(126),
        "]".repeat(126)
    );
    smart_core::fuzzing::token_response(deep.as_bytes());
    smart_core::fuzzing::launch_context(deep.as_bytes());
    let t = ok(deep.as_bytes());
    assert!(t.extra.contains_key("x"));
}

#[test]
fn fuzz_regression_float_round_trip() {
    // Found by cargo-fuzz: serde_json may re-read a printed f64 one ulp off.
    let data = br#"{"n%ed_pane?d_patientf_abn": -2111111111110.1111111110e0, "nant": null}"#;
    smart_core::fuzzing::launch_context(data);
    smart_core::fuzzing::token_response(data);
}

#[test]
fn resp_01_wire_json_round_trips_through_the_parser() {
    let body = serde_json::json!({
        "access_token": "a1", "token_type": "bearer", "expires_in": 3600, "scope": "launch openid patient/*.rs",
        "refresh_token": "r1", "patient": "123", "encounter": "e1",
        "fhirContext": [{"reference": "DiagnosticReport/7", "role": "https://example.org/r"}],
        "need_patient_banner": false, "smart_style_url": "https://ehr/style.json", "tenant": "t1",
        "__vendor": {"x": 1}
    });
    let now = smart_core::UnixTime::from_secs(1_700_000_000);
    let url = url::Url::parse("https://ehr.example.org/token").unwrap();
    let t = smart_core::token::parse_token_response(
        &smart_core::HttpResponse::new(200, body.to_string()),
        &url,
        now,
    )
    .unwrap();
    let wire = serde_json::Value::Object(t.to_wire_json());
    assert_eq!(
        wire, body,
        "the wire form is the response as the server sent it"
    );
}
