//! [`SigningKey`]: loading from PEM and DER, generation, the `kid`, signing and PKCS#8 export.

use super::der::{self, KeyMaterial};
use super::ec_key::{EcKey, EcPoint};
use super::key_err;
use super::pem::{self, PrivateKeyPem};
use super::public::{PublicMembers, thumbprint_of_members};
use super::rng::EntropyRng;
use super::rsa_key::{self, RsaKey};
use crate::assertion::{AssertionSigner, JwsAlgorithm};
use crate::entropy::Entropy;
use crate::error::Error;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p384::elliptic_curve::Generate as _;
use p384::elliptic_curve::sec1::ToSec1Point as _;
use p384::elliptic_curve::zeroize::Zeroizing;
use std::fmt;

/// The ready-to-sign key.
#[derive(Clone)]
enum Inner {
    Es384(EcKey),
    Rs384(RsaKey),
}

/// A client's private signing key for `client_assertion` JWTs (RFC 7523): ES384 (ECDSA P-384,
/// RFC 7518 §3.4) or RS384 (RSASSA-PKCS1-v1_5 SHA-384, RFC 7518 §3.3; modulus 2048..=8192
/// bits), with its JWS `kid`.
///
/// The key is parsed and checked once, when it is loaded or generated; signing reuses the
/// parsed form. `Debug` shows `alg` and `kid` only. Clones share nothing mutable; key buffers
/// are zeroized when the last copy is dropped.
#[derive(Clone)]
pub struct SigningKey {
    inner: Inner,
    public: PublicMembers,
    kid: String,
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
    fn new(inner: Inner, public: PublicMembers) -> Self {
        let kid = thumbprint_of_members(&public);
        Self { inner, public, kid }
    }

    /// A P-384 key from its scalar `d` (big-endian, 24..=48 bytes); `public`, when the encoding
    /// carried the public point (SEC1 octets), must match. `malformed` is the error message for
    /// an invalid scalar.
    pub(super) fn from_ec(d: &[u8], public: Option<&[u8]>, malformed: &str) -> Result<Self, Error> {
        let secret = p384::SecretKey::from_slice(d).map_err(|_| key_err(malformed))?;
        let (key, point) = EcKey::new(&secret)?;
        if let Some(given) = public
            && !same_point(given, &point)
        {
            return Err(key_err(
                "the EC public key stored with the private key does not match it",
            ));
        }
        Ok(Self::new(Inner::Es384(key), PublicMembers::ec(&point)))
    }

    /// An RSA key from PKCS#1 `RSAPrivateKey` DER; `malformed` is the error message when it
    /// does not decode or its members are inconsistent.
    pub(super) fn from_rsa_pkcs1(pkcs1: &[u8], malformed: &str) -> Result<Self, Error> {
        let parts = der::rsa_public_parts(pkcs1, malformed)?;
        let key = RsaKey::from_pkcs1_der(pkcs1, malformed)?;
        let public = PublicMembers::Rsa {
            n: URL_SAFE_NO_PAD.encode(&parts.n),
            e: URL_SAFE_NO_PAD.encode(&parts.e),
        };
        Ok(Self::new(Inner::Rs384(key), public))
    }

