//! What helps a newcomer: scope lint, narrower-grant warnings, sign-in diagnostics, key hints,
//! readable times, `--fhir-base` everywhere, completions, secrets from stdin, `discover --lint`.

use std::time::{Duration, Instant};

use smart_testkit as kit;
use smart_testkit::hostile::{Behaviour, HostileServer};

use super::*;

#[test]
fn scope_lint_stops_a_malformed_scope_before_any_request() {
    let (client_id, key) = backend_client("system/Patient.rs");
    let o = token(
        &client_id,
        &key,
        "system/Patient.rs system/Observation.rx",
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("malformed scope in --scope at byte 38 (byte 20 of `system/Observation.rx`)"),
        "{err}"
    );
    assert!(err.contains("--no-lint"), "{err}");
    assert_eq!(kit::token_requests(&client_id), 0, "nothing sent");
    // --no-lint sends it as it is (the server decides).
    let _ = token(
        &client_id,
        &key,
        "system/Patient.rs system/Observation.rx",
        &["--no-lint"],
    );
    assert_eq!(kit::token_requests(&client_id), 1);

    // `smart login` lints before it listens or prints a URL.
    let o = smart(&[
        "login",
        "--fhir-base",
        &kit::fhir_base(),
        "--client-id",
        "x",
        "--scope",
        "openid patient/*.sr",
        "--no-browser",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("at byte 18 (byte 11 of `patient/*.sr`)"),
        "{err}"
    );
    assert!(!err.contains("http"), "no URL printed: {err}");
}

#[test]
fn scope_explain_exits_non_zero_on_a_malformed_scope() {
    let o = smart(&["scope", "explain", "launch/patient patient/Observation.rz"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(
            "malformed scope in the scope list at byte 36 (byte 21 of `patient/Observation.rz`)"
        ),
        "{err}"
    );
    let o = smart(&["scope", "explain", "launch/patient patient/Observation.rs"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn warns_when_the_granted_scope_is_narrower_than_requested() {
    let (client_id, key) = backend_client("system/Patient.rs");
    let o = token(
        &client_id,
        &key,
        "system/Patient.rs system/Observation.rs",
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).trim().is_empty(), "the token is still printed");
    let err = stderr(&o);
    assert!(
        err.contains(
            "warning: the server granted less than requested: refused system/Observation.rs"
        ),
        "{err}"
    );
    // An exact grant: no warning.
    let o = token(&client_id, &key, "system/Patient.rs", &[]);
    assert!(o.status.success());
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn login_probe_names_an_unknown_client_or_an_unregistered_redirect_uri_at_once() {
    let login_fails = |client_id: &str, scope: &str| {
        let started = Instant::now();
        let o = smart(&[
            "login",
            "--fhir-base",
            &kit::fhir_base(),
            "--client-id",
            client_id,
            "--scope",
            scope,
            "--no-browser",
        ]);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "fails at once, not after the timeout"
        );
        assert_eq!(o.status.code(), Some(1));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("code_challenge"), "no sign-in URL: {err}");
        err
    };
    let err = login_fails(&kit::unique("nobody"), "openid fhirUser");
    assert!(err.contains("HTTP 400"), "{err}");
    assert!(err.contains("`invalid_client`"), "{err}");
    assert!(err.contains("is not registered at this server"), "{err}");

    let client_id = kit::unique("cli-redirect");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://127.0.0.1/elsewhere"], "scope": "openid fhirUser"
    }));
    let err = login_fails(&client_id, "openid fhirUser");
    assert!(err.contains("`invalid_redirect_uri`"), "{err}");
    assert!(
        err.contains("/callback is not registered for"),
        "names the redirect URI: {err}"
    );

    // A scope the client may not have: the redirect back with error= is seen too.
    let client_id = public_client("openid fhirUser");
    let err = login_fails(&client_id, "openid fhirUser launch/patient");
    assert!(err.contains("`invalid_scope`"), "{err}");
}

#[test]
fn login_says_what_usually_went_wrong_after_ten_seconds() {
    let client_id = public_client("openid fhirUser");
    let started = Instant::now();
    let o = smart(&[
        "login",
        "--fhir-base",
        &kit::fhir_base(),
        "--client-id",
        &client_id,
        "--scope",
        "openid fhirUser",
        "--no-browser",
        "--no-probe",
        "--timeout-secs",
        "12",
    ]);
    assert!(started.elapsed() >= Duration::from_secs(12));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("Still waiting."), "{err}");
    assert!(
        err.contains("the client_id is not registered at this server"),
        "{err}"
    );
    assert!(err.contains("no callback within 12 s"), "{err}");
    // The default is two minutes.
    let help = stdout(&smart(&["login", "--help"]));
    assert!(help.contains("[default: 120]"), "{help}");
}

