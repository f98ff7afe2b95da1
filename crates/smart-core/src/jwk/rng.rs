//! `rand_core` adapter over the injected [`Entropy`] for crypto-internal randomness.

use crate::entropy::Entropy;
use crate::error::Error;
use p384::elliptic_curve::zeroize::Zeroizing;
use rsa::rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// `rand_core` 0.6 adapter over the injected [`Entropy`] (crypto-internal randomness: key
/// generation, RSA blinding).
///
/// Every 32-byte output block is `SHA-256(32 fresh bytes from entropy || block counter)`: with a
/// real source this only whitens already-random bytes, and it keeps a *periodic* test source
/// such as [`DeterministicEntropy`](crate::entropy::DeterministicEntropy) (period 256 bytes)
/// from trapping prime generation in a cycle of the same few candidates.
///
/// `RngCore::fill_bytes` cannot fail, so a source failure is only recorded (the hashed counter
/// still varies, so rejection-sampling loops end) and [`check`](Self::check) turns it into
/// [`Error::Entropy`]; the caller then discards whatever was computed.
pub(super) struct EntropyRng<'a> {
    entropy: &'a dyn Entropy,
    failed: bool,
    counter: u64,
}

impl<'a> EntropyRng<'a> {
    pub(super) fn new(entropy: &'a dyn Entropy) -> Self {
        Self {
            entropy,
            failed: false,
            counter: 0,
        }
    }

    pub(super) fn check(&self) -> Result<(), Error> {
        if self.failed {
            Err(Error::Entropy)
        } else {
            Ok(())
        }
    }
}

impl RngCore for EntropyRng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let mut fresh = Zeroizing::new([0u8; 32]);
            if self.entropy.fill(&mut fresh[..]).is_err() {
                self.failed = true;
            }
            let mut h = Sha256::new();
            h.update(&fresh[..]);
            h.update(self.counter.to_le_bytes());
            self.counter = self.counter.wrapping_add(1);
            let block = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    /// Never returns `Err`: `rand` 0.8's `Rng::fill` (used inside `rsa`) panics on one. A
    /// failure is recorded instead and reported by [`EntropyRng::check`].
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Sound only because [`Entropy`] implementations promise cryptographically secure bytes.
impl CryptoRng for EntropyRng<'_> {}