    /// Load a private key from PEM text (RFC 7468):
    ///
    /// - PKCS#8 `PRIVATE KEY` holding an EC P-384 or RSA key,
    /// - SEC1 `EC PRIVATE KEY` (P-384; a preceding `EC PARAMETERS` block, as written by
    ///   `openssl ecparam -genkey`, is skipped),
    /// - PKCS#1 `RSA PRIVATE KEY`.
    ///
    /// Other blocks in the same text (e.g. a `CERTIFICATE` next to the key) are ignored as long
    /// as there is exactly one private key. The `kid` is taken from a `kid: <value>` line of
    /// explanatory text outside the blocks (RFC 7468 §5.2; the value bare, or a JSON string),
    /// as written by [`to_pkcs8_pem_with_kid`](Self::to_pkcs8_pem_with_kid); without one it is
    /// the RFC 7638 thumbprint of the public key ([`thumbprint`](Self::thumbprint)). Override
    /// it with [`with_kid`](Self::with_kid).
    ///
    /// # Errors
    /// [`Error::Key`] with a message naming the problem (never any key bytes): no PEM block,
    /// bad base64 or DER, a certificate or public key instead of a private key, an encrypted
    /// key (`ENCRYPTED PRIVATE KEY` or `Proc-Type: 4,ENCRYPTED`), a curve other than P-384,
    /// another algorithm (Ed25519, DSA, …), an RSA modulus outside 2048..=8192 bits, several
    /// private keys, several or empty `kid:` lines, or an RSA key while no RSA backend is
    /// compiled in (the message names the Cargo feature to enable).
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let text = pem::parse(pem)?;
        if text.blocks.is_empty() {
            let hint = if pem.trim_start().starts_with('{') {
                " (this looks like JSON: use SigningKey::from_jwk)"
            } else {
                ""
            };
            return Err(key_err(format!(
                "no PEM block found; expected `-----BEGIN PRIVATE KEY-----`{hint}"
            )));
        }
        let private: Vec<&pem::PemBlock> = text
            .blocks
            .iter()
            .filter(|b| b.label.ends_with("PRIVATE KEY"))
            .collect();
        let block = match private.as_slice() {
            [one] => *one,
            [] => return Err(key_err(pem::describe_non_private(&text.blocks))),
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
            .map(Zeroizing::new)
            .map_err(|_| key_err(format!("PEM block `{}` is not valid base64", block.label)))?;
        let key = match block.label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der)?,
            "EC PRIVATE KEY" => Self::from_material(
                der::sec1(&der)?,
                "SEC1 P-384 private key is malformed or inconsistent",
            )?,
            "RSA PRIVATE KEY" => Self::from_rsa_pkcs1(
                &der,
                "`RSA PRIVATE KEY` is not a valid PKCS#1 RSA private key",
            )?,
            "OPENSSH PRIVATE KEY" => {
                return Err(key_err(
                    "OpenSSH private key format is not supported; convert it to PKCS#8 \
                     (`ssh-keygen -p -m PKCS8 -f KEY`)",
                ));
            }
            other => return Err(key_err(format!("unsupported PEM label `{other}`"))),
        };
        match text.kid {
            Some(kid) => key.with_kid(&kid),
            None => Ok(key),
        }
    }

    /// Load a PKCS#8 `PrivateKeyInfo` (RFC 5958) in DER form: EC P-384 or RSA. The `kid` is
    /// the RFC 7638 thumbprint; override it with [`with_kid`](Self::with_kid).
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        Self::from_material(
            der::pkcs8(der)?,
            "PKCS#8 RSA private key is malformed or inconsistent",
        )
    }

    fn from_material(material: KeyMaterial<'_>, rsa_malformed: &str) -> Result<Self, Error> {
        match material {
            KeyMaterial::Ec { d, public } => {
                Self::from_ec(d, public, "EC private key is not a valid P-384 key")
            }
            KeyMaterial::Rsa { pkcs1 } => Self::from_rsa_pkcs1(pkcs1, rsa_malformed),
        }
    }

    /// Generate a new key: `ES384` → P-384, `RS384` → RSA
    /// [`GENERATED_RSA_BITS`](super::GENERATED_RSA_BITS) bits (e = 65537). `kid` defaults to the
    /// RFC 7638 thumbprint.
    ///
    /// All randomness comes from `entropy`. RSA generation takes from tens of milliseconds to a
    /// few seconds; P-384 is instant.
    ///
    /// # Errors
    /// [`Error::Entropy`] if the source fails; [`Error::Config`] if `kid` is `Some("")`;
    /// [`Error::Key`] for `RS384` when no RSA backend is compiled in.
    pub fn generate(
        alg: JwsAlgorithm,
        kid: Option<&str>,
        entropy: &dyn Entropy,
    ) -> Result<Self, Error> {
        let key = match alg {
            JwsAlgorithm::Es384 => {
                let mut rng = EntropyRng::new(entropy);
                let secret = p384::SecretKey::generate_from_rng(&mut rng);
                rng.check()?;
                Self::from_ec(&secret.to_bytes(), None, "generated P-384 key was rejected")?
            }
            JwsAlgorithm::Rs384 => {
                let pkcs1 = rsa_key::generate(entropy)?;
                Self::from_rsa_pkcs1(&pkcs1, "generated RSA key was rejected")?
            }
        };
        match kid {
            Some(kid) => key.with_kid(kid),
            None => Ok(key),
        }
    }

    /// Export the private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, LF line endings)
    /// and nothing else, for tools that expect the text to start with the BEGIN line. The
    /// `kid` is not included: see [`to_pkcs8_pem_with_kid`](Self::to_pkcs8_pem_with_kid).
    ///
    /// # Errors
    /// [`Error::Key`] if encoding fails (not expected for a valid key).
    pub fn to_pkcs8_pem(&self) -> Result<PrivateKeyPem, Error> {
        pem::encode_private_key(&self.to_pkcs8_der()?, None)
    }

    /// As [`to_pkcs8_pem`](Self::to_pkcs8_pem), preceded by one line of RFC 7468 §5.2
    /// explanatory text carrying the `kid` (`kid: my-key-1`; a JSON string when the `kid` has
    /// surrounding white space, a leading `"` or control characters), so that
    /// [`from_pem`](Self::from_pem) restores the same `kid`. OpenSSL and most PEM readers skip
    /// such text.
    ///
    /// # Errors
    /// [`Error::Key`] if encoding fails (not expected for a valid key).
    pub fn to_pkcs8_pem_with_kid(&self) -> Result<PrivateKeyPem, Error> {
        pem::encode_private_key(&self.to_pkcs8_der()?, Some(&self.kid))
    }

    fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        match &self.inner {
            Inner::Es384(k) => k.to_pkcs8_der(),
            Inner::Rs384(k) => k.to_pkcs8_der(),
        }
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

    /// The same key under another `kid` (RFC 7515 §4.1.4): use it to override the `kid` stored
    /// with the key or the thumbprint default.
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

    /// The public members, for the JWK export.
    pub(super) fn public_members(&self) -> &PublicMembers {
        &self.public
    }
}

