//! Faults of real servers, through a driver end to end (the core's own tests cover each rule
//! in isolation): discovery behind every kind of redirect, with endpoints resolved against the
//! FHIR base rather than the redirect target, and an error redirect without `state`.
// Cases: N01, B02, N08.

use smart_core::client_auth::ClientAuth;
use smart_core::discovery::ConfigSource;
use smart_core::error::CallbackError;
use smart_core::launch::{AppConfig, Launch};
use smart_core::{Error, FhirBaseUrl};

use crate::driver::Driver;
use crate::hostile::{Behaviour, HostileServer, Response};

// Cases: N01, B02.
/// A multi-practice gateway answers the practice's well-known URL with a redirect (each
/// of 301, 302, 303, 307, 308) to a shared script with a query; the document's relative
/// endpoints resolve against the FHIR base as given, not against the redirect target.
pub fn n01_discovery_behind_each_redirect_status_resolves_against_the_fhir_base<D: Driver>() {
    for status in [301, 302, 303, 307, 308] {
        let server = HostileServer::start();
        server.route(
            "GET",
            "/fhir/R4/p1/.well-known/smart-configuration",
            Behaviour::redirect(
                status,
                &server.url_for("/fhir/R4/.well-known/smart-configuration/index.php?practice=p1"),
            ),
        );
        server.route(
            "GET",
            "/fhir/R4/.well-known/smart-configuration/index.php",
            Response::json(
                200,
                serde_json::json!({
                    "token_endpoint": "auth/token",
                    "authorization_endpoint": "/oauth/authorize",
                    "capabilities": ["launch-standalone"],
                    "code_challenge_methods_supported": ["S256"],
                }),
            ),
        );
        let base = FhirBaseUrl::new(server.url_for("/fhir/R4/p1")).unwrap();
        let d = D::discover(&D::default_http(), &base)
            .unwrap_or_else(|e| panic!("{} {status}: {e}", D::NAME));
        assert_eq!(d.source, ConfigSource::WellKnown, "{} {status}", D::NAME);
        // RFC 3986 §5.2 against `…/fhir/R4/p1`: the last segment is replaced.
        assert_eq!(
            d.config.token_endpoint.as_str(),
            server.url_for("/fhir/R4/auth/token"),
            "{} {status}",
            D::NAME
        );
        assert_eq!(
            d.config
                .authorization_endpoint
                .as_ref()
                .map(|e| e.as_str().to_owned()),
            Some(server.url_for("/oauth/authorize")),
            "{} {status}",
            D::NAME
        );
        let query = server
            .last_request("/fhir/R4/.well-known/smart-configuration/index.php")
            .unwrap()
            .query_pairs();
        assert_eq!(
            query,
            [("practice".to_owned(), "p1".to_owned())],
            "{status}"
        );
    }
}

// Requirements and cases: N01.
/// The CapabilityStatement fallback behind a relative redirect.
pub fn n01_metadata_fallback_behind_a_relative_redirect<D: Driver>() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/fhir/R4/p1/.well-known/smart-configuration",
        Response::new(404),
    );
    server.route(
        "GET",
        "/fhir/R4/p1/metadata",
        Behaviour::redirect(302, "/fhir/R4/metadata?practice=p1"),
    );
    let token = server.url_for("/oauth/token");
    server.route(
        "GET",
        "/fhir/R4/metadata",
        Response::json(
            200,
            serde_json::json!({
                "resourceType": "CapabilityStatement",
                "rest": [{
                    "mode": "server",
                    "security": {
                        "extension": [{
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [
                                {"url": "token", "valueUri": token},
                                {"url": "authorize", "valueUri": server.url_for("/oauth/authorize")}
                            ]
                        }]
                    }
                }]
            }),
        ),
    );
    let base = FhirBaseUrl::new(server.url_for("/fhir/R4/p1")).unwrap();
    let d = D::discover(&D::default_http(), &base).unwrap();
    assert_eq!(d.source, ConfigSource::CapabilityStatement, "{}", D::NAME);
    assert_eq!(d.config.token_endpoint.as_str(), token, "{}", D::NAME);
    assert_eq!(server.count("/fhir/R4/metadata"), 1, "{}", D::NAME);
}

