//! Private key loading (PEM, JWK), key generation, and public JWK / JWKS export for
//! `client-confidential-asymmetric` clients and Backend Services (SMART App Launch
//! §"Registering a client (communicating public keys)", spec digest §4.1, ASYM-01..ASYM-05).
//!
//! A [`SigningKey`] is an ES384 (P-384) or RS384 (RSA ≥ 2048 bits) private key plus its `kid`.
//! It implements [`AssertionSigner`](crate::assertion::AssertionSigner), so it plugs straight into
//! [`client_assertion`](crate::assertion::client_assertion) and
//! [`ClientAuth::ConfidentialAsymmetric`](crate::client_auth::ClientAuth::ConfidentialAsymmetric).
//!
//! # Security
//! - `Debug` prints only the algorithm and `kid`; error messages never quote key material.
//! - Only public members (`kty`, `crv`, `x`, `y` / `n`, `e`) ever appear in
//!   [`public_jwk`](SigningKey::public_jwk): register that (or [`public_jwks`](SigningKey::public_jwks)),
//!   never the private key.
//! - The underlying RustCrypto keys zeroize themselves on drop.
//! - `RS384` uses the `rsa` crate, which carries advisory RUSTSEC-2023-0071 (a timing
//!   side channel on *decryption*, the Marvin attack). Signing here always uses RSA blinding fed
//!   from the injected [`Entropy`](crate::entropy::Entropy); prefer `ES384` where the server supports it.

mod pem;
mod private_jwk;
mod public;
mod rng;
mod signing_key;
pub(crate) mod verify;

pub use pem::PrivateKeyPem;
pub use public::jwk_thumbprint;
pub use signing_key::SigningKey;

use crate::error::{Error, KeyError};
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use p384::elliptic_curve::zeroize::Zeroizing;

/// The smallest RSA modulus accepted, in bits (NIST SP 800-131A; the IG's sample key is 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (common verifiers, e.g. `ring`, stop at 8192).
pub const MAX_RSA_BITS: usize = 8192;
/// The modulus size [`SigningKey::generate`] uses for `RS384`, in bits.
pub const GENERATED_RSA_BITS: usize = 2048;

/// base64url that tolerates (but does not require) `=` padding when decoding JWK members.
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn key_err(msg: impl Into<String>) -> Error {
    Error::Key(KeyError::new(msg))
}

fn zeroizing(v: Vec<u8>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(v)
}
