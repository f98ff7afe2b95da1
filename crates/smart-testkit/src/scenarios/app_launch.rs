//! App Launch (authorization code + PKCE) against the real local sandbox (oidc-provider).
//! Every scenario registers its own clients (public, symmetric, asymmetric).
// Requirement ids: AUTHZ-01..AUTHZ-08, REDIR-01, REDIR-02, TOKEN-01..TOKEN-04, RESP-01..RESP-03,
// CTX-01, CTX-02, REFR-01..REFR-04, OIDC-03; cases B01, B11, B12, B19.
//!
//! The app's redirect URI is `http://127.0.0.1:9/callback` (nothing listens there):
//! [`browser_until`](crate::browser_until) plays the browser and hands back the callback URL
//! without requesting it.

use std::sync::{Arc, Mutex};

use smart_core::entropy::SystemEntropy;
use smart_core::error::CallbackError;
use smart_core::launch::{EhrLaunch, IssAllowList, Launch};
use smart_core::session::Session;
use smart_core::store::{InMemoryTokenStore, StoredToken, TokenStore as _};
use smart_core::{Error, FhirBaseUrl};

use super::{now, oauth, read_patient, standalone_callback};
use crate as kit;
use crate::app::{
    EHR_SCOPE, KINDS, Kind, REDIRECT, STANDALONE_SCOPE, app, ehr_launch_url, fhir_base, param,
    practitioner_url, register, rewrite,
};
use crate::driver::{ClientOptions, Driver};

// Requirements and cases: AUTHZ-06/07, RESP-03, CTX-01, OIDC-03, REFR-01.
/// A standalone launch of each client type.
pub fn standalone_launch_public_symmetric_asymmetric<D: Driver>() {
    let http = D::default_http();
    for kind in KINDS {
        let (client_id, auth) = register(kind);
        let app = app(auth, STANDALONE_SCOPE);
        let req = D::begin_launch(&http, &app, Launch::standalone(fhir_base())).unwrap();
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
        let client = D::complete_launch(&http, &app, req.pending, &cb)
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(kit::token_requests(&client_id), 1, "{kind:?}");

        let (status, body) = read_patient::<D>(&client);
        assert_eq!(status, 200, "{kind:?} RESP-03: {body}");
        assert!(body.contains("\"Argonaut\""), "{body}");
        let c = D::snapshot(&client);
        assert_eq!(c.patient_id.as_deref(), Some("123"), "{kind:?}");
        assert_eq!(c.need_patient_banner, Some(false), "{kind:?}");
        assert_eq!(
            c.smart_style_url,
            Some(format!("{}/smart-style.json", kit::sandbox_url()))
        );
        assert_eq!(
            c.fhir_user.map(|u| u.to_string()),
            Some(practitioner_url()),
            "{kind:?} OIDC-03"
        );
        let claims = c.id_token_claims_unverified.unwrap();
        assert_eq!(claims.aud, Some(serde_json::json!(client_id)));
        assert_eq!(claims.iss.as_deref(), Some(kit::sandbox_url().as_str()));
        let t = c.tokens;
        assert!(t.is_bearer());
        assert_eq!(t.expires_in, Some(3600));
        for s in STANDALONE_SCOPE.split(' ') {
            assert!(t.has_scope(s), "{kind:?}: {s} granted in {:?}", t.scope);
        }
        assert_eq!(c.scope, t.scope);
        assert!(t.refresh_token.is_some(), "REFR-01: offline_access");
        assert_eq!(c.fhir_base, fhir_base());
        assert_eq!(c.stored.client_id.as_str(), client_id);
        assert_eq!(c.stored.token.access_token, t.access_token);
        assert_eq!(c.store_key, c.stored.default_key());
    }
}

