//! The `smart` binary end to end, against the local sandbox where a server is needed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use smart_testkit as kit;

fn smart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smart"))
        .args(args)
        .output()
        .expect("run smart")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(kit::unique("smart-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `smart keygen` for an algorithm: returns (key path, public JWKS).
fn keygen(alg: &str) -> (std::path::PathBuf, serde_json::Value) {
    let key = tmp("key.pem");
    let o = smart(&["keygen", "--alg", alg, "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    (
        key,
        serde_json::from_str(&stdout(&o)).expect("JWKS on stdout"),
    )
}

#[test]
fn asym_01_keygen_writes_0600_and_prints_public_jwks() {
    for (alg, kty) in [("ES384", "EC"), ("RS384", "RSA")] {
        let (key, jwks) = keygen(alg);
        #[cfg(unix)]
        assert_eq!(mode(&key), 0o600, "private key readable by the owner only");
        let text = std::fs::read_to_string(&key).unwrap();
        let jwk = &jwks["keys"][0];
        // K01: the kid (here the thumbprint) is stored as RFC 7468 explanatory text.
        let kid_line = format!("kid: {}\n", jwk["kid"].as_str().unwrap());
        assert!(text.starts_with(&kid_line), "kid line first: {text:.40}");
        assert!(
            text[kid_line.len()..].starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "then PKCS#8 PEM"
        );
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["alg"], alg);
        assert!(
            jwk["kid"].as_str().is_some_and(|k| !k.is_empty()),
            "ASYM-04: kid"
        );
        assert!(
            jwk.get("d").is_none(),
            "no private member in the public JWKS"
        );
        // `smart jwks` gives the same public key set for the file.
        let o = smart(&["jwks", key.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap(),
            jwks
        );
        // No overwrite without --force.
        let o = smart(&["keygen", "--alg", alg, "--out", key.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(
            std::fs::read_to_string(&key).unwrap(),
            text,
            "existing key untouched"
        );
    }
}

#[test]
fn keygen_with_kid_and_bad_key_files() {
    let key = tmp("k.pem");
    let o = smart(&[
        "keygen",
        "--alg",
        "ES384",
        "--kid",
        "my-kid",
        "--out",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let jwks: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "my-kid");
    // Thumbprint kids can start with `-`: `--kid -x` is a value, not a flag.
    let o = smart(&["jwks", key.to_str().unwrap(), "--kid", "-dash-kid"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let jwks: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "-dash-kid");
    let bad = tmp("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let o = smart(&["jwks", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(err.starts_with("smart: error:"), "{err}");
}

#[test]
fn k01_keygen_kid_is_kept_by_jwks_token_login_and_refresh() {
    let key = tmp("k01.pem");
    let key = key.to_str().unwrap();
    let o = smart(&[
        "keygen", "--alg", "ES384", "--kid", "my-key-1", "--out", key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let jwks: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "my-key-1");
    assert!(
        std::fs::read_to_string(key)
            .unwrap()
            .starts_with("kid: my-key-1\n")
    );
    // `smart jwks --key` (and the positional form) print the same kid...
    for args in [&["jwks", "--key", key][..], &["jwks", key]] {
        let o = smart(args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap(),
            jwks
        );
    }
    // ...and an explicit --kid still wins.
    let o = smart(&["jwks", "--key", key, "--kid", "override"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["keys"][0]["kid"],
        "override"
    );

    // Registered with the printed JWKS only (a single key, kid `my-key-1`): the server finds
    // the key only if the assertion's kid is `my-key-1`.
    let client_id = kit::unique("cli-k01");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials", "authorization_code", "refresh_token"],
        "redirect_uris": ["http://127.0.0.1/callback"], "jwks": jwks,
        "scope": "system/Patient.rs launch/patient openid fhirUser offline_access patient/*.rs"
    }));
    let token = |extra: &[&str]| {
        let mut args = vec![
            "token",
            "--fhir-base",
            &kit::fhir_base(),
            "--client-id",
            &client_id,
            "--key",
            key,
            "--scope",
            "system/Patient.rs",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Command::new(env!("CARGO_BIN_EXE_smart"))
            .args(&args)
            .output()
            .unwrap()
    };
    let o = token(&[]);
    assert!(o.status.success(), "token without --kid: {}", stderr(&o));
    let (status, body) = kit::fhir_get("Patient/123", &format!("Bearer {}", stdout(&o).trim()));
    assert_eq!(status, 200, "{body}");
    // The override is really used: a kid the server does not know is refused.
    let o = token(&["--kid", "not-registered"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid_client"), "{}", stderr(&o));

    // App Launch as a confidential asymmetric client, then a refresh, both without --kid.
    let save = tmp("k01-tokens.json");
    let o = login(
        &[
            "--scope",
            "launch/patient openid fhirUser offline_access patient/*.rs",
            "--key",
            key,
            "--save",
            save.to_str().unwrap(),
        ],
        &client_id,
        &[],
    );
    assert!(o.status.success(), "login without --kid: {}", stderr(&o));
    let o = smart(&[
        "refresh",
        "--token-file",
        save.to_str().unwrap(),
        "--client-id",
        &client_id,
        "--key",
        key,
        "--json",
    ]);
    assert!(o.status.success(), "refresh without --kid: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["patient"], "123");
}

#[test]
fn discover_prints_configuration_and_fails_clearly() {
    let o = smart(&["discover", &kit::fhir_base()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(config["token_endpoint"], kit::token_endpoint());
    assert!(stderr(&o).contains("source: WellKnown"));

    let o = smart(&["discover", &format!("{}/nothing-here", kit::sandbox_url())]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nothing-here/.well-known/smart-configuration"),
        "names the URL: {err}"
    );
    assert!(err.contains("HTTP 404"), "names the status: {err}");

    let o = smart(&["discover", "http://ehr.example.invalid/fhir"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("insecure"), "{}", stderr(&o));
}

#[test]
fn bes_token_prints_a_usable_access_token_and_json() {
    let (key, jwks) = keygen("ES384");
    let client_id = kit::unique("cli");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"], "jwks": jwks, "scope": "system/Patient.rs"
    }));
    let args = [
        "token",
        "--fhir-base",
        &kit::fhir_base(),
        "--client-id",
        &client_id,
        "--key",
        key.to_str().unwrap(),
        "--scope",
        "system/Patient.rs",
    ];
    let o = smart(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let token = stdout(&o).trim().to_owned();
    let (status, body) = kit::fhir_get("Patient/123", &format!("Bearer {token}"));
    assert_eq!(status, 200, "{body}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let o = smart(&json_args);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["scope"], "system/Patient.rs");
    assert_eq!(v["expires_in"], 300);
    assert!(v["access_token"].as_str().is_some_and(|t| !t.is_empty()));
}

#[test]
fn asym_12_token_error_is_one_line_with_code_and_status_and_no_secrets() {
    let (registered, jwks) = keygen("ES384");
    let _ = registered;
    let client_id = kit::unique("cli-bad");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"], "jwks": jwks, "scope": "system/Patient.rs"
    }));
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    // A thumbprint kid may start with `-`: pass it as `--kid=…` so it is never read as a flag.
    let kid_arg = format!("--kid={kid}");
    let (other, _) = keygen("ES384");
    let o = smart(&[
        "token",
        "--fhir-base",
        &kit::fhir_base(),
        "--client-id",
        &client_id,
        "--key",
        other.to_str().unwrap(),
        &kid_arg,
        "--scope",
        "system/Patient.rs",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty(), "no token printed");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("invalid_client"), "{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(!err.contains("eyJ"), "no assertion in the error: {err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[test]
fn scope_explain_and_diff() {
    let o = smart(&[
        "scope",
        "explain",
        "patient/Observation.rs?category=laboratory user/*.read launch/patient",
    ]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("patient/Observation.rs?category=laboratory: read and search Observation resources about the patient in context, only where category=laboratory"), "{out}");
    assert!(out.contains("SMART v1 syntax"), "{out}");
    let o = smart(&[
        "scope",
        "explain",
        "patient/Observation.rs launch/patient",
        "--granted",
        "patient/Observation.r",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("narrowed (1):\n  patient/Observation.rs -> patient/Observation.r"),
        "{out}"
    );
    assert!(out.contains("refused (1):\n  launch/patient"), "{out}");
}

/// Runs `smart login --no-browser`, plays the browser with the URL it prints, delivers the
/// callback to its loopback listener, and returns its output.
fn login(extra: &[&str], client_id: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smart"));
    cmd.args([
        "login",
        "--fhir-base",
        &kit::fhir_base(),
        "--client-id",
        client_id,
        "--no-browser",
        "--timeout-secs",
        "60",
    ])
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("http") {
            url = line.trim().to_owned();
            break;
        }
        line.clear();
    }
    assert!(
        url.contains("code_challenge_method=S256"),
        "printed the authorization URL: {url}"
    );
    let redirect = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "RFC 8252 loopback: {redirect}"
    );
    let callback = kit::browser_until(&url, &redirect, None);
    // Deliver the callback to the CLI's listener, as the browser would.
    let (status, _) = kit::http_get(&callback);
    assert_eq!(status, 200);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        status: out.status,
        stdout: out.stdout,
        stderr: rest.into_bytes(),
    }
}

#[test]
fn rfc8252_login_public_client_saves_0600_and_refreshes() {
    let client_id = kit::unique("cli-public");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "scope": "launch/patient openid fhirUser offline_access patient/*.rs"
    }));
    let save = tmp("tokens.json");
    let o = login(
        &[
            "--scope",
            "launch/patient openid fhirUser offline_access patient/*.rs",
            "--save",
            save.to_str().unwrap(),
        ],
        &client_id,
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("patient              123"), "{out}");
    assert!(out.contains("fhirUser             "), "{out}");
    assert!(
        out.contains("refresh_token        (present)"),
        "the refresh token itself is not printed: {out}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&save), 0o600);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&save).unwrap()).unwrap();
    let first_refresh = saved["token"]["refresh_token"].as_str().unwrap().to_owned();

    let o = smart(&[
        "refresh",
        "--token-file",
        save.to_str().unwrap(),
        "--client-id",
        &client_id,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["patient"], "123", "launch context kept across refresh");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&save).unwrap()).unwrap();
    assert_ne!(
        saved["token"]["refresh_token"].as_str().unwrap(),
        first_refresh,
        "rotated refresh token saved"
    );
    let (status, _) = kit::fhir_get(
        "Patient/123",
        &format!("Bearer {}", v["access_token"].as_str().unwrap()),
    );
    assert_eq!(status, 200);
}

#[test]
fn b17_login_symmetric_client_basic_encoding_modes() {
    let client_id = kit::unique("cli-sym");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "client_secret": "s3cr+t/=x",
        "redirect_uris": ["http://127.0.0.1/callback"], "scope": "openid fhirUser user/*.rs"
    }));
    let env = [("SMART_TEST_SECRET", "s3cr+t/=x")];
    // The sandbox (oidc-provider) follows RFC 6749 §2.3.1 and form-decodes Basic credentials,
    // so the raw default (what a large EHR expects, case B17) fails for a secret with `+`...
    let o = login(
        &[
            "--scope",
            "openid fhirUser user/*.rs",
            "--secret-env",
            "SMART_TEST_SECRET",
        ],
        &client_id,
        &env,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("invalid_client") && err.contains("HTTP 401"),
        "{err}"
    );
    assert!(!err.contains("s3cr+t"), "secret never printed: {err}");
    // ...and the RFC encoding, selected per server, succeeds.
    let o = login(
        &[
            "--scope",
            "openid fhirUser user/*.rs",
            "--secret-env",
            "SMART_TEST_SECRET",
            "--basic-form-encoded",
            "--json",
        ],
        &client_id,
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["scope"], "openid fhirUser user/*.rs");
    assert!(!stderr(&o).contains("s3cr+t"), "secret never printed");
}

#[test]
fn sandbox_static_key_set_with_kid_and_discover_flag_and_hints() {
    // The sandbox's committed JWK Set has two private keys; --kid picks one.
    let keys = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sandbox/keys/sandbox-client.private.jwks.json"
    );
    let o = smart(&["jwks", keys]);
    assert_eq!(o.status.code(), Some(1), "ambiguous without --kid");
    let o = smart(&["jwks", keys, "--kid", "sandbox-es384"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["keys"][0]["kid"], "sandbox-es384");
    let o = smart(&[
        "token",
        "--fhir-base",
        &kit::fhir_base(),
        "--client-id",
        "sandbox-backend",
        "--key",
        keys,
        "--kid",
        "sandbox-rs384",
        "--scope",
        "system/Patient.rs",
    ]);
    assert!(
        o.status.success(),
        "static sandbox-backend client: {}",
        stderr(&o)
    );
    // `discover --fhir-base` works like the positional form.
    let o = smart(&["discover", "--fhir-base", &kit::fhir_base()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A refused connection says what to do.
    let o = smart(&["discover", "http://127.0.0.1:9/fhir"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is the server running?"),
        "{}",
        stderr(&o)
    );
    // An empty scope list is an error, not silence.
    let o = smart(&["scope", "explain", ""]);
    assert_eq!(o.status.code(), Some(1));
}
