//! Small identifier and URL types shared by every flow.

use crate::error::Error;
use url::Url;

/// A FHIR server's base URL (`iss` in an EHR launch, `aud` in an authorization request),
/// kept **exactly as given** except that one trailing `/` is dropped.
///
/// Paths below it are built by string concatenation, never `Url::join` (which would replace
/// the last path segment of `https://ehr/fhir`): see [`FhirBaseUrl::append`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FhirBaseUrl {
    text: String,
    given: String,
}

impl FhirBaseUrl {
    /// Parse an absolute `http`/`https` URL with no query or fragment: a `&str`, a `String` or
    /// a [`Url`].
    ///
    /// Refused as well: control characters (the text is sent as `aud` and appears in errors
    /// and logs, e.g. an EHR launch's `iss`), and user info (`user:password@`, which would be
    /// sent as `aud` to the authorization server and printed in errors).
    ///
    /// # Errors
    /// [`Error::Config`] if `base` is not such a URL.
    pub fn new(base: impl AsRef<str>) -> Result<Self, Error> {
        let base = base.as_ref();
        if base.chars().any(char::is_control) {
            return Err(Error::Config(
                "FHIR base URL contains control characters".into(),
            ));
        }
        let trimmed = base.strip_suffix('/').unwrap_or(base);
        let url = Url::parse(trimmed)
            .map_err(|e| Error::Config(format!("FHIR base URL `{base}` is not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Config(
                "FHIR base URL must not contain user info (`user:password@`)".into(),
            ));
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "FHIR base URL `{base}` must be http or https"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Config(format!(
                "FHIR base URL `{base}` must not have a query or fragment"
            )));
        }
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(Error::Config(format!("FHIR base URL `{base}` has no host")));
        }
        Ok(Self {
            text: trimmed.to_owned(),
            given: base.to_owned(),
        })
    }

    /// The base minus one trailing slash: the prefix every URL below it is built from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The base exactly as received (an EHR launch's `iss`, byte for byte). This is the value
    /// sent as `aud` (SMART App Launch §"Obtain authorization code"; trailing-slash
    /// normalisation applies to building URLs, not to `aud`).
    pub fn as_given(&self) -> &str {
        &self.given
    }

    /// The base as a parsed [`Url`].
    pub fn url(&self) -> Url {
        // Validated in `new`.
        Url::parse(&self.text)
            .unwrap_or_else(|_| Url::parse("http://invalid.invalid").expect("static"))
    }

    /// `{base}/{path}`: string concatenation, one `/` between the two.
    ///
    /// # Errors
    /// [`Error::Config`] if the result is not a URL (e.g. `path` contains a space).
    pub fn append(&self, path: &str) -> Result<Url, Error> {
        let joined = format!("{}/{}", self.text, path.trim_start_matches('/'));
        Url::parse(&joined).map_err(|e| Error::Config(format!("cannot build URL `{joined}`: {e}")))
    }

    /// `{base}/.well-known/smart-configuration` (SMART App Launch §"Retrieving
    /// .well-known/smart-configuration").
    pub fn well_known(&self) -> Url {
        self.append(".well-known/smart-configuration")
            .unwrap_or_else(|_| self.url())
    }

    /// Resolve a FHIR reference (`Patient/123`, or an absolute URL) against this base:
    /// relative references are appended, absolute URLs are kept.
    pub fn resolve_reference(&self, reference: &str) -> Option<Url> {
        match Url::parse(reference) {
            Ok(u) => Some(u),
            Err(_) => self.append(reference).ok(),
        }
    }
}

/// The user behind a token as a FHIR resource: the `fhirUser` claim of an `id_token` (or the
/// SMART v1 `profile` claim) and `fhirUser` in an introspection response (SMART App Launch
/// §"Scopes for requesting identity data", §"Token Introspection").
///
/// Kept as sent — an absolute URL (`https://ehr.example.org/fhir/Practitioner/7`) or a
/// reference relative to the FHIR base (`Practitioner/7`); [`url`](Self::url) resolves it.
///
/// ```
/// use smart_core::{FhirBaseUrl, FhirUser};
/// let user = FhirUser::new("Practitioner/7");
/// let base = FhirBaseUrl::new("https://ehr.example.org/fhir")?;
/// assert_eq!(user.url(&base).unwrap().as_str(), "https://ehr.example.org/fhir/Practitioner/7");
/// assert_eq!(user.resource_type(), Some("Practitioner"));
/// assert_eq!(user.id(), Some("7"));
/// # Ok::<(), smart_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct FhirUser(String);

