//! The token-source engine through its two sources (Backend Services and an App Launch
//! session): refresh ahead of expiry, one flight shared by every caller, retries with fresh
//! assertions, backoff and `Retry-After`, the store protocol (get, set, delete, leases, a
//! failing store), and persistence before use. Scripted by hand: time is fixed and the store
//! answers are written out, so every step is checked exactly.

mod common;

use std::sync::Arc;

use common::{
    T0, entropy, es384_key, form, jwt_part, public_app, ready, send, store_op, token_body,
};
use serde_json::json;
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::discovery::SmartConfiguration;
use smart_core::error::{StoreError, StoreErrorKind, TransportError, TransportErrorKind};
use smart_core::retry::RetryPolicy;
use smart_core::session::Session;
use smart_core::store::{LeaseConfig, StoreEvent, StoreOp, StoreResult, StoredToken};
use smart_core::token::parse_token_response;
use smart_core::{Action, CachedToken, ClientId, Error, FhirBaseUrl, Flow, HttpResponse, UnixTime};
use url::Url;

const TOKEN_URL: &str = "https://ehr.example.org/oauth2/token";

fn token_url() -> Url {
    Url::parse(TOKEN_URL).unwrap()
}

fn backend(policy: RetryPolicy) -> BackendServices {
    let config =
        BackendServicesConfig::new(ClientId::new("bs-app"), "system/Patient.rs", es384_key())
            .with_smart_configuration(SmartConfiguration::new(token_url()))
            .with_retry_policy(policy);
    BackendServices::new(config, entropy(7)).unwrap()
}

fn ok(access: &str, expires_in: u64) -> HttpResponse {
    HttpResponse::new(200, token_body(access, Some(expires_in), None))
}

fn with_header(mut r: HttpResponse, name: &str, value: &str) -> HttpResponse {
    r.headers.push((name.into(), value.into()));
    r
}

