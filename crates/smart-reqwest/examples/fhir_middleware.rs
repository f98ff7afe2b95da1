//! Authorize every FHIR request of a `reqwest` client with SMART Backend Services, through
//! the `reqwest-middleware` middleware [`SmartAuth`]: read `Patient/123` from the local
//! sandbox and print it.
//!
//! The example registers a Backend Services client of its own with the sandbox (a fresh
//! ES384 key, its public JWKS sent to the sandbox's admin endpoint — a real EHR has its own
//! registration process), then sends a plain `GET`: the middleware gets a token (discovery,
//! signed `client_assertion`, `client_credentials`), sets `Authorization: Bearer …` and, if
//! the FHIR server answers 401 for a stale token, gets a new one and sends the request again,
//! once.
//!
//! ```sh
//! SMART_SANDBOX_URL=$(sandbox/start) cargo run -p smart-reqwest --example fhir_middleware
//! ```
//!
//! The token itself is never printed.

use std::process::ExitCode;
use std::sync::Arc;

use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::{ClientId, FhirBaseUrl};
use smart_reqwest::BackendServicesAuth;
use smart_reqwest::middleware::SmartAuth;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Register a Backend Services client allowed `system/Patient.rs` with the sandbox at
/// `sandbox`; its `client_id`.
async fn register(sandbox: &str, key: &SigningKey) -> Result<String, BoxError> {
    let client_id = format!("fhir-middleware-example-{}", std::process::id());
    let metadata = serde_json::json!({
        "client_id": client_id,
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "scope": "system/Patient.rs",
        "jwks": key.public_jwks(),
    });
    reqwest::Client::new()
        .post(format!("{sandbox}/_admin/clients"))
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()
        .await?
        .error_for_status()?;
    Ok(client_id)
}

async fn run(sandbox: &str) -> Result<(u16, String), BoxError> {
    let key = SigningKey::generate(JwsAlgorithm::Es384, None, &SystemEntropy)?;
    let client_id = register(sandbox, &key).await?;
    let fhir_base = FhirBaseUrl::new(format!("{sandbox}/fhir"))?;
    let config = BackendServicesConfig::new(
        ClientId::new(&client_id),
        "system/Patient.rs",
        Arc::new(key),
    )
    .with_fhir_base(fhir_base.clone());
    let auth = Arc::new(BackendServicesAuth::new(config)?);

    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(SmartAuth::new(auth))
        .build();
    let response = client
        .get(fhir_base.append("Patient/123")?)
        .header("accept", "application/fhir+json")
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(sandbox) = std::env::var("SMART_SANDBOX_URL")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!(
            "usage: SMART_SANDBOX_URL=http://127.0.0.1:4010 cargo run -p smart-reqwest --example fhir_middleware\n\
             (start the sandbox with sandbox/start, which prints its URL)"
        );
        return ExitCode::from(2);
    };
    match run(sandbox.trim_end_matches('/')).await {
        Ok((status, body)) => {
            println!("GET Patient/123 -> {status}");
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
