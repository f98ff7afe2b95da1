//! Transport policy of a driver, against the [hostile](crate::hostile) loopback server: a
//! credential-carrying `POST` is never redirected, discovery `GET`s follow up to five
//! redirects (https or loopback only), the body cap, OAuth and non-OAuth error statuses, the
//! https-or-loopback rule, the bytes on the wire, and the typed transport errors (timeout,
//! refused connection, oversized body).

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smart_core::assertion::CLIENT_ASSERTION_TYPE;
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::discovery::{ConfigSource, Discovery, SmartConfiguration};
use smart_core::entropy::SystemEntropy;
use smart_core::error::TransportErrorKind;
use smart_core::{Action, ClientId, Error, FhirBaseUrl, Flow, HttpRequest};
use url::Url;

use super::{assertion_jti, es384_key, now};
use crate::driver::{Driver, HttpOptions};
use crate::hostile::{Behaviour, HostileServer, Response};

const TOKEN_JSON: &str = r#"{"access_token":"x","token_type":"bearer","expires_in":3600}"#;
const WELL_KNOWN: &str = "/fhir/.well-known/smart-configuration";

fn token_config(token_url: &str) -> BackendServicesConfig {
    BackendServicesConfig::new(
        ClientId::new("transport-test"),
        "system/Patient.rs",
        es384_key(),
    )
    .with_smart_configuration(SmartConfiguration::new(Url::parse(token_url).unwrap()))
}

/// A Backend Services token source for `token_url` (no discovery).
fn token_flow(token_url: &str) -> BackendServices {
    BackendServices::new(token_config(token_url), Arc::new(SystemEntropy)).unwrap()
}

fn smart_configuration_json(token_endpoint: &str) -> String {
    serde_json::json!({
        "token_endpoint": token_endpoint,
        "capabilities": [],
        "code_challenge_methods_supported": ["S256"],
    })
    .to_string()
}

/// A 302 or 307 answer to the token `POST` is `Error::Redirect` naming the status and
/// `Location`, and the redirect target never sees a request (the assertion would leak there).
pub fn a_redirect_from_the_token_endpoint_is_refused_and_not_followed<D: Driver>() {
    for status in [302, 307] {
        let target = HostileServer::start();
        target.route("POST", "/token", Response::json(200, TOKEN_JSON));
        let server = HostileServer::start();
        let location = target.url_for("/token");
        server.route("POST", "/token", Behaviour::redirect(status, &location));
        let token_url = server.url_for("/token");
        let mut flow = token_flow(&token_url);
        let err = D::run(&D::default_http(), &mut flow).unwrap_err();
        assert_eq!(
            err,
            Error::Redirect {
                url: token_url.clone(),
                status,
                location: Some(location.clone()),
            },
            "{}",
            D::NAME
        );
        assert_eq!(server.count("/token"), 1, "a redirect is not retried");
        assert_eq!(
            target.total(),
            0,
            "the redirect target must never see a request"
        );
        assert!(!flow.is_fetching());
    }
}

/// Discovery follows a relative 302 and an absolute 307 (to another loopback server); the
/// document is parsed against the FHIR base as given, and `/metadata` is never asked for.
pub fn discovery_follows_302_and_307_relative_and_absolute<D: Driver>() {
    let last = HostileServer::start();
    let token_endpoint = "https://ehr.example.org/token";
    last.route(
        "GET",
        "/final/smart-configuration",
        Behaviour::json(200, smart_configuration_json(token_endpoint)),
    );
    let first = HostileServer::start();
    first.route(
        "GET",
        WELL_KNOWN,
        Behaviour::redirect(302, "/moved/smart-configuration"),
    );
    first.route(
        "GET",
        "/moved/smart-configuration",
        Behaviour::redirect(307, &last.url_for("/final/smart-configuration")),
    );
    let base = FhirBaseUrl::new(first.url_for("/fhir")).unwrap();
    let d = D::discover(&D::default_http(), &base).unwrap();
    assert_eq!(d.source, ConfigSource::WellKnown);
    assert_eq!(d.config.token_endpoint.as_str(), token_endpoint);
    assert_eq!(
        d.url.as_str(),
        last.url_for("/final/smart-configuration"),
        "the URL the document came from"
    );
    assert_eq!(first.count(WELL_KNOWN), 1);
    assert_eq!(first.count("/moved/smart-configuration"), 1);
    assert_eq!(last.count("/final/smart-configuration"), 1);
    assert_eq!(first.count("/fhir/metadata"), 0);
    // Each hop is a GET with the same Accept header.
    for r in first.requests().iter().chain(last.requests().iter()) {
        assert_eq!(r.method, "GET");
        assert_eq!(r.header("accept"), Some("application/json"));
    }
}

