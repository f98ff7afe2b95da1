//! Round 2 of the real-world fault cases (`/work/shared/cases/README.md`, "Round 2"): each
//! case with its exact expected value, plus other inputs of the same kind.
//!
//! Kinds: tolerant parsing (N02, N04, N05, B29 `patient`), URLs (B02, N11, N01), time (clamped
//! lifetimes, introspection leeway), encoding of values passed on (B07, N06, access-token
//! syntax), errors and changes that tell what happened (N08, B18).

mod common;

use common::{T0, entropy, es384_key, form, jwt_part, ready, send};

use serde_json::json;
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::client_auth::{BasicEncoding, ClientAuth, basic_authorization};
use smart_core::context::parse_launch_context;
use smart_core::discovery::{
    Discovery, WarningKind, parse_capability_statement, parse_smart_configuration,
};
use smart_core::error::{CallbackError, Document, OAuthError};
use smart_core::introspection::parse_introspection_response;
use smart_core::launch::{
    AppConfig, EhrLaunch, Launch, PendingAuthorization, PendingAuthorizations, authorize,
};
use smart_core::secret::{ClientSecret, CsrfToken, PkceCodeVerifier};
use smart_core::token::{MAX_LIFETIME_SECS, TokenResponse, parse_token_response};
use smart_core::{ClientId, Endpoint, Error, FhirBaseUrl, Flow, HttpResponse, UnixTime};
use url::Url;

fn base(s: &str) -> FhirBaseUrl {
    FhirBaseUrl::new(s).unwrap()
}

fn wk(b: &FhirBaseUrl) -> Url {
    b.well_known()
}

fn token_url() -> Url {
    Url::parse("https://ehr.example.org/token").unwrap()
}

fn token(body: impl Into<Vec<u8>>) -> Result<TokenResponse, Error> {
    parse_token_response(&HttpResponse::new(200, body.into()), &token_url(), T0)
}

fn has_warning(warnings: &[String], prefix: &str) -> bool {
    warnings.iter().any(|w| w.starts_with(prefix))
}

// ----- B02: relative endpoint URLs ----------------------------------------------------------

#[test]
fn b02_relative_endpoints_resolve_against_the_base_as_given() {
    let b = base("https://ehr.example.org/fhir/r4");
    let body = br#"{
      "authorization_endpoint": "/oauth2/authorize",
      "token_endpoint": "auth/token",
      "grant_types_supported": ["authorization_code"],
      "code_challenge_methods_supported": ["S256"],
      "capabilities": ["launch-ehr", "client-public"]
    }"#;
    let d = parse_smart_configuration(body, &b, &wk(&b)).unwrap();
    assert_eq!(
        d.config.authorization_endpoint.as_ref().unwrap().as_str(),
        "https://ehr.example.org/oauth2/authorize"
    );
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "https://ehr.example.org/fhir/auth/token"
    );
    assert_eq!(
        d.config.token_endpoint.url().as_str(),
        "https://ehr.example.org/fhir/auth/token"
    );
    let resolved: Vec<_> = d
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::RelativeUrlResolved)
        .map(|w| w.field.as_str())
        .collect();
    assert_eq!(resolved, ["token_endpoint", "authorization_endpoint"]);
}

#[test]
fn b02_kind_other_relative_forms_and_absolute_values_untouched() {
    let b = base("https://ehr.example.org/fhir/r4");
    for (reference, want) in [
        ("auth/token", "https://ehr.example.org/fhir/auth/token"),
        ("./token", "https://ehr.example.org/fhir/token"),
        ("../token", "https://ehr.example.org/token"),
        ("//auth.example.org/t", "https://auth.example.org/t"),
        ("?op=token", "https://ehr.example.org/fhir/r4?op=token"),
        ("r4/token", "https://ehr.example.org/fhir/r4/token"),
    ] {
        let body = json!({ "token_endpoint": reference }).to_string();
        let d = parse_smart_configuration(body.as_bytes(), &b, &wk(&b)).unwrap();
        assert_eq!(d.config.token_endpoint.as_str(), want, "{reference}");
    }
    // A base given with a trailing slash is a directory: nothing is replaced.
    let slash = base("https://ehr.example.org/fhir/r4/");
    let d = parse_smart_configuration(br#"{"token_endpoint":"auth/token"}"#, &slash, &wk(&slash))
        .unwrap();
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "https://ehr.example.org/fhir/r4/auth/token"
    );
    // Absolute values are used untouched, with no "resolved" warning.
    let d = parse_smart_configuration(
        br#"{"token_endpoint":"https://AUTH.example.org:443/t"}"#,
        &b,
        &wk(&b),
    )
    .unwrap();
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "https://AUTH.example.org:443/t"
    );
    assert!(
        !d.warnings
            .iter()
            .any(|w| w.kind == WarningKind::RelativeUrlResolved)
    );
    // The CapabilityStatement fallback resolves the same way.
    let cs = json!({"resourceType": "CapabilityStatement", "rest": [{"security": {"extension": [{
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [{"url": "token", "valueUri": "auth/token"}]}]}}]})
    .to_string();
    let d = parse_capability_statement(cs.as_bytes(), &b, &b.append("metadata").unwrap()).unwrap();
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "https://ehr.example.org/fhir/auth/token"
    );
}

// ----- N11: explicit default port in the advertised token endpoint ---------------------------

const N11: &str = r#"{"token_endpoint":"https://ehr.example.org:443/oauth2/token","authorization_endpoint":"https://ehr.example.org:443/oauth2/authorize","grant_types_supported":["client_credentials","authorization_code"],"code_challenge_methods_supported":["S256"],"token_endpoint_auth_methods_supported":["private_key_jwt"],"capabilities":["client-confidential-asymmetric","launch-standalone"]}"#;

