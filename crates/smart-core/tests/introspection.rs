//! Token introspection (RFC 7662; SMART "Token Introspection", INTRO-01) and revocation
//! (RFC 7009): exact requests for each client type and for bearer authentication, the IG's
//! introspection examples (ig-vectors.md §10, 2.0.0 and 2.1.0+ forms), inactive tokens,
//! error statuses, and that no token reaches `Debug` or an error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use smart_core::assertion::CLIENT_ASSERTION_TYPE;
use smart_core::client_auth::ClientAuth;
use smart_core::entropy::DeterministicEntropy;
use smart_core::error::{Document, OAuthError};
use smart_core::introspection::{
    Introspection, IntrospectionAuth, TokenTypeHint, introspect, introspection_request,
    parse_introspection_response, parse_revocation_response, revocation_request,
};
use smart_core::jwk::SigningKey;
use smart_core::secret::{AccessToken, ClientSecret};
use smart_core::{Error, Flow, HttpRequest, HttpResponse, Method, UnixTime};
use std::sync::Arc;
use url::Url;

const IG_ES384_PRIVATE: &str = include_str!("fixtures/ig/ES384.private.json");
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
/// The token of the IG's introspection request example (ig-vectors.md §10).
const IG_TOKEN: &str = "2YotnFZFEjr1zCsicMWpAA";

fn endpoint() -> Url {
    Url::parse("https://server.example.com/introspect").unwrap()
}

fn revoke_url() -> Url {
    Url::parse("https://server.example.com/revoke").unwrap()
}

fn body(r: &HttpRequest) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

fn claims_of(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn asymmetric() -> ClientAuth {
    ClientAuth::asymmetric(
        "c-123",
        Arc::new(SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap()),
    )
}

fn introspect_req(
    token: &str,
    hint: Option<TokenTypeHint>,
    auth: IntrospectionAuth,
) -> HttpRequest {
    introspection_request(
        endpoint(),
        token,
        hint,
        &auth,
        false,
        NOW,
        &DeterministicEntropy::new(3),
    )
    .unwrap()
}

fn assert_form_post(r: &HttpRequest, url: &Url) {
    assert_eq!(r.method, Method::Post);
    assert_eq!(&r.url, url);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.header("accept"), Some("application/json"));
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[test]
fn intro01_ig_bearer_request_exact() {
    // ig-vectors.md §10: `Authorization: Bearer 23410913-abewfq.123483`, body `token=…`.
    let bearer = AccessToken::new("23410913-abewfq.123483");
    let r = introspect_req(IG_TOKEN, None, IntrospectionAuth::Bearer(bearer.clone()));
    assert_form_post(&r, &endpoint());
    assert_eq!(body(&r), "token=2YotnFZFEjr1zCsicMWpAA");
    assert_eq!(
        r.header("authorization"),
        Some("Bearer 23410913-abewfq.123483")
    );
    assert_eq!(r.headers.len(), 3, "{:?}", r.headers);
    assert!(r.form_fields().iter().all(|(k, _)| k == "token"));
}

#[test]
fn public_client_sends_client_id_in_body() {
    let auth = ClientAuth::public("my-app");
    let r = introspect_req(
        IG_TOKEN,
        Some(TokenTypeHint::AccessToken),
        IntrospectionAuth::Client(auth.clone()),
    );
    assert_form_post(&r, &endpoint());
    assert_eq!(
        body(&r),
        "token=2YotnFZFEjr1zCsicMWpAA&token_type_hint=access_token&client_id=my-app"
    );
    assert_eq!(r.header("authorization"), None);
}

#[test]
fn symmetric_client_uses_basic_only() {
    let auth = ClientAuth::symmetric("my-app", ClientSecret::new("my-app-secret-123"));
    let r = introspect_req(IG_TOKEN, None, IntrospectionAuth::Client(auth.clone()));
    assert_form_post(&r, &endpoint());
    assert_eq!(body(&r), "token=2YotnFZFEjr1zCsicMWpAA");
    // The IG's SYM-01 vector: base64("my-app:my-app-secret-123").
    assert_eq!(
        r.header("authorization"),
        Some("Basic bXktYXBwOm15LWFwcC1zZWNyZXQtMTIz")
    );
}

#[test]
fn asymmetric_client_sends_fresh_assertion_for_the_endpoint() {
    let auth = asymmetric();
    let r = introspect_req(
        "t/o k+en",
        Some(TokenTypeHint::RefreshToken),
        IntrospectionAuth::Client(auth.clone()),
    );
    assert_form_post(&r, &endpoint());
    assert_eq!(r.header("authorization"), None);
    let fields = r.form_fields();
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "token",
            "token_type_hint",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(fields[0].1, "t/o k+en");
    assert!(body(&r).starts_with("token=t%2Fo%20k%2Ben&token_type_hint=refresh_token&"));
    assert_eq!(fields[1].1, "refresh_token");
    assert_eq!(fields[2].1, CLIENT_ASSERTION_TYPE);
    let claims = claims_of(&fields[3].1);
    assert_eq!(claims["iss"], "c-123");
    assert_eq!(claims["sub"], "c-123");
    assert_eq!(claims["aud"], "https://server.example.com/introspect");
    assert_eq!(claims["exp"], 1_700_000_240);
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() >= 43),
        "{claims}"
    );
}

