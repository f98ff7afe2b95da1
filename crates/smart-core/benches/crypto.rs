//! Signing backends side by side, in one criterion group `crypto`: the library's ES384/RS384
//! `client_assertion` mint, a hand-rolled AWS-LC mint of the same JWT (same header and claims
//! JSON, base64url, `aws-lc-rs` signature: the floor for that backend), raw signatures, and key
//! loading from PEM.
//!
//! The library's backend is chosen at build time, so run the file twice; both runs add to the
//! same group:
//!
//! ```text
//! cargo bench -p smart-core --bench crypto                          # library-pure-rust, raw-p384, raw-rsa
//! cargo bench -p smart-core --bench crypto --features aws-lc-rs     # library-aws-lc-rs, hand-rolled-aws-lc-rs, raw-aws-lc-rs
//! ```
//!
//! Keys: `tests/fixtures/keys/ec-p384-pkcs8.pem` and `rsa-2048-pkcs8.pem` for every entry.
// `criterion_group!` generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smart_core::UnixTime;
use smart_core::assertion::{AssertionClaims, client_assertion};
use smart_core::entropy::{DeterministicEntropy, Entropy};
use smart_core::jwk::SigningKey;

const EC_PEM: &str = include_str!("../tests/fixtures/keys/ec-p384-pkcs8.pem");
const RSA_PEM: &str = include_str!("../tests/fixtures/keys/rsa-2048-pkcs8.pem");
const TOKEN_URL: &str = "https://ehr.example.org/oauth2/token";
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

/// The library's backend, as a bench-id suffix.
const LIBRARY: &str = if cfg!(feature = "aws-lc-rs") {
    "library-aws-lc-rs"
} else {
    "library-pure-rust"
};

fn pkcs8_der(pem: &str) -> Vec<u8> {
    pkcs8::der::pem::decode_vec(pem.as_bytes())
        .expect("fixture is PEM")
        .1
}

fn crypto(c: &mut Criterion) {
    let entropy = DeterministicEntropy::new(1);
    let claims = AssertionClaims::new("c-123", TOKEN_URL);
    let es = SigningKey::from_pem(EC_PEM)
        .unwrap()
        .with_kid("ec1")
        .unwrap();
    let rs = SigningKey::from_pem(RSA_PEM)
        .unwrap()
        .with_kid("k1")
        .unwrap();
    let mut g = c.benchmark_group("crypto");

    for (alg, key) in [("es384", &es), ("rs384", &rs)] {
        g.bench_function(format!("mint_{alg}/{LIBRARY}"), |b| {
            b.iter(|| client_assertion(black_box(key), black_box(&claims), NOW, &entropy).unwrap())
        });
    }

    #[cfg(feature = "aws-lc-rs")]
    hand_rolled::bench(&mut g, &entropy);
    #[cfg(not(feature = "aws-lc-rs"))]
    raw_rust_crypto(&mut g);

    g.bench_function(format!("load_p384_pem/{LIBRARY}"), |b| {
        b.iter(|| SigningKey::from_pem(black_box(EC_PEM)).unwrap())
    });
    g.bench_function(format!("load_rsa2048_pem/{LIBRARY}"), |b| {
        b.iter(|| SigningKey::from_pem(black_box(RSA_PEM)).unwrap())
    });
    g.finish();
}

/// A JWT signing input shaped like the library's (header and claims of the same length).
fn signing_input(entropy: &dyn Entropy, alg: &str, kid: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let mut jti = [0u8; 32];
    entropy.fill(&mut jti).unwrap();
    let header = format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#);
    let claims = format!(
        r#"{{"iss":"c-123","sub":"c-123","aud":"{TOKEN_URL}","exp":{},"iat":{},"jti":"{}"}}"#,
        NOW.as_secs() + 240,
        NOW.as_secs() - 60,
        B64.encode(jti)
    );
    let mut jws = String::with_capacity(512);
    B64.encode_string(header, &mut jws);
    jws.push('.');
    B64.encode_string(claims, &mut jws);
    jws
}

