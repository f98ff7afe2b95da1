//! The plain `ureq` middleware (`smart_ureq::middleware::SmartAuth`), which cannot send a
//! request twice: a rejected token is reported, and the next request carries a new one —
//! also with ureq's default `http_status_as_error`, where the 401 reaches the middleware as an
//! error without its headers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use smart_core::backend::BackendServicesConfig;
use smart_core::entropy::SystemEntropy;
use smart_core::retry::RetryPolicy;
use smart_core::{ClientId, FhirBaseUrl};
use smart_testkit::hostile::{Behaviour, HostileServer, Response};
use smart_ureq::middleware::SmartAuth;
use smart_ureq::{BackendServicesAuth, HttpClient};

fn auth(server: &HostileServer) -> Arc<BackendServicesAuth> {
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
            }),
        ),
    );
    let issued = Arc::new(AtomicUsize::new(0));
    server.route(
        "POST",
        "/token",
        Behaviour::from_fn(move |_| {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            Response::token(&format!("tok-{n}"), 300)
        }),
    );
    let config = BackendServicesConfig::new(
        ClientId::new("ureq-middleware"),
        "system/Patient.rs",
        smart_testkit::scenarios::es384_key(),
    )
    .with_fhir_base(FhirBaseUrl::new(server.url_for("/fhir")).unwrap())
    .with_retry_policy(RetryPolicy::none());
    Arc::new(
        BackendServicesAuth::with_client(
            config,
            HttpClient::new().unwrap(),
            Arc::new(SystemEntropy),
        )
        .unwrap(),
    )
}

fn bearers(server: &HostileServer, path: &str) -> Vec<String> {
    server
        .requests_to(path)
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_rejected_token_is_replaced_for_the_next_request_whatever_http_status_as_error() {
    for status_as_error in [true, false] {
        let server = HostileServer::start();
        let auth = auth(&server);
        server.route(
            "GET",
            "/fhir/Patient/1",
            Behaviour::sequence([
                Response::new(401).header("www-authenticate", "Bearer error=\"invalid_token\""),
                Response::json(200, r#"{"resourceType":"Patient"}"#),
            ]),
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(status_as_error)
            .middleware(SmartAuth::new(auth.clone()))
            .build()
            .into();
        let url = server.url_for("/fhir/Patient/1");
        let first = agent.get(&url).call();
        if status_as_error {
            assert!(
                matches!(first, Err(ureq::Error::StatusCode(401))),
                "{first:?}"
            );
        } else {
            assert_eq!(first.unwrap().status().as_u16(), 401);
        }
        let second = agent.get(&url).call().unwrap();
        assert_eq!(second.status().as_u16(), 200);
        assert_eq!(
            bearers(&server, "/fhir/Patient/1"),
            ["Bearer tok-1", "Bearer tok-2"],
            "http_status_as_error({status_as_error})"
        );
    }
}

#[test]
fn a_403_keeps_the_token() {
    let server = HostileServer::start();
    let auth = auth(&server);
    server.route("GET", "/fhir/Patient/1", Response::new(403));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .middleware(SmartAuth::new(auth.clone()))
        .build()
        .into();
    let url = server.url_for("/fhir/Patient/1");
    for _ in 0..2 {
        assert!(matches!(
            agent.get(&url).call(),
            Err(ureq::Error::StatusCode(403))
        ));
    }
    assert_eq!(
        bearers(&server, "/fhir/Patient/1"),
        ["Bearer tok-1", "Bearer tok-1"]
    );
    assert_eq!(server.count("/token"), 1);
}
