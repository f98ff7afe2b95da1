//! Discovery: IG examples, real-server recording, acceptance cases B01, B03, B04, B05, and
//! the `Discovery` flow driven by hand.

mod common;

use common::{ready, send};
use smart_core::discovery::{
    Capability, ConfigSource, Discovered, Discovery, Identifier, SmartConfiguration, WarningKind,
    parse_capability_statement, parse_smart_configuration,
};
use smart_core::error::{DiscoveryError, DiscoveryErrorKind};
use smart_core::{Error, FhirBaseUrl, Flow, HttpResponse, Method, UnixTime};

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn base(s: &str) -> FhirBaseUrl {
    FhirBaseUrl::new(s).unwrap()
}

fn parse(body: &[u8], b: &str) -> Result<Discovered, Error> {
    let b = base(b);
    parse_smart_configuration(body, &b, &b.well_known())
}

fn ok(body: &[u8]) -> Discovered {
    parse(body, "https://ehr.example.com/fhir").unwrap()
}

fn u(s: &str) -> smart_core::Endpoint {
    smart_core::Endpoint::parse(s).unwrap()
}

fn kind(e: Error) -> DiscoveryErrorKind {
    match e {
        Error::Discovery(DiscoveryError { kind, .. }) => kind,
        other => panic!("expected a discovery error, got {other:?}"),
    }
}

// ----- IG examples (vectors.md §5) --------------------------------------------------------------

#[test]
fn ig_5_1_conformance_example() {
    let d = ok(include_bytes!("fixtures/discovery/ig-5.1-conformance.json"));
    let c = &d.config;
    assert_eq!(d.source, ConfigSource::WellKnown);
    assert_eq!(c.issuer.as_deref(), Some("https://ehr.example.com"));
    assert_eq!(
        c.jwks_uri,
        Some(u("https://ehr.example.com/.well-known/jwks.json"))
    );
    assert_eq!(
        c.authorization_endpoint,
        Some(u("https://ehr.example.com/auth/authorize"))
    );
    assert_eq!(c.token_endpoint, u("https://ehr.example.com/auth/token"));
    assert_eq!(
        c.token_endpoint_auth_methods_supported,
        ["client_secret_basic", "private_key_jwt"]
    );
    assert_eq!(
        c.grant_types_supported,
        ["authorization_code", "client_credentials"]
    );
    assert_eq!(
        c.registration_endpoint,
        Some(u("https://ehr.example.com/auth/register"))
    );
    assert_eq!(c.scopes_supported.len(), 7);
    assert_eq!(c.scopes_supported[4], "patient/*.rs");
    assert_eq!(c.response_types_supported, ["code"]);
    assert_eq!(
        c.management_endpoint,
        Some(u("https://ehr.example.com/user/manage"))
    );
    assert_eq!(
        c.introspection_endpoint,
        Some(u("https://ehr.example.com/user/introspect"))
    );
    assert_eq!(
        c.revocation_endpoint,
        Some(u("https://ehr.example.com/user/revoke"))
    );
    assert_eq!(c.code_challenge_methods_supported, ["S256"]);
    assert!(c.supports_s256());
    assert_eq!(
        c.capabilities,
        [
            Capability::LaunchEhr,
            Capability::PermissionPatient,
            Capability::PermissionV2,
            Capability::ClientPublic,
            Capability::ClientConfidentialSymmetric,
            Capability::ContextEhrPatient,
            Capability::SsoOpenidConnect,
        ]
    );
    assert_eq!(c.associated_endpoints.len(), 1);
    assert_eq!(
        c.associated_endpoints[0].url,
        u("https://state.example.com")
    );
    assert_eq!(
        c.associated_endpoints[0].capabilities,
        [Capability::SmartAppState]
    );
    assert!(c.extra.is_empty());
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
}