#[test]
fn n11_assertion_aud_is_the_advertised_token_endpoint_byte_for_byte() {
    let b = base("https://ehr.example.org/fhir");
    let d = parse_smart_configuration(N11.as_bytes(), &b, &wk(&b)).unwrap();
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "https://ehr.example.org:443/oauth2/token"
    );
    // The request goes to the parsed URL; the claim carries the advertised text.
    let config = BackendServicesConfig::new(ClientId::new("c1"), "system/Patient.rs", es384_key())
        .with_smart_configuration(d.config.clone());
    let mut flow = BackendServices::new(config, entropy(3)).unwrap();
    let req = send(flow.poll(T0).unwrap());
    assert_eq!(req.url.as_str(), "https://ehr.example.org/oauth2/token");
    let jwt = form(&req, "client_assertion").unwrap();
    assert_eq!(
        jwt_part(&jwt, 1)["aud"],
        json!("https://ehr.example.org:443/oauth2/token")
    );

    // The same through discovery inside the flow.
    let config = BackendServicesConfig::new(ClientId::new("c1"), "system/Patient.rs", es384_key())
        .with_fhir_base(b.clone());
    let mut flow = BackendServices::new(config, entropy(4)).unwrap();
    let _ = send(flow.poll(T0).unwrap());
    flow.handle_response(HttpResponse::new(200, N11), T0)
        .unwrap();
    let req = send(flow.poll(T0).unwrap());
    let jwt = form(&req, "client_assertion").unwrap();
    assert_eq!(
        jwt_part(&jwt, 1)["aud"],
        json!("https://ehr.example.org:443/oauth2/token")
    );
}

#[test]
fn n11_kind_every_assertion_audience_keeps_the_advertised_text() {
    let auth = ClientAuth::asymmetric("c1", es384_key());
    let e = entropy(5);
    for advertised in [
        "https://ehr.example.org:443/oauth2/token",
        "https://EHR.example.org/oauth2/token",
        "https://ehr.example.org",
        "https://ehr.example.org/a/./b/../token",
    ] {
        let endpoint = Endpoint::parse(advertised).unwrap();
        let (mut fields, mut headers) = (Vec::new(), Vec::new());
        auth.apply(&mut fields, &mut headers, &endpoint, T0, e.as_ref())
            .unwrap();
        let jwt = &fields
            .iter()
            .find(|(k, _)| k == "client_assertion")
            .unwrap()
            .1;
        assert_eq!(jwt_part(jwt, 1)["aud"], json!(advertised), "{advertised}");
        assert_ne!(endpoint.url().as_str(), advertised, "url normalises");
    }
    // Introspection and revocation requests take the endpoint the same way.
    let endpoint = Endpoint::parse("https://ehr.example.org:443/introspect").unwrap();
    let req = smart_core::introspection::introspection_request(
        &endpoint,
        "tok",
        None,
        &smart_core::introspection::IntrospectionAuth::Client(auth.clone()),
        false,
        T0,
        e.as_ref(),
    )
    .unwrap();
    assert_eq!(req.url.as_str(), "https://ehr.example.org/introspect");
    let jwt = form(&req, "client_assertion").unwrap();
    assert_eq!(
        jwt_part(&jwt, 1)["aud"],
        json!("https://ehr.example.org:443/introspect")
    );
    // The stored form of a configuration keeps the text.
    let b = base("https://ehr.example.org/fhir");
    let d = parse_smart_configuration(N11.as_bytes(), &b, &wk(&b)).unwrap();
    let stored = serde_json::to_value(&d.config).unwrap();
    assert_eq!(
        stored["token_endpoint"],
        json!("https://ehr.example.org:443/oauth2/token")
    );
    let back: smart_core::discovery::SmartConfiguration = serde_json::from_value(stored).unwrap();
    assert_eq!(back, d.config);
}

#[test]
fn n11_kind_a_restored_sessions_refresh_keeps_the_advertised_audience() {
    // A session saved to a token store and restored (another process, a restart) refreshes
    // with the advertised token endpoint text as the assertion's `aud`, as the live session
    // did: the stored entry keeps the text, not the normalised URL.
    let advertised = "https://ehr.example.org:443/oauth2/token";
    let token = parse_token_response(
        &HttpResponse::new(
            200,
            r#"{"access_token":"A1","token_type":"Bearer","expires_in":3600,"refresh_token":"R1","scope":"openid patient/*.rs"}"#,
        ),
        &token_url(),
        T0,
    )
    .unwrap();
    let stored = smart_core::store::StoredToken {
        fhir_base: Some(base("https://ehr.example.org/fhir")),
        token_endpoint: Endpoint::parse(advertised).unwrap(),
        client_id: ClientId::new("c1"),
        token,
    };
    let json = serde_json::to_value(&stored).unwrap();
    assert_eq!(json["token_endpoint"], json!(advertised));
    let back: smart_core::store::StoredToken = serde_json::from_value(json).unwrap();
    let app = smart_core::launch::AppConfig::new(
        ClientAuth::asymmetric("c1", es384_key()),
        "https://app.example.org/callback",
        "openid patient/*.rs",
    )
    .unwrap();
    let mut restored = smart_core::session::Session::from_stored(&app, back, T0).unwrap();
    let req = send(restored.poll(T0.plus_secs(4000)).unwrap());
    assert_eq!(req.url.as_str(), "https://ehr.example.org/oauth2/token");
    assert_eq!(form(&req, "refresh_token").as_deref(), Some("R1"));
    let jwt = form(&req, "client_assertion").unwrap();
    assert_eq!(jwt_part(&jwt, 1)["aud"], json!(advertised));
}

// ----- N01: discovery behind a redirect ------------------------------------------------------

fn redirect(status: u16, location: &str) -> HttpResponse {
    let mut r = HttpResponse::new(status, "");
    r.headers.push(("location".into(), location.into()));
    r
}

