//! A small SMART on FHIR web app with [axum]: EHR launch and standalone launch, then a page
//! that reads the patient in context through the [`SmartAuth`] middleware.
//!
//! Routes:
//!
//! * `GET /launch?iss=…&launch=…` — **EHR launch**: the EHR opens this URL. `iss` must be on
//!   the app's allow-list (here: only `SMART_FHIR_BASE`); the app discovers the server, keeps
//!   the pending authorization (PKCE verifier, `state`) in the browser's session and
//!   redirects the browser to the authorization endpoint.
//! * `GET /login` — **standalone launch** against `SMART_FHIR_BASE` (the user picks the
//!   patient at the authorization server: `launch/patient`).
//! * `GET /callback` — the authorization server's redirect: the app checks `state` (against
//!   the pending authorizations of *this* browser), exchanges the code, verifies the
//!   `id_token`, stores the [`SmartClient`] in the session (under a new session id) and
//!   redirects to `/`.
//! * `GET /` — signed in: the patient id, `fhirUser`, the granted scope and the `Patient`
//!   resource read with the session's token. Tokens are never shown or logged.
//!
//! Settings (environment):
//!
//! | variable | meaning |
//! |---|---|
//! | `SMART_FHIR_BASE` | FHIR base URL for standalone launch, and the one `iss` accepted for EHR launch (required) |
//! | `SMART_CLIENT_ID` | the app's `client_id` (default `sandbox-public`, a public client of the sandbox) |
//! | `SMART_CLIENT_SECRET` | set for a confidential client (`client_secret_basic`), e.g. `sandbox-secret` with `SMART_CLIENT_ID=sandbox-confidential` |
//! | `APP_ADDR` | address to listen on (default `127.0.0.1:0`: a free port) |
//! | `APP_BASE_URL` | the app's public URL, when it differs from `http://<bound address>` (behind a proxy) |
//!
//! The redirect URI is `<APP_BASE_URL>/callback`. The sandbox's app clients register
//! `http://127.0.0.1/callback`; a loopback redirect URI matches it on any port (RFC 8252
//! §7.3), so the default settings work as they are. The app prints `listening on http://…`
//! once it accepts connections.
//!
//! Against the local sandbox (`sandbox/README.md`; it approves every request headlessly):
//!
//! ```sh
//! SMART_FHIR_BASE=$(sandbox/start)/fhir APP_ADDR=127.0.0.1:8080 \
//!   cargo run -p smart-reqwest --example axum_launch
//! # standalone launch: open http://127.0.0.1:8080/login in a browser
//! # EHR launch: let the sandbox's simulated EHR open the app's launch URL
//! #   (sandbox at its default port 4010):
//! #   http://127.0.0.1:4010/_sandbox/ehr-launch?patient=smart-1&launch_url=http://127.0.0.1:8080/launch&redirect=1
//! ```
//!
//! # What a production app does differently
//!
//! This example keeps everything in memory and in one process so that it stays short. A real
//! deployment must:
//!
//! * keep sessions in a **persistent, shared session store** (a database, Redis, or an
//!   encrypted cookie), expire them, and bound their number; persist token sets with a token
//!   store ([`SmartClient::builder`] takes one) so a restart or another instance can restore
//!   the client; this example loses every session when it stops;
//! * serve over **HTTPS** and mark the session cookie `Secure` (ideally with the `__Host-`
//!   prefix), besides `HttpOnly` and `SameSite=Lax` as here;
//! * protect its own state-changing routes (a logout, a form that writes to the EHR) with
//!   **CSRF tokens**; the SMART callback itself is protected by `state` bound to the browser's
//!   session, as here;
//! * list the EHRs it trusts as `iss` (here one), limit request rates, log without tokens,
//!   add a logout that revokes the tokens, and render pages with a template engine that
//!   escapes output (this example escapes by hand).
//!
//! [axum]: https://docs.rs/axum
//! [`SmartAuth`]: smart_reqwest::middleware::SmartAuth
//! [`SmartClient`]: smart_reqwest::SmartClient
//! [`SmartClient::builder`]: smart_reqwest::SmartClient::builder

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use reqwest_middleware::ClientWithMiddleware;
use smart_core::client_auth::ClientAuth;
use smart_core::entropy::{SystemEntropy, random_base64url};
use smart_core::launch::{AppConfig, EhrLaunch, IssAllowList, Launch, PendingAuthorizations};
use smart_core::secret::ClientSecret;
use smart_core::{FhirBaseUrl, UnixTime};
use smart_reqwest::middleware::SmartAuth;
use smart_reqwest::{Error, HttpClient, SmartClient};

