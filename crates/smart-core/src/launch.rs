//! SMART App Launch (spec digest §3): EHR and standalone launch, the authorization request
//! with PKCE and `state`, callback validation, the code exchange and refresh.
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
use crate::discovery::{Capability, Discovered, Discovery, SmartConfiguration};
use crate::entropy::Entropy;
use crate::error::{CallbackError, Document, Error, OAuthError, ParseError};
use crate::flow::{Action, Flow, HttpRequest, HttpResponse, check_url_security, form_body};
use crate::pkce::{
    CODE_CHALLENGE_METHOD, code_challenge_s256, generate_code_verifier, generate_state,
};
use crate::secret::{
    AuthorizationCode, CsrfToken, PkceCodeVerifier, RefreshToken, constant_time_eq,
};
use crate::time::UnixTime;
use crate::token::{TokenResponse, parse_token_response};
use crate::types::{ClientId, FhirBaseUrl};

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
    /// # Errors
    /// [`CallbackError::MissingIss`] / [`CallbackError::MissingLaunch`] (case B01c: before
    /// any request), [`Error::Config`] when `iss` is not an http(s) URL.
    pub fn from_url(launch_url: &str) -> Result<Self, Error> {
        let query = match Url::parse(launch_url) {
            Ok(u) => u.query().unwrap_or("").to_owned(),
            Err(_) => launch_url.trim_start_matches('?').to_owned(),
        };
        let mut iss = None;
        let mut launch = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "iss" if iss.is_none() => iss = Some(v.into_owned()),
                "launch" if launch.is_none() => launch = Some(v.into_owned()),
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
    /// The registered `redirect_uri`, sent byte-for-byte (case B08).
    pub redirect_uri: String,
    /// Space-separated scopes to request (AUTHZ-04), e.g. `launch openid fhirUser patient/*.rs`.
    pub scope: String,
    /// Accepted `iss` values for EHR launch; `None` accepts any (not recommended).
    pub iss_allow_list: Option<IssAllowList>,
    /// Permit plain-HTTP endpoints on non-loopback hosts.
    pub allow_insecure_http: bool,
    /// Refresh access tokens this many **seconds** before expiry (default 30).
    pub clock_skew_secs: u64,
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

/// The app's state between the redirect and the callback: store it in the user's session
/// (it serializes with serde) and pass it to [`callback`](Self::callback) once. It is not
/// `Clone` and `callback` consumes it, so one authorization cannot be redeemed twice in
/// process; a store must delete it when it is taken (REDIR-01, case B12c).
///
/// It contains the PKCE `code_verifier` and `state`: keep it server side or encrypted.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingAuthorization {
    /// The `state` sent (≥ 256 random bits).
    pub state: CsrfToken,
    /// The PKCE `code_verifier` whose S256 challenge was sent.
    pub code_verifier: PkceCodeVerifier,
    /// The `redirect_uri` sent, byte-exact.
    pub redirect_uri: String,
    /// The FHIR base (`aud`), as given.
    pub fhir_base: FhirBaseUrl,
    /// The issuer the callback's RFC 9207 `iss` must match: the discovered `issuer`, if any.
    pub issuer: Option<String>,
    /// The token endpoint the code will be posted to.
    pub token_endpoint: Url,
    /// The `client_id` the request used.
    pub client_id: ClientId,
    /// The scope requested.
    pub scope: String,
    /// `launch` for an EHR launch.
    pub launch: Option<String>,
    /// When the request was built (seconds since the epoch).
    pub created_at: UnixTime,
    /// Whether the callback must carry RFC 9207 `iss`: the server advertised
    /// `authorization_response_iss_parameter_supported: true` (RFC 9207 §3) and an `issuer`.
    #[serde(default)]
    pub require_iss: bool,
}

/// A POST form for the authorization endpoint (`authorize-post`), e.g. to render an
/// auto-submitting HTML form. `Debug` redacts the `state` value.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizePost {
    /// The form's `action`: the authorization endpoint.
    pub action: Url,
    /// The fields, in order, not yet encoded.
    pub fields: Vec<(String, String)>,
}

