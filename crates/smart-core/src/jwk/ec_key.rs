//! The ES384 private key in ready-to-sign form (ECDSA P-384 with SHA-384, RFC 7518 §3.4).

use super::key_err;
use crate::entropy::Entropy;
use crate::error::Error;
use p384::ecdsa::signature::Signer as _;
use p384::elliptic_curve::zeroize::Zeroizing;
use pkcs8::EncodePrivateKey as _;

/// A P-384 signing key, parsed once: `p384`'s `SigningKey` (scalar and public point, signed
/// with RFC 6979 deterministic nonces and the precomputed base-point table).
#[derive(Clone)]
pub(super) struct EcKey {
    key: p384::ecdsa::SigningKey,
}

/// The public point's affine coordinates, 48 bytes big-endian each.
pub(super) struct EcPoint {
    pub(super) x: Vec<u8>,
    pub(super) y: Vec<u8>,
}

impl EcKey {
    /// The signing key for a validated scalar, and its public point.
    pub(super) fn new(secret: &p384::SecretKey) -> Result<(Self, EcPoint), Error> {
        let key = p384::ecdsa::SigningKey::from(secret);
        let point = key.verifying_key().to_sec1_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(key_err("P-384 public key is the identity point"));
        };
        let point = EcPoint {
            x: x.to_vec(),
            y: y.to_vec(),
        };
        Ok((Self { key }, point))
    }

    /// The JWS signature: 96 bytes `R || S` (never DER). Deterministic (RFC 6979); `entropy`
    /// is not used.
    pub(super) fn sign(&self, input: &[u8], _entropy: &dyn Entropy) -> Result<Vec<u8>, Error> {
        let sig: p384::ecdsa::Signature = self
            .key
            .try_sign(input)
            .map_err(|_| key_err("ES384 signing failed"))?;
        Ok(sig.to_bytes().to_vec())
    }

    /// PKCS#8 `PrivateKeyInfo` DER.
    pub(super) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = self
            .key
            .to_pkcs8_der()
            .map_err(|_| key_err("PKCS#8 encoding failed"))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }
}
