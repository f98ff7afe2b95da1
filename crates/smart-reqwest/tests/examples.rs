//! The crate's examples, run against the local sandbox as a user would run them.

use std::time::Duration;

use smart_core::assertion::JwsAlgorithm;
use smart_testkit::{
    browser_until, http_get, register_backend_client, run_example, sandbox_url, scenarios::key,
};

#[test]
fn fhir_middleware_prints_patient_123() {
    let (ok, stdout, stderr) =
        run_example("fhir_middleware", &[("SMART_SANDBOX_URL", &sandbox_url())]);
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("GET Patient/123 -> 200\n"), "{stdout}");
    let (_, body) = stdout.split_once('\n').unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["resourceType"], "Patient");
    assert_eq!(body["id"], "123");
}

#[test]
fn fhir_middleware_without_a_sandbox_url_prints_its_usage() {
    let (ok, _, stderr) = run_example("fhir_middleware", &[("SMART_SANDBOX_URL", "")]);
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
            "backend_services_async",
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

#[test]
fn ehr_launch_follows_its_header_steps_and_prints_the_launch_context() {
    // The sandbox's simulated EHR makes the launch URL (its `iss` and `launch`), as the
    // example's header shows with curl.
    let (status, body) = http_get(&format!(
        "{}/_sandbox/ehr-launch?patient=123&launch_url=http://127.0.0.1:54321/launch",
        sandbox_url()
    ));
    assert_eq!(status, 200, "{body}");
    let ehr: serde_json::Value = serde_json::from_str(&body).unwrap();
    let launch_url = ehr["url"].as_str().unwrap().to_owned();
    let mut app = smart_testkit::spawn_example_with("ehr_launch", &[&launch_url], &[]);
    let wait = Duration::from_secs(60);
    assert_eq!(app.next_line(wait), format!("iss: {}/fhir", sandbox_url()));
    assert_eq!(app.next_line(wait), "open this URL in the browser:");
    let authorize_url = app.next_line(wait);
    assert!(
        authorize_url.starts_with(&format!("{}/auth?", sandbox_url())),
        "{authorize_url}"
    );
    assert_eq!(
        app.next_line(wait),
        "then paste the callback URL it redirects to:"
    );
    // The browser's part, headless: the sandbox approves and redirects to the callback.
    let callback = browser_until(&authorize_url, "http://127.0.0.1:54321/callback", None);
    app.write_line(&callback);
    let (ok, stdout, stderr) = app.wait(wait);
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("patient: Some(\"123\")\n"), "{stdout}");
    assert!(stdout.contains("fhirUser: Some("), "{stdout}");
    assert!(stdout.contains("granted scope: "), "{stdout}");
    // After the authorization URL (whose `state` and `code_challenge` look like tokens), only
    // the launch context: never a token.
    let (_, after) = stdout
        .split_once("then paste the callback URL it redirects to:\n")
        .unwrap();
    assert_eq!(smart_testkit::contains_token_like(after), None, "{after}");
}

#[test]
fn ehr_launch_without_a_launch_url_prints_its_usage() {
    let (ok, _, stderr) = run_example("ehr_launch", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("usage: cargo run -p smart-reqwest --example ehr_launch"),
        "{stderr}"
    );
}

#[test]
fn remote_signer_signs_in_a_kms_task_and_reads_patient_123() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let key = key(alg);
        let client_id = register_backend_client(&key, "system/Patient.rs", None);
        let pem = std::env::temp_dir().join(format!("{}.pem", smart_testkit::unique("remote-key")));
        std::fs::write(&pem, key.to_pkcs8_pem().unwrap().secret()).unwrap();
        let base = format!("{}/fhir", sandbox_url());
        let (ok, stdout, stderr) = run_example(
            "remote_signer",
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
            stdout.contains(&format!("1 assertion(s) signed remotely ({alg})")),
            "{alg:?}: {stdout}"
        );
        assert!(
            stdout.contains("GET Patient/123 -> 200"),
            "{alg:?}: {stdout}"
        );
        assert_eq!(smart_testkit::token_requests(&client_id), 1);
    }
}

