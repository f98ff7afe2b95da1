//! A standalone launch from a command-line (native) app, the way RFC 8252 ("OAuth 2.0 for
//! Native Apps") describes it: the app listens on a loopback port, sends the user's browser
//! to the authorization server, and receives the authorization code on
//! `http://127.0.0.1:PORT/callback`.
//!
//! 1. bind `127.0.0.1:0` (the operating system picks a free port);
//! 2. [`smart_ureq::begin_launch`] discovers the server and builds the authorization URL
//!    (PKCE S256 and `state` are generated for you); the app prints it (`open this URL: …`);
//! 3. the browser comes back to the loopback listener with `code` and `state`; the app
//!    answers it with a small "you can close this tab" page;
//! 4. [`smart_ureq::complete_launch`] checks the callback and exchanges the code; the app
//!    prints the launch context and the token's lifetime (never the token), then reads
//!    `Patient/{patient}` through [`AuthorizedAgent`].
//!
//! Settings (environment):
//!
//! | variable | meaning |
//! |---|---|
//! | `SMART_FHIR_BASE` | the FHIR server's base URL (required) |
//! | `SMART_CLIENT_ID` | the app's `client_id` (default `sandbox-public`, a public client of the sandbox) |
//! | `SMART_SCOPE` | scopes to request (default `launch/patient openid fhirUser offline_access patient/*.rs`) |
//! | `SMART_TIMEOUT_SECS` | how long to wait for the browser (default 120) |
//! | `SMART_OPEN_BROWSER` | `1`: also try to open the URL in the default browser |
//!
//! A native app is a public client: it cannot keep a secret, so it has none (PKCE protects the
//! code instead). The authorization server must accept a loopback redirect URI on any port:
//! the sandbox's clients register `http://127.0.0.1/callback`, which matches
//! `http://127.0.0.1:PORT/callback` for every `PORT` (RFC 8252 §7.3).
//!
//! Against the local sandbox (`sandbox/README.md`; it approves every request headlessly):
//!
//! ```sh
//! SMART_FHIR_BASE=$(sandbox/start)/fhir SMART_OPEN_BROWSER=1 \
//!   cargo run -p smart-ureq --example standalone_launch
//! # or, without a browser: follow the printed URL with
//! #   curl -sS -L --max-redirs 10 -o /dev/null '<URL>'
//! ```
//!
//! A production app would also: keep the refresh token in the operating system's credential
//! store (a token store, see [`SmartClient::builder`](smart_ureq::SmartClient::builder)),
//! verify the `id_token` before trusting `fhirUser` for identity
//! ([`SmartClient::verify_id_token`](smart_ureq::SmartClient::verify_id_token)), and show a nicer page.
//!
//! [`AuthorizedAgent`]: smart_ureq::middleware::AuthorizedAgent

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use smart_core::client_auth::ClientAuth;
use smart_core::launch::{AppConfig, Launch};
use smart_core::{FhirBaseUrl, UnixTime};
use smart_ureq::HttpClient;
use smart_ureq::middleware::AuthorizedAgent;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const DEFAULT_SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Try to open `url` in the user's browser; failures are ignored (the URL is printed anyway).
fn open_browser(url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let _ = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Answer the browser with a small HTML page.
fn respond(mut stream: &TcpStream, status: &str, title: &str, text: &str) {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>\n"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// The request target of one HTTP request (`/callback?code=…`), or `None` when the
/// connection sends nothing usable in time (e.g. a browser's speculative connection).
fn read_target(stream: &TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    // Read the headers to their end, so the browser sees its request consumed.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

/// Wait for the browser's request to `/callback` (answering anything else with 404) until
/// `deadline`; the connection (to answer) and the full redirect URL.
fn wait_for_callback(
    listener: &TcpListener,
    redirect_uri: &str,
    deadline: Instant,
) -> Result<(TcpStream, String), BoxError> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                let Some(target) = read_target(&stream) else {
                    continue;
                };
                if target == "/callback" || target.starts_with("/callback?") {
                    let query = target.split_once('?').map_or("", |(_, q)| q);
                    return Ok((stream, format!("{redirect_uri}?{query}")));
                }
                respond(&stream, "404 Not Found", "Not found", "Nothing here.");
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err("timed out waiting for the browser to come back".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn run(fhir_base: &str) -> Result<(), BoxError> {
    let fhir_base = FhirBaseUrl::new(fhir_base.trim())?;
    let timeout = match env_var("SMART_TIMEOUT_SECS") {
        Some(s) => Duration::from_secs(
            s.trim()
                .parse()
                .map_err(|_| format!("SMART_TIMEOUT_SECS must be a number of seconds: {s}"))?,
        ),
        None => Duration::from_secs(120),
    };

    // Loopback only (never 0.0.0.0): the code must not be reachable from the network.
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");

    let client_id = env_var("SMART_CLIENT_ID").unwrap_or_else(|| "sandbox-public".to_owned());
    let scope = env_var("SMART_SCOPE").unwrap_or_else(|| DEFAULT_SCOPE.to_owned());
    let app = AppConfig::new(ClientAuth::public(client_id), &redirect_uri, scope)?;
    let http = HttpClient::new()?;

    let request = smart_ureq::begin_launch(&http, &app, Launch::standalone(fhir_base))?;
    println!("open this URL: {}", request.url);
    if env_var("SMART_OPEN_BROWSER").as_deref() == Some("1") {
        open_browser(request.url.as_str());
    }

    let (browser, callback) =
        wait_for_callback(&listener, &redirect_uri, Instant::now() + timeout)?;
    let client = match smart_ureq::complete_launch(&http, &app, request.pending, &callback) {
        Ok(client) => {
            respond(
                &browser,
                "200 OK",
                "Signed in",
                "You can close this tab and return to the app.",
            );
            client
        }
        Err(e) => {
            // Library errors never contain tokens or codes: safe to show.
            respond(
                &browser,
                "400 Bad Request",
                "Sign-in failed",
                &format!("{e}. You can close this tab."),
            );
            return Err(e.into());
        }
    };
    drop(browser);

    let show = |v: Option<String>| v.unwrap_or_else(|| "(none)".to_owned());
    println!("patient: {}", show(client.patient_id()));
    println!(
        "fhirUser: {}",
        show(client.fhir_user().map(|u| u.to_string()))
    );
    println!("scope: {}", show(client.scope()));
    let expires = client.tokens().usable_until().map(|at| {
        let now = UnixTime::from(SystemTime::now());
        format!("in {} s", at.as_secs().saturating_sub(now.as_secs()))
    });
    println!("access token expires: {}", show(expires));
    println!(
        "refresh token: {}",
        if client.tokens().refresh_token.is_some() {
            "yes"
        } else {
            "no"
        }
    );

    let Some(patient) = client.patient_id() else {
        println!("no patient in context: nothing to read");
        return Ok(());
    };
    let url = client.fhir_base().append(&format!("Patient/{patient}"))?;
    let fhir = AuthorizedAgent::new(ureq::Agent::new_with_defaults(), Arc::new(client));
    let mut response = fhir.get(url.as_str())?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string()?;
    println!("GET Patient/{patient} -> {status}");
    println!("{body}");
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the FHIR server answered {status}").into())
    }
}

fn main() -> ExitCode {
    let Some(fhir_base) = env_var("SMART_FHIR_BASE") else {
        eprintln!(
            "usage: SMART_FHIR_BASE=http://127.0.0.1:4010/fhir cargo run -p smart-ureq --example standalone_launch\n\
             (start the sandbox with sandbox/start, which prints its URL)"
        );
        return ExitCode::from(2);
    };
    match run(&fhir_base) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
