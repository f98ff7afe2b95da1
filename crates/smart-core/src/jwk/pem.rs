//! PEM text (RFC 7468) and DER structure helpers for private keys, and [`PrivateKeyPem`].

use super::key_err;
use crate::error::Error;
use crate::secret::constant_time_eq;
use p384::elliptic_curve::zeroize::Zeroizing;
use p384::pkcs8::der::{Decode as _, Reader as _};
use std::fmt;

pub(super) const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
pub(super) const OID_SECP384R1: &str = "1.3.132.0.34";
pub(super) const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// A PEM-encoded private key (PKCS#8 `-----BEGIN PRIVATE KEY-----`, RFC 5958 / RFC 7468), as
/// exported by [`SigningKey::to_pkcs8_pem`](super::SigningKey::to_pkcs8_pem). Also reachable as `secret::PrivateKeyPem`.
///
/// Like the types in [`secret`](crate::secret) it prints as `PrivateKeyPem([redacted])` under
/// `Debug`, has no `Display` and compares in constant time; in addition its buffer is zeroized
/// when dropped.
#[derive(Clone)]
pub struct PrivateKeyPem(pub(super) Zeroizing<String>);

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

pub(super) fn check_curve(oid: Option<&str>) -> Result<(), Error> {
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

pub(super) fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256 (prime256v1)".into(),
        "1.3.132.0.35" => "P-521 (secp521r1)".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        "1.3.132.0.33" => "P-224 (secp224r1)".into(),
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)".into(),
        other => format!("with OID {other}"),
    }
}

pub(super) fn algorithm_name(oid: &str) -> String {
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
pub(super) fn sec1_shape(der: &[u8]) -> Result<(usize, Option<String>), p384::pkcs8::der::Error> {
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

pub(super) struct PemBlock {
    pub(super) label: String,
    pub(super) encrypted: bool,
    pub(super) body: String,
}

/// Split PEM text into its blocks. Text outside blocks (OpenSSL's "Bag Attributes" etc.) is
/// ignored; RFC 1421 headers inside a block are skipped (and `Proc-Type: 4,ENCRYPTED` noted).
pub(super) fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, Error> {
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

pub(super) fn describe_non_private(blocks: &[PemBlock]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
