//! [`SigningKey`]: loading from PEM / DER, generation, signing and PKCS#8 export.

use super::pem::{
    OID_EC_PUBLIC_KEY, OID_RSA_ENCRYPTION, PemBlock, PrivateKeyPem, algorithm_name, check_curve,
    describe_non_private, pem_blocks, sec1_shape,
};
use super::public::{PublicMembers, thumbprint_of_members};
use super::rng::EntropyRng;
use super::{GENERATED_RSA_BITS, MAX_RSA_BITS, MIN_RSA_BITS, key_err};
use crate::assertion::{AssertionSigner, JwsAlgorithm};
use crate::entropy::Entropy;
use crate::error::Error;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p384::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use sha2::Sha384;
use std::fmt;

#[derive(Clone)]
pub(super) enum Inner {
    Es384(p384::ecdsa::SigningKey),
    Rs384(Box<rsa::pkcs1v15::SigningKey<Sha384>>),
}

/// A client's private signing key for `client_assertion` JWTs: ES384 (ECDSA P-384) or RS384
/// (RSASSA-PKCS1-v1_5 SHA-384, modulus 2048..=8192 bits), with its JWS `kid`.
///
/// `Debug` shows `alg` and `kid` only. Cloning copies the key (both copies zeroize on drop).
#[derive(Clone)]
pub struct SigningKey {
    inner: Inner,
    pub(super) public: PublicMembers,
    pub(super) kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm().as_str())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub(super) fn from_p384(
        key: p384::ecdsa::SigningKey,
        kid: Option<&str>,
    ) -> Result<Self, Error> {
        let point = key.verifying_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(key_err("P-384 public key is the identity point"));
        };
        let public = PublicMembers::Ec {
            x: URL_SAFE_NO_PAD.encode(x),
            y: URL_SAFE_NO_PAD.encode(y),
        };
        Self::finish(Inner::Es384(key), public, kid)
    }

    pub(super) fn from_rsa(key: RsaPrivateKey, kid: Option<&str>) -> Result<Self, Error> {
        let bits = key.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(key_err(format!(
                "RSA key is {bits} bits; at least {MIN_RSA_BITS} bits are required"
            )));
        }
        if bits > MAX_RSA_BITS {
            return Err(key_err(format!(
                "RSA key is {bits} bits; at most {MAX_RSA_BITS} bits are supported"
            )));
        }
        let public = PublicMembers::Rsa {
            n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        };
        Self::finish(
            Inner::Rs384(Box::new(rsa::pkcs1v15::SigningKey::new(key))),
            public,
            kid,
        )
    }

    fn finish(inner: Inner, public: PublicMembers, kid: Option<&str>) -> Result<Self, Error> {
        let kid = match kid {
            Some("") => return Err(Error::Config("`kid` must not be empty".into())),
            Some(k) => k.to_owned(),
            None => thumbprint_of_members(&public),
        };
        Ok(Self { inner, public, kid })
    }

    /// Load a private key from PEM text (RFC 7468):
    ///
    /// - PKCS#8 `PRIVATE KEY` holding an EC P-384 or RSA key,
    /// - SEC1 `EC PRIVATE KEY` (P-384; a preceding `EC PARAMETERS` block, as written by
    ///   `openssl ecparam -genkey`, is skipped),
    /// - PKCS#1 `RSA PRIVATE KEY`.
    ///
    /// Other blocks in the same text (e.g. a `CERTIFICATE` next to the key) are ignored as long
    /// as there is exactly one private key. The `kid` is `kid` when given, else the RFC 7638
    /// thumbprint of the public key ([`thumbprint`](Self::thumbprint)).
    ///
    /// # Errors
    /// [`Error::Key`] with a message naming the problem (never any key bytes): no PEM block,
    /// bad base64 or DER, a certificate or public key instead of a private key, an encrypted
    /// key (`ENCRYPTED PRIVATE KEY` or `Proc-Type: 4,ENCRYPTED`), a curve other than P-384,
    /// another algorithm (Ed25519, DSA, …), an RSA modulus outside 2048..=8192 bits, or several
    /// private keys. [`Error::Config`] if `kid` is `Some("")`.
    pub fn from_pem(pem: &str, kid: Option<&str>) -> Result<Self, Error> {
        let blocks = pem_blocks(pem)?;
        if blocks.is_empty() {
            let hint = if pem.trim_start().starts_with('{') {
                " (this looks like JSON: use SigningKey::from_jwk)"
            } else {
                ""
            };
            return Err(key_err(format!(
                "no PEM block found; expected `-----BEGIN PRIVATE KEY-----`{hint}"
            )));
        }
        let private: Vec<&PemBlock> = blocks
            .iter()
            .filter(|b| b.label.ends_with("PRIVATE KEY"))
            .collect();
        let block = match private.as_slice() {
            [one] => *one,
            [] => return Err(key_err(describe_non_private(&blocks))),
            many => {
                return Err(key_err(format!(
                    "PEM text contains {} private keys; supply exactly one",
                    many.len()
                )));
            }
        };
        if block.encrypted || block.label == "ENCRYPTED PRIVATE KEY" {
            return Err(key_err(
                "encrypted private keys are not supported; decrypt it first \
                 (e.g. `openssl pkcs8 -topk8 -nocrypt`)",
            ));
        }
        let der = STANDARD
            .decode(block.body.as_bytes())
            .map_err(|_| key_err(format!("PEM block `{}` is not valid base64", block.label)))?;
        match block.label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der, kid),
            "EC PRIVATE KEY" => Self::from_sec1_der(&der, kid),
            "RSA PRIVATE KEY" => {
                let key = RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| {
                    key_err("`RSA PRIVATE KEY` is not a valid PKCS#1 RSA private key")
                })?;
                Self::from_rsa(key, kid)
            }
            "OPENSSH PRIVATE KEY" => Err(key_err(
                "OpenSSH private key format is not supported; convert it to PKCS#8 \
                 (`ssh-keygen -p -m PKCS8 -f KEY`)",
            )),
            other => Err(key_err(format!("unsupported PEM label `{other}`"))),
        }
    }

    /// Load a PKCS#8 `PrivateKeyInfo` (RFC 5958) in DER form: EC P-384 or RSA.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem).
    pub fn from_pkcs8_der(der: &[u8], kid: Option<&str>) -> Result<Self, Error> {
        let info = p384::pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|_| key_err("`PRIVATE KEY` is not a valid PKCS#8 structure"))?;
        let alg = info.algorithm.oid.to_string();
        match alg.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve = info.algorithm.parameters_oid().map(|o| o.to_string()).ok();
                check_curve(curve.as_deref())?;
                let secret = p384::SecretKey::from_pkcs8_der(der)
                    .map_err(|_| key_err("PKCS#8 EC P-384 private key is malformed"))?;
                Self::from_p384(secret.into(), kid)
            }
            OID_RSA_ENCRYPTION => {
                let key = RsaPrivateKey::from_pkcs8_der(der)
                    .map_err(|_| key_err("PKCS#8 RSA private key is malformed or inconsistent"))?;
                Self::from_rsa(key, kid)
            }
            other => Err(key_err(format!(
                "unsupported key algorithm {} in PKCS#8; SMART assertions need an EC P-384 \
                 (ES384) or RSA (RS384) key",
                algorithm_name(other)
            ))),
        }
    }

    fn from_sec1_der(der: &[u8], kid: Option<&str>) -> Result<Self, Error> {
        let (scalar_len, curve) = sec1_shape(der)
            .map_err(|_| key_err("`EC PRIVATE KEY` is not a valid SEC1 EC private key"))?;
        match curve {
            Some(c) => check_curve(Some(&c))?,
            // No curve named: fall back on the scalar length (48 bytes for P-384).
            None if scalar_len != 48 => {
                return Err(key_err(format!(
                    "`EC PRIVATE KEY` names no curve and its {}-bit scalar is not P-384",
                    scalar_len * 8
                )));
            }
            None => {}
        }
        let secret = p384::SecretKey::from_sec1_der(der)
            .map_err(|_| key_err("SEC1 P-384 private key is malformed or inconsistent"))?;
        Self::from_p384(secret.into(), kid)
    }

    /// Generate a new key: `ES384` → P-384, `RS384` → RSA 2048 bits (e = 65537). All
    /// randomness comes from `entropy`. `kid` defaults to the RFC 7638 thumbprint.
    ///
    /// RSA generation takes from tens of milliseconds to a few seconds; P-384 is instant.
    ///
    /// # Errors
    /// [`Error::Entropy`] if the source fails; [`Error::Config`] if `kid` is `Some("")`.
    pub fn generate(
        alg: JwsAlgorithm,
        kid: Option<&str>,
        entropy: &dyn Entropy,
    ) -> Result<Self, Error> {
        let mut rng = EntropyRng::new(entropy);
        match alg {
            JwsAlgorithm::Es384 => {
                let key = p384::ecdsa::SigningKey::random(&mut rng);
                rng.check()?;
                Self::from_p384(key, kid)
            }
            JwsAlgorithm::Rs384 => {
                let key = RsaPrivateKey::new(&mut rng, GENERATED_RSA_BITS);
                rng.check()?;
                let key = key.map_err(|_| key_err("RSA key generation failed"))?;
                Self::from_rsa(key, kid)
            }
        }
    }

    /// Export the private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, LF line endings),
    /// for storing a generated key. [`from_pem`](Self::from_pem) reads it back (the `kid` is
    /// not part of PKCS#8: keep it alongside, or rely on the thumbprint default).
    ///
    /// # Errors
    /// [`Error::Key`] if encoding fails (not expected for a valid key).
    pub fn to_pkcs8_pem(&self) -> Result<PrivateKeyPem, Error> {
        let pem = match &self.inner {
            Inner::Es384(k) => k.to_pkcs8_pem(LineEnding::LF),
            Inner::Rs384(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|_| key_err("PKCS#8 encoding failed"))?;
        Ok(PrivateKeyPem(pem))
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> JwsAlgorithm {
        match self.inner {
            Inner::Es384(_) => JwsAlgorithm::Es384,
            Inner::Rs384(_) => JwsAlgorithm::Rs384,
        }
    }

    /// The `kid` placed in assertion headers and the public JWK.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The same key under another `kid`.
    ///
    /// # Errors
    /// [`Error::Config`] if `kid` is empty.
    pub fn with_kid(mut self, kid: &str) -> Result<Self, Error> {
        if kid.is_empty() {
            return Err(Error::Config("`kid` must not be empty".into()));
        }
        kid.clone_into(&mut self.kid);
        Ok(self)
    }
}

impl AssertionSigner for SigningKey {
    fn algorithm(&self) -> JwsAlgorithm {
        SigningKey::algorithm(self)
    }

    fn key_id(&self) -> &str {
        &self.kid
    }

    /// ES384: deterministic ECDSA (RFC 6979), 96-byte `R||S`; `entropy` is not used.
    /// RS384: PKCS#1 v1.5 with RSA blinding drawn from `entropy` (the signature bytes do not
    /// depend on it).
    fn sign(&self, signing_input: &[u8], entropy: &dyn Entropy) -> Result<Vec<u8>, Error> {
        match &self.inner {
            Inner::Es384(k) => {
                let sig: p384::ecdsa::Signature = k
                    .try_sign(signing_input)
                    .map_err(|_| key_err("ES384 signing failed"))?;
                Ok(sig.to_bytes().to_vec())
            }
            Inner::Rs384(k) => {
                let mut rng = EntropyRng::new(entropy);
                let sig = k.try_sign_with_rng(&mut rng, signing_input);
                rng.check()?;
                let sig = sig.map_err(|_| key_err("RS384 signing failed"))?;
                Ok(sig.to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DeterministicEntropy;

    #[derive(Debug)]
    struct Broken;
    impl Entropy for Broken {
        fn fill(&self, _: &mut [u8]) -> Result<(), Error> {
            Err(Error::Entropy)
        }
    }

    #[test]
    fn entropy_failure_is_reported_not_ignored() {
        assert_eq!(
            SigningKey::generate(JwsAlgorithm::Es384, None, &Broken).unwrap_err(),
            Error::Entropy
        );
        // RS384 blinding draws from the entropy too: a failure is an error, not a silent
        // unblinded signature.
        let rsa = SigningKey::from_pem(
            include_str!("../../tests/fixtures/keys/rsa-2048-pkcs8.pem"),
            Some("k1"),
        )
        .unwrap();
        assert_eq!(rsa.sign(b"input", &Broken).unwrap_err(), Error::Entropy);
        assert_eq!(
            SigningKey::generate(JwsAlgorithm::Rs384, None, &Broken).unwrap_err(),
            Error::Entropy
        );
        assert_eq!(
            rsa.sign(b"input", &DeterministicEntropy::new(0))
                .unwrap()
                .len(),
            256
        );
    }
}