/// Five redirects are followed; a sixth is `Error::Redirect` and its target is never asked.
pub fn discovery_follows_at_most_five_redirects<D: Driver>() {
    let server = HostileServer::start();
    let hop = |n: usize| format!("/hop{n}");
    server.route("GET", WELL_KNOWN, Behaviour::redirect(302, &hop(1)));
    for n in 1..=5 {
        server.route("GET", &hop(n), Behaviour::redirect(307, &hop(n + 1)));
    }
    let doc = Behaviour::json(
        200,
        smart_configuration_json("https://ehr.example.org/token"),
    );
    server.route("GET", &hop(6), doc.clone());
    let base = FhirBaseUrl::new(server.url_for("/fhir")).unwrap();
    let err = D::discover(&D::default_http(), &base).unwrap_err();
    assert_eq!(
        err,
        Error::Redirect {
            url: server.url_for(&hop(5)),
            status: 307,
            location: Some(hop(6)),
        }
    );
    assert_eq!(server.count(&hop(5)), 1);
    assert_eq!(
        server.count(&hop(6)),
        0,
        "the sixth redirect is not followed"
    );
    assert_eq!(server.count("/fhir/metadata"), 0);

    // With the document one hop earlier (five redirects in all), discovery succeeds.
    server.route("GET", &hop(5), doc);
    let d = D::discover(&D::default_http(), &base).unwrap();
    assert_eq!(d.url.as_str(), server.url_for(&hop(5)));
    assert_eq!(
        d.config.token_endpoint.as_str(),
        "https://ehr.example.org/token"
    );
}

/// A discovery redirect to plain `http://` on a non-loopback host is refused (the
/// https-or-loopback rule applies to every hop).
pub fn a_discovery_redirect_to_plain_http_elsewhere_is_refused<D: Driver>() {
    let server = HostileServer::start();
    server.route(
        "GET",
        WELL_KNOWN,
        Behaviour::redirect(
            301,
            "http://ehr.invalid/fhir/.well-known/smart-configuration",
        ),
    );
    let base = FhirBaseUrl::new(server.url_for("/fhir")).unwrap();
    let err = D::discover(&D::default_http(), &base).unwrap_err();
    assert_eq!(
        err,
        Error::InsecureUrl {
            url: "http://ehr.invalid/fhir/.well-known/smart-configuration".into()
        }
    );
    assert_eq!(server.total(), 1);
}

/// A body over the cap is `TransportErrorKind::BodyTooLarge` (from `send` and from a flow); a
/// body exactly at the cap is read.
pub fn a_body_over_the_cap_is_body_too_large<D: Driver>() {
    let server = HostileServer::start();
    server.route("GET", "/big", Response::text(200, "a".repeat(4096)));
    let http = D::http(HttpOptions::default().max_body_bytes(1024)).unwrap();
    let url = Url::parse(&server.url_for("/big")).unwrap();
    let Error::Transport(e) = D::send(&http, HttpRequest::get_json(url.clone())).unwrap_err()
    else {
        panic!("not a transport error")
    };
    assert_eq!(e.kind, TransportErrorKind::BodyTooLarge { limit: 1024 });
    assert_eq!(e.url, url.as_str());
    // Through a flow: the same typed error.
    server.route("GET", WELL_KNOWN, Response::text(200, "a".repeat(4096)));
    let base = FhirBaseUrl::new(server.url_for("/fhir")).unwrap();
    match D::run(&http, Discovery::new(base)) {
        Err(Error::Transport(t)) => {
            assert_eq!(t.kind, TransportErrorKind::BodyTooLarge { limit: 1024 });
            assert_eq!(t.url, server.url_for(WELL_KNOWN));
        }
        other => panic!("expected a BodyTooLarge transport error, got {other:?}"),
    }
    // At the cap exactly, the body is read.
    let http = D::http(HttpOptions::default().max_body_bytes(4096)).unwrap();
    let resp = D::send(&http, HttpRequest::get_json(url)).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 4096);
}

