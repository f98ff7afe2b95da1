//! Public-key import from a JWK Set and JWS signature verification for `id_token`s
//! (RFC 7517 §5, RFC 7518 §3.3 / §3.4 / §6; OpenID Connect Core 1.0 §10.1).
//!
//! Keys come only from the issuer's JWKS. A key is usable for a token's `alg` when its `kty`
//! (and `crv`) fit and its optional `alg`, `use` and `key_ops` allow it; RSA moduli must be
//! 2048..=8192 bits.

use super::{MAX_RSA_BITS, MIN_RSA_BITS, bit_length};
use crate::error::{Document, Error, IdTokenError, ParseError};
use crate::id_token::clean;
use base64::Engine as _;
#[cfg(not(feature = "aws-lc-rs"))]
use p384::ecdsa::signature::Verifier as _;
use serde_json::Value;

/// A JWS algorithm accepted for `id_token` signatures (RFC 7518 §3.1). `RS256` is the one
/// every SMART server must support (IG "Scopes and Launch Context", `openid`). `none`, `HS*`, `PS*`, `ES512` and `EdDSA` are
/// refused ([`IdTokenError::UnsupportedAlg`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdTokenAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (RFC 7518 §3.3).
    Rs384,
    /// ECDSA on P-256 with SHA-256; 64-byte `R||S` signature (RFC 7518 §3.4).
    Es256,
    /// ECDSA on P-384 with SHA-384; 96-byte `R||S` signature (RFC 7518 §3.4).
    Es384,
}

impl IdTokenAlgorithm {
    /// The JOSE `alg` name, e.g. `"RS256"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// The JWK `kty` the key must have: `"RSA"` or `"EC"`.
    pub const fn key_type(self) -> &'static str {
        match self {
            Self::Rs256 | Self::Rs384 => "RSA",
            Self::Es256 | Self::Es384 => "EC",
        }
    }

    /// Parse a JOSE header `alg` (case-sensitive, RFC 7515 §4.1.1).
    ///
    /// # Errors
    /// [`IdTokenError::UnsupportedAlg`] for anything but `RS256`, `RS384`, `ES256`, `ES384`.
    pub fn from_jose(alg: &str) -> Result<Self, IdTokenError> {
        match alg {
            "RS256" => Ok(Self::Rs256),
            "RS384" => Ok(Self::Rs384),
            "ES256" => Ok(Self::Es256),
            "ES384" => Ok(Self::Es384),
            other => Err(IdTokenError::UnsupportedAlg(clean(other))),
        }
    }

    /// For EC algorithms: the JWK `crv` and the coordinate length in bytes.
    pub(crate) const fn curve(self) -> Option<(&'static str, usize)> {
        match self {
            Self::Es256 => Some(("P-256", 32)),
            Self::Es384 => Some(("P-384", 48)),
            Self::Rs256 | Self::Rs384 => None,
        }
    }
}

impl std::fmt::Display for IdTokenAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn b64url(segment: &str, what: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| ParseError::new(Document::IdToken, format!("{what} is not base64url")).into())
}

/// A compact JWS (RFC 7515 §7.1) split and decoded, its header checked; nothing verified yet.
pub(crate) struct SignedJws {
    /// The header `alg`.
    pub(crate) alg: IdTokenAlgorithm,
    /// The header `kid`, if any.
    pub(crate) kid: Option<String>,
    /// `BASE64URL(header) "." BASE64URL(payload)`, exactly as received.
    pub(crate) signing_input: String,
    /// The decoded signature.
    pub(crate) signature: Vec<u8>,
    /// The decoded payload (not yet parsed).
    pub(crate) payload: Vec<u8>,
}

impl SignedJws {
    /// Split `text` and decode the header (a JSON object with a supported string `alg`, an
    /// optional string `kid` and no `crit`), the payload and the signature.
    ///
    /// Errors are [`Error::Parse`] with [`Document::IdToken`], or
    /// [`IdTokenError::UnsupportedAlg`]; they never quote the token.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(
                ParseError::new(Document::IdToken, "not a compact JWS (three segments)").into(),
            );
        };
        let header_json: Value = serde_json::from_slice(&b64url(header, "header")?)
            .map_err(|e| ParseError::from_json(Document::IdToken, &e))?;
        let Value::Object(header_json) = header_json else {
            return Err(ParseError::new(Document::IdToken, "header is not a JSON object").into());
        };
        let Some(alg) = header_json.get("alg").and_then(Value::as_str) else {
            return Err(ParseError::new(Document::IdToken, "header has no string `alg`").into());
        };
        let alg = IdTokenAlgorithm::from_jose(alg)?;
        // RFC 7515 §4.1.11: a recipient must reject extensions it does not understand.
        if header_json.contains_key("crit") {
            return Err(ParseError::new(
                Document::IdToken,
                "critical header parameters (`crit`) are not supported",
            )
            .into());
        }
        let kid = match header_json.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => {
                return Err(
                    ParseError::new(Document::IdToken, "header `kid` is not a string").into(),
                );
            }
        };
        let signing_input = format!("{header}.{payload}");
        let signature = b64url(signature, "signature")?;
        let payload = b64url(payload, "payload")?;
        Ok(Self {
            alg,
            kid,
            signing_input,
            signature,
            payload,
        })
    }
}

