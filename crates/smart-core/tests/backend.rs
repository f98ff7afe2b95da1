//! Scripted conversations with the Backend Services state machine (spec digest §4,
//! requirement ids BES-01..BES-05, ASYM-08..ASYM-11; cases B13, B20, B21, B24).
//! Time is fixed by hand and entropy is deterministic, so every request is checked exactly.

mod common;

use std::sync::Arc;

use common::{form, jwt_part, ready, send};

use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::entropy::DeterministicEntropy;
use smart_core::jwk::SigningKey;
use smart_core::{
    Action, ClientId, Error, FhirBaseUrl, Flow, HttpRequest, HttpResponse, Method, UnixTime,
};

const BASE: &str = "https://ehr.example.org/api/FHIR/R4";
const TOKEN_URL: &str = "https://ehr.example.org/oauth2/token";
const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

fn well_known_body() -> String {
    serde_json::json!({
        "issuer": "https://ehr.example.org/oauth2",
        "token_endpoint": TOKEN_URL,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.rs"],
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
        "code_challenge_methods_supported": ["S256"]
    })
    .to_string()
}

fn token_body(token: &str, expires_in: Option<u64>) -> String {
    let mut v = serde_json::json!({
        "access_token": token, "token_type": "bearer", "scope": "system/Patient.read"
    });
    if let Some(e) = expires_in {
        v["expires_in"] = e.into();
    }
    v.to_string()
}

fn key(alg: JwsAlgorithm) -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(alg, Some("k1"), &DeterministicEntropy::new(1)).unwrap())
}

fn config(alg: JwsAlgorithm) -> BackendServicesConfig {
    BackendServicesConfig::new(
        ClientId::new("c-123"),
        "system/Encounter.read system/Patient.read",
        key(alg),
    )
    .with_fhir_base(FhirBaseUrl::new(BASE).unwrap())
}

fn machine(config: BackendServicesConfig) -> BackendServices {
    BackendServices::new(config, Arc::new(DeterministicEntropy::new(42))).unwrap()
}

/// Discovery, then a token request; returns the machine with a cached token "S1".
fn warm(alg: JwsAlgorithm) -> (BackendServices, HttpRequest) {
    let mut m = machine(config(alg));
    let d = send(m.poll(T0).unwrap());
    assert_eq!(d.method, Method::Get);
    assert_eq!(
        d.url.as_str(),
        format!("{BASE}/.well-known/smart-configuration")
    );
    assert_eq!(d.header("accept"), Some("application/json"));
    m.handle_response(HttpResponse::new(200, well_known_body()), T0)
        .unwrap();
    let t = send(m.poll(T0).unwrap());
    m.handle_response(HttpResponse::new(200, token_body("S1", Some(300))), T0)
        .unwrap();
    (m, t)
}

#[test]
fn bes_03_b21_token_request_shape() {
    let (_, req) = warm(JwsAlgorithm::Rs384);
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url.as_str(), TOKEN_URL);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(
        req.header("authorization"),
        None,
        "B21: no Authorization header"
    );
    let body = String::from_utf8(req.body.clone()).unwrap();
    assert!(
        body.starts_with(
            "grant_type=client_credentials&scope=system%2FEncounter.read%20system%2FPatient.read&\
             client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&\
             client_assertion="
        ),
        "{body}"
    );
    assert_eq!(form(&req, "client_secret"), None);
    assert_eq!(form(&req, "client_id"), None);
}

#[test]
fn asym_09_asym_10_b20_assertion_claims() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let (_, req) = warm(alg);
        let jwt = form(&req, "client_assertion").unwrap();
        let header = jwt_part(&jwt, 0);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["kid"], "k1");
        assert_eq!(header["typ"], "JWT");
        assert!(header.get("jku").is_none());
        let claims = jwt_part(&jwt, 1);
        assert_eq!(claims["iss"], "c-123");
        assert_eq!(claims["sub"], "c-123");
        assert_eq!(
            claims["aud"], TOKEN_URL,
            "aud is the exact token URL, not the FHIR base"
        );
        assert_eq!(
            claims["exp"],
            T0.as_secs() + 240,
            "B20: default lifetime 240 s"
        );
        let jti = claims["jti"].as_str().unwrap();
        assert!(jti.len() >= 22, "jti carries at least 128 bits: {jti}");
    }
}

