//! Backend Services against the real local sandbox (oidc-provider), blocking adapter.
//! Requirement ids: BES-01..BES-05, ASYM-05, ASYM-08..ASYM-12, RESP-03; cases B20, B21, B24.

use std::sync::Arc;
use std::time::SystemTime;

use smart_core::assertion::{
    AssertionClaims, CLIENT_ASSERTION_TYPE, JwsAlgorithm, client_assertion,
};
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::ConfigSource;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::token::parse_token_response;
use smart_core::{ClientId, FhirBaseUrl, HttpRequest, UnixTime};
use smart_testkit as kit;
use smart_ureq::{BackendServicesAuth, Error, HttpClient};

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

#[test]
fn bes_token_and_fhir_read_es384_and_rs384() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let k = key(alg);
        let client_id = kit::register_backend_client(&k, SCOPE, None);
        let auth = auth(&client_id, k);
        let token = auth.token().unwrap();
        assert!(token.is_bearer());
        assert_eq!(token.scope.as_deref(), Some("system/Patient.rs"));
        assert_eq!(token.expires_in, Some(300));
        assert!(token.refresh_token.is_none(), "BES-05: no refresh token");
        let (status, body) = kit::fhir_get("Patient/123", auth.authorization().unwrap().secret());
        assert_eq!(status, 200, "{alg:?}: {body}");
        assert!(body.contains("\"Argonaut\""), "{body}");
    }
}

#[test]
fn discovery_reads_the_sandbox_well_known() {
    let d = smart_ureq::discover(
        &HttpClient::new(),
        &FhirBaseUrl::new(&kit::fhir_base()).unwrap(),
    )
    .unwrap();
    assert_eq!(d.source, ConfigSource::WellKnown);
    assert_eq!(d.config.token_endpoint.as_str(), kit::token_endpoint());
    assert_eq!(
        d.config.issuer.as_deref(),
        Some(kit::sandbox_url().as_str())
    );
    assert!(d.config.supports_s256());
}

#[test]
fn cached_token_is_reused_and_a_401_forces_a_new_one() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let auth = auth(&client_id, k);
    let first = auth.access_token().unwrap();
    for _ in 0..5 {
        assert_eq!(auth.access_token().unwrap(), first);
    }
    assert_eq!(
        kit::token_requests(&client_id),
        1,
        "warm cache: one token request"
    );

    // The server revokes the token: the FHIR API answers 401, the app calls on_unauthorized.
    kit::revoke(&client_id, false);
    let (status, _) = kit::fhir_get("Patient/123", auth.authorization().unwrap().secret());
    assert_eq!(status, 401);
    auth.on_unauthorized().unwrap();
    let (status, body) = kit::fhir_get("Patient/123", auth.authorization().unwrap().secret());
    assert_eq!(status, 200, "{body}");
    assert_ne!(auth.access_token().unwrap(), first);
    assert_eq!(kit::token_requests(&client_id), 2);
}

#[test]
fn short_lived_tokens_are_renewed_in_the_skew_window() {
    let k = key(JwsAlgorithm::Es384);
    // 2 s tokens: the effective skew is 1 s, so after 1.1 s a new token is fetched.
    let client_id = kit::register_backend_client(&k, SCOPE, Some(2));
    let auth = auth(&client_id, k);
    let first = auth.access_token().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let second = auth.access_token().unwrap();
    assert_ne!(first, second);
    assert_eq!(kit::token_requests(&client_id), 2);
}

#[test]
fn concurrency_32_threads_cold_cache_one_token_request() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let auth = Arc::new(auth(&client_id, k));
    let barrier = Arc::new(std::sync::Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let auth = auth.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                auth.access_token().unwrap()
            })
        })
        .collect();
    let tokens: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
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

#[test]
fn asym_12_wrong_key_and_unknown_kid_are_typed_oauth_errors() {
    let registered = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&registered, SCOPE, None);
    // Another key under the registered kid: bad signature.
    let impostor = key(JwsAlgorithm::Es384).with_kid(registered.kid()).unwrap();
    let err = auth(&client_id, impostor).token().unwrap_err();
    assert_eq!(
        oauth_status_and_code(&err),
        (Some(401), "invalid_client".into())
    );
    assert!(err.to_string().contains("signature"), "{err}");
    // The registered key under an unknown kid.
    let unknown = registered.clone().with_kid("not-registered").unwrap();
    let err = auth(&client_id, unknown).token().unwrap_err();
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

fn send(
    req: HttpRequest,
    now: UnixTime,
) -> Result<smart_core::token::TokenResponse, smart_core::Error> {
    let url = req.url.clone();
    parse_token_response(&HttpClient::new().send(req).unwrap(), &url, now)
}

#[test]
fn b20_wrong_aud_and_expired_assertions_are_rejected() {
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
        match send(assertion_request(&client_id, &k, aud, when), when) {
            Err(smart_core::Error::OAuth(o)) => {
                assert_eq!(o.status, Some(401), "{aud}");
                assert_eq!(o.error, "invalid_client", "{aud}");
            }
            other => panic!("{aud}: expected an OAuth error, got {other:?}"),
        }
    }
    // The same construction with the right aud and time works, so the rejections are real.
    assert!(send(assertion_request(&client_id, &k, &token_url, now), now).is_ok());
}

#[test]
fn b24_replayed_assertion_is_rejected() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let now = UnixTime::from(SystemTime::now());
    let req = assertion_request(&client_id, &k, &kit::token_endpoint(), now);
    assert!(send(req.clone(), now).is_ok());
    let err = send(req, now).unwrap_err();
    assert!(
        matches!(err, smart_core::Error::OAuth(ref o) if o.error == "invalid_client"),
        "{err:?}"
    );
}

#[test]
fn errors_and_debug_never_contain_tokens_or_keys() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let a = auth(&client_id, k.clone());
    let token = a.access_token().unwrap();
    let dbg = format!(
        "{a:?} {:?} {:?}",
        a.token().unwrap(),
        a.authorization().unwrap()
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
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("eyJ"), "no JWT in errors: {text}");
}

#[test]
fn token_store_shares_the_token_across_instances_and_401_deletes_it() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let store = Arc::new(smart_ureq::InMemoryTokenStore::new());
    let first = auth(&client_id, k.clone()).with_store(store.clone(), None);
    let t1 = first.access_token().unwrap();
    // A second process-like instance with the same store finds the token: no new request.
    let second = auth(&client_id, k.clone()).with_store(store.clone(), None);
    assert_eq!(second.access_token().unwrap(), t1);
    assert_eq!(kit::token_requests(&client_id), 1);
    let key = format!(
        "smart-bs:{}:{}:{}",
        kit::token_endpoint()
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('.', "%2E"),
        client_id.replace('-', "%2D"),
        "system%2FPatient%2Ers"
    );
    use smart_ureq::TokenStore as _;
    let stored = store
        .get(&key)
        .unwrap()
        .expect("stored under the cache key");
    assert_eq!(stored.token.access_token, t1);
    // 401: the stored token is deleted too, so a third instance fetches a new one.
    second.on_unauthorized().unwrap();
    assert!(store.get(&key).unwrap().is_none());
    let third = auth(&client_id, k).with_store(store.clone(), None);
    assert_ne!(third.access_token().unwrap(), t1);
    assert_eq!(kit::token_requests(&client_id), 2);
}