#[test]
fn ig_5_2_asymmetric_example_warns_about_missing_required_fields() {
    let d = ok(include_bytes!("fixtures/discovery/ig-5.2-asymmetric.json"));
    let c = &d.config;
    assert_eq!(c.token_endpoint, u("https://ehr.example.com/auth/token"));
    assert_eq!(
        c.token_endpoint_auth_signing_alg_values_supported,
        ["RS384", "ES384"]
    );
    assert_eq!(c.signing_alg_advertised("ES384"), Some(true));
    assert_eq!(c.private_key_jwt_advertised(), Some(true));
    assert_eq!(c.authorization_endpoint, None);
    assert!(d.is_missing("capabilities"));
    assert!(d.is_missing("grant_types_supported"));
    assert!(d.is_missing("code_challenge_methods_supported"));
    assert!(!d.is_missing("scopes_supported"));
}

#[test]
fn ig_5_3_argo_example_keeps_legacy_capabilities_verbatim() {
    let d = ok(include_bytes!("fixtures/discovery/ig-5.3-argo.json"));
    let c = &d.config;
    assert_eq!(c.capabilities.len(), 16);
    assert!(c.has_capability(&Capability::AuthorizePost));
    assert!(c.has_capability(&Capability::Other("context-passthrough-banner".into())));
    assert!(!c.has_capability(&Capability::ContextBanner));
    assert_eq!(c.capabilities[5].as_str(), "context-passthrough-banner");
    let legacy: Vec<_> = d
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::LegacyCapability)
        .collect();
    assert_eq!(legacy.len(), 2);
    assert_eq!(c.scopes_supported[4], "patient/*.cruds");
    assert_eq!(c.scopes_supported.len(), 7);
    assert!(c.token_endpoint.as_str().ends_with("/auth/token"));
}

#[test]
fn ig_5_4_backend_example() {
    let d = ok(include_bytes!("fixtures/discovery/ig-5.4-backend.json"));
    let c = &d.config;
    assert!(c.supports_client_credentials());
    assert!(c.supports_private_key_jwt());
    assert_eq!(c.authorization_endpoint, None);
    assert_eq!(
        c.capabilities,
        [
            Capability::ClientConfidentialAsymmetric,
            Capability::PermissionV2
        ]
    );
    assert_eq!(c.scopes_supported, ["system/*.rs"]);
    // A backend-only server without PKCE methods still discovers fine.
    assert!(d.is_missing("code_challenge_methods_supported"));
}

#[test]
fn ig_5_5_brand_identifier_is_an_object() {
    let d = ok(include_bytes!("fixtures/discovery/ig-5.5-brands.json"));
    assert_eq!(
        d.config.user_access_brand_bundle,
        Some(u("https://example.org/brands.json"))
    );
    assert_eq!(
        d.config.user_access_brand_identifier,
        Some(Identifier {
            system: Some("urn:ietf:rfc:3986".into()),
            value: Some("https://example.org".into())
        })
    );
    // Round 2 (N04): a string where the Identifier object belongs is dropped with a warning.
    let bad =
        br#"{"token_endpoint":"https://e/t","user_access_brand_identifier":"https://example.org"}"#;
    let d = parse(bad, "https://e/fhir").unwrap();
    assert_eq!(d.config.user_access_brand_identifier, None);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.field == "user_access_brand_identifier" && w.kind == WarningKind::WrongType),
        "{:?}",
        d.warnings
    );
}

#[test]
fn real_server_smart_configuration() {
    let d = parse(
        include_bytes!("fixtures/real-server/smart-configuration.json"),
        "http://127.0.0.1:8445/v/r4/fhir",
    )
    .unwrap();
    let c = &d.config;
    assert_eq!(c.issuer.as_deref(), Some("http://127.0.0.1:8445/v/r4/fhir"));
    assert_eq!(c.token_endpoint, u("http://127.0.0.1:8445/v/r4/auth/token"));
    assert_eq!(
        c.authorization_endpoint,
        Some(u("http://127.0.0.1:8445/v/r4/auth/authorize"))
    );
    assert_eq!(c.capabilities.len(), 18);
    assert_eq!(
        c.capabilities[6],
        Capability::Other("context-passthrough-banner".into())
    );
    assert_eq!(
        c.capabilities[7],
        Capability::Other("context-passthrough-style".into())
    );
    assert!(c.has_capability(&Capability::PermissionV1));
    assert!(c.supports_s256());
    assert!(c.supports_client_credentials());
    assert_eq!(c.private_key_jwt_advertised(), Some(true));
    assert_eq!(c.response_types_supported.len(), 5);
    assert!(d.is_missing("revocation_endpoint"));
    assert!(!d.is_missing("capabilities"));
}