fn jti(req: &smart_core::HttpRequest) -> String {
    jwt_part(&form(req, "client_assertion").unwrap(), 1)["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn access(t: &Arc<CachedToken>) -> &str {
    t.access_token.secret()
}

/// A source holding a fresh 300 s token "S1" received at T0.
fn warm(policy: RetryPolicy) -> BackendServices {
    let mut bs = backend(policy);
    let _ = send(bs.poll(T0).unwrap());
    bs.handle_response(ok("S1", 300), T0).unwrap();
    assert_eq!(access(&ready(bs.poll(T0).unwrap())), "S1");
    bs
}

fn wait_until<T: std::fmt::Debug>(a: Action<T>) -> UnixTime {
    match a {
        Action::WaitUntil(t) => t,
        other => panic!("expected WaitUntil, got {other:?}"),
    }
}

fn stored(access: &str, expires_in: u64, at: UnixTime, client: &str) -> Box<StoredToken> {
    Box::new(StoredToken {
        fhir_base: None,
        token_endpoint: token_url().into(),
        client_id: ClientId::new(client),
        token: parse_token_response(&ok(access, expires_in), &token_url(), at).unwrap(),
    })
}

// ---------------------------------------------------------------------------------------------
// Refresh ahead, one flight, shared outcome
// ---------------------------------------------------------------------------------------------

#[test]
fn refresh_ahead_one_caller_renews_while_the_others_keep_the_valid_token() {
    let mut bs = warm(RetryPolicy::default());
    let near = T0.plus_secs(280); // inside the 30 s skew window, 20 s of validity left
    let req = send(bs.poll(near).unwrap());
    assert_eq!(req.url.as_str(), TOKEN_URL);
    for _ in 0..3 {
        assert_eq!(access(&ready(bs.poll(near).unwrap())), "S1", "no waiting");
    }
    bs.handle_response(ok("S2", 300), near).unwrap();
    assert_eq!(access(&ready(bs.poll(near).unwrap())), "S2");
}

#[test]
fn a_failing_renewal_fails_no_caller_while_the_old_token_is_valid() {
    let mut bs = warm(RetryPolicy::default().with_max_attempts(1));
    let near = T0.plus_secs(280);
    let _ = send(bs.poll(near).unwrap());
    let e = bs
        .handle_response(HttpResponse::new(500, "down"), near)
        .unwrap_err();
    assert!(matches!(e, Error::Http { status: 500, .. }), "{e:?}");
    // Backing off, but S1 is still valid until T0+300: every caller gets it at once.
    for ms in [0, 100, 400] {
        assert_eq!(access(&ready(bs.poll(near.plus_millis(ms)).unwrap())), "S1");
    }
    // After the backoff one caller claims the next renewal; the others still get S1.
    let later = near.plus_secs(5);
    let _ = send(bs.poll(later).unwrap());
    assert_eq!(access(&ready(bs.poll(later).unwrap())), "S1");
    bs.handle_response(ok("S2", 300), later).unwrap();
    assert_eq!(access(&ready(bs.poll(later).unwrap())), "S2");
}

#[test]
fn cold_cache_every_waiter_gets_the_same_error_and_no_request_during_backoff() {
    let mut bs = backend(RetryPolicy::default());
    let _ = send(bs.poll(T0).unwrap());
    assert!(matches!(bs.poll(T0), Ok(Action::WaitForFlight)));
    assert!(matches!(bs.poll(T0), Ok(Action::WaitForFlight)));
    let e = bs
        .handle_response(HttpResponse::new(401, r#"{"error":"invalid_client"}"#), T0)
        .unwrap_err();
    for _ in 0..5 {
        assert_eq!(
            bs.poll(T0.plus_millis(400)).unwrap_err(),
            e,
            "shared, no request"
        );
    }
    // Default backoff after one failure: 500..=1000 ms.
    let _ = send(bs.poll(T0.plus_millis(1_000)).unwrap());
}

#[test]
fn backoff_doubles_with_jitter_and_caps() {
    // With jitter the backoff after n failures lies in [full/2, full], full = 1 s × 2^(n-1)
    // capped at 60 s: a poll just before full/2 still gets the error, one just after full
    // starts the next flight.
    let mut bs = backend(RetryPolicy::default().with_max_attempts(1));
    let mut now = T0;
    for failures in 1..=9u32 {
        let _ = send(bs.poll(now).unwrap());
        let e = bs
            .handle_response(HttpResponse::new(400, r#"{"error":"invalid_client"}"#), now)
            .unwrap_err();
        let full = (1_000u64 << (failures - 1)).min(60_000);
        assert_eq!(
            bs.poll(now.plus_millis(full / 2 - 1)).unwrap_err(),
            e,
            "{failures}"
        );
        now = now.plus_millis(full + 1);
    }
    let _ = send(bs.poll(now).unwrap());
}

// ---------------------------------------------------------------------------------------------
// Retries within a flight
// ---------------------------------------------------------------------------------------------

#[test]
fn server_errors_are_retried_with_fresh_assertions_up_to_three_attempts() {
    let mut bs = backend(RetryPolicy::default());
    let mut jtis = Vec::new();
    let mut now = T0;
    for status in [503, 502] {
        let req = send(bs.poll(now).unwrap());
        jtis.push(jti(&req));
        bs.handle_response(HttpResponse::new(status, "busy"), now)
            .unwrap();
        // Another caller meanwhile: the flight is between attempts, no token yet.
        let until = wait_until(bs.poll(now).unwrap());
        let delay = now.until(until).as_millis();
        assert!((100..=400).contains(&delay), "retry delay {delay} ms");
        now = until;
    }
    let req = send(bs.poll(now).unwrap());
    jtis.push(jti(&req));
    let e = bs
        .handle_response(HttpResponse::new(500, "still down"), now)
        .unwrap_err();
    assert!(matches!(e, Error::Http { status: 500, .. }));
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "three attempts, three different jti");
}

#[test]
fn oauth_errors_are_never_retried() {
    for body in [
        r#"{"error":"invalid_client"}"#,
        r#"{"error":"invalid_grant"}"#,
        r#"{"error":"invalid_scope"}"#,
    ] {
        let mut bs = backend(RetryPolicy::default());
        let _ = send(bs.poll(T0).unwrap());
        let e = bs
            .handle_response(HttpResponse::new(400, body), T0)
            .unwrap_err();
        assert!(matches!(e, Error::OAuth(_)), "{e:?}");
        assert_eq!(bs.poll(T0).unwrap_err(), e, "no second attempt");
    }
}

#[test]
fn retry_after_is_honoured_within_the_flight_or_becomes_the_backoff() {
    // Short: waited within the flight.
    let mut bs = backend(RetryPolicy::default());
    let _ = send(bs.poll(T0).unwrap());
    bs.handle_response(
        with_header(HttpResponse::new(429, ""), "Retry-After", "2"),
        T0,
    )
    .unwrap();
    assert_eq!(wait_until(bs.poll(T0).unwrap()), T0.plus_secs(2));
    let _ = send(bs.poll(T0.plus_secs(2)).unwrap());

    // Long (an HTTP-date two minutes ahead): the flight ends; no request before it.
    let mut bs = backend(RetryPolicy::default());
    let _ = send(bs.poll(T0).unwrap());
    let date = httpdate::fmt_http_date(std::time::SystemTime::from(T0.plus_secs(120)));
    let e = bs
        .handle_response(
            with_header(HttpResponse::new(503, ""), "Retry-After", &date),
            T0,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Http { status: 503, .. }));
    assert_eq!(bs.poll(T0.plus_secs(119)).unwrap_err(), e);
    let _ = send(bs.poll(T0.plus_secs(120)).unwrap());

    // Absurd: capped at 300 s.
    let mut bs = backend(RetryPolicy::default());
    let _ = send(bs.poll(T0).unwrap());
    let _ = bs
        .handle_response(
            with_header(HttpResponse::new(503, ""), "Retry-After", "99999999999"),
            T0,
        )
        .unwrap_err();
    assert!(bs.poll(T0.plus_secs(299)).is_err());
    let _ = send(bs.poll(T0.plus_secs(300)).unwrap());
}

#[test]
fn refused_connections_are_retried_but_timeouts_are_not() {
    let mut bs = backend(RetryPolicy::default());
    let _ = send(bs.poll(T0).unwrap());
    bs.handle_transport_error(
        TransportError::new(TOKEN_URL, TransportErrorKind::Connect, "refused"),
        T0,
    )
    .unwrap();
    let until = wait_until(bs.poll(T0).unwrap());
    let _ = send(bs.poll(until).unwrap());
    let e = bs
        .handle_transport_error(
            TransportError::new(TOKEN_URL, TransportErrorKind::Timeout, "timeout"),
            until,
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
        "{e:?}"
    );
}

#[test]
fn a_sent_assertion_echoed_by_the_server_is_scrubbed() {
    let mut bs = backend(RetryPolicy::none());
    let req = send(bs.poll(T0).unwrap());
    let assertion = form(&req, "client_assertion").unwrap();
    let body = json!({
        "error": "invalid_client",
        "error_description": format!("bad assertion: client_assertion={assertion}&x"),
        "error_uri": format!("https://ehr.example.org/e?a={}", smart_core::http::form_encode(&assertion)),
    });
    let e = bs
        .handle_response(HttpResponse::new(400, body.to_string()), T0)
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(&assertion[assertion.len() - 40..]),
        "{shown}"
    );
    assert!(shown.contains("[redacted]"), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// Store protocol
// ---------------------------------------------------------------------------------------------

fn key_of(bs: &BackendServices) -> String {
    bs.store_key().expect("key known without discovery")
}

#[test]
fn store_is_read_first_then_the_new_token_is_stored_before_it_is_handed_out() {
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::default());
    let key = key_of(&bs);
    assert!(key.starts_with("smart-bs:"), "{key}");
    assert_eq!(
        store_op(bs.poll(T0).unwrap()),
        StoreOp::Get { key: key.clone() }
    );
    bs.handle_store(StoreResult::Value(None), T0).unwrap();
    let _ = send(bs.poll(T0).unwrap());
    bs.handle_response(ok("S1", 300), T0).unwrap();
    match store_op(bs.poll(T0).unwrap()) {
        StoreOp::Set {
            key: k,
            value,
            ttl_secs,
        } => {
            assert_eq!(k, key);
            assert_eq!(value.token.access_token.secret(), "S1");
            assert_eq!(value.client_id.as_str(), "bs-app");
            assert_eq!(ttl_secs, Some(300));
        }
        other => panic!("expected Set, got {other:?}"),
    }
    // While the Set is out, the new token is not handed out (persist before use).
    assert!(matches!(bs.poll(T0), Ok(Action::WaitForFlight)));
    assert!(bs.cached().is_none());
    bs.handle_store(StoreResult::Done, T0).unwrap();
    assert_eq!(access(&ready(bs.poll(T0).unwrap())), "S1");
}

#[test]
fn a_fresh_stored_token_is_used_without_any_token_request() {
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::default());
    let _ = store_op(bs.poll(T0).unwrap());
    bs.handle_store(
        StoreResult::Value(Some(stored("FROM-STORE", 300, T0, "bs-app"))),
        T0,
    )
    .unwrap();
    assert_eq!(access(&ready(bs.poll(T0).unwrap())), "FROM-STORE");
    assert!(bs.take_store_events().is_empty());
}

#[test]
fn stored_entries_of_another_client_or_stale_are_not_used() {
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::default());
    let _ = store_op(bs.poll(T0).unwrap());
    bs.handle_store(
        StoreResult::Value(Some(stored("FOREIGN", 300, T0, "someone-else"))),
        T0,
    )
    .unwrap();
    let _ = send(bs.poll(T0).unwrap());
    assert!(matches!(
        bs.take_store_events().as_slice(),
        [StoreEvent::Ignored { .. }]
    ));
    // A stale one (inside the skew window) is not used either.
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::default());
    let _ = store_op(bs.poll(T0).unwrap());
    bs.handle_store(
        StoreResult::Value(Some(stored("STALE", 300, T0.minus_secs(290), "bs-app"))),
        T0,
    )
    .unwrap();
    let _ = send(bs.poll(T0).unwrap());
}

