//! Warm-cache `BackendServices::poll` (no I/O): the per-request cost of asking the sans-IO
//! core for a token it already holds, and of building a fresh token request (assertion
//! included) when it does not.
#![allow(missing_docs)] // criterion_main! generates an undocumented `main`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::{Action, ClientId, Flow, HttpResponse, UnixTime};

fn machine() -> BackendServices {
    let key = SigningKey::generate(JwsAlgorithm::Es384, Some("k1"), &SystemEntropy).unwrap();
    let sc = SmartConfiguration::new(url::Url::parse("https://ehr.example.org/token").unwrap());
    let config = BackendServicesConfig::new(ClientId::new("c"), "system/*.rs", Arc::new(key))
        .with_smart_configuration(sc);
    BackendServices::new(config, Arc::new(SystemEntropy)).unwrap()
}

fn bench(c: &mut Criterion) {
    let now = UnixTime::from_secs(1_700_000_000);
    let mut warm = machine();
    let Ok(Action::Send(_)) = warm.poll(now) else {
        panic!("expected a token request")
    };
    warm.handle_response(
        HttpResponse::new(
            200,
            r#"{"access_token":"x","token_type":"bearer","expires_in":3600}"#,
        ),
        now,
    )
    .unwrap();
    c.bench_function("backend_poll_warm_cache", |b| {
        b.iter(|| match warm.poll(black_box(now)) {
            Ok(Action::Ready(t)) => black_box(t),
            _ => panic!("cache miss"),
        })
    });
    let mut cold = machine();
    c.bench_function("backend_poll_cold_builds_es384_token_request", |b| {
        b.iter(|| {
            let req = cold.poll(black_box(now)).unwrap();
            cold.abort();
            black_box(req)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
