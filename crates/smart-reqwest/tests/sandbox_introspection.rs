//! Token introspection (RFC 7662; INTRO-01) and revocation (RFC 7009) against the real local
//! sandbox (oidc-provider), async adapter (the twin of `smart-ureq/tests/sandbox_introspection.rs`; the testkit
//! helpers are blocking and short, called directly). Each test gets a real token set through a
//! standalone launch of a freshly registered client of each type (public, symmetric,
//! asymmetric); the endpoints come from discovery.

use smart_core::UnixTime;
use smart_core::error::OAuthError;
use smart_core::introspection::{IntrospectionAuth, TokenTypeHint};
use smart_core::launch::{AppConfig, Launch};
use smart_core::secret::ClientSecret;
use smart_core::token::TokenResponse;
use smart_reqwest::{
    Error, HttpClient, begin_launch, complete_launch, discover, introspect, refresh_token, revoke,
};
use smart_testkit as kit;
use smart_testkit::app::{KINDS, Kind, REDIRECT, STANDALONE_SCOPE, app, fhir_base, register};
use url::Url;

struct Endpoints {
    token: Url,
    introspection: Url,
    revocation: Url,
}

async fn endpoints(http: &HttpClient) -> Endpoints {
    let d = discover(http, &fhir_base()).await.unwrap();
    let introspection = d.config.introspection_endpoint.clone().unwrap();
    let revocation = d.config.revocation_endpoint.clone().unwrap();
    assert_eq!(
        introspection.as_str(),
        format!("{}/token/introspection", kit::sandbox_url())
    );
    assert_eq!(
        revocation.as_str(),
        format!("{}/token/revocation", kit::sandbox_url())
    );
    Endpoints {
        token: d.config.token_endpoint,
        introspection,
        revocation,
    }
}

/// A standalone launch of a fresh client of `kind`: (client_id, app, token set).
async fn launch(http: &HttpClient, kind: Kind) -> (String, AppConfig, TokenResponse) {
    let (client_id, auth) = register(kind);
    let app = app(auth, STANDALONE_SCOPE);
    let req = begin_launch(http, &app, Launch::standalone(fhir_base()))
        .await
        .unwrap();
    let cb = kit::browser_until(req.url.as_str(), REDIRECT, None);
    let client = complete_launch(http, &app, req.pending, &cb)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let tokens = (*client.tokens().await).clone();
    assert!(tokens.refresh_token.is_some(), "offline_access granted");
    (client_id, app, tokens)
}

fn now() -> u64 {
    UnixTime::from(std::time::SystemTime::now()).as_secs()
}

fn bearer(t: &TokenResponse) -> String {
    format!("Bearer {}", t.access_token.secret())
}

