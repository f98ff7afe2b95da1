//! Cost of `BackendServicesAuth::authorization().await` on a warm cache (the lock-free read
//! of the published token, the freshness check against the clock, a clone of the shared
//! header; no lock, no I/O), in one task and with 2 threads calling it at once in the
//! runtime's context. The cache is warmed against a loopback token server, so no sandbox is needed. (The
//! parts of the path are measured alone in smart-ureq's bench of the same name.)
//!
//! Targets (issue "Token lifecycle under load and faults"): ≤ 100 ns per call in one task;
//! with 2 tasks, per call no slower than twice the one-task figure.
//!
//! `cargo bench -p smart-reqwest --bench authorization -- --warm-up-time 1 --measurement-time 3`
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
use smart_reqwest::BackendServicesAuth;
use smart_testkit::hostile::{HostileServer, Response};

/// Tasks calling at once in the contended case (one per worker of the 2-worker runtime: the
/// machine has 2 cores).
const TASKS: usize = 2;

/// A loopback token endpoint answering every request with a one-hour token (it stops when
/// dropped: keep it for the whole benchmark).
fn token_server() -> HostileServer {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::token("x", 3600));
    server
}

fn authorization(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(TASKS)
        .enable_all()
        .build()
        .expect("runtime");
    let key = SigningKey::generate(JwsAlgorithm::Es384, None, &SystemEntropy).expect("key");
    let server = token_server();
    let token_url = url::Url::parse(&server.url_for("/token")).expect("url");
    let config =
        BackendServicesConfig::new(ClientId::new("bench"), "system/Patient.rs", Arc::new(key))
            .with_smart_configuration(SmartConfiguration::new(token_url));
    let auth = Arc::new(BackendServicesAuth::new(config).expect("auth"));
    rt.block_on(auth.authorization()).expect("warm the cache");

    c.bench_function("reqwest_authorization_warm", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(auth.authorization().await.expect("cached")) });
    });
    // Wall time for 2 threads, released together, each driving its own loop of `iters`
    // calls with `Handle::block_on` (in the runtime's context): the time per call on each
    // thread when both call at once. Two tasks spawned on the runtime would measure where the
    // scheduler puts them: the calls never yield, so both often run on one worker in turn.
    let handle = rt.handle().clone();
    c.bench_function("reqwest_authorization_warm_2_tasks", |b| {
        b.iter_custom(|iters| {
            let barrier = std::sync::Barrier::new(TASKS + 1);
            std::thread::scope(|s| {
                for _ in 0..TASKS {
                    s.spawn(|| {
                        handle.block_on(async {
                            barrier.wait();
                            for _ in 0..iters {
                                black_box(auth.authorization().await.expect("cached"));
                            }
                        });
                    });
                }
                barrier.wait();
                // The scope joins every thread before returning.
                Instant::now()
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
