//! Cost of minting one signed `client_assertion` (what every Backend Services token request
//! and every confidential-asymmetric code exchange/refresh pays), with the IG sample keys.
// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use smart_core::UnixTime;
use smart_core::assertion::{AssertionClaims, client_assertion};
use smart_core::entropy::DeterministicEntropy;
use smart_core::jwk::SigningKey;

fn mint(c: &mut Criterion) {
    let entropy = DeterministicEntropy::new(1);
    let now = UnixTime::from_secs(1_700_000_000);
    let claims = AssertionClaims::new("c-123", "https://ehr.example.org/oauth2/token");
    for (name, jwks) in [
        (
            "client_assertion_es384",
            include_str!("../tests/fixtures/ig/ES384.private.json"),
        ),
        (
            "client_assertion_rs384",
            include_str!("../tests/fixtures/ig/RS384.private.json"),
        ),
    ] {
        let key = SigningKey::from_jwk(jwks).expect("IG sample key loads");
        c.bench_function(name, |b| {
            b.iter(|| client_assertion(black_box(&key), black_box(&claims), now, &entropy).unwrap())
        });
    }
}

criterion_group!(benches, mint);
criterion_main!(benches);