#[test]
fn after_a_401_the_stored_copy_is_deleted_and_never_read_back() {
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::default());
    let key = key_of(&bs);
    let _ = store_op(bs.poll(T0).unwrap());
    bs.handle_store(
        StoreResult::Value(Some(stored("BAD", 300, T0, "bs-app"))),
        T0,
    )
    .unwrap();
    assert_eq!(access(&ready(bs.poll(T0).unwrap())), "BAD");
    bs.invalidate();
    assert_eq!(
        store_op(bs.poll(T0).unwrap()),
        StoreOp::Delete { key: key.clone() }
    );
    bs.handle_store(StoreResult::Done, T0).unwrap();
    // Another process stored the same rejected token meanwhile: it is ignored.
    assert_eq!(store_op(bs.poll(T0).unwrap()), StoreOp::Get { key });
    bs.handle_store(
        StoreResult::Value(Some(stored("BAD", 300, T0, "bs-app"))),
        T0,
    )
    .unwrap();
    let _ = send(bs.poll(T0).unwrap());
}

#[test]
fn a_failing_store_is_reported_and_skipped_for_thirty_seconds() {
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::shared());
    let _ = store_op(bs.poll(T0).unwrap());
    bs.handle_store(
        StoreResult::Failed(StoreError::new(
            StoreErrorKind::Unavailable,
            "connection refused",
        )),
        T0,
    )
    .unwrap();
    // In-process single flight goes on: straight to the token request, no lease.
    let _ = send(bs.poll(T0).unwrap());
    bs.handle_response(ok("S1", 300), T0).unwrap();
    assert_eq!(access(&ready(bs.poll(T0).unwrap())), "S1");
    match bs.take_store_events().as_slice() {
        [StoreEvent::Degraded { error, retry_at }] => {
            assert_eq!(error.kind, StoreErrorKind::Unavailable);
            assert_eq!(*retry_at, T0.plus_secs(30));
        }
        other => panic!("{other:?}"),
    }
    // After 30 s the store is used again.
    bs.invalidate();
    let _ = store_op(bs.poll(T0.plus_secs(31)).unwrap());
}