/// FHIR resource types a `fhirUser` may name (`PractitionerRole` since SMART 2.1.0).
pub const FHIR_USER_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Person",
];

impl FhirUser {
    /// Wrap a `fhirUser` value as sent.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The value as sent: an absolute URL or a reference relative to the FHIR base.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute URL: as sent when absolute, else `{fhir_base}/{reference}` (string
    /// concatenation, never `Url::join`). `None` when it is neither.
    pub fn url(&self, fhir_base: &FhirBaseUrl) -> Option<Url> {
        fhir_base.resolve_reference(&self.0)
    }

    /// The resource type and id (e.g. `("Practitioner", "7")`) when the last two path
    /// segments name one of [`FHIR_USER_TYPES`] and a non-empty id.
    pub fn reference(&self) -> Option<(&str, &str)> {
        let user = self.0.split(['?', '#']).next()?;
        let mut segs = user.trim_end_matches('/').rsplit('/');
        let id = segs.next()?;
        let ty = segs.next()?;
        (FHIR_USER_TYPES.contains(&ty) && !id.is_empty()).then_some((ty, id))
    }

    /// The resource type of [`reference`](Self::reference) (`Practitioner`, `Patient`…).
    pub fn resource_type(&self) -> Option<&str> {
        self.reference().map(|(t, _)| t)
    }

    /// The resource id of [`reference`](Self::reference).
    pub fn id(&self) -> Option<&str> {
        self.reference().map(|(_, id)| id)
    }
}

impl std::fmt::Display for FhirUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FhirBaseUrl {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(&s)
    }
}

impl From<FhirBaseUrl> for String {
    fn from(b: FhirBaseUrl) -> Self {
        b.given
    }
}

impl std::fmt::Display for FhirBaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// An OAuth `client_id` (RFC 6749 §2.2). Not secret.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Wrap a client id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A server endpoint as advertised: the parsed [`Url`] that requests go to, and the
/// advertised text that every string comparison and claim uses.
///
/// `url::Url` normalises what it parses (an explicit default port such as `:443` is dropped,
/// the host is lower-cased, an empty path becomes `/`), but RFC 7523 §3 compares a client
/// assertion's `aud` with the token endpoint *as a string*: a server that advertises
/// `https://ehr.example.org:443/oauth2/token` may accept only that exact text. So an endpoint
/// keeps both:
///
/// * [`url`](Self::url) (also reachable through `Deref<Target = Url>`): where requests are
///   sent;
/// * [`as_str`](Self::as_str) and `Display`: the advertised text (trimmed of surrounding
///   whitespace), used as the `aud` of client assertions and in every comparison. For an
///   endpoint resolved from a relative reference (RFC 3986 §5.2) the text is the resolved
///   absolute URL.
///
/// `Serialize`/`Deserialize` use the advertised text as a JSON string, so stored documents
/// that held a plain URL string read back unchanged. An endpoint built from a [`Url`]
/// (`From<Url>`) has that URL's normalised text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    url: Url,
    text: String,
}

impl Endpoint {
    /// Parse an absolute URL, keeping `text` (trimmed) as the advertised text.
    ///
    /// # Errors
    /// The [`url::ParseError`] when `text` is not an absolute URL.
    pub fn parse(text: &str) -> Result<Self, url::ParseError> {
        let text = text.trim();
        Url::parse(text).map(|url| Self {
            url,
            text: text.to_owned(),
        })
    }

