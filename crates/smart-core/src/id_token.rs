//! OpenID Connect `id_token`s: claims decoding ([`UnverifiedIdTokenClaims`]) and full
//! signature + claims verification ([`IdTokenVerifier`] → [`VerifiedIdTokenClaims`]).
//!
//! SMART's `sso-openid-connect` profile returns an `id_token` whose `fhirUser` claim names
//! the signed-in user as a FHIR resource (OIDC-03). Before trusting it, verify it as OIDC Core
//! 1.0 §3.1.3.7 requires (OIDC-01) following the SMART steps (OIDC-02): the issuer's
//! `jwks_uri` (from SMART discovery, or `{issuer}/.well-known/openid-configuration`), the
//! signing key by `kid`, the JWS signature (RS256 at least: OIDC-04; also RS384, ES256,
//! ES384), then `iss`, `aud`/`azp`, `exp`, `iat`, `nbf` and `nonce`.
//!
//! [`UnverifiedIdTokenClaims::decode`] only *decodes* (the name says so): do not make
//! authorization decisions from its output. [`IdTokenVerifier`] is a sans-IO [`Flow`] like
//! the others: it never reads a clock (`now` arrives in [`Flow::poll`]) and never opens a
//! socket.
//!
//! # Security
//! - Keys come only from the issuer's JWKS, never from token headers (`jku`, `jwk`, `x5u`
//!   and `x5c` are ignored); `alg: none` and the symmetric `HS*` algorithms are refused
//!   before any request; a `crit` header is refused.
//! - The header `alg` must fit the key (`kty`, `crv`, and the JWK's `alg`, `use`, `key_ops`
//!   when present). RSA keys must have 2048..=8192-bit moduli (RFC 7518 §3.3).
//! - Errors ([`IdTokenError`]) never contain the token.

use base64::Engine as _;
use serde_json::Value;
use signature::Verifier as _;
use url::Url;

use crate::error::{Document, Error, IdTokenError, ParseError, TransportError};
use crate::flow::{Action, Flow, HttpRequest, HttpResponse};
use crate::jwk::{MAX_RSA_BITS, MIN_RSA_BITS};
use crate::request::DocumentGet;
use crate::secret::{IdToken, constant_time_eq};
use crate::time::UnixTime;
use crate::types::{ClientId, FhirBaseUrl};

/// FHIR resource types a `fhirUser` may name (2.1.0 added `PractitionerRole`).
pub const FHIR_USER_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Person",
];

/// The claims of an `id_token`, **not verified**.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnverifiedIdTokenClaims {
    /// `iss`: the OpenID issuer (not necessarily the FHIR base; case B06).
    pub iss: Option<String>,
    /// `sub`: the subject identifier.
    pub sub: Option<String>,
    /// `aud`: a string or an array of strings (the `client_id`).
    pub aud: Option<serde_json::Value>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<u64>,
    /// `iat`, seconds since the epoch.
    pub iat: Option<u64>,
    /// `fhirUser`: an absolute URL or a reference relative to the FHIR base.
    #[serde(rename = "fhirUser")]
    pub fhir_user: Option<String>,
    /// `profile`: the SMART v1 predecessor of `fhirUser`.
    pub profile: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl UnverifiedIdTokenClaims {
    /// Decode the payload of a compact JWT **without checking its signature**.
    ///
    /// # Errors
    /// [`Error::Parse`] with [`Document::IdToken`] when it is not three base64url segments
    /// or the payload is not a JSON object. The message never quotes the token.
    pub fn decode(id_token: &IdToken) -> Result<Self, Error> {
        let mut parts = id_token.secret().split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(
                ParseError::new(Document::IdToken, "not a compact JWS (three segments)").into(),
            );
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| ParseError::new(Document::IdToken, "payload is not base64url"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ParseError::from_json(Document::IdToken, &e).into())
    }

    /// The user as a FHIR URL: `fhirUser` (or legacy `profile`), resolved against the FHIR
    /// base when relative (`Practitioner/7` → `{base}/Practitioner/7`, never `Url::join`).
    pub fn fhir_user_url(&self, fhir_base: &FhirBaseUrl) -> Option<Url> {
        let user = self.fhir_user.as_deref().or(self.profile.as_deref())?;
        fhir_base.resolve_reference(user)
    }

    /// The resource type and id of `fhirUser` (e.g. `("Practitioner", "7")`), when its last
    /// two path segments name one of [`FHIR_USER_TYPES`].
    pub fn fhir_user_reference(&self) -> Option<(&str, &str)> {
        let user = self.fhir_user.as_deref().or(self.profile.as_deref())?;
        let user = user.split(['?', '#']).next()?;
        let mut segs = user.trim_end_matches('/').rsplit('/');
        let id = segs.next()?;
        let ty = segs.next()?;
        (FHIR_USER_TYPES.contains(&ty) && !id.is_empty()).then_some((ty, id))
    }
}

