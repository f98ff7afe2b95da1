//! `SmartClient::restore` of stored sessions whose token_endpoint is odd, and a session read
//! from a store is never written back over a newer rotation.
//! A refresh must never send the refresh token to a refused URL, errors must not print
//! userinfo, and nothing stored may be overwritten by a failed restore/refresh.

use std::sync::Arc;

use smart_core::client_auth::ClientAuth;
use smart_core::launch::AppConfig;
use smart_core::store::StoredToken;
use smart_core::{Error, UnixTime};
use smart_ureq::{InMemoryTokenStore, SmartClient, TokenStore};

fn stored(endpoint: &str, expires_in: u64) -> StoredToken {
    let json = serde_json::json!({
        "fhir_base": "https://ehr.example.org/fhir",
        "token_endpoint": endpoint,
        "client_id": "app",
        "token": {
            "access_token": "AT-secret", "token_type": "Bearer", "expires_in": expires_in,
            "expires_at": 1_000, "refresh_token": "RT-secret", "scope": "patient/*.rs"
        }
    });
    serde_json::from_value(json).unwrap()
}

fn app() -> AppConfig {
    AppConfig::new(
        ClientAuth::public("app"),
        "https://app.example.org/cb",
        "patient/*.rs",
    )
    .unwrap()
}

/// PINS: non-https/odd endpoints restore but a refresh is refused before anything is sent,
/// the error names no userinfo and no token, and the stored entry is unchanged.
#[test]
fn refresh_of_a_restored_session_with_odd_endpoint_is_refused() {
    for ep in [
        "http://evil.example/token",
        "mailto:a@b",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:pw-secret@ehr.example.org/token",
        "ftp://ehr.example.org/token",
    ] {
        let store = Arc::new(InMemoryTokenStore::new());
        let entry = stored(ep, 300);
        store.set("k", &entry, None).unwrap();
        let client = match SmartClient::restore(&app(), store.clone(), "k") {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{ep}: restore refused: {e}");
                continue;
            }
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.refresh(None)));
        let r = r.unwrap_or_else(|_| panic!("{ep}: refresh panicked"));
        let e = r.expect_err(ep);
        let shown = format!("{e} | {e:#} | {e:?}");
        eprintln!("{ep}: {e}");
        assert!(
            matches!(e, Error::InsecureUrl { .. } | Error::Config(_)),
            "{ep}: {e:?}"
        );
        for secret in ["pw-secret", "RT-secret", "AT-secret"] {
            assert!(!shown.contains(secret), "{ep}: {secret} in {shown}");
        }
        let after = store.get("k").unwrap().unwrap();
        assert_eq!(after, entry, "{ep}: stored entry changed");
    }
}

/// OBSERVE: a stored token whose `expires_at` is already past and whose stored endpoint is
/// fine; `authorization()` must not hand out an expired token.
#[test]
fn restored_expired_token_is_not_handed_out() {
    let store = Arc::new(InMemoryTokenStore::new());
    store
        .set("k", &stored("https://127.0.0.1:1/token", 300), None)
        .unwrap();
    let client = SmartClient::restore(&app(), store, "k").unwrap();
    let r = client.authorization();
    assert!(
        r.is_err(),
        "an expired token (expires_at 1000) was handed out"
    );
    let _ = UnixTime::EPOCH;
}

/// `smart refresh --from` reads the saved session, then builds
/// `SmartClient::builder(Session::from_stored(..)).already_stored().store(..).store_key(..)`.
/// Without `already_stored`, `build` wrote the *read* set back at once, outside any lease: a
/// rotation another process stored in between lost its live refresh token to the spent one.
/// This test replays the CLI's steps with the rotation placed in that window.
#[test]
fn a_session_read_from_the_store_is_not_written_back_over_a_rotation() {
    let store = Arc::new(InMemoryTokenStore::new());
    let e1 = stored("https://127.0.0.1:1/token", 300);
    store.set("smart-cli:session:default", &e1, None).unwrap();
    // CLI: store::read_session
    let read = store.get("smart-cli:session:default").unwrap().unwrap();
    // Another process rotates: R1 -> R2.
    let mut e2 = e1.clone();
    e2.token.refresh_token = Some(smart_core::secret::RefreshToken::new("RT-ROTATED-2"));
    store.set("smart-cli:session:default", &e2, None).unwrap();
    // CLI: Session::from_stored + SmartClient::builder(..).store(..).store_key(..).build()
    let session = smart_core::session::Session::from_stored(
        &app(),
        read,
        UnixTime::from(std::time::SystemTime::now()),
    )
    .unwrap();
    let _client = SmartClient::builder(session)
        .already_stored()
        .store(store.clone())
        .store_key("smart-cli:session:default")
        .build()
        .unwrap();
    let now_stored = store.get("smart-cli:session:default").unwrap().unwrap();
    assert_eq!(
        now_stored
            .token
            .refresh_token
            .as_ref()
            .map(|r| r.secret().to_owned())
            .as_deref(),
        Some("RT-ROTATED-2"),
        "the rotated refresh token was overwritten by the stale one the CLI read"
    );
}
