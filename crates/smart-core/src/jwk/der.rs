//! DER private-key structures, decoded with the RustCrypto `pkcs8`, `sec1` and `pkcs1` crates:
//! PKCS#8 `PrivateKeyInfo` (RFC 5958), SEC1 `ECPrivateKey` (RFC 5915) and PKCS#1
//! `RSAPrivateKey` (RFC 8017 A.1.2). Every backend loads keys through here, so the checks and
//! error messages are the same whichever does the arithmetic.

use super::{MAX_RSA_BITS, MIN_RSA_BITS, P384_BYTES, bit_length, key_err};
use crate::error::Error;
use pkcs8::der::Decode as _;
use pkcs8::der::asn1::ObjectIdentifier;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_SECP384R1: &str = "1.3.132.0.34";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// A decoded private key, borrowing from the DER it came from.
pub(super) enum KeyMaterial<'a> {
    /// A P-384 key: the private scalar as encoded (big-endian) and the public point when the
    /// encoding carries one (SEC1 `publicKey`).
    Ec {
        d: &'a [u8],
        public: Option<&'a [u8]>,
    },
    /// An RSA key: its PKCS#1 `RSAPrivateKey` DER.
    Rsa { pkcs1: &'a [u8] },
}

/// The public members and size of a two-prime PKCS#1 RSA private key.
pub(super) struct RsaPublicParts {
    /// The modulus, big-endian, no leading zeros.
    pub(super) n: Vec<u8>,
    /// The public exponent, big-endian, no leading zeros.
    pub(super) e: Vec<u8>,
}

/// Decode a PKCS#8 `PrivateKeyInfo` holding an EC P-384 or RSA key.
pub(super) fn pkcs8(der: &[u8]) -> Result<KeyMaterial<'_>, Error> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|_| key_err("`PRIVATE KEY` is not a valid PKCS#8 structure"))?;
    let alg = info.algorithm.oid.to_string();
    let private_key = info.private_key.as_bytes();
    match alg.as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = info.algorithm.parameters_oid().ok();
            check_curve(curve)?;
            let ec = sec1::EcPrivateKey::from_der(private_key)
                .map_err(|_| key_err("PKCS#8 EC P-384 private key is malformed"))?;
            if let Some(inner) = ec.parameters.and_then(|p| p.named_curve()) {
                check_curve(Some(inner))?;
            }
            Ok(KeyMaterial::Ec {
                d: ec.private_key,
                public: ec.public_key,
            })
        }
        OID_RSA_ENCRYPTION => Ok(KeyMaterial::Rsa { pkcs1: private_key }),
        other => Err(key_err(format!(
            "unsupported key algorithm {} in PKCS#8; SMART assertions need an EC P-384 \
             (ES384) or RSA (RS384) key",
            algorithm_name(other)
        ))),
    }
}

/// Decode a SEC1 `ECPrivateKey` (PEM label `EC PRIVATE KEY`). Without a named curve, a
/// 48-byte scalar is taken for P-384.
pub(super) fn sec1(der: &[u8]) -> Result<KeyMaterial<'_>, Error> {
    let ec = sec1::EcPrivateKey::from_der(der)
        .map_err(|_| key_err("`EC PRIVATE KEY` is not a valid SEC1 EC private key"))?;
    match ec.parameters.and_then(|p| p.named_curve()) {
        Some(curve) => check_curve(Some(curve))?,
        None if ec.private_key.len() != P384_BYTES => {
            return Err(key_err(format!(
                "`EC PRIVATE KEY` names no curve and its {}-bit scalar is not P-384",
                ec.private_key.len() * 8
            )));
        }
        None => {}
    }
    Ok(KeyMaterial::Ec {
        d: ec.private_key,
        public: ec.public_key,
    })
}

/// Decode a PKCS#1 `RSAPrivateKey` far enough to check its shape and size (two primes,
/// 2048..=8192-bit modulus) and return its public members; `malformed` is the error message
/// when it does not decode.
pub(super) fn rsa_public_parts(pkcs1: &[u8], malformed: &str) -> Result<RsaPublicParts, Error> {
    let key = pkcs1::RsaPrivateKeyRef::from_der(pkcs1).map_err(|_| key_err(malformed))?;
    if key.version() != pkcs1::Version::TwoPrime {
        return Err(key_err(
            "multi-prime RSA keys are not supported; use a two-prime key",
        ));
    }
    let n = key.modulus.as_bytes();
    check_rsa_bits(bit_length(n))?;
    Ok(RsaPublicParts {
        n: n.to_vec(),
        e: key.public_exponent.as_bytes().to_vec(),
    })
}

/// `bits` must lie in [`MIN_RSA_BITS`]`..=`[`MAX_RSA_BITS`].
pub(super) fn check_rsa_bits(bits: usize) -> Result<(), Error> {
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
    Ok(())
}

fn check_curve(oid: Option<ObjectIdentifier>) -> Result<(), Error> {
    match oid.map(|o| o.to_string()).as_deref() {
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