/// A 400 OAuth error from the token endpoint is `Error::OAuth` with status, code and
/// description, and it is not retried.
pub fn a_400_oauth_error_from_the_token_endpoint_is_a_typed_oauth_error<D: Driver>() {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Response::oauth_error(400, "invalid_scope", "nothing allowed"),
    );
    let auth = D::backend(token_config(&server.url_for("/token"))).unwrap();
    let err = D::token(&auth).unwrap_err();
    let Error::OAuth(o) = &err else {
        panic!("expected an OAuth error, got {err:?}");
    };
    assert_eq!(o.status, Some(400));
    assert_eq!(o.error, "invalid_scope");
    assert_eq!(o.error_description.as_deref(), Some("nothing allowed"));
    assert_eq!(server.count("/token"), 1, "OAuth errors are not retried");
}

/// A 500 with an HTML body is `Error::Http` after the retry policy's three attempts, each a
/// new request with a newly signed assertion.
pub fn a_500_with_html_is_an_http_error_after_three_attempts<D: Driver>() {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Response::new(500)
            .header("Content-Type", "text/html")
            .body("<html><body>oops</body></html>"),
    );
    let token_url = server.url_for("/token");
    let err = D::run(&D::default_http(), &mut token_flow(&token_url)).unwrap_err();
    assert_eq!(
        err,
        Error::Http {
            url: token_url,
            status: 500
        }
    );
    let requests = server.requests_to("/token");
    assert_eq!(requests.len(), 3, "three attempts (smart_core::retry)");
    let jtis: std::collections::HashSet<String> =
        requests.iter().map(|r| assertion_jti(&r.form())).collect();
    assert_eq!(jtis.len(), 3, "a new assertion for each attempt");
}

/// Plain `http://` to a non-loopback host is `Error::InsecureUrl` without a request; with
/// the opt-in the request is attempted.
pub fn plain_http_to_a_non_loopback_host_is_refused_unless_allowed<D: Driver>() {
    let base = FhirBaseUrl::new("http://ehr.invalid/fhir").unwrap();
    let well_known = "http://ehr.invalid/fhir/.well-known/smart-configuration";
    let err = D::discover(&D::default_http(), &base).unwrap_err();
    assert_eq!(
        err,
        Error::InsecureUrl {
            url: well_known.into()
        }
    );
    // A token source configured with such an endpoint is refused when it is built.
    let config = token_config("http://ehr.invalid/token");
    assert_eq!(
        D::backend(config).unwrap_err(),
        Error::InsecureUrl {
            url: "http://ehr.invalid/token".into()
        }
    );
    // Opted in: the request is attempted. It fails to resolve the reserved `.invalid` name
    // (or, behind an HTTP proxy, the proxy answers); either way it is not refused.
    let http = D::http(
        HttpOptions::default()
            .allow_insecure_http(true)
            .timeout(Duration::from_secs(5)),
    )
    .unwrap();
    match D::discover(&http, &base) {
        Err(Error::Transport(t)) => assert_eq!(t.url, well_known),
        Err(Error::Discovery(d)) => assert_eq!(d.url, well_known),
        Err(other) => panic!("expected a transport error, got {other:?}"),
        Ok(d) => panic!("a configuration from ehr.invalid? {:?}", d.url),
    }
}

/// `send` puts exactly the core's request on the wire: method, target with its query, body,
/// headers, `Content-Length`; and a whole Backend Services token request as the core signed it.
pub fn the_request_on_the_wire_is_exactly_what_the_core_produced<D: Driver>() {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::json(200, TOKEN_JSON));
    let url = Url::parse(&format!("{}?x=1", server.url_for("/token"))).unwrap();
    let mut req = HttpRequest::post_form(
        url,
        [
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs a|b"),
        ],
    );
    req.headers.push(("x-extra".into(), "value 1".into()));
    let resp = D::send(&D::default_http(), req.clone()).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, TOKEN_JSON.as_bytes());
    let raw = server.last_request("/token").unwrap();
    assert_eq!(raw.method, "POST");
    assert_eq!(raw.target, "/token?x=1");
    assert_eq!(raw.body, req.body);
    assert!(!raw.chunked);
    for (k, v) in &req.headers {
        assert_eq!(raw.header(k), Some(v.as_str()), "header {k}");
    }
    assert_eq!(
        raw.header("content-length"),
        Some(req.body.len().to_string().as_str())
    );

    // A whole Backend Services token request, as signed by the core.
    let token_url = server.url_for("/token");
    let token = D::run(&D::default_http(), &mut token_flow(&token_url)).unwrap();
    assert_eq!(token.access_token.secret(), "x");
    assert_eq!(server.count("/token"), 2);
    let raw = server.last_request("/token").unwrap();
    assert_eq!(
        (raw.method.as_str(), raw.target.as_str()),
        ("POST", "/token")
    );
    assert_eq!(
        raw.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(raw.header("accept"), Some("application/json"));
    assert_eq!(raw.header("authorization"), None);
    let field = |name: &str| raw.form_value(name).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(field("grant_type"), "client_credentials");
    assert_eq!(field("scope"), "system/Patient.rs");
    assert_eq!(field("client_assertion_type"), CLIENT_ASSERTION_TYPE);
    assert_eq!(field("client_assertion").split('.').count(), 3);
}