// Requirements and cases: N08.
/// An error redirect without `state` reports the server's `error` and
/// `error_description`, marked unverified; no token request is made, and the same pending
/// authorization still completes with a proper callback.
pub fn n08_error_redirect_without_state_reports_the_reason_unverified<D: Driver>() {
    let (server, http, app, request) = standalone_launch_at_a_scripted_server::<D>(
        "n08-app",
        "launch/patient patient/*.rs",
        "n08-token",
    );
    let callback = "http://127.0.0.1/cb?error=invalid_scope&error_description=Scope%20patient%2F*.rs%20is%20not%20allowed";
    // As a web app keeps it: serialized in the user's session, read back per request.
    let session = serde_json::to_string(&request.pending).unwrap();
    let pending = || serde_json::from_str(&session).unwrap();
    let err = D::complete_launch(&http, &app, pending(), callback).unwrap_err();
    let Error::Callback(CallbackError::UnverifiedAuthorization(o)) = &err else {
        panic!(
            "{}: expected an unverified authorization error, got {err:?}",
            D::NAME
        );
    };
    assert_eq!(o.error, "invalid_scope");
    assert_eq!(
        o.error_description.as_deref(),
        Some("Scope patient/*.rs is not allowed")
    );
    assert!(err.to_string().contains("unverified"), "{err}");
    assert_eq!(server.count("/token"), 0, "{}: no token request", D::NAME);

    // Nothing was spent: the real callback still completes with the stored authorization.
    let state = state_of(&request.url);
    let ok = format!("http://127.0.0.1/cb?code=c0de&state={state}");
    let client = D::complete_launch(&http, &app, pending(), &ok).unwrap();
    assert_eq!(
        D::client_token(&client).unwrap().access_token.secret(),
        "n08-token"
    );
    assert_eq!(server.count("/token"), 1, "{}", D::NAME);
}

/// A callback's observation reaches the caller: the server sends an RFC 9207 `iss` but its
/// discovery document names no `issuer` to check it against; `complete_launch` proceeds and
/// the warning is the first of the token's warnings (it used to be dropped).
pub fn callback_warnings_reach_the_token_warnings<D: Driver>() {
    let (_server, http, app, request) =
        standalone_launch_at_a_scripted_server::<D>("iss-app", "launch/patient", "iss-token");
    let state = state_of(&request.url);
    let callback =
        format!("http://127.0.0.1/cb?code=c0de&state={state}&iss=https%3A%2F%2Fas.example.org");
    let client = D::complete_launch(&http, &app, request.pending, &callback).unwrap();
    let token = D::client_token(&client).unwrap();
    assert_eq!(token.access_token.secret(), "iss-token");
    let first = token.warnings.first().map(String::as_str).unwrap_or("");
    assert!(
        first.contains("RFC 9207 iss https://as.example.org"),
        "{}: {:?}",
        D::NAME,
        token.warnings
    );
}

/// `SmartClientBuilder::retry_policy` governs a session's refreshes: against a token endpoint
/// answering 500, one attempt with `max_attempts: 1`, three with the default policy.
pub fn builder_retry_policy_governs_refresh_attempts<D: Driver>() {
    use smart_core::retry::RetryPolicy;
    for (policy, attempts) in [
        (Some(RetryPolicy::default().with_max_attempts(1)), 1),
        (None, 3),
    ] {
        let server = HostileServer::start();
        server.route(
            "POST",
            "/token",
            Behaviour::json(500, serde_json::json!({"error": "server_error"})),
        );
        let token_url = url::Url::parse(&server.url_for("/token")).unwrap();
        let expired = serde_json::json!({
            "access_token": "old", "token_type": "Bearer", "expires_in": 1,
            "refresh_token": "r1", "scope": "openid",
        });
        let issued = super::now().minus_secs(3600);
        let token = smart_core::token::parse_token_response(
            &smart_core::HttpResponse::new(200, expired.to_string()),
            &token_url,
            issued,
        )
        .unwrap();
        let app = AppConfig::new(
            ClientAuth::public("retry-app"),
            "http://127.0.0.1/cb",
            "openid",
        )
        .unwrap();
        let session = smart_core::session::Session::new(
            &app,
            FhirBaseUrl::new(server.url_for("/fhir")).unwrap(),
            token_url,
            token,
            issued,
        );
        let client = D::client(
            session,
            crate::driver::ClientOptions {
                http: None,
                store: None,
                store_key: None,
                on_rotate: None,
                retry: policy,
            },
        )
        .unwrap();
        assert!(D::client_token(&client).is_err(), "{}", D::NAME);
        assert_eq!(server.count("/token"), attempts, "{}", D::NAME);
    }
}

/// A scripted server with a smart-configuration for a standalone launch and a token endpoint
/// answering `access_token`; a public client `client_id` asking for `scope` has begun the
/// launch: `(server, http, app, request)`.
fn standalone_launch_at_a_scripted_server<D: Driver>(
    client_id: &str,
    scope: &str,
    access_token: &str,
) -> (
    HostileServer,
    D::Http,
    AppConfig,
    smart_core::launch::AuthorizationRequest,
) {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/fhir/.well-known/smart-configuration",
        Response::json(
            200,
            serde_json::json!({
                "token_endpoint": server.url_for("/token"),
                "authorization_endpoint": server.url_for("/authorize"),
                "capabilities": ["launch-standalone"],
                "code_challenge_methods_supported": ["S256"],
            }),
        ),
    );
    server.route("POST", "/token", Response::token(access_token, 300));
    let http = D::default_http();
    let app = AppConfig::new(ClientAuth::public(client_id), "http://127.0.0.1/cb", scope).unwrap();
    let base = FhirBaseUrl::new(server.url_for("/fhir")).unwrap();
    let request = D::begin_launch(&http, &app, Launch::standalone(base)).unwrap();
    (server, http, app, request)
}

/// The `state` parameter of an authorization URL.
fn state_of(url: &url::Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}
