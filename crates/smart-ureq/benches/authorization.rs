//! Cost of `BackendServicesAuth::authorization()` on a warm cache (lock, cached token, build
//! the `Bearer` header; no I/O), alone and with 8 threads calling it at once. The cache is
//! warmed against a loopback token server, so no sandbox is needed.
//!
//! `cargo bench -p smart-ureq --bench authorization -- --warm-up-time 1 --measurement-time 3`
// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use smart_core::ClientId;
use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_testkit::hostile::{HostileServer, Response};
use smart_ureq::BackendServicesAuth;

const THREADS: usize = 8;

/// A loopback token endpoint answering every request with a one-hour token (it stops when
/// dropped: keep it for the whole benchmark).
fn token_server() -> HostileServer {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::token("x", 3600));
    server
}

fn warm_auth() -> (HostileServer, Arc<BackendServicesAuth>) {
    let key = SigningKey::generate(JwsAlgorithm::Es384, None, &SystemEntropy).expect("key");
    let server = token_server();
    let token_url = url::Url::parse(&server.url_for("/token")).expect("url");
    let config =
        BackendServicesConfig::new(ClientId::new("bench"), "system/Patient.rs", Arc::new(key))
            .with_smart_configuration(SmartConfiguration::new(token_url));
    let auth = BackendServicesAuth::new(config).expect("auth");
    auth.authorization().expect("warm the cache");
    (server, Arc::new(auth))
}

fn authorization(c: &mut Criterion) {
    let (_server, auth) = warm_auth();
    c.bench_function("ureq_authorization_warm", |b| {
        b.iter(|| black_box(auth.authorization().expect("cached")));
    });
    // Wall time for each of 8 threads to make `iters` calls at once (per iteration: one call
    // on every thread, contending for the lock).
    c.bench_function("ureq_authorization_warm_8_threads", |b| {
        b.iter_custom(|iters| {
            let barrier = std::sync::Barrier::new(THREADS + 1);
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    s.spawn(|| {
                        barrier.wait();
                        for _ in 0..iters {
                            black_box(auth.authorization().expect("cached"));
                        }
                    });
                }
                barrier.wait();
                let start = Instant::now();
                // Scope joins every thread before returning.
                start
            })
            .elapsed()
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = authorization
}
criterion_main!(benches);