/// The default allowed clock skew for `exp`, `iat` and `nbf`, in **seconds**.
pub const DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS: u64 = 60;

/// The most times an [`IdTokenVerifier`] fetches the JWKS for one token: once, plus one
/// refetch when the token's `kid` is not in it yet (case B06: a rotated key may be
/// published after the first tokens it signs).
pub const MAX_JWKS_FETCHES: u8 = 2;

/// The path appended to an issuer to find its OpenID Provider configuration (OpenID Connect
/// Discovery 1.0 §4).
pub const OPENID_CONFIGURATION_PATH: &str = ".well-known/openid-configuration";

/// A JWS algorithm accepted for `id_token` signatures (RFC 7518 §3.1). `RS256` is the one
/// every SMART server must support (OIDC-04). `none`, `HS*`, `PS*`, `ES512` and `EdDSA` are
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
    const fn curve(self) -> Option<(&'static str, usize)> {
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

/// Control characters removed, at most 200 characters: for token-supplied strings in errors.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn b64url(segment: &str, what: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| ParseError::new(Document::IdToken, format!("{what} is not base64url")).into())
}

/// A compact JWS split and decoded; the claims are still untrusted.
struct ParsedToken {
    alg: IdTokenAlgorithm,
    kid: Option<String>,
    /// `BASE64URL(header) "." BASE64URL(payload)`, exactly as received.
    signing_input: String,
    signature: Vec<u8>,
    claims: UnverifiedIdTokenClaims,
}

impl ParsedToken {
    fn parse(id_token: &IdToken) -> Result<Self, Error> {
        let text = id_token.secret();
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
        let signature = b64url(signature, "signature")?;
        let claims = serde_json::from_slice(&b64url(payload, "payload")?)
            .map_err(|e| ParseError::from_json(Document::IdToken, &e))?;
        Ok(Self {
            alg,
            kid,
            signing_input: format!("{header}.{payload}"),
            signature,
            claims,
        })
    }
}

/// A public key able to verify one [`IdTokenAlgorithm`].
enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// The key in `jwk` if it can verify `alg`; otherwise why not (never quoting members).
    fn from_jwk(
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
                let n = rsa::BigUint::from_bytes_be(&bytes("n")?);
                let e = rsa::BigUint::from_bytes_be(&bytes("e")?);
                let bits = n.bits();
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(format!(
                        "RSA modulus is {bits} bits ({MIN_RSA_BITS}..={MAX_RSA_BITS} accepted)"
                    ));
                }
                rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                    .map(Self::Rsa)
                    .map_err(|_| "invalid RSA public key".into())
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
                let bad = |_| format!("the point is not on {crv}");
                if len == 32 {
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                        .map(Self::P256)
                        .map_err(bad)
                } else {
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                        .map(Self::P384)
                        .map_err(bad)
                }
            }
        }
    }

    /// Whether `signature` over `input` verifies under this key with `alg`.
    fn verifies(&self, alg: IdTokenAlgorithm, input: &[u8], signature: &[u8]) -> bool {
        match (self, alg) {
            (Self::Rsa(k), IdTokenAlgorithm::Rs256) => {
                rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|s| {
                    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(k.clone())
                        .verify(input, &s)
                        .is_ok()
                })
            }
            (Self::Rsa(k), IdTokenAlgorithm::Rs384) => {
                rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|s| {
                    rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(k.clone())
                        .verify(input, &s)
                        .is_ok()
                })
            }
            (Self::P256(k), IdTokenAlgorithm::Es256) => {
                p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(input, &s).is_ok())
            }
            (Self::P384(k), IdTokenAlgorithm::Es384) => {
                p384::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|s| k.verify(input, &s).is_ok())
            }
            _ => false,
        }
    }
}

/// What a JWKS said about the token's signature.
enum KeyOutcome {
    Verified,
    /// No key fits (unknown `kid`, or no usable key without one): worth one refetch (B06).
    NotFound,
}

