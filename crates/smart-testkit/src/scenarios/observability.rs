//! What the drivers log with their `tracing` feature: a span per flow and per request with
//! its purpose, endpoint, `client_id`, scope, attempt, status and duration — and never a
//! secret, even when a server echoes the request back.

use std::sync::Arc;

use smart_core::backend::BackendServicesConfig;
use smart_core::client_auth::ClientAuth;
use smart_core::entropy::SystemEntropy;
use smart_core::introspection::IntrospectionAuth;
use smart_core::retry::RetryPolicy;
use smart_core::secret::{AccessToken, ClientSecret, RefreshToken};
use smart_core::{ClientId, FhirBaseUrl};
use url::Url;

use crate::driver::{Driver, HttpOptions};
use crate::hostile::{Behaviour, HostileServer, Response};

const CANARY_ACCESS: &str = "canary-access-token-7f3a9c1e5b";
const CANARY_BEARER: &str = "canary-bearer-token-2d8e4f6a0c";
const CANARY_INTROSPECTED: &str = "canary-introspected-9b1c3d5e7f";
const CANARY_REFRESH: &str = "canary-refresh-token-4a6c8e0b2d";
const CANARY_SECRET: &str = "canary-client-secret-1e3f5a7c9b";

/// A token request echoed back, a token, an introspection, a refresh and a revocation against
/// servers that reflect every request into their errors: the spans are there, the secrets are
/// not.
pub fn tracing_output_carries_no_secret<D: Driver>() {
    let capture = crate::trace_capture::install();
    let server = HostileServer::start();
    let base = server.url_for("/fhir");
    server.route(
        "GET",
        "/fhir/.well-known/smart-configuration",
        Response::json(
            200,
            serde_json::json!({
                "token_endpoint": server.url_for("/token"),
                "grant_types_supported": ["client_credentials"],
                "capabilities": [],
                "code_challenge_methods_supported": ["S256"],
            })
            .to_string(),
        ),
    );
    server.route(
        "POST",
        "/token",
        Behaviour::sequence([
            Behaviour::echo(),
            Response::token(CANARY_ACCESS, 300).into(),
        ]),
    );
    for path in ["/introspect", "/refresh", "/revoke"] {
        server.route("POST", path, Behaviour::echo());
    }
    let http = D::http(HttpOptions::default()).unwrap();
    let key = smart_core::jwk::SigningKey::generate(
        smart_core::assertion::JwsAlgorithm::Es384,
        Some("trace-kid"),
        &SystemEntropy,
    )
    .unwrap();
    let config = BackendServicesConfig::new(
        ClientId::new("trace-client"),
        "system/Patient.rs",
        Arc::new(key),
    )
    .with_fhir_base(FhirBaseUrl::new(&base).unwrap())
    .with_retry_policy(RetryPolicy::none());
    let auth = D::backend_with_client(config, http.clone(), Arc::new(SystemEntropy)).unwrap();
    let echoed = D::token(&auth).unwrap_err();
    let assertion_tail = echoed.to_string();
    assert!(
        assertion_tail.contains("[redacted]"),
        "{}: {echoed}",
        D::NAME
    );
    assert_eq!(
        D::token(&auth).unwrap().access_token.secret(),
        CANARY_ACCESS
    );

    let url = |p: &str| Url::parse(&server.url_for(p)).unwrap();
    let _ = D::introspect(
        &http,
        &url("/introspect"),
        &AccessToken::new(CANARY_INTROSPECTED),
        None,
        IntrospectionAuth::Bearer(AccessToken::new(CANARY_BEARER)),
    )
    .unwrap_err();
    let app = smart_core::launch::AppConfig::new(
        ClientAuth::symmetric("trace-app", ClientSecret::new(CANARY_SECRET)),
        "http://127.0.0.1/callback",
        "openid",
    )
    .unwrap();
    let _ = D::refresh_token(
        &http,
        &app,
        &url("/refresh"),
        &RefreshToken::new(CANARY_REFRESH),
        None,
    )
    .unwrap_err();
    let _ = D::revoke(
        &http,
        &url("/revoke"),
        &AccessToken::new(CANARY_ACCESS),
        None,
        &ClientAuth::symmetric("trace-app", ClientSecret::new(CANARY_SECRET)),
    )
    .unwrap_err();

    let text = capture.text();
    for expected in [
        "smart.flow",
        "smart.request",
        "purpose=\"token\"",
        "purpose=\"discovery\"",
        "purpose=\"introspection\"",
        "purpose=\"refresh\"",
        "purpose=\"revocation\"",
        "client_id=\"trace-client\"",
        "flow=BackendServices",
        "flow=SingleRequest<Introspection>",
        "scope=\"system/Patient.rs\"",
        "status=400",
        "duration_ms=",
    ] {
        assert!(
            text.contains(expected),
            "{}: no {expected} in the trace",
            D::NAME
        );
    }
    for canary in [
        CANARY_ACCESS,
        CANARY_BEARER,
        CANARY_INTROSPECTED,
        CANARY_REFRESH,
        CANARY_SECRET,
    ] {
        assert!(!text.contains(canary), "{}: {canary} in the trace", D::NAME);
    }
    assert!(!text.contains("eyJ"), "{}: a JWT in the trace", D::NAME);
}

