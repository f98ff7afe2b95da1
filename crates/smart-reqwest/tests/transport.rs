//! Transport policy of the async adapter, against tiny loopback HTTP/1.1 servers (std
//! `TcpListener`, canned answers, `Connection: close`): no redirects followed, the body cap,
//! OAuth and non-OAuth error statuses, the https-or-loopback rule, the bytes on the wire, and
//! timeouts (the flow is aborted and the next poll signs a new assertion).

use std::sync::Arc;
use std::time::{Duration, Instant};

use smart_core::assertion::{CLIENT_ASSERTION_TYPE, JwsAlgorithm};
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::{Action, ClientId, FhirBaseUrl, Flow, HttpRequest, UnixTime};
use smart_reqwest::{BackendServicesAuth, Error, HttpClient};
use smart_testkit::mock::{Behaviour, response, serve};
use url::Url;

fn key() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(JwsAlgorithm::Es384, None, &SystemEntropy).unwrap())
}

fn flow_for(token_url: &str) -> BackendServices {
    let config =
        BackendServicesConfig::new(ClientId::new("transport-test"), "system/Patient.rs", key())
            .with_smart_configuration(SmartConfiguration::new(Url::parse(token_url).unwrap()));
    BackendServices::new(config, Arc::new(SystemEntropy)).unwrap()
}

fn now() -> UnixTime {
    UnixTime::from(std::time::SystemTime::now())
}

const TOKEN_JSON: &str = r#"{"access_token":"x","token_type":"bearer","expires_in":3600}"#;

#[tokio::test]
async fn a_302_from_the_token_endpoint_is_not_followed_and_is_an_http_error() {
    let (target, target_rx) = serve(Behaviour::Answer(response("200 OK", &[], TOKEN_JSON)));
    let location = format!("http://{target}/token");
    let (addr, rx) = serve(Behaviour::Answer(response(
        "302 Found",
        &[("Location", &location)],
        "",
    )));
    let token_url = format!("http://{addr}/token");
    let mut flow = flow_for(&token_url);
    let err = HttpClient::new().unwrap().run(&mut flow).await.unwrap_err();
    match err {
        Error::Smart(smart_core::Error::Http { status, url }) => {
            assert_eq!(status, 302);
            assert_eq!(url, token_url);
        }
        other => panic!("expected Http 302, got {other:?}"),
    }
    assert_eq!(rx.try_recv().unwrap().path, "/token");
    assert!(
        target_rx.try_recv().is_err(),
        "the redirect target must never see a request"
    );
}

#[tokio::test]
async fn a_302_during_discovery_is_not_followed_and_discovery_fails() {
    let (target, target_rx) = serve(Behaviour::Answer(response("200 OK", &[], "{}")));
    let location = format!("http://{target}/elsewhere");
    let (addr, rx) = serve(Behaviour::Answer(response(
        "302 Found",
        &[("Location", &location)],
        "",
    )));
    let base = FhirBaseUrl::new(&format!("http://{addr}/fhir")).unwrap();
    let err = smart_reqwest::discover(&HttpClient::new().unwrap(), &base)
        .await
        .unwrap_err();
    match err {
        Error::Smart(smart_core::Error::Discovery(d)) => assert_eq!(d.status, Some(302)),
        other => panic!("expected a discovery error, got {other:?}"),
    }
    // Both sources were tried, on the original server only.
    assert_eq!(
        rx.try_recv().unwrap().path,
        "/fhir/.well-known/smart-configuration"
    );
    assert_eq!(rx.try_recv().unwrap().path, "/fhir/metadata");
    assert!(target_rx.try_recv().is_err());
}

#[tokio::test]
async fn a_body_over_the_cap_is_body_too_large() {
    let big = "a".repeat(4096);
    let (addr, _rx) = serve(Behaviour::Answer(response("200 OK", &[], &big)));
    let http = HttpClient::builder().max_body_bytes(1024).build().unwrap();
    let url = Url::parse(&format!("http://{addr}/big")).unwrap();
    match http
        .send(HttpRequest::get_json(url.clone()))
        .await
        .unwrap_err()
    {
        Error::BodyTooLarge { url: u, limit } => {
            assert_eq!(limit, 1024);
            assert_eq!(u, url.as_str());
        }
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
    // At the cap exactly, the body is read.
    let http = HttpClient::builder().max_body_bytes(4096).build().unwrap();
    let resp = http.send(HttpRequest::get_json(url)).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 4096);
}

