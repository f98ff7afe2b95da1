//! A token endpoint advertised with non-normalised text (`:443`, upper-case
//! host, no path) and the store round trip. A source must adopt the entry it itself wrote.

mod common;

use std::sync::Arc;

use common::{T0, entropy, es384_key, form, public_app, ready, send, store_op, token_body};
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::discovery::SmartConfiguration;
use smart_core::retry::RetryPolicy;
use smart_core::session::Session;
use smart_core::store::{LeaseConfig, StoreOp, StoreResult};
use smart_core::token::parse_token_response;
use smart_core::types::Endpoint;
use smart_core::{Action, CachedToken, ClientId, FhirBaseUrl, Flow, HttpResponse};

const ADVERTISED: &str = "https://ehr.example.org:443/oauth2/token";

/// An App Launch session on the token endpoint advertised as `endpoint` writes its first
/// entry (A1/R1); 400 s later the store holds another process's rotation (A2/R2) under the
/// same key, with the same endpoint text. Returns the session and what it does next.
fn session_after_a_foreign_rotation(endpoint: &str) -> (Session, Action<Arc<CachedToken>>) {
    let ep = Endpoint::parse(endpoint).unwrap();
    let app = public_app();
    let tok = |a: &str, r: &str, at| {
        parse_token_response(
            &HttpResponse::new(200, token_body(a, Some(300), Some(r))),
            ep.url(),
            at,
        )
        .unwrap()
    };
    let fhir = FhirBaseUrl::new("https://ehr.example.org/fhir").unwrap();
    let mut s = Session::new(&app, fhir, ep.clone(), tok("A1", "R1", T0), T0)
        .with_store(Some("sess-1".into()), LeaseConfig::default());
    let mut entry = match store_op(s.poll(T0).unwrap()) {
        StoreOp::Set { value, .. } => value,
        other => panic!("{other:?}"),
    };
    s.handle_store(StoreResult::Done, T0).unwrap();
    assert_eq!(ready(s.poll(T0).unwrap()).access_token.secret(), "A1");
    let later = T0.plus_secs(400);
    entry.token = tok("A2", "R2", later);
    let _ = store_op(s.poll(later).unwrap()); // Get
    s.handle_store(StoreResult::Value(Some(entry)), later)
        .unwrap();
    let next = s.poll(later).unwrap();
    (s, next)
}

/// Regression (fixed): a Backend Services source never adopts the token it stored itself when the
/// advertised token endpoint text is not in `url`'s normal form (`:443`).
#[test]
fn backend_adopts_its_own_stored_entry_with_port_443_endpoint() {
    let ep = Endpoint::parse(ADVERTISED).unwrap();
    let config =
        BackendServicesConfig::new(ClientId::new("bs-app"), "system/Patient.rs", es384_key())
            .with_smart_configuration(SmartConfiguration::new(ep))
            .with_retry_policy(RetryPolicy::default());
    // Writer: fetches and stores.
    let mut a = BackendServices::new(config.clone(), entropy(7))
        .unwrap()
        .with_store(None, LeaseConfig::default());
    let _ = store_op(a.poll(T0).unwrap()); // Get
    a.handle_store(StoreResult::Value(None), T0).unwrap();
    let _ = send(a.poll(T0).unwrap());
    a.handle_response(
        HttpResponse::new(200, token_body("S1", Some(300), None)),
        T0,
    )
    .unwrap();
    let value = match store_op(a.poll(T0).unwrap()) {
        StoreOp::Set { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(value.token_endpoint.as_str(), ADVERTISED);
    a.handle_store(StoreResult::Done, T0).unwrap();

    // Reader: same config, another process; the store hands it the writer's entry.
    let mut b = BackendServices::new(config, entropy(8))
        .unwrap()
        .with_store(None, LeaseConfig::default());
    let _ = store_op(b.poll(T0).unwrap()); // Get
    b.handle_store(StoreResult::Value(Some(value)), T0).unwrap();
    let next = b.poll(T0).unwrap();
    let events = b.take_store_events();
    assert!(
        matches!(&next, Action::Ready(t) if t.access_token.secret() == "S1"),
        "expected the stored token S1 to be adopted, got {next:?}; events: {events:?}"
    );
}

/// Regression (fixed): an App Launch session never adopted another process's rotation when the
/// token endpoint is advertised as `...:443/...`: it spent its own (rotated-away) refresh token.
#[test]
fn session_adopts_rotation_with_port_443_endpoint() {
    let (mut s, next) = session_after_a_foreign_rotation(ADVERTISED);
    let events = s.take_store_events();
    match next {
        Action::Ready(t) => assert_eq!(t.access_token.secret(), "A2"),
        Action::Send(req) => panic!(
            "the stored rotation was ignored ({events:?}); refresh sent with {:?}",
            form(&req, "refresh_token")
        ),
        other => panic!("{other:?}"),
    }
}

/// The same round trip with an endpoint advertised in normal form: the stored token is adopted.
#[test]
fn backend_adopts_its_own_stored_entry_with_normal_endpoint() {
    let ep = Endpoint::parse("https://ehr.example.org/oauth2/token").unwrap();
    let config =
        BackendServicesConfig::new(ClientId::new("bs-app"), "system/Patient.rs", es384_key())
            .with_smart_configuration(SmartConfiguration::new(ep));
    let mut b = BackendServices::new(config, entropy(8))
        .unwrap()
        .with_store(None, LeaseConfig::default());
    let _ = store_op(b.poll(T0).unwrap());
    let stored = smart_core::store::StoredToken {
        fhir_base: None,
        token_endpoint: Endpoint::parse("https://ehr.example.org/oauth2/token").unwrap(),
        client_id: ClientId::new("bs-app"),
        token: parse_token_response(
            &HttpResponse::new(200, token_body("S1", Some(300), None)),
            &url::Url::parse("https://ehr.example.org/oauth2/token").unwrap(),
            T0,
        )
        .unwrap(),
    };
    b.handle_store(StoreResult::Value(Some(Box::new(stored))), T0)
        .unwrap();
    assert_eq!(ready(b.poll(T0).unwrap()).access_token.secret(), "S1");
}

/// Regression (fixed): the ignored rotation cost the session. The old refresh token R1 was
/// refused (`invalid_grant`, it was rotated away) and the dead set (no refresh token) was then
/// written over the other process's live R2 entry: the stored session was lost. Now the
/// session sends nothing and writes nothing over the live entry.
#[test]
fn session_with_port_443_endpoint_never_overwrites_a_live_rotation() {
    let (mut s, next) = session_after_a_foreign_rotation(ADVERTISED);
    if let Action::Send(req) = &next {
        panic!(
            "the session spends its rotated-away refresh token {:?} instead of the stored R2",
            form(req, "refresh_token")
        );
    }
    assert_eq!(ready(next).access_token.secret(), "A2");
    // Asked again within the token's lifetime: the adopted token, and no write.
    let again = T0.plus_secs(401);
    match s.poll(again).unwrap() {
        Action::Ready(t) => assert_eq!(t.access_token.secret(), "A2"),
        Action::Store(StoreOp::Set { key, value, .. }) => panic!(
            "the live R2 entry under `{key}` is overwritten (refresh_token present: {})",
            value.token.refresh_token.is_some()
        ),
        other => panic!("{other:?}"),
    }
}
