//! A `rand_core` 0.10 generator over the injected [`Entropy`], for crypto-internal randomness
//! (P-384 and RSA key generation, RSA blinding).

use crate::entropy::Entropy;
use crate::error::Error;
use p384::elliptic_curve::rand_core::{TryCryptoRng, TryRng};
use p384::elliptic_curve::zeroize::Zeroizing;
use sha2::{Digest, Sha256};
use std::convert::Infallible;

/// Every 32-byte output block is `SHA-256(32 fresh bytes from entropy || block counter)`: with a
/// real source this only whitens already-random bytes, and it keeps a *periodic* test source
/// such as [`DeterministicEntropy`](crate::entropy::DeterministicEntropy) (period 256 bytes)
/// from trapping prime generation in a cycle of the same few candidates.
///
/// The generator is infallible (`Error = Infallible`, as `rand_core::CryptoRng` requires), so a
/// source failure is only recorded (the hashed counter still varies, so rejection-sampling
/// loops end) and [`check`](Self::check) turns it into [`Error::Entropy`]; the caller then
/// discards whatever was computed.
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

    /// [`Error::Entropy`] if the source failed at any point since construction.
    pub(super) fn check(&self) -> Result<(), Error> {
        if self.failed {
            Err(Error::Entropy)
        } else {
            Ok(())
        }
    }
}

impl TryRng for EntropyRng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
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
        Ok(())
    }
}

/// Sound only because [`Entropy`] implementations promise cryptographically secure bytes.
impl TryCryptoRng for EntropyRng<'_> {}
