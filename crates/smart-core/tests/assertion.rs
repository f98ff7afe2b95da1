//! `client_assertion` JWTs: the IG's signed examples (vectors.md §2, §6.8) and cases B20, B22,
//! B24. Signatures are checked with `ring`, an implementation independent of the RustCrypto
//! code that produced them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    ECDSA_P384_SHA384_FIXED, RSA_PKCS1_2048_8192_SHA384, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde_json::{Value, json};
use smart_core::assertion::{
    AssertionClaims, AssertionSigner, CLIENT_ASSERTION_TYPE, DEFAULT_ASSERTION_LIFETIME_SECS,
    JwsAlgorithm, MAX_ASSERTION_LIFETIME_SECS, client_assertion, sign_compact,
};
use smart_core::entropy::{DeterministicEntropy, Entropy};
use smart_core::jwk::SigningKey;
use smart_core::{Error, UnixTime};

const IG_ES384_PRIVATE: &str = include_str!("fixtures/ig/ES384.private.json");
const IG_ES384_PUBLIC: &str = include_str!("fixtures/ig/ES384.public.json");
const IG_RS384_PRIVATE: &str = include_str!("fixtures/ig/RS384.private.json");
const IG_RS384_PUBLIC: &str = include_str!("fixtures/ig/RS384.public.json");
const EC_P384_PEM: &str = include_str!("fixtures/keys/ec-p384-pkcs8.pem");
const RSA_2048_PEM: &str = include_str!("fixtures/keys/rsa-2048-pkcs8.pem");

/// Public members of the fixture keys as computed by OpenSSL + Python (not by this crate).
const EC_P384_X: &str = "nvTpmIUsD7T1VwWFChMtc2ThE2jF13p07CKzz7hq7GI3Qs2HOuqSEXbQbxPFaUsP";
const EC_P384_Y: &str = "-V3Jqbi8axllPsvYm1kQRhl7IXwbnmIXr842ehPx5W3I8yj4XKAEUfdokX4uoM08";
const RSA_2048_N: &str = "oVeluNTWfADY_QvqbFBhVIa08CaqdmV1aQNC2K3Pquk22NaB5KmnzZsSKkHSyNiApqdGMxbVE621lbZSiGkNl_RKVYgFNdK28HyEOg7xE7tiHjvaiAH0WM7zXxm8vp9bJVhUD_wa2e38WBBIXoDEwdsu-JELgl0T46cEo2vLU9Gdzqn8r2u2EubJIGdPMj4201SFMJ_066irNhIZ-zAJKPlvvPfCWKohMDdVJgvnHKuoTXmjxRZB4Ps1WoATTpxgSx_BXpNMdp9jmqdd90EMBD4Lrng8Q9YppfvcfgIDHhqYOMGfQ0bUuSZp1ZrwDz5d_2htQtLYh3umYUfkmqfZpw";

