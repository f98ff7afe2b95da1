//! End to end Backend Services token fetch from the local SMART sandbox: sign a fresh
//! `client_assertion` (ES384 or RS384-2048), `POST` it to the token endpoint over a kept-alive
//! loopback connection, read and parse the token response. Discovery is done once, outside the
//! measurement, like the Node comparison script (`sandbox/bench/e2e-node.mjs`, run by
//! `scripts/bench-e2e`, which prints both side by side).
//!
//! `cargo bench -p smart-ureq --bench e2e` (add `--features aws-lc-rs` for the AWS-LC backend).
//! The sandbox is started on demand (`SMART_SANDBOX_URL` to use a running one).
// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use smart_core::ClientId;
use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_ureq::{BackendServicesAuth, HttpClient, discover};

fn auth_for(alg: JwsAlgorithm) -> BackendServicesAuth {
    let key = SigningKey::generate(alg, None, &SystemEntropy).expect("key");
    let client_id = smart_testkit::register_backend_client(&key, "system/Patient.rs", None);
    let http = HttpClient::new().expect("client");
    let fhir_base = smart_testkit::scenarios::sandbox_fhir_base();
    let discovered = discover(&http, &fhir_base).expect("discovery");
    let config =
        BackendServicesConfig::new(ClientId::new(client_id), "system/Patient.rs", Arc::new(key))
            .with_smart_configuration(discovered.config);
    BackendServicesAuth::with_client(config, http, Arc::new(SystemEntropy)).expect("auth")
}

fn e2e(c: &mut Criterion) {
    let backend = if cfg!(feature = "aws-lc-rs") {
        "aws-lc-rs"
    } else {
        "rustcrypto"
    };
    let mut group = c.benchmark_group(format!("e2e_token_{backend}"));
    group.measurement_time(Duration::from_secs(5));
    group.sample_size(50);
    for (name, alg) in [
        ("ES384", JwsAlgorithm::Es384),
        ("RS384", JwsAlgorithm::Rs384),
    ] {
        let auth = auth_for(alg);
        auth.token().expect("first token");
        group.bench_function(name, |b| {
            b.iter(|| {
                // Forget the cached token: the next call signs and fetches a new one.
                auth.on_unauthorized().expect("invalidate");
                black_box(auth.token().expect("token"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