fn assert_invalid_grant(e: Error, what: &str) {
    match e {
        Error::Smart(smart_core::Error::OAuth(OAuthError { status, error, .. })) => {
            assert_eq!(
                (status, error.as_str()),
                (Some(400), "invalid_grant"),
                "{what}"
            );
        }
        other => panic!("{what}: expected invalid_grant, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspect_active_access_token_for_each_client_type() {
    let http = HttpClient::new().unwrap();
    let ep = endpoints(&http).await;
    for kind in KINDS {
        let (client_id, app, tokens) = launch(&http, kind).await;
        let i = introspect(
            &http,
            &ep.introspection,
            tokens.access_token.secret(),
            Some(TokenTypeHint::AccessToken),
            IntrospectionAuth::Client(&app.client_auth),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(i.active, "{kind:?}");
        assert_eq!(i.client_id.as_deref(), Some(client_id.as_str()), "{kind:?}");
        assert_eq!(i.patient.as_deref(), Some("123"), "{kind:?}");
        assert_eq!(i.patient_id(), Some("123"));
        assert!(i.has_scope("patient/*.rs"), "{kind:?}: {:?}", i.scope);
        assert_eq!(i.token_type.as_deref(), Some("Bearer"));
        assert_eq!(i.iss.as_deref(), Some(kit::sandbox_url().as_str()));
        assert_eq!(
            i.fhir_user.as_deref(),
            Some("Practitioner/smart-Practitioner-1"),
            "{kind:?}"
        );
        let exp = i.exp.expect("SMART: exp SHALL be present").as_secs();
        let now = now();
        assert!(
            exp > now + 3500 && exp <= now + 3600,
            "exp {exp} ~ now {now} + expires_in 3600"
        );
        assert!(i.is_active_at(UnixTime::from_secs(now)));
        // The refresh token is active too.
        let r = introspect(
            &http,
            &ep.introspection,
            tokens.refresh_token.as_ref().unwrap().secret(),
            Some(TokenTypeHint::RefreshToken),
            IntrospectionAuth::Client(&app.client_auth),
        )
        .await
        .unwrap();
        assert!(r.active, "{kind:?}: refresh token");
        assert_eq!(r.client_id.as_deref(), Some(client_id.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_refresh_token_is_dead() {
    let http = HttpClient::new().unwrap();
    let ep = endpoints(&http).await;
    for kind in KINDS {
        let (_, app, tokens) = launch(&http, kind).await;
        let rt = tokens.refresh_token.clone().unwrap();
        revoke(
            &http,
            &ep.revocation,
            rt.secret(),
            Some(TokenTypeHint::RefreshToken),
            &app.client_auth,
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let i = introspect(
            &http,
            &ep.introspection,
            rt.secret(),
            Some(TokenTypeHint::RefreshToken),
            IntrospectionAuth::Client(&app.client_auth),
        )
        .await
        .unwrap();
        assert!(!i.active, "{kind:?}: revoked refresh token is inactive");
        assert_eq!(i.client_id, None, "nothing else kept");
        let e = refresh_token(&http, &app, &ep.token, &rt, None)
            .await
            .unwrap_err();
        assert_invalid_grant(e, &format!("{kind:?}: refresh with a revoked token"));
        // RFC 7009 §2.2: revoking an already-revoked token is still 200.
        revoke(&http, &ep.revocation, rt.secret(), None, &app.client_auth)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_access_token_is_rejected_by_the_fhir_api() {
    let http = HttpClient::new().unwrap();
    let ep = endpoints(&http).await;
    for kind in KINDS {
        let (_, app, tokens) = launch(&http, kind).await;
        let (status, body) = kit::fhir_get("Patient/123", &bearer(&tokens));
        assert_eq!(status, 200, "{kind:?}: {body}");
        revoke(
            &http,
            &ep.revocation,
            tokens.access_token.secret(),
            Some(TokenTypeHint::AccessToken),
            &app.client_auth,
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let (status, body) = kit::fhir_get("Patient/123", &bearer(&tokens));
        assert_eq!(status, 401, "{kind:?}: {body}");
        let i = introspect(
            &http,
            &ep.introspection,
            tokens.access_token.secret(),
            None,
            IntrospectionAuth::Client(&app.client_auth),
        )
        .await
        .unwrap();
        assert!(!i.active, "{kind:?}: revoked access token is inactive");
        assert_eq!(i.patient, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_token_is_inactive_and_bad_credentials_are_invalid_client() {
    let http = HttpClient::new().unwrap();
    let ep = endpoints(&http).await;
    let (client_id, app, tokens) = launch(&http, Kind::Symmetric).await;
    let i = introspect(
        &http,
        &ep.introspection,
        "not-a-token-this-server-issued",
        None,
        IntrospectionAuth::Client(&app.client_auth),
    )
    .await
    .unwrap();
    assert!(!i.active);
    // Revoking an unknown token is 200 too (RFC 7009 §2.2).
    revoke(
        &http,
        &ep.revocation,
        "not-a-token-this-server-issued",
        None,
        &app.client_auth,
    )
    .await
    .unwrap();

    let wrong = smart_core::client_auth::ClientAuth::symmetric(
        &client_id,
        ClientSecret::new("wrong-secret"),
    );
    let e = introspect(
        &http,
        &ep.introspection,
        tokens.access_token.secret(),
        None,
        IntrospectionAuth::Client(&wrong),
    )
    .await
    .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(tokens.access_token.secret()), "{shown}");
    match e {
        Error::Smart(smart_core::Error::OAuth(o)) => {
            assert_eq!(o.error, "invalid_client", "{o:?}");
            assert_eq!(o.status, Some(401));
        }
        other => panic!("expected invalid_client, got {other}"),
    }
    let e = revoke(
        &http,
        &ep.revocation,
        tokens.access_token.secret(),
        None,
        &wrong,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Error::Smart(smart_core::Error::OAuth(o)) if o.error == "invalid_client"),
        "{e}"
    );
    // The failed revocation left the token alone.
    let (status, _) = kit::fhir_get("Patient/123", &bearer(&tokens));
    assert_eq!(status, 200);
}
