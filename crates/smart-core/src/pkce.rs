//! PKCE (RFC 7636) with the `S256` method only, and the OAuth `state` parameter
//! (SMART App Launch §"Obtain authorization code" and "Considerations for PKCE Support").
//!
//! `plain` is never offered: SMART 2.x requires `S256`, and a client must not downgrade when a
//! server does not advertise it. Randomness comes from the injected [`Entropy`].

use crate::entropy::{Entropy, random_base64url};
use crate::error::Error;
use crate::secret::{CsrfToken, PkceCodeVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// The only `code_challenge_method` this library sends (RFC 7636 §4.2; SMART App Launch
/// forbids `plain`).
pub const CODE_CHALLENGE_METHOD: &str = "S256";

/// Random bytes in a generated `code_verifier` (RFC 7636 §4.1 recommends 32 → 43 characters).
pub const CODE_VERIFIER_BYTES: usize = 32;

/// Random bytes in a generated `state` (256 bits; SMART App Launch §"Obtain authorization
/// code" asks for at least 122).
pub const STATE_BYTES: usize = 32;

/// A fresh `code_verifier`: 32 random bytes, base64url without padding — 43 characters from
/// the RFC 7636 §4.1 unreserved set, 256 bits of entropy.
///
/// # Errors
/// [`Error::Entropy`] when the source fails.
pub fn generate_code_verifier(entropy: &dyn Entropy) -> Result<PkceCodeVerifier, Error> {
    random_base64url(entropy, CODE_VERIFIER_BYTES).map(PkceCodeVerifier::new)
}

/// The `S256` `code_challenge` for `verifier`: `BASE64URL-NOPAD(SHA256(ASCII(code_verifier)))`
/// (RFC 7636 §4.2). Always 43 characters.
pub fn code_challenge_s256(verifier: &PkceCodeVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()))
}

/// Whether `verifier` is a well-formed `code_verifier`: 43 to 128 characters from
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"` (RFC 7636 §4.1). Useful when a verifier
/// comes from storage or another component.
pub fn is_valid_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A fresh OAuth `state` value: 32 random bytes, base64url without padding (43 characters, 256
/// bits; SMART App Launch requires at least 122 unpredictable bits). Compare it on the callback
/// with [`CsrfToken`]'s constant-time equality.
///
/// # Errors
/// [`Error::Entropy`] when the source fails.
pub fn generate_state(entropy: &dyn Entropy) -> Result<CsrfToken, Error> {
    random_base64url(entropy, STATE_BYTES).map(CsrfToken::new)
}