#[test]
fn unknown_members_are_kept_and_round_trip() {
    let body = br#"{"token_endpoint":"https://e/t","capabilities":["launch-ehr","https://vendor.example/cap"],
        "vendor_flag":true,"nested":{"a":[1,2]}}"#;
    let d = ok(body);
    assert_eq!(d.config.extra["vendor_flag"], serde_json::json!(true));
    assert_eq!(d.config.extra["nested"], serde_json::json!({"a":[1,2]}));
    assert_eq!(
        d.config.capabilities[1],
        Capability::Other("https://vendor.example/cap".into())
    );
    let json = serde_json::to_string(&d.config).unwrap();
    assert!(
        json.contains(r#""capabilities":["launch-ehr","https://vendor.example/cap"]"#),
        "{json}"
    );
    let back: SmartConfiguration = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d.config);
}

#[test]
fn capability_strings_round_trip() {
    for s in [
        "launch-ehr",
        "permission-online",
        "smart-app-state",
        "context-style",
        "x-custom",
    ] {
        assert_eq!(Capability::from(s).as_str(), s);
    }
    assert_eq!(Capability::from("permission-v2"), Capability::PermissionV2);
    assert!(!Capability::from("Launch-EHR").is_known());
}

#[test]
fn wrong_shapes_name_the_field_and_non_json_is_not_json() {
    let cases: &[(&[u8], &str)] = &[
        (br#"{"token_endpoint":42}"#, "token_endpoint"),
        (br#"{"token_endpoint":"http://[bad"}"#, "token_endpoint"),
        (b"[1,2]", "JSON object"),
    ];
    // Round 2 (N04): optional members of the wrong shape are normalised or dropped with a
    // warning naming them; only the token endpoint is fatal.
    let lenient: &[(&[u8], &str, WarningKind)] = &[
        (
            br#"{"token_endpoint":"https://e/t","capabilities":"launch-ehr"}"#,
            "capabilities",
            WarningKind::WrongType,
        ),
        (
            br#"{"token_endpoint":"https://e/t","scopes_supported":["a",1]}"#,
            "scopes_supported",
            WarningKind::WrongType,
        ),
        (
            br#"{"token_endpoint":"https://e/t","jwks_uri":"http://[bad"}"#,
            "jwks_uri",
            WarningKind::InvalidUrl,
        ),
        (
            br#"{"token_endpoint":"https://e/t","associated_endpoints":[{"capabilities":[]}]}"#,
            "associated_endpoints[0]",
            WarningKind::WrongType,
        ),
    ];
    for (body, field, wk) in lenient {
        let d = parse(body, "https://e/fhir").unwrap();
        assert!(
            d.warnings
                .iter()
                .any(|w| w.field == *field && w.kind == *wk),
            "{field}: {:?}",
            d.warnings
        );
    }
    for (body, field) in cases {
        match kind(parse(body, "https://e/fhir").unwrap_err()) {
            DiscoveryErrorKind::Invalid(m) => assert!(m.contains(field), "{m} should name {field}"),
            k => panic!("{k:?} for {field}"),
        }
    }
    assert_eq!(
        kind(parse(b"<html>", "https://e/fhir").unwrap_err()),
        DiscoveryErrorKind::NotJson
    );
    assert_eq!(
        kind(parse(b"", "https://e/fhir").unwrap_err()),
        DiscoveryErrorKind::NotJson
    );
}

// ----- B01 ---------------------------------------------------------------------------------------

#[test]
fn b01_trailing_slash_base_and_relative_endpoints() {
    for b in [
        "https://ehr.example.org/fhir/r4/",
        "https://ehr.example.org/fhir/r4",
    ] {
        let flow_base = base(b);
        let mut flow = Discovery::new(flow_base.clone());
        let req = send(flow.poll(NOW).unwrap());
        assert_eq!(
            req.url.as_str(),
            "https://ehr.example.org/fhir/r4/.well-known/smart-configuration"
        );
        assert!(!req.url.path().contains("//"));

        let body = br#"{"token_endpoint":"auth/token","authorization_endpoint":"/oauth2/authorize",
            "introspection_endpoint":"../introspect","capabilities":[]}"#;
        let d = parse_smart_configuration(body, &flow_base, &req.url).unwrap();
        // Round 2 (B02): resolved by RFC 3986 §5.2 against the base *as given*
        // (`new URL(rel, base)`): without the trailing slash the last segment `r4` is
        // replaced; building the well-known URL above is unaffected by the slash (B01).
        let (token, introspect) = if b.ends_with('/') {
            (
                "https://ehr.example.org/fhir/r4/auth/token",
                "https://ehr.example.org/fhir/introspect",
            )
        } else {
            (
                "https://ehr.example.org/fhir/auth/token",
                "https://ehr.example.org/introspect",
            )
        };
        assert_eq!(d.config.token_endpoint.as_str(), token);
        assert_eq!(d.config.token_endpoint.url().as_str(), token);
        assert_eq!(
            d.config.authorization_endpoint.as_ref().unwrap().as_str(),
            "https://ehr.example.org/oauth2/authorize"
        );
        assert_eq!(
            d.config.introspection_endpoint.as_ref().unwrap().as_str(),
            introspect
        );
        let rel: Vec<_> = d
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::RelativeUrlResolved)
            .map(|w| w.field.as_str())
            .collect();
        assert_eq!(
            rel,
            [
                "token_endpoint",
                "authorization_endpoint",
                "introspection_endpoint"
            ]
        );
        assert_eq!(
            d.url.as_str(),
            "https://ehr.example.org/fhir/r4/.well-known/smart-configuration"
        );
    }
}