/// vectors.md §2: the bilirubin-monitor assertion, RS384.
const IG_RS384_ASSERTION: &str = "eyJhbGciOiJSUzM4NCIsImtpZCI6ImVlZTlmMTdhM2I1OThmZDg2NDE3YTk4MGI1OTFmYmU2IiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2JpbGktbW9uaXRvci5leGFtcGxlLmNvbSIsInN1YiI6Imh0dHBzOi8vYmlsaS1tb25pdG9yLmV4YW1wbGUuY29tIiwiYXVkIjoiaHR0cHM6Ly9hdXRob3JpemUuc21hcnRoZWFsdGhpdC5vcmcvdG9rZW4iLCJleHAiOjE0MjI1Njg4NjAsImp0aSI6InJhbmRvbS1ub24tcmV1c2FibGUtand0LWlkLTEyMyJ9.D5kAqNJwaftCqsRdVVQDq6dMBxuGFOF5svQJuXbcYp-oEyg5qOwK9ZE5cGLTHxqwfpUPNzRKgVdIGuhawAA-8g0s1nKQae8CuKs33hhKh4J34xSEwW3MYs1gwI4GHTtR_g3kYSX6QCi14Ed3GIAvYFgqRqt-gD7sewMUXL4SB8I8cXcDbCqVizm7uPVhjw6QaeKZygJJ_AVLhM4Xs9LTy4HAhdCHpN0FrNmCerUIYJvHDpcod7A0jDmxdoeW1KIBYlhdhQNwjtsTvT1ce4qacN_3KIv_fIzCKLIgDv9eWxkjAtxOmIm8aW5gX9xX7X0nbd0QglIyiic_bZVNNEh0kg";
/// vectors.md §2: the same claims, ES384.
const IG_ES384_ASSERTION: &str = "eyJhbGciOiJFUzM4NCIsImtpZCI6ImNkNTIwMjExZTU2NjFkYmJhMjI1NmY2N2Y2ZDUzZjk3IiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2JpbGktbW9uaXRvci5leGFtcGxlLmNvbSIsInN1YiI6Imh0dHBzOi8vYmlsaS1tb25pdG9yLmV4YW1wbGUuY29tIiwiYXVkIjoiaHR0cHM6Ly9hdXRob3JpemUuc21hcnRoZWFsdGhpdC5vcmcvdG9rZW4iLCJleHAiOjE0MjI1Njg4NjAsImp0aSI6InJhbmRvbS1ub24tcmV1c2FibGUtand0LWlkLTEyMyJ9.ddl5N8dt5PYI_7syKg_dm1wj1LR3dYVztFlTODs6pU1vKH1Zv3d9NctbnAsZ4aZ1K7HE83_fA_hIAL0JsU1GoB7roLmrpj8zfygG9Q1ZBAmKNoR60pyONPZsGTihoR29";
/// Exact header and payload bytes of both §2 examples.
const IG_RS384_HEADER: &str =
    r#"{"alg":"RS384","kid":"eee9f17a3b598fd86417a980b591fbe6","typ":"JWT"}"#;
const IG_PAYLOAD: &str = r#"{"iss":"https://bili-monitor.example.com","sub":"https://bili-monitor.example.com","aud":"https://authorize.smarthealthit.org/token","exp":1422568860,"jti":"random-non-reusable-jwt-id-123"}"#;

