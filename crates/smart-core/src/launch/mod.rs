//! SMART App Launch (IG page "App Launch: Launch and Authorization"): EHR and standalone
//! launch, the authorization request with PKCE and `state`, callback validation, the code
//! exchange and refresh.
//!
//! The flow spans two HTTP handlers of the app (and possibly two processes), so its phases
//! are separate values:
//!
//! ```text
//!  EhrLaunch::from_url(launch URL)        Launch::standalone(fhir_base)
//!             │ iss allow-list checked here, before any request
//!             ▼
//!  LaunchFlow (Flow: discovery) ──Ready──▶ AuthorizationRequest { url, post, pending }
//!                                               │ redirect the browser to `url`
//!                                               │ keep `pending` in the user's session
//!                                               ▼
//!  PendingAuthorization::callback(self, app, redirect URL)   (consumes: single use)
//!        state (constant time) · error= · RFC 9207 iss · code
//!                                               ▼
//!  CodeExchange (Flow: POST token) ──Ready──▶ TokenResponse (launch context, id_token…)
//!                                               ▼
//!  Session (Flow: Ready while fresh, Send(refresh) within the skew window)
//! ```

use std::sync::Arc;

use url::Url;

use crate::client_auth::ClientAuth;
use crate::entropy::Entropy;
use crate::error::{CallbackError, Error};
use crate::types::{ClientId, FhirBaseUrl};

mod authorize;
mod callback;
mod exchange;

pub use authorize::{
    AuthorizationRequest, AuthorizePost, LaunchFlow, PendingAuthorization, authorize,
};
#[doc(hidden)]
pub use callback::fuzz_callback_url;
pub use callback::{CallbackParams, PendingAuthorizations, ValidatedCallback, parse_callback};
pub use exchange::CodeExchange;

/// An EHR launch: the `iss` (FHIR base) and opaque `launch` handle the EHR passed to the
/// app's launch URL (SMART App Launch §"EHR Launch").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EhrLaunch {
    /// The FHIR base URL from `iss`, kept as received for `aud`.
    pub iss: FhirBaseUrl,
    /// The `launch` value, byte-exact.
    pub launch: String,
}

impl EhrLaunch {
    /// Parse the URL the EHR opened (`https://app/launch?iss=…&launch=…`). Only the query
    /// matters; a bare query string (`iss=…&launch=…`, with or without `?`) is accepted too.
    ///
    /// Values are **percent-decoded exactly once, and `+` is kept as `+`** (RFC 3986 §2.1
    /// query semantics, not HTML form decoding): the opaque `launch` handle reaches the
    /// authorization request byte for byte, so `launch=ab+cd/==` and
    /// `launch=ab%2Bcd%2F%3D%3D` both give `ab+cd/==` (EHRs that put a raw `+` into the
    /// launch URL meant a `+`; a space is never valid in a launch token). The first occurrence
    /// of each parameter wins.
    ///
    /// # Errors
    /// [`CallbackError::MissingIss`] / [`CallbackError::MissingLaunch`] (before any
    /// request), [`Error::Config`] when `iss` is not an http(s) URL.
    pub fn from_url(launch_url: &str) -> Result<Self, Error> {
        let query = match Url::parse(launch_url) {
            Ok(u) => u.query().unwrap_or("").to_owned(),
            Err(_) => launch_url.trim_start_matches('?').to_owned(),
        };
        let mut iss = None;
        let mut launch = None;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match decode(k).as_str() {
                "iss" if iss.is_none() => iss = Some(decode(v)),
                "launch" if launch.is_none() => launch = Some(decode(v)),
                _ => {}
            }
        }
        let iss = iss
            .filter(|s| !s.is_empty())
            .ok_or(CallbackError::MissingIss)?;
        let launch = launch
            .filter(|s| !s.is_empty())
            .ok_or(CallbackError::MissingLaunch)?;
        Ok(Self {
            iss: FhirBaseUrl::new(&iss)?,
            launch,
        })
    }
}

/// Which FHIR servers an app accepts as `iss`: an unchecked `iss` decides where codes and
/// assertions go, so production EHR-launch apps should set one.
#[derive(Clone)]
pub enum IssAllowList {
    /// `iss` must equal one of these strings (after dropping one trailing `/` on both sides).
    Exact(Vec<String>),
    /// `iss` is accepted when the predicate returns `true`.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl IssAllowList {
    /// Whether `iss` is allowed.
    pub fn allows(&self, iss: &str) -> bool {
        let norm = |s: &str| s.strip_suffix('/').unwrap_or(s).to_owned();
        match self {
            Self::Exact(list) => list.iter().any(|a| norm(a) == norm(iss)),
            Self::Predicate(f) => f(iss),
        }
    }
}

