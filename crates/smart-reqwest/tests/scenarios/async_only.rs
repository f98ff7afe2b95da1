//! What only the async driver has.
//!
//! - A token call dropped while its request is in flight (a blocking caller cannot be
//!   cancelled): the driver aborts the flight (`Flow::abort`), and the next call signs a new
//!   assertion instead of replaying the old one (case B24).
//! - An [`AsyncTokenStore`] whose writes take time: `SmartClientBuilder::build` and
//!   `SmartClient::refresh` finish their store write before they return.

use std::sync::Arc;
use std::time::Duration;

use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::client_auth::ClientAuth;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::launch::AppConfig;
use smart_core::session::Session;
use smart_core::store::{InMemoryTokenStore, StoredToken, TokenStore};
use smart_core::token::parse_token_response;
use smart_core::{ClientId, FhirBaseUrl};
use smart_core::{HttpResponse, UnixTime};
use smart_reqwest::{AsyncTokenStore, BackendServicesAuth, HttpClient, SmartClient, StoreFuture};
use smart_testkit as kit;
use smart_testkit::hostile::{Behaviour, HostileServer, Response};
use smart_testkit::scenarios::{assertion_jti, es384_key, key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_token_call_is_aborted_and_the_next_call_re_signs() {
    let server = Arc::new(HostileServer::start());
    // The first token request is held unanswered; the next ones get a token.
    server.route(
        "POST",
        "/token",
        Behaviour::sequence([Behaviour::hang(), Response::token("second", 3600).into()]),
    );
    let config = BackendServicesConfig::new(
        ClientId::new("cancel-test"),
        "system/Patient.rs",
        es384_key(),
    )
    .with_smart_configuration(SmartConfiguration::new(
        url::Url::parse(&server.url_for("/token")).unwrap(),
    ));
    let auth = BackendServicesAuth::new(config).unwrap();

    // Drop the call once the server holds its request: it is really mid-flight.
    let waiter = server.clone();
    let arrived =
        tokio::task::spawn_blocking(move || waiter.wait_for("/token", 1, Duration::from_secs(10)));
    tokio::select! {
        r = auth.token() => panic!("the first request must not complete: {r:?}"),
        arrived = arrived => assert!(arrived.unwrap(), "the first request reached the server"),
    }
    // The flight was aborted when the call was dropped; the next caller starts a new one.
    let token = tokio::time::timeout(Duration::from_secs(10), auth.token())
        .await
        .expect("the second call must not hang")
        .unwrap();
    assert_eq!(token.access_token.secret(), "second");
    let requests = server.requests_to("/token");
    assert_eq!(requests.len(), 2, "exactly two token requests were made");
    assert_ne!(
        requests[0].form_value("client_assertion"),
        requests[1].form_value("client_assertion"),
        "a new assertion, never a replay"
    );
    assert_ne!(
        assertion_jti(&requests[0].form()),
        assertion_jti(&requests[1].form()),
        "a new jti"
    );
    // Warm now: no further request.
    assert_eq!(
        auth.access_token().await.unwrap().secret(),
        token.access_token.secret()
    );
    assert_eq!(server.count("/token"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_after_1ms_against_the_sandbox_does_not_break_the_next() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, "system/Patient.rs", None);
    // Discover first and pass the configuration, so the 1 ms budget lands on the token
    // request (the first poll signs the assertion and starts sending it).
    let http = HttpClient::new().unwrap();
    let d = smart_reqwest::discover(&http, &FhirBaseUrl::new(kit::fhir_base()).unwrap())
        .await
        .unwrap();
    let config = BackendServicesConfig::new(
        ClientId::new(client_id.as_str()),
        "system/Patient.rs",
        Arc::new(k),
    )
    .with_smart_configuration(d.config);
    let auth = BackendServicesAuth::with_client(config, http, Arc::new(SystemEntropy)).unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(1), auth.token()).await;
    let token = auth.token().await.unwrap();
    match cancelled {
        // Cancelled mid-flight. If the server did get that request it consumed its jti, so a
        // replay would be rejected (B24): success here shows the flow signed a new assertion.
        Err(_elapsed) => {}
        // The whole exchange beat the 1 ms timer: the second call hits the cache.
        Ok(first) => assert_eq!(first.unwrap().access_token, token.access_token),
    }
    let (status, body) = kit::fhir_get("Patient/123", token.authorization().secret());
    assert_eq!(status, 200, "{body}");
    let n = kit::token_requests(&client_id);
    assert!((1..=2).contains(&n), "{n} token requests");
}

/// An in-memory store whose writes take `delay`.
struct SlowStore {
    inner: InMemoryTokenStore,
    delay: Duration,
}

impl SlowStore {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: InMemoryTokenStore::new(),
            delay,
        })
    }
}