#[tokio::test]
async fn a_400_oauth_error_from_the_token_endpoint_is_a_typed_oauth_error() {
    let body = r#"{"error":"invalid_scope","error_description":"nothing allowed"}"#;
    let (addr, _rx) = serve(Behaviour::Answer(response(
        "400 Bad Request",
        &[("Content-Type", "application/json")],
        body,
    )));
    let config = BackendServicesConfig::new(ClientId::new("c"), "system/Patient.rs", key())
        .with_smart_configuration(SmartConfiguration::new(
            Url::parse(&format!("http://{addr}/token")).unwrap(),
        ));
    let auth = BackendServicesAuth::new(config).unwrap();
    let err = auth.token().await.unwrap_err();
    let Error::Smart(smart_core::Error::OAuth(o)) = &err else {
        panic!("expected an OAuth error, got {err:?}");
    };
    assert_eq!(o.status, Some(400));
    assert_eq!(o.error, "invalid_scope");
    assert_eq!(o.error_description.as_deref(), Some("nothing allowed"));
}

#[tokio::test]
async fn a_500_with_html_is_an_http_error() {
    let (addr, _rx) = serve(Behaviour::Answer(response(
        "500 Internal Server Error",
        &[("Content-Type", "text/html")],
        "<html><body>oops</body></html>",
    )));
    let token_url = format!("http://{addr}/token");
    let err = HttpClient::new()
        .unwrap()
        .run(&mut flow_for(&token_url))
        .await
        .unwrap_err();
    match err {
        Error::Smart(smart_core::Error::Http { status, url }) => {
            assert_eq!(status, 500);
            assert_eq!(url, token_url);
        }
        other => panic!("expected Http 500, got {other:?}"),
    }
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_host_is_refused_unless_allowed() {
    let url = Url::parse("http://ehr.invalid/fhir/metadata").unwrap();
    match HttpClient::new()
        .unwrap()
        .send(HttpRequest::get_json(url.clone()))
        .await
        .unwrap_err()
    {
        Error::Smart(smart_core::Error::InsecureUrl { url: u }) => assert_eq!(u, url.as_str()),
        other => panic!("expected InsecureUrl, got {other:?}"),
    }
    // Opted in: the request is attempted. It fails to resolve the reserved `.invalid` name
    // (or, behind an HTTP proxy, the proxy answers); either way it is not refused.
    let result = HttpClient::builder()
        .allow_insecure_http(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .send(HttpRequest::get_json(url.clone()))
        .await;
    match result {
        Err(Error::Transport { url: u, .. }) => assert_eq!(u, url.as_str()),
        Ok(_) => {}
        Err(other) => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_request_on_the_wire_is_exactly_what_the_core_produced() {
    let (addr, rx) = serve(Behaviour::Answer(response("200 OK", &[], TOKEN_JSON)));
    let url = Url::parse(&format!("http://{addr}/token?x=1")).unwrap();
    let mut req = HttpRequest::post_form(
        url,
        [
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs a|b"),
        ],
    );
    req.headers.push(("x-extra".into(), "value 1".into()));
    let resp = HttpClient::new().unwrap().send(req.clone()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, TOKEN_JSON.as_bytes());
    let raw = rx.try_recv().unwrap();
    assert_eq!(raw.method, "POST");
    assert_eq!(raw.path, "/token?x=1");
    assert_eq!(raw.body, req.body);
    for (k, v) in &req.headers {
        assert_eq!(raw.header(k), Some(v.as_str()), "header {k}");
    }
    assert_eq!(
        raw.header("content-length"),
        Some(req.body.len().to_string().as_str())
    );

    // A whole Backend Services token request, as signed by the core.
    let token_url = format!("http://{addr}/token");
    let token = HttpClient::new()
        .unwrap()
        .run(&mut flow_for(&token_url))
        .await
        .unwrap();
    assert_eq!(token.access_token.secret(), "x");
    let raw = rx.try_recv().unwrap();
    assert_eq!((raw.method.as_str(), raw.path.as_str()), ("POST", "/token"));
    assert_eq!(
        raw.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(raw.header("accept"), Some("application/json"));
    let form = raw.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(field("grant_type"), "client_credentials");
    assert_eq!(field("scope"), "system/Patient.rs");
    assert_eq!(field("client_assertion_type"), CLIENT_ASSERTION_TYPE);
    assert_eq!(field("client_assertion").split('.').count(), 3);
}

#[tokio::test]
async fn a_timeout_is_a_transport_error_and_aborts_the_flow() {
    let (addr, rx) = serve(Behaviour::Silent);
    let token_url = format!("http://{addr}/token");
    let mut flow = flow_for(&token_url);
    let http = HttpClient::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = http.run(&mut flow).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match &err {
        Error::Transport { url, .. } => assert_eq!(url, &token_url),
        other => panic!("expected Transport, got {other:?}"),
    }
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(!flow.is_awaiting_response(), "the driver aborted the flow");
    // The next poll issues a new token request with a newly signed assertion.
    let Action::Send(again) = flow.poll(now()).unwrap() else {
        panic!("expected a new request");
    };
    let assertion = |fields: Vec<(String, String)>| {
        fields
            .into_iter()
            .find(|(k, _)| k == "client_assertion")
            .map(|(_, v)| v)
            .unwrap()
    };
    assert_eq!(again.url.as_str(), token_url);
    assert_ne!(assertion(again.form_fields()), assertion(first.form()));
}
