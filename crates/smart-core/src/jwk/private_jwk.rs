//! Private JWK import (RFC 7517 / RFC 7518 §6.2.2, §6.3.2) into a [`SigningKey`].

use super::der::check_rsa_bits;
use super::public::PublicMembers;
use super::rsa_key;
use super::signing_key::SigningKey;
use super::{P384_BYTES, bit_length, key_err};
use crate::assertion::JwsAlgorithm;
use crate::error::{Document, Error, ParseError};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use p384::elliptic_curve::zeroize::Zeroizing;
use pkcs8::der::Encode as _;
use pkcs8::der::asn1::UintRef;

/// base64url that tolerates (but does not require) `=` padding when decoding JWK members.
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const RSA_INCONSISTENT: &str = "RSA JWK members are inconsistent (n, e, d, p, q do not form a key)";

impl SigningKey {
    /// Load a private JWK (RFC 7517/7518), or a JWK Set containing exactly one private key
    /// (an entry with `d`). The IG's `ES384.private.json` / `RS384.private.json` files hold the
    /// public and the private entry under the same `kid`; the private one is picked.
    ///
    /// EC keys (RFC 7518 §6.2.2) must be `"crv":"P-384"`; when `x`/`y` are present they must
    /// match `d`. RSA keys (RFC 7518 §6.3.2) need `n`, `e`, `d`; the CRT members `p`, `q`,
    /// `dp`, `dq`, `qi` are optional: whatever is missing is recovered from `n`, `e`, `d`, which
    /// needs the `rsa` feature. An `alg` member, if present, must be `ES384` (EC) or `RS384`
    /// (RSA); `"use":"enc"` is refused. The `kid` is the JWK's `kid`, else its RFC 7638
    /// thumbprint; override it with [`with_kid`](Self::with_kid).
    ///
    /// # Errors
    /// [`Error::Key`] naming the problem (never quoting member values): invalid JSON, no
    /// private entry (a public JWK/JWKS), several private entries, a missing or non-base64url
    /// member, an unsupported `kty`/`crv`/`alg`, mismatched public and private members, an
    /// RSA modulus outside 2048..=8192 bits, or an RSA key the compiled-in backends cannot
    /// load (the message names the Cargo feature to enable).
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

