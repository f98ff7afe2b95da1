// Requirement ids: INTRO-01.
//! Token introspection (RFC 7662) and revocation (RFC 7009) against the real local
//! sandbox (oidc-provider). Each scenario gets a real token set through a standalone launch of
//! a freshly registered client of each type (public, symmetric, asymmetric); the endpoints
//! come from discovery.

use smart_core::client_auth::ClientAuth;
use smart_core::error::OAuthError;
use smart_core::introspection::{IntrospectionAuth, TokenTypeHint};
use smart_core::launch::AppConfig;
use smart_core::secret::{AccessToken, ClientSecret};
use smart_core::token::TokenResponse;
use smart_core::{Error, UnixTime};

use super::{now, standalone_callback};
use crate as kit;
use crate::app::{KINDS, Kind, STANDALONE_SCOPE, app, fhir_base, register};
use crate::driver::Driver;

struct Endpoints {
    token: smart_core::Endpoint,
    introspection: smart_core::Endpoint,
    revocation: smart_core::Endpoint,
}

fn endpoints<D: Driver>(http: &D::Http) -> Endpoints {
    let d = D::discover(http, &fhir_base()).unwrap();
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
fn launch<D: Driver>(http: &D::Http, kind: Kind) -> (String, AppConfig, TokenResponse) {
    let (client_id, auth) = register(kind);
    let app = app(auth, STANDALONE_SCOPE);
    let (pending, cb) = standalone_callback::<D>(http, &app);
    let client =
        D::complete_launch(http, &app, pending, &cb).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let tokens = (**D::snapshot(&client).tokens).clone();
    assert!(tokens.refresh_token.is_some(), "offline_access granted");
    (client_id, app, tokens)
}

fn bearer(t: &TokenResponse) -> String {
    format!("Bearer {}", t.access_token.secret())
}

/// The refresh token as a token to introspect or revoke (the functions take an access-token
/// typed value; the hint says what it is).
fn as_token(secret: &str) -> AccessToken {
    AccessToken::new(secret)
}

fn assert_invalid_grant(e: Error, what: &str) {
    match e {
        Error::OAuth(OAuthError { status, error, .. }) => {
            assert_eq!(
                (status, error.as_str()),
                (Some(400), "invalid_grant"),
                "{what}"
            );
        }
        other => panic!("{what}: expected invalid_grant, got {other}"),
    }
}

// Requirements and cases: INTRO-01.
/// An active access token (and refresh token) of each client type, authenticated
/// with the client's credentials.
pub fn introspect_active_access_token_for_each_client_type<D: Driver>() {
    let http = D::default_http();
    let ep = endpoints::<D>(&http);
    for kind in KINDS {
        let (client_id, app, tokens) = launch::<D>(&http, kind);
        let i = D::introspect(
            &http,
            &ep.introspection,
            &tokens.access_token,
            Some(TokenTypeHint::AccessToken),
            IntrospectionAuth::Client(app.client_auth.clone()),
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(i.active, "{kind:?}");
        assert_eq!(i.client_id.as_deref(), Some(client_id.as_str()), "{kind:?}");
        assert_eq!(i.patient.as_deref(), Some("123"), "{kind:?}");
        assert_eq!(i.patient_id(), Some("123"));
        assert!(i.has_scope("patient/*.rs"), "{kind:?}: {:?}", i.scope);
        assert_eq!(i.token_type.as_deref(), Some("Bearer"));
        assert_eq!(i.iss.as_deref(), Some(kit::sandbox_url().as_str()));
        assert_eq!(
            i.fhir_user.as_ref().map(smart_core::FhirUser::as_str),
            Some("Practitioner/smart-Practitioner-1"),
            "{kind:?}"
        );
        let exp = i.exp.expect("SMART: exp SHALL be present").as_secs();
        let now = now().as_secs();
        assert!(
            exp > now + 3500 && exp <= now + 3600,
            "exp {exp} ~ now {now} + expires_in 3600"
        );
        assert!(i.is_active_at(UnixTime::from_secs(now)));
        // The refresh token is active too.
        let r = D::introspect(
            &http,
            &ep.introspection,
            &as_token(tokens.refresh_token.as_ref().unwrap().secret()),
            Some(TokenTypeHint::RefreshToken),
            IntrospectionAuth::Client(app.client_auth.clone()),
        )
        .unwrap();
        assert!(r.active, "{kind:?}: refresh token");
        assert_eq!(r.client_id.as_deref(), Some(client_id.as_str()));
    }
}

/// RFC 7009: a revoked refresh token is inactive and cannot refresh; revoking it again is Ok.
pub fn revoked_refresh_token_is_dead<D: Driver>() {
    let http = D::default_http();
    let ep = endpoints::<D>(&http);
    for kind in KINDS {
        let (_, app, tokens) = launch::<D>(&http, kind);
        let rt = tokens.refresh_token.clone().unwrap();
        D::revoke(
            &http,
            &ep.revocation,
            &as_token(rt.secret()),
            Some(TokenTypeHint::RefreshToken),
            &app.client_auth,
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let i = D::introspect(
            &http,
            &ep.introspection,
            &as_token(rt.secret()),
            Some(TokenTypeHint::RefreshToken),
            IntrospectionAuth::Client(app.client_auth.clone()),
        )
        .unwrap();
        assert!(!i.active, "{kind:?}: revoked refresh token is inactive");
        assert_eq!(i.client_id, None, "nothing else kept");
        let e = D::refresh_token(&http, &app, &ep.token, &rt, None).unwrap_err();
        assert_invalid_grant(e, &format!("{kind:?}: refresh with a revoked token"));
        // RFC 7009 §2.2: revoking an already-revoked token is still 200.
        D::revoke(
            &http,
            &ep.revocation,
            &as_token(rt.secret()),
            None,
            &app.client_auth,
        )
        .unwrap();
    }
}

/// A revoked access token is refused by the FHIR API and introspects as inactive.
pub fn revoked_access_token_is_rejected_by_the_fhir_api<D: Driver>() {
    let http = D::default_http();
    let ep = endpoints::<D>(&http);
    for kind in KINDS {
        let (_, app, tokens) = launch::<D>(&http, kind);
        let (status, body) = kit::fhir_get("Patient/123", &bearer(&tokens));
        assert_eq!(status, 200, "{kind:?}: {body}");
        D::revoke(
            &http,
            &ep.revocation,
            &tokens.access_token,
            Some(TokenTypeHint::AccessToken),
            &app.client_auth,
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let (status, body) = kit::fhir_get("Patient/123", &bearer(&tokens));
        assert_eq!(status, 401, "{kind:?}: {body}");
        let i = D::introspect(
            &http,
            &ep.introspection,
            &tokens.access_token,
            None,
            IntrospectionAuth::Client(app.client_auth.clone()),
        )
        .unwrap();
        assert!(!i.active, "{kind:?}: revoked access token is inactive");
        assert_eq!(i.patient, None);
    }
}

/// An unknown token is inactive (and revoking it is Ok); a wrong client secret is
/// `invalid_client` (401) for both endpoints, and the error never shows the token.
pub fn unknown_token_is_inactive_and_bad_credentials_are_invalid_client<D: Driver>() {
    let http = D::default_http();
    let ep = endpoints::<D>(&http);
    let (client_id, app, tokens) = launch::<D>(&http, Kind::Symmetric);
    let unknown = as_token("not-a-token-this-server-issued");
    let i = D::introspect(
        &http,
        &ep.introspection,
        &unknown,
        None,
        IntrospectionAuth::Client(app.client_auth.clone()),
    )
    .unwrap();
    assert!(!i.active);
    // Revoking an unknown token is 200 too (RFC 7009 §2.2).
    D::revoke(&http, &ep.revocation, &unknown, None, &app.client_auth).unwrap();

    let wrong = ClientAuth::symmetric(&client_id, ClientSecret::new("wrong-secret"));
    let e = D::introspect(
        &http,
        &ep.introspection,
        &tokens.access_token,
        None,
        IntrospectionAuth::Client(wrong.clone()),
    )
    .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(tokens.access_token.secret()),
        "the token in an error"
    );
    match e {
        Error::OAuth(o) => {
            assert_eq!(o.error, "invalid_client", "{o:?}");
            assert_eq!(o.status, Some(401));
        }
        other => panic!("expected invalid_client, got {other}"),
    }
    let e = D::revoke(&http, &ep.revocation, &tokens.access_token, None, &wrong).unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "invalid_client"),
        "{e}"
    );
    // The failed revocation left the token alone.
    let (status, _) = kit::fhir_get("Patient/123", &bearer(&tokens));
    assert_eq!(status, 200);
}
