//! Private key loading (PEM, JWK), key generation, and public JWK / JWKS export for
//! `client-confidential-asymmetric` clients and Backend Services (SMART App Launch
//! §"Registering a client (communicating public keys)", spec digest §4.1, ASYM-01..ASYM-05).
//!
//! A [`SigningKey`] is an ES384 (P-384) or RS384 (RSA ≥ 2048 bits) private key plus its `kid`.
//! It implements [`AssertionSigner`], so it plugs straight into
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
//!   from the injected [`Entropy`]; prefer `ES384` where the server supports it.

use crate::assertion::{AssertionSigner, JwsAlgorithm};
use crate::entropy::Entropy;
use crate::error::{Document, Error, KeyError, ParseError};
use crate::secret::constant_time_eq;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use p384::elliptic_curve::zeroize::Zeroizing;
use p384::pkcs8::der::{Decode as _, Reader as _};
use p384::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384};
use std::fmt;

/// The smallest RSA modulus accepted, in bits (NIST SP 800-131A; the IG's sample key is 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (common verifiers, e.g. `ring`, stop at 8192).
pub const MAX_RSA_BITS: usize = 8192;
/// The modulus size [`SigningKey::generate`] uses for `RS384`, in bits.
pub const GENERATED_RSA_BITS: usize = 2048;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_SECP384R1: &str = "1.3.132.0.34";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// base64url that tolerates (but does not require) `=` padding when decoding JWK members.
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Clone)]
enum Inner {
    Es384(p384::ecdsa::SigningKey),
    Rs384(Box<rsa::pkcs1v15::SigningKey<Sha384>>),
}

/// Public members, base64url without padding, computed once at construction.
#[derive(Clone, PartialEq, Eq)]
enum PublicMembers {
    Ec { x: String, y: String },
    Rsa { n: String, e: String },
}

/// A client's private signing key for `client_assertion` JWTs: ES384 (ECDSA P-384) or RS384
/// (RSASSA-PKCS1-v1_5 SHA-384, modulus 2048..=8192 bits), with its JWS `kid`.
///
/// `Debug` shows `alg` and `kid` only. Cloning copies the key (both copies zeroize on drop).
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

/// A PEM-encoded private key (PKCS#8 `-----BEGIN PRIVATE KEY-----`, RFC 5958 / RFC 7468), as
/// exported by [`SigningKey::to_pkcs8_pem`]. Also reachable as `secret::PrivateKeyPem`.
///
/// Like the types in [`secret`](crate::secret) it prints as `PrivateKeyPem([redacted])` under
/// `Debug`, has no `Display` and compares in constant time; in addition its buffer is zeroized
/// when dropped.
#[derive(Clone)]
pub struct PrivateKeyPem(Zeroizing<String>);

impl PrivateKeyPem {
    /// Wrap PEM text (the buffer is zeroized when this value is dropped).
    pub fn new(pem: impl Into<String>) -> Self {
        Self(Zeroizing::new(pem.into()))
    }

    /// The PEM text.
    ///
    /// # Security
    /// This is the private key: whoever holds it can authenticate as the client. Write it only
    /// to protected storage (ASYM-01: "protect the private key"); never log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem([redacted])")
    }
}