#[test]
fn revocation_requests_for_the_three_client_types() {
    let e = DeterministicEntropy::new(9);
    let public = ClientAuth::public("my-app");
    let r = revocation_request(
        revoke_url(),
        "rt-1",
        Some(TokenTypeHint::RefreshToken),
        &public,
        false,
        NOW,
        &e,
    )
    .unwrap();
    assert_form_post(&r, &revoke_url());
    assert_eq!(
        body(&r),
        "token=rt-1&token_type_hint=refresh_token&client_id=my-app"
    );
    assert_eq!(r.header("authorization"), None);

    let sym = ClientAuth::symmetric("my-app", ClientSecret::new("my-app-secret-123"));
    let r = revocation_request(revoke_url(), "at-1", None, &sym, false, NOW, &e).unwrap();
    assert_eq!(body(&r), "token=at-1");
    assert_eq!(
        r.header("authorization"),
        Some("Basic bXktYXBwOm15LWFwcC1zZWNyZXQtMTIz")
    );

    let asym = asymmetric();
    let r = revocation_request(
        revoke_url(),
        "at-1",
        Some(TokenTypeHint::AccessToken),
        &asym,
        false,
        NOW,
        &e,
    )
    .unwrap();
    let fields = r.form_fields();
    assert_eq!(fields[0], ("token".into(), "at-1".into()));
    assert_eq!(fields[1], ("token_type_hint".into(), "access_token".into()));
    assert_eq!(fields[2].1, CLIENT_ASSERTION_TYPE);
    assert_eq!(
        claims_of(&fields[3].1)["aud"],
        "https://server.example.com/revoke"
    );
    assert_eq!(fields.len(), 4, "no client_id for private_key_jwt");
}

