//! `id_token` signature and claims verification (OIDC-01, OIDC-02, OIDC-04; case B06), driving
//! [`IdTokenVerifier`] by hand with canned OpenID configuration and JWKS responses.
//!
//! Tokens are signed here with the RustCrypto crates directly (not through the code under
//! test): RSA with the fixture key `keys/rsa-2048-pkcs8.pem` and a second 2048-bit key
//! generated from a seeded RNG, EC with fixed P-256 / P-384 scalars. The last tests verify
//! the real `id_token` recorded from a SMART server (`fixtures/real-server/`).

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::rand_core::{TryCryptoRng, TryRng};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha384};
use smart_core::discovery::parse_smart_configuration;
use smart_core::error::{Document, IdTokenError, ParseError};
use smart_core::id_token::{
    DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS, IdTokenAlgorithm, IdTokenVerifier, MAX_JWKS_FETCHES,
    VerifiedIdTokenClaims, openid_configuration_url,
};
use smart_core::secret::IdToken;
use smart_core::{Action, ClientId, Error, FhirBaseUrl, Flow, HttpResponse, Method, UnixTime};
use url::Url;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
/// The OIDC issuer: has a path, and is not the FHIR base (case B06).
const ISS: &str = "https://auth.example.org/oidc";
const CONFIG_URL: &str = "https://auth.example.org/oidc/.well-known/openid-configuration";
const JWKS_URL: &str = "https://auth.example.org/oidc/jwks";
const FHIR_BASE: &str = "https://ehr.example.org/fhir/r4";
const CLIENT: &str = "app-1";
const RSA_2048_PEM: &str = include_str!("fixtures/keys/rsa-2048-pkcs8.pem");

// ---------------------------------------------------------------------------------------------
// Keys and signing (independent of the code under test)
// ---------------------------------------------------------------------------------------------

/// Deterministic RNG for test key generation only: SHA-256(seed || counter) blocks.
struct SeededRng {
    seed: u64,
    counter: u64,
}

impl TryRng for SeededRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dest.chunks_mut(32) {
            let mut h = Sha256::new();
            h.update(self.seed.to_le_bytes());
            h.update(self.counter.to_le_bytes());
            self.counter += 1;
            chunk.copy_from_slice(&h.finalize()[..chunk.len()]);
        }
        Ok(())
    }
}
impl TryCryptoRng for SeededRng {}