/// Pick the key for `token` from the JWKS `keys` and verify the signature.
fn check_signature(token: &ParsedToken, keys: &[Value]) -> Result<KeyOutcome, IdTokenError> {
    let objects = keys.iter().filter_map(Value::as_object);
    let input = token.signing_input.as_bytes();
    let usable: Vec<PublicKey> = match &token.kid {
        Some(kid) => {
            let named: Vec<_> = objects
                .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
                .collect();
            if named.is_empty() {
                return Ok(KeyOutcome::NotFound);
            }
            let mut first_reason = None;
            let usable: Vec<PublicKey> = named
                .into_iter()
                .filter_map(|k| {
                    PublicKey::from_jwk(k, token.alg)
                        .map_err(|r| first_reason.get_or_insert(r).clone())
                        .ok()
                })
                .collect();
            if usable.is_empty() {
                return Err(IdTokenError::KeyMismatch {
                    kid: Some(clean(kid)),
                    alg: token.alg.as_str().into(),
                    reason: first_reason.unwrap_or_default(),
                });
            }
            usable
        }
        None => {
            let usable: Vec<PublicKey> = objects
                .filter_map(|k| PublicKey::from_jwk(k, token.alg).ok())
                .collect();
            match usable.len() {
                0 => return Ok(KeyOutcome::NotFound),
                1 => usable,
                candidates => return Err(IdTokenError::AmbiguousKey { candidates }),
            }
        }
    };
    if usable
        .iter()
        .any(|k| k.verifies(token.alg, input, &token.signature))
    {
        Ok(KeyOutcome::Verified)
    } else {
        Err(IdTokenError::BadSignature)
    }
}

/// The `keys` array of a JWK Set (RFC 7517 §5).
/// One leading UTF-8 byte-order mark is skipped (RFC 8259 §8.1), and a single key object
/// where the `keys` array belongs is read as a one-element list.
fn jwks_keys(body: &[u8]) -> Result<Vec<Value>, &'static str> {
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

/// `{issuer}/.well-known/openid-configuration`: one trailing `/` of the issuer dropped, then
/// string concatenation (OpenID Connect Discovery 1.0 §4.1; never `Url::join`, which would
/// drop the issuer's last path segment).
///
/// # Errors
/// [`IdTokenError::Discovery`] when the issuer is not an absolute `http(s)` URL without query
/// or fragment.
pub fn openid_configuration_url(issuer: &str) -> Result<Url, IdTokenError> {
    let text = format!(
        "{}/{OPENID_CONFIGURATION_PATH}",
        issuer.strip_suffix('/').unwrap_or(issuer)
    );
    match Url::parse(&text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.query().is_none()
                && url.fragment().is_none()
                && !issuer.contains(['?', '#']) =>
        {
            Ok(url)
        }
        _ => Err(IdTokenError::Discovery {
            url: clean(&text),
            status: None,
            reason: "the issuer is not an absolute http(s) URL without query or fragment".into(),
        }),
    }
}

/// Fuzz entry point: parse arbitrary bytes as an OpenID Provider configuration (any status);
/// must never panic, and an accepted document's `jwks_uri` is an absolute http(s) URL.
#[doc(hidden)]
pub fn fuzz_openid_configuration(data: &[u8]) {
    let Ok(url) = Url::parse("https://ehr.example.org/.well-known/openid-configuration") else {
        return;
    };
    for status in [200, 404] {
        let r = HttpResponse::new(status, data.to_vec());
        if let Ok(jwks) = parse_openid_configuration(&r, &url, "https://ehr.example.org") {
            assert!(
                matches!(jwks.scheme(), "http" | "https") && jwks.has_host(),
                "jwks_uri is an absolute http(s) URL"
            );
        }
    }
    let _ = jwks_keys(data);
}

