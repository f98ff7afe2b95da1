//! Backend Services against the real local sandbox (oidc-provider).
// Requirement ids: BES-01..BES-05, ASYM-05, ASYM-08..ASYM-12, RESP-03; cases B20, B21, B24.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smart_core::assertion::{
    AssertionClaims, CLIENT_ASSERTION_TYPE, JwsAlgorithm, client_assertion,
};
use smart_core::discovery::ConfigSource;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::store::{InMemoryTokenStore, TokenStore as _};
use smart_core::token::{TokenResponse, parse_token_response};
use smart_core::{ClientId, Error, HttpRequest, UnixTime};

use super::{key, now, oauth_status_and_code, sandbox_auth, sandbox_fhir_base};
use crate as kit;
use crate::driver::Driver;

const SCOPE: &str = "system/Patient.rs system/Observation.rs";

// Requirements and cases: BES-01..BES-05, ASYM-05, RESP-03.
/// A token with each algorithm, and a FHIR read with it.
pub fn bes_token_and_fhir_read_es384_and_rs384<D: Driver>() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let k = key(alg);
        let client_id = kit::register_backend_client(&k, SCOPE, None);
        let auth = sandbox_auth::<D>(&client_id, k);
        let token = D::token(&auth).unwrap();
        assert!(token.is_bearer());
        assert_eq!(token.scope.as_deref(), Some("system/Patient.rs"));
        assert_eq!(token.expires_in, Some(300));
        assert!(token.refresh_token.is_none(), "BES-05: no refresh token");
        assert_eq!(
            token.authorization().secret(),
            format!("Bearer {}", token.access_token.secret())
        );
        let header = D::authorization(&auth).unwrap();
        assert_eq!(&header, token.authorization());
        let (status, body) = kit::fhir_get("Patient/123", header.secret());
        assert_eq!(status, 200, "{alg:?}: {body}");
        assert!(body.contains("\"Argonaut\""), "{body}");
    }
}

/// The sandbox's `.well-known/smart-configuration` through the driver's `discover`.
pub fn discovery_reads_the_sandbox_well_known<D: Driver>() {
    let d = D::discover(&D::default_http(), &sandbox_fhir_base()).unwrap();
    assert_eq!(d.source, ConfigSource::WellKnown);
    assert_eq!(d.config.token_endpoint.as_str(), kit::token_endpoint());
    assert_eq!(
        d.config.issuer.as_deref(),
        Some(kit::sandbox_url().as_str())
    );
    assert!(d.config.supports_s256());
}

/// A warm cache makes no request; `on_unauthorized` after the server revoked the token makes
/// the next call fetch a new one.
pub fn cached_token_is_reused_and_a_401_forces_a_new_one<D: Driver>() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let auth = sandbox_auth::<D>(&client_id, k);
    let first = D::access_token(&auth).unwrap();
    for _ in 0..5 {
        assert_eq!(D::access_token(&auth).unwrap(), first);
    }
    assert_eq!(
        kit::token_requests(&client_id),
        1,
        "warm cache: one token request"
    );

    // The server revokes the token: the FHIR API answers 401, the app calls on_unauthorized.
    kit::revoke(&client_id, false);
    let (status, _) = kit::fhir_get("Patient/123", D::authorization(&auth).unwrap().secret());
    assert_eq!(status, 401);
    D::on_unauthorized(&auth).unwrap();
    let (status, body) = kit::fhir_get("Patient/123", D::authorization(&auth).unwrap().secret());
    assert_eq!(status, 200, "{body}");
    assert_ne!(D::access_token(&auth).unwrap(), first);
    assert_eq!(kit::token_requests(&client_id), 2);
}

/// 2 s tokens: the effective skew is 1 s, so after 1.1 s the token is renewed. A blocking
/// driver renews in the calling thread (that call gets the new token); an async driver hands
/// out the still-valid token at once and renews in the background (a later call gets the new
/// one). Either way exactly one more token request is made.
pub fn short_lived_tokens_are_renewed_in_the_skew_window<D: Driver>() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, Some(2));
    let auth = sandbox_auth::<D>(&client_id, k);
    let first = D::access_token(&auth).unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    let next = D::access_token(&auth).unwrap();
    let second = if D::RENEWS_IN_BACKGROUND {
        assert_eq!(next, first, "{}: the still-valid token at once", D::NAME);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let t = D::access_token(&auth).unwrap();
            if t != first {
                break t;
            }
            assert!(Instant::now() < deadline, "no renewal within 5 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    } else {
        next
    };
    assert_ne!(first, second);
    assert_eq!(kit::token_requests(&client_id), 2);
    assert_eq!(D::access_token(&auth).unwrap(), second);
    assert_eq!(kit::token_requests(&client_id), 2);
}

