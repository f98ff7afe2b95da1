//! The ES384 private key in ready-to-sign form (ECDSA P-384 with SHA-384, RFC 7518 §3.4).

use super::key_err;
use crate::entropy::Entropy;
use crate::error::Error;
use p384::elliptic_curve::zeroize::Zeroizing;

#[cfg(feature = "aws-lc-rs")]
use {
    super::P384_BYTES,
    aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _},
    pkcs8::der::Encode as _,
    std::sync::Arc,
};
#[cfg(not(feature = "aws-lc-rs"))]
use {p384::ecdsa::signature::Signer as _, pkcs8::EncodePrivateKey as _};

/// A P-384 signing key, parsed once. With `aws-lc-rs`: AWS-LC's key pair (shared by clones).
/// Otherwise: `p384`'s `SigningKey` (scalar and public point; RFC 6979 deterministic nonces,
/// precomputed base-point table).
#[derive(Clone)]
pub(super) struct EcKey {
    #[cfg(not(feature = "aws-lc-rs"))]
    key: p384::ecdsa::SigningKey,
    #[cfg(feature = "aws-lc-rs")]
    key: Arc<EcdsaKeyPair>,
}

/// The public point's affine coordinates, 48 bytes big-endian each.
pub(super) struct EcPoint {
    pub(super) x: Vec<u8>,
    pub(super) y: Vec<u8>,
}

impl EcKey {
    /// The signing key for a validated scalar, and its public point.
    pub(super) fn new(secret: &p384::SecretKey) -> Result<(Self, EcPoint), Error> {
        #[cfg(not(feature = "aws-lc-rs"))]
        {
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
        #[cfg(feature = "aws-lc-rs")]
        {
            // RFC 5915 `ECPrivateKey` without the public key: AWS-LC derives it.
            let d = Zeroizing::new(secret.to_bytes());
            let sec1 = sec1::EcPrivateKey {
                private_key: &d,
                parameters: Some(sec1::EcParameters::NamedCurve(
                    pkcs8::ObjectIdentifier::new_unwrap("1.3.132.0.34"),
                )),
                public_key: None,
            };
            let der = sec1
                .to_der()
                .map(Zeroizing::new)
                .map_err(|_| key_err("SEC1 encoding failed"))?;
            let key = EcdsaKeyPair::from_private_key_der(&ECDSA_P384_SHA384_FIXED_SIGNING, &der)
                .map_err(|_| key_err("AWS-LC rejected the P-384 key"))?;
            // Uncompressed SEC1 point: 0x04 || x || y.
            let public = key.public_key().as_ref();
            if public.len() != 1 + 2 * P384_BYTES || public[0] != 0x04 {
                return Err(key_err("AWS-LC returned an unexpected P-384 public key"));
            }
            let point = EcPoint {
                x: public[1..=P384_BYTES].to_vec(),
                y: public[1 + P384_BYTES..].to_vec(),
            };
            Ok((Self { key: Arc::new(key) }, point))
        }
    }

    /// The JWS signature: 96 bytes `R || S` (never DER). With the pure-Rust backend it is
    /// deterministic (RFC 6979); AWS-LC draws the nonce from its own generator. `entropy` is not
    /// used either way.
    pub(super) fn sign(&self, input: &[u8], _entropy: &dyn Entropy) -> Result<Vec<u8>, Error> {
        #[cfg(not(feature = "aws-lc-rs"))]
        {
            let sig: p384::ecdsa::Signature = self
                .key
                .try_sign(input)
                .map_err(|_| key_err("ES384 signing failed"))?;
            Ok(sig.to_bytes().to_vec())
        }
        #[cfg(feature = "aws-lc-rs")]
        {
            // aws-lc-rs ignores the generator argument (AWS-LC uses its own).
            let sig = self
                .key
                .sign(&aws_lc_rs::rand::SystemRandom::new(), input)
                .map_err(|_| key_err("ES384 signing failed"))?;
            Ok(sig.as_ref().to_vec())
        }
    }

    /// PKCS#8 `PrivateKeyInfo` DER.
    pub(super) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        #[cfg(not(feature = "aws-lc-rs"))]
        let der = self.key.to_pkcs8_der().map(|d| d.as_bytes().to_vec());
        #[cfg(feature = "aws-lc-rs")]
        let der = self.key.to_pkcs8v1().map(|d| d.as_ref().to_vec());
        der.map(Zeroizing::new)
            .map_err(|_| key_err("PKCS#8 encoding failed"))
    }
}