// Requirements and cases: B01, CTX-01/02.
/// An EHR launch from the sandbox's simulated EHR, with each client type.
pub fn ehr_launch_public_symmetric_asymmetric<D: Driver>() {
    let http = D::default_http();
    for kind in KINDS {
        let (client_id, auth) = register(kind);
        let app = app(auth, EHR_SCOPE);
        let launch_url = ehr_launch_url();
        let ehr = EhrLaunch::from_url(&launch_url).unwrap();
        assert_eq!(ehr.iss.as_given(), kit::fhir_base(), "B01: iss as given");
        let launch_id = ehr.launch.clone();
        let req = D::begin_launch(&http, &app, Launch::Ehr(ehr)).unwrap();
        assert_eq!(
            param(req.url.as_str(), "launch").as_deref(),
            Some(launch_id.as_str())
        );
        let cb = kit::browser_until(req.url.as_str(), REDIRECT, None);
        let client = D::complete_launch(&http, &app, req.pending, &cb)
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(kit::token_requests(&client_id), 1);

        let c = D::snapshot(&client);
        assert_eq!(c.patient_id.as_deref(), Some("123"), "{kind:?}");
        assert_eq!(c.encounter_id.as_deref(), Some("enc-1"), "{kind:?}");
        assert_eq!(c.need_patient_banner, Some(true), "{kind:?}");
        let ctx = c.fhir_context;
        assert_eq!(ctx.len(), 1, "{ctx:?}");
        assert_eq!(ctx[0].reference.as_deref(), Some("DiagnosticReport/dr-1"));
        assert_eq!(ctx[0].role(), "launch");
        assert_eq!(c.fhir_user.map(|u| u.to_string()), Some(practitioner_url()));
        assert!(c.tokens.has_scope("launch"));
        assert!(c.tokens.refresh_token.is_some(), "online_access");
        let (status, body) = kit::fhir_get(
            "Encounter/enc-1",
            D::client_authorization(&client).unwrap().secret(),
        );
        assert_eq!(status, 200, "{kind:?}: {body}");
    }
}

// Requirements and cases: REFR-01/03/04.
/// A refresh rotates the refresh token, is reported to the rotation hook and
/// stored before use, and keeps the launch context; a restored client continues with it.
pub fn refresh_rotates_reports_to_the_hook_and_keeps_context<D: Driver>() {
    let http = D::default_http();
    for kind in KINDS {
        let (client_id, auth) = register(kind);
        let app = app(auth, STANDALONE_SCOPE);
        let (pending, cb) = standalone_callback::<D>(&http, &app);
        let validated = pending.callback(&app, &cb).unwrap();
        let fhir_base: FhirBaseUrl = validated.exchange.fhir_base().clone();
        let token_endpoint = validated.exchange.token_endpoint().clone();
        let token = D::run(&http, validated.exchange).unwrap();
        let first_rt = token.refresh_token.clone().unwrap();
        let session = Session::new(&app, fhir_base, token_endpoint, token, now());
        let seen: Arc<Mutex<Vec<StoredToken>>> = Arc::default();
        let hook_seen = seen.clone();
        let store = Arc::new(InMemoryTokenStore::new());
        let client = D::client(
            session,
            ClientOptions {
                http: Some(http.clone()),
                store: Some(store.clone()),
                store_key: Some("user-1".into()),
                on_rotate: Some(Arc::new(move |s: &StoredToken| {
                    hook_seen.lock().unwrap().push(s.clone());
                })),
                retry: None,
            },
        )
        .unwrap();
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the exchanged set is reported"
        );
        assert_eq!(
            store.get("user-1").unwrap().map(|s| s.token.refresh_token),
            Some(Some(first_rt.clone())),
            "the exchanged set is stored"
        );

        let refreshed = D::client_refresh(&client, None).unwrap();
        let new_rt = refreshed.refresh_token.clone().unwrap();
        assert_ne!(new_rt, first_rt, "{kind:?}: the sandbox rotates");
        assert_eq!(kit::token_requests(&client_id), 2);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[1].token.refresh_token.as_ref(), Some(&new_rt));
            assert_eq!(seen[1].client_id.as_str(), client_id);
        }
        let stored = store.get("user-1").unwrap().unwrap();
        assert_eq!(stored.token.refresh_token.as_ref(), Some(&new_rt));
        assert_eq!(stored.token.access_token, refreshed.access_token);
        // The refresh response carries no launch context: it is kept.
        let c = D::snapshot(&client);
        assert_eq!(c.patient_id.as_deref(), Some("123"));
        assert_eq!(c.need_patient_banner, Some(false));
        assert_eq!(stored.token.context.patient.as_deref(), Some("123"));
        assert!(c.id_token.is_some());
        let (status, body) = read_patient::<D>(&client);
        assert_eq!(status, 200, "{body}");

        // Restoring from the store continues with the rotated token.
        let restored = D::restore(&app, store.clone(), "user-1").unwrap();
        assert_eq!(
            D::snapshot(&restored).tokens.refresh_token.as_ref(),
            Some(&new_rt)
        );
        // The premise: the sandbox's refresh response itself carries no launch context.
        let raw = D::send(
            &http,
            smart_core::refresh::refresh_request(
                &app.client_auth,
                &stored.token_endpoint,
                &new_rt,
                None,
                false,
                now(),
                &SystemEntropy,
            )
            .unwrap(),
        )
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

