//! Public JWK / JWK Set export (RFC 7517) and RFC 7638 thumbprints.

use super::ec_key::EcPoint;
use super::key_err;
use super::signing_key::SigningKey;
use crate::error::Error;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Public members, base64url without padding, computed once at construction.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum PublicMembers {
    Ec { x: String, y: String },
    Rsa { n: String, e: String },
}

impl PublicMembers {
    pub(super) fn ec(point: &EcPoint) -> Self {
        Self::Ec {
            x: URL_SAFE_NO_PAD.encode(&point.x),
            y: URL_SAFE_NO_PAD.encode(&point.y),
        }
    }
}

impl SigningKey {
    /// The public JWK to register with the server (RFC 7517 §4, RFC 7518 §6.2.1 / §6.3.1):
    /// `kty`, `crv`/`x`/`y` (EC) or `n`/`e` (RSA), plus `kid`, `alg`, `"use":"sig"` and
    /// `"key_ops":["verify"]`. Never any private member.
    pub fn public_jwk(&self) -> serde_json::Value {
        let mut v = match self.public_members() {
            PublicMembers::Ec { x, y } => {
                serde_json::json!({ "kty": "EC", "crv": "P-384", "x": x, "y": y })
            }
            PublicMembers::Rsa { n, e } => serde_json::json!({ "kty": "RSA", "n": n, "e": e }),
        };
        if let Some(obj) = v.as_object_mut() {
            obj.insert("kid".into(), self.kid().into());
            obj.insert("alg".into(), self.algorithm().as_str().into());
            obj.insert("use".into(), "sig".into());
            obj.insert("key_ops".into(), serde_json::json!(["verify"]));
        }
        v
    }

    /// `{"keys":[public_jwk]}`: a JWK Set (RFC 7517 §5) for the registered JWKS URL or
    /// registration by value (IG "Registering a client (communicating public keys)"). During
    /// key rotation, publish the old and new keys' `public_jwk`s together.
    pub fn public_jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// The RFC 7638 JWK thumbprint of the public key: base64url (no padding) of the SHA-256 of
    /// the canonical JSON of the required members (`crv`,`kty`,`x`,`y` or `e`,`kty`,`n`).
    /// 43 characters. Used as the default `kid`.
    pub fn thumbprint(&self) -> String {
        thumbprint_of_members(self.public_members())
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

pub(super) fn thumbprint_of_members(public: &PublicMembers) -> String {
    // Members are base64url strings (no characters needing JSON escapes).
    let json = match public {
        PublicMembers::Ec { x, y } => {
            format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#)
        }
        PublicMembers::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::JwsAlgorithm;
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
}
