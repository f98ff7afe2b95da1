//! Discovery: `.well-known/smart-configuration` (SMART App Launch §"Conformance"), with the
//! deprecated CapabilityStatement `oauth-uris` extension as an optional fallback.
//!
//! * [`parse_smart_configuration`] and [`parse_capability_statement`] are pure parsers.
//! * [`Discovery`] is the sans-IO [`Flow`] that fetches
//!   `{base}/.well-known/smart-configuration` and, only if that answer is unusable (non-2xx or
//!   not JSON), `{base}/metadata` — one request at a time, never both at once.
//!
//! Parsing is lenient where the spec and real servers disagree: missing `capabilities`,
//! missing `code_challenge_methods_supported`, unknown and legacy capability strings and
//! relative endpoint URLs are accepted and reported as [`DiscoveryWarning`]s (the rules are
//! listed in `docs/non-conforming-servers.md`). Only `token_endpoint` is a hard requirement.
//!
//! **PKCE decision.** Discovery never fails because of
//! `code_challenge_methods_supported`: a backend-services client has no use for PKCE, and an
//! App Launch client always uses `S256` and never `plain`, whatever the document lists. A
//! missing list, or a list without `S256` (or with `plain`), produces a warning. Callers that
//! want to refuse such servers use [`SmartConfiguration::require_s256`], which returns
//! [`DiscoveryErrorKind::PkceS256Unsupported`] when the list is present and lacks `S256`.

mod capability_statement;
mod config;
mod members;
mod parse;

pub use capability_statement::parse_capability_statement;
pub use config::{
    AssociatedEndpoint, CAPABILITIES_EXTENSION, Capability, ConfigSource, Discovered,
    DiscoveryWarning, Identifier, OAUTH_URIS_EXTENSION, SmartConfiguration, WarningKind,
};
pub(crate) use parse::json_type;
pub use parse::parse_smart_configuration;

use crate::error::{DiscoveryError, DiscoveryErrorKind, Error, TransportError};
use crate::flow::{Action, Flow, HttpRequest, HttpResponse};
use crate::http::Purpose;
use crate::request::DocumentGet;
use crate::time::UnixTime;
use crate::types::FhirBaseUrl;
use url::Url;

#[derive(Debug)]
enum Phase {
    /// `{base}/.well-known/smart-configuration` (and its redirects).
    WellKnown(DocumentGet),
    /// `{base}/metadata` after an unusable well-known answer (status and kind of that answer).
    Metadata {
        get: DocumentGet,
        status: Option<u16>,
    },
}

impl Phase {
    fn get(&mut self) -> &mut DocumentGet {
        match self {
            Self::WellKnown(g) | Self::Metadata { get: g, .. } => g,
        }
    }
}

#[derive(Debug)]
enum State {
    /// The next poll sends the current request of the phase.
    Pending(Phase),
    /// The current request of the phase is in flight.
    InFlight(Phase),
    Done(Box<Discovered>),
    Failed(Error),
    Finished,
}

/// The discovery [`Flow`] (one-shot; output: [`Discovered`]).
///
/// 1. `GET {base}/.well-known/smart-configuration` with `Accept: application/json`,
///    following up to five redirects (each target https, or http to loopback). A 2xx JSON
///    answer is parsed with [`parse_smart_configuration`] against the FHIR base as given
///    (never against a redirect target); its result, success *or* error, is final:
///    `/metadata` is not consulted.
/// 2. Only if that answer is unusable — a non-2xx status other than 429 and 503, or a body
///    that is not JSON (an HTML page) — and the fallback is enabled: `GET {base}/metadata`
///    (after the first answer arrived; never both at once), parsed with
///    [`parse_capability_statement`]. A `429`/`503` (the server is busy, not lacking the
///    document) or a transport failure ends discovery without the fallback.
/// 3. If both fail: [`Error::Discovery`] with the well-known URL and status and kind
///    [`NoUsableSource`](DiscoveryErrorKind::NoUsableSource); with the fallback disabled, the
///    well-known failure itself ([`Status`](DiscoveryErrorKind::Status) or
///    [`NotJson`](DiscoveryErrorKind::NotJson)).
///
/// Errors are returned from the `handle_*` call and again from every later
/// [`poll`](Flow::poll).
#[derive(Debug)]
pub struct Discovery {
    base: FhirBaseUrl,
    fallback: bool,
    allow_insecure_http: bool,
    state: State,
}

impl Discovery {
    /// Discovery for the FHIR server at `base`, with the CapabilityStatement fallback enabled.
    pub fn new(base: FhirBaseUrl) -> Self {
        let get = DocumentGet::new(
            HttpRequest::get_json(base.well_known()).with_purpose(Purpose::Discovery),
            false,
        );
        Self {
            base,
            fallback: true,
            allow_insecure_http: false,
            state: State::Pending(Phase::WellKnown(get)),
        }
    }

    /// Disable the CapabilityStatement fallback: only the well-known document is used.
    #[must_use]
    pub fn without_fallback(mut self) -> Self {
        self.fallback = false;
        self
    }

