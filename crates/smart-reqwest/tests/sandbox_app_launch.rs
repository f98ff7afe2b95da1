//! App Launch (authorization code + PKCE) against the real local sandbox (oidc-provider),
//! async adapter (the twin of `smart-ureq/tests/sandbox_app_launch.rs`). Every test registers its own clients (public, symmetric, asymmetric).
//! Requirement ids: AUTHZ-01..AUTHZ-08, REDIR-01, REDIR-02, TOKEN-01..TOKEN-04, RESP-01..RESP-03,
//! CTX-01, CTX-02, REFR-01..REFR-04, OIDC-03; cases B01, B11, B12, B19.
//!
//! The app's redirect URI is `http://127.0.0.1:9/callback` (nothing listens there):
//! `kit::browser_until` plays the browser and hands back the callback URL without requesting it.
//! The testkit helpers are blocking (ureq) and short; they are called directly from the tests.

use std::sync::{Arc, Mutex};

use smart_core::UnixTime;
use smart_core::entropy::SystemEntropy;
use smart_core::error::CallbackError;
use smart_core::launch::{AppConfig, EhrLaunch, IssAllowList, Launch};
use smart_core::session::{Session, StoredToken};
use smart_reqwest::{
    Error, HttpClient, InMemoryTokenStore, SmartClient, TokenStore, begin_launch, complete_launch,
};
use smart_testkit as kit;
use smart_testkit::app::{
    EHR_SCOPE, KINDS, Kind, REDIRECT, STANDALONE_SCOPE, app, ehr_launch_url, fhir_base, param,
    practitioner_url, register, rewrite,
};

/// Standalone launch up to the callback URL.
async fn standalone_callback(
    http: &HttpClient,
    app: &AppConfig,
) -> (smart_core::launch::PendingAuthorization, String) {
    let req = begin_launch(http, app, Launch::standalone(fhir_base()))
        .await
        .unwrap();
    let cb = kit::browser_until(req.url.as_str(), REDIRECT, None);
    (req.pending, cb)
}