/// A public key from the issuer's JWKS, parsed for one [`IdTokenAlgorithm`]: AWS-LC's parsed
/// key with `aws-lc-rs`, else the RustCrypto verifying keys.
pub(crate) enum PublicKey {
    #[cfg(feature = "aws-lc-rs")]
    AwsLc(aws_lc_rs::signature::ParsedPublicKey),
    #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
    Rs256(rsa::pkcs1v15::VerifyingKey<sha2::Sha256>),
    #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
    Rs384(rsa::pkcs1v15::VerifyingKey<sha2::Sha384>),
    #[cfg(not(feature = "aws-lc-rs"))]
    Es256(p256::ecdsa::VerifyingKey),
    #[cfg(not(feature = "aws-lc-rs"))]
    Es384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// The key in `jwk` if it can verify `alg`; otherwise why not (never quoting members).
    pub(crate) fn from_jwk(
        jwk: &serde_json::Map<String, Value>,
        alg: IdTokenAlgorithm,
    ) -> Result<Self, String> {
        let member = |name: &str| jwk.get(name).and_then(Value::as_str);
        let kty = member("kty").unwrap_or("(none)");
        if kty != alg.key_type() {
            return Err(format!(
                "key type `{}` cannot verify {alg} (needs `{}`)",
                clean(kty),
                alg.key_type()
            ));
        }
        if let Some(key_alg) = jwk.get("alg")
            && key_alg.as_str() != Some(alg.as_str())
        {
            return Err(format!("the key is for another `alg` than {alg}"));
        }
        if let Some(usage) = jwk.get("use")
            && usage.as_str() != Some("sig")
        {
            return Err("the key's `use` is not `sig`".into());
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verify = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
            if !verify {
                return Err("the key's `key_ops` do not include `verify`".into());
            }
        }
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let text = member(name).ok_or_else(|| format!("member `{name}` is missing"))?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| format!("member `{name}` is not base64url"))
        };
        match alg.curve() {
            None => {
                let (n, e) = (bytes("n")?, bytes("e")?);
                let bits = bit_length(&n);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(format!(
                        "RSA modulus is {bits} bits ({MIN_RSA_BITS}..={MAX_RSA_BITS} accepted)"
                    ));
                }
                Self::rsa(alg, &n, &e)
            }
            Some((crv, len)) => {
                if member("crv") != Some(crv) {
                    return Err(format!("the key's curve is not {crv}"));
                }
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != len || y.len() != len {
                    return Err(format!("`x` and `y` must be {len} bytes for {crv}"));
                }
                let mut sec1 = Vec::with_capacity(1 + 2 * len);
                sec1.push(0x04);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                Self::ec(alg, &sec1).map_err(|()| format!("the point is not on {crv}"))
            }
        }
    }

    /// An EC public key from its uncompressed SEC1 point (`0x04 || x || y`).
    fn ec(alg: IdTokenAlgorithm, sec1: &[u8]) -> Result<Self, ()> {
        #[cfg(feature = "aws-lc-rs")]
        {
            use aws_lc_rs::signature::{
                ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ParsedPublicKey,
            };
            let params = match alg {
                IdTokenAlgorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
                _ => &ECDSA_P384_SHA384_FIXED,
            };
            ParsedPublicKey::new(params, sec1)
                .map(Self::AwsLc)
                .map_err(|_| ())
        }
        #[cfg(not(feature = "aws-lc-rs"))]
        match alg {
            IdTokenAlgorithm::Es256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
                .map(Self::Es256)
                .map_err(|_| ()),
            _ => p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
                .map(Self::Es384)
                .map_err(|_| ()),
        }
    }

    /// An RSA public key of checked size, from its big-endian modulus and exponent.
    fn rsa(alg: IdTokenAlgorithm, n: &[u8], e: &[u8]) -> Result<Self, String> {
        #[cfg(feature = "aws-lc-rs")]
        {
            use aws_lc_rs::signature::{
                ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384,
            };
            use pkcs8::der::{Encode as _, asn1::UintRef};
            let invalid = |_| "invalid RSA public key".to_owned();
            let der = pkcs1::RsaPublicKeyRef {
                modulus: UintRef::new(n).map_err(invalid)?,
                public_exponent: UintRef::new(e).map_err(invalid)?,
            }
            .to_der()
            .map_err(invalid)?;
            let params = match alg {
                IdTokenAlgorithm::Rs384 => &RSA_PKCS1_2048_8192_SHA384,
                _ => &RSA_PKCS1_2048_8192_SHA256,
            };
            ParsedPublicKey::new(params, der)
                .map(Self::AwsLc)
                .map_err(|_| "invalid RSA public key".to_owned())
        }
        #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
        {
            let uint = |b: &[u8]| {
                let bits = u32::try_from(b.len() * 8).map_err(|_| "invalid RSA public key")?;
                rsa::BoxedUint::from_be_slice(b, bits).map_err(|_| "invalid RSA public key")
            };
            let key = rsa::PublicKey::new_with_size_limits(
                uint(n)?,
                uint(e)?,
                MIN_RSA_BITS..=MAX_RSA_BITS,
            )
            .map_err(|_| "invalid RSA public key".to_owned())?;
            Ok(match alg {
                IdTokenAlgorithm::Rs384 => Self::Rs384(rsa::pkcs1v15::VerifyingKey::new(key)),
                _ => Self::Rs256(rsa::pkcs1v15::VerifyingKey::new(key)),
            })
        }
        #[cfg(not(any(feature = "rsa", feature = "aws-lc-rs")))]
        {
            let _ = (n, e);
            Err(format!(
                "{alg} needs an RSA backend: enable the `rsa` or `aws-lc-rs` feature of smart-core"
            ))
        }
    }

    /// Whether `signature` over `input` verifies under this key (with the algorithm it was
    /// parsed for).
    pub(crate) fn verifies(&self, input: &[u8], signature: &[u8]) -> bool {
        match self {
            #[cfg(feature = "aws-lc-rs")]
            Self::AwsLc(k) => k.verify_sig(input, signature).is_ok(),
            #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
            Self::Rs256(k) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|s| k.verify(input, &s).is_ok()),
            #[cfg(all(feature = "rsa", not(feature = "aws-lc-rs")))]
            Self::Rs384(k) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|s| k.verify(input, &s).is_ok()),
            #[cfg(not(feature = "aws-lc-rs"))]
            Self::Es256(k) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify(input, &s).is_ok()),
            #[cfg(not(feature = "aws-lc-rs"))]
            Self::Es384(k) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify(input, &s).is_ok()),
        }
    }
}