    /// Load the private key whose `kid` is `kid` from a JWK Set (RFC 7517 §5) that may hold
    /// several — e.g. one ES384 and one RS384 key. The key keeps that `kid`.
    ///
    /// ```
    /// use smart_core::jwk::SigningKey;
    /// // The IG's ES384 sample key, listed twice under two kids (a real set holds two keys).
    /// let entry = |kid: &str| serde_json::json!({
    ///     "kty": "EC", "crv": "P-384", "alg": "ES384", "kid": kid,
    ///     "d": "hQCNmfvZEUjOon8zLc0bULlmrDPFHrieFHRVZUGMuiQscx9IO7MT03TsaCPdPv0u",
    ///     "x": "pyqburM9y8HPcFhNosDW6ngoVEJitqXi_HJgI5hYqX21PoFDwCbYirGy_o0oapIU",
    ///     "y": "95bxkCnMKoHvgbcPAIAcgzzu8scd81mXfM_IzuJFNfkUNkGYBFGvuEU1KPi5j1ob",
    /// });
    /// let set = serde_json::json!({"keys": [entry("key-a"), entry("key-b")]}).to_string();
    /// assert_eq!(SigningKey::from_jwk_set(&set, "key-b")?.kid(), "key-b");
    /// assert!(SigningKey::from_jwk(&set).is_err()); // two private keys: which one?
    /// # Ok::<(), smart_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Key`] when the text is not a JWK Set, when no private entry (with `d`) has
    /// that `kid`, or when several do; as [`from_jwk`](Self::from_jwk) for the entry itself.
    pub fn from_jwk_set(jwks_json: &str, kid: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_str(jwks_json).map_err(|e| {
            key_err(format!(
                "JWK Set is not valid JSON: {}",
                ParseError::from_json(Document::Jwk, &e).message
            ))
        })?;
        let Some(keys) = value.get("keys").and_then(serde_json::Value::as_array) else {
            return Err(key_err("not a JWK Set: no `keys` array"));
        };
        let matching: Vec<&serde_json::Map<String, serde_json::Value>> = keys
            .iter()
            .filter_map(serde_json::Value::as_object)
            .filter(|k| k.contains_key("d") && k.get("kid").and_then(|v| v.as_str()) == Some(kid))
            .collect();
        match matching.as_slice() {
            [one] => Self::from_jwk_object(one),
            [] => Err(key_err(format!(
                "JWK Set has no private key with kid `{kid}`"
            ))),
            many => Err(key_err(format!(
                "JWK Set has {} private keys with kid `{kid}`",
                many.len()
            ))),
        }
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
                let d = Zeroizing::new(required("d")?);
                if d.len() != P384_BYTES {
                    return Err(key_err(format!(
                        "EC JWK `d` is {} bytes; P-384 needs {P384_BYTES}",
                        d.len()
                    )));
                }
                let key = Self::from_ec(&d, None, "EC JWK `d` is not a valid P-384 scalar")?;
                if let PublicMembers::Ec { x, y } = key.public_members() {
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
                with_jwk_kid(key, kid)
            }
            Some("RSA") => {
                check_jwk_alg(alg, JwsAlgorithm::Rs384)?;
                let n = required("n")?;
                let e = required("e")?;
                // Refuse a wrong size before any arithmetic.
                check_rsa_bits(bit_length(&n))?;
                let d = Zeroizing::new(required("d")?);
                let secret = |name| bytes(name).map(|b| b.map(Zeroizing::new));
                let (p, q) = match (secret("p")?, secret("q")?) {
                    (Some(p), Some(q)) => (p, q),
                    (None, None) => {
                        let pkcs1 = rsa_key::complete(&n, &e, &d, None, RSA_INCONSISTENT)?;
                        return with_jwk_kid(Self::from_rsa_pkcs1(&pkcs1, RSA_INCONSISTENT)?, kid);
                    }
                    _ => return Err(key_err("RSA JWK has only one of `p` and `q`")),
                };
                let pkcs1 = match (secret("dp")?, secret("dq")?, secret("qi")?) {
                    (Some(dp), Some(dq), Some(qi)) => {
                        pkcs1_der([&n, &e, &d, &p, &q, &dp, &dq, &qi])?
                    }
                    // RFC 7518 §6.3.2: all or none of the CRT members; compute what is missing.
                    _ => rsa_key::complete(&n, &e, &d, Some((&p, &q)), RSA_INCONSISTENT)?,
                };
                with_jwk_kid(Self::from_rsa_pkcs1(&pkcs1, RSA_INCONSISTENT)?, kid)
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

/// The JWK's own `kid`, when it has a non-empty one, else the key's thumbprint default.
fn with_jwk_kid(key: SigningKey, kid: Option<&str>) -> Result<SigningKey, Error> {
    match kid {
        Some(kid) => key.with_kid(kid),
        None => Ok(key),
    }
}

/// PKCS#1 `RSAPrivateKey` DER (RFC 8017 A.1.2, two primes) from the big-endian members
/// `n, e, d, p, q, dp, dq, qi`.
fn pkcs1_der(members: [&[u8]; 8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let [n, e, d, p, q, dp, dq, qi] =
        members.map(|m| UintRef::new(m).map_err(|_| key_err(RSA_INCONSISTENT)));
    let key = pkcs1::RsaPrivateKeyRef {
        modulus: n?,
        public_exponent: e?,
        private_exponent: d?,
        prime1: p?,
        prime2: q?,
        exponent1: dp?,
        exponent2: dq?,
        coefficient: qi?,
        other_prime_infos: None,
    };
    key.to_der()
        .map(Zeroizing::new)
        .map_err(|_| key_err(RSA_INCONSISTENT))
}