async fn read_patient(client: &SmartClient) -> (u16, String) {
    kit::fhir_get(
        "Patient/123",
        client.authorization().await.unwrap().secret(),
    )
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_launch_public_symmetric_asymmetric() {
    let http = HttpClient::new().unwrap();
    for kind in KINDS {
        let (client_id, auth) = register(kind);
        let app = app(auth, STANDALONE_SCOPE);
        let req = begin_launch(&http, &app, Launch::standalone(fhir_base()))
            .await
            .unwrap();
        // AUTHZ-06: aud is the FHIR base; AUTHZ-07: S256.
        assert_eq!(
            param(req.url.as_str(), "aud").as_deref(),
            Some(kit::fhir_base().as_str())
        );
        assert_eq!(
            param(req.url.as_str(), "code_challenge_method").as_deref(),
            Some("S256")
        );
        assert_eq!(param(req.url.as_str(), "launch"), None);
        let cb = kit::browser_until(req.url.as_str(), REDIRECT, None);
        assert!(cb.starts_with(&format!("{REDIRECT}?")), "{kind:?}");
        assert_eq!(
            param(&cb, "iss").as_deref(),
            Some(kit::sandbox_url().as_str())
        );
        let client = complete_launch(&http, &app, req.pending, &cb)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(kit::token_requests(&client_id), 1, "{kind:?}");

        let (status, body) = read_patient(&client).await;
        assert_eq!(status, 200, "{kind:?} RESP-03: {body}");
        assert!(body.contains("\"Argonaut\""), "{body}");
        assert_eq!(
            client.patient_id().await.as_deref(),
            Some("123"),
            "{kind:?}"
        );
        assert_eq!(client.need_patient_banner().await, Some(false), "{kind:?}");
        assert_eq!(
            client.smart_style_url().await,
            Some(format!("{}/smart-style.json", kit::sandbox_url()))
        );
        assert_eq!(
            client.fhir_user().await.map(|u| u.to_string()),
            Some(practitioner_url()),
            "{kind:?} OIDC-03"
        );
        let claims = client.id_token_claims_unverified().await.unwrap();
        assert_eq!(claims.aud, Some(serde_json::json!(client_id)));
        assert_eq!(claims.iss.as_deref(), Some(kit::sandbox_url().as_str()));
        let t = client.tokens().await;
        assert!(t.is_bearer());
        assert_eq!(t.expires_in, Some(3600));
        for s in STANDALONE_SCOPE.split(' ') {
            assert!(t.has_scope(s), "{kind:?}: {s} granted in {:?}", t.scope);
        }
        assert!(t.refresh_token.is_some(), "REFR-01: offline_access");
        assert_eq!(client.fhir_base().await, fhir_base());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ehr_launch_public_symmetric_asymmetric() {
    let http = HttpClient::new().unwrap();
    for kind in KINDS {
        let (client_id, auth) = register(kind);
        let app = app(auth, EHR_SCOPE);
        let launch_url = ehr_launch_url();
        let ehr = EhrLaunch::from_url(&launch_url).unwrap();
        assert_eq!(ehr.iss.as_given(), kit::fhir_base(), "B01: iss as given");
        let launch_id = ehr.launch.clone();
        let req = begin_launch(&http, &app, Launch::Ehr(ehr)).await.unwrap();
        assert_eq!(
            param(req.url.as_str(), "launch").as_deref(),
            Some(launch_id.as_str())
        );
        let cb = kit::browser_until(req.url.as_str(), REDIRECT, None);
        let client = complete_launch(&http, &app, req.pending, &cb)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(kit::token_requests(&client_id), 1);

        assert_eq!(
            client.patient_id().await.as_deref(),
            Some("123"),
            "{kind:?}"
        );
        assert_eq!(
            client.encounter_id().await.as_deref(),
            Some("enc-1"),
            "{kind:?}"
        );
        assert_eq!(client.need_patient_banner().await, Some(true), "{kind:?}");
        let ctx = client.fhir_context().await;
        assert_eq!(ctx.len(), 1, "{ctx:?}");
        assert_eq!(ctx[0].reference.as_deref(), Some("DiagnosticReport/dr-1"));
        assert_eq!(ctx[0].role(), "launch");
        assert_eq!(
            client.fhir_user().await.map(|u| u.to_string()),
            Some(practitioner_url())
        );
        assert!(client.tokens().await.has_scope("launch"));
        assert!(
            client.tokens().await.refresh_token.is_some(),
            "online_access"
        );
        let (status, body) = kit::fhir_get(
            "Encounter/enc-1",
            client.authorization().await.unwrap().secret(),
        );
        assert_eq!(status, 200, "{kind:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_reports_to_the_hook_and_keeps_context() {
    let http = HttpClient::new().unwrap();
    for kind in KINDS {
        let (client_id, auth) = register(kind);
        let app = app(auth, STANDALONE_SCOPE);
        let (pending, cb) = standalone_callback(&http, &app).await;
        let validated = pending.callback(&app, &cb).unwrap();
        let fhir_base = validated.exchange.fhir_base().clone();
        let token_endpoint = validated.exchange.token_endpoint().clone();
        let token = http
            .run(&mut validated.exchange.into_flow(Arc::new(SystemEntropy)))
            .await
            .unwrap();
        let first_rt = token.refresh_token.clone().unwrap();
        let session = Session::new(
            &app,
            fhir_base,
            token_endpoint,
            token,
            Arc::new(SystemEntropy),
        );
        let seen: Arc<Mutex<Vec<StoredToken>>> = Arc::default();
        let hook_seen = seen.clone();
        let store = Arc::new(InMemoryTokenStore::new());
        let client = SmartClient::builder(session)
            .http(http.clone())
            .store(store.clone())
            .store_key("user-1")
            .on_rotate(Arc::new(move |s: &StoredToken| {
                hook_seen.lock().unwrap().push(s.clone());
            }))
            .build()
            .await
            .unwrap();
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the exchanged set is reported"
        );

        let refreshed = client.refresh(None).await.unwrap();
        let new_rt = refreshed.refresh_token.clone().unwrap();
        assert_ne!(new_rt, first_rt, "{kind:?}: the sandbox rotates");
        assert_eq!(kit::token_requests(&client_id), 2);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[1].token.refresh_token.as_ref(), Some(&new_rt));
            assert_eq!(seen[1].client_id.as_str(), client_id);
        }
        let stored = store.get("user-1").await.unwrap().unwrap();
        assert_eq!(stored.token.refresh_token.as_ref(), Some(&new_rt));
        assert_eq!(stored.token.access_token, refreshed.access_token);
        // The refresh response carries no launch context: it is kept.
        assert_eq!(client.patient_id().await.as_deref(), Some("123"));
        assert_eq!(client.need_patient_banner().await, Some(false));
        assert_eq!(stored.token.context.patient.as_deref(), Some("123"));
        assert!(client.id_token().await.is_some());
        let (status, body) = read_patient(&client).await;
        assert_eq!(status, 200, "{body}");

        // Restoring from the store continues with the rotated token.
        let restored = SmartClient::restore(&app, store.clone(), "user-1")
            .await
            .unwrap();
        assert_eq!(
            restored.tokens().await.refresh_token.as_ref(),
            Some(&new_rt)
        );

        // The premise: the sandbox's refresh response itself carries no launch context.
        let raw = http
            .send(
                smart_core::refresh::refresh_request(
                    &app.client_auth,
                    &stored.token_endpoint,
                    &new_rt,
                    None,
                    false,
                    UnixTime::from(std::time::SystemTime::now()),
                    &SystemEntropy,
                )
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(raw.status, 200);
        let raw: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
        assert!(raw["refresh_token"].is_string());
        for member in ["patient", "need_patient_banner", "smart_style_url"] {
            assert!(
                raw.get(member).is_none(),
                "{kind:?}: refresh response has {member}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_mismatch_is_invalid_grant_400() {
    let http = HttpClient::new().unwrap();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE);
    let (mut pending, cb) = standalone_callback(&http, &app).await;
    let original = pending.code_verifier.secret().to_owned();
    pending.code_verifier = smart_core::pkce::generate_code_verifier(&SystemEntropy).unwrap();
    assert_ne!(pending.code_verifier.secret(), original);
    let err = complete_launch(&http, &app, pending, &cb)
        .await
        .unwrap_err();
    let oauth = err.oauth_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(oauth.error, "invalid_grant");
    assert_eq!(oauth.status, Some(400));
    assert_eq!(kit::token_requests(&client_id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_state_is_state_mismatch_and_no_token_request() {
    let http = HttpClient::new().unwrap();
    let (client_id, auth) = register(Kind::Symmetric);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback(&http, &app).await;
    let forged = rewrite(&cb, "state", "forged-state-value");
    let err = complete_launch(&http, &app, pending, &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Smart(smart_core::Error::Callback(CallbackError::StateMismatch))
        ),
        "{err}"
    );
    assert_eq!(
        kit::token_requests(&client_id),
        0,
        "REDIR-01: code not sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_authorization_is_an_error_redirect() {
    let http = HttpClient::new().unwrap();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE)
        .with_authorize_param("login_hint", "deny")
        .unwrap();
    let (pending, cb) = standalone_callback(&http, &app).await;
    assert_eq!(param(&cb, "error").as_deref(), Some("access_denied"));
    let err = complete_launch(&http, &app, pending, &cb)
        .await
        .unwrap_err();
    match err {
        Error::Smart(smart_core::Error::Callback(CallbackError::Authorization(e))) => {
            assert_eq!(e.error, "access_denied", "REDIR-02");
            assert_eq!(e.status, None);
            assert!(
                e.error_description.as_deref().unwrap().contains("denied"),
                "{e:?}"
            );
        }
        other => panic!("expected an authorization error, got {other}"),
    }
    assert_eq!(kit::token_requests(&client_id), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9207_iss_mismatch_is_refused_without_a_token_request() {
    let http = HttpClient::new().unwrap();
    let (client_id, auth) = register(Kind::Asymmetric);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback(&http, &app).await;
    let forged = rewrite(&cb, "iss", "https://evil.example.net");
    let err = complete_launch(&http, &app, pending, &forged)
        .await
        .unwrap_err();
    match err {
        Error::Smart(smart_core::Error::Callback(CallbackError::IssuerMismatch {
            expected,
            received,
        })) => {
            assert_eq!(expected, kit::sandbox_url());
            assert_eq!(received, "https://evil.example.net");
        }
        other => panic!("expected IssuerMismatch, got {other}"),
    }
    assert_eq!(kit::token_requests(&client_id), 0, "B11b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iss_outside_the_allow_list_is_refused_before_any_request() {
    let http = HttpClient::new().unwrap();
    let (_, auth) = register(Kind::Public);
    let app = app(auth, EHR_SCOPE).with_iss_allow_list(IssAllowList::Exact(vec![
        "https://ehr.example.org/fhir".into(),
    ]));
    // The sandbox's own launch: its iss is not on the list.
    let ehr = EhrLaunch::from_url(&ehr_launch_url()).unwrap();
    let err = begin_launch(&http, &app, Launch::Ehr(ehr))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Smart(smart_core::Error::Callback(CallbackError::IssNotAllowed(iss)))
                if *iss == kit::fhir_base()
        ),
        "{err}"
    );
    // An iss where nothing listens: a request would be a transport error, not IssNotAllowed.
    let ehr = EhrLaunch::from_url("?iss=http%3A%2F%2F127.0.0.1%3A9%2Ffhir&launch=L1").unwrap();
    let err = begin_launch(&http, &app, Launch::Ehr(ehr))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Smart(smart_core::Error::Callback(CallbackError::IssNotAllowed(iss)))
                if iss == "http://127.0.0.1:9/fhir"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_post_form_completes_the_launch() {
    let http = HttpClient::new().unwrap();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE);
    let req = begin_launch(&http, &app, Launch::standalone(fhir_base()))
        .await
        .unwrap();
    let post = req.post.expect("the sandbox advertises authorize-post");
    assert_eq!(post.action.as_str(), format!("{}/auth", kit::sandbox_url()));
    let cb = kit::browser_until(post.action.as_str(), REDIRECT, Some(&post.body()));
    let client = complete_launch(&http, &app, req.pending, &cb)
        .await
        .unwrap();
    assert_eq!(client.patient_id().await.as_deref(), Some("123"));
    assert_eq!(read_patient(&client).await.0, 200);
    assert_eq!(kit::token_requests(&client_id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_invalidates_and_the_next_authorization_refreshes() {
    let http = HttpClient::new().unwrap();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback(&http, &app).await;
    let client = complete_launch(&http, &app, pending, &cb).await.unwrap();
    let first = client.authorization().await.unwrap();
    assert_eq!(read_patient(&client).await.0, 200);

    kit::revoke(&client_id, false);
    let (status, _) = kit::fhir_get("Patient/123", first.secret());
    assert_eq!(status, 401);
    assert_eq!(
        client.authorization().await.unwrap(),
        first,
        "no refresh before the app reports the 401"
    );
    client.on_unauthorized().await;
    let second = client.authorization().await.unwrap();
    assert_ne!(second, first);
    let (status, body) = kit::fhir_get("Patient/123", second.secret());
    assert_eq!(status, 200, "{body}");
    assert_eq!(kit::token_requests(&client_id), 2);
    assert_eq!(client.patient_id().await.as_deref(), Some("123"));
}