impl AuthorizePost {
    /// The fields as an `application/x-www-form-urlencoded` body.
    pub fn body(&self) -> String {
        form_body(self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl std::fmt::Debug for AuthorizePost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if k == "state" {
                        "[redacted]"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("AuthorizePost")
            .field("action", &self.action.as_str())
            .field("fields", &fields)
            .finish()
    }
}

/// `url` with the value of every `state` query parameter replaced by `[redacted]` (for `Debug`).
fn redact_state_param(url: &Url) -> String {
    let Some(query) = url.query() else {
        return url.to_string();
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k == "state" => format!("{k}=[redacted]"),
            _ => pair.to_owned(),
        })
        .collect();
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    format!("{u}?{}", redacted.join("&"))
}

/// The result of starting a launch: where to send the browser, and what to remember.
/// `Debug` redacts `state` in `url` and `post` (the verifier is redacted in `pending`).
pub struct AuthorizationRequest {
    /// The GET URL for the authorization endpoint.
    pub url: Url,
    /// The POST alternative, when the server advertises `authorize-post`.
    pub post: Option<AuthorizePost>,
    /// What to keep in the user's session until the callback.
    pub pending: PendingAuthorization,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &redact_state_param(&self.url))
            .field("post", &self.post)
            .field("pending", &self.pending)
            .finish()
    }
}

/// Build the authorization request (AUTHZ-01..AUTHZ-08) from a discovered configuration.
///
/// Fresh PKCE verifier (S256; sent even when discovery omits
/// `code_challenge_methods_supported`, case B03) and fresh `state`; `aud` = the FHIR base as
/// given; `launch` only for an EHR launch; every parameter percent-encoded (case B10).
///
/// # Errors
/// [`Error::Discovery`] when the server has no `authorization_endpoint` or lists PKCE
/// methods without `S256`; [`Error::InsecureUrl`]; [`Error::Entropy`].
pub fn authorize(
    app: &AppConfig,
    launch: &Launch,
    config: &SmartConfiguration,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<AuthorizationRequest, Error> {
    let discovery_error = |kind| {
        Error::Discovery(crate::error::DiscoveryError {
            url: launch.fhir_base().well_known().to_string(),
            status: None,
            kind,
        })
    };
    let endpoint = config.authorization_endpoint.clone().ok_or_else(|| {
        discovery_error(crate::error::DiscoveryErrorKind::MissingField(
            "authorization_endpoint",
        ))
    })?;
    if !config.code_challenge_methods_supported.is_empty()
        && !config
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == CODE_CHALLENGE_METHOD)
    {
        return Err(discovery_error(
            crate::error::DiscoveryErrorKind::PkceS256Unsupported,
        ));
    }
    check_url_security(&endpoint, app.allow_insecure_http)?;
    check_url_security(&config.token_endpoint, app.allow_insecure_http)?;

    let code_verifier = generate_code_verifier(entropy)?;
    let state = generate_state(entropy)?;
    let scope = app.scope.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut fields: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), app.client_id().as_str().into()),
        ("redirect_uri".into(), app.redirect_uri.clone()),
    ];
    if let Some(l) = launch.launch_param() {
        fields.push(("launch".into(), l.into()));
    }
    fields.extend([
        ("scope".into(), scope.clone()),
        ("state".into(), state.secret().into()),
        ("aud".into(), launch.fhir_base().as_given().into()),
        ("code_challenge".into(), code_challenge_s256(&code_verifier)),
        ("code_challenge_method".into(), CODE_CHALLENGE_METHOD.into()),
    ]);
    fields.extend(app.extra_authorize_params.iter().cloned());

    let mut url = endpoint.clone();
    let ours = form_body(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{ours}"),
        _ => ours,
    };
    url.set_query(Some(&query));
    let post = config
        .has_capability(&Capability::AuthorizePost)
        .then_some(AuthorizePost {
            action: endpoint,
            fields,
        });
    Ok(AuthorizationRequest {
        url,
        post,
        pending: PendingAuthorization {
            state,
            code_verifier,
            redirect_uri: app.redirect_uri.clone(),
            fhir_base: launch.fhir_base().clone(),
            issuer: config.issuer.clone(),
            token_endpoint: config.token_endpoint.clone(),
            client_id: app.client_id().clone(),
            scope,
            launch: launch.launch_param().map(str::to_owned),
            created_at: now,
            require_iss: config.issuer.is_some()
                && config
                    .extra
                    .get("authorization_response_iss_parameter_supported")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
        },
    })
}