/// vectors.md §6.8: the argo simulator's registered ES384 key. As published the JWK has a
/// trailing comma (invalid JSON); it is repaired here. `d` is printed separately on the page.
const ARGO_JWK: &str = r#"{
  "kty": "EC",
  "crv": "P-384",
  "x": "wcE8O55ro6aOuTf5Ty1k_IG4mTcuLiVercHouge1G5Ri-leevhev4uJzlHpi3U8r",
  "y": "mLRgz8Giu6XA_AqG8bywqbygShmd8jowflrdx0KQtM5X4s4aqDeCRfcpexykp3aI",
  "d": "WcrTiYk8jbI-Sd1sKNpqGmELWGG08bf_y9SSlnC4cpAl5GRdHHN9gKYlPvMFqiJ5",
  "kid": "afb27c284f2d93959c18fa0320e32060",
  "alg": "ES384"
}"#;
const ARGO_ASSERTIONS: [&str; 2] = [
    "eyJ0eXAiOiJKV1QiLCJraWQiOiJhZmIyN2MyODRmMmQ5Mzk1OWMxOGZhMDMyMGUzMjA2MCIsImFsZyI6IkVTMzg0In0.eyJpc3MiOiJkZW1vX2FwcF93aGF0ZXZlciIsInN1YiI6ImRlbW9fYXBwX3doYXRldmVyIiwiYXVkIjoiaHR0cHM6Ly9zbWFydC5hcmdvLnJ1bi92L3I0L3NpbS9leUp0SWpvaU1TSXNJbXNpT2lJeElpd2lhU0k2SWpFaUxDSnFJam9pTVNJc0ltSWlPaUk0TjJFek16bGtNQzA0WTJGbExUUXhPR1V0T0Rsak55MDROalV4WlRaaFlXSXpZellpZlEvYXV0aC90b2tlbiIsImp0aSI6ImQ4MDJiZDcyY2ZlYTA2MzVhM2EyN2IwODE3YjgxZTQxZTBmNzQzMzE4MTg4OTM4YjAxMmMyMDM2NmJkZmU4YTEiLCJleHAiOjE2MzM1MzIxMzR9.eHUtXmppOLIMAfBM4mFpcgJ90bDNYWQpkm7--yRS2LY5HoXwr3FpqHMTrjhK60r5kgYGFg6v9IQaUFKFpn1N2Eyty62JWxvGXRlgEDbdX9wAAr8TeWnsAT_2orfpn6wz",
    "eyJ0eXAiOiJKV1QiLCJraWQiOiJhZmIyN2MyODRmMmQ5Mzk1OWMxOGZhMDMyMGUzMjA2MCIsImFsZyI6IkVTMzg0In0.eyJpc3MiOiJkZW1vX2FwcF93aGF0ZXZlciIsInN1YiI6ImRlbW9fYXBwX3doYXRldmVyIiwiYXVkIjoiaHR0cHM6Ly9zbWFydC5hcmdvLnJ1bi92L3I0L3NpbS9leUp0SWpvaU1TSXNJbXNpT2lJeElpd2lhU0k2SWpFaUxDSnFJam9pTVNJc0ltSWlPaUk0TjJFek16bGtNQzA0WTJGbExUUXhPR1V0T0Rsak55MDROalV4WlRaaFlXSXpZellpZlEvYXV0aC90b2tlbiIsImp0aSI6IjJmZjBhNzlmNzVkN2FiZmVhMDdkYTg2ZWZkOGQ2NWM5NGVmY2M5YzQ2MDNiNmExZGQwODMwOGExYjEyMWVmZTAiLCJleHAiOjE2MzM1MzM3NzV9.MGw_W9EMJ1dYjmXZ6piel5-mHMusBUtZ6E5aLAZeXJXG-3PF5Ruqpq90NKXM4JP2R9t0AhCna2gGTX2XFGZT0HtxUXt08xprcWbRzz4EIu2sZsXspVf8Y5JDqtwQh3MU",
];

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);
const TOKEN_URL: &str = "https://ehr.example.org/oauth2/token";

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

/// A decoded compact JWS: header JSON text, claims JSON text, signature, signing input.
struct Jws {
    header: String,
    claims: String,
    signature: Vec<u8>,
    signing_input: String,
}

impl Jws {
    fn parse(jws: &str) -> Self {
        let parts: Vec<&str> = jws.split('.').collect();
        assert_eq!(parts.len(), 3, "compact JWS has three parts");
        for p in &parts {
            assert!(!p.contains('='), "base64url without padding");
        }
        Self {
            header: String::from_utf8(b64(parts[0])).unwrap(),
            claims: String::from_utf8(b64(parts[1])).unwrap(),
            signature: b64(parts[2]),
            signing_input: format!("{}.{}", parts[0], parts[1]),
        }
    }
    fn header_json(&self) -> Value {
        serde_json::from_str(&self.header).unwrap()
    }
    fn claims_json(&self) -> Value {
        serde_json::from_str(&self.claims).unwrap()
    }
}

/// Verify an ES384 JWS with ring, given the public key's JWK `x`/`y`.
fn ring_verify_es384(jws: &Jws, x: &str, y: &str) -> bool {
    let mut point = vec![0x04];
    point.extend(b64(x));
    point.extend(b64(y));
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, point)
        .verify(jws.signing_input.as_bytes(), &jws.signature)
        .is_ok()
}

