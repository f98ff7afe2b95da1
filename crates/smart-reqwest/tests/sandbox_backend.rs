//! Backend Services against the real local sandbox (oidc-provider), async adapter: the twin of
//! `smart-ureq/tests/sandbox_backend.rs`, plus 200 tasks on a cold cache and cancellation.
//! Requirement ids: BES-01..BES-05, ASYM-05, ASYM-08..ASYM-12, RESP-03; cases B20, B21, B24.
//!
//! The testkit helpers are blocking (ureq) and short; they are called directly from the tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smart_core::assertion::{
    AssertionClaims, CLIENT_ASSERTION_TYPE, JwsAlgorithm, client_assertion,
};
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::{ConfigSource, SmartConfiguration};
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::token::parse_token_response;
use smart_core::{ClientId, FhirBaseUrl, HttpRequest, UnixTime};
use smart_reqwest::{BackendServicesAuth, Error, HttpClient};
use smart_testkit as kit;

const SCOPE: &str = "system/Patient.rs system/Observation.rs";

fn key(alg: JwsAlgorithm) -> SigningKey {
    SigningKey::generate(alg, None, &SystemEntropy).unwrap()
}

fn auth(client_id: &str, key: SigningKey) -> BackendServicesAuth {
    let config =
        BackendServicesConfig::new(ClientId::new(client_id), "system/Patient.rs", Arc::new(key))
            .with_fhir_base(FhirBaseUrl::new(&kit::fhir_base()).unwrap());
    BackendServicesAuth::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bes_token_and_fhir_read_es384_and_rs384() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let k = key(alg);
        let client_id = kit::register_backend_client(&k, SCOPE, None);
        let auth = auth(&client_id, k);
        let token = auth.token().await.unwrap();
        assert!(token.is_bearer());
        assert_eq!(token.scope.as_deref(), Some("system/Patient.rs"));
        assert_eq!(token.expires_in, Some(300));
        assert!(token.refresh_token.is_none(), "BES-05: no refresh token");
        let header = auth.authorization().await.unwrap();
        let (status, body) = kit::fhir_get("Patient/123", header.secret());
        assert_eq!(status, 200, "{alg:?}: {body}");
        assert!(body.contains("\"Argonaut\""), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_the_sandbox_well_known() {
    let d = smart_reqwest::discover(
        &HttpClient::new().unwrap(),
        &FhirBaseUrl::new(&kit::fhir_base()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(d.source, ConfigSource::WellKnown);
    assert_eq!(d.config.token_endpoint.as_str(), kit::token_endpoint());
    assert_eq!(
        d.config.issuer.as_deref(),
        Some(kit::sandbox_url().as_str())
    );
    assert!(d.config.supports_s256());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_token_is_reused_and_a_401_forces_a_new_one() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let auth = auth(&client_id, k);
    let first = auth.access_token().await.unwrap();
    for _ in 0..5 {
        assert_eq!(auth.access_token().await.unwrap(), first);
    }
    assert_eq!(
        kit::token_requests(&client_id),
        1,
        "warm cache: one token request"
    );

    // The server revokes the token: the FHIR API answers 401, the app calls on_unauthorized.
    kit::revoke(&client_id, false);
    let (status, _) = kit::fhir_get("Patient/123", auth.authorization().await.unwrap().secret());
    assert_eq!(status, 401);
    auth.on_unauthorized().await.unwrap();
    let (status, body) = kit::fhir_get("Patient/123", auth.authorization().await.unwrap().secret());
    assert_eq!(status, 200, "{body}");
    assert_ne!(auth.access_token().await.unwrap(), first);
    assert_eq!(kit::token_requests(&client_id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_renewed_in_the_skew_window() {
    let k = key(JwsAlgorithm::Es384);
    // 2 s tokens: the effective skew is 1 s, so after 1.1 s a new token is fetched.
    let client_id = kit::register_backend_client(&k, SCOPE, Some(2));
    let auth = auth(&client_id, k);
    let first = auth.access_token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let second = auth.access_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(kit::token_requests(&client_id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_200_tasks_cold_cache_one_token_request() {
    const TASKS: usize = 200;
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let auth = Arc::new(auth(&client_id, k));
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let auth = auth.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                auth.access_token().await.unwrap()
            })
        })
        .collect();
    let mut tokens = Vec::with_capacity(TASKS);
    for h in handles {
        tokens.push(h.await.unwrap());
    }
    assert_eq!(tokens.len(), TASKS);
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "everyone got the same token"
    );
    assert_eq!(
        kit::token_requests(&client_id),
        1,
        "exactly one token request on a cold cache"
    );
}

fn oauth_status_and_code(e: &Error) -> (Option<u16>, String) {
    let o = e
        .oauth_error()
        .unwrap_or_else(|| panic!("expected an OAuth error, got {e:?}"));
    (o.status, o.error.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asym_12_wrong_key_and_unknown_kid_are_typed_oauth_errors() {
    let registered = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&registered, SCOPE, None);
    // Another key under the registered kid: bad signature.
    let impostor = key(JwsAlgorithm::Es384).with_kid(registered.kid()).unwrap();
    let err = auth(&client_id, impostor).token().await.unwrap_err();
    assert_eq!(
        oauth_status_and_code(&err),
        (Some(401), "invalid_client".into())
    );
    assert!(err.to_string().contains("signature"), "{err}");
    // The registered key under an unknown kid.
    let unknown = registered.clone().with_kid("not-registered").unwrap();
    let err = auth(&client_id, unknown).token().await.unwrap_err();
    assert_eq!(
        oauth_status_and_code(&err),
        (Some(401), "invalid_client".into())
    );
}

fn assertion_request(
    client_id: &str,
    key: &SigningKey,
    audience: &str,
    now: UnixTime,
) -> HttpRequest {
    let token_url = url::Url::parse(&kit::token_endpoint()).unwrap();
    let mut claims = AssertionClaims::new(client_id, audience);
    claims.lifetime_secs = 60;
    let jwt = client_assertion(key, &claims, now, &SystemEntropy).unwrap();
    HttpRequest::post_form(
        token_url,
        [
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", jwt.secret()),
        ],
    )
}

async fn send(
    req: HttpRequest,
    now: UnixTime,
) -> Result<smart_core::token::TokenResponse, smart_core::Error> {
    let url = req.url.clone();
    let response = HttpClient::new().unwrap().send(req).await.unwrap();
    parse_token_response(&response, &url, now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b20_wrong_aud_and_expired_assertions_are_rejected() {
    let k = key(JwsAlgorithm::Rs384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let now = UnixTime::from(SystemTime::now());
    let token_url = kit::token_endpoint();
    let fhir_base = kit::fhir_base();
    for (aud, when) in [
        ("https://wrong.example/token", now),      // wrong aud
        (fhir_base.as_str(), now),                 // the FHIR base is not the aud
        (token_url.as_str(), now.minus_secs(600)), // expired
    ] {
        match send(assertion_request(&client_id, &k, aud, when), when).await {
            Err(smart_core::Error::OAuth(o)) => {
                assert_eq!(o.status, Some(401), "{aud}");
                assert_eq!(o.error, "invalid_client", "{aud}");
            }
            other => panic!("{aud}: expected an OAuth error, got {other:?}"),
        }
    }
    // The same construction with the right aud and time works, so the rejections are real.
    assert!(
        send(assertion_request(&client_id, &k, &token_url, now), now)
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b24_replayed_assertion_is_rejected() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let now = UnixTime::from(SystemTime::now());
    let req = assertion_request(&client_id, &k, &kit::token_endpoint(), now);
    assert!(send(req.clone(), now).await.is_ok());
    let err = send(req, now).await.unwrap_err();
    assert!(
        matches!(err, smart_core::Error::OAuth(ref o) if o.error == "invalid_client"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_debug_never_contain_tokens_or_keys() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let a = auth(&client_id, k.clone());
    let token = a.access_token().await.unwrap();
    let dbg = format!(
        "{a:?} {:?} {:?}",
        a.token().await.unwrap(),
        a.authorization().await.unwrap()
    );
    assert!(!dbg.contains(token.secret()), "{dbg}");
    let pem = k.to_pkcs8_pem().unwrap();
    let line = pem.secret().lines().nth(1).unwrap().to_owned();
    assert!(!dbg.contains(&line));
    let err = auth(
        &client_id,
        key(JwsAlgorithm::Es384).with_kid(k.kid()).unwrap(),
    )
    .token()
    .await
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("eyJ"), "no JWT in errors: {text}");
}

// ---------------------------------------------------------------------------------------
// Cancellation: a caller dropped while its token request is in flight.
// ---------------------------------------------------------------------------------------

/// The `client_assertion` and `jti` of a captured token request body.
fn assertion_and_jti(form_body: &[u8]) -> (String, String) {
    let assertion = url::form_urlencoded::parse(form_body)
        .find(|(k, _)| k == "client_assertion")
        .map(|(_, v)| v.into_owned())
        .expect("client_assertion");
    let payload = assertion.split('.').nth(1).expect("JWT payload");
    let claims: serde_json::Value =
        serde_json::from_slice(&base64url_decode(payload)).expect("claims JSON");
    let jti = claims["jti"].as_str().expect("jti").to_owned();
    (assertion, jti)
}

/// Unpadded base64url (RFC 4648 §5), enough for a JWT segment.
fn base64url_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | u32::from(val(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A loopback token endpoint that reads each request, reports its body on the channel, and
/// answers only from the second connection on (the first is held open, unanswered).
fn slow_first_token_server() -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(&mut stream);
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = tx.send(body);
            if n == 0 {
                held.push(stream);
                continue;
            }
            let json = r#"{"access_token":"second","token_type":"bearer","expires_in":3600}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    (format!("http://{addr}/token"), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_token_call_is_aborted_and_the_next_call_re_signs() {
    let (token_url, mut requests) = slow_first_token_server();
    let config = BackendServicesConfig::new(
        ClientId::new("cancel-test"),
        "system/Patient.rs",
        Arc::new(key(JwsAlgorithm::Es384)),
    )
    .with_smart_configuration(SmartConfiguration::new(
        url::Url::parse(&token_url).unwrap(),
    ));
    let auth = BackendServicesAuth::new(config).unwrap();

    // Drop the call once the server holds its request: it is really mid-flight.
    let first = tokio::select! {
        r = auth.token() => panic!("the first request must not complete: {r:?}"),
        body = requests.recv() => body.expect("first request"),
    };
    // The flow still has that request in flight; the next caller aborts it and re-drives.
    let token = tokio::time::timeout(Duration::from_secs(10), auth.token())
        .await
        .expect("the second call must not hang")
        .unwrap();
    assert_eq!(token.access_token.secret(), "second");
    let second = requests.recv().await.expect("second request");
    let (a1, jti1) = assertion_and_jti(&first);
    let (a2, jti2) = assertion_and_jti(&second);
    assert_ne!(a1, a2, "a new assertion, never a replay");
    assert_ne!(jti1, jti2, "a new jti");
    assert!(
        requests.try_recv().is_err(),
        "exactly two token requests were made"
    );
    // Warm now: no further request.
    assert_eq!(
        auth.access_token().await.unwrap().secret(),
        token.access_token.secret()
    );
    assert!(requests.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_after_1ms_against_the_sandbox_does_not_break_the_next() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    // Discover first and pass the configuration, so the 1 ms budget lands on the token
    // request (the first poll signs the assertion and starts sending it).
    let http = HttpClient::new().unwrap();
    let d = smart_reqwest::discover(&http, &FhirBaseUrl::new(&kit::fhir_base()).unwrap())
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
    let (status, body) = kit::fhir_get(
        "Patient/123",
        &format!("Bearer {}", token.access_token.secret()),
    );
    assert_eq!(status, 200, "{body}");
    let n = kit::token_requests(&client_id);
    assert!((1..=2).contains(&n), "{n} token requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_store_shares_the_token_across_instances_and_401_deletes_it() {
    use smart_reqwest::TokenStore as _;
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let store = Arc::new(smart_reqwest::InMemoryTokenStore::new());
    let first = auth(&client_id, k.clone()).with_store(store.clone(), Some("my-key".into()));
    let t1 = first.access_token().await.unwrap();
    let second = auth(&client_id, k.clone()).with_store(store.clone(), Some("my-key".into()));
    assert_eq!(
        second.access_token().await.unwrap(),
        t1,
        "found in the store"
    );
    assert_eq!(kit::token_requests(&client_id), 1);
    let stored = store
        .get("my-key")
        .await
        .unwrap()
        .expect("stored under the explicit key");
    assert_eq!(stored.client_id.as_str(), client_id);
    assert_eq!(stored.token_endpoint.as_str(), kit::token_endpoint());
    second.on_unauthorized().await.unwrap();
    assert!(
        store.get("my-key").await.unwrap().is_none(),
        "401 deletes the stored token"
    );
    // A store entry for another client is never used.
    let other = kit::register_backend_client(&k, SCOPE, None);
    let third = auth(&other, k).with_store(store.clone(), Some("my-key".into()));
    let mut foreign = stored.clone();
    foreign.client_id = smart_core::ClientId::new("someone-else");
    store.set("my-key", &foreign).await.unwrap();
    assert_ne!(third.access_token().await.unwrap(), t1);
    assert_eq!(kit::token_requests(&other), 1);
}