// Requirements and cases: TOKEN-02.
/// A `code_verifier` other than the one whose challenge was sent is `invalid_grant`.
pub fn pkce_mismatch_is_invalid_grant_400<D: Driver>() {
    let http = D::default_http();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE);
    let (mut pending, cb) = standalone_callback::<D>(&http, &app);
    let original = pending.code_verifier.secret().to_owned();
    pending.code_verifier = smart_core::pkce::generate_code_verifier(&SystemEntropy).unwrap();
    assert_ne!(pending.code_verifier.secret(), original);
    let err = D::complete_launch(&http, &app, pending, &cb).unwrap_err();
    let oauth = oauth(&err).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(oauth.error, "invalid_grant");
    assert_eq!(oauth.status, Some(400));
    assert_eq!(kit::token_requests(&client_id), 1);
}

// Requirements and cases: REDIR-01.
/// A forged `state` is refused before the code is sent.
pub fn wrong_state_is_state_mismatch_and_no_token_request<D: Driver>() {
    let http = D::default_http();
    let (client_id, auth) = register(Kind::Symmetric);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback::<D>(&http, &app);
    let forged = rewrite(&cb, "state", "forged-state-value");
    let err = D::complete_launch(&http, &app, pending, &forged).unwrap_err();
    assert!(
        matches!(err, Error::Callback(CallbackError::StateMismatch)),
        "{err}"
    );
    assert_eq!(
        kit::token_requests(&client_id),
        0,
        "REDIR-01: code not sent"
    );
}

// Requirements and cases: REDIR-02.
/// The user denies: an error redirect, typed, without a token request.
pub fn denied_authorization_is_an_error_redirect<D: Driver>() {
    let http = D::default_http();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE)
        .with_authorize_param("login_hint", "deny")
        .unwrap();
    let (pending, cb) = standalone_callback::<D>(&http, &app);
    assert_eq!(param(&cb, "error").as_deref(), Some("access_denied"));
    let err = D::complete_launch(&http, &app, pending, &cb).unwrap_err();
    match err {
        Error::Callback(CallbackError::Authorization(e)) => {
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

// Requirements and cases: B11b.
/// An RFC 9207 `iss` other than the discovered issuer is refused without a request.
pub fn rfc9207_iss_mismatch_is_refused_without_a_token_request<D: Driver>() {
    let http = D::default_http();
    let (client_id, auth) = register(Kind::Asymmetric);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback::<D>(&http, &app);
    let forged = rewrite(&cb, "iss", "https://evil.example.net");
    let err = D::complete_launch(&http, &app, pending, &forged).unwrap_err();
    match err {
        Error::Callback(CallbackError::IssuerMismatch { expected, received }) => {
            assert_eq!(expected, kit::sandbox_url());
            assert_eq!(received, "https://evil.example.net");
        }
        other => panic!("expected IssuerMismatch, got {other}"),
    }
    assert_eq!(kit::token_requests(&client_id), 0, "B11b");
}

/// An EHR launch `iss` outside the allow-list is refused before any request (even discovery).
pub fn iss_outside_the_allow_list_is_refused_before_any_request<D: Driver>() {
    let http = D::default_http();
    let (_, auth) = register(Kind::Public);
    let app = app(auth, EHR_SCOPE).with_iss_allow_list(IssAllowList::Exact(vec![
        "https://ehr.example.org/fhir".into(),
    ]));
    // The sandbox's own launch: its iss is not on the list.
    let ehr = EhrLaunch::from_url(&ehr_launch_url()).unwrap();
    let err = D::begin_launch(&http, &app, Launch::Ehr(ehr)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Callback(CallbackError::IssNotAllowed(iss)) if *iss == kit::fhir_base()
        ),
        "{err}"
    );
    // An iss where nothing listens: a request would be a transport error, not IssNotAllowed.
    let ehr = EhrLaunch::from_url("?iss=http%3A%2F%2F127.0.0.1%3A9%2Ffhir&launch=L1").unwrap();
    let err = D::begin_launch(&http, &app, Launch::Ehr(ehr)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Callback(CallbackError::IssNotAllowed(iss)) if iss == "http://127.0.0.1:9/fhir"
        ),
        "{err}"
    );
}

// Requirements and cases: AUTHZ-08.
/// The `authorize-post` form completes a launch.
pub fn authorize_post_form_completes_the_launch<D: Driver>() {
    let http = D::default_http();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE);
    let req = D::begin_launch(&http, &app, Launch::standalone(fhir_base())).unwrap();
    let post = req.post.expect("the sandbox advertises authorize-post");
    assert_eq!(post.action.as_str(), format!("{}/auth", kit::sandbox_url()));
    let cb = kit::browser_until(post.action.as_str(), REDIRECT, Some(&post.body()));
    let client = D::complete_launch(&http, &app, req.pending, &cb).unwrap();
    assert_eq!(D::snapshot(&client).patient_id.as_deref(), Some("123"));
    assert_eq!(read_patient::<D>(&client).0, 200);
    assert_eq!(kit::token_requests(&client_id), 1);
}