#[test]
fn n01_discovery_follows_redirects_and_resolves_against_the_fhir_base() {
    let b = base("https://ehr.example.org/fhir/R4/p1");
    let mut flow = Discovery::new(b);
    let req = send(flow.poll(T0).unwrap());
    assert_eq!(
        req.url.as_str(),
        "https://ehr.example.org/fhir/R4/p1/.well-known/smart-configuration"
    );
    flow.handle_response(
        redirect(
            302,
            "https://ehr.example.org/fhir/R4/.well-known/smart-configuration/index.php?practice=p1",
        ),
        T0,
    )
    .unwrap();
    let req = send(flow.poll(T0).unwrap());
    assert_eq!(
        req.url.as_str(),
        "https://ehr.example.org/fhir/R4/.well-known/smart-configuration/index.php?practice=p1"
    );
    flow.handle_response(
        HttpResponse::new(200, r#"{"token_endpoint":"token","capabilities":[]}"#),
        T0,
    )
    .unwrap();
    let d = ready(flow.poll(T0).unwrap());
    // Resolved against the FHIR base as given, not against the redirect target.
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "https://ehr.example.org/fhir/R4/token"
    );
    assert_eq!(
        d.url.as_str(),
        "https://ehr.example.org/fhir/R4/.well-known/smart-configuration/index.php?practice=p1"
    );
}

#[test]
fn n01_kind_metadata_relative_redirect_and_post_redirect_refused() {
    let b = base("https://ehr.example.org/fhir/R4/p1");
    let mut flow = Discovery::new(b);
    let _ = send(flow.poll(T0).unwrap());
    flow.handle_response(HttpResponse::new(404, "<html>"), T0)
        .unwrap();
    let req = send(flow.poll(T0).unwrap());
    assert_eq!(
        req.url.as_str(),
        "https://ehr.example.org/fhir/R4/p1/metadata"
    );
    flow.handle_response(redirect(303, "/fhir/R4/metadata?practice=p1"), T0)
        .unwrap();
    let req = send(flow.poll(T0).unwrap());
    assert_eq!(
        req.url.as_str(),
        "https://ehr.example.org/fhir/R4/metadata?practice=p1"
    );
    // A redirect to plain http is refused.
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir"));
    let _ = send(flow.poll(T0).unwrap());
    let e = flow
        .handle_response(redirect(301, "http://ehr.example.org/x"), T0)
        .unwrap_err();
    assert!(matches!(e, Error::InsecureUrl { .. }), "{e:?}");
    // A token POST answered with a redirect names the status and the Location.
    let config = BackendServicesConfig::new(ClientId::new("c1"), "system/Patient.rs", es384_key())
        .with_smart_configuration(smart_core::discovery::SmartConfiguration::new(token_url()));
    let mut flow = BackendServices::new(config, entropy(6)).unwrap();
    let _ = send(flow.poll(T0).unwrap());
    let e = flow
        .handle_response(redirect(307, "https://other.example.org/token"), T0)
        .unwrap_err();
    assert_eq!(
        e,
        Error::Redirect {
            url: "https://ehr.example.org/token".into(),
            status: 307,
            location: Some("https://other.example.org/token".into())
        }
    );
}

// ----- N02: expires_in with a fractional part -----------------------------------------------

