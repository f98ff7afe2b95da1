//! Helpers shared by the core's integration tests (each test file is its own crate; not every
//! file uses every helper).
#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use smart_core::assertion::JwsAlgorithm;
use smart_core::client_auth::ClientAuth;
use smart_core::entropy::DeterministicEntropy;
use smart_core::jwk::SigningKey;
use smart_core::launch::AppConfig;
use smart_core::store::StoreOp;
use smart_core::{Action, HttpRequest, UnixTime};

/// The fixed "now" of scripted conversations.
pub const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

/// The request of a `Send`, or a panic naming what came instead.
#[track_caller]
pub fn send<T: Debug>(a: Action<T>) -> HttpRequest {
    match a {
        Action::Send(r) => r,
        other => panic!("expected Send, got {other:?}"),
    }
}

/// The output of a `Ready`, or a panic naming what came instead.
#[track_caller]
pub fn ready<T: Debug>(a: Action<T>) -> T {
    match a {
        Action::Ready(t) => t,
        other => panic!("expected Ready, got {other:?}"),
    }
}

/// A public App Launch client `app-1` (redirect `https://app.example.org/cb`, scope
/// `launch openid patient/*.rs`) with deterministic entropy.
pub fn public_app() -> AppConfig {
    AppConfig::new(
        ClientAuth::public("app-1"),
        "https://app.example.org/cb",
        "launch openid patient/*.rs",
    )
    .unwrap()
    .with_entropy(entropy(3))
}

/// The operation of a `Store`, or a panic naming what came instead.
#[track_caller]
pub fn store_op<T: Debug>(a: Action<T>) -> StoreOp {
    match a {
        Action::Store(op) => op,
        other => panic!("expected Store, got {other:?}"),
    }
}

/// The value of form field `name` in a request body.
pub fn form(req: &HttpRequest, name: &str) -> Option<String> {
    req.form_fields()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Segment `i` of a compact JWT (0 header, 1 claims), decoded as JSON.
pub fn jwt_part(jwt: &str, i: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(i).expect("JWT segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// A deterministic entropy source (tests only).
pub fn entropy(seed: u8) -> Arc<DeterministicEntropy> {
    Arc::new(DeterministicEntropy::new(seed))
}

/// A P-384 key with kid `k1`, generated deterministically.
pub fn es384_key() -> Arc<SigningKey> {
    Arc::new(
        SigningKey::generate(
            JwsAlgorithm::Es384,
            Some("k1"),
            &DeterministicEntropy::new(1),
        )
        .expect("key"),
    )
}

/// A token response body.
pub fn token_body(access: &str, expires_in: Option<u64>, refresh: Option<&str>) -> String {
    let mut v = serde_json::json!({
        "access_token": access, "token_type": "Bearer", "scope": "system/Patient.rs",
    });
    if let Some(e) = expires_in {
        v["expires_in"] = e.into();
    }
    if let Some(r) = refresh {
        v["refresh_token"] = r.into();
    }
    v.to_string()
}