fn concurrent_callers_cold_cache<D: Driver>(callers: usize) {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let auth = Arc::new(sandbox_auth::<D>(&client_id, k));
    let tokens: Vec<_> = D::concurrent_tokens(&auth, callers)
        .into_iter()
        .map(|r| r.unwrap().access_token.clone())
        .collect();
    assert_eq!(tokens.len(), callers);
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "everyone got the same token"
    );
    assert_eq!(
        kit::token_requests(&client_id),
        1,
        "{}: exactly one token request for {callers} callers on a cold cache",
        D::NAME
    );
}

/// 200 callers at once on a cold cache: one token request (counted by the sandbox).
pub fn concurrency_200_callers_cold_cache_one_token_request<D: Driver>() {
    concurrent_callers_cold_cache::<D>(200);
}

/// 1,000 callers at once on a cold cache: one token request (counted by the sandbox).
pub fn concurrency_1000_callers_cold_cache_one_token_request<D: Driver>() {
    concurrent_callers_cold_cache::<D>(1_000);
}

// Requirements and cases: ASYM-12.
/// A wrong key and an unknown `kid` are typed `invalid_client` errors with status.
pub fn asym_12_wrong_key_and_unknown_kid_are_typed_oauth_errors<D: Driver>() {
    let registered = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&registered, SCOPE, None);
    // Another key under the registered kid: bad signature.
    let impostor = key(JwsAlgorithm::Es384).with_kid(registered.kid()).unwrap();
    let err = D::token(&sandbox_auth::<D>(&client_id, impostor)).unwrap_err();
    assert_eq!(
        oauth_status_and_code(&err),
        (Some(401), "invalid_client".into())
    );
    assert!(err.to_string().contains("signature"), "{err}");
    // The registered key under an unknown kid.
    let unknown = registered.clone().with_kid("not-registered").unwrap();
    let err = D::token(&sandbox_auth::<D>(&client_id, unknown)).unwrap_err();
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

/// Send a hand-built token request with the driver's client and read the answer.
fn send<D: Driver>(req: HttpRequest, now: UnixTime) -> Result<TokenResponse, Error> {
    let url = req.url.clone();
    let response = D::send(&D::default_http(), req).unwrap();
    parse_token_response(&response, &url, now)
}

// Requirements and cases: B20.
/// An assertion with the wrong `aud` (another URL, the FHIR base) or expired is rejected.
pub fn b20_wrong_aud_and_expired_assertions_are_rejected<D: Driver>() {
    let k = key(JwsAlgorithm::Rs384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let now = now();
    let token_url = kit::token_endpoint();
    let fhir_base = kit::fhir_base();
    for (aud, when) in [
        ("https://wrong.example/token", now),      // wrong aud
        (fhir_base.as_str(), now),                 // the FHIR base is not the aud
        (token_url.as_str(), now.minus_secs(600)), // expired
    ] {
        match send::<D>(assertion_request(&client_id, &k, aud, when), when) {
            Err(Error::OAuth(o)) => {
                assert_eq!(o.status, Some(401), "{aud}");
                assert_eq!(o.error, "invalid_client", "{aud}");
            }
            other => panic!("{aud}: expected an OAuth error, got {other:?}"),
        }
    }
    // The same construction with the right aud and time works, so the rejections are real.
    assert!(send::<D>(assertion_request(&client_id, &k, &token_url, now), now).is_ok());
}

// Requirements and cases: B24.
/// The same assertion (same `jti`) sent twice is rejected the second time.
pub fn b24_replayed_assertion_is_rejected<D: Driver>() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let now = now();
    let req = assertion_request(&client_id, &k, &kit::token_endpoint(), now);
    assert!(send::<D>(req.clone(), now).is_ok());
    let err = send::<D>(req, now).unwrap_err();
    assert!(
        matches!(err, Error::OAuth(ref o) if o.error == "invalid_client"),
        "{err:?}"
    );
}