/// Scopes for an EHR launch: the EHR supplies the context (`launch`).
const EHR_SCOPE: &str = "launch openid fhirUser patient/*.rs";
/// Scopes for a standalone launch: ask the authorization server for a patient.
const STANDALONE_SCOPE: &str = "launch/patient openid fhirUser patient/*.rs";
/// The session cookie's name.
const COOKIE: &str = "sid";
/// How long a user may take at the authorization server before the pending login expires.
const PENDING_TTL_SECS: u64 = 600;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One browser's session.
#[derive(Default)]
struct BrowserSession {
    /// Launches started in this browser and not yet completed, by `state` (several tabs may
    /// launch at once). Binding them to the browser's session means a callback only
    /// completes in the browser that started the launch (no login CSRF).
    pending: PendingAuthorizations,
    /// The signed-in user, after a completed launch.
    user: Option<SignedIn>,
}

/// What the app keeps for a signed-in user.
struct SignedIn {
    smart: Arc<SmartClient>,
    /// `fhirUser` from the verified `id_token`.
    fhir_user: Option<String>,
    /// A FHIR client that authorizes every request with this user's token.
    fhir: ClientWithMiddleware,
}

struct App {
    /// For discovery and the token endpoint (loopback `http` allowed, other `http` refused).
    http: HttpClient,
    /// The FHIR server's client, without authorization; each session wraps it with its own
    /// `SmartAuth` middleware.
    fhir_http: reqwest::Client,
    ehr: AppConfig,
    standalone: AppConfig,
    fhir_base: FhirBaseUrl,
    /// Session id → session. In memory only: see the module docs.
    sessions: Mutex<HashMap<String, BrowserSession>>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}

/// `text` safe inside HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n\
         <body>\n<h1>{t}</h1>\n{body}\n</body></html>\n",
        t = escape(title)
    ))
}

fn error_page(status: StatusCode, message: &str) -> Response {
    (
        status,
        page(
            "Sign-in failed",
            &format!("<p>{}</p>\n<p><a href=\"/\">Back</a></p>", escape(message)),
        ),
    )
        .into_response()
}

/// The library's errors never contain tokens, codes or secrets: they may be shown.
fn launch_error(e: &Error) -> Response {
    let status = match e {
        Error::Callback(_) | Error::Config(_) | Error::OAuth(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    error_page(status, &e.to_string())
}

/// The session id from the `Cookie` header, if any.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn new_session_id() -> Result<String, Error> {
    random_base64url(&SystemEntropy, 32)
}

/// `Set-Cookie` for session `id`. A production app behind HTTPS adds `Secure` (and uses the
/// `__Host-` prefix).
fn session_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax"))
        .expect("a base64url session id is a valid header value")
}

/// `302 Found` to `location`, setting the session cookie.
fn redirect(location: &str, sid: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "bad redirect URL");
    };
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, session_cookie(sid)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

impl App {
    /// Discover, build the authorization request, remember it in the browser's session and
    /// send the browser to the authorization endpoint.
    async fn start(&self, headers: &HeaderMap, app: &AppConfig, launch: Launch) -> Response {
        let request = match smart_reqwest::begin_launch(&self.http, app, launch).await {
            Ok(r) => r,
            Err(e) => return launch_error(&e),
        };
        let sid = {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            let sid = match session_id(headers).filter(|id| sessions.contains_key(id)) {
                Some(id) => id,
                None => match new_session_id() {
                    Ok(id) => id,
                    Err(e) => return launch_error(&e),
                },
            };
            let session = sessions.entry(sid.clone()).or_default();
            session
                .pending
                .expire_before(now().minus_secs(PENDING_TTL_SECS));
            session.pending.insert(request.pending);
            sid
        };
        redirect(request.url.as_str(), &sid)
    }
}