impl PartialEq for PrivateKeyPem {
    /// Constant-time comparison of the SHA-256 digests of both values.
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for PrivateKeyPem {}

fn key_err(msg: impl Into<String>) -> Error {
    Error::Key(KeyError::new(msg))
}

impl SigningKey {
    fn from_p384(key: p384::ecdsa::SigningKey, kid: Option<&str>) -> Result<Self, Error> {
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

    fn from_rsa(key: RsaPrivateKey, kid: Option<&str>) -> Result<Self, Error> {
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

    /// Load a private JWK (RFC 7517/7518), or a JWK Set containing exactly one private key
    /// (an entry with `d`). The IG's `ES384.private.json` / `RS384.private.json` files hold the
    /// public and the private entry under the same `kid`; the private one is picked.
    ///
    /// EC keys must be `"crv":"P-384"`; when `x`/`y` are present they must match `d`. RSA keys
    /// need `n`, `e`, `d`; `p`/`q` are optional (recovered from `d` when absent). An `alg`
    /// member, if present, must be `ES384` (EC) or `RS384` (RSA); `"use":"enc"` is refused.
    /// The `kid` is the JWK's `kid`, else its RFC 7638 thumbprint.
    ///
    /// # Errors
    /// [`Error::Key`] naming the problem (never quoting member values): invalid JSON, no
    /// private entry (a public JWK/JWKS), several private entries, a missing or non-base64url
    /// member, an unsupported `kty`/`crv`/`alg`, mismatched public and private members, or an
    /// RSA modulus outside 2048..=8192 bits.
    pub fn from_jwk(jwk_json: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(jwk_json).map_err(|e| {
            key_err(format!(
                "JWK is not valid JSON: {}",
                ParseError::from_json(Document::Jwk, &e).message
            ))
        })?;
        let Some(obj) = value.as_object() else {
            return Err(key_err("JWK must be a JSON object"));
        };
        let jwk = match obj.get("keys") {
            Some(keys) => {
                let Some(keys) = keys.as_array() else {
                    return Err(key_err("JWK Set member `keys` must be an array"));
                };
                let private: Vec<&serde_json::Value> =
                    keys.iter().filter(|k| k.get("d").is_some()).collect();
                match private.as_slice() {
                    [one] => one
                        .as_object()
                        .ok_or_else(|| key_err("JWK Set entry must be an object"))?,
                    [] => {
                        return Err(key_err(
                            "JWK Set contains no private key (no entry has `d`); a public JWKS \
                             cannot sign",
                        ));
                    }
                    many => {
                        return Err(key_err(format!(
                            "JWK Set contains {} private keys; supply exactly one",
                            many.len()
                        )));
                    }
                }
            }
            None => obj,
        };
        Self::from_jwk_object(jwk)
    }

    fn from_jwk_object(jwk: &serde_json::Map<String, serde_json::Value>) -> Result<Self, Error> {
        let member = |name: &str| -> Result<Option<&str>, Error> {
            match jwk.get(name) {
                None => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(key_err(format!("JWK member `{name}` must be a string"))),
            }
        };
        let bytes = |name: &str| -> Result<Option<Vec<u8>>, Error> {
            member(name)?
                .map(|s| {
                    B64URL_LENIENT
                        .decode(s)
                        .map_err(|_| key_err(format!("JWK member `{name}` is not base64url")))
                })
                .transpose()
        };
        let required = |name: &str| -> Result<Vec<u8>, Error> {
            bytes(name)?.ok_or_else(|| key_err(format!("JWK is missing `{name}`")))
        };
        if jwk.get("d").is_none() {
            return Err(key_err(
                "JWK has no `d`: it is a public key; a private key is required",
            ));
        }
        if member("use")? == Some("enc") {
            return Err(key_err(
                "JWK has `\"use\":\"enc\"`; a signing key is required",
            ));
        }
        let kid = member("kid")?.filter(|k| !k.is_empty());
        let alg = member("alg")?;
        match member("kty")? {
            Some("EC") => {
                check_jwk_alg(alg, JwsAlgorithm::Es384)?;
                match member("crv")? {
                    Some("P-384") => {}
                    Some(other) => {
                        return Err(key_err(format!(
                            "unsupported curve `{other}`; SMART ES384 needs P-384"
                        )));
                    }
                    None => return Err(key_err("EC JWK is missing `crv`")),
                }
                let d = zeroizing(required("d")?);
                if d.len() != 48 {
                    return Err(key_err(format!(
                        "EC JWK `d` is {} bytes; P-384 needs 48",
                        d.len()
                    )));
                }
                let secret = p384::SecretKey::from_slice(&d)
                    .map_err(|_| key_err("EC JWK `d` is not a valid P-384 scalar"))?;
                let key = Self::from_p384(secret.into(), kid)?;
                if let PublicMembers::Ec { x, y } = &key.public {
                    for (name, ours) in [("x", x), ("y", y)] {
                        if let Some(given) = bytes(name)?
                            && URL_SAFE_NO_PAD.encode(given) != *ours
                        {
                            return Err(key_err(format!(
                                "EC JWK `{name}` does not match its private key `d`"
                            )));
                        }
                    }
                }
                Ok(key)
            }
            Some("RSA") => {
                check_jwk_alg(alg, JwsAlgorithm::Rs384)?;
                let n = BigUint::from_bytes_be(&required("n")?);
                let e = BigUint::from_bytes_be(&required("e")?);
                let d = BigUint::from_bytes_be(&zeroizing(required("d")?));
                let primes = match (bytes("p")?, bytes("q")?) {
                    (Some(p), Some(q)) => vec![
                        BigUint::from_bytes_be(&zeroizing(p)),
                        BigUint::from_bytes_be(&zeroizing(q)),
                    ],
                    (None, None) => Vec::new(),
                    _ => return Err(key_err("RSA JWK has only one of `p` and `q`")),
                };
                if n.bits() < MIN_RSA_BITS || n.bits() > MAX_RSA_BITS {
                    return Err(key_err(format!(
                        "RSA key is {} bits; {MIN_RSA_BITS}..={MAX_RSA_BITS} bits are supported",
                        n.bits()
                    )));
                }
                let key = RsaPrivateKey::from_components(n, e, d, primes).map_err(|_| {
                    key_err("RSA JWK members are inconsistent (n, e, d, p, q do not form a key)")
                })?;
                Self::from_rsa(key, kid)
            }
            Some(other) => Err(key_err(format!(
                "unsupported JWK key type `{other}`; SMART assertions need `EC` (P-384) or `RSA`"
            ))),
            None => Err(key_err("JWK is missing `kty`")),
        }
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

    /// The public JWK to register with the server (ASYM-04): `kty`, `crv`/`x`/`y` (EC) or
    /// `n`/`e` (RSA), plus `kid`, `alg`, `"use":"sig"` and `"key_ops":["verify"]`. Never any
    /// private member.
    pub fn public_jwk(&self) -> serde_json::Value {
        let mut v = match &self.public {
            PublicMembers::Ec { x, y } => {
                serde_json::json!({ "kty": "EC", "crv": "P-384", "x": x, "y": y })
            }
            PublicMembers::Rsa { n, e } => serde_json::json!({ "kty": "RSA", "n": n, "e": e }),
        };
        if let Some(obj) = v.as_object_mut() {
            obj.insert("kid".into(), self.kid.clone().into());
            obj.insert("alg".into(), self.algorithm().as_str().into());
            obj.insert("use".into(), "sig".into());
            obj.insert("key_ops".into(), serde_json::json!(["verify"]));
        }
        v
    }

    /// `{"keys":[public_jwk]}`: a JWK Set (RFC 7517 §5) for the registered JWKS URL or
    /// by-value registration (ASYM-01, ASYM-02). During key rotation, publish the old and new
    /// keys' `public_jwk`s together.
    pub fn public_jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// The RFC 7638 JWK thumbprint of the public key: base64url (no padding) of the SHA-256 of
    /// the canonical JSON of the required members (`crv`,`kty`,`x`,`y` or `e`,`kty`,`n`).
    /// 43 characters. Used as the default `kid`.
    pub fn thumbprint(&self) -> String {
        thumbprint_of_members(&self.public)
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

/// The RFC 7638 thumbprint (base64url SHA-256, 43 characters) of any public or private JWK with
/// `kty` `EC`, `RSA`, `OKP` or `oct`; only the required public members are hashed.
///
/// # Errors
/// [`Error::Key`] if `jwk` is not an object, has another `kty`, or lacks a required member.
pub fn jwk_thumbprint(jwk: &serde_json::Value) -> Result<String, Error> {
    let members: &[&str] = match jwk.get("kty").and_then(|k| k.as_str()) {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        Some("oct") => &["k", "kty"],
        Some(other) => {
            return Err(key_err(format!(
                "no RFC 7638 member list for `kty` `{other}`"
            )));
        }
        None => return Err(key_err("JWK has no string `kty`")),
    };
    let mut canonical = serde_json::Map::new();
    for m in members {
        let v = jwk
            .get(*m)
            .and_then(|v| v.as_str())
            .ok_or_else(|| key_err(format!("JWK is missing string member `{m}`")))?;
        canonical.insert((*m).to_owned(), v.into());
    }
    // serde_json's default map is ordered by key, which is exactly RFC 7638's lexicographic
    // order for these ASCII member names; no whitespace is emitted.
    let json = serde_json::Value::Object(canonical).to_string();
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes())))
}

fn thumbprint_of_members(public: &PublicMembers) -> String {
    // Members are base64url strings (no characters needing JSON escapes).
    let json = match public {
        PublicMembers::Ec { x, y } => {
            format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#)
        }
        PublicMembers::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

fn check_jwk_alg(alg: Option<&str>, ours: JwsAlgorithm) -> Result<(), Error> {
    match alg {
        None => Ok(()),
        Some(a) if a == ours.as_str() => Ok(()),
        Some(a) => Err(key_err(format!(
            "JWK `alg` is `{a}`, but {} keys sign {} here",
            ours.key_type(),
            ours.as_str()
        ))),
    }
}

fn check_curve(oid: Option<&str>) -> Result<(), Error> {
    match oid {
        Some(OID_SECP384R1) => Ok(()),
        Some(other) => Err(key_err(format!(
            "unsupported elliptic curve {}; SMART ES384 needs P-384 (secp384r1)",
            curve_name(other)
        ))),
        None => Err(key_err(
            "EC private key does not name its curve (P-384 required)",
        )),
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256 (prime256v1)".into(),
        "1.3.132.0.35" => "P-521 (secp521r1)".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        "1.3.132.0.33" => "P-224 (secp224r1)".into(),
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)".into(),
        other => format!("with OID {other}"),
    }
}

fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" => "X25519".into(),
        "1.3.101.111" => "X448".into(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS (RS384 needs an rsaEncryption key)".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        "1.2.840.10046.2.1" => "Diffie-Hellman".into(),
        other => format!("with OID {other}"),
    }
}

/// SEC1 `ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET STRING,
/// parameters [0] EXPLICIT OBJECT IDENTIFIER OPTIONAL, publicKey [1] BIT STRING OPTIONAL }`:
/// returns the scalar length and the named curve, if any.
fn sec1_shape(der: &[u8]) -> Result<(usize, Option<String>), p384::pkcs8::der::Error> {
    use p384::pkcs8::der::asn1::{BitStringRef, ObjectIdentifier, OctetStringRef};
    use p384::pkcs8::der::{SliceReader, TagMode, TagNumber};
    let mut reader = SliceReader::new(der)?;
    let shape = reader.sequence(|r| {
        let _version = u8::decode(r)?;
        let scalar = OctetStringRef::decode(r)?;
        let curve: Option<ObjectIdentifier> =
            r.context_specific(TagNumber::N0, TagMode::Explicit)?;
        let _public: Option<BitStringRef<'_>> =
            r.context_specific(TagNumber::N1, TagMode::Explicit)?;
        Ok((scalar.as_bytes().len(), curve.map(|c| c.to_string())))
    })?;
    reader.finish(shape)
}

struct PemBlock {
    label: String,
    encrypted: bool,
    body: String,
}

/// Split PEM text into its blocks. Text outside blocks (OpenSSL's "Bag Attributes" etc.) is
/// ignored; RFC 1421 headers inside a block are skipped (and `Proc-Type: 4,ENCRYPTED` noted).
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, Error> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut block = PemBlock {
            label: label.to_owned(),
            encrypted: false,
            body: String::new(),
        };
        let mut closed = false;
        for inner in lines.by_ref() {
            if inner == end {
                closed = true;
                break;
            }
            if inner.starts_with("-----") {
                break;
            }
            if let Some((name, value)) = inner.split_once(':') {
                if name.trim().eq_ignore_ascii_case("Proc-Type") && value.contains("ENCRYPTED") {
                    block.encrypted = true;
                }
                continue;
            }
            block.body.push_str(inner);
        }
        if !closed {
            return Err(key_err(format!(
                "PEM block `{label}` has no matching END line"
            )));
        }
        blocks.push(block);
    }
    Ok(blocks)
}

fn describe_non_private(blocks: &[PemBlock]) -> String {
    let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    if labels.contains(&"CERTIFICATE") || labels.contains(&"TRUSTED CERTIFICATE") {
        "PEM text is a certificate, not a private key; supply the private key".into()
    } else if labels.iter().any(|l| l.ends_with("PUBLIC KEY")) {
        "PEM text is a public key; a private key is required to sign".into()
    } else {
        format!(
            "PEM text contains no private key (found {})",
            labels.join(", ")
        )
    }
}

fn zeroizing(v: Vec<u8>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(v)
}

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
struct EntropyRng<'a> {
    entropy: &'a dyn Entropy,
    failed: bool,
    counter: u64,
}

