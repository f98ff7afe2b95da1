//! The RS384 private key in ready-to-sign form (RSASSA-PKCS1-v1_5 with SHA-384, RFC 7518
//! §3.3), and the RSA arithmetic that needs a backend: generation and completing a JWK that
//! lacks its CRT members.

use super::key_err;
use crate::entropy::Entropy;
use crate::error::Error;
use p384::elliptic_curve::zeroize::Zeroizing;

#[cfg(feature = "rsa")]
use {super::GENERATED_RSA_BITS, super::rng::EntropyRng, pkcs1::EncodeRsaPrivateKey as _};
#[cfg(feature = "aws-lc-rs")]
use {aws_lc_rs::encoding::AsDer as _, std::sync::Arc};
#[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
use {
    pkcs8::EncodePrivateKey as _,
    rsa::signature::{RandomizedSigner as _, SignatureEncoding as _},
};

/// Said when an RSA key is used but no RSA backend is compiled in.
#[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
const NO_BACKEND: &str =
    "RSA keys need an RSA backend: enable the `rsa` or `aws-lc-rs` feature of smart-core";

/// An RS384 signing key, parsed once: AWS-LC's key pair (shared by clones) with `aws-lc-rs`,
/// else the `rsa` crate's key with its CRT values precomputed.
#[derive(Clone)]
pub(super) struct RsaKey(Backend);

#[cfg(feature = "aws-lc-rs")]
type Backend = Arc<aws_lc_rs::signature::RsaKeyPair>;

#[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
type Backend = Box<rsa::pkcs1v15::SigningKey<sha2::Sha384>>;

/// No RSA backend compiled in: no [`RsaKey`] can exist.
#[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
#[derive(Clone)]
enum Backend {}

impl RsaKey {
    /// Load a PKCS#1 `RSAPrivateKey` (already checked by `der::rsa_public_parts`); `malformed`
    /// is the error message when the backend rejects it (e.g. inconsistent members).
    pub(super) fn from_pkcs1_der(der: &[u8], malformed: &str) -> Result<Self, Error> {
        #[cfg(feature = "aws-lc-rs")]
        {
            let key =
                aws_lc_rs::signature::RsaKeyPair::from_der(der).map_err(|_| key_err(malformed))?;
            Ok(Self(Arc::new(key)))
        }
        #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
        {
            use rsa::pkcs1::DecodeRsaPrivateKey as _;
            let key = rsa::PrivateKey::from_pkcs1_der(der).map_err(|_| key_err(malformed))?;
            Ok(Self(Box::new(rsa::pkcs1v15::SigningKey::new(key))))
        }
        #[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
        {
            let _ = (der, malformed);
            Err(key_err(NO_BACKEND))
        }
    }

    /// The JWS signature, as long as the modulus. PKCS#1 v1.5 is deterministic: the bytes
    /// never depend on the blinding values, which the `rsa` backend draws from `entropy` and
    /// AWS-LC from its own generator.
    pub(super) fn sign(&self, input: &[u8], entropy: &dyn Entropy) -> Result<Vec<u8>, Error> {
        #[cfg(feature = "aws-lc-rs")]
        {
            let _ = entropy;
            let mut sig = vec![0; self.0.public_modulus_len()];
            // aws-lc-rs ignores the generator argument (AWS-LC uses its own).
            self.0
                .sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA384,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    input,
                    &mut sig,
                )
                .map_err(|_| key_err("RS384 signing failed"))?;
            Ok(sig)
        }
        #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
        {
            let mut rng = EntropyRng::new(entropy);
            let sig = self.0.try_sign_with_rng(&mut rng, input);
            rng.check()?;
            let sig = sig.map_err(|_| key_err("RS384 signing failed"))?;
            Ok(sig.to_vec())
        }
        #[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
        {
            let _ = (input, entropy);
            match self.0 {}
        }
    }

    /// PKCS#8 `PrivateKeyInfo` DER.
    pub(super) fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        #[cfg(feature = "aws-lc-rs")]
        {
            self.0
                .as_der()
                .map(|d| Zeroizing::new(d.as_ref().to_vec()))
                .map_err(|_| key_err("PKCS#8 encoding failed"))
        }
        #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
        {
            self.0
                .to_pkcs8_der()
                .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
                .map_err(|_| key_err("PKCS#8 encoding failed"))
        }
        #[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
        match self.0 {}
    }
}

/// A new [`GENERATED_RSA_BITS`](super::GENERATED_RSA_BITS)-bit key (e = 65537) as PKCS#1 DER:
/// with the `rsa` feature all randomness is drawn from `entropy`; with only `aws-lc-rs`, AWS-LC
/// generates it from its own generator and `entropy` is not used.
pub(super) fn generate(entropy: &dyn Entropy) -> Result<Zeroizing<Vec<u8>>, Error> {
    #[cfg(feature = "rsa")]
    {
        let mut rng = EntropyRng::new(entropy);
        let key = rsa::PrivateKey::new(&mut rng, GENERATED_RSA_BITS);
        rng.check()?;
        let key = key.map_err(|_| key_err("RSA key generation failed"))?;
        pkcs1_der(&key)
    }
    #[cfg(all(feature = "aws-lc-rs", not(feature = "rsa")))]
    {
        use pkcs8::der::Decode as _;
        let _ = entropy;
        let failed = || key_err("RSA key generation failed");
        let key = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| failed())?;
        let pkcs8 = key.as_der().map_err(|_| failed())?;
        let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8.as_ref()).map_err(|_| failed())?;
        Ok(Zeroizing::new(info.private_key.as_bytes().to_vec()))
    }
    #[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
    {
        let _ = entropy;
        Err(key_err(NO_BACKEND))
    }
}

/// PKCS#1 DER for a key given as `n`, `e`, `d` and optionally `p`, `q` (big-endian): the
/// missing primes are recovered (NIST SP 800-56B rev. 2, appendix C.2) and the CRT values
/// computed. `inconsistent` is the error message when the members do not form a key.
pub(super) fn complete(
    n: &[u8],
    e: &[u8],
    d: &[u8],
    primes: Option<(&[u8], &[u8])>,
    inconsistent: &str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    #[cfg(feature = "rsa")]
    {
        // As the `rsa` crate's own PKCS#1 decoder: `d` and the primes at the modulus' width.
        let uint = |b: &[u8], width: usize| {
            let bits = u32::try_from(width * 8).map_err(|_| key_err(inconsistent))?;
            rsa::BoxedUint::from_be_slice(b, bits).map_err(|_| key_err(inconsistent))
        };
        let primes = match primes {
            Some((p, q)) => vec![uint(p, n.len())?, uint(q, n.len())?],
            None => Vec::new(),
        };
        let (n_uint, e_uint, d_uint) = (uint(n, n.len())?, uint(e, e.len())?, uint(d, n.len())?);
        let key = rsa::PrivateKey::from_components(n_uint, e_uint, d_uint, primes)
            .map_err(|_| key_err(inconsistent))?;
        pkcs1_der(&key)
    }
    #[cfg(not(feature = "rsa"))]
    {
        let _ = (n, e, d, primes, inconsistent);
        Err(key_err(
            "an RSA JWK without all of `p`, `q`, `dp`, `dq`, `qi` needs the `rsa` feature of \
             smart-core to complete it",
        ))
    }
}

#[cfg(feature = "rsa")]
fn pkcs1_der(key: &rsa::PrivateKey) -> Result<Zeroizing<Vec<u8>>, Error> {
    let doc = key
        .to_pkcs1_der()
        .map_err(|_| key_err("PKCS#1 encoding failed"))?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}