    /// Let redirects lead to plain `http://` on non-loopback hosts (never in production).
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        if let State::Pending(Phase::WellKnown(_)) = self.state {
            self.state = State::Pending(Phase::WellKnown(DocumentGet::new(
                HttpRequest::get_json(self.well_known_url()).with_purpose(Purpose::Discovery),
                allow,
            )));
        }
        self
    }

    /// The well-known URL this flow fetches first.
    pub fn well_known_url(&self) -> Url {
        self.base.well_known()
    }

    /// The `/metadata` URL of the fallback.
    pub fn metadata_url(&self) -> Url {
        self.base
            .append("metadata")
            .unwrap_or_else(|_| self.base.url())
    }

    fn wk_error(&self, status: Option<u16>, kind: DiscoveryErrorKind) -> Error {
        Error::Discovery(DiscoveryError {
            url: self.well_known_url().to_string(),
            status,
            kind,
        })
    }

    fn fail(&mut self, e: Error) -> Result<(), Error> {
        self.state = State::Failed(e.clone());
        Err(e)
    }

    fn metadata_phase(&self, status: Option<u16>) -> Phase {
        let mut req = HttpRequest::get_json(self.metadata_url()).with_purpose(Purpose::Metadata);
        req.headers = vec![(
            "accept".into(),
            "application/fhir+json, application/json".into(),
        )];
        Phase::Metadata {
            get: DocumentGet::new(req, self.allow_insecure_http),
            status,
        }
    }

    fn well_known_answer(&mut self, response: HttpResponse, url: &Url) -> Result<(), Error> {
        let status = Some(response.status);
        let unusable = if !response.is_success() {
            Some(DiscoveryErrorKind::Status)
        } else if serde_json::from_slice::<serde::de::IgnoredAny>(
            crate::lenient::strip_bom(&response.body).0,
        )
        .is_err()
        {
            Some(DiscoveryErrorKind::NotJson)
        } else {
            None
        };
        match unusable {
            None => match parse_smart_configuration(&response.body, &self.base, url) {
                Ok(d) => {
                    self.state = State::Done(Box::new(d));
                    Ok(())
                }
                Err(Error::Discovery(mut e)) => {
                    e.status = status;
                    self.fail(Error::Discovery(e))
                }
                Err(e) => self.fail(e),
            },
            // Busy, not missing: the fallback would only add load (and fail the same way).
            Some(kind) if matches!(response.status, 429 | 503) => {
                let e = self.wk_error(status, kind);
                self.fail(e)
            }
            Some(_) if self.fallback => {
                self.state = State::Pending(self.metadata_phase(status));
                Ok(())
            }
            Some(kind) => {
                let e = self.wk_error(status, kind);
                self.fail(e)
            }
        }
    }

    fn metadata_answer(
        &mut self,
        response: HttpResponse,
        url: &Url,
        status: Option<u16>,
    ) -> Result<(), Error> {
        let parsed = if response.is_success() {
            parse_capability_statement(&response.body, &self.base, url).ok()
        } else {
            None
        };
        match parsed {
            Some(d) => {
                self.state = State::Done(Box::new(d));
                Ok(())
            }
            None => {
                let e = self.wk_error(status, DiscoveryErrorKind::NoUsableSource);
                self.fail(e)
            }
        }
    }
}

impl Flow for Discovery {
    type Output = Discovered;

    fn poll(&mut self, _now: UnixTime) -> Result<Action<Discovered>, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Pending(mut phase) => {
                let req = phase.get().request();
                self.state = State::InFlight(phase);
                Ok(Action::Send(req))
            }
            State::Done(d) => Ok(Action::Ready(*d)),
            State::Failed(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
            s @ State::InFlight(_) => {
                self.state = s;
                Err(Error::Misuse(
                    "poll called while a discovery request is in flight",
                ))
            }
            State::Finished => Err(Error::Misuse("discovery already produced its output")),
        }
    }

    fn handle_response(&mut self, response: HttpResponse, _now: UnixTime) -> Result<(), Error> {
        if !matches!(self.state, State::InFlight(_)) {
            // Nothing in flight: the state stays as it was.
            return Err(Error::Misuse(
                "handle_response called with no discovery request in flight",
            ));
        }
        let State::InFlight(mut phase) = std::mem::replace(&mut self.state, State::Finished) else {
            return Err(Error::Misuse(
                "handle_response called with no discovery request in flight",
            ));
        };
        let answer = match phase.get().handle(response) {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                self.state = State::Pending(phase);
                return Ok(());
            }
            Err(e) => return self.fail(e),
        };
        let url = phase.get().url().clone();
        match phase {
            Phase::WellKnown(_) => self.well_known_answer(answer, &url),
            Phase::Metadata { status, .. } => self.metadata_answer(answer, &url, status),
        }
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        _now: UnixTime,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::InFlight(_)) {
            return Err(Error::Misuse(
                "handle_transport_error called with no discovery request in flight",
            ));
        }
        // A timeout or refused connection would hit /metadata on the same host alike.
        self.fail(Error::Transport(error))
    }

    fn abort(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Finished) {
            State::InFlight(phase) => State::Pending(phase),
            other => other,
        };
    }
}

/// Fuzz entry point: parse arbitrary bytes as a smart-configuration (and as a
/// CapabilityStatement); must never panic. A parsed configuration must survive a serde
/// round trip unchanged (floats in unknown members up to rounding).
#[doc(hidden)]
pub fn fuzz_smart_configuration(data: &[u8]) {
    let Ok(base) = FhirBaseUrl::new("https://ehr.example.org/fhir") else {
        return;
    };
    let url = base.well_known();
    if let Ok(d) = parse_smart_configuration(data, &base, &url) {
        let json = serde_json::to_vec(&d.config).expect("a parsed configuration serializes");
        let back: SmartConfiguration =
            serde_json::from_slice(&json).expect("a serialized configuration deserializes");
        crate::fuzzing::assert_json_approx_eq(&back, &d.config, "configuration serde round trip");
        let again =
            parse_smart_configuration(&json, &base, &url).expect("re-parse of serialized form");
        crate::fuzzing::assert_json_approx_eq(&again.config, &d.config, "configuration re-parse");
    }
    let _ = parse_capability_statement(data, &base, &url);
}
