//! The claims of an `id_token`: [`UnverifiedIdTokenClaims`] as decoded (read tolerantly) and
//! [`VerifiedIdTokenClaims`] once an [`IdTokenVerifier`](super::IdTokenVerifier) has checked
//! the signature and the claims (OIDC Core 1.0 §3.1.3.7).

use serde_json::Value;

use crate::error::{Document, Error, ParseError};
use crate::jwk::verify::IdTokenAlgorithm;
use crate::secret::IdToken;
use crate::time::UnixTime;
use crate::types::FhirUser;
use base64::Engine as _;

/// Something tolerated while reading `id_token` claims.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ClaimWarning {
    /// A claim had the wrong JSON type or form (e.g. `"fhirUser": true`, a negative `exp`) and
    /// was ignored: the claim's name. The rest of the token stays readable.
    InvalidClaim(String),
    /// `exp` or `iat` had a fractional part or was a numeric string; it was read and rounded
    /// down: the claim's name.
    NormalisedClaim(String),
    /// Only the SMART v1 `profile` claim names the user (no `fhirUser`); it is used instead.
    LegacyProfileClaim,
}

/// The claims of an `id_token`, **not verified**.
///
/// Read tolerantly (SMART App Launch §"Scopes for requesting identity data"; OpenID Connect
/// Core §2): a claim of the wrong JSON type (`"fhirUser": true`, `"sub": 7`) is ignored with a
/// [`ClaimWarning::InvalidClaim`] instead of making the whole token unreadable; `exp`/`iat`
/// with a fraction or as a numeric string are rounded down
/// ([`ClaimWarning::NormalisedClaim`]). A verifier still refuses a token whose `iss`, `sub`,
/// `aud`, `exp` or `iat` is then missing.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UnverifiedIdTokenClaims {
    /// `iss`: the OpenID issuer (not necessarily the FHIR base).
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
    /// What was tolerated while reading the claims (not a claim; not serialized).
    #[serde(skip)]
    pub warnings: Vec<ClaimWarning>,
}

impl<'de> serde::Deserialize<'de> for UnverifiedIdTokenClaims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::lenient::{LSecs, LStr, Seen};
        let mut map = serde_json::Map::<String, Value>::deserialize(d)?;
        let mut warnings = Vec::new();
        let mut string = |map: &mut serde_json::Map<String, Value>, name: &str| {
            let v = map.remove(name)?;
            match LStr::deserialize(&v).map(|l| l.0) {
                Ok(Seen::Ok(s)) => Some(s),
                Ok(Seen::Null) => None,
                _ => {
                    warnings.push(ClaimWarning::InvalidClaim(name.to_owned()));
                    None
                }
            }
        };
        let iss = string(&mut map, "iss");
        let sub = string(&mut map, "sub");
        let fhir_user = string(&mut map, "fhirUser");
        let profile = string(&mut map, "profile");
        // `aud` is kept as sent, whatever its type: a verifier compares it with the client id.
        let aud = map.remove("aud").filter(|v| !v.is_null());
        let mut time = |map: &mut serde_json::Map<String, Value>, name: &str| {
            let v = map.remove(name)?;
            match LSecs::deserialize(&v).unwrap_or_default() {
                LSecs::Null => None,
                LSecs::Ok {
                    secs,
                    fraction,
                    string,
                } => {
                    if fraction || string {
                        warnings.push(ClaimWarning::NormalisedClaim(name.to_owned()));
                    }
                    Some(secs)
                }
                LSecs::Bad(_) => {
                    warnings.push(ClaimWarning::InvalidClaim(name.to_owned()));
                    None
                }
            }
        };
        let exp = time(&mut map, "exp");
        let iat = time(&mut map, "iat");
        if fhir_user.is_none() && profile.is_some() {
            warnings.push(ClaimWarning::LegacyProfileClaim);
        }
        Ok(Self {
            iss,
            sub,
            aud,
            exp,
            iat,
            fhir_user,
            profile,
            extra: map,
            warnings,
        })
    }
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

    /// The user: `fhirUser`, or the legacy SMART v1 `profile` claim when there is no
    /// `fhirUser` (SMART App Launch §"Scopes for requesting identity data").
    pub fn fhir_user(&self) -> Option<FhirUser> {
        self.fhir_user
            .as_deref()
            .or(self.profile.as_deref())
            .map(FhirUser::new)
    }
}

/// The claims of an `id_token` whose signature and claims were verified by an
/// [`IdTokenVerifier`](super::IdTokenVerifier) (OIDC Core §3.1.3.7). `iss`, `sub`, `aud`,
/// `exp` and `iat` are guaranteed present.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedIdTokenClaims {
    pub(super) claims: UnverifiedIdTokenClaims,
    pub(super) alg: IdTokenAlgorithm,
    pub(super) kid: Option<String>,
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

    /// The user: `fhirUser`, or the legacy SMART v1 `profile` claim, as sent (absolute or
    /// relative to the FHIR base; [`FhirUser::url`] resolves it).
    pub fn fhir_user(&self) -> Option<FhirUser> {
        self.claims.fhir_user()
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
