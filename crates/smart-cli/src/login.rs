//! `smart login` (RFC 8252 native-app flow) and `smart refresh`, with sessions kept in a
//! token store (`--save`, `--from`).

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smart_core::client_auth::{BasicEncoding, ClientAuth};
use smart_core::flow::{HttpRequest, Method};
use smart_core::launch::{AppConfig, EhrLaunch, Launch};
use smart_core::secret::ClientSecret;
use smart_core::session::Session;
use smart_core::token::TokenResponse;
use smart_core::{ClientId, FhirBaseUrl};
use smart_ureq::{HttpClient, SmartClient};

use crate::store::{self, KeySource, StoreSpec};
use crate::token::token_json;
use crate::{Alg, CliResult, SentAssertion, check_alg, load_key, print_json, scope, when};

/// How the client authenticates, from the command line.
pub(crate) struct ClientArgs<'a> {
    /// Required for `login`; for `refresh`, checked against the saved session's.
    pub client_id: Option<&'a str>,
    pub secret_env: Option<&'a str>,
    pub secret_stdin: bool,
    pub key: Option<&'a Path>,
    pub kid: Option<&'a str>,
    pub alg: Option<Alg>,
    pub basic_form_encoded: bool,
}

/// The client authentication for `client_id`, and what its assertions are signed with.
fn client_auth(
    args: &ClientArgs<'_>,
    client_id: &str,
) -> Result<(ClientAuth, Option<SentAssertion>), Box<dyn std::error::Error>> {
    let client_id = ClientId::new(client_id);
    let encoding = if args.basic_form_encoded {
        BasicEncoding::FormUrlEncoded
    } else {
        BasicEncoding::Raw
    };
    let symmetric = |secret: String| ClientAuth::ConfidentialSymmetric {
        client_id: client_id.clone(),
        client_secret: ClientSecret::new(secret),
        encoding,
    };
    Ok(match (args.secret_env, args.secret_stdin, args.key) {
        (Some(var), _, _) => {
            let secret = std::env::var(var)
                .map_err(|_| format!("environment variable {var} (client secret) is not set"))?;
            (symmetric(secret), None)
        }
        (None, true, _) => (symmetric(read_secret_stdin()?), None),
        (None, false, Some(path)) => {
            let key = load_key(path, args.kid)?;
            check_alg(&key, args.alg, path)?;
            let sent = SentAssertion::of(&key);
            (
                ClientAuth::ConfidentialAsymmetric {
                    client_id,
                    signer: smart_core::assertion::AssertionKey::Local(Arc::new(key)),
                    assertion_lifetime_secs: smart_core::assertion::MAX_ASSERTION_LIFETIME_SECS,
                    jku: None,
                },
                Some(sent),
            )
        }
        (None, false, None) => (ClientAuth::Public { client_id }, None),
    })
}

/// The client secret: the first line of standard input (without its line ending).
fn read_secret_stdin() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the client secret from standard input: {e}"))?;
    let secret = text.lines().next().unwrap_or("").to_owned();
    if secret.is_empty() {
        return Err("--secret-stdin: standard input is empty (pipe the client secret in)".into());
    }
    Ok(secret)
}

pub(crate) struct LoginArgs<'a> {
    pub fhir_base: Option<&'a str>,
    pub launch_url: Option<&'a str>,
    pub scope: &'a str,
    pub client: ClientArgs<'a>,
    pub no_browser: bool,
    pub port: u16,
    pub timeout: Duration,
    pub probe: bool,
    pub json: bool,
    pub save: Option<&'a str>,
    pub session: &'a str,
    pub store_key: KeySource<'a>,
    pub lint: bool,
    pub allow_insecure_http: bool,
}