// ----- B03 ---------------------------------------------------------------------------------------

#[test]
fn b03_missing_code_challenge_methods_is_a_warning_not_an_error() {
    let d = ok(include_bytes!("fixtures/cases/B03-no-pkce-methods.json"));
    assert!(d.config.code_challenge_methods_supported.is_empty());
    assert!(d.is_missing("code_challenge_methods_supported"));
    assert!(!d.config.supports_s256());
    // Absent list: PKCE S256 is still used, the strict check passes.
    assert_eq!(d.config.require_s256(), Ok(()));
    assert_eq!(
        d.config.authorization_endpoint,
        Some(u("https://ehr.example.org/oauth2/authorize"))
    );

    // Only `plain` listed: discovery still succeeds, with a warning; the strict check refuses.
    let plain = br#"{"token_endpoint":"https://e/t","capabilities":[],"code_challenge_methods_supported":["plain"]}"#;
    let d = ok(plain);
    let pkce: Vec<_> = d
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Pkce)
        .collect();
    assert_eq!(pkce.len(), 2, "{pkce:?}");
    assert_eq!(
        d.config.require_s256(),
        Err(DiscoveryErrorKind::PkceS256Unsupported)
    );
}

// ----- B04 ---------------------------------------------------------------------------------------

#[test]
fn b04a_interactive_server_without_capabilities() {
    let d = ok(include_bytes!(
        "fixtures/cases/B04a-interactive-no-capabilities.json"
    ));
    assert!(d.config.capabilities.is_empty());
    assert!(d.is_missing("capabilities"));
    // distinguishable from an explicitly empty list
    assert!(
        !ok(br#"{"token_endpoint":"https://e/t","capabilities":[]}"#).is_missing("capabilities")
    );
    assert_eq!(d.config.extra.len(), 3);
    assert_eq!(
        d.config.extra["subject_types_supported"],
        serde_json::json!(["pairwise"])
    );
    assert_eq!(
        d.config.extra["response_modes_supported"],
        serde_json::json!(["query", "fragment", "form_post"])
    );
    assert_eq!(
        d.config.extra["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        d.config.authorization_endpoint,
        Some(u("https://auth.example.org/tenant-1/authorize"))
    );
    assert_eq!(
        d.config.token_endpoint,
        u("https://ehr.example.org/oauth2/token")
    );
    assert_eq!(
        d.config.issuer.as_deref(),
        Some("https://auth.example.org/tenant-1/v2.0")
    );
}

#[test]
fn b04b_backend_only_server_without_auth_methods() {
    let d = ok(include_bytes!("fixtures/cases/B04b-backend-only.json"));
    assert!(d.config.supports_client_credentials());
    assert_eq!(d.config.private_key_jwt_advertised(), None);
    assert!(d.config.supports_private_key_jwt());
    assert!(!d.warnings.iter().any(|w| w.kind == WarningKind::AuthMethod));

    // Listed without private_key_jwt: warn, but parsing succeeds.
    let d = ok(br#"{"token_endpoint":"https://e/t","token_endpoint_auth_methods_supported":["client_secret_basic"]}"#);
    assert_eq!(d.config.private_key_jwt_advertised(), Some(false));
    assert!(!d.config.supports_private_key_jwt());
    assert!(
        d.warnings.iter().any(|w| w.kind == WarningKind::AuthMethod
            && w.field == "token_endpoint_auth_methods_supported")
    );
}

#[test]
fn b04c_missing_token_endpoint_is_the_one_hard_error() {
    let e = parse(
        include_bytes!("fixtures/cases/B04c-broken.json"),
        "https://ehr.example.org/fhir",
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::Discovery(DiscoveryError {
            url: "https://ehr.example.org/fhir/.well-known/smart-configuration".into(),
            status: None,
            kind: DiscoveryErrorKind::MissingField("token_endpoint"),
        })
    );
}

// ----- B05 ---------------------------------------------------------------------------------------

#[test]
fn b05_capability_statement_oauth_uris_in_second_rest_entry() {
    let b = base("https://ehr.example.org/fhir");
    let url = b.append("metadata").unwrap();
    let d = parse_capability_statement(
        include_bytes!("fixtures/cases/B05-capability-statement.json"),
        &b,
        &url,
    )
    .unwrap();
    assert_eq!(d.source, ConfigSource::CapabilityStatement);
    assert_eq!(
        d.config.token_endpoint,
        u("https://ehr.example.org/oauth2/token")
    );
    assert_eq!(
        d.config.authorization_endpoint,
        Some(u("https://ehr.example.org/oauth2/authorize"))
    );
    assert!(d.config.capabilities.is_empty());
    assert!(d.is_missing("capabilities"));
    assert_eq!(d.url.as_str(), "https://ehr.example.org/fhir/metadata");
}

#[test]
fn b05_flow_falls_back_sequentially_after_html() {
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir"));
    let first = send(flow.poll(NOW).unwrap());
    assert_eq!(first.method, Method::Get);
    assert_eq!(
        first.url.as_str(),
        "https://ehr.example.org/fhir/.well-known/smart-configuration"
    );
    assert_eq!(first.header("Accept"), Some("application/json"));
    // Only one request at a time: polling again before the answer is misuse, not a 2nd request.
    assert!(matches!(flow.poll(NOW), Err(Error::Misuse(_))));

    let mut html = HttpResponse::new(
        200,
        &include_bytes!("fixtures/cases/B05-well-known.html")[..],
    );
    html.headers
        .push(("Content-Type".into(), "text/html".into()));
    flow.handle_response(html, NOW).unwrap();

    let second = send(flow.poll(NOW).unwrap());
    assert_eq!(second.url.as_str(), "https://ehr.example.org/fhir/metadata");
    assert!(matches!(flow.poll(NOW), Err(Error::Misuse(_))));
    flow.handle_response(
        HttpResponse::new(
            200,
            &include_bytes!("fixtures/cases/B05-capability-statement.json")[..],
        ),
        NOW,
    )
    .unwrap();
    let d = ready(flow.poll(NOW).unwrap());
    assert_eq!(d.source, ConfigSource::CapabilityStatement);
    assert_eq!(
        d.config.token_endpoint,
        u("https://ehr.example.org/oauth2/token")
    );
    assert!(matches!(flow.poll(NOW), Err(Error::Misuse(_))));
}

#[test]
fn b05_valid_well_known_never_consults_metadata() {
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir"));
    let _ = send(flow.poll(NOW).unwrap());
    flow.handle_response(
        HttpResponse::new(
            200,
            &include_bytes!("fixtures/discovery/ig-5.1-conformance.json")[..],
        ),
        NOW,
    )
    .unwrap();
    let d = ready(flow.poll(NOW).unwrap());
    assert_eq!(d.source, ConfigSource::WellKnown);

    // Valid JSON but unusable (no token_endpoint): the error is final, no fallback request.
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir"));
    let _ = send(flow.poll(NOW).unwrap());
    let e = flow
        .handle_response(
            HttpResponse::new(200, &include_bytes!("fixtures/cases/B04c-broken.json")[..]),
            NOW,
        )
        .unwrap_err();
    assert_eq!(
        kind(e.clone()),
        DiscoveryErrorKind::MissingField("token_endpoint")
    );
    assert_eq!(flow.poll(NOW).unwrap_err(), e);
}

#[test]
fn b05_both_sources_failing() {
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir"));
    let _ = send(flow.poll(NOW).unwrap());
    flow.handle_response(HttpResponse::new(404, "not found"), NOW)
        .unwrap();
    let _ = send(flow.poll(NOW).unwrap());
    let e = flow
        .handle_response(HttpResponse::new(500, "<html>oops</html>"), NOW)
        .unwrap_err();
    assert_eq!(
        e,
        Error::Discovery(DiscoveryError {
            url: "https://ehr.example.org/fhir/.well-known/smart-configuration".into(),
            status: Some(404),
            kind: DiscoveryErrorKind::NoUsableSource,
        })
    );
    assert_eq!(flow.poll(NOW).unwrap_err(), e);
}

#[test]
fn fallback_disabled_reports_the_well_known_failure() {
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir")).without_fallback();
    let _ = send(flow.poll(NOW).unwrap());
    let e = flow
        .handle_response(HttpResponse::new(200, "<html>login</html>"), NOW)
        .unwrap_err();
    assert_eq!(
        e,
        Error::Discovery(DiscoveryError {
            url: "https://ehr.example.org/fhir/.well-known/smart-configuration".into(),
            status: Some(200),
            kind: DiscoveryErrorKind::NotJson,
        })
    );
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir")).without_fallback();
    let _ = send(flow.poll(NOW).unwrap());
    let e = flow
        .handle_response(HttpResponse::new(503, ""), NOW)
        .unwrap_err();
    assert_eq!(kind(e), DiscoveryErrorKind::Status);
}

#[test]
fn flow_misuse_and_abort() {
    let mut flow = Discovery::new(base("https://ehr.example.org/fhir"));
    // Nothing in flight yet.
    assert!(matches!(
        flow.handle_response(HttpResponse::new(200, "{}"), NOW),
        Err(Error::Misuse(_))
    ));
    let first = send(flow.poll(NOW).unwrap());
    // Transport failure: the next poll re-sends the same request.
    flow.abort();
    let again = send(flow.poll(NOW).unwrap());
    assert_eq!(first, again);
    flow.handle_response(HttpResponse::new(502, ""), NOW)
        .unwrap();
    let meta = send(flow.poll(NOW).unwrap());
    flow.abort();
    assert_eq!(send(flow.poll(NOW).unwrap()), meta);
}

#[test]
fn insecure_endpoints_are_flagged_not_refused() {
    let d = ok(br#"{"token_endpoint":"http://ehr.example.org/token","authorization_endpoint":"http://localhost:8080/auth","capabilities":[]}"#);
    let insecure: Vec<_> = d
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Insecure)
        .map(|w| w.field.as_str())
        .collect();
    assert_eq!(insecure, ["token_endpoint"]);
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "http://ehr.example.org/token"
    );
}
