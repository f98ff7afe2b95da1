//! The authorization request (SMART App Launch §"Obtain authorization code"): PKCE, `state`,
//! `aud`, and the [`LaunchFlow`] that discovers the server first.

use std::sync::Arc;

use url::Url;

use super::*;
use crate::discovery::{Capability, Discovered, Discovery, SmartConfiguration};
use crate::entropy::Entropy;
use crate::error::TransportError;
use crate::error::{CallbackError, Error};
use crate::flow::{Action, Flow, HttpResponse};
use crate::http::{check_url_security, form_body};
use crate::pkce::{
    CODE_CHALLENGE_METHOD, code_challenge_s256, generate_code_verifier, generate_state,
};
use crate::secret::{CsrfToken, PkceCodeVerifier};
use crate::time::UnixTime;
use crate::types::{ClientId, Endpoint, FhirBaseUrl};

/// The app's state between the redirect and the callback: store it in the user's session
/// (it serializes with serde) and pass it to [`callback`](Self::callback) once. It is not
/// `Clone` and `callback` consumes it, so one authorization cannot be redeemed twice in
/// process; a store must delete it when it is taken, so a replayed callback finds nothing.
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
    pub token_endpoint: Endpoint,
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

/// Build the authorization request (SMART App Launch §"Obtain authorization code") from a
/// discovered configuration.
///
/// Fresh PKCE verifier (S256; sent even when discovery omits
/// `code_challenge_methods_supported`) and fresh `state`; `aud` = the FHIR base as
/// given; `launch` only for an EHR launch; every parameter percent-encoded (so granular
/// scopes with `?`, `=`, `|` survive).
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
    let endpoint = config
        .authorization_endpoint
        .as_ref()
        .map(|e| e.url().clone())
        .ok_or_else(|| {
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
    finished: bool,
}

impl LaunchFlow {
    /// Start a launch.
    ///
    /// # Errors
    /// [`CallbackError::IssNotAllowed`] when an EHR launch's `iss` is not on the allow-list;
    /// [`Error::InsecureUrl`] for a plain-HTTP base on a non-loopback host.
    pub fn new(app: AppConfig, launch: Launch, entropy: Arc<dyn Entropy>) -> Result<Self, Error> {
        if let (Launch::Ehr(e), Some(list)) = (&launch, &app.iss_allow_list)
            && !list.allows(e.iss.as_given())
        {
            return Err(CallbackError::IssNotAllowed(e.iss.as_given().to_owned()).into());
        }
        check_url_security(&launch.fhir_base().url(), app.allow_insecure_http)?;
        let discovery =
            Discovery::new(launch.fhir_base().clone()).allow_insecure_http(app.allow_insecure_http);
        Ok(Self {
            app,
            launch,
            entropy,
            discovery,
            discovered: None,
            finished: false,
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
        if self.finished {
            return Err(Error::Misuse(
                "the launch already produced its authorization request",
            ));
        }
        if self.discovered.is_none() {
            match self.discovery.poll(now)? {
                Action::Ready(d) => self.discovered = Some(d),
                Action::Send(r) => return Ok(Action::Send(r)),
                Action::Sign(_)
                | Action::Store(_)
                | Action::WaitUntil(_)
                | Action::WaitForFlight => {
                    return Err(Error::Misuse("discovery emitted an unexpected action"));
                }
            }
        }
        let Some(d) = &self.discovered else {
            return Err(Error::Misuse("no discovery result"));
        };
        let request = authorize(
            &self.app,
            &self.launch,
            &d.config,
            now,
            self.entropy.as_ref(),
        )?;
        self.finished = true;
        Ok(Action::Ready(request))
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        self.discovery.handle_response(response, now)
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        now: UnixTime,
    ) -> Result<(), Error> {
        self.discovery.handle_transport_error(error, now)
    }

    fn abort(&mut self) {
        self.discovery.abort();
    }
}