/// The `jwks_uri` of an OpenID Provider configuration whose `issuer` must equal `expected`.
/// One leading UTF-8 byte-order mark is skipped (RFC 8259 §8.1).
fn parse_openid_configuration(
    response: &HttpResponse,
    url: &Url,
    expected: &str,
) -> Result<Url, IdTokenError> {
    let fail = |reason: &str| IdTokenError::Discovery {
        url: url.to_string(),
        status: Some(response.status),
        reason: reason.into(),
    };
    if !response.is_success() {
        return Err(fail("unexpected HTTP status"));
    }
    let body = crate::lenient::strip_bom(&response.body).0;
    let Ok(Value::Object(config)) = serde_json::from_slice::<Value>(body) else {
        return Err(fail("the OpenID configuration is not a JSON object"));
    };
    let issuer = config.get("issuer").and_then(Value::as_str);
    if issuer != Some(expected) {
        return Err(IdTokenError::ConfigurationIssuerMismatch {
            expected: expected.to_owned(),
            received: issuer.map(clean),
        });
    }
    config
        .get("jwks_uri")
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| fail("`jwks_uri` is missing or not an absolute http(s) URL"))
}

/// The claims of an `id_token` whose signature and claims were verified by an
/// [`IdTokenVerifier`] (OIDC Core §3.1.3.7). `iss`, `sub`, `aud`, `exp` and `iat` are
/// guaranteed present.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedIdTokenClaims {
    claims: UnverifiedIdTokenClaims,
    alg: IdTokenAlgorithm,
    kid: Option<String>,
}

impl VerifiedIdTokenClaims {
    /// `iss`: the OpenID issuer (equal to the expected issuer).
    pub fn iss(&self) -> &str {
        self.claims.iss.as_deref().unwrap_or_default()
    }

    /// `sub`: the user's subject identifier at the issuer.
    pub fn sub(&self) -> &str {
        self.claims.sub.as_deref().unwrap_or_default()
    }