/// The raw RustCrypto signatures the pure-Rust library mint wraps (RSA blinded, as there).
#[cfg(not(feature = "aws-lc-rs"))]
fn raw_rust_crypto(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use p384::ecdsa::signature::Signer as _;
    use pkcs8::DecodePrivateKey as _;
    use rsa::signature::RandomizedSigner as _;

    /// SHA-256 counter blocks: a cheap deterministic generator for the RSA blinding.
    struct BenchRng(u64);
    impl rsa::rand_core::TryRng for BenchRng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut b = [0; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            use sha2::Digest as _;
            for chunk in dst.chunks_mut(32) {
                self.0 += 1;
                chunk.copy_from_slice(&sha2::Sha256::digest(self.0.to_le_bytes())[..chunk.len()]);
            }
            Ok(())
        }
    }
    impl rsa::rand_core::TryCryptoRng for BenchRng {}

    let entropy = DeterministicEntropy::new(2);
    let input = signing_input(&entropy, "ES384", "ec1");
    let ec = p384::ecdsa::SigningKey::from_pkcs8_der(&pkcs8_der(EC_PEM)).unwrap();
    g.bench_function("sign_es384/raw-p384", |b| {
        b.iter(|| {
            let sig: p384::ecdsa::Signature = ec.sign(black_box(input.as_bytes()));
            sig
        })
    });
    let input = signing_input(&entropy, "RS384", "k1");
    let rsa = rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new(
        rsa::PrivateKey::from_pkcs8_der(&pkcs8_der(RSA_PEM)).unwrap(),
    );
    let mut rng = BenchRng(0);
    g.bench_function("sign_rs384/raw-rsa", |b| {
        b.iter(|| rsa.sign_with_rng(&mut rng, black_box(input.as_bytes())))
    });
}

/// The floor for the AWS-LC backend: the same JWT minted by hand, and the bare signature.
#[cfg(feature = "aws-lc-rs")]
mod hand_rolled {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA384, RsaKeyPair,
    };
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

    /// `signing_input` plus `.` and the base64url signature: what `client_assertion` returns.
    fn mint(
        entropy: &dyn Entropy,
        alg: &str,
        kid: &str,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> String {
        let mut jws = signing_input(entropy, alg, kid);
        let sig = sign(jws.as_bytes());
        jws.push('.');
        B64.encode_string(sig, &mut jws);
        jws
    }

    pub(super) fn bench(g: &mut Group<'_>, entropy: &dyn Entropy) {
        let rng = SystemRandom::new();
        let ec =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &pkcs8_der(EC_PEM)).unwrap();
        let rsa = RsaKeyPair::from_pkcs8(&pkcs8_der(RSA_PEM)).unwrap();
        let es_sign = |input: &[u8]| ec.sign(&rng, input).unwrap().as_ref().to_vec();
        let rs_sign = |input: &[u8]| {
            let mut sig = vec![0; rsa.public_modulus_len()];
            rsa.sign(&RSA_PKCS1_SHA384, &rng, input, &mut sig).unwrap();
            sig
        };
        g.bench_function("mint_es384/hand-rolled-aws-lc-rs", |b| {
            b.iter(|| mint(entropy, "ES384", "ec1", es_sign))
        });
        g.bench_function("mint_rs384/hand-rolled-aws-lc-rs", |b| {
            b.iter(|| mint(entropy, "RS384", "k1", rs_sign))
        });
        let input = signing_input(entropy, "ES384", "ec1");
        g.bench_function("sign_es384/raw-aws-lc-rs", |b| {
            b.iter(|| es_sign(black_box(input.as_bytes())))
        });
        let input = signing_input(entropy, "RS384", "k1");
        g.bench_function("sign_rs384/raw-aws-lc-rs", |b| {
            b.iter(|| rs_sign(black_box(input.as_bytes())))
        });
    }
}

criterion_group!(benches, crypto);
criterion_main!(benches);
