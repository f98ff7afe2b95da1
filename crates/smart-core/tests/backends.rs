//! What each Cargo feature combination of the crypto backends does: `rsa` (pure-Rust RSA, on
//! by default) and `aws-lc-rs` (AWS-LC). The rest of the suite runs unchanged with the default
//! features and with `--no-default-features --features aws-lc-rs,getrandom`; the tests here
//! pin what differs, including the build with no RSA backend at all, where RSA keys must be a
//! typed error naming the feature to enable (run: `cargo test -p smart-core
//! --no-default-features --test backends`).

#![allow(missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use smart_core::assertion::{JwsAlgorithm, sign_compact};
use smart_core::entropy::DeterministicEntropy;
use smart_core::jwk::SigningKey;

#[cfg(not(feature = "rsa"))]
const RSA_2048_PKCS8: &str = include_str!("fixtures/keys/rsa-2048-pkcs8.pem");
#[cfg(not(feature = "rsa"))]
const RSA_2048_PKCS1: &str = include_str!("fixtures/keys/rsa-2048-pkcs1.pem");
const EC_P384_PKCS8: &str = include_str!("fixtures/keys/ec-p384-pkcs8.pem");
const IG_RS384_PRIVATE: &str = include_str!("fixtures/ig/RS384.private.json");

#[cfg(not(feature = "rsa"))]
fn key_error(result: Result<SigningKey, smart_core::Error>) -> String {
    match result {
        Err(smart_core::Error::Key(k)) => k.message,
        other => panic!("expected Error::Key, got {other:?}"),
    }
}

/// The IG's RS384 private entry with the listed members removed.
fn ig_rsa_without(members: &[&str]) -> String {
    let mut entry: Value =
        serde_json::from_str::<Value>(IG_RS384_PRIVATE).unwrap()["keys"][1].clone();
    for m in members {
        entry.as_object_mut().unwrap().remove(*m);
    }
    entry.to_string()
}

#[test]
fn es384_works_under_every_backend() {
    let key = SigningKey::from_pem(EC_P384_PKCS8).unwrap();
    let jws = sign_compact(&key, b"{}", b"{}", &DeterministicEntropy::new(0)).unwrap();
    let sig = URL_SAFE_NO_PAD
        .decode(jws.rsplit('.').next().unwrap())
        .unwrap();
    assert_eq!(sig.len(), 96);
    let generated =
        SigningKey::generate(JwsAlgorithm::Es384, None, &DeterministicEntropy::new(1)).unwrap();
    // P-384 generation draws from the injected entropy under every backend.
    let again =
        SigningKey::generate(JwsAlgorithm::Es384, None, &DeterministicEntropy::new(1)).unwrap();
    assert_eq!(generated.thumbprint(), again.thumbprint());
}

#[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
mod no_rsa_backend {
    use super::*;
    use serde_json::json;
    use smart_core::error::IdTokenError;
    use smart_core::id_token::IdTokenVerifier;
    use smart_core::secret::IdToken;
    use smart_core::{ClientId, UnixTime};

    const NEEDLE: &str = "enable the `rsa` or `aws-lc-rs` feature";

    #[test]
    fn rsa_keys_are_typed_errors_naming_the_features() {
        for (what, result) in [
            ("PKCS#8", SigningKey::from_pem(RSA_2048_PKCS8)),
            ("PKCS#1", SigningKey::from_pem(RSA_2048_PKCS1)),
            ("JWK", SigningKey::from_jwk(IG_RS384_PRIVATE)),
            (
                "generate",
                SigningKey::generate(JwsAlgorithm::Rs384, None, &DeterministicEntropy::new(1)),
            ),
        ] {
            let message = key_error(result);
            assert!(message.contains(NEEDLE), "{what}: {message}");
        }
        // Problems with the key itself are still reported as such, before the backend.
        let message = key_error(SigningKey::from_pem(include_str!(
            "fixtures/keys/rsa-1024-pkcs8.pem"
        )));
        assert!(message.contains("1024 bits"), "{message}");
        // A JWK without its CRT members would need the `rsa` crate's arithmetic.
        let message = key_error(SigningKey::from_jwk(&ig_rsa_without(&[
            "p", "q", "dp", "dq", "qi",
        ])));
        assert!(message.contains("`rsa` feature"), "{message}");
    }