/// `GET /launch?iss=…&launch=…`: EHR launch.
async fn launch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The allow-list check happens in `begin_launch`, before any request to `iss`.
    match EhrLaunch::from_url(query.as_deref().unwrap_or("")) {
        Ok(ehr) => app.start(&headers, &app.ehr, Launch::Ehr(ehr)).await,
        Err(e) => launch_error(&e),
    }
}

/// `GET /login`: standalone launch against the configured FHIR server.
async fn login(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let launch = Launch::standalone(app.fhir_base.clone());
    app.start(&headers, &app.standalone, launch).await
}

/// `GET /callback?code=…&state=…&iss=…` (or `?error=…`).
async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // The URL the authorization server redirected to: our redirect URI plus the query.
    let url = format!(
        "{}?{}",
        app.standalone.redirect_uri,
        query.as_deref().unwrap_or("")
    );
    let Some(old_sid) = session_id(&headers) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "no session: start again from the EHR or at /login",
        );
    };
    // Take the pending authorization out of *this browser's* session (single use).
    let pending = {
        let mut sessions = app.sessions.lock().expect("sessions lock");
        match sessions.get_mut(&old_sid).map(|s| s.pending.take(&url)) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return launch_error(&e),
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "unknown or expired session: start again",
                );
            }
        }
    };
    let config = if pending.launch.is_some() {
        &app.ehr
    } else {
        &app.standalone
    };
    let smart = match smart_reqwest::complete_launch(&app.http, config, pending, &url).await {
        Ok(c) => Arc::new(c),
        Err(e) => return launch_error(&e),
    };
    // Trust `fhirUser` only from a verified id_token (signature, issuer, audience, expiry).
    let fhir_user = if smart.id_token().is_some() {
        match smart.verify_id_token().await {
            Ok(claims) => claims.fhir_user().map(|u| u.to_string()),
            Err(e) => return launch_error(&e),
        }
    } else {
        None
    };
    let fhir = reqwest_middleware::ClientBuilder::new(app.fhir_http.clone())
        .with(SmartAuth::new(smart.clone()))
        .build();
    let user = SignedIn {
        smart,
        fhir_user,
        fhir,
    };
    // A new session id at sign-in (no session fixation); launches still pending in other
    // tabs move along.
    let Ok(sid) = new_session_id() else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "no randomness");
    };
    {
        let mut sessions = app.sessions.lock().expect("sessions lock");
        let pending = sessions
            .remove(&old_sid)
            .map(|s| s.pending)
            .unwrap_or_default();
        sessions.insert(
            sid.clone(),
            BrowserSession {
                pending,
                user: Some(user),
            },
        );
    }
    redirect("/", &sid)
}

/// The signed-in user's client and FHIR client, if any.
fn signed_in(
    app: &App,
    headers: &HeaderMap,
) -> Option<(Arc<SmartClient>, Option<String>, ClientWithMiddleware)> {
    let sid = session_id(headers)?;
    let sessions = app.sessions.lock().expect("sessions lock");
    let user = sessions.get(&sid)?.user.as_ref()?;
    Some((
        user.smart.clone(),
        user.fhir_user.clone(),
        user.fhir.clone(),
    ))
}