#[test]
fn n02_fractional_expires_in_is_floored_with_a_warning() {
    let t = token(
        r#"{"access_token":"A1","token_type":"Bearer","expires_in":35999.87,"scope":"patient/Patient.read"}"#,
    )
    .unwrap();
    assert_eq!(t.expires_in, Some(35999));
    assert_eq!(t.expires_at, Some(T0.plus_secs(35999)));
    assert_eq!(
        t.warnings,
        ["`expires_in` has a fractional part; rounded down to 35999 s"]
    );
    let t =
        token(r#"{"access_token":"A1","token_type":"Bearer","expires_in":"3599.5","scope":"s"}"#)
            .unwrap();
    assert_eq!(t.expires_in, Some(3599));
    assert_eq!(t.expires_at, Some(T0.plus_secs(3599)));
    assert_eq!(
        t.warnings,
        [
            "`expires_in` is a string; read as a number of seconds",
            "`expires_in` has a fractional part; rounded down to 3599 s"
        ]
    );
}

#[test]
fn n02_kind_negative_nan_like_and_non_numeric_stay_errors_naming_expires_in() {
    for v in [
        "-1",
        "-0.5",
        "\"-3\"",
        "\"NaN\"",
        "\"nan\"",
        "\"inf\"",
        "\"-Infinity\"",
        "\"soon\"",
        "\"\"",
        "\"1,5\"",
        "\"0x10\"",
        "true",
        "[3600]",
        "{}",
    ] {
        let body = format!(r#"{{"access_token":"A1","token_type":"Bearer","expires_in":{v}}}"#);
        match token(body) {
            Err(Error::Parse(p)) => {
                assert_eq!(p.document, Document::TokenResponse, "{v}");
                assert_eq!(
                    p.message, "`expires_in` must be a non-negative number of seconds",
                    "{v}"
                );
            }
            other => panic!("{v}: {other:?}"),
        }
    }
    // Other accepted forms of the kind.
    for (v, want) in [
        ("0.999", 0),
        ("\"1e3\"", 1000),
        ("\" 86399 \"", 86399),
        ("3600.0", 3600),
    ] {
        let body = format!(r#"{{"access_token":"A1","token_type":"Bearer","expires_in":{v}}}"#);
        assert_eq!(token(body).unwrap().expires_in, Some(want), "{v}");
    }
}

#[test]
fn n02_kind_refresh_and_backend_responses_floor_too() {
    let old = token(r#"{"access_token":"A1","token_type":"Bearer","expires_in":60,"refresh_token":"R1","scope":"s"}"#).unwrap();
    let new = parse_token_response(
        &HttpResponse::new(
            200,
            r#"{"access_token":"A2","token_type":"bearer","expires_in":"299.99"}"#,
        ),
        &token_url(),
        T0.plus_secs(50),
    )
    .unwrap();
    let merged = old.merge_refresh(new);
    assert_eq!(merged.expires_in, Some(299));
    assert_eq!(merged.expires_at, Some(T0.plus_secs(50 + 299)));
    let config = BackendServicesConfig::new(ClientId::new("c1"), "system/Patient.rs", es384_key())
        .with_smart_configuration(smart_core::discovery::SmartConfiguration::new(token_url()));
    let mut flow = BackendServices::new(config, entropy(7)).unwrap();
    let _ = send(flow.poll(T0).unwrap());
    flow.handle_response(
        HttpResponse::new(
            200,
            r#"{"access_token":"B1","token_type":"bearer","expires_in":300.5,"scope":"system/Patient.rs"}"#,
        ),
        T0,
    )
    .unwrap();
    let t = ready(flow.poll(T0).unwrap());
    assert_eq!(t.expires_in, Some(300));
}

// ----- time: absurd lifetimes, introspection leeway ------------------------------------------

#[test]
fn time_absurd_lifetimes_are_clamped_to_ten_years() {
    assert_eq!(MAX_LIFETIME_SECS, 10 * 365 * 86_400);
    for v in [
        "18446744073709551615",
        "1e300",
        "\"99999999999999999999999\"",
        "315360001",
    ] {
        let body = format!(r#"{{"access_token":"A1","token_type":"Bearer","expires_in":{v}}}"#);
        let t = token(body).unwrap();
        assert_eq!(t.expires_in, Some(MAX_LIFETIME_SECS), "{v}");
        assert_eq!(t.expires_at, Some(T0.plus_secs(MAX_LIFETIME_SECS)), "{v}");
        assert!(
            has_warning(&t.warnings, "`expires_in` is more than ten years; clamped"),
            "{v}: {:?}",
            t.warnings
        );
    }
    // At `now` = the end of time, nothing overflows either.
    let t = parse_token_response(
        &HttpResponse::new(200, r#"{"access_token":"A1","expires_in":3600}"#),
        &token_url(),
        UnixTime::MAX,
    )
    .unwrap();
    assert_eq!(t.expires_at, Some(UnixTime::MAX));
}

#[test]
fn time_introspection_checks_allow_a_minute_of_skew_and_never_overflow() {
    let url = Url::parse("https://ehr.example.org/introspect").unwrap();
    let parse = |b: &str| {
        parse_introspection_response(&HttpResponse::new(200, b.to_owned()), &url).unwrap()
    };
    let i = parse(r#"{"active":true,"exp":1700000000,"nbf":1700000100}"#);
    assert!(
        !i.is_active_at(T0.plus_secs(39)),
        "nbf 100 s ahead, 60 s leeway"
    );
    assert!(i.is_active_at(T0.plus_secs(40)));
    let i = parse(r#"{"active":true,"exp":1700000000}"#);
    assert!(i.is_active_at(T0.plus_secs(59)));
    assert!(!i.is_active_at(T0.plus_secs(60)));
    let i = parse(r#"{"active":true,"exp":18446744073709551615,"nbf":0}"#);
    assert_eq!(i.exp, Some(UnixTime::MAX));
    assert!(i.is_active_at(T0.plus_secs(1 << 40)));
    assert!(!i.is_active_at(UnixTime::MAX), "saturates, never wraps");
    let i = parse(r#"{"active":true,"exp":1e300}"#);
    assert!(i.is_active_at(T0));
}

// ----- N04: optional member with the wrong JSON type ----------------------------------------

#[test]
fn n04_wrong_typed_optional_discovery_members_parse_with_a_warning() {
    let b = base("https://ehr.example.org/fhir");
    let variants = [
        (
            r#"{"authorization_endpoint":"https://ehr.example.org/oauth2/authorize","token_endpoint":"https://ehr.example.org/oauth2/token","token_endpoint_auth_methods_supported":"client_secret_basic","grant_types_supported":["authorization_code"],"code_challenge_methods_supported":["S256"],"capabilities":["launch-standalone","client-public"]}"#,
            "token_endpoint_auth_methods_supported",
            "`token_endpoint_auth_methods_supported` is a single string, not an array; read as a one-element list",
        ),
        (
            r#"{"authorization_endpoint":"https://ehr.example.org/oauth2/authorize","token_endpoint":"https://ehr.example.org/oauth2/token","scopes_supported":{"openid":"OpenID","fhirUser":"user"},"grant_types_supported":["authorization_code"],"code_challenge_methods_supported":["S256"],"capabilities":["launch-standalone","client-public"]}"#,
            "scopes_supported",
            "`scopes_supported` is an object, not an array of strings; ignored",
        ),
        (
            r#"{"authorization_endpoint":"https://ehr.example.org/oauth2/authorize","token_endpoint":"https://ehr.example.org/oauth2/token","grant_types_supported":["authorization_code"],"code_challenge_methods_supported":["S256"],"capabilities":["launch-standalone",null,"client-public"]}"#,
            "capabilities",
            "`capabilities` has 1 item(s) that are not strings; dropped",
        ),
    ];
    for (i, (body, field, message)) in variants.iter().enumerate() {
        let d = parse_smart_configuration(body.as_bytes(), &b, &wk(&b)).unwrap();
        let w: Vec<_> = d
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::WrongType)
            .collect();
        assert_eq!(w.len(), 1, "{i}: {w:?}");
        assert_eq!(
            (w[0].field.as_str(), w[0].message.as_str()),
            (*field, *message)
        );
        assert_eq!(
            d.config.token_endpoint.as_str(),
            "https://ehr.example.org/oauth2/token"
        );
    }
    let d = parse_smart_configuration(variants[0].0.as_bytes(), &b, &wk(&b)).unwrap();
    assert_eq!(
        d.config.token_endpoint_auth_methods_supported,
        ["client_secret_basic"]
    );
    let d = parse_smart_configuration(variants[1].0.as_bytes(), &b, &wk(&b)).unwrap();
    assert!(d.config.scopes_supported.is_empty());
    let d = parse_smart_configuration(variants[2].0.as_bytes(), &b, &wk(&b)).unwrap();
    assert_eq!(
        d.config.capabilities,
        [
            smart_core::discovery::Capability::LaunchStandalone,
            smart_core::discovery::Capability::ClientPublic
        ]
    );
}

#[test]
fn n04_kind_every_optional_discovery_member_and_only_the_token_endpoint_is_fatal() {
    let b = base("https://ehr.example.org/fhir");
    let body = json!({
        "token_endpoint": "https://ehr.example.org/token",
        "issuer": 7,
        "jwks_uri": ["https://ehr.example.org/jwks"],
        "authorization_endpoint": {"url": "x"},
        "introspection_endpoint": "https://[broken",
        "grant_types_supported": "client_credentials",
        "code_challenge_methods_supported": [["S256"], "S256"],
        "response_types_supported": 5,
        "token_endpoint_auth_signing_alg_values_supported": true,
        "user_access_brand_identifier": {"system": 1, "value": "v"},
        "associated_endpoints": {"url": "https://ehr.example.org/state", "capabilities": "smart-app-state"},
        "vendor": {"kept": true}
    })
    .to_string();
    let d = parse_smart_configuration(body.as_bytes(), &b, &wk(&b)).unwrap();
    let c = &d.config;
    assert_eq!(c.issuer, None);
    assert_eq!(c.jwks_uri, None);
    assert_eq!(c.authorization_endpoint, None);
    assert_eq!(c.introspection_endpoint, None);
    assert_eq!(c.grant_types_supported, ["client_credentials"]);
    assert_eq!(c.code_challenge_methods_supported, ["S256"]);
    assert!(c.response_types_supported.is_empty());
    assert_eq!(
        c.user_access_brand_identifier
            .as_ref()
            .unwrap()
            .value
            .as_deref(),
        Some("v")
    );
    assert_eq!(c.associated_endpoints.len(), 1);
    assert_eq!(
        c.associated_endpoints[0].url.as_str(),
        "https://ehr.example.org/state"
    );
    assert_eq!(c.extra["vendor"], json!({"kept": true}));
    for field in [
        "issuer",
        "jwks_uri",
        "authorization_endpoint",
        "introspection_endpoint",
        "grant_types_supported",
        "code_challenge_methods_supported",
        "response_types_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "user_access_brand_identifier.system",
        "associated_endpoints",
        "associated_endpoints[0].capabilities",
    ] {
        assert!(
            d.warnings.iter().any(|w| w.field == field
                && matches!(w.kind, WarningKind::WrongType | WarningKind::InvalidUrl)),
            "{field}: {:#?}",
            d.warnings
        );
    }
    // The token endpoint is what the flow needs: unusable → error naming it.
    for body in [
        r#"{"token_endpoint":["https://e/t"]}"#,
        r#"{"token_endpoint":"https://[x"}"#,
    ] {
        let e = parse_smart_configuration(body.as_bytes(), &b, &wk(&b)).unwrap_err();
        assert!(e.to_string().contains("token_endpoint"), "{e}");
    }
}

#[test]
fn n04_kind_token_response_members() {
    let t = token(json!({
        "access_token": "A1", "token_type": 1, "expires_in": 60, "scope": ["openid", 5, "fhirUser"],
        "refresh_token": 42, "id_token": ["x"], "patient": {"id": "p"}, "encounter": "Encounter/e9",
        "need_patient_banner": "maybe", "intent": 3, "fhirContext": {"reference": "List/1"}
    }).to_string())
    .unwrap();
    assert!(t.is_bearer());
    assert_eq!(t.scope.as_deref(), Some("openid fhirUser"));
    assert_eq!(t.refresh_token, None);
    assert_eq!(t.id_token, None);
    assert_eq!(t.context.patient, None);
    assert_eq!(t.context.encounter.as_deref(), Some("e9"));
    assert_eq!(t.context.need_patient_banner, None);
    assert_eq!(t.context.intent, None);
    assert_eq!(t.context.fhir_context.len(), 1);
    for prefix in [
        "`token_type` is a number",
        "`scope` has 1 array item(s)",
        "`refresh_token` is a number",
        "`id_token` is an array",
        "`patient` is an object",
        "`encounter` is a reference",
        "`need_patient_banner` is a string other than",
        "`intent` is a number",
        "`fhirContext` is a single item",
    ] {
        assert!(
            has_warning(&t.warnings, prefix),
            "{prefix}: {:?}",
            t.warnings
        );
    }
    // `scope` of the wrong type is treated as absent (the requested scope is inferred).
    let mut t = token(r#"{"access_token":"A1","scope":{"a":1}}"#).unwrap();
    t.infer_missing_scope("openid");
    assert_eq!(t.scope.as_deref(), Some("openid"));
    // The missing `access_token` stays fatal.
    assert!(matches!(token(r#"{"scope":"s"}"#), Err(Error::Parse(_))));
}

// ----- B29 (patient part): a prefixed `patient` ---------------------------------------------

#[test]
fn b29_prefixed_patient_is_stripped_once_with_a_warning() {
    let t = token(r#"{"access_token":"A1","patient":"Patient/456"}"#).unwrap();
    assert_eq!(t.context.patient.as_deref(), Some("456"));
    assert!(has_warning(
        &t.context.warnings,
        "`patient` is a reference `Patient/…`"
    ));
    let t = token(r#"{"access_token":"A1","patient":"456"}"#).unwrap();
    assert_eq!(t.context.patient.as_deref(), Some("456"));
    assert!(t.context.warnings.is_empty());
    for (given, want) in [
        ("Patient/Patient/456", Some("Patient/456")),
        ("Patient/", None),
        ("patient/456", Some("patient/456")),
    ] {
        let m = json!({ "patient": given });
        let c = parse_launch_context(m.as_object().unwrap()).unwrap();
        assert_eq!(c.patient.as_deref(), want, "{given}");
    }
}

// ----- N05: byte-order mark before the JSON -------------------------------------------------

#[test]
fn n05_one_leading_bom_is_skipped_with_a_warning() {
    let b = base("https://ehr.example.org/fhir");
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(N11.as_bytes());
    let d = parse_smart_configuration(&body, &b, &wk(&b)).unwrap();
    assert_eq!(d.warnings[0].kind, WarningKind::ByteOrderMark);
    assert_eq!(d.warnings[0].field, "(body)");
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(
        br#"{"access_token":"A1","token_type":"Bearer","expires_in":300,"scope":"system/Patient.rs"}"#,
    );
    let t = token(body).unwrap();
    assert_eq!(t.access_token.secret(), "A1");
    assert_eq!(t.expires_in, Some(300));
    assert_eq!(
        t.warnings,
        ["the body starts with a UTF-8 byte-order mark; skipped (RFC 8259 §8.1)"]
    );
}

#[test]
fn n05_kind_every_document_skips_one_bom_and_a_bom_elsewhere_is_invalid() {
    let b = base("https://ehr.example.org/fhir");
    let bom = |s: &str| [b"\xEF\xBB\xBF".as_slice(), s.as_bytes()].concat();
    // Discovery flow, CapabilityStatement, introspection, OAuth error bodies.
    let mut flow = Discovery::new(b.clone());
    let _ = send(flow.poll(T0).unwrap());
    flow.handle_response(HttpResponse::new(200, bom(N11)), T0)
        .unwrap();
    let d = ready(flow.poll(T0).unwrap());
    assert_eq!(d.warnings[0].kind, WarningKind::ByteOrderMark);
    let cs = json!({"resourceType": "CapabilityStatement", "rest": [{"security": {"extension": [{
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [{"url": "token", "valueUri": "https://ehr.example.org/t"}]}]}}]})
    .to_string();
    let d = parse_capability_statement(&bom(&cs), &b, &b.append("metadata").unwrap()).unwrap();
    assert_eq!(d.warnings[0].kind, WarningKind::ByteOrderMark);
    let url = Url::parse("https://ehr.example.org/introspect").unwrap();
    let i = parse_introspection_response(&HttpResponse::new(200, bom(r#"{"active":true}"#)), &url)
        .unwrap();
    assert!(i.active);
    assert!(has_warning(
        &i.warnings,
        "the body starts with a UTF-8 byte-order mark"
    ));
    let e = parse_token_response(
        &HttpResponse::new(400, bom(r#"{"error":"invalid_grant"}"#)),
        &token_url(),
        T0,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::OAuth(ref o) if o.error == "invalid_grant"),
        "{e:?}"
    );
    // Two BOMs, or a BOM inside, is not JSON.
    assert!(
        parse_smart_configuration(&bom(&String::from_utf8(bom(N11)).unwrap()), &b, &wk(&b))
            .is_err()
    );
    let inside = N11.replacen('{', "{\u{feff}", 1);
    assert!(parse_smart_configuration(inside.as_bytes(), &b, &wk(&b)).is_err());
    assert!(token("{\"access_token\":\"A1\"}\u{feff}").is_err());
}

// ----- encoding: B07, N06, access-token syntax ------------------------------------------------

fn authorize_url(launch_url: &str) -> (EhrLaunch, Url) {
    let ehr = EhrLaunch::from_url(launch_url).unwrap();
    let app = AppConfig::new(
        ClientAuth::public("app-1"),
        "https://app.example.org/cb",
        "launch openid",
    )
    .unwrap();
    let mut config = smart_core::discovery::SmartConfiguration::new(token_url());
    config.authorization_endpoint =
        Some(Endpoint::parse("https://ehr.example.org/authorize").unwrap());
    let req = authorize(
        &app,
        &Launch::Ehr(ehr.clone()),
        &config,
        T0,
        entropy(8).as_ref(),
    )
    .unwrap();
    (ehr, req.url)
}

fn raw_param(url: &Url, name: &str) -> Option<String> {
    url.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

#[test]
fn b07_plus_in_the_opaque_launch_value_is_kept_byte_exact() {
    for launch_url in [
        "https://app.example.org/launch?iss=https%3A%2F%2Fehr.example.org%2Ffhir&launch=ab%2Bcd%2F%3D%3D",
        "https://app.example.org/launch?iss=https%3A%2F%2Fehr.example.org%2Ffhir&launch=ab+cd/==",
    ] {
        let (ehr, url) = authorize_url(launch_url);
        assert_eq!(ehr.launch, "ab+cd/==", "{launch_url}");
        assert_eq!(ehr.iss.as_given(), "https://ehr.example.org/fhir");
        assert_eq!(
            raw_param(&url, "launch").as_deref(),
            Some("ab%2Bcd%2F%3D%3D")
        );
    }
}

#[test]
fn b07_kind_values_are_percent_decoded_exactly_once() {
    for (query, launch) in [
        ("iss=https://ehr.example.org/fhir&launch=a+b+c", "a+b+c"),
        ("iss=https://ehr.example.org/fhir&launch=a%20b", "a b"),
        ("iss=https://ehr.example.org/fhir&launch=a%252B", "a%2B"),
        (
            "launch=x%2Fy&iss=https%3A%2F%2Fehr.example.org%2Ffhir&launch=second",
            "x/y",
        ),
    ] {
        let ehr = EhrLaunch::from_url(&format!("?{query}")).unwrap();
        assert_eq!(ehr.launch, launch, "{query}");
        assert_eq!(ehr.iss.as_given(), "https://ehr.example.org/fhir");
    }
    // A doubly encoded `iss` is decoded once: `https%3A%2F%2F…` is not a URL → refused.
    let e = EhrLaunch::from_url("?iss=https%253A%252F%252Fehr.example.org%252Ffhir&launch=L1")
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

#[test]
fn n06_client_id_with_colon_is_form_encoded_in_raw_basic_mode() {
    use base64::Engine as _;
    let h = basic_authorization(
        "urn:app:smart-1",
        &ClientSecret::new("s3cret"),
        BasicEncoding::Raw,
    );
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(h.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, b"urn%3Aapp%3Asmart-1:s3cret");
    // A `:` in the secret stays raw; a control character in the id is encoded too.
    let h = basic_authorization("app", &ClientSecret::new("a:b"), BasicEncoding::Raw);
    assert_eq!(
        h,
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("app:a:b")
        )
    );
    let h = basic_authorization("a\nb", &ClientSecret::new("s"), BasicEncoding::Raw);
    assert_eq!(
        h,
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("a%0Ab:s")
        )
    );
}

#[test]
fn access_token_that_a_bearer_header_cannot_carry_is_refused_unprinted() {
    for (tok, reason) in [
        ("abc def", "contains a space"),
        ("abc\r\nX-Injected: 1", "contains a control character"),
        ("abc\u{0}", "contains a control character"),
        ("abc\u{7f}", "contains a control character"),
        ("tökén", "contains a non-ASCII character"),
        ("\u{feff}abc", "contains a non-ASCII character"),
    ] {
        let body = json!({"access_token": tok, "token_type": "Bearer"}).to_string();
        let e = token(body).unwrap_err();
        assert_eq!(e, Error::InvalidAccessToken { reason }, "{tok:?}");
        assert!(!e.to_string().contains("abc"));
    }
    // Every printable ASCII character but space is fine (RFC 6749 Appendix A.12 VSCHAR).
    let all: String = (0x21u8..=0x7e).map(char::from).collect();
    let t = token(json!({"access_token": all, "token_type": "Bearer"}).to_string()).unwrap();
    assert_eq!(t.access_token.secret(), all);
}

// ----- N08: error redirect without state ----------------------------------------------------

fn pending(state: &str) -> PendingAuthorization {
    PendingAuthorization {
        state: CsrfToken::new(state),
        code_verifier: PkceCodeVerifier::new("v".repeat(43)),
        redirect_uri: "https://app.example.org/cb".into(),
        fhir_base: base("https://ehr.example.org/fhir"),
        issuer: None,
        token_endpoint: token_url().into(),
        client_id: ClientId::new("app-1"),
        scope: "launch openid patient/*.rs".into(),
        launch: None,
        created_at: T0,
        require_iss: false,
    }
}

const N08: &str = "https://app.example.org/cb?error=invalid_scope&error_description=Scope%20patient%2F*.rs%20is%20not%20allowed";

#[test]
fn n08_error_redirect_without_state_reports_the_servers_reason_unverified() {
    let app = AppConfig::new(
        ClientAuth::public("app-1"),
        "https://app.example.org/cb",
        "launch",
    )
    .unwrap();
    let e = pending("S1").callback(&app, N08).unwrap_err();
    let want = OAuthError {
        status: None,
        error: "invalid_scope".into(),
        error_description: Some("Scope patient/*.rs is not allowed".into()),
        error_uri: None,
    };
    assert_eq!(
        e,
        Error::Callback(CallbackError::UnverifiedAuthorization(want.clone()))
    );
    assert_eq!(
        e.to_string(),
        "the authorization server returned `invalid_scope` (Scope patient/*.rs is not allowed) without `state` (unverified: not tied to a pending authorization)"
    );
    // Through the set of pending authorizations: reported the same, nothing consumed.
    let mut set = PendingAuthorizations::new();
    set.insert(pending("S1"));
    set.insert(pending("S2"));
    let e = set.take(N08).unwrap_err();
    assert_eq!(
        e,
        Error::Callback(CallbackError::UnverifiedAuthorization(want))
    );
    assert_eq!(set.len(), 2);
}

#[test]
fn n08_kind_without_state_and_without_error_is_still_missing_state() {
    let app = AppConfig::new(
        ClientAuth::public("app-1"),
        "https://app.example.org/cb",
        "launch",
    )
    .unwrap();
    let e = pending("S1")
        .callback(&app, "https://app.example.org/cb?code=c1")
        .unwrap_err();
    assert_eq!(e, Error::Callback(CallbackError::MissingState));
    // Control characters in the unverified text are removed before anyone logs it.
    let e = pending("S1")
        .callback(
            &app,
            "https://app.example.org/cb?error=access_denied%0A&error_description=a%0D%0Ab",
        )
        .unwrap_err();
    let Error::Callback(CallbackError::UnverifiedAuthorization(o)) = e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (o.error.as_str(), o.error_description.as_deref()),
        ("access_denied", Some("ab"))
    );
    // With a matching state the error is the verified Authorization variant, as before.
    let e = pending("S1")
        .callback(
            &app,
            "https://app.example.org/cb?error=access_denied&state=S1",
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::Authorization(_))),
        "{e:?}"
    );
}

// ----- B18: refresh response without launch context or id_token -----------------------------

const B18_INITIAL: &str = r#"{"access_token":"A1","token_type":"Bearer","expires_in":3600,"refresh_token":"R1",
 "scope":"launch openid fhirUser offline_access patient/*.rs","patient":"123","encounter":"e9",
 "need_patient_banner":true,"id_token":"h.eyJmaGlyVXNlciI6IlByYWN0aXRpb25lci9wci0xIn0.s"}"#;

#[test]
fn b18_refresh_without_context_keeps_context_id_token_and_refresh_token() {
    let initial = token(B18_INITIAL).unwrap();
    let t1 = T0.plus_secs(3500);
    let refresh = parse_token_response(
        &HttpResponse::new(
            200,
            r#"{"access_token":"A2","token_type":"bearer","expires_in":3600,
 "scope":"launch openid fhirUser offline_access patient/*.rs"}"#,
        ),
        &token_url(),
        t1,
    )
    .unwrap();
    let s = initial.merge_refresh(refresh);
    assert_eq!(s.access_token.secret(), "A2");
    assert_eq!(s.expires_at, Some(t1.plus_secs(3600)));
    assert_eq!(s.context.patient.as_deref(), Some("123"));
    assert_eq!(s.context.encounter.as_deref(), Some("e9"));
    assert_eq!(s.context.need_patient_banner, Some(true));
    assert_eq!(s.id_token, initial.id_token);
    assert_eq!(s.refresh_token.as_ref().unwrap().secret(), "R1");
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn b18_refresh_with_context_replaces_it_as_a_whole_and_reports_the_change() {
    let initial = token(B18_INITIAL).unwrap();
    let refresh = token(r#"{"access_token":"A2","token_type":"bearer","expires_in":3600,"scope":"launch","patient":"456"}"#)
        .unwrap();
    let s = initial.merge_refresh(refresh);
    // Never mixed: encounter and need_patient_banner of the old context are gone.
    assert_eq!(s.context.patient.as_deref(), Some("456"));
    assert_eq!(s.context.encounter, None);
    assert_eq!(s.context.need_patient_banner, None);
    assert_eq!(
        s.warnings,
        [
            "the refresh response changed the launch context (patient, encounter, need_patient_banner); the new context replaces the old one as a whole"
        ]
    );
    // The same context again: replaced, nothing to report.
    let same = token(r#"{"access_token":"A3","token_type":"Bearer","scope":"launch","patient":"123","encounter":"e9","need_patient_banner":true}"#)
        .unwrap();
    let s = initial.merge_refresh(same);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(
        initial.context.changed_members(&s.context),
        Vec::<&str>::new()
    );
}

// ----- B29 (id_token part): `fhirUser` variants --------------------------------------------

fn fake_id_token(payload: &serde_json::Value) -> smart_core::secret::IdToken {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    smart_core::secret::IdToken::new(format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(payload.to_string().as_bytes()),
        b64(b"sig")
    ))
}

#[test]
fn b29_fhir_user_variants_never_make_the_id_token_unreadable() {
    use smart_core::id_token::{ClaimWarning, UnverifiedIdTokenClaims};
    let fhir = base("https://ehr.example.org/api/FHIR/R4");
    let decode =
        |p: serde_json::Value| UnverifiedIdTokenClaims::decode(&fake_id_token(&p)).unwrap();
    // Absolute: type and id read, URL as given.
    let c = decode(json!({"fhirUser": "https://ehr.example.org/api/FHIR/R4/Practitioner/pr-1"}));
    assert_eq!(
        c.fhir_user()
            .as_ref()
            .and_then(smart_core::FhirUser::reference),
        Some(("Practitioner", "pr-1"))
    );
    assert_eq!(
        c.fhir_user().and_then(|u| u.url(&fhir)).unwrap().as_str(),
        "https://ehr.example.org/api/FHIR/R4/Practitioner/pr-1"
    );
    assert!(c.warnings.is_empty());
    // Relative: resolved against the FHIR base.
    let c = decode(json!({"fhirUser": "Practitioner/pr-1"}));
    assert_eq!(
        c.fhir_user().and_then(|u| u.url(&fhir)).unwrap().as_str(),
        "https://ehr.example.org/api/FHIR/R4/Practitioner/pr-1"
    );
    // Only `profile`: the legacy claim is used, with a warning.
    let c = decode(json!({"profile": "Patient/pt-9"}));
    assert_eq!(
        c.fhir_user()
            .as_ref()
            .and_then(smart_core::FhirUser::reference),
        Some(("Patient", "pt-9"))
    );
    assert_eq!(c.warnings, [ClaimWarning::LegacyProfileClaim]);
    // Boolean: no user, a warning, the token still reads.
    let c = decode(json!({"fhirUser": true, "sub": "u1", "iss": "https://ehr.example.org"}));
    assert_eq!(c.fhir_user, None);
    assert_eq!(c.fhir_user().and_then(|u| u.url(&fhir)), None);
    assert_eq!(c.sub.as_deref(), Some("u1"));
    assert_eq!(c.warnings, [ClaimWarning::InvalidClaim("fhirUser".into())]);
    // Absolute URL on another host: kept absolute, host not rewritten.
    let c = decode(json!({"fhirUser": "https://other.example.org/fhir/RelatedPerson/rp-3"}));
    assert_eq!(
        c.fhir_user()
            .as_ref()
            .and_then(smart_core::FhirUser::reference),
        Some(("RelatedPerson", "rp-3"))
    );
    assert_eq!(
        c.fhir_user().and_then(|u| u.url(&fhir)).unwrap().as_str(),
        "https://other.example.org/fhir/RelatedPerson/rp-3"
    );
}

#[test]
fn b29_kind_other_wrong_typed_claims_and_the_launch_still_completes() {
    use smart_core::id_token::{ClaimWarning, UnverifiedIdTokenClaims};
    let c = UnverifiedIdTokenClaims::decode(&fake_id_token(&json!({
        "sub": 7, "aud": 5, "exp": 1700000000.9, "iat": "1699999999", "profile": ["x"], "fhirUser": {"a": 1}
    })))
    .unwrap();
    assert_eq!(c.sub, None);
    assert_eq!(c.aud, Some(json!(5)), "kept as sent; a verifier refuses it");
    assert_eq!((c.exp, c.iat), (Some(1_700_000_000), Some(1_699_999_999)));
    assert_eq!(
        c.warnings,
        [
            ClaimWarning::InvalidClaim("sub".into()),
            ClaimWarning::InvalidClaim("fhirUser".into()),
            ClaimWarning::InvalidClaim("profile".into()),
            ClaimWarning::NormalisedClaim("exp".into()),
            ClaimWarning::NormalisedClaim("iat".into()),
        ]
    );
    // A session whose id_token says `"fhirUser": true`: signed in, no user, no error.
    let id = fake_id_token(&json!({"fhirUser": true}));
    let body = json!({"access_token": "A1", "token_type": "Bearer", "expires_in": 3600,
        "scope": "openid fhirUser", "id_token": id.secret()})
    .to_string();
    let t = token(body).unwrap();
    let app = AppConfig::new(
        ClientAuth::public("app-1"),
        "https://app.example.org/cb",
        "openid",
    )
    .unwrap();
    let s = smart_core::session::Session::new(
        &app,
        base("https://ehr.example.org/api/FHIR/R4"),
        token_url(),
        t,
        T0,
    );
    assert_eq!(s.fhir_user_unverified(), None);
}