#[test]
fn lease_holder_fetches_stores_and_releases() {
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::shared());
    let key = key_of(&bs);
    let _ = store_op(bs.poll(T0).unwrap()); // Get
    bs.handle_store(StoreResult::Value(None), T0).unwrap();
    let owner = match store_op(bs.poll(T0).unwrap()) {
        StoreOp::AcquireLease {
            key: k,
            owner,
            ttl_millis,
        } => {
            assert_eq!(k, key);
            assert_eq!(ttl_millis, 10_000);
            assert!(owner.len() >= 16, "random owner");
            owner
        }
        other => panic!("{other:?}"),
    };
    bs.handle_store(StoreResult::Lease(true), T0).unwrap();
    // Under the lease, look once more (another process may have just stored one).
    assert_eq!(
        store_op(bs.poll(T0).unwrap()),
        StoreOp::Get { key: key.clone() }
    );
    bs.handle_store(StoreResult::Value(None), T0).unwrap();
    let _ = send(bs.poll(T0).unwrap());
    bs.handle_response(ok("S1", 300), T0).unwrap();
    assert!(matches!(
        store_op(bs.poll(T0).unwrap()),
        StoreOp::Set { .. }
    ));
    bs.handle_store(StoreResult::Done, T0).unwrap();
    assert_eq!(
        store_op(bs.poll(T0).unwrap()),
        StoreOp::ReleaseLease { key, owner }
    );
    bs.handle_store(StoreResult::Done, T0).unwrap();
    assert_eq!(access(&ready(bs.poll(T0).unwrap())), "S1");
}