    /// `aud` as a list (a single string becomes a one-element list); contains the `client_id`.
    pub fn audiences(&self) -> Vec<&str> {
        match &self.claims.aud {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// `azp`, the authorized party, when present (then equal to the `client_id`).
    pub fn azp(&self) -> Option<&str> {
        self.claim("azp").and_then(Value::as_str)
    }

    /// `exp`: when the token expires, seconds since the epoch.
    pub fn expires_at(&self) -> UnixTime {
        UnixTime::from_secs(self.claims.exp.unwrap_or_default())
    }

    /// `iat`: when the token was issued, seconds since the epoch.
    pub fn issued_at(&self) -> UnixTime {
        UnixTime::from_secs(self.claims.iat.unwrap_or_default())
    }

    /// `nonce`, when present.
    pub fn nonce(&self) -> Option<&str> {
        self.claim("nonce").and_then(Value::as_str)
    }

    /// `fhirUser` (or the legacy SMART v1 `profile`) as sent: absolute or relative to the
    /// FHIR base (OIDC-03).
    pub fn fhir_user(&self) -> Option<&str> {
        self.claims
            .fhir_user
            .as_deref()
            .or(self.claims.profile.as_deref())
    }

    /// The user as a FHIR URL: `fhirUser` (or `profile`) resolved against `fhir_base` when
    /// relative (`Practitioner/7` → `{base}/Practitioner/7`; never `Url::join`). See
    /// [`UnverifiedIdTokenClaims::fhir_user_url`].
    pub fn fhir_user_url(&self, fhir_base: &FhirBaseUrl) -> Option<Url> {
        self.claims.fhir_user_url(fhir_base)
    }

    /// The resource type and id of `fhirUser`, e.g. `("Practitioner", "7")`. See
    /// [`UnverifiedIdTokenClaims::fhir_user_reference`].
    pub fn fhir_user_reference(&self) -> Option<(&str, &str)> {
        self.claims.fhir_user_reference()
    }

    /// Any claim by name, including those not modelled as fields (`nonce`, `azp`, `name`…).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.extra.get(name)
    }

    /// All claims (now verified, whatever the type's name).
    pub fn claims(&self) -> &UnverifiedIdTokenClaims {
        &self.claims
    }

    /// All claims, by value.
    pub fn into_claims(self) -> UnverifiedIdTokenClaims {
        self.claims
    }

    /// The algorithm the signature was verified with.
    pub fn algorithm(&self) -> IdTokenAlgorithm {
        self.alg
    }

    /// The token header's `kid`, if it had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

#[derive(Debug)]
enum State {
    /// Next `poll` sends the OpenID configuration request, or the JWKS request once
    /// `jwks_uri` is known.
    Start,
    /// The next `poll` sends `get`'s request (a redirect hop); `jwks`: which document.
    Pending {
        jwks: bool,
        get: DocumentGet,
    },
    /// `get`'s request is in flight.
    Awaiting {
        jwks: bool,
        get: DocumentGet,
    },
    /// Signature verified; claims are checked against the `now` of the next `poll`.
    SignatureVerified,
    Failed(Error),
    /// The claims were handed out.
    Finished,
}

/// Verifies an OpenID Connect `id_token` (OIDC Core 1.0 §3.1.3.7; SMART OIDC-01, OIDC-02,
/// OIDC-04): a sans-IO [`Flow`] whose output is [`VerifiedIdTokenClaims`].
///
/// Requests, in order (each a `GET` with `Accept: application/json`):
/// 1. unless a `jwks_uri` is known ([`with_jwks_uri`](Self::with_jwks_uri), or
///    [`from_discovery`](Self::from_discovery) with SMART's `jwks_uri`):
///    `{issuer}/.well-known/openid-configuration` (see [`openid_configuration_url`]), whose
///    `issuer` must equal the expected issuer; its `jwks_uri` is used;
/// 2. the JWKS; the key is the one whose `kid` equals the token's, or, when the token has no
///    `kid`, the only key usable with its `alg`;
/// 3. only if no key fits: the JWKS once more (case B06), then
///    [`IdTokenError::NoMatchingKey`]. At most [`MAX_JWKS_FETCHES`] JWKS requests.
///
/// Then, with the `now` of the `poll` that returns `Ready` and a clock skew (default
/// [`DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS`]): `iss` equals the expected issuer (the OIDC
/// issuer, **not** the FHIR base: case B06); `sub` is present; `aud` (string or array)
/// contains the `client_id`; `azp`, required when `aud` has several entries, equals the
/// `client_id`; `exp + skew > now`; `iat <= now + skew`; `nbf` (if any) `<= now + skew`; and
/// `nonce` equals the expected one when [`with_nonce`](Self::with_nonce) was used.
///
/// Errors are [`Error::IdToken`] (and [`Error::Parse`] for a malformed token, at
/// construction); once failed, every later `poll` returns the same error. `Debug` never
/// prints the token.
///
/// ```
/// use smart_core::id_token::IdTokenVerifier;
/// use smart_core::secret::IdToken;
/// use smart_core::{Action, ClientId, Flow, UnixTime};
///
/// # fn main() -> Result<(), smart_core::Error> {
/// // Header {"alg":"RS256"}, payload {"iss":"https://auth.example.org"} (signature elided).
/// let token = IdToken::new("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5vcmcifQ.c2ln");
/// let mut v = IdTokenVerifier::new(&token, "https://auth.example.org", ClientId::new("app"))?;
/// let Action::Send(req) = v.poll(UnixTime::from_secs(1_700_000_000))? else { unreachable!() };
/// assert_eq!(req.url.as_str(), "https://auth.example.org/.well-known/openid-configuration");
/// # Ok(()) }
/// ```
pub struct IdTokenVerifier {
    token: ParsedToken,
    issuer: String,
    client_id: ClientId,
    nonce: Option<String>,
    skew_secs: u64,
    jwks_uri: Option<Url>,
    jwks_fetches: u8,
    state: State,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("alg", &self.token.alg)
            .field("kid", &self.token.kid)
            .field("jwks_uri", &self.jwks_uri.as_ref().map(Url::as_str))
            .field("jwks_fetches", &self.jwks_fetches)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl IdTokenVerifier {
    /// Verify `id_token` for `client_id` against `expected_issuer` (SMART discovery's
    /// `issuer`, compared byte for byte with `iss`).
    ///
    /// # Errors
    /// Before any request: [`Error::Parse`] ([`Document::IdToken`]) when the token is not a
    /// compact JWS with JSON-object header and payload, a `string` `alg`, no `crit`;
    /// [`IdTokenError::UnsupportedAlg`] for `none`, `HS256` and every other algorithm but
    /// RS256, RS384, ES256, ES384.
    pub fn new(
        id_token: &IdToken,
        expected_issuer: impl Into<String>,
        client_id: ClientId,
    ) -> Result<Self, Error> {
        Ok(Self {
            token: ParsedToken::parse(id_token)?,
            issuer: expected_issuer.into(),
            client_id,
            nonce: None,
            skew_secs: DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS,
            jwks_uri: None,
            jwks_fetches: 0,
            state: State::Start,
        })
    }

    /// Verify against a SMART discovery result (spec digest §2.2): the expected issuer is its
    /// `issuer`, and its `jwks_uri`, when present, is used directly (no OpenID configuration
    /// request).
    ///
    /// # Errors
    /// As [`new`](Self::new); [`IdTokenError::Discovery`] (naming the discovery URL) when the
    /// document has no `issuer` (required with `sso-openid-connect`).
    pub fn from_discovery(
        id_token: &IdToken,
        discovered: &crate::discovery::Discovered,
        client_id: ClientId,
    ) -> Result<Self, Error> {
        let Some(issuer) = discovered.config.issuer.clone() else {
            return Err(IdTokenError::Discovery {
                url: discovered.url.to_string(),
                status: None,
                reason: "the SMART configuration has no `issuer` (required with \
                         `sso-openid-connect`)"
                    .into(),
            }
            .into());
        };
        let verifier = Self::new(id_token, issuer, client_id)?;
        Ok(
            match discovered
                .config
                .jwks_uri
                .clone()
                .map(crate::Endpoint::into_url)
            {
                Some(uri) => verifier.with_jwks_uri(uri),
                None => verifier,
            },
        )
    }

    /// **Opt-in:** take the expected issuer from the token's own `iss`. The `iss` check then
    /// always passes; what remains is that the issuer's OpenID configuration names the same
    /// issuer and that its JWKS signed the token. Use only when no discovery `issuer` is
    /// available and the token came straight from the token endpoint over TLS.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`IdTokenError::MissingClaim("iss")`](IdTokenError::MissingClaim).
    pub fn trusting_token_issuer(id_token: &IdToken, client_id: ClientId) -> Result<Self, Error> {
        let mut verifier = Self::new(id_token, String::new(), client_id)?;
        let Some(iss) = verifier.token.claims.iss.clone() else {
            return Err(IdTokenError::MissingClaim("iss").into());
        };
        verifier.issuer = iss;
        Ok(verifier)
    }

    /// Fetch the JWKS from `jwks_uri` directly, skipping the OpenID configuration request.
    #[must_use]
    pub fn with_jwks_uri(mut self, jwks_uri: Url) -> Self {
        self.jwks_uri = Some(jwks_uri);
        self
    }

    /// Require the `nonce` claim to equal `nonce` (the value sent in the authorization
    /// request; OIDC Core §3.1.3.7 step 11). Compared in constant time.
    #[must_use]
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// The clock skew tolerated for `exp`, `iat` and `nbf`, in **seconds** (default
    /// [`DEFAULT_ID_TOKEN_CLOCK_SKEW_SECS`]).
    #[must_use]
    pub fn with_clock_skew_secs(mut self, secs: u64) -> Self {
        self.skew_secs = secs;
        self
    }

    /// The issuer `iss` must equal.
    pub fn expected_issuer(&self) -> &str {
        &self.issuer
    }

    /// The token header's `alg`.
    pub fn algorithm(&self) -> IdTokenAlgorithm {
        self.token.alg
    }

    /// The token header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.token.kid.as_deref()
    }

    /// How many JWKS responses were handled so far (at most [`MAX_JWKS_FETCHES`]).
    pub fn jwks_fetches(&self) -> u8 {
        self.jwks_fetches
    }

    /// Verify against a JWK Set the caller already has (e.g. cached), without any request or
    /// refetch: signature, then claims at `now`.
    ///
    /// # Errors
    /// [`Error::Parse`] ([`Document::Jwk`]) when `jwks` is not a JWK Set; otherwise as the
    /// flow, with [`IdTokenError::NoMatchingKey`] straight away for an unknown `kid`.
    pub fn verify_with_jwks(
        &self,
        jwks: &[u8],
        now: UnixTime,
    ) -> Result<VerifiedIdTokenClaims, Error> {
        let keys = jwks_keys(jwks).map_err(|m| ParseError::new(Document::Jwk, m))?;
        match check_signature(&self.token, &keys)? {
            KeyOutcome::Verified => self.check_claims(now).map_err(Error::from),
            KeyOutcome::NotFound => Err(self.no_matching_key().into()),
        }
    }

    fn no_matching_key(&self) -> IdTokenError {
        IdTokenError::NoMatchingKey {
            kid: self.token.kid.as_deref().map(clean),
        }
    }

    /// OIDC Core §3.1.3.7 steps 2–5 and 9–11 (signature already verified).
    fn check_claims(&self, now: UnixTime) -> Result<VerifiedIdTokenClaims, IdTokenError> {
        let c = &self.token.claims;
        let client_id = self.client_id.as_str();
        let iss = c.iss.as_deref().ok_or(IdTokenError::MissingClaim("iss"))?;
        if iss != self.issuer {
            return Err(IdTokenError::IssuerMismatch {
                expected: self.issuer.clone(),
                received: clean(iss),
            });
        }
        if c.sub.is_none() {
            return Err(IdTokenError::MissingClaim("sub"));
        }
        let audience_mismatch = || IdTokenError::AudienceMismatch {
            client_id: client_id.to_owned(),
        };
        let audiences = match &c.aud {
            None => return Err(IdTokenError::MissingClaim("aud")),
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(audience_mismatch)?,
            Some(_) => return Err(audience_mismatch()),
        };
        if !audiences.contains(&client_id) {
            return Err(audience_mismatch());
        }
        let azp = c.extra.get("azp");
        if azp.is_some() || audiences.len() > 1 {
            let azp = azp.and_then(Value::as_str);
            if azp != Some(client_id) {
                return Err(IdTokenError::AuthorizedPartyMismatch {
                    client_id: client_id.to_owned(),
                    received: azp.map(clean),
                });
            }
        }
        let now_secs = now.as_secs();
        let exp = c.exp.ok_or(IdTokenError::MissingClaim("exp"))?;
        if exp.saturating_add(self.skew_secs) <= now_secs {
            return Err(IdTokenError::Expired { exp, now: now_secs });
        }
        let iat = c.iat.ok_or(IdTokenError::MissingClaim("iat"))?;
        let latest = now.plus_secs(self.skew_secs).as_secs();
        if iat > latest {
            return Err(IdTokenError::IssuedInFuture { iat, now: now_secs });
        }
        if let Some(nbf) = c.extra.get("nbf").and_then(Value::as_u64)
            && nbf > latest
        {
            return Err(IdTokenError::NotYetValid { nbf, now: now_secs });
        }
        if let Some(expected) = &self.nonce {
            let nonce = c
                .extra
                .get("nonce")
                .and_then(Value::as_str)
                .ok_or(IdTokenError::MissingClaim("nonce"))?;
            if !constant_time_eq(nonce, expected) {
                return Err(IdTokenError::NonceMismatch);
            }
        }
        Ok(VerifiedIdTokenClaims {
            claims: c.clone(),
            alg: self.token.alg,
            kid: self.token.kid.clone(),
        })
    }

    /// Record `e` as the final outcome (later polls repeat it) and return it.
    fn fail(&mut self, e: IdTokenError) -> Error {
        let e = Error::IdToken(e);
        self.state = State::Failed(e.clone());
        e
    }
}

impl Flow for IdTokenVerifier {
    type Output = VerifiedIdTokenClaims;

    /// `Send` the OpenID configuration or JWKS request, or `Ready` with the claims checked
    /// at `now` once the signature is verified.
    fn poll(&mut self, now: UnixTime) -> Result<Action<VerifiedIdTokenClaims>, Error> {
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start => {
                let (jwks, url) = match &self.jwks_uri {
                    Some(jwks) => (true, jwks.clone()),
                    None => (
                        false,
                        openid_configuration_url(&self.issuer).map_err(|e| self.fail(e))?,
                    ),
                };
                let get = DocumentGet::new(HttpRequest::get_json(url), false);
                let req = get.request();
                self.state = State::Awaiting { jwks, get };
                Ok(Action::Send(req))
            }
            State::Pending { jwks, get } => {
                let req = get.request();
                self.state = State::Awaiting { jwks, get };
                Ok(Action::Send(req))
            }
            s @ State::Awaiting { .. } => {
                self.state = s;
                Err(Error::Misuse(
                    "IdTokenVerifier::poll called while a request is in flight",
                ))
            }
            State::SignatureVerified => match self.check_claims(now) {
                Ok(claims) => {
                    self.state = State::Finished;
                    Ok(Action::Ready(claims))
                }
                Err(e) => Err(self.fail(e)),
            },
            State::Failed(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
            State::Finished => {
                self.state = State::Finished;
                Err(Error::Misuse("the id_token was already verified"))
            }
        }
    }

    fn handle_response(&mut self, response: HttpResponse, _now: UnixTime) -> Result<(), Error> {
        if !matches!(self.state, State::Awaiting { .. }) {
            // Nothing in flight: the state stays as it was.
            return Err(Error::Misuse(
                "IdTokenVerifier::handle_response called with no request in flight",
            ));
        }
        let State::Awaiting { jwks, mut get } = std::mem::replace(&mut self.state, State::Start)
        else {
            return Err(Error::Misuse(
                "IdTokenVerifier::handle_response called with no request in flight",
            ));
        };
        let response = match get.handle(response) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.state = State::Pending { jwks, get };
                return Ok(());
            }
            Err(e) => {
                self.state = State::Failed(e.clone());
                return Err(e);
            }
        };
        let url = get.url().clone();
        if !jwks {
            return match parse_openid_configuration(&response, &url, &self.issuer) {
                Ok(jwks_uri) => {
                    self.jwks_uri = Some(jwks_uri);
                    Ok(())
                }
                Err(e) => Err(self.fail(e)),
            };
        }
        self.jwks_fetches = self.jwks_fetches.saturating_add(1);
        if !response.is_success() {
            return Err(self.fail(IdTokenError::Discovery {
                url: url.to_string(),
                status: Some(response.status),
                reason: "unexpected HTTP status".into(),
            }));
        }
        let keys = match jwks_keys(&response.body) {
            Ok(keys) => keys,
            Err(reason) => {
                return Err(self.fail(IdTokenError::Discovery {
                    url: url.to_string(),
                    status: Some(response.status),
                    reason: reason.into(),
                }));
            }
        };
        match check_signature(&self.token, &keys) {
            Ok(KeyOutcome::Verified) => {
                self.state = State::SignatureVerified;
                Ok(())
            }
            // B06: the key may be published late; the next poll refetches once.
            Ok(KeyOutcome::NotFound) if self.jwks_fetches < MAX_JWKS_FETCHES => Ok(()),
            Ok(KeyOutcome::NotFound) => {
                let e = self.no_matching_key();
                Err(self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        _now: UnixTime,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::Awaiting { .. }) {
            return Err(Error::Misuse(
                "IdTokenVerifier::handle_transport_error called with no request in flight",
            ));
        }
        let e = Error::Transport(error);
        self.state = State::Failed(e.clone());
        Err(e)
    }

    /// Forget the request in flight; the next `poll` sends it again.
    fn abort(&mut self) {
        if let State::Awaiting { jwks, get } = std::mem::replace(&mut self.state, State::Start) {
            self.state = State::Pending { jwks, get };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &serde_json::Value) -> IdToken {
        let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        IdToken::new(format!(
            "{}.{}.{}",
            e(br#"{"alg":"RS256"}"#),
            e(claims.to_string().as_bytes()),
            e(b"sig")
        ))
    }

    #[test]
    fn oidc_03_fhir_user_relative_and_absolute() {
        let base = FhirBaseUrl::new("https://ehr.example.org/r4").unwrap();
        let c = UnverifiedIdTokenClaims::decode(&jwt(&serde_json::json!({
            "iss": "https://auth.example.org", "sub": "u1", "aud": "app", "fhirUser": "Practitioner/7", "extra": 1
        })))
        .unwrap();
        assert_eq!(
            c.fhir_user_url(&base).unwrap().as_str(),
            "https://ehr.example.org/r4/Practitioner/7"
        );
        assert_eq!(c.fhir_user_reference(), Some(("Practitioner", "7")));
        assert_eq!(c.extra["extra"], 1);
        let abs = UnverifiedIdTokenClaims::decode(&jwt(&serde_json::json!({
            "fhirUser": "https://other.example.org/fhir/PractitionerRole/9"
        })))
        .unwrap();
        assert_eq!(
            abs.fhir_user_url(&base).unwrap().as_str(),
            "https://other.example.org/fhir/PractitionerRole/9"
        );
        assert_eq!(abs.fhir_user_reference(), Some(("PractitionerRole", "9")));
    }

    #[test]
    fn bad_tokens_are_parse_errors_without_content() {
        for bad in [
            "",
            "a.b",
            "a.!!!.c",
            "a.b.c.d",
            "eyJhIjoxfQ.e30",
            "x.bm90IGpzb24.y",
        ] {
            let err = UnverifiedIdTokenClaims::decode(&IdToken::new(bad)).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Parse(ParseError {
                        document: Document::IdToken,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let err = UnverifiedIdTokenClaims::decode(&IdToken::new("x.eyJzZWNyZXQtdmFsdWUiOg.y"))
            .unwrap_err();
        assert!(!err.to_string().contains("secret-value"));
    }
}