impl std::fmt::Debug for IssAllowList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(list) => f.debug_tuple("Exact").field(list).finish(),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// An app's registration and request settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AppConfig {
    /// How the app authenticates at the token endpoint (public, symmetric, asymmetric).
    pub client_auth: ClientAuth,
    /// The registered `redirect_uri`, sent byte-for-byte (servers compare it exactly, query
    /// included).
    pub redirect_uri: String,
    /// Space-separated scopes to request, e.g. `launch openid fhirUser patient/*.rs`.
    pub scope: String,
    /// Accepted `iss` values for EHR launch; `None` accepts any (not recommended).
    pub iss_allow_list: Option<IssAllowList>,
    /// Permit plain-HTTP endpoints on non-loopback hosts.
    pub allow_insecure_http: bool,
    /// Refresh access tokens this many **seconds** before expiry (default 30).
    pub clock_skew_secs: u64,
    /// Where `state`, PKCE verifiers and assertion `jti`s come from (default: the operating
    /// system's generator; see [`default_entropy`](crate::entropy::default_entropy)).
    pub entropy: Arc<dyn Entropy>,
    /// Extra authorization-request parameters (e.g. `login_hint`, `prompt`), appended after
    /// the SMART ones. Names the library sets itself are refused by
    /// [`with_authorize_param`](Self::with_authorize_param).
    pub extra_authorize_params: Vec<(String, String)>,
}

/// Authorization-request parameters the library sets itself.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "launch",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
];

impl AppConfig {
    /// A configuration with the defaults (no allow-list, https only, 30 s skew).
    ///
    /// # Errors
    /// [`Error::Config`] if `redirect_uri` is not an absolute URL without a fragment.
    pub fn new(
        client_auth: ClientAuth,
        redirect_uri: impl Into<String>,
        scope: impl Into<String>,
    ) -> Result<Self, Error> {
        let redirect_uri = redirect_uri.into();
        let parsed = Url::parse(&redirect_uri).map_err(|e| {
            Error::Config(format!("redirect_uri `{redirect_uri}` is not a URL: {e}"))
        })?;
        if parsed.fragment().is_some() {
            return Err(Error::Config(
                "redirect_uri must not contain a fragment (RFC 6749 §3.1.2)".into(),
            ));
        }
        Ok(Self {
            client_auth,
            redirect_uri,
            scope: scope.into(),
            iss_allow_list: None,
            allow_insecure_http: false,
            clock_skew_secs: 30,
            entropy: crate::entropy::default_entropy(),
            extra_authorize_params: Vec::new(),
        })
    }

    /// Add an extra authorization-request parameter such as `login_hint`.
    ///
    /// # Errors
    /// [`Error::Config`] for a parameter the library sets itself (`state`, `aud`, PKCE…).
    pub fn with_authorize_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, Error> {
        let name = name.into();
        if RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()) {
            return Err(Error::Config(format!(
                "authorization parameter `{name}` is set by the library"
            )));
        }
        self.extra_authorize_params.push((name, value.into()));
        Ok(self)
    }

    /// Draw `state`, PKCE verifiers and assertion `jti`s from `entropy` (tests use a
    /// deterministic source).
    #[must_use]
    pub fn with_entropy(mut self, entropy: Arc<dyn Entropy>) -> Self {
        self.entropy = entropy;
        self
    }

    /// Only accept these `iss` values.
    #[must_use]
    pub fn with_iss_allow_list(mut self, list: IssAllowList) -> Self {
        self.iss_allow_list = Some(list);
        self
    }

    /// Permit plain-HTTP endpoints on non-loopback hosts.
    #[must_use]
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Refresh `secs` seconds before expiry.
    #[must_use]
    pub fn with_clock_skew_secs(mut self, secs: u64) -> Self {
        self.clock_skew_secs = secs;
        self
    }

    /// The `client_id`.
    pub fn client_id(&self) -> &ClientId {
        self.client_auth.client_id()
    }
}

/// The launch to start: EHR (with `launch`) or standalone.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Launch {
    /// EHR launch: `iss` and `launch` from the EHR.
    Ehr(EhrLaunch),
    /// Standalone launch against a configured FHIR base.
    Standalone(FhirBaseUrl),
}

impl Launch {
    /// A standalone launch.
    pub fn standalone(fhir_base: FhirBaseUrl) -> Self {
        Self::Standalone(fhir_base)
    }

    /// The FHIR base (`iss` or the configured base).
    pub fn fhir_base(&self) -> &FhirBaseUrl {
        match self {
            Self::Ehr(e) => &e.iss,
            Self::Standalone(b) => b,
        }
    }

    /// The `launch` parameter, for EHR launch only.
    pub fn launch_param(&self) -> Option<&str> {
        match self {
            Self::Ehr(e) => Some(&e.launch),
            Self::Standalone(_) => None,
        }
    }
}
