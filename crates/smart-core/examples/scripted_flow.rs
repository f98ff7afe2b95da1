//! The sans-IO contract without a network: drive a Backend Services flow by hand, playing the
//! HTTP client with canned responses, and print every request the flow asks for.
//!
//! ```sh
//! cargo run -p smart-core --example scripted_flow
//! ```
//!
//! `HttpRequest`'s `Debug` shows the method, URL and header names only (the body, which
//! carries the signed `client_assertion`, is redacted), so the output is safe to log. The
//! script: discovery, a 503 from the token endpoint (retried after a backoff, with a newly
//! signed assertion), a token, cache hits, renewal inside the skew window, a transport
//! failure (`abort`: the retry is signed anew), and `invalidate` after a 401 from the FHIR
//! server.

use std::sync::Arc;

use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::entropy::DeterministicEntropy;
use smart_core::jwk::SigningKey;
use smart_core::{Action, ClientId, FhirBaseUrl, Flow, HttpRequest, HttpResponse, UnixTime};

const WELL_KNOWN: &str = r#"{"token_endpoint":"https://ehr.example.org/token",
  "token_endpoint_auth_methods_supported":["private_key_jwt"],
  "grant_types_supported":["client_credentials"],"capabilities":["client-confidential-asymmetric"],
  "code_challenge_methods_supported":["S256"]}"#;

fn token_json(n: u32) -> String {
    format!(
        r#"{{"access_token":"token-{n}","token_type":"bearer","expires_in":300,"scope":"system/Patient.rs"}}"#
    )
}

/// Poll and expect a request; print it (redacted) with its form field names.
fn expect_send(
    flow: &mut BackendServices,
    now: UnixTime,
) -> Result<HttpRequest, smart_core::Error> {
    match flow.poll(now)? {
        Action::Send(req) => {
            let names: Vec<String> = req.form_fields().into_iter().map(|(k, _)| k).collect();
            println!("  -> {req:?}");
            if !names.is_empty() {
                println!("     form fields: {}", names.join(", "));
            }
            Ok(req)
        }
        Action::Ready(t) => Err(smart_core::Error::Config(format!(
            "expected a request, got a token (expires_in {:?})",
            t.expires_in
        ))),
        _ => Err(smart_core::Error::Misuse("unknown action")),
    }
}

/// Poll and expect the cached token.
fn expect_ready(flow: &mut BackendServices, now: UnixTime) -> Result<(), smart_core::Error> {
    match flow.poll(now)? {
        Action::Ready(t) => {
            println!(
                "  <- Ready: cached token ({:?}), token_type {}, expires_in {:?}",
                t.access_token, t.token_type, t.expires_in
            );
            Ok(())
        }
        _ => Err(smart_core::Error::Config("expected a cached token".into())),
    }
}

fn assertion_of(req: &HttpRequest) -> Option<String> {
    req.form_fields()
        .into_iter()
        .find(|(k, _)| k == "client_assertion")
        .map(|(_, v)| v)
}

fn main() -> Result<(), smart_core::Error> {
    // Deterministic entropy keeps the demo reproducible; real code uses SystemEntropy.
    let entropy = Arc::new(DeterministicEntropy::new(42));
    let key = SigningKey::generate(JwsAlgorithm::Es384, Some("demo-key"), entropy.as_ref())?;
    let config = BackendServicesConfig::new(
        ClientId::new("demo-client"),
        "system/Patient.rs",
        Arc::new(key),
    )
    .with_fhir_base(FhirBaseUrl::new("https://ehr.example.org/fhir")?);
    let mut flow = BackendServices::new(config, entropy)?;
    let t0 = UnixTime::from_secs(1_700_000_000);

    println!("1. cold cache: discovery first");
    expect_send(&mut flow, t0)?;
    flow.handle_response(HttpResponse::new(200, WELL_KNOWN), t0)?;

    println!("2. the token request; the server answers 503 with HTML");
    let first = expect_send(&mut flow, t0)?;
    flow.handle_response(HttpResponse::new(503, "<html>busy</html>"), t0)?;
    println!("  <- 503: retried within this flight, after a backoff");

    println!("3. poll again: wait, then a new token request (signed anew), 200");
    let retry_at = match flow.poll(t0)? {
        Action::WaitUntil(at) => at,
        other => {
            return Err(smart_core::Error::Config(format!(
                "expected a backoff after the 503, got {other:?}"
            )));
        }
    };
    println!(
        "  -> WaitUntil: {} ms later",
        retry_at.as_millis().saturating_sub(t0.as_millis())
    );
    let retried = expect_send(&mut flow, retry_at)?;
    println!(
        "     retry carries a newly signed assertion: {}",
        assertion_of(&first) != assertion_of(&retried)
    );
    flow.handle_response(HttpResponse::new(200, token_json(1)), retry_at)?;

    // The token (300 s) was issued at `retry_at`.
    println!("4. within the token's lifetime: cache hits, no request");
    expect_ready(&mut flow, retry_at.plus_secs(1))?;
    expect_ready(&mut flow, retry_at.plus_secs(269))?;

    println!("5. inside the 30 s skew window (270 s after issue): renewal");
    let t1 = retry_at.plus_secs(270);
    let lost = expect_send(&mut flow, t1)?;
    println!("  (transport failure: the driver calls abort())");
    flow.abort();
    let retry = expect_send(&mut flow, t1)?;
    println!(
        "     retry carries a newly signed assertion: {}",
        assertion_of(&lost) != assertion_of(&retry)
    );
    flow.handle_response(HttpResponse::new(200, token_json(2)), t1)?;
    expect_ready(&mut flow, t1.plus_secs(1))?;

    println!("6. the FHIR server answered 401: invalidate(), the next poll fetches a token");
    flow.invalidate();
    let t2 = t1.plus_secs(2);
    expect_send(&mut flow, t2)?;
    flow.handle_response(HttpResponse::new(200, token_json(3)), t2)?;
    expect_ready(&mut flow, t2)?;

    println!("7. misuse is an error, not a panic");
    let err = flow
        .handle_response(HttpResponse::new(200, token_json(4)), t2)
        .expect_err("nothing in flight");
    println!("  <- Err: {err}");
    Ok(())
}