#[test]
fn bes_cache_reused_until_skew_window() {
    let (mut m, _) = warm(JwsAlgorithm::Es384);
    assert_eq!(ready(m.poll(T0).unwrap()).access_token.secret(), "S1");
    // expires_in 300, default skew 30: reused up to T0+269, renewed from T0+270.
    assert_eq!(
        ready(m.poll(T0.plus_secs(269)).unwrap())
            .access_token
            .secret(),
        "S1"
    );
    assert_eq!(m.next_refresh_at(), Some(T0.plus_secs(270)));
    let again = send(m.poll(T0.plus_secs(270)).unwrap());
    assert_eq!(again.url.as_str(), TOKEN_URL, "no second discovery");
    m.handle_response(
        HttpResponse::new(200, token_body("S2", Some(300))),
        T0.plus_secs(270),
    )
    .unwrap();
    assert_eq!(
        ready(m.poll(T0.plus_secs(271)).unwrap())
            .access_token
            .secret(),
        "S2"
    );
}

#[test]
fn configurable_skew_and_short_lived_tokens() {
    let mut m = machine(config(JwsAlgorithm::Es384).with_clock_skew_secs(100));
    let _ = send(m.poll(T0).unwrap());
    m.handle_response(HttpResponse::new(200, well_known_body()), T0)
        .unwrap();
    let _ = send(m.poll(T0).unwrap());
    // A 20 s token with a 100 s skew would never be reused; the skew is capped at half the
    // lifetime (10 s).
    m.handle_response(HttpResponse::new(200, token_body("S1", Some(20))), T0)
        .unwrap();
    assert_eq!(
        ready(m.poll(T0.plus_secs(9)).unwrap())
            .access_token
            .secret(),
        "S1"
    );
    let _ = send(m.poll(T0.plus_secs(10)).unwrap());
}

#[test]
fn invalidate_after_401_forces_new_token() {
    let (mut m, first) = warm(JwsAlgorithm::Es384);
    m.invalidate();
    let second = send(m.poll(T0.plus_secs(1)).unwrap());
    assert_ne!(
        form(&first, "client_assertion"),
        form(&second, "client_assertion")
    );
}

