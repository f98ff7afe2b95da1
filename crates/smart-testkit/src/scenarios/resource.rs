//! FHIR requests authorized by the drivers' middleware: a token that the resource server
//! rejects is replaced and the request sent again once — never in a loop, never after a
//! `403` or an `insufficient_scope` challenge, and never with the token following a redirect
//! to another origin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use smart_core::backend::BackendServicesConfig;
use smart_core::entropy::SystemEntropy;
use smart_core::retry::RetryPolicy;
use smart_core::{ClientId, FhirBaseUrl};

use super::{es384_key, sandbox_fhir_base};
use crate::driver::{Driver, HttpOptions};
use crate::hostile::{HostileServer, Response};

/// A Backend Services token source at `server`, whose `/token` hands out `tok-1`, `tok-2`, …
fn hostile_auth<D: Driver>(server: &HostileServer) -> Arc<D::Auth> {
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
        crate::hostile::Behaviour::from_fn(move |_| {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            Response::token(&format!("tok-{n}"), 300)
        }),
    );
    let config = BackendServicesConfig::new(
        ClientId::new("middleware-client"),
        "system/Patient.rs",
        es384_key(),
    )
    .with_fhir_base(FhirBaseUrl::new(server.url_for("/fhir")).unwrap())
    .with_retry_policy(RetryPolicy::none());
    let http = D::http(HttpOptions::default()).unwrap();
    Arc::new(D::backend_with_client(config, http, Arc::new(SystemEntropy)).unwrap())
}

/// The tokens the resource at `path` was sent, in order.
fn bearers(server: &HostileServer, path: &str) -> Vec<String> {
    server
        .requests_to(path)
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_owned())
        .collect()
}

/// Against the sandbox: a token revoked between two reads is replaced by the middleware, which
/// sends the second read again with the new token — one extra token request, no error for the
/// caller.
pub fn middleware_replaces_a_revoked_token_and_sends_again_once<D: Driver>() {
    let key = super::key(smart_core::assertion::JwsAlgorithm::Es384);
    let client_id = crate::register_backend_client(&key, "system/Patient.rs", None);
    let config = BackendServicesConfig::new(
        ClientId::new(&client_id),
        "system/Patient.rs",
        Arc::new(key),
    )
    .with_fhir_base(sandbox_fhir_base());
    let auth = Arc::new(D::backend(config).unwrap());
    let url = format!("{}/Patient/123", crate::fhir_base());

    let (status, body) = D::authorized_get(&auth, &url).unwrap();
    assert_eq!(status, 200, "{}: {body}", D::NAME);
    assert!(body.contains("\"Patient\""), "{}: {body}", D::NAME);
    assert_eq!(crate::token_requests(&client_id), 1, "{}", D::NAME);
    let first = D::authorization(&auth).unwrap();

    crate::revoke(&client_id, false);
    let (status, body) = D::authorized_get(&auth, &url).unwrap();
    assert_eq!(status, 200, "{}: after revocation: {body}", D::NAME);
    assert_eq!(crate::token_requests(&client_id), 2, "{}", D::NAME);
    assert_ne!(D::authorization(&auth).unwrap(), first, "{}", D::NAME);

    // The new token is kept: a third read needs no token request.
    let (status, _) = D::authorized_get(&auth, &url).unwrap();
    assert_eq!(status, 200, "{}", D::NAME);
    assert_eq!(crate::token_requests(&client_id), 2, "{}", D::NAME);
}

/// A `401` after the replacement token was sent is the caller's answer: two sends and two
/// token requests at most, whatever the server keeps answering.
pub fn middleware_sends_again_at_most_once<D: Driver>() {
    let server = HostileServer::start();
    let auth = hostile_auth::<D>(&server);
    server.route(
        "GET",
        "/fhir/Patient/1",
        Response::new(401).header("www-authenticate", "Bearer error=\"invalid_token\""),
    );
    let (status, _) = D::authorized_get(&auth, &server.url_for("/fhir/Patient/1")).unwrap();
    assert_eq!(status, 401, "{}", D::NAME);
    assert_eq!(
        bearers(&server, "/fhir/Patient/1"),
        ["Bearer tok-1", "Bearer tok-2"],
        "{}",
        D::NAME
    );
    assert_eq!(server.count("/token"), 2, "{}", D::NAME);
}

/// A `403`, or a `401` whose challenge says `insufficient_scope`, is not about the token
/// being stale: no new token, no second send, and the token is kept for the next request.
pub fn middleware_never_sends_again_after_403_or_insufficient_scope<D: Driver>() {
    let server = HostileServer::start();
    let auth = hostile_auth::<D>(&server);
    server.route("GET", "/fhir/Forbidden/1", Response::new(403));
    server.route(
        "GET",
        "/fhir/Scoped/1",
        Response::new(401).header(
            "www-authenticate",
            "Bearer error=\"insufficient_scope\", scope=\"system/Observation.rs\"",
        ),
    );
    let (status, _) = D::authorized_get(&auth, &server.url_for("/fhir/Forbidden/1")).unwrap();
    assert_eq!(status, 403, "{}", D::NAME);
    let (status, _) = D::authorized_get(&auth, &server.url_for("/fhir/Scoped/1")).unwrap();
    assert_eq!(status, 401, "{}", D::NAME);
    assert_eq!(
        bearers(&server, "/fhir/Forbidden/1"),
        ["Bearer tok-1"],
        "{}",
        D::NAME
    );
    assert_eq!(
        bearers(&server, "/fhir/Scoped/1"),
        ["Bearer tok-1"],
        "{}",
        D::NAME
    );
    assert_eq!(server.count("/token"), 1, "{}", D::NAME);
}

/// A FHIR server that redirects to another origin does not get the token forwarded there.
pub fn middleware_token_does_not_follow_a_redirect_to_another_origin<D: Driver>() {
    let server = HostileServer::start();
    let elsewhere = HostileServer::start();
    let auth = hostile_auth::<D>(&server);
    elsewhere.route(
        "GET",
        "/Patient/1",
        Response::json(200, r#"{"resourceType":"Patient"}"#),
    );
    server.route(
        "GET",
        "/fhir/Patient/1",
        Response::redirect(302, &elsewhere.url_for("/Patient/1")),
    );
    let (status, _) = D::authorized_get(&auth, &server.url_for("/fhir/Patient/1")).unwrap();
    assert_eq!(status, 200, "{}", D::NAME);
    assert_eq!(
        bearers(&server, "/fhir/Patient/1"),
        ["Bearer tok-1"],
        "{}",
        D::NAME
    );
    assert_eq!(bearers(&elsewhere, "/Patient/1"), [""], "{}", D::NAME);
}