#[test]
fn insecure_endpoints_and_empty_tokens_are_refused() {
    let auth = ClientAuth::public("a");
    let e = DeterministicEntropy::new(1);
    let http = Url::parse("http://ehr.example.org/introspect").unwrap();
    let err = introspection_request(
        &http,
        "tok",
        None,
        &IntrospectionAuth::Client(auth.clone()),
        false,
        NOW,
        &e,
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::InsecureUrl {
            url: "http://ehr.example.org/introspect".into()
        }
    );
    let bearer = AccessToken::new("b");
    assert!(matches!(
        introspection_request(
            &http,
            "tok",
            None,
            &IntrospectionAuth::Bearer(bearer.clone()),
            false,
            NOW,
            &e
        ),
        Err(Error::InsecureUrl { .. })
    ));
    assert!(matches!(
        revocation_request(&http, "tok", None, &auth, false, NOW, &e),
        Err(Error::InsecureUrl { .. })
    ));
    // Opt-in and loopback are allowed.
    assert!(revocation_request(&http, "tok", None, &auth, true, NOW, &e).is_ok());
    let lo = Url::parse("http://127.0.0.1:4010/token/introspection").unwrap();
    assert!(
        introspection_request(
            &lo,
            "tok",
            None,
            &IntrospectionAuth::Client(auth.clone()),
            false,
            NOW,
            &e
        )
        .is_ok()
    );
    let userinfo = Url::parse("https://u:pw@ehr.example.org/revoke").unwrap();
    assert_eq!(
        revocation_request(&userinfo, "tok", None, &auth, true, NOW, &e).unwrap_err(),
        Error::InsecureUrl {
            url: "https://ehr.example.org/revoke".into()
        }
    );
    assert!(matches!(
        revocation_request(revoke_url(), "", None, &auth, false, NOW, &e),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        introspection_request(
            endpoint(),
            "tok",
            None,
            &IntrospectionAuth::Bearer(AccessToken::new("").clone()),
            false,
            NOW,
            &e
        ),
        Err(Error::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// ig-vectors.md §10's response, fixed: the trailing comma after `exp` removed.
fn ig_response(patient: &str) -> String {
    format!(
        r#"{{
 "active": true,
 "client_id": "07a89bd2-52ce-4576-8b85-71698efa8328",
 "scope": "patient/*.read openid fhirUser",
 "sub": "c91dfe96-731d-4e66-b4f9-01f8f8a4b7b2",
 "patient": "{patient}",
 "fhirUser": "https://ehr.example.org/fhir/Patient/123",
 "exp": 1597678964
}}"#
    )
}

#[test]
fn ig_example_as_published_is_invalid_json() {
    let published = ig_response("456").replace("1597678964\n", "1597678964,\n");
    let err =
        parse_introspection_response(&HttpResponse::new(200, published), &endpoint()).unwrap_err();
    assert!(
        matches!(&err, Error::Parse(p) if p.document == Document::Introspection),
        "{err:?}"
    );
}

#[test]
fn ig_example_2_1_bare_patient_id() {
    let i = parse_introspection_response(&HttpResponse::new(200, ig_response("456")), &endpoint())
        .unwrap();
    assert!(i.active);
    assert_eq!(
        i.client_id.as_deref(),
        Some("07a89bd2-52ce-4576-8b85-71698efa8328")
    );
    assert_eq!(i.scope.as_deref(), Some("patient/*.read openid fhirUser"));
    assert!(i.has_scope("patient/*.read"));
    assert!(!i.has_scope("patient/*.rs"));
    assert_eq!(
        i.sub.as_deref(),
        Some("c91dfe96-731d-4e66-b4f9-01f8f8a4b7b2")
    );
    assert_eq!(i.patient.as_deref(), Some("456"));
    assert_eq!(i.patient_id(), Some("456"));
    assert_eq!(
        i.fhir_user.as_ref().map(smart_core::FhirUser::as_str),
        Some("https://ehr.example.org/fhir/Patient/123")
    );
    assert_eq!(i.exp, Some(UnixTime::from_secs(1_597_678_964)));
    // `exp` is checked with INTROSPECTION_LEEWAY_SECS (60 s) of clock difference.
    assert_eq!(smart_core::introspection::INTROSPECTION_LEEWAY_SECS, 60);
    assert!(i.is_active_at(UnixTime::from_secs(1_597_678_963)));
    assert!(i.is_active_at(UnixTime::from_secs(1_597_678_964 + 59)));
    assert!(!i.is_active_at(UnixTime::from_secs(1_597_678_964 + 60)));
    assert_eq!(i.encounter, None);
    assert!(i.extra.is_empty(), "{:?}", i.extra);
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn ig_example_2_0_patient_reference_is_kept_and_stripped() {
    let i = parse_introspection_response(
        &HttpResponse::new(200, ig_response("Patient/456")),
        &endpoint(),
    )
    .unwrap();
    // Round 2 (B29 kind): one `Patient/` prefix is removed, with a warning.
    assert_eq!(i.patient.as_deref(), Some("456"));
    assert_eq!(i.patient_id(), Some("456"));
    assert!(
        i.warnings.iter().any(|w| w.starts_with("`patient`")),
        "{:?}",
        i.warnings
    );
}

#[test]
fn full_response_with_sandbox_shape_and_extras() {
    let json = r#"{"active":true,"client_id":"app-1","exp":1700003600,"iat":1700000000,"nbf":1700000000,
        "iss":"http://127.0.0.1:4010","aud":["http://127.0.0.1:4010/fhir","x"],"scope":["patient/*.rs","openid"],
        "token_type":"Bearer","username":"jdoe","jti":"j-1","patient":123,"encounter":"enc-1",
        "fhirUser":"Practitioner/smart-Practitioner-1",
        "fhirContext":[{"reference":"DiagnosticReport/dr-1"},"List/7",{"role":"x"}],
        "intent":"reconcile-medications","need_patient_banner":true}"#;
    let i = parse_introspection_response(&HttpResponse::new(200, json), &endpoint()).unwrap();
    assert_eq!(i.client_id.as_deref(), Some("app-1"));
    assert_eq!(i.exp, Some(UnixTime::from_secs(1_700_003_600)));
    assert_eq!(i.iat, Some(UnixTime::from_secs(1_700_000_000)));
    assert_eq!(i.nbf, Some(UnixTime::from_secs(1_700_000_000)));
    assert_eq!(i.iss.as_deref(), Some("http://127.0.0.1:4010"));
    assert_eq!(
        i.aud,
        Some(serde_json::json!(["http://127.0.0.1:4010/fhir", "x"]))
    );
    assert_eq!(i.scope.as_deref(), Some("patient/*.rs openid"));
    assert_eq!(i.token_type.as_deref(), Some("Bearer"));
    assert_eq!(i.username.as_deref(), Some("jdoe"));
    assert_eq!(i.jti.as_deref(), Some("j-1"));
    assert_eq!(i.patient_id(), Some("123"), "numeric id converted");
    assert_eq!(i.encounter.as_deref(), Some("enc-1"));
    assert_eq!(
        i.fhir_user.as_ref().map(smart_core::FhirUser::as_str),
        Some("Practitioner/smart-Practitioner-1")
    );
    let refs: Vec<_> = i
        .fhir_context
        .iter()
        .map(|c| c.reference.as_deref())
        .collect();
    assert_eq!(refs, [Some("DiagnosticReport/dr-1"), Some("List/7")]);
    assert_eq!(
        i.extra.keys().collect::<Vec<_>>(),
        ["intent", "need_patient_banner"]
    );
    assert_eq!(i.extra["intent"], "reconcile-medications");
    assert_eq!(i.warnings.len(), 2, "{:?}", i.warnings); // numeric patient, dropped item
}

#[test]
fn inactive_token_trusts_nothing_else() {
    for json in [
        r#"{"active":false}"#,
        r#"{"active":false,"client_id":"evil","scope":"user/*.*","patient":"999","exp":"bad"}"#,
    ] {
        let i = parse_introspection_response(&HttpResponse::new(200, json), &endpoint()).unwrap();
        assert!(!i.active);
        assert_eq!(i, Introspection::default(), "{json}");
        assert_eq!(i.patient_id(), None);
        assert!(!i.is_active_at(NOW));
    }
}

#[test]
fn malformed_answers_are_parse_errors() {
    for json in [
        r#"{}"#,
        r#"{"active":1}"#,
        r#"[true]"#,
        "<html>ok</html>",
        r#"{"active":true,"exp":-1}"#,
        r#"{"active":true,"exp":"soon"}"#,
        r#"{"active":true,"nbf":[1]}"#,
        r#"{"active":"yes"}"#,
    ] {
        let err =
            parse_introspection_response(&HttpResponse::new(200, json), &endpoint()).unwrap_err();
        assert!(
            matches!(&err, Error::Parse(p) if p.document == Document::Introspection),
            "{json}: {err:?}"
        );
    }
    // Round 2 (N04 kind): wrong-typed optional members are dropped with a warning naming
    // them; a numeric-string time is read.
    for (json, field) in [
        (r#"{"active":true,"scope":7}"#, "scope"),
        (r#"{"active":true,"client_id":{}}"#, "client_id"),
        (r#"{"active":true,"aud":5}"#, "aud"),
        (r#"{"active":true,"iat":"x"}"#, "iat"),
        (r#"{"active":true,"patient":{"id":"1"}}"#, "patient"),
    ] {
        let i = parse_introspection_response(&HttpResponse::new(200, json), &endpoint()).unwrap();
        assert!(i.active);
        assert!(
            i.warnings
                .iter()
                .any(|w| w.starts_with(&format!("`{field}`"))),
            "{json}: {:?}",
            i.warnings
        );
    }
    let i = parse_introspection_response(
        &HttpResponse::new(200, r#"{"active":true,"exp":"1700000000.9"}"#),
        &endpoint(),
    )
    .unwrap();
    assert_eq!(i.exp, Some(UnixTime::from_secs(1_700_000_000)));
    // `"active":"true"` is read as true with a warning.
    let i =
        parse_introspection_response(&HttpResponse::new(200, r#"{"active":"true"}"#), &endpoint())
            .unwrap();
    assert!(i.active);
    assert_eq!(
        i.warnings,
        ["`active` is the string \"true\"; read as true"]
    );
}

#[test]
fn error_statuses() {
    let e = parse_introspection_response(
        &HttpResponse::new(
            401,
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
        ),
        &endpoint(),
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::OAuth(OAuthError {
            status: Some(401),
            error: "invalid_client".into(),
            error_description: Some("client authentication failed".into()),
            error_uri: None,
        })
    );
    let e = parse_introspection_response(&HttpResponse::new(500, "<h1>oops</h1>"), &endpoint())
        .unwrap_err();
    assert_eq!(
        e,
        Error::Http {
            url: "https://server.example.com/introspect".into(),
            status: 500
        }
    );

    // Revocation: 200 (also for invalid tokens, RFC 7009 §2.2) with any body is Ok.
    assert_eq!(
        parse_revocation_response(&HttpResponse::new(200, ""), &revoke_url()),
        Ok(())
    );
    assert_eq!(
        parse_revocation_response(&HttpResponse::new(200, "{}"), &revoke_url()),
        Ok(())
    );
    let e = parse_revocation_response(
        &HttpResponse::new(400, r#"{"error":"unsupported_token_type"}"#),
        &revoke_url(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "unsupported_token_type" && o.status == Some(400)),
        "{e:?}"
    );
    let e = parse_revocation_response(
        &HttpResponse::new(503, r#"{"error":"temporarily_unavailable"}"#),
        &revoke_url(),
    )
    .unwrap_err();
    assert!(matches!(&e, Error::OAuth(o) if o.status == Some(503)));
    assert_eq!(
        parse_revocation_response(&HttpResponse::new(404, ""), &revoke_url()),
        Err(Error::Http {
            url: "https://server.example.com/revoke".into(),
            status: 404
        })
    );
}

#[test]
fn no_token_in_debug_or_errors() {
    let token = "eyJsecret-introspected-token-value";
    let bearer = AccessToken::new("bearer-secret-value-1234");
    let sym = ClientAuth::symmetric("app", ClientSecret::new("client-secret-value-99"));
    for auth in [
        IntrospectionAuth::Bearer(bearer.clone()),
        IntrospectionAuth::Client(sym.clone()),
    ] {
        let r = introspect_req(token, Some(TokenTypeHint::AccessToken), auth.clone());
        let d = format!("{r:?} {auth:?}");
        for s in [token, "bearer-secret", "client-secret-value", "Y2xpZW50"] {
            assert!(!d.contains(s), "{s} in {d}");
        }
        // A server echoing the request values in its error texts: the flow scrubs them.
        let echo = format!(
            r#"{{"error":"invalid_request","error_description":"bad token {token} from {} / {}"}}"#,
            bearer.secret(),
            "client-secret-value-99"
        );
        let mut flow = introspect(
            endpoint(),
            AccessToken::new(token),
            Some(TokenTypeHint::AccessToken),
            auth.clone(),
            false,
            Arc::new(DeterministicEntropy::new(3)),
        );
        let smart_core::Action::Send(_) = flow.poll(NOW).unwrap() else {
            panic!("expected a request")
        };
        let e = flow
            .handle_response(HttpResponse::new(400, echo), NOW)
            .unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(token), "{shown}");
        match auth {
            IntrospectionAuth::Bearer(_) => assert!(!shown.contains("bearer-secret"), "{shown}"),
            _ => assert!(!shown.contains("client-secret-value"), "{shown}"),
        }
        assert!(shown.contains("[redacted]"), "{shown}");
    }
    // Parse errors never quote values (serde messages may echo strings).
    let e = parse_introspection_response(
        &HttpResponse::new(200, format!(r#"{{"active":true,"exp":"{token}"}}"#)),
        &endpoint(),
    )
    .unwrap_err();
    assert!(!format!("{e} {e:?}").contains(token));
    let e = parse_introspection_response(
        &HttpResponse::new(200, format!(r#"{{"active":true,"{token}""#)),
        &endpoint(),
    )
    .unwrap_err();
    assert!(!format!("{e} {e:?}").contains(token));
    // Debug of a parsed answer shows extra names only.
    let i = parse_introspection_response(
        &HttpResponse::new(200, format!(r#"{{"active":true,"vendor_x":"{token}"}}"#)),
        &endpoint(),
    )
    .unwrap();
    let d = format!("{i:?}");
    assert!(d.contains("vendor_x") && !d.contains(token), "{d}");
}