/// Verify an RS384 JWS with ring, given the public key's JWK `n`/`e`.
fn ring_verify_rs384(jws: &Jws, n: &str, e: &str) -> bool {
    RsaPublicKeyComponents {
        n: b64(n),
        e: b64(e),
    }
    .verify(
        &RSA_PKCS1_2048_8192_SHA384,
        jws.signing_input.as_bytes(),
        &jws.signature,
    )
    .is_ok()
}

fn ig_public(text: &str) -> Value {
    let v: Value = serde_json::from_str(text).unwrap();
    v["keys"][0].clone()
}

fn member<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("member {name}"))
}

#[test]
fn ig_private_jwks_yield_ig_kids() {
    let es = SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap();
    assert_eq!(es.kid(), "cd520211e5661dbba2256f67f6d53f97");
    assert_eq!(es.algorithm(), JwsAlgorithm::Es384);
    let rs = SigningKey::from_jwk(IG_RS384_PRIVATE).unwrap();
    assert_eq!(rs.kid(), "eee9f17a3b598fd86417a980b591fbe6");
    assert_eq!(rs.algorithm(), JwsAlgorithm::Rs384);
}

#[test]
fn ig_rs384_sample_assertion_reproduced_byte_for_byte() {
    // ASYM-05/ASYM-08, vectors.md §2: RS384 (PKCS#1 v1.5) is deterministic, so re-signing the
    // exact header/payload bytes with RS384.private.json must give the IG's token exactly.
    let key = SigningKey::from_jwk(IG_RS384_PRIVATE).unwrap();
    let jws = sign_compact(
        &key,
        IG_RS384_HEADER.as_bytes(),
        IG_PAYLOAD.as_bytes(),
        &DeterministicEntropy::new(9),
    )
    .unwrap();
    assert_eq!(jws, IG_RS384_ASSERTION);
    let parsed = Jws::parse(&jws);
    assert_eq!(parsed.signature.len(), 256);
    let public = ig_public(IG_RS384_PUBLIC);
    assert!(ring_verify_rs384(
        &parsed,
        member(&public, "n"),
        member(&public, "e")
    ));
}

#[test]
fn ig_es384_sample_assertion_verifies_with_ig_public_key() {
    // vectors.md §2: ECDSA output cannot be reproduced, so the IG token is a verification
    // vector; ring checks it with ES384.public.json, and rejects a tampered payload.
    let parsed = Jws::parse(IG_ES384_ASSERTION);
    assert_eq!(
        parsed.header,
        r#"{"alg":"ES384","kid":"cd520211e5661dbba2256f67f6d53f97","typ":"JWT"}"#
    );
    assert_eq!(parsed.claims, IG_PAYLOAD);
    assert_eq!(parsed.signature.len(), 96);
    let public = ig_public(IG_ES384_PUBLIC);
    let (x, y) = (member(&public, "x"), member(&public, "y"));
    assert!(ring_verify_es384(&parsed, x, y));
    let tampered = Jws {
        signing_input: parsed.signing_input.replace('J', "K"),
        ..parsed
    };
    assert!(
        !ring_verify_es384(&tampered, x, y),
        "the verifier is not vacuous"
    );
}