/// The axum example app, running, and a browser for it: a cookie jar of one cookie (the
/// app's session), no redirects followed.
struct WebApp {
    process: smart_testkit::RunningExample,
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

/// An answer of the app: status, `Location`, body.
struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

impl WebApp {
    fn start(env: &[(&str, &str)]) -> Self {
        let fhir_base = smart_testkit::fhir_base();
        let mut all = vec![("SMART_FHIR_BASE", fhir_base.as_str()), ("APP_ADDR", "")];
        all.extend_from_slice(env);
        let mut process = smart_testkit::spawn_example("axum_launch", &all);
        let line = process.next_line(Duration::from_secs(60));
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line}"))
            .to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Self {
            process,
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    /// `GET url` (absolute, or a path of the app) with the session cookie; keeps a new one.
    async fn get(&mut self, url: &str) -> Answer {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        };
        let mut request = self.http.get(&url);
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str().unwrap();
            assert!(set.contains("HttpOnly"), "{set}");
            assert!(set.contains("SameSite=Lax"), "{set}");
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Answer {
            status,
            location,
            body,
        }
    }

    /// Start a launch at `start` (`/login` or the EHR's launch URL), play the user at the
    /// sandbox, follow the callback; the callback URL and the page shown at `/` afterwards.
    async fn sign_in(&mut self, start: &str) -> (String, String) {
        let answer = self.get(start).await;
        assert_eq!(answer.status, 302, "{}", answer.body);
        let authorize = answer.location.unwrap();
        assert!(
            authorize.starts_with(&format!("{}/auth?", sandbox_url())),
            "{authorize}"
        );
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        let prefix = format!("{}/callback", self.base);
        let callback =
            tokio::task::spawn_blocking(move || browser_until(&authorize, &prefix, None))
                .await
                .unwrap();
        let before = self.cookie.clone();
        let answer = self.get(&callback).await;
        assert_eq!(answer.status, 302, "{}", answer.body);
        assert_eq!(answer.location.as_deref(), Some("/"));
        assert_ne!(self.cookie, before, "a new session id at sign-in");
        let home = self.get("/").await;
        assert_eq!(home.status, 200, "{}", home.body);
        (callback, home.body)
    }
}

/// The text of the element with `id` on `page` (HTML entities decoded).
fn element(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let rest = &page[start..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    let text = &rest[..rest.find("</").unwrap()];
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn assert_no_tokens(app: &WebApp, page: &str) {
    assert_eq!(smart_testkit::contains_token_like(page), None, "{page}");
    let stdout = app.process.stdout();
    let stderr = app.process.stderr();
    assert_eq!(
        smart_testkit::contains_token_like(&stdout),
        None,
        "{stdout}"
    );
    assert_eq!(
        smart_testkit::contains_token_like(&stderr),
        None,
        "{stderr}"
    );
}

#[tokio::test]
async fn axum_launch_standalone_login_shows_the_patient_read_through_the_middleware() {
    let mut app = WebApp::start(&[]);
    let home = app.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Not signed in"), "{}", home.body);
    let signed_out = app.cookie.clone();

    let (callback, page) = app.sign_in("/login").await;
    // The sandbox's default user is a practitioner; `launch/patient` gives patient 123.
    assert_eq!(element(&page, "patient"), "123");
    assert_eq!(
        element(&page, "fhirUser"),
        "Practitioner/smart-Practitioner-1"
    );
    let scope = element(&page, "scope");
    for s in ["launch/patient", "openid", "fhirUser", "patient/*.rs"] {
        assert!(scope.split(' ').any(|g| g == s), "{s} not in {scope}");
    }
    assert!(page.contains("Patient/123 (HTTP 200)"), "{page}");
    let patient: serde_json::Value = serde_json::from_str(&element(&page, "resource")).unwrap();
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(patient["id"], "123");
    assert_eq!(patient["name"][0]["family"], "Argonaut");
    assert_no_tokens(&app, &page);

    // The callback is single use.
    let replay = app.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    // Still signed in after the refused replay.
    assert!(app.get("/").await.body.contains("id=\"patient\">123<"));
    // The session id from before the sign-in does not sign anyone in.
    app.cookie = signed_out;
    assert!(app.get("/").await.body.contains("Not signed in"));
}

#[tokio::test]
async fn axum_launch_ehr_launch_with_a_confidential_client_gets_the_ehr_context() {
    let mut app = WebApp::start(&[
        ("SMART_CLIENT_ID", "sandbox-confidential"),
        ("SMART_CLIENT_SECRET", "sandbox-secret"),
    ]);
    // The sandbox's simulated EHR opens the app's launch URL with `iss` and `launch`.
    let (status, body) = http_get(&format!(
        "{}/_sandbox/ehr-launch?patient=smart-1&launch_url={}/launch",
        sandbox_url(),
        app.base
    ));
    assert_eq!(status, 200, "{body}");
    let ehr: serde_json::Value = serde_json::from_str(&body).unwrap();
    let launch_url = ehr["url"].as_str().unwrap().to_owned();
    assert!(
        launch_url.starts_with(&format!("{}/launch?", app.base)),
        "{launch_url}"
    );

    let (_, page) = app.sign_in(&launch_url).await;
    assert_eq!(element(&page, "patient"), "smart-1");
    assert_eq!(
        element(&page, "fhirUser"),
        "Practitioner/smart-Practitioner-1"
    );
    let scope = element(&page, "scope");
    assert!(scope.split(' ').any(|g| g == "launch"), "{scope}");
    assert!(page.contains("Patient/smart-1 (HTTP 200)"), "{page}");
    let patient: serde_json::Value = serde_json::from_str(&element(&page, "resource")).unwrap();
    assert_eq!(patient["id"], "smart-1");
    assert_eq!(patient["name"][0]["family"], "Shaw");
    assert_no_tokens(&app, &page);
}

#[tokio::test]
async fn axum_launch_refuses_unknown_iss_foreign_callbacks_and_forged_state() {
    let mut app = WebApp::start(&[]);
    // An `iss` not on the allow-list: refused before any request, no redirect.
    let refused = app
        .get("/launch?iss=https%3A%2F%2Fevil.example%2Ffhir&launch=abc")
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.location, None);
    assert!(refused.body.contains("allow-list"), "{}", refused.body);
    // A launch URL without `launch`.
    let refused = app
        .get(&format!("/launch?iss={}", smart_testkit::fhir_base()))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    // A real launch in one browser ...
    let started = app.get("/login").await;
    assert_eq!(started.status, 302);
    let authorize = started.location.unwrap();
    let prefix = format!("{}/callback", app.base);
    let callback = tokio::task::spawn_blocking(move || browser_until(&authorize, &prefix, None))
        .await
        .unwrap();
    // ... whose callback arrives in another browser (no session, or another session): refused.
    let owner = app.cookie.take();
    let foreign = app.get(&callback).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert_eq!(app.get("/login").await.status, 302);
    let foreign = app.get(&callback).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    // A forged `state` in the owner's session: refused, and the real callback still works.
    app.cookie = owner;
    let forged = app
        .get(&format!(
            "/callback?code=forged&state=forged&iss={}",
            sandbox_url()
        ))
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    let ok = app.get(&callback).await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    let page = app.get("/").await.body;
    assert_eq!(element(&page, "patient"), "123");
}

#[test]
fn axum_launch_without_a_fhir_base_prints_its_usage() {
    let (ok, _, stderr) = run_example("axum_launch", &[("SMART_FHIR_BASE", "")]);
    assert!(!ok);
    assert!(stderr.contains("usage: SMART_FHIR_BASE="), "{stderr}");
}
