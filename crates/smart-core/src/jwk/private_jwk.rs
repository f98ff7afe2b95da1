//! Private JWK import (RFC 7517 / RFC 7518 §6.2.2, §6.3.2) into a [`SigningKey`].

use super::public::PublicMembers;
use super::signing_key::SigningKey;
use super::{B64URL_LENIENT, MAX_RSA_BITS, MIN_RSA_BITS, key_err, zeroizing};
use crate::assertion::JwsAlgorithm;
use crate::error::{Document, Error, ParseError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::{BigUint, RsaPrivateKey};

impl SigningKey {
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
                        if let Some(given) = bytes(name)? {
                            if URL_SAFE_NO_PAD.encode(given) != *ours {
                                return Err(key_err(format!(
                                    "EC JWK `{name}` does not match its private key `d`"
                                )));
                            }
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