/// A token signed by a remote signer: a `smart.sign` span with the algorithm, `kid`, purpose,
/// `client_id`, outcome and duration, next to the request's span — and no assertion, signing
/// input or token in the trace.
pub fn tracing_records_a_sign_span_without_the_assertion<D: Driver>() {
    let capture = crate::trace_capture::install();
    let server = HostileServer::start();
    server.route("POST", "/token", Response::token(CANARY_ACCESS, 300));
    let key = smart_core::jwk::SigningKey::generate(
        smart_core::assertion::JwsAlgorithm::Es384,
        Some("trace-remote-kid"),
        &SystemEntropy,
    )
    .unwrap();
    let signer = super::remote_sign::KmsSigner::spawn(key);
    let config = BackendServicesConfig::new_with_remote_signer(
        ClientId::new("trace-remote-client"),
        "system/Patient.rs",
        signer.clone(),
    )
    .with_smart_configuration(smart_core::discovery::SmartConfiguration::new(
        Url::parse(&server.url_for("/token")).unwrap(),
    ));
    let auth = D::backend(config).unwrap();
    assert_eq!(
        D::token(&auth).unwrap().access_token.secret(),
        CANARY_ACCESS
    );
    assert_eq!(signer.signatures(), 1);

    let text = capture.text();
    let sign_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("smart.sign") && l.contains("trace-remote-kid"))
        .collect();
    assert!(!sign_lines.is_empty(), "{}: no smart.sign span", D::NAME);
    let sign = sign_lines.join("\n");
    for expected in [
        "alg=\"ES384\"",
        "kid=\"trace-remote-kid\"",
        "purpose=\"token\"",
        "client_id=\"trace-remote-client\"",
        "outcome=\"signed\"",
        "duration_ms=",
    ] {
        assert!(
            sign.contains(expected),
            "{}: no {expected} in the smart.sign span: {sign}",
            D::NAME
        );
    }
    assert!(
        text.lines()
            .any(|l| l.contains("smart.request") && l.contains("trace-remote-client")),
        "{}: no smart.request span for the token request",
        D::NAME
    );
    let token_request = &server.requests_to("/token")[0];
    let jwt = token_request.form_value("client_assertion").unwrap();
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    assert!(
        !text.contains(input),
        "{}: the signing input in the trace",
        D::NAME
    );
    assert!(
        !text.contains(signature),
        "{}: the signature in the trace",
        D::NAME
    );
    assert!(
        !text.contains(CANARY_ACCESS),
        "{}: the token in the trace",
        D::NAME
    );
}
