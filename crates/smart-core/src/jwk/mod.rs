//! Client signing keys for `private_key_jwt` authentication and Backend Services (SMART App
//! Launch "Client Authentication: Asymmetric (public key)"; RFC 7517, RFC 7518, RFC 7638), and
//! the public-key side of `id_token` verification.
//!
//! A [`SigningKey`] is an ES384 (P-384) or RS384 (RSA, 2048..=8192 bits) private key plus its
//! `kid`, parsed once into ready-to-sign form. Get one from:
//!
//! - PEM text, [`SigningKey::from_pem`]: PKCS#8, SEC1 or PKCS#1, optionally preceded by a
//!   `kid: …` line of RFC 7468 §5.2 explanatory text (written by
//!   [`SigningKey::to_pkcs8_pem_with_kid`]);
//! - DER, [`SigningKey::from_pkcs8_der`];
//! - a private JWK or JWK Set, [`SigningKey::from_jwk`];
//! - [`SigningKey::generate`].
//!
//! The `kid` is, in order: the one set with [`SigningKey::with_kid`], the one stored with the
//! key (PEM explanatory text, JWK `kid`), else the RFC 7638 thumbprint of the public key.
//!
//! A `SigningKey` implements [`AssertionSigner`](crate::assertion::AssertionSigner), so it plugs
//! straight into [`client_assertion`](crate::assertion::client_assertion) and
//! [`ClientAuth::ConfidentialAsymmetric`](crate::client_auth::ClientAuth::ConfidentialAsymmetric).
//! Register its [`public_jwks`](SigningKey::public_jwks) with the server.
//!
//! # Cryptographic backends (Cargo features)
//!
//! Key formats are decoded and checked the same way under every backend (RustCrypto `der`,
//! `pkcs1`, `pkcs8`, `sec1` and `p384` crates); the features only choose who does the
//! arithmetic. `aws-lc-rs` wins where both could.
//!
//! | | `rsa` (default) | `aws-lc-rs` | neither |
//! |---|---|---|---|
//! | ES384 signing | `p384` (RFC 6979, deterministic) | AWS-LC (random nonce) | `p384` |
//! | RS384 signing | `rsa`, blinded from the injected entropy | AWS-LC | [`Error::Key`] naming both features |
//! | `id_token` RS256, RS384 | `rsa` | AWS-LC | [`IdTokenError::KeyMismatch`](crate::error::IdTokenError::KeyMismatch) naming both features |
//! | `id_token` ES256, ES384 | `p256`, `p384` | AWS-LC | `p256`, `p384` |
//! | P-384 generation | `p384`, from the injected entropy | the same | the same |
//! | RSA generation | `rsa`, from the injected entropy | `rsa` if enabled, else AWS-LC | [`Error::Key`] |
//! | RSA JWK without `p`, `q`, `dp`, `dq` or `qi` | `rsa` recovers them | `rsa` if enabled, else [`Error::Key`] | [`Error::Key`] |
//!
//! AWS-LC draws ECDSA nonces, RSA blinding values and generated RSA keys from its own
//! generator (seeded by the operating system), not from the injected
//! [`Entropy`](crate::entropy::Entropy), which still supplies `jti`s, `state`, PKCE verifiers
//! and P-384 keys. RS384 signatures are the same bytes under every backend.
//!
//! # Security
//! - `Debug` prints only the algorithm and `kid`; error messages never quote key material.
//! - Only public members (`kty`, `crv`, `x`, `y` / `n`, `e`) ever appear in
//!   [`public_jwk`](SigningKey::public_jwk): register that (or
//!   [`public_jwks`](SigningKey::public_jwks)), never the private key.
//! - Key buffers are zeroized when dropped.
//! - The `rsa` crate carries advisory RUSTSEC-2023-0071 (a timing side channel on
//!   *decryption*, the Marvin attack). This module only signs, always with RSA blinding fed from
//!   the injected [`Entropy`](crate::entropy::Entropy); prefer `ES384` where the server supports
//!   it, or build with `--no-default-features --features aws-lc-rs,getrandom` to leave the
//!   `rsa` crate out.

mod der;
mod ec_key;
mod pem;
mod private_jwk;
mod public;
mod rng;
mod rsa_key;
mod signing_key;
pub(crate) mod verify;

pub use pem::PrivateKeyPem;
pub use public::jwk_thumbprint;
pub use signing_key::SigningKey;

use crate::error::{Error, KeyError};

/// The smallest RSA modulus accepted, in bits (NIST SP 800-131A; RFC 7518 §3.3 requires at least
/// 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (common verifiers, e.g. `ring`, stop at 8192).
pub const MAX_RSA_BITS: usize = 8192;
/// The modulus size [`SigningKey::generate`] uses for `RS384`, in bits.
pub const GENERATED_RSA_BITS: usize = 2048;

/// The length of a P-384 private scalar and of each public coordinate, in bytes.
const P384_BYTES: usize = 48;

fn key_err(msg: impl Into<String>) -> Error {
    Error::Key(KeyError::new(msg))
}

/// The size of a big-endian unsigned integer, in bits (leading zero bytes and bits ignored).
fn bit_length(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(super::bit_length(&[]), 0);
        assert_eq!(super::bit_length(&[0, 0]), 0);
        assert_eq!(super::bit_length(&[0, 1]), 1);
        assert_eq!(super::bit_length(&[0x80, 0]), 16);
        assert_eq!(super::bit_length(&[0, 0x7f, 0xff]), 15);
    }
}