// Requirements and cases: REFR-02.
/// After the app reports a 401, the next `authorization()` refreshes.
pub fn a_401_invalidates_and_the_next_authorization_refreshes<D: Driver>() {
    let http = D::default_http();
    let (client_id, auth) = register(Kind::Public);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback::<D>(&http, &app);
    let client = D::complete_launch(&http, &app, pending, &cb).unwrap();
    let first = D::client_authorization(&client).unwrap();
    assert_eq!(read_patient::<D>(&client).0, 200);

    kit::revoke(&client_id, false);
    let (status, _) = kit::fhir_get("Patient/123", first.secret());
    assert_eq!(status, 401);
    assert_eq!(
        D::client_authorization(&client).unwrap(),
        first,
        "no refresh before the app reports the 401"
    );
    D::client_on_unauthorized(&client).unwrap();
    let second = D::client_authorization(&client).unwrap();
    assert_ne!(second, first);
    let (status, body) = kit::fhir_get("Patient/123", second.secret());
    assert_eq!(status, 200, "{body}");
    assert_eq!(kit::token_requests(&client_id), 2);
    assert_eq!(D::snapshot(&client).patient_id.as_deref(), Some("123"));
    // The token() view agrees with the header.
    assert_eq!(D::client_token(&client).unwrap().authorization(), &second);
}

// Requirements and cases: REFR-02.
/// The free `refresh_token` function with a narrower scope; the old refresh token is
/// rotated away.
pub fn refr_02_free_refresh_token_function_with_a_narrower_scope<D: Driver>() {
    let http = D::default_http();
    for kind in KINDS {
        let (_, auth) = register(kind);
        let app = app(auth, STANDALONE_SCOPE);
        let (pending, cb) = standalone_callback::<D>(&http, &app);
        let client = D::complete_launch(&http, &app, pending, &cb).unwrap();
        let stored = D::snapshot(&client).stored;
        let rt = stored
            .token
            .refresh_token
            .clone()
            .expect("offline_access gives a refresh token");
        let new = D::refresh_token(
            &http,
            &app,
            &stored.token_endpoint,
            &rt,
            // A strict subset of the grant (oidc-provider compares scope tokens literally).
            Some("openid fhirUser offline_access"),
        )
        .unwrap();
        assert_eq!(
            new.scope.as_deref(),
            Some("openid fhirUser offline_access"),
            "{kind:?}: narrowed"
        );
        assert!(new.refresh_token.is_some(), "{kind:?}: rotated");
        assert_ne!(
            new.refresh_token.as_ref(),
            Some(&rt),
            "{kind:?}: a new refresh token"
        );
        let (status, _) = kit::fhir_get(
            "Patient/123",
            &format!("Bearer {}", new.access_token.secret()),
        );
        // The narrowed token no longer carries patient/*.rs: the FHIR server refuses the read.
        assert_eq!(status, 403, "{kind:?}");
        // The old refresh token was rotated away: using it again is invalid_grant.
        let err = D::refresh_token(&http, &app, &stored.token_endpoint, &rt, None).unwrap_err();
        assert_eq!(
            oauth(&err).map(|o| o.error.as_str()),
            Some("invalid_grant"),
            "{kind:?}"
        );
    }
}

// Requirements and cases: REFR-02 through the client.
/// `refresh(Some(scope))` narrows the session's scope.
pub fn client_refresh_with_a_narrower_scope<D: Driver>() {
    let http = D::default_http();
    let (client_id, auth) = register(Kind::Symmetric);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback::<D>(&http, &app);
    let client = D::complete_launch(&http, &app, pending, &cb).unwrap();
    let before = D::snapshot(&client).tokens;
    let narrowed = D::client_refresh(&client, Some("openid fhirUser offline_access")).unwrap();
    assert_eq!(
        narrowed.scope.as_deref(),
        Some("openid fhirUser offline_access")
    );
    assert_ne!(narrowed.access_token, before.access_token);
    assert_eq!(
        D::snapshot(&client).scope.as_deref(),
        Some("openid fhirUser offline_access")
    );
    assert_eq!(kit::token_requests(&client_id), 2);
    // The launch context survives the refresh.
    assert_eq!(D::snapshot(&client).patient_id.as_deref(), Some("123"));
    let (status, _) = read_patient::<D>(&client);
    assert_eq!(status, 403, "patient/*.rs is no longer granted");
}
