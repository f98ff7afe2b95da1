//! Entry points shared by the `fuzz/` targets and the corpus-replay test. Not a stable API.
#![doc(hidden)]

use serde_json::Value;

pub use crate::context::fuzz_launch_context as launch_context;
pub use crate::discovery::fuzz_smart_configuration as smart_configuration;
pub use crate::launch::fuzz_callback_url as callback_url;
pub use crate::oauth_error::fuzz_oauth_error as oauth_error;
pub use crate::scope::fuzz_scope as scope;
pub use crate::token::fuzz_token_response as token_response;

/// An OpenID Provider configuration and a JWK Set read from the same bytes. Must never panic.
pub fn openid_configuration(data: &[u8]) {
    crate::id_token::fuzz_openid_configuration(data);
}

/// Introspection responses (RFC 7662 §2.2) at a success and an error status: must never
/// panic; an accepted active response keeps its warnings free of the token's text, and its
/// time checks never overflow.
pub fn introspection(data: &[u8]) {
    let Ok(url) = url::Url::parse("https://ehr.example.org/introspect") else {
        return;
    };
    for status in [200, 401] {
        let resp = crate::HttpResponse::new(status, data.to_vec());
        if let Ok(i) = crate::introspection::parse_introspection_response(&resp, &url) {
            let _ = format!("{i:?}");
            for now in [0, 1_700_000_000, u64::MAX] {
                let _ = i.is_active_at(crate::UnixTime::from_secs(now));
            }
            let _ = i.patient_id();
        }
    }
}

/// `id_token` handling: decode the claims, and verify against a JWKS taken from the same
/// input (split at the first NUL byte: token, then JWKS). Must never panic.
pub fn id_token(data: &[u8]) {
    let (token, jwks) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let token = crate::secret::IdToken::new(String::from_utf8_lossy(token));
    let _ = crate::id_token::UnverifiedIdTokenClaims::decode(&token);
    if let Ok(v) =
        crate::id_token::IdTokenVerifier::trusting_token_issuer(&token, crate::ClientId::new("c"))
    {
        let _ = v.verify_with_jwks(jwks, crate::UnixTime::from_secs(1_700_000_000));
    }
}

/// Private keys: PEM (PKCS#8, SEC1, PKCS#1) and JWK / JWK Set input. Must never panic, and a
/// key that loads must sign.
pub fn private_key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for key in [
        crate::jwk::SigningKey::from_pem(&text),
        crate::jwk::SigningKey::from_jwk(&text),
    ]
    .into_iter()
    .flatten()
    {
        let _ = key.public_jwks();
        let entropy = crate::entropy::DeterministicEntropy::new(1);
        let signed = crate::assertion::sign_compact(&key, b"{}", b"{}", &entropy);
        assert!(signed.is_ok(), "a loaded key must sign");
    }
}

/// A fuzz entry point: takes arbitrary bytes, must never panic.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzz crate and `tests/fuzz_corpus.rs` see them.
pub const TARGETS: &[(&str, Target)] = &[
    ("smart_configuration", smart_configuration),
    ("token_response", token_response),
    ("oauth_error", oauth_error),
    ("launch_context", launch_context),
    ("callback_url", callback_url),
    ("scope", scope),
    ("id_token", id_token),
    ("private_key", private_key),
    ("introspection", introspection),
    ("openid_configuration", openid_configuration),
];

/// The storage form nests unknown members one or two levels deeper than the wire form, so a
/// value already near serde_json's recursion limit (128) may not deserialize back.
pub(crate) fn is_depth_limit(e: &serde_json::Error) -> bool {
    e.to_string().contains("recursion limit")
}

/// Structural JSON equality where floats may differ in the last bits: serde_json (without its
/// `float_roundtrip` feature) may re-read a printed `f64` one ulp off, so storage round trips
/// of float-valued unknown members are compared approximately in the fuzz targets.
pub(crate) fn json_approx_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_approx_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_approx_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Assert that two serializable values are equal up to float rounding (fuzz helper).
pub(crate) fn assert_json_approx_eq<T: serde::Serialize>(a: &T, b: &T, what: &str) {
    let (Ok(x), Ok(y)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        panic!("{what}: value does not serialize");
    };
    assert!(
        json_approx_eq(&x, &y),
        "{what}: round trip changed the value"
    );
}