    #[test]
    fn rs256_id_token_is_a_key_mismatch_naming_the_features() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let token = IdToken::new(format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","kid":"k1"}"#),
            b64(
                r#"{"iss":"https://auth.example.org","sub":"u","aud":"app","exp":1700000300,"iat":1700000000}"#
            ),
            b64("signature")
        ));
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "e": "AQAB",
            "n": "oVeluNTWfADY_QvqbFBhVIa08CaqdmV1aQNC2K3Pquk22NaB5KmnzZsSKkHSyNiApqdGMxbVE621lbZSiGkNl_RKVYgFNdK28HyEOg7xE7tiHjvaiAH0WM7zXxm8vp9bJVhUD_wa2e38WBBIXoDEwdsu-JELgl0T46cEo2vLU9Gdzqn8r2u2EubJIGdPMj4201SFMJ_066irNhIZ-zAJKPlvvPfCWKohMDdVJgvnHKuoTXmjxRZB4Ps1WoATTpxgSx_BXpNMdp9jmqdd90EMBD4Lrng8Q9YppfvcfgIDHhqYOMGfQ0bUuSZp1ZrwDz5d_2htQtLYh3umYUfkmqfZpw"}]});
        let verifier =
            IdTokenVerifier::new(&token, "https://auth.example.org", ClientId::new("app")).unwrap();
        let err = verifier
            .verify_with_jwks(
                jwks.to_string().as_bytes(),
                UnixTime::from_secs(1_700_000_000),
            )
            .unwrap_err();
        match err {
            smart_core::Error::IdToken(IdTokenError::KeyMismatch { reason, .. }) => {
                assert!(reason.contains(NEEDLE), "{reason}");
            }
            other => panic!("expected KeyMismatch, got {other:?}"),
        }
    }
}

#[cfg(all(feature = "aws-lc-rs", not(feature = "rsa")))]
mod aws_lc_without_rsa {
    use super::*;

    #[test]
    fn rsa_keys_load_in_every_format_without_the_rsa_crate() {
        let pkcs8 = SigningKey::from_pem(RSA_2048_PKCS8).unwrap();
        let pkcs1 = SigningKey::from_pem(RSA_2048_PKCS1).unwrap();
        let jwk = SigningKey::from_jwk(IG_RS384_PRIVATE).unwrap();
        assert_eq!(pkcs8.thumbprint(), pkcs1.thumbprint());
        assert_eq!(jwk.kid(), "eee9f17a3b598fd86417a980b591fbe6");
        // Round trip through AWS-LC's PKCS#8 export.
        let back = SigningKey::from_pem(pkcs1.to_pkcs8_pem().unwrap().secret()).unwrap();
        assert_eq!(back.thumbprint(), pkcs1.thumbprint());
    }

    #[test]
    fn jwk_without_crt_members_names_the_rsa_feature() {
        for missing in [
            &["p", "q", "dp", "dq", "qi"][..],
            &["dp", "dq", "qi"],
            &["qi"],
        ] {
            let message = key_error(SigningKey::from_jwk(&ig_rsa_without(missing)));
            assert!(message.contains("`rsa` feature"), "{missing:?}: {message}");
        }
    }

    #[test]
    fn rsa_generation_falls_back_to_aws_lc() {
        let key = SigningKey::generate(
            JwsAlgorithm::Rs384,
            Some("r1"),
            &DeterministicEntropy::new(1),
        )
        .unwrap();
        assert_eq!(key.kid(), "r1");
        assert_eq!(key.public_jwk()["n"].as_str().unwrap().len(), 342);
        let jws = sign_compact(&key, b"{}", b"{}", &DeterministicEntropy::new(0)).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jws.rsplit('.').next().unwrap())
                .unwrap()
                .len(),
            256
        );
    }
}

#[cfg(feature = "rsa")]
#[test]
fn rsa_crate_completes_jwks_without_crt_members() {
    let full = SigningKey::from_jwk(IG_RS384_PRIVATE).unwrap();
    for missing in [
        &["p", "q", "dp", "dq", "qi"][..],
        &["dp", "dq", "qi"],
        &["qi"],
    ] {
        let key = SigningKey::from_jwk(&ig_rsa_without(missing)).unwrap();
        assert_eq!(key.thumbprint(), full.thumbprint(), "{missing:?}");
        // Same key, same deterministic PKCS#1 v1.5 signature.
        let e = DeterministicEntropy::new(0);
        assert_eq!(
            sign_compact(&key, b"{}", b"{}", &e).unwrap(),
            sign_compact(&full, b"{}", b"{}", &e).unwrap()
        );
    }
}
