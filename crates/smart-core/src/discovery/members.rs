//! The context both discovery parsers read members with: the FHIR base and document URL,
//! the warnings collected so far, and the readers for endpoints and capabilities.

use super::config::LEGACY_CAPABILITIES;
use super::*;
use crate::error::{DiscoveryError, DiscoveryErrorKind, Error};
use crate::lenient::{self, LStr, Notes};
use crate::types::{Endpoint, FhirBaseUrl};
use url::Url;

pub(super) struct Ctx<'a> {
    pub(super) base: &'a FhirBaseUrl,
    pub(super) url: &'a Url,
    pub(super) warnings: Vec<DiscoveryWarning>,
    /// The FHIR base as given, parsed once when a relative endpoint needs it.
    base_url: Option<Url>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(base: &'a FhirBaseUrl, url: &'a Url) -> Self {
        Self {
            base,
            url,
            warnings: Vec::new(),
            base_url: None,
        }
    }

    pub(super) fn warn(&mut self, field: &str, kind: WarningKind, message: impl Into<String>) {
        self.warnings.push(DiscoveryWarning {
            field: field.to_owned(),
            kind,
            message: message.into(),
        });
    }

    /// Turn the tolerant readers' notes into warnings.
    pub(super) fn notes(&mut self, notes: Notes) {
        for n in notes.0 {
            let message = n.to_string();
            self.warn(&n.field, WarningKind::WrongType, message);
        }
    }

    pub(super) fn err(&self, kind: DiscoveryErrorKind) -> Error {
        Error::Discovery(DiscoveryError {
            url: self.url.to_string(),
            status: None,
            kind,
        })
    }

    pub(super) fn invalid(&self, msg: impl Into<String>) -> Error {
        self.err(DiscoveryErrorKind::Invalid(msg.into()))
    }

    /// Resolve an endpoint URL (RFC 3986 §5.2): an absolute URL is kept with its advertised
    /// text; a relative one is resolved against the FHIR base **exactly as given** (so the
    /// base's last path segment is replaced unless the base ends in `/`), with a warning.
    pub(super) fn endpoint(&mut self, field: &str, text: &str) -> Result<Endpoint, Error> {
        let endpoint = self.resolve(field, text)?;
        if !crate::http::is_secure_or_loopback(endpoint.url()) {
            self.warn(
                field,
                WarningKind::Insecure,
                "not an https (or loopback http) URL; flows will refuse to send credentials to it",
            );
        }
        Ok(endpoint)
    }

    fn resolve(&mut self, field: &str, text: &str) -> Result<Endpoint, Error> {
        match Endpoint::parse(text) {
            Ok(e) => Ok(e),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                if self.base_url.is_none() {
                    self.base_url =
                        Some(Url::parse(self.base.as_given()).map_err(|_| {
                            self.invalid(format!("`{field}`: FHIR base is not a URL"))
                        })?);
                }
                let base = self
                    .base_url
                    .as_ref()
                    .map_or_else(|| self.base.url(), Url::clone);
                let (resolved, _) = Endpoint::resolve(text, &base).map_err(|e| {
                    self.invalid(format!("`{field}` is not a valid URL reference: {e}"))
                })?;
                self.warn(
                    field,
                    WarningKind::RelativeUrlResolved,
                    format!(
                        "relative URL resolved against the FHIR base (RFC 3986 §5.2) to {resolved}"
                    ),
                );
                Ok(resolved)
            }
            Err(e) => Err(self.invalid(format!("`{field}` is not a valid URL: {e}"))),
        }
    }

    /// An optional endpoint: `None` when absent or null; a wrong type, an empty string or an
    /// invalid URL is dropped with a warning.
    pub(super) fn opt_endpoint(&mut self, field: &str, v: LStr) -> Option<Endpoint> {
        match v.0 {
            lenient::Seen::Null => None,
            lenient::Seen::Wrong(t) => {
                self.warn(
                    field,
                    WarningKind::WrongType,
                    format!("`{field}` is {t}, not a URL string; ignored"),
                );
                None
            }
            lenient::Seen::Ok(s) if s.trim().is_empty() => {
                self.warn(field, WarningKind::Other, "empty string treated as absent");
                None
            }
            lenient::Seen::Ok(s) => match self.endpoint(field, s.trim()) {
                Ok(e) => Some(e),
                Err(e) => {
                    let why = match e {
                        Error::Discovery(DiscoveryError {
                            kind: DiscoveryErrorKind::Invalid(m),
                            ..
                        }) => m,
                        other => other.to_string(),
                    };
                    self.warn(field, WarningKind::InvalidUrl, format!("{why}; ignored"));
                    None
                }
            },
        }
    }

    pub(super) fn capabilities(&mut self, field: &str, list: Vec<String>) -> Vec<Capability> {
        list.into_iter()
            .map(|s| {
                if let Some((old, new)) = LEGACY_CAPABILITIES.iter().find(|(old, _)| *old == s) {
                    self.warn(
                        field,
                        WarningKind::LegacyCapability,
                        format!("pre-STU1 capability `{old}` (now `{new}`) kept as an unknown capability"),
                    );
                }
                Capability::from(s.as_str())
            })
            .collect()
    }
}