pub(crate) fn login(args: &LoginArgs<'_>) -> CliResult {
    if args.lint {
        scope::lint(args.scope, "--scope")?;
    }
    let launch = match (args.fhir_base, args.launch_url) {
        (Some(base), None) => Launch::standalone(FhirBaseUrl::new(base)?),
        (None, Some(url)) => Launch::Ehr(EhrLaunch::from_url(url)?),
        _ => {
            return Err(
                "give exactly one of --fhir-base (standalone) or --launch-url (EHR launch)".into(),
            );
        }
    };
    let standalone = args.launch_url.is_none();
    // Open the store first: a bad store or key fails before the user signs in.
    let save = match args.save {
        Some(spec) => {
            let spec = StoreSpec::parse(spec)?;
            Some((store::open(&spec, &args.store_key)?, spec))
        }
        None => None,
    };
    let client_id = args.client.client_id.ok_or("give --client-id")?;
    let (auth, sent) = client_auth(&args.client, client_id)?;
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or("listener has no IP address")?;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let app = AppConfig::new(auth, redirect_uri.clone(), args.scope)?
        .allow_insecure_http(args.allow_insecure_http);
    let http = HttpClient::builder()
        .allow_insecure_http(args.allow_insecure_http)
        .build()?;
    let request = smart_ureq::begin_launch(&http, &app, launch)?;
    let mut early_callback = None;
    if args.probe && standalone {
        early_callback = probe(&http, &request.url, &redirect_uri, client_id)?;
    }
    let callback = match early_callback {
        Some(callback) => callback,
        None => {
            eprintln!("Open this URL in a browser to sign in:\n{}", request.url);
            if !args.no_browser && open::that_detached(request.url.as_str()).is_err() {
                eprintln!("(could not open a browser: open the URL above yourself)");
            }
            eprintln!(
                "Waiting up to {} s for the browser to return to {redirect_uri} (Ctrl-C to stop)",
                args.timeout.as_secs()
            );
            wait_for_callback(&server, port, args.timeout, &redirect_uri)?
        }
    };
    let client = smart_ureq::complete_launch(&http, &app, request.pending, &callback)
        .map_err(|e| SentAssertion::explain(sent.as_ref(), e))?;
    let token = client.tokens();
    scope::warn_if_narrower(args.scope, token.scope.as_deref());
    if let Some((store, spec)) = save {
        // A client on the store persists the session as the library stores sessions (the
        // same entry `smart refresh` reads and rotates).
        let session = Session::from_stored(&app, client.stored(), when::now())?;
        SmartClient::builder(session)
            .http(http)
            .store(store)
            .store_key(store::session_key(args.session))
            .build()
            .map_err(|e| match e {
                smart_core::Error::Store(e) => store::describe(&e),
                other => other.to_string(),
            })?;
        eprintln!(
            "saved the session as `{}` in {spec}; refresh it with `smart refresh{}{}`",
            args.session,
            if args.save == Some("") {
                String::new()
            } else {
                format!(" --from {spec}")
            },
            if args.session == "default" {
                String::new()
            } else {
                format!(" --session {}", args.session)
            }
        );
    }
    print_token(&token, client.fhir_user().map(|u| u.to_string()), args.json)
}

/// What the authorization server answers to the authorization URL itself (a `GET`, no
/// redirect followed): an error page, or a redirect back with `error=`, means the browser
/// would show an error instead of a sign-in page (unknown `client_id`, unregistered
/// `redirect_uri`, refused scope). A redirect back with a code is the callback itself.
fn probe(
    http: &HttpClient,
    url: &url::Url,
    redirect_uri: &str,
    client_id: &str,
) -> Result<Option<String>, String> {
    let request = HttpRequest::new(Method::Get, url.clone()).with_header("accept", "text/html");
    let response = match http.send(request) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warning: could not check the authorization URL first: {e}");
            return Ok(None);
        }
    };
    let status = response.status;
    if (300..400).contains(&status) {
        let Some(location) = response.header("location") else {
            return Ok(None);
        };
        if !location.starts_with(redirect_uri) {
            return Ok(None); // on to a login or consent page
        }
        let back = url::Url::parse(location).map_err(|e| format!("bad redirect: {e}"))?;
        let get = |name: &str| {
            back.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        return match get("error") {
            Some(error) => Err(format!(
                "the authorization server refused the sign-in request before any login: \
                 `{error}`{} (check --scope and the client's registration)",
                get("error_description")
                    .map(|d| format!(": {}", clean(&d)))
                    .unwrap_or_default()
            )),
            None => Ok(Some(location.to_owned())),
        };
    }
    if status >= 400 {
        let text = String::from_utf8_lossy(&response.body);
        let (error, description) = error_in_page(&text);
        let cause = match error.as_deref() {
            Some("invalid_client" | "unauthorized_client") => {
                format!("the client_id `{client_id}` is not registered at this server")
            }
            Some("invalid_redirect_uri") => format!(
                "the redirect URI {redirect_uri} is not registered for `{client_id}` (native \
                 apps register http://127.0.0.1/callback, any port; --port fixes the port)"
            ),
            _ => format!(
                "usually the client_id `{client_id}` is not registered there, or the redirect \
                 URI {redirect_uri} is not (native apps register http://127.0.0.1/callback, any \
                 port; --port fixes the port)"
            ),
        };
        return Err(format!(
            "the authorization server answered HTTP {status} to the sign-in URL{}{}: {cause} \
             (--no-probe skips this check)",
            error.map(|e| format!(" with `{e}`")).unwrap_or_default(),
            description
                .map(|d| format!(" ({})", clean(&d)))
                .unwrap_or_default(),
        ));
    }
    Ok(None)
}

