//! A minimal EHR launch (authorization code + PKCE), as a command-line sketch of what a web
//! app does in its `/launch` and `/callback` handlers:
//!
//! 1. the EHR opens the app's launch URL with `iss` and `launch` (here: the first argument);
//! 2. [`smart_reqwest::begin_launch`] discovers the server and builds the authorization URL
//!    (a web app redirects the browser there and keeps `pending` in the user's session);
//! 3. the browser comes back to `redirect_uri` with `code` and `state` (here: pasted on stdin);
//! 4. [`smart_reqwest::complete_launch`] validates the callback and exchanges the code.
//!
//! Settings (environment, all optional): `SMART_CLIENT_ID` (default `sandbox-public`, a public
//! client of the sandbox), `SMART_REDIRECT_URI` (default `http://127.0.0.1:54321/callback`),
//! `SMART_SCOPE` (default `launch openid fhirUser patient/*.rs`).
//!
//! Against the local sandbox (`sandbox/README.md`; headless approval is on by default):
//!
//! ```sh
//! base=$(sandbox/start)
//! launch=$(curl -fsS "$base/_sandbox/ehr-launch?patient=123&launch_url=http://127.0.0.1:54321/launch" \
//!   | sed 's/.*"url":"\([^"]*\)".*/\1/')
//! cargo run -p smart-reqwest --example ehr_launch -- "$launch"
//! # open the printed URL in a browser (or follow it with `curl -sS -L --max-redirs 5 -o /dev/null
//! # -w '%{redirect_url}\n' <url>`): it ends at http://127.0.0.1:54321/callback?code=…&state=…;
//! # paste that URL and press Enter.
//! ```
//!
//! Only the launch context is printed, never a token.

use std::io::BufRead;
use std::process::ExitCode;

use smart_core::client_auth::ClientAuth;
use smart_core::launch::{AppConfig, EhrLaunch, Launch};
use smart_reqwest::HttpClient;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

async fn run(launch_url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let app = AppConfig::new(
        ClientAuth::public(env_or("SMART_CLIENT_ID", "sandbox-public")),
        env_or("SMART_REDIRECT_URI", "http://127.0.0.1:54321/callback"),
        env_or("SMART_SCOPE", "launch openid fhirUser patient/*.rs"),
    )?;
    let launch = EhrLaunch::from_url(launch_url)?;
    println!("iss: {}", launch.iss.as_str());
    let http = HttpClient::new()?;
    let request = smart_reqwest::begin_launch(&http, &app, Launch::Ehr(launch)).await?;
    println!("open this URL in the browser:\n{}", request.url);
    println!("then paste the callback URL it redirects to:");

    let mut callback = String::new();
    std::io::stdin().lock().read_line(&mut callback)?;
    let client =
        smart_reqwest::complete_launch(&http, &app, request.pending, callback.trim()).await?;
    println!("patient: {:?}", client.patient_id());
    println!("encounter: {:?}", client.encounter_id());
    println!("fhirUser: {:?}", client.fhir_user().map(|u| u.to_string()));
    println!("granted scope: {:?}", client.scope());
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(launch_url) = std::env::args().nth(1) else {
        eprintln!(
            "usage: cargo run -p smart-reqwest --example ehr_launch -- '<launch URL with iss and launch>'"
        );
        return ExitCode::from(2);
    };
    match run(&launch_url).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