/// What a JWKS said about the token's signature.
pub(crate) enum KeyOutcome {
    Verified,
    /// No key fits (unknown `kid`, or no usable key without one): worth one refetch, as a
    /// rotated key may be published after the first tokens it signs.
    NotFound,
}

impl SignedJws {
    /// Pick the key for this token from the JWKS `keys`: the one(s) with the header's `kid`,
    /// or, without a `kid`, the only key usable with `alg`; then verify the signature.
    ///
    /// `Ok(NotFound)` when no key fits (worth one refetch); [`IdTokenError::KeyMismatch`]
    /// when the named key cannot verify `alg`, [`IdTokenError::AmbiguousKey`] without a `kid`
    /// and several candidates, [`IdTokenError::BadSignature`] when no candidate verifies.
    pub(crate) fn check_signature(&self, keys: &[Value]) -> Result<KeyOutcome, IdTokenError> {
        let (alg, input, signature) = (self.alg, self.signing_input.as_bytes(), &self.signature);
        let objects = keys.iter().filter_map(Value::as_object);
        let usable: Vec<PublicKey> = match self.kid.as_deref() {
            Some(kid) => {
                let named: Vec<_> = objects
                    .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
                    .collect();
                if named.is_empty() {
                    return Ok(KeyOutcome::NotFound);
                }
                let mut first_reason = None;
                let usable: Vec<PublicKey> = named
                    .into_iter()
                    .filter_map(|k| {
                        PublicKey::from_jwk(k, alg)
                            .map_err(|r| first_reason.get_or_insert(r).clone())
                            .ok()
                    })
                    .collect();
                if usable.is_empty() {
                    return Err(IdTokenError::KeyMismatch {
                        kid: Some(clean(kid)),
                        alg: alg.as_str().into(),
                        reason: first_reason.unwrap_or_default(),
                    });
                }
                usable
            }
            None => {
                let usable: Vec<PublicKey> = objects
                    .filter_map(|k| PublicKey::from_jwk(k, alg).ok())
                    .collect();
                match usable.len() {
                    0 => return Ok(KeyOutcome::NotFound),
                    1 => usable,
                    candidates => return Err(IdTokenError::AmbiguousKey { candidates }),
                }
            }
        };
        if usable.iter().any(|k| k.verifies(input, signature)) {
            Ok(KeyOutcome::Verified)
        } else {
            Err(IdTokenError::BadSignature)
        }
    }
}

/// The `keys` array of a JWK Set (RFC 7517 §5).
///
/// One leading UTF-8 byte-order mark is skipped (RFC 8259 §8.1), and a single key object
/// where the `keys` array belongs is read as a one-element list.
pub(crate) fn jwks_keys(body: &[u8]) -> Result<Vec<Value>, &'static str> {
    match serde_json::from_slice::<Value>(crate::lenient::strip_bom(body).0) {
        Ok(Value::Object(mut set)) => match set.remove("keys") {
            Some(Value::Array(keys)) => Ok(keys),
            Some(key @ Value::Object(_)) => Ok(vec![key]),
            _ => Err("the JWK Set has no `keys` array"),
        },
        Ok(_) => Err("the JWK Set is not a JSON object"),
        Err(_) => Err("the JWK Set is not JSON"),
    }
}