#[test]
fn b24_every_attempt_signs_a_new_assertion() {
    let (mut m, _) = warm(JwsAlgorithm::Es384);
    m.invalidate();
    let a = send(m.poll(T0).unwrap());
    m.abort(); // transport failure
    let b = send(m.poll(T0.plus_secs(2)).unwrap());
    m.handle_response(
        HttpResponse::new(
            401,
            r#"{"error":"invalid_client","error_description":"jti replay"}"#,
        ),
        T0.plus_secs(2),
    )
    .unwrap_err();
    let c = send(m.poll(T0.plus_secs(3)).unwrap());
    let jtis: Vec<String> = [a, b, c]
        .iter()
        .map(|r| {
            jwt_part(&form(r, "client_assertion").unwrap(), 1)["jti"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_ne!(jtis[0], jtis[1]);
    assert_ne!(jtis[1], jtis[2]);
    assert_ne!(jtis[0], jtis[2]);
}

#[test]
fn asym_12_b20_oauth_error_is_typed_with_status() {
    let mut m = machine(config(JwsAlgorithm::Rs384));
    let _ = send(m.poll(T0).unwrap());
    m.handle_response(HttpResponse::new(200, well_known_body()), T0)
        .unwrap();
    let _ = send(m.poll(T0).unwrap());
    let err = m
        .handle_response(
            HttpResponse::new(
                401,
                r#"{"error":"invalid_client","error_description":"bad aud","error_uri":"https://ehr.example.org/e"}"#,
            ),
            T0,
        )
        .unwrap_err();
    match err {
        Error::OAuth(e) => {
            assert_eq!(e.status, Some(401));
            assert_eq!(e.error, "invalid_client");
            assert_eq!(e.error_description.as_deref(), Some("bad aud"));
            assert_eq!(e.error_uri.as_deref(), Some("https://ehr.example.org/e"));
        }
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

#[test]
fn b13_missing_expires_in_cached_until_invalidated() {
    let mut m = machine(config(JwsAlgorithm::Es384));
    let _ = send(m.poll(T0).unwrap());
    m.handle_response(HttpResponse::new(200, well_known_body()), T0)
        .unwrap();
    let _ = send(m.poll(T0).unwrap());
    m.handle_response(HttpResponse::new(200, token_body("S1", None)), T0)
        .unwrap();
    assert_eq!(
        ready(m.poll(T0.plus_secs(100_000)).unwrap())
            .access_token
            .secret(),
        "S1"
    );
    m.invalidate();
    let _ = send(m.poll(T0.plus_secs(100_001)).unwrap());
}

#[test]
fn b20_assertion_lifetime_over_five_minutes_is_refused() {
    let err = BackendServices::new(
        config(JwsAlgorithm::Es384).with_assertion_lifetime_secs(301),
        Arc::new(DeterministicEntropy::new(0)),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("assertion_lifetime_secs")),
        "{err}"
    );
    let short = config(JwsAlgorithm::Es384).with_assertion_lifetime_secs(60);
    let mut m = machine(short);
    let _ = send(m.poll(T0).unwrap());
    m.handle_response(HttpResponse::new(200, well_known_body()), T0)
        .unwrap();
    let req = send(m.poll(T0).unwrap());
    let claims = jwt_part(&form(&req, "client_assertion").unwrap(), 1);
    assert_eq!(claims["exp"], T0.as_secs() + 60);
}

#[test]
fn jku_is_sent_only_when_configured() {
    let mut m = machine(config(JwsAlgorithm::Es384).with_jku("https://app.example.org/jwks.json"));
    let _ = send(m.poll(T0).unwrap());
    m.handle_response(HttpResponse::new(200, well_known_body()), T0)
        .unwrap();
    let req = send(m.poll(T0).unwrap());
    let header = jwt_part(&form(&req, "client_assertion").unwrap(), 0);
    assert_eq!(header["jku"], "https://app.example.org/jwks.json");
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let mut m = machine(config(JwsAlgorithm::Es384));
    assert!(matches!(
        m.handle_response(HttpResponse::new(200, "{}"), T0),
        Err(Error::Misuse(_))
    ));
    let _ = send(m.poll(T0).unwrap());
    // A second caller while the request is out waits for it.
    assert!(matches!(m.poll(T0), Ok(Action::WaitForFlight)));
}

#[test]
fn discovery_failure_is_a_typed_error_and_retryable() {
    let mut m = machine(config(JwsAlgorithm::Es384));
    let _ = send(m.poll(T0).unwrap());
    // The well-known answer is unusable, so discovery falls back to /metadata (B05)...
    m.handle_response(HttpResponse::new(404, "not found"), T0)
        .unwrap();
    let meta = send(m.poll(T0).unwrap());
    assert_eq!(meta.url.as_str(), format!("{BASE}/metadata"));
    // ...which is unusable too.
    let err = m.handle_response(HttpResponse::new(500, "<html>"), T0);
    let err = match err {
        Err(e) => e,
        Ok(()) => m.poll(T0).unwrap_err(),
    };
    assert!(matches!(err, Error::Discovery(_)), "{err:?}");
    // Callers share that error during the backoff; then the next poll starts discovery again.
    assert_eq!(m.poll(T0).unwrap_err(), err);
    let again = send(m.poll(T0.plus_secs(120)).unwrap());
    assert_eq!(
        again.url.as_str(),
        format!("{BASE}/.well-known/smart-configuration")
    );
}

#[test]
fn insecure_token_endpoint_is_refused() {
    let mut m = machine(config(JwsAlgorithm::Es384));
    let _ = send(m.poll(T0).unwrap());
    let body = well_known_body().replace(
        "https://ehr.example.org/oauth2/token",
        "http://ehr.example.org/oauth2/token",
    );
    // Discovery completes at the next poll, which refuses the plain-HTTP token endpoint
    // before any token request is built.
    m.handle_response(HttpResponse::new(200, body), T0).unwrap();
    assert!(matches!(m.poll(T0), Err(Error::InsecureUrl { .. })));
    let again = send(m.poll(T0.plus_secs(120)).unwrap());
    assert!(
        again
            .url
            .as_str()
            .ends_with("/.well-known/smart-configuration"),
        "no token request: {again:?}"
    );
}

#[test]
fn cache_key_is_endpoint_client_and_scope() {
    let (m, _) = warm(JwsAlgorithm::Es384);
    let key = m.cache_key().unwrap();
    assert_eq!(key.token_endpoint, TOKEN_URL);
    assert_eq!(key.client_id, "c-123");
    assert_eq!(key.scope, "system/Encounter.read system/Patient.read");
}

#[test]
fn debug_never_shows_tokens_or_keys() {
    let (m, req) = warm(JwsAlgorithm::Rs384);
    let dbg = format!("{m:?} {req:?}");
    assert!(!dbg.contains("S1"), "{dbg}");
    let jwt = form(&req, "client_assertion").unwrap();
    assert!(!dbg.contains(&jwt[..20]));
}
