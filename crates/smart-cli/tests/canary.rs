//! The `smart` binary never prints a secret it sent: `smart token` and `smart refresh` run
//! against hostile token endpoints that reflect the request (an OAuth error with the body raw
//! and decoded and the Basic credential, a redirect whose `Location` carries them, a 200 whose
//! `token_type` is the request, a 5xx page, a closed connection), and neither stdout nor
//! stderr may hold a canary in any form (`smart_testkit::canary`). (A silent endpoint is left
//! out: the CLI's timeout is 30 s.)

use std::process::{Command, Output};

use smart_core::store::TokenStore as _;
use smart_core::token::parse_token_response;
use smart_core::{ClientId, FhirBaseUrl, HttpResponse, UnixTime};
use smart_testkit as kit;
use smart_testkit::canary::Canaries;
use smart_testkit::hostile::{Behaviour, HostileServer};
use smart_testkit::scenarios::canary::{
    CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, add_sent, fixed_canaries, hostile_answers,
};

const WELL_KNOWN: &str = "/fhir/.well-known/smart-configuration";
const SECRET_ENV: &str = "SMART_CANARY_CLIENT_SECRET";

fn smart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .env(SECRET_ENV, CLIENT_SECRET)
        .output()
        .expect("run smart")
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(kit::unique("smart-cli-canary"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn now() -> UnixTime {
    UnixTime::from(std::time::SystemTime::now())
}

/// A hostile server whose discovery document points at its own `/token`, which answers with
/// `behaviour`.
fn server(behaviour: Behaviour) -> HostileServer {
    let server = HostileServer::start();
    server.route(
        "GET",
        WELL_KNOWN,
        Behaviour::json(
            200,
            serde_json::json!({
                "token_endpoint": server.url_for("/token"),
                "capabilities": ["client-confidential-asymmetric"],
                "code_challenge_methods_supported": ["S256"],
            }),
        ),
    );
    server.route("POST", "/token", behaviour);
    server
}

/// Canary forms found in the output of one run, with the canaries sent to `server`.
fn check(
    tally: &mut (usize, Vec<String>),
    what: &str,
    server: &HostileServer,
    mut canaries: Canaries,
    o: &Output,
) {
    assert_eq!(o.status.code(), Some(1), "{what}: an error, exit status 1");
    assert!(
        server.count("/token") >= 1,
        "{what}: the token endpoint was asked"
    );
    for r in server.requests() {
        add_sent(&mut canaries, &r);
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for h in canaries.find(&text) {
        tally.0 += 1;
        tally.1.push(format!(
            "{what}: {} ({}) in {}",
            h.canary,
            h.form,
            text.trim()
        ));
    }
}

fn finish(what: &str, tally: (usize, Vec<String>)) {
    eprintln!("{what}: canaries found: {}", tally.0);
    for l in &tally.1 {
        eprintln!("  {l}");
    }
    assert_eq!(tally.0, 0, "{what}:\n{}", tally.1.join("\n"));
}

fn keygen() -> String {
    let key = tmp("key.pem");
    let o = smart(&["keygen", "--alg", "ES384", "--out", key.to_str().unwrap()]);
    assert!(o.status.success());
    key.to_str().unwrap().to_owned()
}

/// The answers the CLI is run against (all but the silent endpoint).
fn answers() -> Vec<(&'static str, Behaviour)> {
    hostile_answers()
        .into_iter()
        .filter(|(name, _)| !name.contains("timeout"))
        .collect()
}

#[test]
fn smart_token_prints_no_sent_secret() {
    let key = keygen();
    let mut tally = (0, Vec::new());
    for (answer, behaviour) in answers() {
        let server = server(behaviour);
        let base = server.url_for("/fhir");
        let o = smart(&[
            "token",
            "--fhir-base",
            &base,
            "--client-id",
            CLIENT_ID,
            "--key",
            &key,
            "--scope",
            "system/Patient.rs",
        ]);
        check(
            &mut tally,
            &format!("smart token, {answer}"),
            &server,
            fixed_canaries(),
            &o,
        );
    }
    finish("smart token", tally);
}

#[test]
fn smart_refresh_prints_no_sent_secret() {
    let key = keygen();
    let auths: [(&str, Vec<&str>); 3] = [
        ("secret, Basic raw", vec!["--secret-env", SECRET_ENV]),
        (
            "secret, Basic form-encoded",
            vec!["--secret-env", SECRET_ENV, "--basic-form-encoded"],
        ),
        ("private_key_jwt", vec!["--key", &key]),
    ];
    let mut tally = (0, Vec::new());
    for (auth_name, auth_args) in &auths {
        for (answer, behaviour) in answers() {
            let server = server(behaviour);
            let token_endpoint = url::Url::parse(&server.url_for("/token")).unwrap();
            let json = serde_json::json!({
                "access_token": "session-access-token",
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": REFRESH_TOKEN,
                "scope": "openid fhirUser",
            });
            let token = parse_token_response(
                &HttpResponse::new(200, json.to_string()),
                &token_endpoint,
                now(),
            )
            .unwrap();
            let stored = smart_core::store::StoredToken {
                fhir_base: Some(FhirBaseUrl::new(server.url_for("/fhir")).unwrap()),
                token_endpoint: token_endpoint.into(),
                client_id: ClientId::new(CLIENT_ID),
                token,
            };
            // Saved as `smart login --save DIR` saves it: the session `default` in a file store.
            let dir = tmp("store");
            smart_store::FileTokenStore::new(&dir)
                .unwrap()
                .set("smart-cli:session:default", &stored, None)
                .unwrap();
            let mut args = vec![
                "refresh",
                "--from",
                dir.to_str().unwrap(),
                "--client-id",
                CLIENT_ID,
            ];
            args.extend(auth_args.iter().copied());
            let o = smart(&args);
            check(
                &mut tally,
                &format!("smart refresh ({auth_name}), {answer}"),
                &server,
                fixed_canaries(),
                &o,
            );
        }
    }
    finish("smart refresh", tally);
}
