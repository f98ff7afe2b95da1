//! `id_token` verification against the real local sandbox (oidc-provider): a standalone launch
//! with `openid fhirUser`, then `SmartClient::verify_id_token` checks the server's RS256
//! signature with its JWKS and the claims (the sandbox's OIDC issuer is `{sandbox}`, not the
//! FHIR base `{sandbox}/fhir`).
// Requirement ids: OIDC-01, OIDC-02, OIDC-04, OIDC-03; case B06.

use smart_core::client_auth::ClientAuth;
use smart_core::error::IdTokenError;
use smart_core::id_token::{IdTokenAlgorithm, IdTokenVerifier};
use smart_core::launch::{AppConfig, Launch};
use smart_core::secret::IdToken;
use smart_core::{ClientId, Error};

use super::now;
use crate as kit;
use crate::app::{REDIRECT, fhir_base};
use crate::driver::Driver;

const SCOPE: &str = "launch/patient openid fhirUser patient/*.rs";

// Requirements and cases: OIDC-01/02/04, B06.
/// The sandbox's `id_token` verifies against its JWKS; one changed
/// signature character does not.
pub fn standalone_launch_id_token_verifies_with_sandbox_jwks<D: Driver>() {
    let client_id = kit::unique("oidc");
    kit::register_client(&serde_json::json!({
        "client_id": client_id,
        "redirect_uris": ["http://127.0.0.1/callback"],
        "scope": SCOPE,
        "token_endpoint_auth_method": "none",
    }));
    let http = D::default_http();
    let app = AppConfig::new(ClientAuth::public(&client_id), REDIRECT, SCOPE).unwrap();
    let fhir_base = fhir_base();
    let req = D::begin_launch(&http, &app, Launch::standalone(fhir_base.clone())).unwrap();
    let cb = kit::browser_until(req.url.as_str(), REDIRECT, None);
    let client = D::complete_launch(&http, &app, req.pending, &cb).unwrap();

    let claims = D::client_verify_id_token(&client).unwrap();
    assert_eq!(claims.algorithm(), IdTokenAlgorithm::Rs256, "OIDC-04");
    // B06: the issuer is the provider base, not the FHIR base.
    assert_eq!(claims.iss(), kit::sandbox_url());
    assert_ne!(claims.iss(), kit::fhir_base());
    assert_eq!(claims.audiences(), [client_id.as_str()]);
    assert_eq!(claims.sub(), "smart-Practitioner-1");
    let user = claims.fhir_user().unwrap();
    assert_eq!(user.as_str(), "Practitioner/smart-Practitioner-1");
    assert_eq!(
        user.reference(),
        Some(("Practitioner", "smart-Practitioner-1"))
    );
    assert_eq!(
        claims
            .fhir_user()
            .unwrap()
            .url(&fhir_base)
            .unwrap()
            .as_str(),
        format!("{}/Practitioner/smart-Practitioner-1", kit::fhir_base())
    );
    let now = now();
    assert!(claims.issued_at() <= now.plus_secs(60));
    assert!(claims.expires_at() > now);
    // The kid the sandbox signed with is the one its JWKS publishes.
    let (status, jwks) = kit::http_get(&format!("{}/jwks", kit::sandbox_url()));
    assert_eq!(status, 200);
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        claims.kid().is_some_and(|k| kids.contains(&k)),
        "{:?} in {kids:?}",
        claims.kid()
    );

    // The same token with one signature character changed fails against the real JWKS.
    let real = D::snapshot(&client).id_token.unwrap();
    let (signed, signature) = real.secret().rsplit_once('.').unwrap();
    let mut sig: Vec<char> = signature.chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let tampered = IdToken::new(format!("{signed}.{}", sig.into_iter().collect::<String>()));
    let discovered = D::discover(&http, &fhir_base).unwrap();
    let mut verifier =
        IdTokenVerifier::from_discovery(&tampered, &discovered, ClientId::new(&client_id)).unwrap();
    let err = D::run(&http, &mut verifier).unwrap_err();
    assert_eq!(err, Error::IdToken(IdTokenError::BadSignature));
}

// Requirements and cases: OIDC-01.
/// A session without an `id_token` (no `openid` granted) says so, without a request.
pub fn verify_id_token_without_openid_is_missing<D: Driver>() {
    let (_, auth) = crate::app::register(crate::app::Kind::Public);
    let scope = "launch/patient patient/*.rs offline_access";
    let app = crate::app::app(auth, scope);
    let http = D::default_http();
    let (pending, cb) = super::standalone_callback::<D>(&http, &app);
    let client = D::complete_launch(&http, &app, pending, &cb).unwrap();
    assert!(D::snapshot(&client).id_token.is_none());
    assert_eq!(
        D::client_verify_id_token(&client).unwrap_err(),
        Error::IdToken(IdTokenError::Missing)
    );
}
