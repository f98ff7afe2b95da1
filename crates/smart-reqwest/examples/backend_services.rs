//! SMART Backend Services with the async adapter (reqwest + tokio): get an access token with
//! a signed `client_assertion`, then read a FHIR resource with it (retrying once with a new
//! token if the FHIR server answers 401).
//!
//! Environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `SMART_FHIR_BASE` | FHIR base URL (endpoints are discovered from its `.well-known/smart-configuration`) |
//! | `SMART_CLIENT_ID` | the registered `client_id` |
//! | `SMART_KEY_FILE` | PEM private key (ES384 or RS384); the `kid` is the file's `kid:` line (written by `smart keygen`), else its RFC 7638 thumbprint |
//! | `SMART_SCOPE` | scopes to request, e.g. `system/Patient.rs` |
//! | `SMART_FHIR_PATH` | optional, default `Patient/123` |
//!
//! Against the local sandbox (`sandbox/README.md`):
//!
//! ```sh
//! base=$(sandbox/start)                       # e.g. http://127.0.0.1:4010
//! cargo build -p smart-cli
//! target/debug/smart keygen --alg ES384 --out /tmp/key.pem > /tmp/jwks.json
//! printf '{"client_id":"example-bs","grant_types":["client_credentials"],"scope":"system/Patient.rs","jwks":%s}' \
//!   "$(cat /tmp/jwks.json)" | curl -fsS -X POST -H 'content-type: application/json' \
//!   --data-binary @- "$base/_admin/clients" > /dev/null
//! SMART_FHIR_BASE=$base/fhir SMART_CLIENT_ID=example-bs SMART_KEY_FILE=/tmp/key.pem \
//!   SMART_SCOPE=system/Patient.rs cargo run -p smart-reqwest --example backend_services_async
//! ```
//!
//! The token itself is never printed.

use std::process::ExitCode;
use std::sync::Arc;

use smart_core::backend::BackendServicesConfig;
use smart_core::jwk::SigningKey;
use smart_core::{ClientId, FhirBaseUrl, HttpRequest};
use smart_reqwest::{BackendServicesAuth, HttpClient};

const USAGE: &str = "usage: SMART_FHIR_BASE=… SMART_CLIENT_ID=… SMART_KEY_FILE=key.pem \
SMART_SCOPE='system/Patient.rs' [SMART_FHIR_PATH=Patient/123] \
cargo run -p smart-reqwest --example backend_services_async";

struct Settings {
    fhir_base: String,
    client_id: String,
    key_file: String,
    scope: String,
    path: String,
}

impl Settings {
    fn from_env() -> Option<Self> {
        let var = |name: &str| {
            let v = std::env::var(name).ok().filter(|v| !v.is_empty());
            if v.is_none() && name != "SMART_FHIR_PATH" {
                eprintln!("missing environment variable {name}");
            }
            v
        };
        Some(Self {
            fhir_base: var("SMART_FHIR_BASE")?,
            client_id: var("SMART_CLIENT_ID")?,
            key_file: var("SMART_KEY_FILE")?,
            scope: var("SMART_SCOPE")?,
            path: var("SMART_FHIR_PATH").unwrap_or_else(|| "Patient/123".to_owned()),
        })
    }
}

/// Token, FHIR read, one retry after a 401. Returns the final status and body.
async fn run(s: &Settings) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let pem = std::fs::read_to_string(&s.key_file)
        .map_err(|e| format!("cannot read SMART_KEY_FILE {}: {e}", s.key_file))?;
    let key = SigningKey::from_pem(&pem)?;
    let fhir_base = FhirBaseUrl::new(&s.fhir_base)?;
    let config = BackendServicesConfig::new(ClientId::new(&s.client_id), &s.scope, Arc::new(key))
        .with_fhir_base(fhir_base.clone());
    let auth = BackendServicesAuth::new(config)?;
    let http = HttpClient::new()?;
    let url = fhir_base.append(&s.path)?;

    let token = auth.token().await?;
    println!(
        "token: type {}, expires_in {:?}, scope {:?}",
        token.token_type, token.expires_in, token.scope
    );
    let mut retried = false;
    loop {
        let mut request = HttpRequest::get_json(url.clone());
        request.headers.push((
            "authorization".into(),
            auth.authorization().await?.secret().to_owned(),
        ));
        let response = http.send(request).await?;
        if response.status == 401 && !retried {
            println!("GET {url} -> 401; on_unauthorized() and retry once");
            auth.on_unauthorized()?;
            retried = true;
            continue;
        }
        return Ok((
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ));
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(settings) = Settings::from_env() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(&settings).await {
        Ok((status, body)) => {
            println!("GET {} -> {status}", settings.path);
            println!("{body}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
