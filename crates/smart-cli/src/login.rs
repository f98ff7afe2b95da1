//! `smart login` (RFC 8252 native-app flow) and `smart refresh`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smart_core::client_auth::{BasicEncoding, ClientAuth};
use smart_core::launch::{AppConfig, EhrLaunch, Launch};
use smart_core::secret::ClientSecret;
use smart_core::session::Session;
use smart_core::store::StoredToken;
use smart_core::token::TokenResponse;
use smart_core::{ClientId, FhirBaseUrl};
use smart_ureq::{HttpClient, SmartClient};

use crate::{CliResult, load_key, print_json, write_private};

/// How the client authenticates, from the command line.
pub(crate) struct ClientArgs<'a> {
    pub client_id: &'a str,
    pub secret_env: Option<&'a str>,
    pub key: Option<&'a Path>,
    pub kid: Option<&'a str>,
    pub basic_form_encoded: bool,
}

pub(crate) fn client_auth(args: &ClientArgs<'_>) -> Result<ClientAuth, Box<dyn std::error::Error>> {
    let client_id = ClientId::new(args.client_id);
    Ok(match (args.secret_env, args.key) {
        (Some(_), Some(_)) => return Err("use either --secret-env or --key, not both".into()),
        (Some(var), None) => {
            let secret = std::env::var(var)
                .map_err(|_| format!("environment variable {var} (client secret) is not set"))?;
            ClientAuth::ConfidentialSymmetric {
                client_id,
                client_secret: ClientSecret::new(secret),
                encoding: if args.basic_form_encoded {
                    BasicEncoding::FormUrlEncoded
                } else {
                    BasicEncoding::Raw
                },
            }
        }
        (None, Some(path)) => ClientAuth::ConfidentialAsymmetric {
            client_id,
            signer: smart_core::assertion::AssertionKey::Local(Arc::new(load_key(path, args.kid)?)),
            assertion_lifetime_secs: smart_core::assertion::MAX_ASSERTION_LIFETIME_SECS,
            jku: None,
        },
        (None, None) => ClientAuth::Public { client_id },
    })
}

pub(crate) struct LoginArgs<'a> {
    pub fhir_base: Option<&'a str>,
    pub launch_url: Option<&'a str>,
    pub scope: &'a str,
    pub client: ClientArgs<'a>,
    pub no_browser: bool,
    pub port: u16,
    pub timeout: Duration,
    pub json: bool,
    pub save: Option<&'a Path>,
    pub allow_insecure_http: bool,
}

pub(crate) fn login(args: &LoginArgs<'_>) -> CliResult {
    let launch = match (args.fhir_base, args.launch_url) {
        (Some(base), None) => Launch::standalone(FhirBaseUrl::new(base)?),
        (None, Some(url)) => Launch::Ehr(EhrLaunch::from_url(url)?),
        _ => {
            return Err(
                "give exactly one of --fhir-base (standalone) or --launch-url (EHR launch)".into(),
            );
        }
    };
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or("listener has no IP address")?;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let app = AppConfig::new(client_auth(&args.client)?, redirect_uri, args.scope)?
        .allow_insecure_http(args.allow_insecure_http);
    let http = HttpClient::builder()
        .allow_insecure_http(args.allow_insecure_http)
        .build()?;
    let request = smart_ureq::begin_launch(&http, &app, launch)?;
    eprintln!("Open this URL in a browser to sign in:\n{}", request.url);
    if !args.no_browser && open::that_detached(request.url.as_str()).is_err() {
        eprintln!("(could not open a browser: open the URL above yourself)");
    }
    eprintln!(
        "Waiting up to {} s for the browser to return to http://127.0.0.1:{port}/callback (Ctrl-C to stop)",
        args.timeout.as_secs()
    );
    let callback = wait_for_callback(&server, port, args.timeout)?;
    let client = smart_ureq::complete_launch(&http, &app, request.pending, &callback)?;
    let token = client.tokens();
    if let Some(path) = args.save {
        save_session(path, &client.stored())?;
        eprintln!("saved the token set to {} (mode 0600)", path.display());
    }
    print_token(&token, client.fhir_user().map(|u| u.to_string()), args.json)
}

/// Wait for `GET /callback?...` on the loopback listener; answer every request.
fn wait_for_callback(
    server: &tiny_http::Server,
    port: u16,
    timeout: Duration,
) -> Result<String, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no callback within {} s", timeout.as_secs()).into());
        }
        let Some(req) = server.recv_timeout(left)? else {
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

pub(crate) fn refresh(
    token_file: &Path,
    client: &ClientArgs<'_>,
    scope: Option<&str>,
    json: bool,
    allow_insecure_http: bool,
) -> CliResult {
    let text = std::fs::read_to_string(token_file)
        .map_err(|e| format!("cannot read {}: {e}", token_file.display()))?;
    let stored: StoredToken = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a saved token set: {}",
            token_file.display(),
            smart_core::error::ParseError::from_json(smart_core::error::Document::StoredToken, &e)
        )
    })?;
    let app = AppConfig::new(client_auth(client)?, "http://127.0.0.1/callback", "")?
        .allow_insecure_http(allow_insecure_http);
    let session = Session::from_stored(
        &app,
        stored,
        smart_core::UnixTime::from(std::time::SystemTime::now()),
    )?;
    let http = HttpClient::builder()
        .allow_insecure_http(allow_insecure_http)
        .build()?;
    let smart = SmartClient::builder(session).http(http).build()?;
    let result = smart.refresh(scope);
    // Persist whatever the refresh left (a rotated token set, or a dropped refresh token).
    save_session(token_file, &smart.stored())?;
    let token = result?;
    print_token(&token, smart.fhir_user().map(|u| u.to_string()), json)
}

fn save_session(path: &Path, stored: &StoredToken) -> CliResult {
    let json = serde_json::to_vec_pretty(stored)?;
    write_private(path, &json, true)?;
    Ok(())
}

fn print_token(token: &TokenResponse, fhir_user: Option<String>, json: bool) -> CliResult {
    if json {
        return print_json(&serde_json::Value::Object(token.to_wire_json()));
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
        "expires_at",
        token.expires_at.map(|t| t.to_string()).as_deref(),
    );
    show(
        "refresh_token",
        token.refresh_token.as_ref().map(|_| "(present)"),
    );
    println!("{:<20} {}", "access_token", token.access_token.secret());
    Ok(())
}
