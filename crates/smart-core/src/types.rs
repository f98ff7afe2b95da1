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
    /// sent as `aud` (AUTHZ-06; case B01: slash normalisation applies to building URLs, not
    /// to `aud`).
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