#[test]
fn ig_es384_key_signs_what_the_ig_public_key_verifies() {
    // Our signature over the IG's header/payload, checked against the IG's *public* file.
    let key = SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap();
    let header = r#"{"alg":"ES384","kid":"cd520211e5661dbba2256f67f6d53f97","typ":"JWT"}"#;
    let jws = sign_compact(
        &key,
        header.as_bytes(),
        IG_PAYLOAD.as_bytes(),
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    let parsed = Jws::parse(&jws);
    assert_eq!(parsed.signature.len(), 96);
    let public = ig_public(IG_ES384_PUBLIC);
    assert!(ring_verify_es384(
        &parsed,
        member(&public, "x"),
        member(&public, "y")
    ));
    let again = sign_compact(
        &key,
        header.as_bytes(),
        IG_PAYLOAD.as_bytes(),
        &DeterministicEntropy::new(5),
    )
    .unwrap();
    if cfg!(feature = "aws-lc-rs") {
        // AWS-LC draws a fresh nonce: a different signature that verifies just the same.
        assert_ne!(jws, again);
        assert!(ring_verify_es384(
            &Jws::parse(&again),
            member(&public, "x"),
            member(&public, "y")
        ));
    } else {
        // RFC 6979: deterministic, so signing twice gives the same token.
        assert_eq!(jws, again);
    }
}

#[test]
fn argo_example_assertions_verify_and_key_loads() {
    // vectors.md §6.8/§7: header order `typ,kid,alg` differs from §2; verifiers must not care.
    let key = SigningKey::from_jwk(ARGO_JWK).unwrap();
    assert_eq!(key.kid(), "afb27c284f2d93959c18fa0320e32060");
    let jwk = key.public_jwk();
    let (x, y) = (member(&jwk, "x"), member(&jwk, "y"));
    assert_eq!(
        x,
        "wcE8O55ro6aOuTf5Ty1k_IG4mTcuLiVercHouge1G5Ri-leevhev4uJzlHpi3U8r"
    );
    assert_eq!(
        y,
        "mLRgz8Giu6XA_AqG8bywqbygShmd8jowflrdx0KQtM5X4s4aqDeCRfcpexykp3aI"
    );
    for a in ARGO_ASSERTIONS {
        let parsed = Jws::parse(a);
        assert_eq!(
            parsed.header_json()["kid"],
            "afb27c284f2d93959c18fa0320e32060"
        );
        assert!(ring_verify_es384(&parsed, x, y));
    }
}

#[test]
fn b20_claims_and_header_exact() {
    // B20 / ASYM-09 / ASYM-10: RSA 2048, kid "k1", RS384, now 1700000000.
    let key = SigningKey::from_pem(RSA_2048_PEM)
        .unwrap()
        .with_kid("k1")
        .unwrap();
    let claims = AssertionClaims::new("c-123", TOKEN_URL);
    assert_eq!(claims.lifetime_secs, DEFAULT_ASSERTION_LIFETIME_SECS);
    let jwt = client_assertion(&key, &claims, NOW, &DeterministicEntropy::new(0)).unwrap();
    let parsed = Jws::parse(jwt.secret());
    assert_eq!(parsed.header, r#"{"alg":"RS384","kid":"k1","typ":"JWT"}"#);
    let c = parsed.claims_json();
    assert_eq!(c["iss"], "c-123");
    assert_eq!(c["sub"], "c-123");
    // `aud` is one JSON string, byte-identical to the token URL (not the FHIR base or issuer).
    assert_eq!(c["aud"], json!(TOKEN_URL));
    assert_eq!(c["exp"], json!(1_700_000_240u64));
    // B23: backdated a minute for servers whose clock runs behind.
    assert_eq!(c["iat"], json!(1_699_999_940u64));
    assert!(c["exp"].as_u64().unwrap() - NOW.as_secs() <= MAX_ASSERTION_LIFETIME_SECS);
    // DeterministicEntropy(0) yields bytes 0,1,…,31 for the jti.
    assert_eq!(c["jti"], "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["aud", "exp", "iat", "iss", "jti", "sub"]);
    assert_eq!(parsed.signature.len(), 256);
    assert!(ring_verify_rs384(&parsed, RSA_2048_N, "AQAB"));
}

#[test]
fn b20_lifetime_limits() {
    let key = SigningKey::from_pem(EC_P384_PEM)
        .unwrap()
        .with_kid("ec1")
        .unwrap();
    let e = DeterministicEntropy::new(0);
    let at = |secs| AssertionClaims {
        lifetime_secs: secs,
        ..AssertionClaims::new("c-123", TOKEN_URL)
    };
    let err = client_assertion(&key, &at(301), NOW, &e).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("301")),
        "{err}"
    );
    assert!(matches!(
        client_assertion(&key, &at(0), NOW, &e),
        Err(Error::Config(_))
    ));
    for ok in [1, 60, 300] {
        let jwt = client_assertion(&key, &at(ok), NOW, &e).unwrap();
        let c = Jws::parse(jwt.secret()).claims_json();
        assert_eq!(c["exp"].as_u64().unwrap(), NOW.as_secs() + ok);
    }
}

/// Case B23's strict verifier at server clock `s`: reject if `nbf > s`, `iat > s`, `exp <= s`,
/// or `exp > s + 300`.
fn strict_verifier(claims: &Value, s: u64) -> Result<(), String> {
    let time = |name: &str| {
        claims
            .get(name)
            .map(|v| v.as_u64().expect("integer seconds"))
    };
    let exp = time("exp").ok_or("no exp")?;
    if time("nbf").is_some_and(|nbf| nbf > s) {
        return Err(format!("nbf in the future at {s}"));
    }
    if time("iat").is_some_and(|iat| iat > s) {
        return Err(format!("iat in the future at {s}"));
    }
    if exp <= s {
        return Err(format!("expired at {s}"));
    }
    if exp > s + 300 {
        return Err(format!("exp more than five minutes ahead at {s}"));
    }
    Ok(())
}

#[test]
fn b23_assertion_accepted_by_strict_servers_a_minute_behind_or_ahead() {
    const T: u64 = 1_700_000_000;
    // The verifier is not vacuous: `iat = now` (the old behaviour) fails a server a minute
    // behind, and so does `exp = now + 300`.
    assert!(strict_verifier(&json!({"iat": T, "exp": T + 240}), T - 60).is_err());
    assert!(strict_verifier(&json!({"iat": T - 60, "exp": T + 300}), T - 60).is_err());
    assert!(strict_verifier(&json!({"nbf": T, "iat": T - 60, "exp": T + 240}), T - 60).is_err());
    let es = SigningKey::from_pem(EC_P384_PEM).unwrap();
    let rs = SigningKey::from_pem(RSA_2048_PEM).unwrap();
    for key in [&es, &rs] {
        let jwt = client_assertion(
            key,
            &AssertionClaims::new("c-123", TOKEN_URL),
            UnixTime::from_secs(T),
            &DeterministicEntropy::new(3),
        )
        .unwrap();
        let parsed = Jws::parse(jwt.secret());
        let c = parsed.claims_json();
        assert_eq!(c["iat"], json!(T - 60), "{}", key.algorithm());
        assert_eq!(c["exp"], json!(T + 240), "{}", key.algorithm());
        assert!(c.get("nbf").is_none(), "no nbf");
        for server in [T - 60, T, T + 60] {
            strict_verifier(&c, server)
                .unwrap_or_else(|e| panic!("{} at server clock {server}: {e}", key.algorithm()));
        }
        let jwk = key.public_jwk();
        let verified = match key.algorithm() {
            JwsAlgorithm::Es384 => ring_verify_es384(&parsed, member(&jwk, "x"), member(&jwk, "y")),
            _ => ring_verify_rs384(&parsed, member(&jwk, "n"), member(&jwk, "e")),
        };
        assert!(verified, "{}", key.algorithm());
    }
}

#[test]
fn b23_longer_lifetimes_backdate_less_so_exp_minus_iat_stays_within_300() {
    const T: u64 = 1_700_000_000;
    let key = SigningKey::from_pem(EC_P384_PEM).unwrap();
    // (lifetime, expected iat, furthest server lag still accepted)
    for (lifetime, iat, lag) in [
        (1, T - 60, 60),
        (60, T - 60, 60),
        (240, T - 60, 60),
        (250, T - 50, 50),
        (299, T - 1, 1),
        (300, T, 0),
    ] {
        let claims = AssertionClaims {
            lifetime_secs: lifetime,
            ..AssertionClaims::new("c-123", TOKEN_URL)
        };
        let jwt = client_assertion(
            &key,
            &claims,
            UnixTime::from_secs(T),
            &DeterministicEntropy::new(0),
        )
        .unwrap();
        let c = Jws::parse(jwt.secret()).claims_json();
        assert_eq!(c["iat"], json!(iat), "lifetime {lifetime}");
        assert_eq!(c["exp"], json!(T + lifetime), "lifetime {lifetime}");
        assert!(T + lifetime - iat <= MAX_ASSERTION_LIFETIME_SECS);
        strict_verifier(&c, T - lag).unwrap_or_else(|e| panic!("lifetime {lifetime}: {e}"));
        assert!(
            strict_verifier(&c, T - lag - 1).is_err(),
            "lifetime {lifetime}: a server {} s behind",
            lag + 1
        );
        // A server ahead by less than the lifetime still accepts it.
        strict_verifier(&c, T + lifetime - 1).unwrap();
    }
    // Near the epoch `iat` saturates at 0 instead of wrapping.
    let jwt = client_assertion(
        &key,
        &AssertionClaims::new("c-123", TOKEN_URL),
        UnixTime::from_secs(10),
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    assert_eq!(Jws::parse(jwt.secret()).claims_json()["iat"], json!(0));
}

#[test]
fn jku_only_when_configured() {
    // ASYM-09: `jku` is optional and, when set, is the registered JWKS URL.
    let key = SigningKey::from_pem(EC_P384_PEM)
        .unwrap()
        .with_kid("ec1")
        .unwrap();
    let e = DeterministicEntropy::new(0);
    let plain = client_assertion(&key, &AssertionClaims::new("c-123", TOKEN_URL), NOW, &e).unwrap();
    assert!(
        Jws::parse(plain.secret())
            .header_json()
            .get("jku")
            .is_none()
    );
    let claims = AssertionClaims {
        jku: Some("https://app.example.org/.well-known/jwks.json"),
        ..AssertionClaims::new("c-123", TOKEN_URL)
    };
    let with = client_assertion(&key, &claims, NOW, &e).unwrap();
    assert_eq!(
        Jws::parse(with.secret()).header,
        r#"{"alg":"ES384","kid":"ec1","typ":"JWT","jku":"https://app.example.org/.well-known/jwks.json"}"#
    );
}

#[test]
fn b22_es384_signature_is_96_bytes_raw_and_verifies_independently() {
    // B22: raw R||S (not DER), checked by ring against the public point OpenSSL derived.
    let key = SigningKey::from_pem(EC_P384_PEM)
        .unwrap()
        .with_kid("ec1")
        .unwrap();
    let jwt = client_assertion(
        &key,
        &AssertionClaims::new("c-123", TOKEN_URL),
        NOW,
        &DeterministicEntropy::new(1),
    )
    .unwrap();
    let parsed = Jws::parse(jwt.secret());
    assert_eq!(parsed.header, r#"{"alg":"ES384","kid":"ec1","typ":"JWT"}"#);
    assert_eq!(parsed.signature.len(), 96);
    assert_ne!(parsed.signature[0], 0x30, "not a DER SEQUENCE");
    assert!(ring_verify_es384(&parsed, EC_P384_X, EC_P384_Y));
    // And with the members our own JWK export publishes (the registration path).
    let jwk = key.public_jwk();
    assert!(ring_verify_es384(
        &parsed,
        member(&jwk, "x"),
        member(&jwk, "y")
    ));
}

#[test]
fn b22_rs384_signature_is_256_bytes_and_verifies_independently() {
    let key = SigningKey::from_pem(RSA_2048_PEM)
        .unwrap()
        .with_kid("k1")
        .unwrap();
    let jwt = client_assertion(
        &key,
        &AssertionClaims::new("c-123", TOKEN_URL),
        NOW,
        &DeterministicEntropy::new(1),
    )
    .unwrap();
    let parsed = Jws::parse(jwt.secret());
    assert_eq!(parsed.signature.len(), 256);
    assert!(ring_verify_rs384(&parsed, RSA_2048_N, "AQAB"));
    let jwk = key.public_jwk();
    assert!(ring_verify_rs384(
        &parsed,
        member(&jwk, "n"),
        member(&jwk, "e")
    ));
}

#[test]
fn generated_keys_sign_verifiable_assertions() {
    // ASYM-01/ASYM-05: both algorithms, from freshly generated keys, verified by ring with the
    // exported public JWK.
    let e = DeterministicEntropy::new(42);
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let key = SigningKey::generate(alg, None, &e).unwrap();
        let jwt =
            client_assertion(&key, &AssertionClaims::new("c-123", TOKEN_URL), NOW, &e).unwrap();
        let parsed = Jws::parse(jwt.secret());
        assert_eq!(parsed.header_json()["alg"], alg.as_str());
        assert_eq!(parsed.header_json()["kid"], key.thumbprint());
        let jwk = key.public_jwk();
        let ok = match alg {
            JwsAlgorithm::Es384 => ring_verify_es384(&parsed, member(&jwk, "x"), member(&jwk, "y")),
            _ => ring_verify_rs384(&parsed, member(&jwk, "n"), member(&jwk, "e")),
        };
        assert!(ok, "{alg}");
    }
}

#[test]
fn b24_every_assertion_has_a_fresh_random_jti() {
    // B24: three attempts → three different assertions and jtis; each jti carries ≥ 128 bits.
    let key = SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap();
    let claims = AssertionClaims::new("c-123", TOKEN_URL);
    #[cfg(feature = "getrandom")]
    let entropy: &dyn Entropy = &smart_core::entropy::SystemEntropy;
    #[cfg(not(feature = "getrandom"))]
    let entropy: &dyn Entropy = &DeterministicEntropy::new(77);
    let jwts: Vec<String> = (0..3)
        .map(|_| {
            client_assertion(&key, &claims, NOW, entropy)
                .unwrap()
                .into_secret()
        })
        .collect();
    let jtis: Vec<String> = jwts
        .iter()
        .map(|j| {
            Jws::parse(j).claims_json()["jti"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for (i, jti) in jtis.iter().enumerate() {
        assert!(b64(jti).len() * 8 >= 128, "jti {jti} is too short");
        for other in &jtis[i + 1..] {
            assert_ne!(jti, other);
        }
        for other in &jwts[i + 1..] {
            assert_ne!(&jwts[i], other);
        }
    }
}

#[test]
fn assertion_debug_is_redacted() {
    let key = SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap();
    let jwt = client_assertion(
        &key,
        &AssertionClaims::new("c-123", TOKEN_URL),
        NOW,
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    assert_eq!(format!("{jwt:?}"), "ClientAssertion([redacted])");
    assert_eq!(
        CLIENT_ASSERTION_TYPE,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
}

/// A KMS-style plug-in signer: any `AssertionSigner` works with `client_assertion`.
#[derive(Debug)]
struct Remote(SigningKey);
impl AssertionSigner for Remote {
    fn algorithm(&self) -> JwsAlgorithm {
        self.0.algorithm()
    }
    fn key_id(&self) -> &str {
        "kms-key-1"
    }
    fn sign(&self, input: &[u8], entropy: &dyn Entropy) -> Result<Vec<u8>, Error> {
        self.0.sign(input, entropy)
    }
}

#[test]
fn custom_signer_plugs_in() {
    let signer = Remote(SigningKey::from_pem(EC_P384_PEM).unwrap());
    let jwt = client_assertion(
        &signer,
        &AssertionClaims::new("c-123", TOKEN_URL),
        NOW,
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    let parsed = Jws::parse(jwt.secret());
    assert_eq!(parsed.header_json()["kid"], "kms-key-1");
    assert!(ring_verify_es384(&parsed, EC_P384_X, EC_P384_Y));
}