/// Discovery, then [`authorize`]: a [`Flow`] whose output is the [`AuthorizationRequest`].
/// The `iss` allow-list is checked in [`LaunchFlow::new`], before any request.
#[derive(Debug)]
pub struct LaunchFlow {
    app: AppConfig,
    launch: Launch,
    entropy: Arc<dyn Entropy>,
    discovery: Discovery,
    discovered: Option<Discovered>,
}

impl LaunchFlow {
    /// Start a launch.
    ///
    /// # Errors
    /// [`CallbackError::IssNotAllowed`] when an EHR launch's `iss` is not on the allow-list;
    /// [`Error::InsecureUrl`] for a plain-HTTP base on a non-loopback host.
    pub fn new(app: AppConfig, launch: Launch, entropy: Arc<dyn Entropy>) -> Result<Self, Error> {
        if let (Launch::Ehr(e), Some(list)) = (&launch, &app.iss_allow_list) {
            if !list.allows(e.iss.as_given()) {
                return Err(CallbackError::IssNotAllowed(e.iss.as_given().to_owned()).into());
            }
        }
        check_url_security(&launch.fhir_base().url(), app.allow_insecure_http)?;
        let discovery = Discovery::new(launch.fhir_base().clone());
        Ok(Self {
            app,
            launch,
            entropy,
            discovery,
            discovered: None,
        })
    }

    /// The discovery result, once available (warnings, source).
    pub fn discovered(&self) -> Option<&Discovered> {
        self.discovered.as_ref()
    }
}

impl Flow for LaunchFlow {
    type Output = AuthorizationRequest;

    fn poll(&mut self, now: UnixTime) -> Result<Action<AuthorizationRequest>, Error> {
        if self.discovered.is_none() {
            match self.discovery.poll(now)? {
                Action::Send(r) => return Ok(Action::Send(r)),
                Action::Ready(d) => self.discovered = Some(d),
            }
        }
        let Some(d) = &self.discovered else {
            return Err(Error::Misuse("no discovery result"));
        };
        authorize(
            &self.app,
            &self.launch,
            &d.config,
            now,
            self.entropy.as_ref(),
        )
        .map(Action::Ready)
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        self.discovery.handle_response(response, now)
    }

    fn abort(&mut self) {
        self.discovery.abort();
    }
}