impl AsyncTokenStore for SlowStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredToken>> {
        Box::pin(async move { TokenStore::get(&self.inner, key) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a StoredToken,
        ttl_secs: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            TokenStore::set(&self.inner, key, value, ttl_secs)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move { TokenStore::delete(&self.inner, key) })
    }
}

/// A public client (`openid`); its redirect URI is never requested.
fn public_app() -> AppConfig {
    AppConfig::new(
        ClientAuth::public("c"),
        "http://127.0.0.1:9/callback",
        "openid",
    )
    .unwrap()
}

/// A session as after a code exchange with `token_endpoint` (no request made).
fn session(app: &AppConfig, token_endpoint: &str) -> Session {
    let now = UnixTime::from(std::time::SystemTime::now());
    let url = url::Url::parse(token_endpoint).unwrap();
    let token = parse_token_response(
        &HttpResponse::new(
            200,
            r#"{"access_token":"first","token_type":"bearer","expires_in":3600,"refresh_token":"r1","patient":"123"}"#,
        ),
        &url,
        now,
    )
    .unwrap();
    let fhir_base = FhirBaseUrl::new("http://127.0.0.1:9/fhir").unwrap();
    Session::new(app, fhir_base, url, token, now)
}

/// Regression: `build` used to hand its first store write to a background task (as for a
/// renewal ahead of expiry) and return before the token set was stored and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_stores_and_reports_the_token_set_before_it_returns() {
    let app = public_app();
    let store = SlowStore::new(Duration::from_millis(300));
    let reported = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook = reported.clone();
    let client = SmartClient::builder(session(&app, "http://127.0.0.1:9/token"))
        .store(store.clone())
        .store_key("user-1")
        .on_rotate(Arc::new(move |_| {
            hook.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }))
        .build()
        .await
        .unwrap();
    let stored = TokenStore::get(&store.inner, "user-1")
        .unwrap()
        .expect("stored by build");
    assert_eq!(stored.token.access_token.secret(), "first");
    assert_eq!(reported.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(client.tokens().access_token.secret(), "first");
}

/// Regression: an explicit `refresh` while the access token was still valid used to start the
/// refresh in the background and return the old token; it returns the new one, stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_returns_the_new_token_after_storing_it() {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Response::json(
            200,
            r#"{"access_token":"second","token_type":"bearer","expires_in":3600,"refresh_token":"r2"}"#,
        ),
    );
    let app = public_app();
    let store = SlowStore::new(Duration::from_millis(100));
    let client = SmartClient::builder(session(&app, &server.url_for("/token")))
        .store(store.clone())
        .store_key("user-1")
        .build()
        .await
        .unwrap();
    let refreshed = client.refresh(None).await.unwrap();
    assert_eq!(refreshed.access_token.secret(), "second");
    assert_eq!(server.count("/token"), 1);
    let form = server.last_request("/token").unwrap();
    assert_eq!(form.form_value("refresh_token").as_deref(), Some("r1"));
    let stored = TokenStore::get(&store.inner, "user-1")
        .unwrap()
        .expect("stored");
    assert_eq!(stored.token.access_token.secret(), "second");
    assert_eq!(
        stored.token.refresh_token.map(|r| r.secret().to_owned()),
        Some("r2".into())
    );
    // The launch context of the first token set is kept.
    assert_eq!(client.patient_id().as_deref(), Some("123"));
}