#[test]
fn lease_waiter_takes_the_holders_result_without_a_request() {
    let mut bs = backend(RetryPolicy::default()).with_store(None, LeaseConfig::shared());
    let _ = store_op(bs.poll(T0).unwrap()); // Get
    bs.handle_store(StoreResult::Value(None), T0).unwrap();
    let _ = store_op(bs.poll(T0).unwrap()); // AcquireLease
    bs.handle_store(StoreResult::Lease(false), T0).unwrap();
    let next = wait_until(bs.poll(T0).unwrap());
    assert_eq!(next, T0.plus_millis(100), "poll interval");
    assert!(matches!(
        store_op(bs.poll(next).unwrap()),
        StoreOp::Get { .. }
    ));
    bs.handle_store(
        StoreResult::Value(Some(stored("THEIRS", 300, next, "bs-app"))),
        next,
    )
    .unwrap();
    assert_eq!(access(&ready(bs.poll(next).unwrap())), "THEIRS");
}

#[test]
fn lease_waiter_fetches_itself_after_the_lease_time_plus_one_second() {
    let lease = LeaseConfig::shared().with_ttl_millis(2_000);
    let mut bs = backend(RetryPolicy::default()).with_store(None, lease);
    let mut now = T0;
    let _ = store_op(bs.poll(now).unwrap());
    bs.handle_store(StoreResult::Value(None), now).unwrap();
    let mut rounds = 0;
    loop {
        match bs.poll(now).unwrap() {
            Action::Store(StoreOp::AcquireLease { .. }) => {
                bs.handle_store(StoreResult::Lease(false), now).unwrap();
            }
            Action::Store(StoreOp::Get { .. }) => {
                bs.handle_store(StoreResult::Value(None), now).unwrap();
            }
            Action::WaitUntil(t) => {
                now = t;
                rounds += 1;
            }
            Action::Send(req) => {
                assert_eq!(req.url.as_str(), TOKEN_URL);
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(rounds < 100, "never gave up waiting");
    }
    assert_eq!(now, T0.plus_millis(3_000), "lease 2 s + 1 s");
    assert!(
        bs.take_store_events()
            .iter()
            .any(|e| matches!(e, StoreEvent::LeaseWaitExpired { .. }))
    );
}

// ---------------------------------------------------------------------------------------------
// App Launch session: rotation persisted before use, adopted across processes
// ---------------------------------------------------------------------------------------------

fn session_token(access: &str, refresh: &str, at: UnixTime) -> smart_core::token::TokenResponse {
    parse_token_response(
        &HttpResponse::new(200, token_body(access, Some(300), Some(refresh))),
        &token_url(),
        at,
    )
    .unwrap()
}

fn session(lease: LeaseConfig) -> Session {
    let app = public_app();
    Session::new(
        &app,
        FhirBaseUrl::new("https://ehr.example.org/fhir").unwrap(),
        token_url(),
        session_token("A1", "R1", T0),
        T0,
    )
    .with_store(Some("sess-1".into()), lease)
}

fn stored_session(access: &str, refresh: &str, at: UnixTime) -> Box<StoredToken> {
    Box::new(StoredToken {
        fhir_base: Some(FhirBaseUrl::new("https://ehr.example.org/fhir").unwrap()),
        token_endpoint: token_url().into(),
        client_id: ClientId::new("app-1"),
        token: session_token(access, refresh, at),
    })
}

#[test]
fn session_is_stored_at_once_and_rotation_is_stored_before_use() {
    let mut s = session(LeaseConfig::default());
    // The current set is stored at the first poll.
    assert!(matches!(
        store_op(s.poll(T0).unwrap()),
        StoreOp::Set { ttl_secs: None, .. }
    ));
    s.handle_store(StoreResult::Done, T0).unwrap();
    assert_eq!(access(&ready(s.poll(T0).unwrap())), "A1");
    // Expired: Get, refresh with R1, Set the rotated set, only then hand it out.
    let later = T0.plus_secs(400);
    let _ = store_op(s.poll(later).unwrap());
    s.handle_store(StoreResult::Value(None), later).unwrap();
    let req = send(s.poll(later).unwrap());
    assert_eq!(form(&req, "refresh_token").as_deref(), Some("R1"));
    s.handle_response(
        HttpResponse::new(200, token_body("A2", Some(300), Some("R2"))),
        later,
    )
    .unwrap();
    match store_op(s.poll(later).unwrap()) {
        StoreOp::Set {
            value, ttl_secs, ..
        } => {
            assert_eq!(value.token.access_token.secret(), "A2");
            assert_eq!(
                value.token.refresh_token.as_ref().map(|r| r.secret()),
                Some("R2")
            );
            assert_eq!(ttl_secs, None, "a refresh token outlives the access token");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.poll(later), Ok(Action::WaitForFlight)));
    s.handle_store(StoreResult::Done, later).unwrap();
    assert_eq!(access(&ready(s.poll(later).unwrap())), "A2");
}

#[test]
fn session_adopts_another_processes_rotation_instead_of_spending_the_old_refresh_token() {
    let mut s = session(LeaseConfig::shared());
    let _ = store_op(s.poll(T0).unwrap());
    s.handle_store(StoreResult::Done, T0).unwrap();
    let later = T0.plus_secs(400);
    // Fresh result of another process: used, no refresh request.
    let _ = store_op(s.poll(later).unwrap()); // Get
    s.handle_store(
        StoreResult::Value(Some(stored_session("A2", "R2", later))),
        later,
    )
    .unwrap();
    assert_eq!(access(&ready(s.poll(later).unwrap())), "A2");

    // Stale but rotated (R3): taken as the current state, and the refresh spends R3, not R2.
    let much_later = later.plus_secs(400);
    let _ = store_op(s.poll(much_later).unwrap()); // Get
    s.handle_store(
        StoreResult::Value(Some(stored_session("A3", "R3", later.plus_secs(10)))),
        much_later,
    )
    .unwrap();
    let _ = store_op(s.poll(much_later).unwrap()); // AcquireLease
    s.handle_store(StoreResult::Lease(true), much_later)
        .unwrap();
    let _ = store_op(s.poll(much_later).unwrap()); // Get under the lease
    s.handle_store(StoreResult::Value(None), much_later)
        .unwrap();
    let req = send(s.poll(much_later).unwrap());
    assert_eq!(form(&req, "refresh_token").as_deref(), Some("R3"));
}

#[test]
fn abort_ends_the_flight_without_an_error_and_the_next_poll_starts_over() {
    let mut bs = backend(RetryPolicy::default());
    let a = send(bs.poll(T0).unwrap());
    bs.abort();
    assert!(!bs.is_fetching());
    let b = send(bs.poll(T0).unwrap());
    assert_ne!(jti(&a), jti(&b));
    // A stray abort with nothing out changes nothing.
    bs.handle_response(ok("S1", 300), T0).unwrap();
    bs.abort();
    assert_eq!(access(&ready(bs.poll(T0).unwrap())), "S1");
    let _ = json!(null);
}
