//! The crate's examples, run against the local sandbox as a user would run them.

use std::time::Duration;

use smart_core::assertion::JwsAlgorithm;
use smart_testkit::{
    browser_until, http_get, register_backend_client, run_example, sandbox_url, scenarios::key,
};

#[test]
fn fhir_middleware_prints_patient_123() {
    let (ok, stdout, stderr) = run_example(
        "fhir_middleware_blocking",
        &[("SMART_SANDBOX_URL", &sandbox_url())],
    );
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("GET Patient/123 -> 200\n"), "{stdout}");
    let (_, body) = stdout.split_once('\n').unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["resourceType"], "Patient");
    assert_eq!(body["id"], "123");
}

#[test]
fn fhir_middleware_without_a_sandbox_url_prints_its_usage() {
    let (ok, _, stderr) = run_example("fhir_middleware_blocking", &[("SMART_SANDBOX_URL", "")]);
    assert!(!ok);
    assert!(stderr.contains("usage: SMART_SANDBOX_URL="), "{stderr}");
}

#[test]
fn backend_services_reads_patient_123_with_a_pem_key() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let key = key(alg);
        let client_id = register_backend_client(&key, "system/Patient.rs", None);
        let pem =
            std::env::temp_dir().join(format!("{}.pem", smart_testkit::unique("example-key")));
        std::fs::write(&pem, key.to_pkcs8_pem().unwrap().secret()).unwrap();
        let base = format!("{}/fhir", sandbox_url());
        let (ok, stdout, stderr) = run_example(
            "backend_services",
            &[
                ("SMART_FHIR_BASE", &base),
                ("SMART_CLIENT_ID", &client_id),
                ("SMART_KEY_FILE", pem.to_str().unwrap()),
                ("SMART_SCOPE", "system/Patient.rs"),
            ],
        );
        let _ = std::fs::remove_file(&pem);
        assert!(ok, "{alg:?}: stdout: {stdout}\nstderr: {stderr}");
        assert!(
            stdout.contains("GET Patient/123 -> 200"),
            "{alg:?}: {stdout}"
        );
        assert!(
            stdout.contains("\"resourceType\": \"Patient\""),
            "{alg:?}: {stdout}"
        );
    }
}

/// The `redirect_uri` parameter of the authorization URL the example printed.
fn redirect_uri_of(authorize_url: &str) -> String {
    url::Url::parse(authorize_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no redirect_uri in {authorize_url}"))
}

fn start_standalone_launch(timeout_secs: &str) -> (smart_testkit::RunningExample, String) {
    let mut app = smart_testkit::spawn_example(
        "standalone_launch",
        &[
            ("SMART_FHIR_BASE", &smart_testkit::fhir_base()),
            ("SMART_TIMEOUT_SECS", timeout_secs),
            ("SMART_OPEN_BROWSER", ""),
        ],
    );
    let line = app.next_line(Duration::from_secs(60));
    let url = line
        .strip_prefix("open this URL: ")
        .unwrap_or_else(|| panic!("first line: {line}"))
        .to_owned();
    (app, url)
}

#[test]
fn standalone_launch_signs_in_through_the_loopback_redirect_and_reads_the_patient() {
    let (app, authorize_url) = start_standalone_launch("60");
    let auth = url::Url::parse(&authorize_url).unwrap();
    assert!(
        authorize_url.starts_with(&format!("{}/auth?", sandbox_url())),
        "{authorize_url}"
    );
    let param = |name: &str| {
        auth.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("client_id").as_deref(), Some("sandbox-public"));
    assert!(param("state").is_some_and(|s| s.len() >= 43));
    let redirect_uri = redirect_uri_of(&authorize_url);
    let port = redirect_uri
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("/callback"))
        .unwrap_or_else(|| panic!("not a loopback redirect URI: {redirect_uri}"));
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{redirect_uri}");

    // Anything but the callback gets a 404, and the app keeps waiting.
    let (status, _) = http_get(&redirect_uri.replace("/callback", "/favicon.ico"));
    assert_eq!(status, 404);

    // The user's browser: the sandbox signs the default user in and approves.
    let callback = browser_until(&authorize_url, &redirect_uri, None);
    let (status, page) = http_get(&callback);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You can close this tab"), "{page}");

    let (ok, stdout, stderr) = app.wait(Duration::from_secs(60));
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
            .to_owned()
    };
    // Standalone launch with `launch/patient`: the sandbox picks patient 123 for a
    // practitioner, its default user.
    assert_eq!(line("patient: "), "123");
    assert_eq!(line("fhirUser: "), "Practitioner/smart-Practitioner-1");
    let scope = line("scope: ");
    for s in ["launch/patient", "openid", "fhirUser", "patient/*.rs"] {
        assert!(scope.split(' ').any(|g| g == s), "{s} not in {scope}");
    }
    let expires = line("access token expires: in ");
    let secs: u64 = expires.trim_end_matches(" s").parse().unwrap();
    assert!((3500..=3600).contains(&secs), "{expires}");
    assert_eq!(line("refresh token: "), "yes");
    let (_, after) = stdout
        .split_once("GET Patient/123 -> 200\n")
        .unwrap_or_else(|| panic!("no Patient read in:\n{stdout}"));
    let patient: serde_json::Value = serde_json::from_str(after).unwrap();
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["id"], "123");
    assert_eq!(patient["name"][0]["family"], "Argonaut");

    // The first line is the authorization URL, whose `state` and `code_challenge` have the
    // shape of a token; nothing after it may.
    let (_, after_url) = stdout.split_once('\n').unwrap();
    assert_eq!(
        smart_testkit::contains_token_like(after_url),
        None,
        "{stdout}"
    );
    assert_eq!(
        smart_testkit::contains_token_like(&stderr),
        None,
        "{stderr}"
    );
    assert_eq!(smart_testkit::contains_token_like(&page), None, "{page}");
}

#[test]
fn standalone_launch_refuses_a_callback_with_another_state() {
    let (app, authorize_url) = start_standalone_launch("60");
    let redirect_uri = redirect_uri_of(&authorize_url);
    // A forged (or stale) redirect: no request to the token endpoint, an error page, exit 1.
    let (status, page) = http_get(&format!(
        "{redirect_uri}?code=forged&state=not-the-state&iss={}",
        sandbox_url()
    ));
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Sign-in failed"), "{page}");
    let (ok, stdout, stderr) = app.wait(Duration::from_secs(30));
    assert!(!ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("state"), "{stderr}");
    assert!(!stdout.contains("patient:"), "{stdout}");
}

#[test]
fn standalone_launch_gives_up_when_the_browser_does_not_come_back() {
    let (app, _) = start_standalone_launch("1");
    let (ok, _, stderr) = app.wait(Duration::from_secs(30));
    assert!(!ok);
    assert!(
        stderr.contains("timed out waiting for the browser"),
        "{stderr}"
    );
}

#[test]
fn standalone_launch_without_a_fhir_base_prints_its_usage() {
    let (ok, _, stderr) = run_example("standalone_launch", &[("SMART_FHIR_BASE", "")]);
    assert!(!ok);
    assert!(stderr.contains("usage: SMART_FHIR_BASE="), "{stderr}");
}