#[derive(Clone)]
enum Key {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

fn rsa_fixture() -> Key {
    Key::Rsa(Box::new(
        rsa::PrivateKey::from_pkcs8_pem(RSA_2048_PEM).unwrap(),
    ))
}

fn rsa_generated() -> Key {
    use std::sync::OnceLock;
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    let k = KEY.get_or_init(|| {
        rsa::PrivateKey::new(
            &mut SeededRng {
                seed: 42,
                counter: 0,
            },
            2048,
        )
        .unwrap()
    });
    Key::Rsa(Box::new(k.clone()))
}

fn p256_key() -> Key {
    Key::P256(p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap())
}

fn p384_key() -> Key {
    Key::P384(p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Key {
    fn sign(&self, alg: &str, input: &[u8]) -> Vec<u8> {
        match (self, alg) {
            (Self::Rsa(k), "RS256") => rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone())
                .sign(input)
                .to_vec(),
            (Self::Rsa(k), "RS384") => rsa::pkcs1v15::SigningKey::<Sha384>::new((**k).clone())
                .sign(input)
                .to_vec(),
            (Self::P256(k), "ES256") => {
                let s: p256::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            (Self::P384(k), "ES384") => {
                let s: p384::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            _ => panic!("test key cannot sign {alg}"),
        }
    }

    /// The public JWK, with `kid` and `alg` when given.
    fn jwk(&self, kid: Option<&str>, alg: Option<&str>) -> Value {
        let mut v = match self {
            Self::Rsa(k) => {
                json!({"kty": "RSA", "n": b64(&k.n_bytes()), "e": b64(&k.e_bytes())})
            }
            Self::P256(k) => {
                let p = k.verifying_key().to_sec1_point(false);
                json!({"kty": "EC", "crv": "P-256", "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())})
            }
            Self::P384(k) => {
                let p = k.verifying_key().to_sec1_point(false);
                json!({"kty": "EC", "crv": "P-384", "x": b64(p.x().unwrap()), "y": b64(p.y().unwrap())})
            }
        };
        if let Some(kid) = kid {
            v["kid"] = kid.into();
        }
        if let Some(alg) = alg {
            v["alg"] = alg.into();
        }
        v
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "user-1",
        "aud": CLIENT,
        "iat": NOW.as_secs() - 10,
        "exp": NOW.as_secs() + 300,
        "fhirUser": "Practitioner/7",
        "name": "Dr. Seven"
    })
}

/// A compact JWS over `header` and `claims` signed by `key` with `alg`.
fn sign(key: &Key, header: &Value, claims: &Value) -> IdToken {
    let alg = header["alg"].as_str().unwrap();
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = key.sign(alg, input.as_bytes());
    IdToken::new(format!("{input}.{}", b64(&sig)))
}

fn token(key: &Key, alg: &str, kid: Option<&str>, claims: &Value) -> IdToken {
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = kid.into();
    }
    sign(key, &header, claims)
}

fn jwks(keys: &[Value]) -> HttpResponse {
    HttpResponse::new(200, json!({ "keys": keys }).to_string())
}

fn openid_configuration(issuer: &str) -> HttpResponse {
    HttpResponse::new(
        200,
        json!({"issuer": issuer, "jwks_uri": JWKS_URL, "id_token_signing_alg_values_supported": ["RS256"]})
            .to_string(),
    )
}

fn verifier(id_token: &IdToken) -> IdTokenVerifier {
    IdTokenVerifier::new(id_token, ISS, ClientId::new(CLIENT)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The driver loop
// ---------------------------------------------------------------------------------------------

/// Drive `flow` at `now`, answering each request with the next canned response. Returns the
/// outcome and the URLs requested (every request must be a GET accepting JSON).
fn drive(
    flow: &mut IdTokenVerifier,
    responses: impl IntoIterator<Item = HttpResponse>,
    now: UnixTime,
) -> (Result<VerifiedIdTokenClaims, Error>, Vec<String>) {
    let mut responses: VecDeque<HttpResponse> = responses.into_iter().collect();
    let mut urls = Vec::new();
    for _ in 0..10 {
        match flow.poll(now) {
            Ok(Action::Ready(claims)) => return (Ok(claims), urls),
            Ok(Action::Send(req)) => {
                assert_eq!(req.method, Method::Get);
                assert_eq!(req.header("accept"), Some("application/json"));
                assert!(req.body.is_empty());
                urls.push(req.url.to_string());
                let resp = responses
                    .pop_front()
                    .unwrap_or_else(|| panic!("unexpected request to {}", req.url));
                if let Err(e) = flow.handle_response(resp, now) {
                    return (Err(e), urls);
                }
            }
            Ok(_) => panic!("unknown action"),
            Err(e) => return (Err(e), urls),
        }
    }
    panic!("flow did not finish");
}

/// Verify with a known `jwks_uri` (one request) and the given JWKS entries.
fn verify_with(id_token: &IdToken, keys: &[Value]) -> Result<VerifiedIdTokenClaims, Error> {
    let mut v = verifier(id_token).with_jwks_uri(Url::parse(JWKS_URL).unwrap());
    let (result, urls) = drive(&mut v, [jwks(keys)], NOW);
    if !matches!(
        result,
        Err(Error::IdToken(IdTokenError::NoMatchingKey { .. }))
    ) {
        assert_eq!(urls, [JWKS_URL], "exactly one JWKS request");
    }
    result
}

fn id_err(result: Result<VerifiedIdTokenClaims, Error>) -> IdTokenError {
    match result {
        Err(Error::IdToken(e)) => e,
        other => panic!("expected an IdToken error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Good tokens
// ---------------------------------------------------------------------------------------------

#[test]
fn oidc_02_rs256_via_openid_configuration() {
    let key = rsa_fixture();
    let t = token(&key, "RS256", Some("rsa-1"), &claims());
    let mut v = verifier(&t);
    assert_eq!(v.algorithm(), IdTokenAlgorithm::Rs256);
    assert_eq!(v.kid(), Some("rsa-1"));
    let (result, urls) = drive(
        &mut v,
        [
            openid_configuration(ISS),
            jwks(&[key.jwk(Some("rsa-1"), Some("RS256"))]),
        ],
        NOW,
    );
    // `{issuer}/.well-known/openid-configuration` appended (the issuer's `/oidc` kept), then
    // the document's jwks_uri.
    assert_eq!(urls, [CONFIG_URL, JWKS_URL]);
    let c = result.unwrap();
    assert_eq!(c.iss(), ISS);
    assert_eq!(c.sub(), "user-1");
    assert_eq!(c.audiences(), ["app-1"]);
    assert_eq!(c.azp(), None);
    assert_eq!(c.issued_at(), UnixTime::from_secs(1_699_999_990));
    assert_eq!(c.expires_at(), UnixTime::from_secs(1_700_000_300));
    assert_eq!(c.algorithm(), IdTokenAlgorithm::Rs256);
    assert_eq!(c.kid(), Some("rsa-1"));
    assert_eq!(
        c.fhir_user(),
        Some(smart_core::FhirUser::new("Practitioner/7"))
    );
    assert_eq!(
        c.fhir_user()
            .unwrap()
            .url(&FhirBaseUrl::new(FHIR_BASE).unwrap())
            .unwrap()
            .as_str(),
        "https://ehr.example.org/fhir/r4/Practitioner/7"
    );
    assert_eq!(
        c.fhir_user()
            .as_ref()
            .and_then(smart_core::FhirUser::reference),
        Some(("Practitioner", "7"))
    );
    assert_eq!(c.claim("name"), Some(&json!("Dr. Seven")));
    assert_eq!(v.jwks_fetches(), 1);
    // A one-shot flow: finished once its output is handed out.
    assert!(matches!(v.poll(NOW.plus_secs(5)), Err(Error::Misuse(_))));
}

#[test]
fn rs384_es256_es384_verify() {
    let cases = [
        (rsa_generated(), "RS384", IdTokenAlgorithm::Rs384),
        (p256_key(), "ES256", IdTokenAlgorithm::Es256),
        (p384_key(), "ES384", IdTokenAlgorithm::Es384),
        (rsa_fixture(), "RS256", IdTokenAlgorithm::Rs256),
    ];
    for (key, alg, expected) in cases {
        let t = token(&key, alg, Some("k"), &claims());
        // Several keys in the set: the kid picks the right one.
        let other = p384_key().jwk(Some("other"), Some("ES384"));
        let c = verify_with(&t, &[other, key.jwk(Some("k"), Some(alg))])
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(c.algorithm(), expected, "{alg}");
        assert_eq!(c.sub(), "user-1");
        // The JWK `alg` is optional.
        verify_with(&t, &[key.jwk(Some("k"), None)]).unwrap();
    }
}

#[test]
fn from_discovery_uses_smart_issuer_and_jwks_uri() {
    let base = FhirBaseUrl::new(FHIR_BASE).unwrap();
    let doc = json!({
        "issuer": ISS, "jwks_uri": JWKS_URL, "token_endpoint": "https://auth.example.org/oidc/token",
        "capabilities": ["sso-openid-connect"]
    });
    let discovered =
        parse_smart_configuration(doc.to_string().as_bytes(), &base, &base.well_known()).unwrap();
    let key = p256_key();
    let t = token(&key, "ES256", Some("e1"), &claims());
    let mut v = IdTokenVerifier::from_discovery(&t, &discovered, ClientId::new(CLIENT)).unwrap();
    assert_eq!(v.expected_issuer(), ISS);
    let (result, urls) = drive(&mut v, [jwks(&[key.jwk(Some("e1"), None)])], NOW);
    assert_eq!(urls, [JWKS_URL], "no openid-configuration request");
    assert_eq!(result.unwrap().iss(), ISS);

    // No issuer in the SMART configuration: refused before any request.
    let doc = json!({"token_endpoint": "https://auth.example.org/oidc/token"});
    let discovered =
        parse_smart_configuration(doc.to_string().as_bytes(), &base, &base.well_known()).unwrap();
    let err = IdTokenVerifier::from_discovery(&t, &discovered, ClientId::new(CLIENT)).unwrap_err();
    assert!(matches!(
        &err,
        Error::IdToken(IdTokenError::Discovery { url, status: None, .. })
            if url == "https://ehr.example.org/fhir/r4/.well-known/smart-configuration"
    ));
}

#[test]
fn trusting_token_issuer_is_explicit() {
    let key = rsa_fixture();
    let t = token(&key, "RS256", None, &claims());
    let mut v = IdTokenVerifier::trusting_token_issuer(&t, ClientId::new(CLIENT)).unwrap();
    assert_eq!(v.expected_issuer(), ISS);
    let (result, urls) = drive(
        &mut v,
        [openid_configuration(ISS), jwks(&[key.jwk(None, None)])],
        NOW,
    );
    assert_eq!(urls, [CONFIG_URL, JWKS_URL]);
    assert_eq!(result.unwrap().iss(), ISS);

    let mut no_iss = claims();
    no_iss.as_object_mut().unwrap().remove("iss");
    let t = token(&key, "RS256", None, &no_iss);
    assert_eq!(
        IdTokenVerifier::trusting_token_issuer(&t, ClientId::new(CLIENT)).unwrap_err(),
        Error::IdToken(IdTokenError::MissingClaim("iss"))
    );
}

#[test]
fn openid_configuration_url_appends() {
    for (issuer, url) in [
        (
            "https://auth.example.org/oidc",
            "https://auth.example.org/oidc/.well-known/openid-configuration",
        ),
        (
            "https://auth.example.org/oidc/",
            "https://auth.example.org/oidc/.well-known/openid-configuration",
        ),
        (
            "https://auth.example.org",
            "https://auth.example.org/.well-known/openid-configuration",
        ),
        (
            "http://127.0.0.1:8445/v/r4/fhir",
            "http://127.0.0.1:8445/v/r4/fhir/.well-known/openid-configuration",
        ),
    ] {
        assert_eq!(openid_configuration_url(issuer).unwrap().as_str(), url);
    }
    for bad in [
        "",
        "auth.example.org",
        "https://a.example/?x=1",
        "ftp://a.example/",
    ] {
        assert!(
            matches!(
                openid_configuration_url(bad),
                Err(IdTokenError::Discovery { status: None, .. })
            ),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures and algorithms
// ---------------------------------------------------------------------------------------------

#[test]
fn tampered_payload_or_signature_is_bad_signature() {
    let key = rsa_fixture();
    let t = token(&key, "RS256", Some("rsa-1"), &claims());
    let parts: Vec<&str> = t.secret().split('.').collect();
    let mut evil = claims();
    evil["fhirUser"] = "Practitioner/admin".into();
    let tampered = IdToken::new(format!(
        "{}.{}.{}",
        parts[0],
        b64(evil.to_string().as_bytes()),
        parts[2]
    ));
    let jwk = key.jwk(Some("rsa-1"), Some("RS256"));
    assert_eq!(
        id_err(verify_with(&tampered, std::slice::from_ref(&jwk))),
        IdTokenError::BadSignature
    );

    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = IdToken::new(format!("{}.{}.{}", parts[0], parts[1], b64(&sig)));
    assert_eq!(
        id_err(verify_with(&flipped, std::slice::from_ref(&jwk))),
        IdTokenError::BadSignature
    );

    // Signed by another key published under the same kid.
    let other = token(&rsa_generated(), "RS256", Some("rsa-1"), &claims());
    assert_eq!(
        id_err(verify_with(&other, &[jwk])),
        IdTokenError::BadSignature
    );

    // ES256 with a truncated signature.
    let ec = p256_key();
    let t = token(&ec, "ES256", Some("e"), &claims());
    let cut = &t.secret()[..t.secret().len() - 4];
    assert_eq!(
        id_err(verify_with(&IdToken::new(cut), &[ec.jwk(Some("e"), None)])),
        IdTokenError::BadSignature
    );
}

#[test]
fn alg_must_fit_the_key() {
    let rsa = rsa_fixture();
    let ec256 = p256_key();
    let ec384 = p384_key();
    let mismatch = |t: &IdToken, jwk: Value| match id_err(verify_with(t, &[jwk])) {
        IdTokenError::KeyMismatch { kid, alg, reason } => {
            assert_eq!(kid.as_deref(), Some("k"));
            (alg, reason)
        }
        other => panic!("expected KeyMismatch, got {other:?}"),
    };

    // Header says ES256, the key named by kid is RSA.
    let t = token(&ec256, "ES256", Some("k"), &claims());
    let (alg, reason) = mismatch(&t, rsa.jwk(Some("k"), None));
    assert_eq!(alg, "ES256");
    assert!(reason.contains("`RSA`"), "{reason}");

    // Header ES256, key on P-384.
    let (_, reason) = mismatch(&t, ec384.jwk(Some("k"), None));
    assert!(reason.contains("P-256"), "{reason}");

    // RS256-signed token relabelled RS384: the JWK says RS256.
    let signed = token(&rsa, "RS256", Some("k"), &claims());
    let parts: Vec<&str> = signed.secret().split('.').collect();
    let relabelled = IdToken::new(format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS384","kid":"k"}"#),
        parts[1],
        parts[2]
    ));
    let (alg, _) = mismatch(&relabelled, rsa.jwk(Some("k"), Some("RS256")));
    assert_eq!(alg, "RS384");
    // Without a JWK `alg` the relabelled token simply fails to verify.
    assert_eq!(
        id_err(verify_with(&relabelled, &[rsa.jwk(Some("k"), None)])),
        IdTokenError::BadSignature
    );

    // An encryption key or one without `verify` in key_ops.
    let mut enc = rsa.jwk(Some("k"), None);
    enc["use"] = "enc".into();
    let (_, reason) = mismatch(&signed, enc);
    assert!(reason.contains("`use`"), "{reason}");
    let mut ops = rsa.jwk(Some("k"), None);
    ops["key_ops"] = json!(["encrypt"]);
    let (_, reason) = mismatch(&signed, ops);
    assert!(reason.contains("key_ops"), "{reason}");

    // A 1024-bit RSA key is refused (RFC 7518 §3.3).
    let small =
        rsa::PrivateKey::from_pkcs8_pem(include_str!("fixtures/keys/rsa-1024-pkcs8.pem")).unwrap();
    let small = Key::Rsa(Box::new(small));
    let t = token(&small, "RS256", Some("k"), &claims());
    let (_, reason) = mismatch(&t, small.jwk(Some("k"), None));
    assert!(reason.contains("1024 bits"), "{reason}");
}

#[test]
fn alg_none_and_hs256_are_refused_before_any_request() {
    let claims = b64(claims().to_string().as_bytes());
    for (alg, sig) in [
        ("none", ""),
        ("HS256", "c2ln"),
        ("RS512", "c2ln"),
        ("PS256", "c2ln"),
    ] {
        let header = b64(json!({"alg": alg, "kid": "rsa-1"}).to_string().as_bytes());
        let t = IdToken::new(format!("{header}.{claims}.{sig}"));
        let err = IdTokenVerifier::new(&t, ISS, ClientId::new(CLIENT)).unwrap_err();
        assert_eq!(
            err,
            Error::IdToken(IdTokenError::UnsupportedAlg(alg.into())),
            "{alg}"
        );
        assert!(err.to_string().contains(alg));
    }
    // HS256 "signed" with the RSA public key as HMAC secret (the classic confusion attack)
    // is refused the same way: no key is ever used as a MAC secret.
    let header = b64(br#"{"alg":"HS256"}"#);
    let t = IdToken::new(format!("{header}.{claims}.{}", b64(&[0u8; 32])));
    assert_eq!(
        IdTokenVerifier::trusting_token_issuer(&t, ClientId::new(CLIENT)).unwrap_err(),
        Error::IdToken(IdTokenError::UnsupportedAlg("HS256".into()))
    );
}

#[test]
fn malformed_tokens_are_parse_errors() {
    let claims = b64(claims().to_string().as_bytes());
    let cases = [
        "a.b".to_owned(),
        format!("{}.{claims}.c2ln", b64(b"[1]")),
        format!("{}.{claims}.c2ln", b64(br#"{"kid":"x"}"#)),
        format!(
            "{}.{claims}.c2ln",
            b64(br#"{"alg":"RS256","crit":["exp"]}"#)
        ),
        format!("{}.{claims}.c2ln", b64(br#"{"alg":"RS256","kid":7}"#)),
        format!("{}.{claims}.!!", b64(br#"{"alg":"RS256"}"#)),
        format!("{}.{}.c2ln", b64(br#"{"alg":"RS256"}"#), b64(b"[]")),
    ];
    for t in cases {
        let err =
            IdTokenVerifier::new(&IdToken::new(t.clone()), ISS, ClientId::new(CLIENT)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Parse(ParseError {
                    document: Document::IdToken,
                    ..
                })
            ),
            "{t}: {err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

fn verify_claims(claims: &Value) -> Result<VerifiedIdTokenClaims, Error> {
    let key = p384_key();
    verify_with(
        &token(&key, "ES384", Some("k"), claims),
        &[key.jwk(Some("k"), Some("ES384"))],
    )
}

fn with(mut c: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        c.as_object_mut().unwrap().remove(name);
    } else {
        c[name] = value;
    }
    c
}

#[test]
fn wrong_issuer() {
    let err = id_err(verify_claims(&with(
        claims(),
        "iss",
        "https://evil.example.org".into(),
    )));
    assert_eq!(
        err,
        IdTokenError::IssuerMismatch {
            expected: ISS.into(),
            received: "https://evil.example.org".into()
        }
    );
    // B06: an `iss` equal to the FHIR base is not the OIDC issuer.
    let err = id_err(verify_claims(&with(claims(), "iss", FHIR_BASE.into())));
    assert!(matches!(err, IdTokenError::IssuerMismatch { received, .. } if received == FHIR_BASE));
    // Exact comparison: a trailing slash differs.
    let err = id_err(verify_claims(&with(
        claims(),
        "iss",
        format!("{ISS}/").into(),
    )));
    assert!(matches!(err, IdTokenError::IssuerMismatch { .. }));
}

#[test]
fn wrong_audience_and_azp() {
    let aud_err = IdTokenError::AudienceMismatch {
        client_id: CLIENT.into(),
    };
    assert_eq!(
        id_err(verify_claims(&with(claims(), "aud", "other-app".into()))),
        aud_err
    );
    assert_eq!(
        id_err(verify_claims(&with(claims(), "aud", json!(["x", "y"])))),
        aud_err
    );
    assert_eq!(
        id_err(verify_claims(&with(claims(), "aud", json!(7)))),
        aud_err
    );
    assert_eq!(
        id_err(verify_claims(&with(claims(), "aud", Value::Null))),
        IdTokenError::MissingClaim("aud")
    );
    // Array with only us: fine.
    let c = verify_claims(&with(claims(), "aud", json!([CLIENT]))).unwrap();
    assert_eq!(c.audiences(), [CLIENT]);
    // Several audiences: azp is required and must be us.
    let multi = with(claims(), "aud", json!([CLIENT, "https://api.example.org"]));
    assert_eq!(
        id_err(verify_claims(&multi)),
        IdTokenError::AuthorizedPartyMismatch {
            client_id: CLIENT.into(),
            received: None
        }
    );
    assert_eq!(
        id_err(verify_claims(&with(
            multi.clone(),
            "azp",
            "other-app".into()
        ))),
        IdTokenError::AuthorizedPartyMismatch {
            client_id: CLIENT.into(),
            received: Some("other-app".into())
        }
    );
    let c = verify_claims(&with(multi, "azp", CLIENT.into())).unwrap();
    assert_eq!(c.audiences(), [CLIENT, "https://api.example.org"]);
    assert_eq!(c.azp(), Some(CLIENT));
}

#[test]
fn expiry_and_issued_at_with_skew() {
    let now = NOW.as_secs();
    assert_eq!(DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS, 60);
    // exp 61 s ago: beyond the 60 s skew.
    assert_eq!(
        id_err(verify_claims(&with(claims(), "exp", json!(now - 61)))),
        IdTokenError::Expired { exp: now - 61, now }
    );
    // exp 59 s ago: within the skew.
    verify_claims(&with(claims(), "exp", json!(now - 59))).unwrap();
    // iat 2 min ahead: issued in the future; 30 s ahead is tolerated.
    assert_eq!(
        id_err(verify_claims(&with(claims(), "iat", json!(now + 120)))),
        IdTokenError::IssuedInFuture {
            iat: now + 120,
            now
        }
    );
    verify_claims(&with(claims(), "iat", json!(now + 30))).unwrap();
    // nbf beyond the skew.
    assert_eq!(
        id_err(verify_claims(&with(claims(), "nbf", json!(now + 600)))),
        IdTokenError::NotYetValid {
            nbf: now + 600,
            now
        }
    );
    for required in ["exp", "iat", "sub", "iss"] {
        assert_eq!(
            id_err(verify_claims(&with(claims(), required, Value::Null))),
            IdTokenError::MissingClaim(required)
        );
    }

    // Zero skew: exp == now is expired; checked at the Ready poll's `now`.
    let key = p384_key();
    let t = token(
        &key,
        "ES384",
        Some("k"),
        &with(claims(), "exp", json!(now + 10)),
    );
    let verified_at = |at: UnixTime| {
        let mut v = verifier(&t)
            .with_clock_skew_secs(0)
            .with_jwks_uri(Url::parse(JWKS_URL).unwrap());
        let Action::Send(_) = v.poll(NOW).unwrap() else {
            panic!()
        };
        v.handle_response(jwks(&[key.jwk(Some("k"), None)]), NOW)
            .unwrap();
        v.poll(at)
    };
    assert!(matches!(
        verified_at(NOW.plus_secs(9)),
        Ok(Action::Ready(_))
    ));
    assert_eq!(
        verified_at(NOW.plus_secs(10)).unwrap_err(),
        Error::IdToken(IdTokenError::Expired {
            exp: now + 10,
            now: now + 10
        })
    );
}

#[test]
fn nonce_is_checked_when_given() {
    let key = p384_key();
    let run = |claims: &Value| {
        let t = token(&key, "ES384", Some("k"), claims);
        let mut v = verifier(&t)
            .with_nonce("n-0S6_WzA2Mj")
            .with_jwks_uri(Url::parse(JWKS_URL).unwrap());
        drive(&mut v, [jwks(&[key.jwk(Some("k"), None)])], NOW).0
    };
    let c = run(&with(claims(), "nonce", "n-0S6_WzA2Mj".into())).unwrap();
    assert_eq!(c.nonce(), Some("n-0S6_WzA2Mj"));
    assert_eq!(
        id_err(run(&with(claims(), "nonce", "n-other".into()))),
        IdTokenError::NonceMismatch
    );
    assert_eq!(id_err(run(&claims())), IdTokenError::MissingClaim("nonce"));
    // Without with_nonce a nonce in the token is not required to match anything.
    assert!(verify_claims(&with(claims(), "nonce", "x".into())).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Key selection and JWKS refetch (B06)
// ---------------------------------------------------------------------------------------------

#[test]
fn b06_unknown_kid_refetches_jwks_once_then_succeeds() {
    let old = rsa_fixture();
    let new = rsa_generated();
    let t = token(&new, "RS256", Some("2024-rotated"), &claims());
    let mut v = verifier(&t);
    let (result, urls) = drive(
        &mut v,
        [
            openid_configuration(ISS),
            jwks(&[old.jwk(Some("2023"), Some("RS256"))]),
            jwks(&[
                old.jwk(Some("2023"), Some("RS256")),
                new.jwk(Some("2024-rotated"), Some("RS256")),
            ]),
        ],
        NOW,
    );
    assert_eq!(urls, [CONFIG_URL, JWKS_URL, JWKS_URL]);
    assert_eq!(result.unwrap().kid(), Some("2024-rotated"));
    assert_eq!(v.jwks_fetches(), 2);
}

#[test]
fn b06_kid_still_missing_after_refetch_is_no_matching_key() {
    let old = rsa_fixture();
    let t = token(&rsa_generated(), "RS256", Some("2024-rotated"), &claims());
    let mut v = verifier(&t).with_jwks_uri(Url::parse(JWKS_URL).unwrap());
    let stale = || jwks(&[old.jwk(Some("2023"), Some("RS256"))]);
    // A third response is available but must not be requested.
    let (result, urls) = drive(&mut v, [stale(), stale(), stale()], NOW);
    assert_eq!(urls, [JWKS_URL, JWKS_URL]);
    assert_eq!(MAX_JWKS_FETCHES, 2);
    let expected = IdTokenError::NoMatchingKey {
        kid: Some("2024-rotated".into()),
    };
    assert_eq!(id_err(result), expected);
    // The flow stays failed: no third request.
    assert_eq!(v.poll(NOW).unwrap_err(), Error::IdToken(expected));
    assert_eq!(v.jwks_fetches(), 2);
    assert!(
        v.poll(NOW)
            .unwrap_err()
            .to_string()
            .contains("`2024-rotated`")
    );
}

#[test]
fn no_kid_uses_the_single_suitable_key() {
    let rsa = rsa_fixture();
    let t = token(&rsa, "RS256", None, &claims());
    // Like the real-server JWKS: one RS256 key (with a kid the token does not carry).
    let c = verify_with(&t, &[rsa.jwk(Some("gdGx"), Some("RS256"))]).unwrap();
    assert_eq!(c.kid(), None);
    // An EC key beside it does not fit RS256, so the RSA key is still the only candidate.
    verify_with(
        &t,
        &[p256_key().jwk(Some("e"), None), rsa.jwk(Some("r"), None)],
    )
    .unwrap();
    // Two RSA keys and no kid: ambiguous (OIDC Core §10.1).
    assert_eq!(
        id_err(verify_with(
            &t,
            &[
                rsa.jwk(Some("a"), None),
                rsa_generated().jwk(Some("b"), None)
            ]
        )),
        IdTokenError::AmbiguousKey { candidates: 2 }
    );
    // No suitable key at all: refetch once, then NoMatchingKey { kid: None }.
    let mut v = verifier(&t).with_jwks_uri(Url::parse(JWKS_URL).unwrap());
    let ec_only = || jwks(&[p384_key().jwk(None, None)]);
    let (result, urls) = drive(&mut v, [ec_only(), ec_only()], NOW);
    assert_eq!(urls.len(), 2);
    assert_eq!(id_err(result), IdTokenError::NoMatchingKey { kid: None });
}

// ---------------------------------------------------------------------------------------------
// OpenID configuration and JWKS documents
// ---------------------------------------------------------------------------------------------

#[test]
fn openid_configuration_issuer_must_match() {
    let key = rsa_fixture();
    let t = token(&key, "RS256", None, &claims());
    let mut v = verifier(&t);
    let (result, urls) = drive(
        &mut v,
        [openid_configuration("https://evil.example.org")],
        NOW,
    );
    assert_eq!(
        urls,
        [CONFIG_URL],
        "no JWKS request from a foreign document"
    );
    assert_eq!(
        id_err(result),
        IdTokenError::ConfigurationIssuerMismatch {
            expected: ISS.into(),
            received: Some("https://evil.example.org".into())
        }
    );
    let mut v = verifier(&t);
    let (result, _) = drive(
        &mut v,
        [HttpResponse::new(
            200,
            json!({"jwks_uri": JWKS_URL}).to_string(),
        )],
        NOW,
    );
    assert_eq!(
        id_err(result),
        IdTokenError::ConfigurationIssuerMismatch {
            expected: ISS.into(),
            received: None
        }
    );
}

#[test]
fn unusable_documents_are_discovery_errors() {
    let key = rsa_fixture();
    let t = token(&key, "RS256", None, &claims());
    let cases: [(Vec<HttpResponse>, &str, u16, &str); 5] = [
        (
            vec![HttpResponse::new(404, "not found")],
            CONFIG_URL,
            404,
            "unexpected HTTP status",
        ),
        (
            vec![HttpResponse::new(200, "<html>")],
            CONFIG_URL,
            200,
            "not a JSON object",
        ),
        (
            vec![HttpResponse::new(200, json!({"issuer": ISS}).to_string())],
            CONFIG_URL,
            200,
            "`jwks_uri`",
        ),
        (
            vec![openid_configuration(ISS), HttpResponse::new(503, "")],
            JWKS_URL,
            503,
            "unexpected HTTP status",
        ),
        (
            vec![
                openid_configuration(ISS),
                HttpResponse::new(200, r#"{"kty":"RSA"}"#),
            ],
            JWKS_URL,
            200,
            "`keys`",
        ),
    ];
    for (responses, url, status, reason_part) in cases {
        let mut v = verifier(&t);
        match id_err(drive(&mut v, responses, NOW).0) {
            IdTokenError::Discovery {
                url: u,
                status: s,
                reason,
            } => {
                assert_eq!(u, url);
                assert_eq!(s, Some(status));
                assert!(reason.contains(reason_part), "{reason}");
            }
            other => panic!("expected Discovery, got {other:?}"),
        }
    }
}

#[test]
fn verify_with_cached_jwks() {
    let key = p256_key();
    let t = token(&key, "ES256", Some("e"), &claims());
    let v = verifier(&t);
    let set = json!({"keys": [key.jwk(Some("e"), None)]}).to_string();
    let c = v.verify_with_jwks(set.as_bytes(), NOW).unwrap();
    assert_eq!(c.sub(), "user-1");
    // No refetch here: an unknown kid is an error straight away.
    let other = json!({"keys": [key.jwk(Some("x"), None)]}).to_string();
    assert_eq!(
        v.verify_with_jwks(other.as_bytes(), NOW).unwrap_err(),
        Error::IdToken(IdTokenError::NoMatchingKey {
            kid: Some("e".into())
        })
    );
    assert!(matches!(
        v.verify_with_jwks(b"[]", NOW).unwrap_err(),
        Error::Parse(ParseError {
            document: Document::Jwk,
            ..
        })
    ));
}

#[test]
fn driver_misuse_and_abort() {
    let key = rsa_fixture();
    let t = token(&key, "RS256", None, &claims());
    let mut v = verifier(&t);
    assert!(matches!(
        v.handle_response(HttpResponse::new(200, "{}"), NOW),
        Err(Error::Misuse(_))
    ));
    let Action::Send(first) = v.poll(NOW).unwrap() else {
        panic!()
    };
    assert!(matches!(v.poll(NOW), Err(Error::Misuse(_))));
    // Transport failure: the same request is built again.
    v.abort();
    let Action::Send(again) = v.poll(NOW).unwrap() else {
        panic!()
    };
    assert_eq!(again.url, first.url);
    v.handle_response(openid_configuration(ISS), NOW).unwrap();
    let Action::Send(jwks_req) = v.poll(NOW).unwrap() else {
        panic!()
    };
    assert_eq!(jwks_req.url.as_str(), JWKS_URL);
    v.abort();
    assert_eq!(v.jwks_fetches(), 0, "an aborted request is not a fetch");
    let (result, urls) = drive(&mut v, [jwks(&[key.jwk(None, None)])], NOW);
    assert_eq!(urls, [JWKS_URL]);
    result.unwrap();
}

#[test]
fn errors_and_debug_never_contain_the_token() {
    let key = rsa_fixture();
    let mut c = claims();
    c["secret_marker"] = "s3cr3t-claim-value".into();
    let t = token(&key, "RS256", Some("k"), &c);
    let payload = t.secret().split('.').nth(1).unwrap().to_owned();
    let signature = t.secret().split('.').nth(2).unwrap().to_owned();
    let v = verifier(&t);
    let debug = format!("{v:?}");
    for needle in [payload.as_str(), signature.as_str(), "s3cr3t"] {
        assert!(!debug.contains(needle), "{debug}");
    }
    let errors = [
        verify_with(&t, &[rsa_generated().jwk(Some("k"), None)]).unwrap_err(),
        verify_with(&t, &[p256_key().jwk(Some("k"), None)]).unwrap_err(),
        verify_claims(&with(claims(), "aud", "nope".into())).unwrap_err(),
    ];
    for e in errors {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains(&payload) && !text.contains(&signature),
            "{text}"
        );
    }
    assert_eq!(
        Error::IdToken(IdTokenError::BadSignature).to_string(),
        "id_token verification failed: the signature is invalid"
    );
}

// ---------------------------------------------------------------------------------------------
// The id_token recorded from a real SMART server (RS256, no kid; JWKS with one RS256 key)
// ---------------------------------------------------------------------------------------------

fn recorded_body(text: &str) -> Value {
    let v: Value = serde_json::from_str(text).unwrap();
    v["body"].clone()
}

#[test]
fn oidc_04_real_server_rs256_id_token() {
    let token_body = recorded_body(include_str!("fixtures/real-server/ehr-token.json"));
    let config = include_str!("fixtures/real-server/openid-configuration.json");
    let keys = include_str!("fixtures/real-server/keys-jwks.json");
    let id_token = IdToken::new(token_body["id_token"].as_str().unwrap());
    let config_json: Value = serde_json::from_str(config).unwrap();
    let issuer = config_json["issuer"].as_str().unwrap();
    assert_eq!(issuer, "http://127.0.0.1:8445/v/r4/fhir");

    // The recording's exp (1796013686) has passed by now in real time: verify as of a moment
    // inside its validity (iat 1796010086 + 100 s).
    let at = UnixTime::from_secs(1_796_010_186);
    let mut v = IdTokenVerifier::new(&id_token, issuer, ClientId::new("my-ehr-app"))
        .unwrap()
        .with_nonce("lMGT5OdJfL4");
    assert_eq!(v.algorithm(), IdTokenAlgorithm::Rs256);
    assert_eq!(v.kid(), None);
    let (result, urls) = drive(
        &mut v,
        [HttpResponse::new(200, config), HttpResponse::new(200, keys)],
        at,
    );
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:8445/v/r4/fhir/.well-known/openid-configuration",
            "http://127.0.0.1:8445/keys"
        ]
    );
    let c = result.unwrap();
    assert_eq!(c.iss(), issuer);
    assert_eq!(
        c.sub(),
        "4badb8e90aa4cea19c22fbd84a4d58d64dfc718098b0878ddf8c8fe83e25a4e4"
    );
    assert_eq!(c.audiences(), ["my-ehr-app"]);
    assert_eq!(c.issued_at(), UnixTime::from_secs(1_796_010_086));
    assert_eq!(c.expires_at(), UnixTime::from_secs(1_796_013_686));
    assert_eq!(c.nonce(), Some("lMGT5OdJfL4"));
    let base = FhirBaseUrl::new("http://127.0.0.1:8445/v/r4/fhir").unwrap();
    assert_eq!(
        c.fhir_user().unwrap().url(&base).unwrap().as_str(),
        "http://127.0.0.1:8445/v/r4/fhir/Practitioner/stub-practitioner-1"
    );

    // The same token after its exp (+ skew) is expired; with another client_id it is not ours.
    let later = UnixTime::from_secs(1_796_013_686 + 61);
    let v = IdTokenVerifier::new(&id_token, issuer, ClientId::new("my-ehr-app")).unwrap();
    assert_eq!(
        v.verify_with_jwks(keys.as_bytes(), later).unwrap_err(),
        Error::IdToken(IdTokenError::Expired {
            exp: 1_796_013_686,
            now: 1_796_013_747
        })
    );
    let v = IdTokenVerifier::new(&id_token, issuer, ClientId::new("my-patient-app")).unwrap();
    assert_eq!(
        v.verify_with_jwks(keys.as_bytes(), at).unwrap_err(),
        Error::IdToken(IdTokenError::AudienceMismatch {
            client_id: "my-patient-app".into()
        })
    );
}

#[test]
fn real_server_standalone_tokens_fail_against_another_issuer_and_pass_their_own() {
    // The standalone recordings have the same key but a per-launch `iss` (the simulator URL).
    let keys = include_str!("fixtures/real-server/keys-jwks.json");
    let at = UnixTime::from_secs(1_796_010_186);
    for (file, client) in [
        (
            include_str!("fixtures/real-server/app-patient-standalone-token.json"),
            "my-patient-app",
        ),
        (
            include_str!("fixtures/real-server/app-provider-standalone-token.json"),
            "my-provider-app",
        ),
    ] {
        let id_token = IdToken::new(recorded_body(file)["id_token"].as_str().unwrap());
        let own = IdTokenVerifier::trusting_token_issuer(&id_token, ClientId::new(client)).unwrap();
        let c = own.verify_with_jwks(keys.as_bytes(), at).unwrap();
        assert!(c.iss().starts_with("http://127.0.0.1:8445/v/r4/sim/"));
        // B06 in reverse: the EHR launch's issuer is not these tokens' issuer.
        let v = IdTokenVerifier::new(
            &id_token,
            "http://127.0.0.1:8445/v/r4/fhir",
            ClientId::new(client),
        )
        .unwrap();
        assert!(matches!(
            v.verify_with_jwks(keys.as_bytes(), at).unwrap_err(),
            Error::IdToken(IdTokenError::IssuerMismatch { .. })
        ));
    }
}