/// `Debug` of the token source, the token and the header, and a token error, never show the
/// token, the key or an assertion.
pub fn errors_and_debug_never_contain_tokens_or_keys<D: Driver>() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let a = sandbox_auth::<D>(&client_id, k.clone());
    let token = D::access_token(&a).unwrap();
    let dbg = format!(
        "{a:?} {:?} {:?}",
        D::token(&a).unwrap(),
        D::authorization(&a).unwrap()
    );
    assert!(!dbg.contains(token.secret()), "a token in Debug output");
    let pem = k.to_pkcs8_pem().unwrap();
    let line = pem.secret().lines().nth(1).unwrap().to_owned();
    assert!(!dbg.contains(&line), "a key in Debug output");
    let err = D::token(&sandbox_auth::<D>(
        &client_id,
        key(JwsAlgorithm::Es384).with_kid(k.kid()).unwrap(),
    ))
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("eyJ"), "no JWT in errors: {text}");
}

/// The default store key (`smart-bs:{token endpoint}:{client_id}:{scope}`, percent-encoded):
/// a second instance on the same store finds the token without a request. After a 401 the
/// next call deletes the rejected copy and stores the new token, which a third instance then
/// finds.
pub fn token_store_default_key_shares_the_token_and_a_401_replaces_it<D: Driver>() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let store = Arc::new(InMemoryTokenStore::new());
    let first = D::backend_with_store(
        sandbox_auth::<D>(&client_id, k.clone()),
        store.clone(),
        None,
    );
    let t1 = D::access_token(&first).unwrap();
    // A second process-like instance with the same store finds the token: no new request.
    let second = D::backend_with_store(
        sandbox_auth::<D>(&client_id, k.clone()),
        store.clone(),
        None,
    );
    assert_eq!(D::access_token(&second).unwrap(), t1);
    assert_eq!(kit::token_requests(&client_id), 1);
    let store_key = format!(
        "smart-bs:{}:{}:{}",
        kit::token_endpoint()
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('.', "%2E"),
        client_id.replace('-', "%2D"),
        "system%2FPatient%2Ers"
    );
    let stored = store
        .get(&store_key)
        .unwrap()
        .expect("stored under the cache key");
    assert_eq!(stored.token.access_token, t1);
    // 401: the rejected token is never handed out again; the next call replaces the stored
    // copy with a new token.
    D::on_unauthorized(&second).unwrap();
    let t2 = D::access_token(&second).unwrap();
    assert_ne!(t2, t1);
    assert_eq!(kit::token_requests(&client_id), 2);
    let stored = store.get(&store_key).unwrap().expect("the new token");
    assert_eq!(stored.token.access_token, t2);
    let third = D::backend_with_store(sandbox_auth::<D>(&client_id, k), store.clone(), None);
    assert_eq!(D::access_token(&third).unwrap(), t2);
    assert_eq!(kit::token_requests(&client_id), 2);
}

/// An explicit store key: the entry names the client and token endpoint; after a 401 the
/// rejected entry is gone; an entry written for another client is never used.
pub fn token_store_explicit_key_and_an_entry_of_another_client_is_never_used<D: Driver>() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, SCOPE, None);
    let store = Arc::new(InMemoryTokenStore::new());
    let with_key = |client_id: &str, k: SigningKey| {
        D::backend_with_store(
            sandbox_auth::<D>(client_id, k),
            store.clone(),
            Some("my-key".into()),
        )
    };
    let first = with_key(&client_id, k.clone());
    let t1 = D::access_token(&first).unwrap();
    let second = with_key(&client_id, k.clone());
    assert_eq!(D::access_token(&second).unwrap(), t1, "found in the store");
    assert_eq!(kit::token_requests(&client_id), 1);
    let stored = store
        .get("my-key")
        .unwrap()
        .expect("stored under the explicit key");
    assert_eq!(stored.client_id.as_str(), client_id);
    assert_eq!(stored.token_endpoint.as_str(), kit::token_endpoint());
    D::on_unauthorized(&second).unwrap();
    let t2 = D::access_token(&second).unwrap();
    assert_ne!(t2, t1);
    assert_eq!(
        store.get("my-key").unwrap().map(|s| s.token.access_token),
        Some(t2.clone()),
        "the rejected entry was replaced"
    );
    // A store entry for another client is never used.
    let other = kit::register_backend_client(&k, SCOPE, None);
    let third = with_key(&other, k);
    let mut foreign = stored.clone();
    foreign.client_id = ClientId::new("someone-else");
    store.set("my-key", &foreign, None).unwrap();
    let t3 = D::access_token(&third).unwrap();
    assert_ne!(t3, t1);
    assert_ne!(t3, t2);
    assert_eq!(kit::token_requests(&other), 1);
}