/// The OAuth error code and description shown on an error page (JSON or HTML), if any.
fn error_in_page(text: &str) -> (Option<String>, Option<String>) {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        return (s("error"), s("error_description"));
    }
    // HTML: drop the tags, then look for `error: …` / `error_description: …` lines, else a
    // known OAuth error code anywhere in the text.
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push('\n');
            }
            '>' => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let plain = plain
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let field = |name: &str| {
        plain
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != name)
            .nth(1)
            .and_then(|l| l.strip_prefix(':'))
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
    };
    let codes = [
        "invalid_client",
        "invalid_redirect_uri",
        "unauthorized_client",
        "invalid_request",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
    ];
    let error = field("error").or_else(|| {
        codes
            .iter()
            .find(|c| plain.contains(*c))
            .map(|c| (*c).to_owned())
    });
    (error, field("error_description"))
}

/// Server text for one error line: [`smart_core::oauth_error::log_safe`], at most 200
/// characters.
fn clean(s: &str) -> String {
    smart_core::oauth_error::log_safe(s, 200)
}

/// Wait for `GET /callback?...` on the loopback listener; answer every request. After 10 s
/// without it, say what usually keeps a browser from coming back.
fn wait_for_callback(
    server: &tiny_http::Server,
    port: u16,
    timeout: Duration,
    redirect_uri: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut hinted = false;
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(format!(
                "no callback within {} s (if the browser showed an error page, the client_id or \
                 the redirect URI is probably not registered; --timeout-secs waits longer)",
                timeout.as_secs()
            )
            .into());
        }
        let until_hint = (start + Duration::from_secs(10)).saturating_duration_since(now);
        let wait = if hinted || until_hint.is_zero() {
            left
        } else {
            left.min(until_hint)
        };
        let Some(req) = server.recv_timeout(wait)? else {
            if !hinted && Instant::now() >= start + Duration::from_secs(10) {
                hinted = true;
                eprintln!(
                    "Still waiting. If the browser shows an error instead of a sign-in page, the \
                     usual causes are: the client_id is not registered at this server; the \
                     redirect URI {redirect_uri} is not registered (register \
                     http://127.0.0.1/callback for a native app, or pass --port to match a \
                     registered port); a requested scope is not allowed for this client."
                );
            }
            continue;
        };
        if !req.url().starts_with("/callback") {
            let _ =
                req.respond(tiny_http::Response::from_string("not found").with_status_code(404));
            continue;
        }
        let url = format!("http://127.0.0.1:{port}{}", req.url());
        let html = tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
            .map_err(|()| "bad header")?;
        let failed = url::Url::parse(&url)
            .ok()
            .is_some_and(|u| u.query_pairs().any(|(k, _)| k == "error"));
        let page = if failed {
            "<!doctype html><title>smart</title><p>Sign-in did not complete. Return to the terminal for the reason.</p>"
        } else {
            "<!doctype html><title>smart</title><p>Browser step done. Return to the terminal: the code is being exchanged.</p>"
        };
        let _ = req.respond(tiny_http::Response::from_string(page).with_header(html));
        return Ok(url);
    }
}