/// `GET /Patient/{id}` through the middleware; the answer as text for the page.
async fn read_patient(
    fhir: &ClientWithMiddleware,
    base: &FhirBaseUrl,
    patient: &str,
) -> Result<(u16, String), BoxError> {
    let url = base.append(&format!("Patient/{patient}"))?;
    let response = fhir
        .get(url)
        .header("accept", "application/fhir+json")
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    // Pretty-print JSON answers; show anything else as it came.
    let text = serde_json::from_str::<serde_json::Value>(&text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(text);
    Ok((status, text))
}

/// `GET /`.
async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((smart, fhir_user, fhir)) = signed_in(&app, &headers) else {
        return page(
            "SMART on FHIR example app",
            "<p>Not signed in.</p>\n\
             <p><a href=\"/login\">Sign in (standalone launch)</a>, or open this app from the EHR \
             (EHR launch: <code>/launch?iss=…&amp;launch=…</code>).</p>",
        )
        .into_response();
    };
    let show = |v: Option<String>| v.map_or_else(|| "(none)".to_owned(), |v| escape(&v));
    let mut body = format!(
        "<dl>\n\
         <dt>Patient</dt><dd id=\"patient\">{}</dd>\n\
         <dt>Encounter</dt><dd id=\"encounter\">{}</dd>\n\
         <dt>fhirUser</dt><dd id=\"fhirUser\">{}</dd>\n\
         <dt>Granted scope</dt><dd id=\"scope\">{}</dd>\n\
         <dt>Patient banner needed</dt><dd>{}</dd>\n\
         </dl>\n",
        show(smart.patient_id()),
        show(smart.encounter_id()),
        show(fhir_user),
        show(smart.scope()),
        show(smart.need_patient_banner().map(|b| b.to_string())),
    );
    match smart.patient_id() {
        Some(patient) => match read_patient(&fhir, &smart.fhir_base(), &patient).await {
            Ok((status, text)) => body.push_str(&format!(
                "<h2>Patient/{} (HTTP {status})</h2>\n<pre id=\"resource\">{}</pre>\n",
                escape(&patient),
                escape(&text)
            )),
            Err(e) => body.push_str(&format!(
                "<p>Reading Patient/{} failed: {}</p>\n",
                escape(&patient),
                escape(&e.to_string())
            )),
        },
        None => body.push_str("<p>No patient in context.</p>\n"),
    }
    body.push_str("<p><a href=\"/login\">Sign in again</a></p>");
    let mut response = page("Signed in", &body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn run() -> Result<(), BoxError> {
    let Some(fhir_base) = env_var("SMART_FHIR_BASE") else {
        return Err("usage: SMART_FHIR_BASE=http://127.0.0.1:4010/fhir cargo run -p smart-reqwest \
                    --example axum_launch\n(start the sandbox with sandbox/start, which prints its URL)"
            .into());
    };
    let fhir_base = FhirBaseUrl::new(fhir_base.trim())?;
    let client_id = env_var("SMART_CLIENT_ID").unwrap_or_else(|| "sandbox-public".to_owned());
    let client_auth = match env_var("SMART_CLIENT_SECRET") {
        Some(secret) => ClientAuth::symmetric(client_id, ClientSecret::new(secret)),
        None => ClientAuth::public(client_id),
    };

    let addr = env_var("APP_ADDR").unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let bound = listener.local_addr()?;
    let base_url = env_var("APP_BASE_URL").unwrap_or_else(|| format!("http://{bound}"));
    let redirect_uri = format!("{}/callback", base_url.trim_end_matches('/'));

    let allow = IssAllowList::Exact(vec![fhir_base.as_str().to_owned()]);
    let ehr = AppConfig::new(client_auth.clone(), &redirect_uri, EHR_SCOPE)?
        .with_iss_allow_list(allow.clone());
    let standalone =
        AppConfig::new(client_auth, &redirect_uri, STANDALONE_SCOPE)?.with_iss_allow_list(allow);
    let app = Arc::new(App {
        http: HttpClient::new()?,
        fhir_http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        ehr,
        standalone,
        fhir_base,
        sessions: Mutex::new(HashMap::new()),
    });

    let router = Router::new()
        .route("/", get(home))
        .route("/launch", get(launch))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .with_state(app);
    println!("listening on http://{bound}");
    axum::serve(listener, router).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
