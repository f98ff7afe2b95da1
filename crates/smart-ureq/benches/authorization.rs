//! Cost of `BackendServicesAuth::authorization()` on a warm cache (the lock-free read of the
//! published token, the freshness check against the clock, a clone of the shared header; no
//! lock, no I/O), on one thread and with 2 threads calling it at once, plus the parts of that
//! path measured alone (`warm_path_parts/…`) to explain the figures. The cache is warmed
//! against a loopback token server, so no sandbox is needed.
//!
//! Targets (issue "Token lifecycle under load and faults"): ≤ 100 ns per call on one thread;
//! with 2 threads, per call no slower than twice the one-thread figure.
//!
//! `cargo bench -p smart-ureq --bench authorization -- --warm-up-time 1 --measurement-time 3`
// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use smart_core::ClientId;
use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::secret::AuthorizationHeader;
use smart_testkit::hostile::{HostileServer, Response};
use smart_ureq::BackendServicesAuth;

/// Threads calling at once in the contended case (the machine has 2 cores: more threads
/// would measure the scheduler).
const THREADS: usize = 2;

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

/// Wall time for `THREADS` threads, released together, to run `f` `iters` times each: the
/// time per call on each thread when they all call at once.
fn contended(iters: u64, f: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    f();
                }
            });
        }
        barrier.wait();
        // The scope joins every thread before returning.
        Instant::now()
    })
    .elapsed()
}

fn authorization(c: &mut Criterion) {
    let (_server, auth) = warm_auth();
    c.bench_function("ureq_authorization_warm", |b| {
        b.iter(|| black_box(auth.authorization().expect("cached")));
    });
    c.bench_function("ureq_authorization_warm_2_threads", |b| {
        b.iter_custom(|iters| {
            contended(iters, || {
                black_box(auth.authorization().expect("cached"));
            })
        });
    });
}

/// The parts of the warm path, alone: the clock read, the `ArcSwap` load, and the clone (and
/// drop) of a shared `Arc<str>` on one thread and on 2 threads at once (the reference count
/// is one cache line that both cores write).
fn parts(c: &mut Criterion) {
    let mut g = c.benchmark_group("warm_path_parts");
    g.bench_function("system_time_now", |b| {
        b.iter(|| black_box(SystemTime::now()));
    });
    g.bench_function("instant_now", |b| b.iter(|| black_box(Instant::now())));
    let swap = ArcSwapOption::new(Some(Arc::new(7u64)));
    g.bench_function("arc_swap_load", |b| {
        b.iter(|| black_box(swap.load().as_ref().map(|v| **v)));
    });
    let header = AuthorizationHeader::new("Bearer x");
    g.bench_function("header_clone_drop", |b| {
        b.iter(|| black_box(header.clone()));
    });
    g.bench_function("header_clone_drop_2_threads", |b| {
        b.iter_custom(|iters| {
            contended(iters, || {
                black_box(header.clone());
            })
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = authorization, parts
}
criterion_main!(benches);