pub(crate) struct RefreshArgs<'a> {
    pub from: &'a str,
    pub session: &'a str,
    pub store_key: KeySource<'a>,
    pub fhir_base: Option<&'a str>,
    pub client: ClientArgs<'a>,
    pub scope: Option<&'a str>,
    pub json: bool,
    pub allow_insecure_http: bool,
}

pub(crate) fn refresh(a: &RefreshArgs<'_>) -> CliResult {
    let spec = StoreSpec::parse(a.from)?;
    let store = store::open_existing(&spec, &a.store_key)?;
    let stored = store::read_session(store.as_ref(), &spec, a.session)?;
    // The client_id comes from the saved session; an explicit one must agree.
    let saved_id = stored.client_id.as_str().to_owned();
    if let Some(given) = a.client.client_id
        && given != saved_id
    {
        return Err(format!(
            "--client-id `{given}` does not match the saved session's client_id `{saved_id}` \
             (drop --client-id: refresh uses the saved one)"
        )
        .into());
    }
    if let (Some(given), Some(saved)) = (a.fhir_base, stored.fhir_base.as_ref()) {
        let given = FhirBaseUrl::new(given)?;
        if given.as_str() != saved.as_str() {
            return Err(format!(
                "--fhir-base {given} does not match the saved session's FHIR base {saved}"
            )
            .into());
        }
    }
    let (auth, sent) = client_auth(&a.client, &saved_id)?;
    let app = AppConfig::new(auth, "http://127.0.0.1/callback", "")?
        .allow_insecure_http(a.allow_insecure_http);
    let http = HttpClient::builder()
        .allow_insecure_http(a.allow_insecure_http)
        .build()?;
    let key = store::session_key(a.session);
    let session = Session::from_stored(&app, stored, when::now())?;
    // The library stores the refreshed (rotated) token set before handing it out; the copy
    // just read is not written back (another process may have rotated it meanwhile).
    let smart = SmartClient::builder(session)
        .already_stored()
        .http(http)
        .store(store)
        .store_key(key)
        .on_store_event(store::event_hook(spec.clone()))
        .build()?;
    let requested = smart.scope();
    let token = smart.refresh(a.scope).map_err(|e| {
        let public = sent.is_none() && a.client.secret_env.is_none() && !a.client.secret_stdin;
        let e = SentAssertion::explain(sent.as_ref(), e);
        if public && e.to_string().contains("`invalid_client`") {
            format!(
                "{e} (hint: a confidential client needs its credentials here too: --key, \
                 --secret-env or --secret-stdin)"
            )
            .into()
        } else {
            e
        }
    })?;
    if let Some(requested) = a.scope.map(str::to_owned).or(requested) {
        scope::warn_if_narrower(&requested, token.scope.as_deref());
    }
    print_token(&token, smart.fhir_user().map(|u| u.to_string()), a.json)
}

fn print_token(token: &TokenResponse, fhir_user: Option<String>, json: bool) -> CliResult {
    if json {
        return print_json(&token_json(token));
    }
    let c = &token.context;
    let show = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            println!("{k:<20} {v}");
        }
    };
    show("patient", c.patient.as_deref());
    show("encounter", c.encounter.as_deref());
    for item in &c.fhir_context {
        show(
            "fhirContext",
            Some(&serde_json::to_string(item).unwrap_or_default()),
        );
    }
    show(
        "need_patient_banner",
        c.need_patient_banner
            .map(|b| if b { "true" } else { "false" }),
    );
    show("smart_style_url", c.smart_style_url.as_deref());
    show("intent", c.intent.as_deref());
    show("tenant", c.tenant.as_deref());
    show("fhirUser", fhir_user.as_deref());
    show("scope", token.scope.as_deref());
    show(
        "expires",
        token
            .expires_at
            .map(|t| when::human(t.as_secs()))
            .as_deref(),
    );
    show(
        "refresh_token",
        token.refresh_token.as_ref().map(|_| "(present)"),
    );
    println!("{:<20} {}", "access_token", token.access_token.secret());
    Ok(())
}
