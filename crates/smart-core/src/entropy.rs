//! Randomness, injected.
//!
//! Every protocol-visible random value (`jti`, PKCE `code_verifier`, `state`) is drawn from an
//! [`Entropy`] passed in by the caller, so tests are deterministic. [`SystemEntropy`] (the OS
//! generator, through `getrandom`) is the production default.

use crate::error::Error;
use base64::Engine as _;

/// A source of cryptographically secure random bytes.
///
/// Implementations must be unpredictable in production; [`DeterministicEntropy`] exists for tests.
pub trait Entropy: Send + Sync + std::fmt::Debug {
    /// Fill `buf` entirely with random bytes.
    ///
    /// # Errors
    /// [`Error::Entropy`] when the source is unavailable.
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error>;
}

/// The operating system's generator (`getrandom`).
#[cfg(feature = "getrandom")]
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemEntropy;

#[cfg(feature = "getrandom")]
impl Entropy for SystemEntropy {
    #[allow(clippy::disallowed_methods)] // this is the one sanctioned call site
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        getrandom::getrandom(buf).map_err(|_| Error::Entropy)
    }
}

/// The default entropy source: [`SystemEntropy`] with the `getrandom` feature (the default);
/// without it, a source whose every draw fails with [`Error::Entropy`] — pass your own with
/// the configuration's `with_entropy`.
pub fn default_entropy() -> std::sync::Arc<dyn Entropy> {
    #[cfg(feature = "getrandom")]
    {
        std::sync::Arc::new(SystemEntropy)
    }
    #[cfg(not(feature = "getrandom"))]
    {
        std::sync::Arc::new(NoEntropy)
    }
}

/// An entropy source that always fails ([`Error::Entropy`]): the default without the
/// `getrandom` feature, so a missing source is an error, never predictable output.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEntropy;

impl Entropy for NoEntropy {
    fn fill(&self, _buf: &mut [u8]) -> Result<(), Error> {
        Err(Error::Entropy)
    }
}

/// A **predictable** byte stream for tests and examples: byte `i` of the stream is
/// `seed.wrapping_add(i)`. Never use it for real authorization: every `jti`, `state` and
/// PKCE verifier it yields is guessable.
#[derive(Debug, Default)]
pub struct DeterministicEntropy {
    seed: u8,
    counter: std::sync::atomic::AtomicU64,
}

impl DeterministicEntropy {
    /// A stream starting at `seed`.
    pub fn new(seed: u8) -> Self {
        Self {
            seed,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Entropy for DeterministicEntropy {
    fn fill(&self, buf: &mut [u8]) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        let start = self.counter.fetch_add(buf.len() as u64, Ordering::Relaxed);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self
                .seed
                .wrapping_add((start.wrapping_add(i as u64) % 256) as u8);
        }
        Ok(())
    }
}

/// `n` random bytes from `entropy`, encoded as unpadded base64url (RFC 4648 §5).
///
/// With `n = 32` this gives 256 bits in 43 characters: the shape used for `jti` and `state`.
///
/// # Errors
/// [`Error::Entropy`] when the source fails.
pub fn random_base64url(entropy: &dyn Entropy, n: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; n];
    entropy.fill(&mut buf)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_entropy_advances() {
        let e = DeterministicEntropy::new(7);
        let mut a = [0u8; 3];
        let mut b = [0u8; 3];
        e.fill(&mut a).unwrap();
        e.fill(&mut b).unwrap();
        assert_eq!(a, [7, 8, 9]);
        assert_eq!(b, [10, 11, 12]);
    }

    #[cfg(feature = "getrandom")]
    #[test]
    fn system_entropy_differs_between_calls() {
        let a = random_base64url(&SystemEntropy, 32).unwrap();
        let b = random_base64url(&SystemEntropy, 32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
