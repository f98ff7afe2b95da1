//! A token endpoint that hands out the same access token again after the
//! resource server rejected it (servers that cache client_credentials tokens do).

mod common;

use common::{T0, entropy, es384_key, ready, send, token_body};
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::discovery::SmartConfiguration;
use smart_core::source::TokenSource as _;
use smart_core::{Action, ClientId, Flow, HttpResponse};

fn backend() -> BackendServices {
    let config =
        BackendServicesConfig::new(ClientId::new("bs-app"), "system/Patient.rs", es384_key())
            .with_smart_configuration(SmartConfiguration::new(
                url::Url::parse("https://ehr.example.org/oauth2/token").unwrap(),
            ));
    BackendServices::new(config, entropy(7)).unwrap()
}

/// Regression (fixed): after the re-issued token is rejected a second time, `invalidate_if` is a no-op
/// (the digest of the first rejection is never cleared) and the source keeps handing out
/// the twice-rejected token as fresh until it expires.
#[test]
fn a_reissued_token_rejected_again_is_invalidated_again() {
    let mut bs = backend();
    let _ = send(bs.poll(T0).unwrap());
    bs.handle_response(
        HttpResponse::new(200, token_body("SAME", Some(3600), None)),
        T0,
    )
    .unwrap();
    let t1 = ready(bs.poll(T0).unwrap());
    let h = t1.authorization().clone();
    assert!(bs.invalidate_if(&h), "first rejection invalidates");
    assert!(
        !bs.invalidate_if(&h),
        "a duplicate report of the same rejection is a no-op"
    );
    // New flight: the server answers with the same access token.
    let t = T0.plus_secs(1);
    let _ = send(bs.poll(t).unwrap());
    bs.handle_response(
        HttpResponse::new(200, token_body("SAME", Some(3600), None)),
        t,
    )
    .unwrap();
    let t2 = ready(bs.poll(t).unwrap());
    assert_eq!(t2.access_token.secret(), "SAME");
    // The resource server rejects it again: this is a new rejection of the cached token.
    let again = bs.invalidate_if(t2.authorization());
    let next = bs.poll(t.plus_secs(1)).unwrap();
    assert!(
        again && matches!(next, Action::Send(_)),
        "invalidate_if returned {again}; next poll {next:?} (the rejected token is still served)"
    );
}