/// A timeout is `Error::Transport` of kind `Timeout` with the driver's error as its source. A
/// timeout is not retried: the flight ends, polls during the backoff return the same error
/// without a request, and the poll after it signs a new assertion.
pub fn a_timeout_is_a_typed_transport_error_and_ends_the_flight<D: Driver>() {
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::hang());
    let token_url = server.url_for("/token");
    let mut flow = token_flow(&token_url);
    let http = D::http(HttpOptions::default().timeout(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    let err = D::run(&http, &mut flow).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let Error::Transport(t) = &err else {
        panic!("{}: expected a transport error, got {err:?}", D::NAME);
    };
    assert_eq!(t.kind, TransportErrorKind::Timeout, "{}: {t:?}", D::NAME);
    assert_eq!(t.url, token_url);
    assert!(err.source().is_some(), "{}: the driver's error", D::NAME);
    assert_eq!(server.count("/token"), 1, "a timeout is not retried");
    let first = server.last_request("/token").unwrap();
    assert!(!flow.is_fetching(), "the flight is over");
    // During the backoff: the same error, no request.
    assert_eq!(flow.poll(now()).unwrap_err(), err);
    // After it, a new token request with a newly signed assertion.
    let Action::Send(again) = flow.poll(now().plus_secs(3600)).unwrap() else {
        panic!("expected a new request");
    };
    assert_eq!(again.url.as_str(), token_url);
    assert_ne!(
        assertion_jti(&again.form_fields()),
        assertion_jti(&first.form())
    );
}

/// A refused connection is `TransportErrorKind::Connect` (with a source); a token source
/// retries it (three attempts) and then reports it.
pub fn a_refused_connection_is_a_connect_transport_error<D: Driver>() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = Url::parse(&format!("http://{addr}/token")).unwrap();
    let Error::Transport(e) =
        D::send(&D::default_http(), HttpRequest::get_json(url.clone())).unwrap_err()
    else {
        panic!("not a transport error")
    };
    assert_eq!(e.kind, TransportErrorKind::Connect, "{}: {e:?}", D::NAME);
    assert_eq!(e.url, url.as_str());
    assert!(e.source().is_some());
    let started = Instant::now();
    let err = D::run(&D::default_http(), &mut token_flow(url.as_str())).unwrap_err();
    match &err {
        Error::Transport(t) => assert_eq!(t.kind, TransportErrorKind::Connect),
        other => panic!("expected a Connect transport error, got {other:?}"),
    }
    // Two retry delays (200 ms and 400 ms, each with jitter down to half) were waited out.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

/// A token source built with the caller's client uses its settings (here a 200 ms timeout);
/// after the failed flight, callers get the same error at once during the backoff, without a
/// request (`smart_core::retry`).
pub fn a_token_source_uses_the_callers_client_and_backs_off_after_a_timeout<D: Driver>() {
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::hang());
    let http = D::http(HttpOptions::default().timeout(Duration::from_millis(200))).unwrap();
    let auth = D::backend_with_client(
        token_config(&server.url_for("/token")),
        http,
        Arc::new(SystemEntropy),
    )
    .unwrap();
    let started = Instant::now();
    let err = D::token(&auth).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
        "{}: {err:?}",
        D::NAME
    );
    assert_eq!(D::authorization(&auth).unwrap_err(), err);
    assert_eq!(server.count("/token"), 1, "no request during the backoff");
}