impl<'a> EntropyRng<'a> {
    fn new(entropy: &'a dyn Entropy) -> Self {
        Self {
            entropy,
            failed: false,
            counter: 0,
        }
    }

    fn check(&self) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DeterministicEntropy;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1 example key and its published thumbprint.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert!(jwk_thumbprint(&serde_json::json!({"kty": "EC"})).is_err());
    }

    #[test]
    fn thumbprint_matches_generic_path() {
        let k =
            SigningKey::generate(JwsAlgorithm::Es384, None, &DeterministicEntropy::new(3)).unwrap();
        assert_eq!(jwk_thumbprint(&k.public_jwk()).unwrap(), k.thumbprint());
        assert_eq!(k.kid(), k.thumbprint());
        assert_eq!(k.thumbprint().len(), 43);
    }

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
            include_str!("../tests/fixtures/keys/rsa-2048-pkcs8.pem"),
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

    #[test]
    fn private_key_pem_debug_is_redacted() {
        let pem = PrivateKeyPem::new(
            "-----BEGIN PRIVATE KEY-----\nMIG2AgEA\n-----END PRIVATE KEY-----\n",
        );
        assert_eq!(format!("{pem:?}"), "PrivateKeyPem([redacted])");
        assert_eq!(pem, PrivateKeyPem::new(pem.secret()));
    }

    #[test]
    fn pem_splitter_handles_headers_and_noise() {
        let text = "Bag Attributes\n-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\nQUJD\n-----END X-----\n";
        let b = pem_blocks(text).unwrap();
        assert_eq!(b.len(), 1);
        assert!(b[0].encrypted);
        assert_eq!(b[0].body, "QUJD");
        assert!(pem_blocks("-----BEGIN X-----\nQUJD\n").is_err());
    }
}