/// The parameters of an authorization redirect (RFC 6749 §4.1.2 / §4.1.2.1, RFC 9207).
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackParams {
    /// `code`, if present.
    pub code: Option<AuthorizationCode>,
    /// `state`, if present.
    pub state: Option<String>,
    /// `error`, if present.
    pub error: Option<String>,
    /// `error_description`, if present.
    pub error_description: Option<String>,
    /// `error_uri`, if present.
    pub error_uri: Option<String>,
    /// RFC 9207 `iss`, if present (the *authorization server's* issuer, not the FHIR base).
    pub iss: Option<String>,
    /// The callback URL without its query, for comparison with `redirect_uri`.
    pub base: String,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code)
            .field("state", &self.state.as_ref().map(|_| "[redacted]"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

/// Parse a redirect URL. The first occurrence of each parameter wins; unknown parameters
/// (such as a registered `redirect_uri`'s own query, case B08) are ignored.
///
/// # Errors
/// [`Error::Parse`] with [`Document::CallbackUrl`] when it is not an absolute URL.
pub fn parse_callback(redirect_url: &str) -> Result<CallbackParams, Error> {
    let url = Url::parse(redirect_url)
        .map_err(|e| ParseError::new(Document::CallbackUrl, format!("not an absolute URL: {e}")))?;
    let mut p = CallbackParams {
        code: None,
        state: None,
        error: None,
        error_description: None,
        error_uri: None,
        iss: None,
        base: url_without_query(&url),
    };
    for (k, v) in url.query_pairs() {
        let v = v.into_owned();
        match k.as_ref() {
            "code" if p.code.is_none() => p.code = Some(AuthorizationCode::new(v)),
            "state" if p.state.is_none() => p.state = Some(v),
            "error" if p.error.is_none() => p.error = Some(v),
            "error_description" if p.error_description.is_none() => p.error_description = Some(v),
            "error_uri" if p.error_uri.is_none() => p.error_uri = Some(v),
            "iss" if p.iss.is_none() => p.iss = Some(v),
            _ => {}
        }
    }
    Ok(p)
}

fn url_without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The outcome of a validated callback, with any warnings (e.g. an RFC 9207 `iss` that could
/// not be checked because discovery had no `issuer`, case B11c).
#[derive(Debug)]
pub struct ValidatedCallback {
    /// The code exchange to run.
    pub exchange: CodeExchange,
    /// Non-fatal observations.
    pub warnings: Vec<String>,
}

impl PendingAuthorization {
    /// Validate the redirect (REDIR-01, REDIR-02, RFC 9207) and produce the code exchange.
    /// Consumes `self`: the pending entry is spent whatever the outcome.
    ///
    /// Checks in order: `state` present ([`CallbackError::MissingState`]) and equal in
    /// constant time ([`CallbackError::StateMismatch`]); the URL matches `redirect_uri`
    /// ([`CallbackError::RedirectUriMismatch`]); an `error` parameter
    /// ([`CallbackError::Authorization`]); RFC 9207 `iss`, when present, equal to the
    /// discovered issuer ([`CallbackError::IssuerMismatch`]; when discovery had no issuer the
    /// check is skipped with a warning, case B11c; a missing `iss` is
    /// [`CallbackError::MissingIssuer`] when the server advertised
    /// `authorization_response_iss_parameter_supported`); a `code`
    /// ([`CallbackError::MissingCode`]).
    /// No request is made on any error.
    ///
    /// # Errors
    /// [`Error::Callback`] as above; [`Error::Parse`] for a malformed URL; [`Error::Config`]
    /// if `app` has another `client_id` than the request.
    pub fn callback(self, app: &AppConfig, redirect_url: &str) -> Result<ValidatedCallback, Error> {
        let p = parse_callback(redirect_url)?;
        let state = p.state.as_deref().ok_or(CallbackError::MissingState)?;
        if !constant_time_eq(state, self.state.secret()) {
            return Err(CallbackError::StateMismatch.into());
        }
        let expected = Url::parse(&self.redirect_uri)
            .map(|u| url_without_query(&u))
            .unwrap_or_default();
        if p.base != expected {
            return Err(CallbackError::RedirectUriMismatch.into());
        }
        if let Some(error) = p.error {
            // Redirect parameters are attacker-reachable text: same treatment as token-endpoint
            // error bodies (control characters removed, length capped) before they reach logs.
            let clean = |s: &str| {
                Some(crate::token::clean_text(s).trim().to_owned()).filter(|t| !t.is_empty())
            };
            return Err(CallbackError::Authorization(OAuthError {
                status: None,
                error: clean(&error).unwrap_or_default(),
                error_description: p.error_description.as_deref().and_then(clean),
                error_uri: p.error_uri.as_deref().and_then(clean),
            })
            .into());
        }
        let mut warnings = Vec::new();
        if p.iss.is_none() && self.require_iss {
            return Err(CallbackError::MissingIssuer.into());
        }
        if let Some(iss) = &p.iss {
            match &self.issuer {
                Some(expected) if iss != expected => {
                    return Err(CallbackError::IssuerMismatch {
                        expected: expected.clone(),
                        received: crate::token::clean_text(iss),
                    }
                    .into());
                }
                Some(_) => {}
                None => warnings.push(format!(
                    "callback carries RFC 9207 iss {}, but discovery gave no issuer to check it against",
                    crate::token::clean_text(iss)
                )),
            }
        }
        // An empty `code=` is no code: never post an empty authorization code.
        let code = p
            .code
            .filter(|c| !c.secret().is_empty())
            .ok_or(CallbackError::MissingCode)?;
        if app.client_id() != &self.client_id {
            return Err(Error::Config(
                "the app's client_id differs from the authorization request's".into(),
            ));
        }
        Ok(ValidatedCallback {
            exchange: CodeExchange {
                client_auth: app.client_auth.clone(),
                token_endpoint: self.token_endpoint,
                code,
                code_verifier: self.code_verifier,
                redirect_uri: self.redirect_uri,
                fhir_base: self.fhir_base,
                allow_insecure_http: app.allow_insecure_http,
                state: ExchangeState::Ready,
            },
            warnings,
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ExchangeState {
    Ready,
    InFlight,
    Done,
}

/// A token request (code exchange or refresh): one POST, one [`TokenResponse`].
fn token_post(
    client_auth: &ClientAuth,
    token_endpoint: &Url,
    mut fields: Vec<(String, String)>,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<HttpRequest, Error> {
    check_url_security(token_endpoint, allow_insecure_http)?;
    let mut headers = Vec::new();
    client_auth.apply(&mut fields, &mut headers, token_endpoint, now, entropy)?;
    let mut req = HttpRequest::post_form(
        token_endpoint.clone(),
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    req.headers.extend(headers);
    Ok(req)
}

/// The authorization-code exchange (TOKEN-01..TOKEN-04): `grant_type=authorization_code`,
/// `code`, the same `redirect_uri`, `code_verifier`, plus client authentication (public:
/// `client_id` in the body; symmetric: HTTP Basic only; asymmetric: a fresh
/// `client_assertion` and no `client_id`). A [`Flow`] with output [`TokenResponse`]; the code
/// is sent at most once (a transport failure ends the flow: codes are single use).
pub struct CodeExchange {
    client_auth: ClientAuth,
    token_endpoint: Url,
    code: AuthorizationCode,
    code_verifier: PkceCodeVerifier,
    redirect_uri: String,
    fhir_base: FhirBaseUrl,
    allow_insecure_http: bool,
    state: ExchangeState,
}

impl std::fmt::Debug for CodeExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeExchange")
            .field("token_endpoint", &self.token_endpoint.as_str())
            .field("redirect_uri", &self.redirect_uri)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl CodeExchange {
    /// The FHIR base the tokens are for.
    pub fn fhir_base(&self) -> &FhirBaseUrl {
        &self.fhir_base
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &Url {
        &self.token_endpoint
    }

    /// Build the exchange request. Needs entropy for an asymmetric client's assertion.
    ///
    /// # Errors
    /// [`Error::Misuse`] if already sent; errors of client authentication.
    pub fn request(&mut self, now: UnixTime, entropy: &dyn Entropy) -> Result<HttpRequest, Error> {
        if self.state != ExchangeState::Ready {
            return Err(Error::Misuse("the authorization code was already sent"));
        }
        let fields = vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), self.code.secret().into()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("code_verifier".into(), self.code_verifier.secret().into()),
        ];
        let req = token_post(
            &self.client_auth,
            &self.token_endpoint,
            fields,
            self.allow_insecure_http,
            now,
            entropy,
        )?;
        self.state = ExchangeState::InFlight;
        Ok(req)
    }

    /// Parse the token endpoint's answer.
    ///
    /// # Errors
    /// [`Error::OAuth`] (e.g. `invalid_grant` for a PKCE mismatch), [`Error::Http`],
    /// [`Error::Parse`]; [`Error::Misuse`] when no request is in flight.
    pub fn response(
        &mut self,
        response: &HttpResponse,
        now: UnixTime,
    ) -> Result<TokenResponse, Error> {
        if self.state != ExchangeState::InFlight {
            return Err(Error::Misuse("no code exchange in flight"));
        }
        self.state = ExchangeState::Done;
        parse_token_response(response, &self.token_endpoint, now).map_err(|e| {
            let mut sent = vec![self.code.secret(), self.code_verifier.secret()];
            sent.extend(self.client_auth.client_secret_value());
            crate::token::redact_echoed_secrets(e, &sent)
        })
    }

    /// Wrap as a [`Flow`] with the given entropy source.
    pub fn into_flow(self, entropy: Arc<dyn Entropy>) -> CodeExchangeFlow {
        CodeExchangeFlow {
            exchange: self,
            entropy,
            result: None,
        }
    }
}

/// [`CodeExchange`] as a [`Flow`] (output [`TokenResponse`]).
#[derive(Debug)]
pub struct CodeExchangeFlow {
    exchange: CodeExchange,
    entropy: Arc<dyn Entropy>,
    result: Option<TokenResponse>,
}

impl Flow for CodeExchangeFlow {
    type Output = TokenResponse;

    fn poll(&mut self, now: UnixTime) -> Result<Action<TokenResponse>, Error> {
        if let Some(t) = self.result.take() {
            return Ok(Action::Ready(t));
        }
        match self.exchange.state {
            ExchangeState::Ready => Ok(Action::Send(
                self.exchange.request(now, self.entropy.as_ref())?,
            )),
            ExchangeState::InFlight => {
                Err(Error::Misuse("poll called while the exchange is in flight"))
            }
            ExchangeState::Done => Err(Error::Misuse("the code exchange already finished")),
        }
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        self.result = Some(self.exchange.response(&response, now)?);
        Ok(())
    }

    fn abort(&mut self) {
        // The code may have reached the server: never resend it.
        self.exchange.state = ExchangeState::Done;
    }
}

/// A refresh request (REFR-02, REFR-03): `grant_type=refresh_token`, the `refresh_token`, an
/// optional narrower `scope`, and the same client authentication as the exchange (an
/// asymmetric client signs a new assertion each time; a public client sends `client_id`).
///
/// # Errors
/// [`Error::InsecureUrl`]; client-authentication errors.
pub fn refresh_request(
    client_auth: &ClientAuth,
    token_endpoint: &Url,
    refresh_token: &RefreshToken,
    scope: Option<&str>,
    allow_insecure_http: bool,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<HttpRequest, Error> {
    let mut fields = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        (
            "refresh_token".to_owned(),
            refresh_token.secret().to_owned(),
        ),
    ];
    if let Some(s) = scope {
        fields.push((
            "scope".into(),
            s.split_whitespace().collect::<Vec<_>>().join(" "),
        ));
    }
    token_post(
        client_auth,
        token_endpoint,
        fields,
        allow_insecure_http,
        now,
        entropy,
    )
}

/// Parse the answer to a [`refresh_request`] (REFR-02..REFR-04): as
/// [`parse_token_response`], but any value this client sent (the refresh token, a client
/// secret) that the server echoed into an OAuth error text is replaced by `[redacted]`.
/// The caller merges a success into its token set ([`TokenResponse::merge_refresh`]).
///
/// # Errors
/// [`Error::OAuth`] (e.g. `invalid_grant`), [`Error::Http`], [`Error::Parse`],
/// [`Error::UnsupportedTokenType`].
pub fn parse_refresh_response(
    response: &HttpResponse,
    token_endpoint: &Url,
    now: UnixTime,
    refresh_token: &RefreshToken,
    client_auth: &ClientAuth,
) -> Result<TokenResponse, Error> {
    parse_token_response(response, token_endpoint, now).map_err(|e| {
        let mut sent = vec![refresh_token.secret()];
        sent.extend(client_auth.client_secret_value());
        crate::token::redact_echoed_secrets(e, &sent)
    })
}

/// Fuzz entry point: parse arbitrary bytes as a callback URL and as an EHR launch URL; must
/// never panic.
#[doc(hidden)]
pub fn fuzz_callback_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(p) = parse_callback(&text) {
        let _ = format!("{p:?}");
    }
    let _ = EhrLaunch::from_url(&text);
}

/// An in-memory set of pending authorizations keyed by `state`, for apps (and the CLI) that
/// keep several launches open at once. [`take`](Self::take) removes the entry it returns, so
/// a replayed callback finds nothing ([`CallbackError::UnknownState`], case B12c).
#[derive(Debug, Default)]
pub struct PendingAuthorizations {
    entries: std::collections::HashMap<[u8; 32], PendingAuthorization>,
}

fn state_key(state: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(state.as_bytes()).into()
}

impl PendingAuthorizations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember `pending` under its `state`.
    pub fn insert(&mut self, pending: PendingAuthorization) {
        self.entries
            .insert(state_key(pending.state.secret()), pending);
    }

    /// Number of pending entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop entries created before `cutoff` (seconds since the epoch).
    pub fn expire_before(&mut self, cutoff: UnixTime) {
        self.entries.retain(|_, p| p.created_at >= cutoff);
    }

    /// Remove and return the entry for the callback's `state` (looked up by SHA-256 digest,
    /// so the lookup does not leak timing about stored states).
    ///
    /// # Errors
    /// [`CallbackError::MissingState`] when the URL has no `state` (B12a),
    /// [`CallbackError::UnknownState`] when no entry matches (B12b, B12c);
    /// [`Error::Parse`] for a malformed URL.
    pub fn take(&mut self, redirect_url: &str) -> Result<PendingAuthorization, Error> {
        let p = parse_callback(redirect_url)?;
        let state = p.state.ok_or(CallbackError::MissingState)?;
        self.entries
            .remove(&state_key(&state))
            .ok_or_else(|| CallbackError::UnknownState.into())
    }
}