#[test]
fn alg_mismatch_and_invalid_client_say_which_alg_and_kid() {
    let (client_id, key) = backend_client("system/Patient.rs");
    let o = token(&client_id, &key, "system/Patient.rs", &["--alg", "RS384"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("--alg RS384: the key in")
            && err.contains("is an EC key and signs ES384 only"),
        "{err}"
    );
    assert_eq!(kit::token_requests(&client_id), 0, "nothing sent");
    let o = token(&client_id, &key, "system/Patient.rs", &["--alg", "ES384"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = token(
        &client_id,
        &key,
        "system/Patient.rs",
        &["--kid", "not-registered"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`invalid_client`"), "{err}");
    assert!(
        err.contains("sent a client_assertion signed with alg ES384 and kid `not-registered`"),
        "{err}"
    );
    assert!(!err.contains("eyJ"), "no assertion printed: {err}");
}

#[test]
fn times_are_readable_and_json_keeps_epoch_seconds() {
    let client_id = public_client(STANDALONE_SCOPE);
    let o = login(&["--scope", STANDALONE_SCOPE], &client_id, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("expires "))
        .unwrap_or_else(|| panic!("an expires line: {out}"));
    // e.g. `expires              2026-12-01 10:15:00 UTC (in 59 min 59 s)`
    let value = line["expires".len()..].trim();
    let (date, rest) = value
        .split_once(" UTC (in ")
        .expect("date, then relative time");
    assert_eq!(date.len(), "2026-12-01 10:15:00".len(), "{line}");
    assert!(
        date.chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == ':' || c == ' '),
        "{line}"
    );
    assert!(
        rest.ends_with(')') && (rest.contains("min") || rest.contains(" h")),
        "{line}"
    );

    let (bs, key) = backend_client("system/Patient.rs");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let o = token(&bs, &key, "system/Patient.rs", &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let at = v["expires_at"].as_u64().expect("epoch seconds");
    assert!((now + 295..=now + 305).contains(&at), "{at} vs {now}");
    assert_eq!(v["expires_in"], 300);
}

#[test]
fn fhir_base_is_a_flag_everywhere_and_positional_in_discover() {
    for args in [
        vec!["discover".to_owned(), kit::fhir_base()],
        vec!["discover".into(), "--fhir-base".into(), kit::fhir_base()],
        vec![
            "discover".into(),
            format!("--fhir-base={}", kit::fhir_base()),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = smart(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    for cmd in ["token", "login", "refresh", "discover"] {
        let help = stdout(&smart(&[cmd, "--help"]));
        assert!(help.contains("--fhir-base"), "{cmd}: {help}");
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = smart(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        for word in ["refresh", "inspect", "cache-key-env", "secret-stdin"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let o = smart(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn secret_from_stdin_for_a_symmetric_client() {
    let client_id = kit::unique("cli-sym");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "client_secret": "s3cr3t-stdin",
        "redirect_uris": ["http://127.0.0.1/callback"], "scope": "openid fhirUser user/*.rs"
    }));
    let o = login_with_stdin(
        &[
            "--scope",
            "openid fhirUser user/*.rs",
            "--secret-stdin",
            "--json",
        ],
        &client_id,
        &[],
        Some("s3cr3t-stdin\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["scope"], "openid fhirUser user/*.rs");
    assert!(!stderr(&o).contains("s3cr3t"), "secret never printed");
    // An empty stdin is an error before anything is sent.
    let o = smart_with(
        &[
            "login",
            "--fhir-base",
            &kit::fhir_base(),
            "--client-id",
            &client_id,
            "--scope",
            "openid",
            "--secret-stdin",
            "--no-browser",
        ],
        &[],
        Some(""),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("standard input is empty"),
        "{}",
        stderr(&o)
    );
    // --secret-env and --secret-stdin exclude each other.
    let o = smart(&[
        "login",
        "--fhir-base",
        "x",
        "--client-id",
        "x",
        "--scope",
        "openid",
        "--secret-stdin",
        "--secret-env",
        "X",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn discover_lint_lists_each_deviation_with_its_ig_section() {
    // The sandbox: complete but for a RECOMMENDED member; exit status 0.
    let o = smart(&["discover", &kit::fhir_base(), "--lint"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "RECOMMENDED `management_endpoint`: RECOMMENDED field absent [Conformance › Metadata]"
        ),
        "{out}"
    );
    assert!(
        out.contains("0 REQUIRED, 1 RECOMMENDED deviation(s)"),
        "{out}"
    );

    // A server with REQUIRED members missing, a relative endpoint, a pre-STU1 capability and
    // an asymmetric profile without its algorithms.
    let server = HostileServer::start();
    server.route(
        "GET",
        "/fhir/.well-known/smart-configuration",
        Behaviour::json(
            200,
            serde_json::json!({
                "token_endpoint": "token",
                "authorization_endpoint": server.url_for("/auth"),
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "capabilities": ["launch-standalone", "client-confidential-asymmetric",
                                 "context-passthrough-banner"],
            }),
        ),
    );
    let o = smart(&[
        "discover",
        "--fhir-base",
        &server.url_for("/fhir"),
        "--lint",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for (member, section) in [
        ("code_challenge_methods_supported", "Conformance › Metadata"),
        ("grant_types_supported", "Conformance › Metadata"),
        ("scopes_supported", "Conformance › Metadata"),
        ("token_endpoint", "Conformance › Using well-known"),
        ("capabilities", "Conformance › Capabilities"),
        (
            "token_endpoint_auth_signing_alg_values_supported",
            "Client Authentication: Asymmetric",
        ),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("`{member}`")))
            .unwrap_or_else(|| panic!("a line for {member}: {out}"));
        assert!(line.contains(section), "{line}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("REQUIRED") && l.contains("`code_challenge_methods_supported`")),
        "{out}"
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("REQUIRED rule(s) of the SMART App Launch IG"),
        "{err}"
    );
}