    /// Resolve `reference` against `base` by RFC 3986 §5.2 (the base's last path segment is
    /// replaced: `auth/token` against `https://ehr.example.org/fhir/r4` is
    /// `https://ehr.example.org/fhir/auth/token`). An absolute `reference` is kept with its
    /// text; a relative one gets the resolved URL as its text. Returns whether it was relative.
    ///
    /// # Errors
    /// The [`url::ParseError`] when `reference` is not a valid URL reference.
    pub fn resolve(reference: &str, base: &Url) -> Result<(Self, bool), url::ParseError> {
        match Self::parse(reference) {
            Ok(e) => Ok((e, false)),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                let url = base.join(reference.trim())?;
                Ok((Self::from(url), true))
            }
            Err(e) => Err(e),
        }
    }

    /// The parsed URL (where requests go).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The advertised text: the `aud` of client assertions and the value compared as a string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed URL, by value.
    pub fn into_url(self) -> Url {
        self.url
    }
}

impl From<Url> for Endpoint {
    /// An endpoint whose text is the URL's normalised form.
    fn from(url: Url) -> Self {
        Self {
            text: url.as_str().to_owned(),
            url,
        }
    }
}

impl From<&Url> for Endpoint {
    /// An endpoint whose text is the URL's normalised form.
    fn from(url: &Url) -> Self {
        Self::from(url.clone())
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(e: &Endpoint) -> Self {
        e.clone()
    }
}

impl std::ops::Deref for Endpoint {
    type Target = Url;
    fn deref(&self) -> &Url {
        &self.url
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Endpoint").field(&self.text).finish()
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_keeps_path_and_tolerates_one_slash() {
        // B01: base with a path keeps it; trailing slash does not produce `//`.
        for base in [
            "https://ehr.example.org/apis/fhir",
            "https://ehr.example.org/apis/fhir/",
        ] {
            let b = FhirBaseUrl::new(base).unwrap();
            assert_eq!(
                b.well_known().as_str(),
                "https://ehr.example.org/apis/fhir/.well-known/smart-configuration"
            );
            assert_eq!(b.as_str(), "https://ehr.example.org/apis/fhir");
            assert_eq!(b.as_given(), base, "aud keeps the base as given");
        }
        let root = FhirBaseUrl::new("https://ehr.example.org").unwrap();
        assert_eq!(
            root.well_known().as_str(),
            "https://ehr.example.org/.well-known/smart-configuration"
        );
    }

    #[test]
    fn endpoint_keeps_advertised_text_and_resolves_rfc3986() {
        let e = Endpoint::parse(" https://ehr.example.org:443/oauth2/token ").unwrap();
        assert_eq!(e.as_str(), "https://ehr.example.org:443/oauth2/token");
        assert_eq!(e.url().as_str(), "https://ehr.example.org/oauth2/token");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#""https://ehr.example.org:443/oauth2/token""#
        );
        let back: Endpoint =
            serde_json::from_str(r#""https://ehr.example.org:443/oauth2/token""#).unwrap();
        assert_eq!(back, e);
        let base = Url::parse("https://ehr.example.org/fhir/r4").unwrap();
        let (r, relative) = Endpoint::resolve("auth/token", &base).unwrap();
        assert!(relative);
        assert_eq!(r.as_str(), "https://ehr.example.org/fhir/auth/token");
        let (a, relative) = Endpoint::resolve("https://AUTH.example.org/t", &base).unwrap();
        assert!(!relative);
        assert_eq!(a.as_str(), "https://AUTH.example.org/t");
        assert_eq!(a.url().as_str(), "https://auth.example.org/t");
    }

    #[test]
    fn rejects_bad_bases() {
        for bad in [
            "",
            "ehr.example.org/fhir",
            "ftp://x/fhir",
            "https://x/fhir?a=b",
            "mailto:a@b",
        ] {
            assert!(FhirBaseUrl::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_resolve_by_appending() {
        let b = FhirBaseUrl::new("https://ehr.example.org/r4").unwrap();
        assert_eq!(
            b.resolve_reference("Practitioner/7").unwrap().as_str(),
            "https://ehr.example.org/r4/Practitioner/7"
        );
        assert_eq!(
            b.resolve_reference("https://other.org/fhir/Patient/1")
                .unwrap()
                .as_str(),
            "https://other.org/fhir/Patient/1"
        );
    }
}