/// Whether SEC1 octets `given` (compressed or not) encode `point`.
fn same_point(given: &[u8], point: &EcPoint) -> bool {
    p384::PublicKey::from_sec1_bytes(given).is_ok_and(|p| {
        let encoded = p.to_sec1_point(false);
        encoded.x().map(|x| x.as_slice()) == Some(point.x.as_slice())
            && encoded.y().map(|y| y.as_slice()) == Some(point.y.as_slice())
    })
}

impl AssertionSigner for SigningKey {
    fn algorithm(&self) -> JwsAlgorithm {
        SigningKey::algorithm(self)
    }

    fn key_id(&self) -> &str {
        &self.kid
    }

    /// ES384: 96-byte `R||S`; RS384: PKCS#1 v1.5, as long as the modulus. See the module
    /// documentation for how each backend uses `entropy`.
    fn sign(&self, signing_input: &[u8], entropy: &dyn Entropy) -> Result<Vec<u8>, Error> {
        match &self.inner {
            Inner::Es384(k) => k.sign(signing_input, entropy),
            Inner::Rs384(k) => k.sign(signing_input, entropy),
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
        if cfg!(feature = "rsa") {
            assert_eq!(
                SigningKey::generate(JwsAlgorithm::Rs384, None, &Broken).unwrap_err(),
                Error::Entropy
            );
        }
        if cfg!(all(feature = "rsa", not(feature = "aws-lc-rs"))) {
            // The `rsa` backend's blinding draws from the entropy too: a failure is an error,
            // not a silent unblinded signature. (AWS-LC blinds from its own generator.)
            let rsa =
                SigningKey::from_pem(include_str!("../../tests/fixtures/keys/rsa-2048-pkcs8.pem"))
                    .unwrap();
            assert_eq!(rsa.sign(b"input", &Broken).unwrap_err(), Error::Entropy);
            let sig = rsa.sign(b"input", &DeterministicEntropy::new(0)).unwrap();
            assert_eq!(sig.len(), 256);
        }
    }

    #[test]
    fn k01_kid_survives_the_pem_round_trip() {
        let key = SigningKey::generate(
            JwsAlgorithm::Es384,
            Some("my-key-1"),
            &DeterministicEntropy::new(4),
        )
        .unwrap();
        let pem = key.to_pkcs8_pem_with_kid().unwrap();
        assert!(
            pem.secret()
                .starts_with("kid: my-key-1\n-----BEGIN PRIVATE KEY-----\n")
        );
        let back = SigningKey::from_pem(pem.secret()).unwrap();
        assert_eq!(back.kid(), "my-key-1");
        assert_eq!(back.thumbprint(), key.thumbprint());
        // An explicit override still wins.
        assert_eq!(back.with_kid("other").unwrap().kid(), "other");
        // Without the line: the thumbprint.
        let bare = SigningKey::from_pem(key.to_pkcs8_pem().unwrap().secret()).unwrap();
        assert_eq!(bare.kid(), key.thumbprint());
    }
}
