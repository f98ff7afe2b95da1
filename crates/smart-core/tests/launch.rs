//! Scripted conversations with the App Launch machinery (spec digest §3): EHR launch URL,
//! authorization request, callback validation, code exchange, refresh and the `Session`.
//! Requirement ids: AUTHZ-01..AUTHZ-09, REDIR-01, REDIR-02, TOKEN-01..TOKEN-04, RESP-01,
//! RESP-02, CTX-01, CTX-02, REFR-02..REFR-05, OIDC-03; cases B01, B03, B08, B10, B11, B12,
//! B16, B19, B27. Time is fixed and entropy deterministic, so every request is checked
//! exactly. All data (IG example values, spec vectors §3, §4, §6, §9) is inlined here or read
//! from `tests/fixtures/real-server/`.

mod common;

use std::sync::Arc;

use common::{form, ready, send};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use smart_core::assertion::{CLIENT_ASSERTION_TYPE, JwsAlgorithm};
use smart_core::client_auth::ClientAuth;
use smart_core::discovery::{Capability, SmartConfiguration};
use smart_core::entropy::{DeterministicEntropy, Entropy};
use smart_core::error::{CallbackError, DiscoveryErrorKind, OAuthError};
use smart_core::http::form_encode;
use smart_core::id_token::UnverifiedIdTokenClaims;
use smart_core::jwk::SigningKey;
use smart_core::launch::{
    AppConfig, AuthorizationRequest, CodeExchange, EhrLaunch, Launch, LaunchFlow,
    PendingAuthorization, PendingAuthorizations, authorize,
};
use smart_core::pkce::{code_challenge_s256, is_valid_code_verifier};
use smart_core::secret::{ClientSecret, CsrfToken, PkceCodeVerifier};
use smart_core::session::Session;
use smart_core::token::TokenResponse;
use smart_core::{
    Action, ClientId, Error, FhirBaseUrl, Flow, HttpRequest, HttpResponse, Method, UnixTime,
};
use url::Url;

const BASE: &str = "https://ehr.example.org/fhir";
const AUTHZ_URL: &str = "https://ehr.example.org/auth/authorize";
const TOKEN_URL: &str = "https://ehr.example.org/auth/token";
const ISSUER: &str = "https://auth.example.org/realms/ehr";
const REDIRECT: &str = "https://app.example.org/cb";
const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

/// Spec vectors §3 (IG PKCE example): verifier and its S256 challenge.
const IG_VERIFIER: &str = "o28xyrYY7-lGYfnKwRjHEZWlFIPlzVnFPYMWbH-g_BsNnQNem-IAg9fDh92X0KtvHCPO5_C-RJd2QhApKQ-2cRp-S_W3qmTidTEPkeWyniKQSF9Q_k10Q5wMc8fGzoyF";
const IG_CHALLENGE: &str = "YPXe7B8ghKrj8PsT4L6ltupgI12NQJ5vblB07F4rGaw";
/// Spec vectors §6 (smart.argo.run example): client, redirect, FHIR base, code.
const IG_CLIENT: &str = "demo_app_whatever";
const IG_REDIRECT: &str = "https://sharp-lake-word.glitch.me/graph.html";
const IG_CODE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb250ZXh0Ijp7Im5lZWRfcGF0aWVudF9iYW5uZXIiOnRydWUsInNtYXJ0X3N0eWxlX3VybCI6Imh0dHBzOi8vc21hcnQuYXJnby5ydW4vL3NtYXJ0LXN0eWxlLmpzb24iLCJwYXRpZW50IjoiODdhMzM5ZDAtOGNhZS00MThlLTg5YzctODY1MWU2YWFiM2M2In0sImNsaWVudF9pZCI6ImRlbW9fYXBwX3doYXRldmVyIiwiY29kZV9jaGFsbGVuZ2VfbWV0aG9kIjoiUzI1NiIsImNvZGVfY2hhbGxlbmdlIjoiWVBYZTdCOGdoS3JqOFBzVDRMNmx0dXBnSTEyTlFKNXZibEIwN0Y0ckdhdyIsInNjb3BlIjoibGF1bmNoL3BhdGllbnQgcGF0aWVudC9PYnNlcnZhdGlvbi5ycyBwYXRpZW50L1BhdGllbnQucnMiLCJyZWRpcmVjdF91cmkiOiJodHRwczovL3NoYXJwLWxha2Utd29yZC5nbGl0Y2gubWUvZ3JhcGguaHRtbCIsImlhdCI6MTYzMzUzMjAxNCwiZXhwIjoxNjMzNTMyMzE0fQ.xilM68Bavtr9IpklYG-j96gTxAda9r4Z_boe2zv3A3E";
const IG_REFRESH_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb250ZXh0Ijp7Im5lZWRfcGF0aWVudF9iYW5uZXIiOnRydWUsInNtYXJ0X3N0eWxlX3VybCI6Imh0dHBzOi8vc21hcnQuYXJnby5ydW4vL3NtYXJ0LXN0eWxlLmpzb24iLCJwYXRpZW50IjoiODdhMzM5ZDAtOGNhZS00MThlLTg5YzctODY1MWU2YWFiM2M2In0sImNsaWVudF9pZCI6ImRlbW9fYXBwX3doYXRldmVyIiwic2NvcGUiOiJsYXVuY2gvcGF0aWVudCBwYXRpZW50L09ic2VydmF0aW9uLnJzIHBhdGllbnQvUGF0aWVudC5ycyBvZmZsaW5lX2FjY2VzcyIsImlhdCI6MTYzMzUzMzg1OSwiZXhwIjoxNjY1MDY5ODU5fQ.Q41QwZCEQlZ16M7YwvYuVbUP03mRFJoqRxL8SS8_ImM";

/// Spec vectors §6.4: the IG example code-exchange response (valid JSON, verbatim).
const IG_TOKEN_RESPONSE: &str = r#"{
  "need_patient_banner": true,
  "smart_style_url": "https://smart.argo.run/smart-style.json",
  "patient": "87a339d0-8cae-418e-89c7-8651e6aab3c6",
  "token_type": "Bearer",
  "scope": "launch/patient patient/Observation.rs patient/Patient.rs",
  "expires_in": 3600,
  "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuZWVkX3BhdGllbnRfYmFubmVyIjp0cnVlLCJzbWFydF9zdHlsZV91cmwiOiJodHRwczovL3NtYXJ0LmFyZ28ucnVuLy9zbWFydC1zdHlsZS5qc29uIiwicGF0aWVudCI6Ijg3YTMzOWQwLThjYWUtNDE4ZS04OWM3LTg2NTFlNmFhYjNjNiIsInRva2VuX3R5cGUiOiJiZWFyZXIiLCJzY29wZSI6ImxhdW5jaC9wYXRpZW50IHBhdGllbnQvT2JzZXJ2YXRpb24ucnMgcGF0aWVudC9QYXRpZW50LnJzIiwiY2xpZW50X2lkIjoiZGVtb19hcHBfd2hhdGV2ZXIiLCJleHBpcmVzX2luIjozNjAwLCJpYXQiOjE2MzM1MzIwMTQsImV4cCI6MTYzMzUzNTYxNH0.PzNw23IZGtBfgpBtbIczthV2hGwanG_eyvthVS8mrG4",
  "refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb250ZXh0Ijp7Im5lZWRfcGF0aWVudF9iYW5uZXIiOnRydWUsInNtYXJ0X3N0eWxlX3VybCI6Imh0dHBzOi8vc21hcnQuYXJnby5ydW4vL3NtYXJ0LXN0eWxlLmpzb24iLCJwYXRpZW50IjoiODdhMzM5ZDAtOGNhZS00MThlLTg5YzctODY1MWU2YWFiM2M2In0sImNsaWVudF9pZCI6ImRlbW9fYXBwX3doYXRldmVyIiwic2NvcGUiOiJsYXVuY2gvcGF0aWVudCBwYXRpZW50L09ic2VydmF0aW9uLnJzIHBhdGllbnQvUGF0aWVudC5ycyBvZmZsaW5lX2FjY2VzcyIsImlhdCI6MTYzMzUzMzg1OSwiZXhwIjoxNjY1MDY5ODU5fQ.Q41QwZCEQlZ16M7YwvYuVbUP03mRFJoqRxL8SS8_ImM"
}"#;

/// Spec vectors §6.6: the IG example refresh response (same refresh token, scope now lists
/// `offline_access`); the access token is shortened here, it is opaque.
const IG_REFRESH_RESPONSE: &str = r#"{
  "need_patient_banner": true,
  "smart_style_url": "https://smart.argo.run/smart-style.json",
  "patient": "87a339d0-8cae-418e-89c7-8651e6aab3c6",
  "token_type": "Bearer",
  "scope": "launch/patient patient/Observation.rs patient/Patient.rs offline_access",
  "expires_in": 3600,
  "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuZWVkX3BhdGllbnRfYmFubmVyIjp0cnVlfQ.-4vtO6iADkH7HM6-IqoSchEMv2mVsztjHg-5RBkPXrc",
  "refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb250ZXh0Ijp7Im5lZWRfcGF0aWVudF9iYW5uZXIiOnRydWUsInNtYXJ0X3N0eWxlX3VybCI6Imh0dHBzOi8vc21hcnQuYXJnby5ydW4vL3NtYXJ0LXN0eWxlLmpzb24iLCJwYXRpZW50IjoiODdhMzM5ZDAtOGNhZS00MThlLTg5YzctODY1MWU2YWFiM2M2In0sImNsaWVudF9pZCI6ImRlbW9fYXBwX3doYXRldmVyIiwic2NvcGUiOiJsYXVuY2gvcGF0aWVudCBwYXRpZW50L09ic2VydmF0aW9uLnJzIHBhdGllbnQvUGF0aWVudC5ycyBvZmZsaW5lX2FjY2VzcyIsImlhdCI6MTYzMzUzMzg1OSwiZXhwIjoxNjY1MDY5ODU5fQ.Q41QwZCEQlZ16M7YwvYuVbUP03mRFJoqRxL8SS8_ImM"
}"#;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn entropy() -> DeterministicEntropy {
    DeterministicEntropy::new(42)
}

fn server_config(issuer: Option<&str>, pkce: &[&str], caps: &[&str]) -> SmartConfiguration {
    let mut c = SmartConfiguration::new(Url::parse(TOKEN_URL).unwrap());
    c.issuer = issuer.map(str::to_owned);
    c.authorization_endpoint = Some(Url::parse(AUTHZ_URL).unwrap().into());
    c.code_challenge_methods_supported = pkce.iter().map(|s| (*s).to_owned()).collect();
    c.capabilities = caps.iter().map(|s| Capability::from(*s)).collect();
    c
}

fn default_config() -> SmartConfiguration {
    server_config(
        Some(ISSUER),
        &["S256"],
        &["launch-ehr", "launch-standalone"],
    )
}

fn well_known_body(with_post: bool) -> String {
    let mut caps = vec!["launch-ehr", "launch-standalone", "client-public"];
    if with_post {
        caps.push("authorize-post");
    }
    serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": AUTHZ_URL,
        "token_endpoint": TOKEN_URL,
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "capabilities": caps,
        "code_challenge_methods_supported": ["S256"]
    })
    .to_string()
}

fn public_app(redirect: &str, scope: &str) -> AppConfig {
    AppConfig::new(ClientAuth::public("app-1"), redirect, scope).unwrap()
}

fn base() -> FhirBaseUrl {
    FhirBaseUrl::new(BASE).unwrap()
}

fn ehr_launch() -> Launch {
    Launch::Ehr(EhrLaunch {
        iss: base(),
        launch: "xyz123".into(),
    })
}

fn build(app: &AppConfig, launch: &Launch, config: &SmartConfiguration) -> AuthorizationRequest {
    authorize(app, launch, config, T0, &entropy()).unwrap()
}

/// Query parameters of `url`, decoded, in order.
fn params(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The raw (still percent-encoded) value of `name` in `url`'s query.
fn raw_param<'a>(url: &'a Url, name: &str) -> Option<&'a str> {
    url.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

fn form_names(req: &HttpRequest) -> Vec<String> {
    req.form_fields().into_iter().map(|(k, _)| k).collect()
}

/// A pending authorization with known values (state `S1`, the IG verifier), as if built by
/// `authorize` and stored in the user's session.
fn pending(state: &str, redirect: &str, issuer: Option<&str>) -> PendingAuthorization {
    PendingAuthorization {
        state: CsrfToken::new(state),
        code_verifier: PkceCodeVerifier::new(IG_VERIFIER),
        redirect_uri: redirect.to_owned(),
        fhir_base: base(),
        issuer: issuer.map(str::to_owned),
        token_endpoint: Url::parse(TOKEN_URL).unwrap().into(),
        client_id: ClientId::new("app-1"),
        scope: "launch openid fhirUser patient/*.rs".into(),
        launch: Some("xyz123".into()),
        created_at: T0,
        require_iss: false,
    }
}

fn jwt_payload(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("three segments");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn fake_id_token(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(b"sig")
    )
}

/// Run a code exchange through its `Flow` with a scripted token-endpoint answer.
fn exchange_with(
    exchange: CodeExchange,
    status: u16,
    body: &str,
) -> (HttpRequest, Result<TokenResponse, Error>) {
    let mut flow = exchange;
    let req = send(flow.poll(T0).unwrap());
    if let Err(e) = flow.handle_response(HttpResponse::new(status, body), T0) {
        return (req, Err(e));
    }
    (req, Ok(ready(flow.poll(T0).unwrap())))
}

/// The `body` member of a recorded real-server exchange, as the bytes the server sent.
fn fixture_body(json: &str) -> (u16, String) {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    (
        u16::try_from(v["status"].as_u64().unwrap()).unwrap(),
        v["body"].to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// B01: the EHR launch URL
// ---------------------------------------------------------------------------------------------

#[test]
fn b01ab_launch_url_aud_keeps_iss_as_given_and_well_known_has_no_double_slash() {
    let cases = [
        (
            "https://app.example.org/launch?iss=https%3A%2F%2Fehr.example.org%2Ffhir%2Fr4%2F&launch=L1",
            "https://ehr.example.org/fhir/r4/",
        ),
        (
            "?iss=https%3A%2F%2Fehr.example.org%2Ffhir%2Fr4&launch=L1",
            "https://ehr.example.org/fhir/r4",
        ),
    ];
    for (launch_url, iss) in cases {
        let e = EhrLaunch::from_url(launch_url).unwrap();
        assert_eq!(e.iss.as_given(), iss, "{launch_url}");
        assert_eq!(e.launch, "L1");
        assert_eq!(
            e.iss.well_known().as_str(),
            "https://ehr.example.org/fhir/r4/.well-known/smart-configuration"
        );

        // The flow's first (and only) discovery request is that URL; `aud` is `iss` as given.
        let app = public_app(REDIRECT, "launch openid");
        let mut flow = LaunchFlow::new(app, Launch::Ehr(e), Arc::new(entropy())).unwrap();
        let req = send(flow.poll(T0).unwrap());
        assert_eq!(req.method, Method::Get);
        assert_eq!(
            req.url.as_str(),
            "https://ehr.example.org/fhir/r4/.well-known/smart-configuration"
        );
        assert!(!req.url.path().contains("//"));
        flow.handle_response(HttpResponse::new(200, well_known_body(false)), T0)
            .unwrap();
        let auth = ready(flow.poll(T0).unwrap());
        assert_eq!(param(&auth.url, "aud").as_deref(), Some(iss), "AUTHZ-06");
        assert_eq!(param(&auth.url, "launch").as_deref(), Some("L1"));
        assert_eq!(auth.pending.fhir_base.as_given(), iss);
    }
}

#[test]
fn b01c_missing_iss_or_launch_is_an_error_before_any_request() {
    for url in [
        "?launch=L1",
        "https://app.example.org/launch?launch=L1",
        "https://app.example.org/launch?iss=&launch=L1",
    ] {
        assert_eq!(
            EhrLaunch::from_url(url).unwrap_err(),
            Error::Callback(CallbackError::MissingIss),
            "{url}"
        );
    }
    assert_eq!(
        EhrLaunch::from_url(
            "https://app.example.org/launch?iss=https%3A%2F%2Fehr.example.org%2Ffhir"
        )
        .unwrap_err(),
        Error::Callback(CallbackError::MissingLaunch)
    );
    assert!(matches!(
        EhrLaunch::from_url("?iss=not-a-url&launch=L1").unwrap_err(),
        Error::Config(_)
    ));
}

#[test]
fn iss_outside_the_allow_list_is_refused_before_discovery() {
    let app = public_app(REDIRECT, "launch").with_iss_allow_list(
        smart_core::launch::IssAllowList::Exact(vec!["https://ehr.example.org/fhir/".into()]),
    );
    let evil = Launch::Ehr(
        EhrLaunch::from_url("?iss=https%3A%2F%2Fevil.example.net%2Ffhir&launch=L1").unwrap(),
    );
    let err = LaunchFlow::new(app.clone(), evil, Arc::new(entropy())).unwrap_err();
    assert_eq!(
        err,
        Error::Callback(CallbackError::IssNotAllowed(
            "https://evil.example.net/fhir".into()
        ))
    );
    // The listed base (trailing slash ignored) is accepted.
    let mut flow = LaunchFlow::new(app, ehr_launch(), Arc::new(entropy())).unwrap();
    assert_eq!(
        send(flow.poll(T0).unwrap()).url.as_str(),
        "https://ehr.example.org/fhir/.well-known/smart-configuration"
    );
}

// ---------------------------------------------------------------------------------------------
// The authorization request
// ---------------------------------------------------------------------------------------------

#[test]
fn authz_01_to_07_every_parameter_of_an_ehr_launch() {
    let app = public_app(REDIRECT, "launch  openid fhirUser patient/*.rs");
    let req = build(&app, &ehr_launch(), &default_config());
    assert_eq!(
        format!(
            "{}://{}{}",
            req.url.scheme(),
            req.url.host_str().unwrap(),
            req.url.path()
        ),
        AUTHZ_URL
    );
    let p = params(&req.url);
    let names: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "response_type",
            "client_id",
            "redirect_uri",
            "launch",
            "scope",
            "state",
            "aud",
            "code_challenge",
            "code_challenge_method"
        ],
        "each parameter exactly once"
    );
    assert_eq!(
        param(&req.url, "response_type").unwrap(),
        "code",
        "AUTHZ-01"
    );
    assert_eq!(param(&req.url, "client_id").unwrap(), "app-1", "AUTHZ-02");
    assert_eq!(
        param(&req.url, "redirect_uri").unwrap(),
        REDIRECT,
        "AUTHZ-03"
    );
    assert_eq!(param(&req.url, "launch").unwrap(), "xyz123");
    assert_eq!(
        param(&req.url, "scope").unwrap(),
        "launch openid fhirUser patient/*.rs",
        "AUTHZ-04"
    );
    assert_eq!(param(&req.url, "aud").unwrap(), BASE, "AUTHZ-06");
    assert_eq!(param(&req.url, "code_challenge_method").unwrap(), "S256");

    // AUTHZ-05: state is 256 random bits (≥ 128), and the pending entry has it.
    let state = param(&req.url, "state").unwrap();
    assert!(URL_SAFE_NO_PAD.decode(&state).unwrap().len() * 8 >= 128);
    assert_eq!(req.pending.state.secret(), state);

    // AUTHZ-07: the challenge is S256 of the pending verifier.
    assert!(is_valid_code_verifier(req.pending.code_verifier.secret()));
    assert_eq!(
        param(&req.url, "code_challenge").unwrap(),
        code_challenge_s256(&req.pending.code_verifier)
    );
    assert_eq!(req.pending.redirect_uri, REDIRECT);
    assert_eq!(req.pending.token_endpoint.as_str(), TOKEN_URL);
    assert_eq!(req.pending.issuer.as_deref(), Some(ISSUER));
    assert_eq!(req.pending.launch.as_deref(), Some("xyz123"));
    assert_eq!(req.pending.client_id.as_str(), "app-1");
    assert_eq!(req.pending.created_at, T0);
    assert!(
        req.post.is_none(),
        "no authorize-post capability → GET only"
    );

    // A second authorization gets a fresh state and verifier.
    let e = entropy();
    let a = authorize(&app, &ehr_launch(), &default_config(), T0, &e).unwrap();
    let b = authorize(&app, &ehr_launch(), &default_config(), T0, &e).unwrap();
    assert_ne!(a.pending.state.secret(), b.pending.state.secret());
    assert_ne!(
        a.pending.code_verifier.secret(),
        b.pending.code_verifier.secret()
    );
}

#[test]
fn authz_standalone_launch_sends_no_launch_parameter() {
    let app = public_app(REDIRECT, "launch/patient openid fhirUser");
    let req = build(&app, &Launch::standalone(base()), &default_config());
    assert_eq!(param(&req.url, "launch"), None);
    assert_eq!(req.pending.launch, None);
    assert_eq!(param(&req.url, "aud").unwrap(), BASE);
    assert_eq!(
        param(&req.url, "scope").unwrap(),
        "launch/patient openid fhirUser"
    );
}

#[test]
fn authz_extra_parameters_are_appended_and_reserved_ones_refused() {
    let app = public_app(REDIRECT, "openid")
        .with_authorize_param("login_hint", "deny")
        .unwrap();
    let req = build(&app, &Launch::standalone(base()), &default_config());
    assert_eq!(
        params(&req.url).last().unwrap(),
        &("login_hint".into(), "deny".into())
    );
    for reserved in ["state", "aud", "code_challenge", "redirect_uri"] {
        assert!(matches!(
            public_app(REDIRECT, "openid").with_authorize_param(reserved, "x"),
            Err(Error::Config(_))
        ));
    }
}

#[test]
fn b08_redirect_uri_with_a_query_is_sent_byte_exact() {
    let app = public_app("https://app.example.org/cb?site=north", "launch openid");
    let req = build(&app, &ehr_launch(), &default_config());
    assert_eq!(
        raw_param(&req.url, "redirect_uri"),
        Some("https%3A%2F%2Fapp.example.org%2Fcb%3Fsite%3Dnorth")
    );
    assert!(
        req.url
            .as_str()
            .contains("redirect_uri=https%3A%2F%2Fapp.example.org%2Fcb%3Fsite%3Dnorth&")
    );
    // Second config: nothing appended.
    let plain = build(
        &public_app("https://app.example.org/cb", "launch"),
        &ehr_launch(),
        &default_config(),
    );
    assert_eq!(
        param(&plain.url, "redirect_uri").as_deref(),
        Some("https://app.example.org/cb")
    );
    assert_eq!(
        raw_param(&plain.url, "redirect_uri"),
        Some("https%3A%2F%2Fapp.example.org%2Fcb")
    );
}

#[test]
fn b08_callback_with_the_registered_query_and_identical_token_redirect_uri() {
    let redirect = "https://app.example.org/cb?site=north";
    let app = public_app(redirect, "launch openid");
    let v = pending("S1", redirect, Some(ISSUER))
        .callback(
            &app,
            "https://app.example.org/cb?site=north&code=C1&state=S1",
        )
        .unwrap();
    assert!(v.warnings.is_empty());
    let (req, _) = exchange_with(v.exchange, 400, r#"{"error":"invalid_grant"}"#);
    assert_eq!(form(&req, "code").as_deref(), Some("C1"));
    assert_eq!(form(&req, "redirect_uri").as_deref(), Some(redirect));
    assert!(
        String::from_utf8(req.body.clone())
            .unwrap()
            .contains("redirect_uri=https%3A%2F%2Fapp.example.org%2Fcb%3Fsite%3Dnorth&")
    );
}

#[test]
fn b10_granular_scopes_are_one_encoded_parameter_that_decodes_byte_exact() {
    let scope = "launch/patient openid fhirUser patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern";
    let req = build(
        &public_app(REDIRECT, scope),
        &Launch::standalone(base()),
        &default_config(),
    );
    let raw = raw_param(&req.url, "scope").unwrap();
    assert!(raw.starts_with(
        "launch%2Fpatient%20openid%20fhirUser%20patient%2FObservation.rs%3Fcategory%3Dhttp%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Claboratory"
    ), "{raw}");
    assert_eq!(raw, form_encode(scope));
    for c in ['|', '?', '=', ':', '/', ' ', '&'] {
        assert!(!raw.contains(c), "{c} must be escaped");
    }
    assert_eq!(
        req.url.query_pairs().filter(|(k, _)| k == "scope").count(),
        1
    );
    assert_eq!(param(&req.url, "scope").as_deref(), Some(scope));
}

#[test]
fn b03_s256_is_sent_when_discovery_omits_code_challenge_methods() {
    let config = server_config(None, &[], &["launch-standalone", "client-public"]);
    let req = build(
        &public_app(REDIRECT, "openid"),
        &Launch::standalone(base()),
        &config,
    );
    assert_eq!(param(&req.url, "code_challenge_method").unwrap(), "S256");
    let challenge = param(&req.url, "code_challenge").unwrap();
    assert_eq!(challenge.len(), 43);
    assert!(!challenge.contains('='));
    assert_eq!(challenge, code_challenge_s256(&req.pending.code_verifier));
    // RFC 7636 App. B and the IG vector (spec vectors §3).
    assert_eq!(
        code_challenge_s256(&PkceCodeVerifier::new(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        )),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert_eq!(
        code_challenge_s256(&PkceCodeVerifier::new(IG_VERIFIER)),
        IG_CHALLENGE
    );
}

#[test]
fn authz_07_methods_without_s256_are_an_error_never_plain() {
    let config = server_config(Some(ISSUER), &["plain"], &[]);
    let err = authorize(
        &public_app(REDIRECT, "openid"),
        &Launch::standalone(base()),
        &config,
        T0,
        &entropy(),
    )
    .unwrap_err();
    match err {
        Error::Discovery(d) => {
            assert_eq!(d.kind, DiscoveryErrorKind::PkceS256Unsupported);
            assert_eq!(d.url, format!("{BASE}/.well-known/smart-configuration"));
        }
        other => panic!("expected a discovery error, got {other:?}"),
    }
    let mut no_endpoint = default_config();
    no_endpoint.authorization_endpoint = None;
    assert!(matches!(
        authorize(
            &public_app(REDIRECT, "openid"),
            &Launch::standalone(base()),
            &no_endpoint,
            T0,
            &entropy()
        ),
        Err(Error::Discovery(d)) if d.kind == DiscoveryErrorKind::MissingField("authorization_endpoint")
    ));
}

#[test]
fn authz_08_09_post_form_is_offered_only_with_authorize_post() {
    let app = public_app(REDIRECT, "launch patient/Observation.rs openid fhirUser");
    let with = server_config(Some(ISSUER), &["S256"], &["launch-ehr", "authorize-post"]);
    let req = build(&app, &ehr_launch(), &with);
    let post = req.post.as_ref().expect("authorize-post advertised");
    assert_eq!(post.action.as_str(), AUTHZ_URL);
    assert_eq!(post.fields, params(&req.url), "same fields as the GET");
    assert_eq!(post.body(), req.url.query().unwrap());
    assert!(
        post.body()
            .contains("scope=launch%20patient%2FObservation.rs%20openid%20fhirUser")
    );

    // Through the flow as well: discovery advertising authorize-post.
    let mut flow = LaunchFlow::new(app.clone(), ehr_launch(), Arc::new(entropy())).unwrap();
    let _ = send(flow.poll(T0).unwrap());
    flow.handle_response(HttpResponse::new(200, well_known_body(true)), T0)
        .unwrap();
    assert!(ready(flow.poll(T0).unwrap()).post.is_some());

    let without = build(&app, &ehr_launch(), &default_config());
    assert!(without.post.is_none());
}

#[test]
fn authz_endpoint_with_its_own_query_keeps_it() {
    let mut config = default_config();
    config.authorization_endpoint = Some(
        Url::parse("https://ehr.example.org/auth?tenant=t1")
            .unwrap()
            .into(),
    );
    let req = build(
        &public_app(REDIRECT, "openid"),
        &Launch::standalone(base()),
        &config,
    );
    assert!(
        req.url
            .query()
            .unwrap()
            .starts_with("tenant=t1&response_type=code&")
    );
}

#[test]
fn pending_authorization_serde_round_trip_still_redeems() {
    let app = public_app(REDIRECT, "launch openid");
    let req = build(&app, &ehr_launch(), &default_config());
    let state = req.pending.state.secret().to_owned();
    let verifier = req.pending.code_verifier.secret().to_owned();
    let json = serde_json::to_string(&req.pending).unwrap();
    let back: PendingAuthorization = serde_json::from_str(&json).unwrap();
    assert_eq!(back.state.secret(), state);
    assert_eq!(back.code_verifier.secret(), verifier);
    assert_eq!(back.redirect_uri, REDIRECT);
    assert_eq!(back.fhir_base, base());
    assert_eq!(back.issuer.as_deref(), Some(ISSUER));
    assert_eq!(back.token_endpoint.as_str(), TOKEN_URL);
    assert_eq!(back.client_id.as_str(), "app-1");
    assert_eq!(back.scope, "launch openid");
    assert_eq!(back.launch.as_deref(), Some("xyz123"));
    assert_eq!(back.created_at, T0);
    // The restored entry validates the callback and sends the original verifier.
    let v = back
        .callback(
            &app,
            &format!(
                "{REDIRECT}?code=C9&state={state}&iss={}",
                form_encode(ISSUER)
            ),
        )
        .unwrap();
    let (req, _) = exchange_with(v.exchange, 400, r#"{"error":"invalid_grant"}"#);
    assert_eq!(form(&req, "code_verifier").unwrap(), verifier);
    assert_eq!(form(&req, "code").as_deref(), Some("C9"));
}

// ---------------------------------------------------------------------------------------------
// Callback validation (REDIR-01, REDIR-02, RFC 9207)
// ---------------------------------------------------------------------------------------------

#[test]
fn b11a_matching_iss_proceeds_and_keeps_the_stored_endpoints() {
    let app = public_app(REDIRECT, "launch");
    let v = pending("S1", REDIRECT, Some(ISSUER))
        .callback(
            &app,
            "https://app.example.org/cb?code=C1&state=S1&iss=https%3A%2F%2Fauth.example.org%2Frealms%2Fehr",
        )
        .unwrap();
    assert!(v.warnings.is_empty());
    assert_eq!(v.exchange.fhir_base().as_str(), BASE);
    assert_eq!(v.exchange.token_endpoint().as_str(), TOKEN_URL);
    let (req, _) = exchange_with(v.exchange, 400, r#"{"error":"invalid_grant"}"#);
    assert_eq!(req.url.as_str(), TOKEN_URL);
}

#[test]
fn b11b_foreign_iss_is_issuer_mismatch_and_no_exchange() {
    let err = pending("S1", REDIRECT, Some(ISSUER))
        .callback(
            &public_app(REDIRECT, "launch"),
            "https://app.example.org/cb?code=C1&state=S1&iss=https%3A%2F%2Fevil.example.net",
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::Callback(CallbackError::IssuerMismatch {
            expected: ISSUER.into(),
            received: "https://evil.example.net".into()
        })
    );
}

#[test]
fn b11c_iss_without_discovered_issuer_proceeds_with_a_warning() {
    let v = pending("S1", REDIRECT, None)
        .callback(
            &public_app(REDIRECT, "launch"),
            "https://app.example.org/cb?code=C1&state=S1&iss=https%3A%2F%2Fauth.example.org%2Frealms%2Fehr",
        )
        .unwrap();
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(v.warnings[0].contains("iss"));
    // The callback `iss` never replaces the FHIR base or token endpoint.
    assert_eq!(v.exchange.fhir_base().as_str(), BASE);
    assert_eq!(v.exchange.token_endpoint().as_str(), TOKEN_URL);
}

/// `into_exchange` carries the callback's warnings into the token response, ahead of the
/// token response's own.
#[test]
fn b11c_callback_warnings_come_first_in_the_exchanged_token() {
    let v = pending("S1", REDIRECT, None)
        .callback(
            &public_app(REDIRECT, "launch"),
            "https://app.example.org/cb?code=C1&state=S1&iss=https%3A%2F%2Fauth.example.org%2Frealms%2Fehr",
        )
        .unwrap();
    let callback_warnings = v.warnings.clone();
    assert_eq!(callback_warnings.len(), 1);
    let mut exchange = v.into_exchange();
    let now = UnixTime::from_secs(1_700_000_000);
    let _ = send(exchange.poll(now).unwrap());
    // `expires_in` as a string: the token response's own warning.
    exchange
        .handle_response(
            HttpResponse::new(
                200,
                r#"{"access_token":"A","token_type":"Bearer","expires_in":"3600","scope":"launch"}"#,
            ),
            now,
        )
        .unwrap();
    let token = ready(exchange.poll(now).unwrap());
    assert_eq!(token.warnings.len(), 2, "{:?}", token.warnings);
    assert_eq!(token.warnings[0], callback_warnings[0]);
    assert!(
        token.warnings[1].contains("expires_in"),
        "{:?}",
        token.warnings
    );
}

#[test]
fn rfc9207_iss_required_when_the_server_advertises_it() {
    let app = public_app(REDIRECT, "launch");
    let mut config = default_config();
    let req = build(&app, &ehr_launch(), &config);
    assert!(!req.pending.require_iss, "not advertised: iss optional");
    config.extra.insert(
        "authorization_response_iss_parameter_supported".into(),
        serde_json::Value::Bool(true),
    );
    let req = build(&app, &ehr_launch(), &config);
    assert!(req.pending.require_iss);
    let state = req.pending.state.secret().to_owned();
    let err = req
        .pending
        .callback(&app, &format!("{REDIRECT}?code=C1&state={state}"))
        .unwrap_err();
    assert_eq!(err, Error::Callback(CallbackError::MissingIssuer));
    let req = build(&app, &ehr_launch(), &config);
    let state = req.pending.state.secret().to_owned();
    let ok = req.pending.callback(
        &app,
        &format!(
            "{REDIRECT}?code=C1&state={state}&iss={}",
            form_encode(ISSUER)
        ),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn b12a_missing_state_is_refused() {
    let mut set = PendingAuthorizations::new();
    set.insert(pending("S1", REDIRECT, None));
    assert_eq!(
        set.take("https://app.example.org/cb?code=C1").unwrap_err(),
        Error::Callback(CallbackError::MissingState)
    );
    assert_eq!(set.len(), 1);
    assert_eq!(
        pending("S1", REDIRECT, None)
            .callback(
                &public_app(REDIRECT, "launch"),
                "https://app.example.org/cb?code=C1"
            )
            .unwrap_err(),
        Error::Callback(CallbackError::MissingState)
    );
}

#[test]
fn b12b_unknown_state_is_refused() {
    let mut set = PendingAuthorizations::new();
    set.insert(pending("S1", REDIRECT, None));
    assert_eq!(
        set.take("https://app.example.org/cb?code=C1&state=NOPE")
            .unwrap_err(),
        Error::Callback(CallbackError::UnknownState)
    );
    assert_eq!(set.len(), 1, "S1 is still pending");
    // REDIR-01 on a single pending entry: a different state is a mismatch.
    assert_eq!(
        pending("S1", REDIRECT, None)
            .callback(
                &public_app(REDIRECT, "launch"),
                "https://app.example.org/cb?code=C1&state=NOPE"
            )
            .unwrap_err(),
        Error::Callback(CallbackError::StateMismatch)
    );
}

#[test]
fn b12c_replayed_state_is_unknown_the_second_time() {
    let app = public_app(REDIRECT, "launch");
    let mut set = PendingAuthorizations::new();
    set.insert(pending("S1", REDIRECT, None));
    set.insert(pending("S3", REDIRECT, None));
    let cb = "https://app.example.org/cb?code=C1&state=S1";
    let first = set.take(cb).unwrap();
    assert_eq!(first.state.secret(), "S1");
    assert!(first.callback(&app, cb).is_ok());
    assert_eq!(set.len(), 1);
    assert_eq!(
        set.take(cb).unwrap_err(),
        Error::Callback(CallbackError::UnknownState)
    );
    // Expiry drops old entries.
    set.expire_before(T0.plus_secs(1));
    assert!(set.is_empty());
}

#[test]
fn b12d_error_redirect_is_an_authorization_error_and_the_entry_is_spent() {
    let mut set = PendingAuthorizations::new();
    set.insert(pending("S2", REDIRECT, None));
    let cb =
        "https://app.example.org/cb?error=access_denied&error_description=User%20declined&state=S2";
    let p = set.take(cb).unwrap();
    assert!(set.is_empty(), "pending entry S2 is deleted");
    assert_eq!(
        p.callback(&public_app(REDIRECT, "launch"), cb).unwrap_err(),
        Error::Callback(CallbackError::Authorization(OAuthError {
            status: None,
            error: "access_denied".into(),
            error_description: Some("User declined".into()),
            error_uri: None,
        }))
    );
}

#[test]
fn redir_callback_at_another_url_is_redirect_uri_mismatch() {
    let app = public_app(REDIRECT, "launch");
    for cb in [
        "https://app.example.org/other?code=C1&state=S1",
        "https://app.example.org/cb/?code=C1&state=S1",
        "https://evil.example.net/cb?code=C1&state=S1",
    ] {
        assert_eq!(
            pending("S1", REDIRECT, None)
                .callback(&app, cb)
                .unwrap_err(),
            Error::Callback(CallbackError::RedirectUriMismatch),
            "{cb}"
        );
    }
    assert_eq!(
        pending("S1", REDIRECT, None)
            .callback(&app, "https://app.example.org/cb?state=S1")
            .unwrap_err(),
        Error::Callback(CallbackError::MissingCode)
    );
    assert!(matches!(
        pending("S1", REDIRECT, None).callback(&app, "not a url"),
        Err(Error::Parse(_))
    ));
    // An app with another client_id cannot redeem the entry.
    assert!(matches!(
        pending("S1", REDIRECT, None).callback(
            &AppConfig::new(ClientAuth::public("other"), REDIRECT, "launch").unwrap(),
            "https://app.example.org/cb?code=C1&state=S1"
        ),
        Err(Error::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Code exchange (TOKEN-01..TOKEN-04)
// ---------------------------------------------------------------------------------------------

fn ig_pending(client_id: &str) -> PendingAuthorization {
    PendingAuthorization {
        state: CsrfToken::new("0hJc1S9O4oW54XuY"),
        code_verifier: PkceCodeVerifier::new(IG_VERIFIER),
        redirect_uri: IG_REDIRECT.into(),
        fhir_base: base(),
        issuer: None,
        token_endpoint: Url::parse(TOKEN_URL).unwrap().into(),
        client_id: ClientId::new(client_id),
        scope: "launch/patient patient/Observation.rs patient/Patient.rs offline_access".into(),
        launch: None,
        created_at: T0,
        require_iss: false,
    }
}

fn ig_callback() -> String {
    format!("{IG_REDIRECT}?code={IG_CODE}&state=0hJc1S9O4oW54XuY")
}

fn ig_exchange(auth: ClientAuth) -> CodeExchange {
    let id = auth.client_id().as_str().to_owned();
    let app = AppConfig::new(auth, IG_REDIRECT, "launch/patient")
        .unwrap()
        .with_entropy(Arc::new(entropy()));
    ig_pending(&id)
        .callback(&app, &ig_callback())
        .unwrap()
        .exchange
}

#[test]
fn token_01_to_03_public_client_body_matches_the_ig_example() {
    let (req, token) = exchange_with(
        ig_exchange(ClientAuth::public(IG_CLIENT)),
        200,
        IG_TOKEN_RESPONSE,
    );
    assert_eq!(req.method, Method::Post, "TOKEN-01");
    assert_eq!(req.url.as_str(), TOKEN_URL);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        req.header("authorization"),
        None,
        "TOKEN-04: no client auth"
    );
    // Spec vectors §6.3, as a set of fields.
    let mut fields = req.form_fields();
    fields.sort();
    let mut expected: Vec<(String, String)> = [
        ("client_id", IG_CLIENT),
        ("code", IG_CODE),
        ("grant_type", "authorization_code"),
        ("redirect_uri", IG_REDIRECT),
        ("code_verifier", IG_VERIFIER),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(fields, expected, "TOKEN-02/03");
    let body = String::from_utf8(req.body).unwrap();
    assert!(body.contains("redirect_uri=https%3A%2F%2Fsharp-lake-word.glitch.me%2Fgraph.html"));

    // RESP-01 / CTX-01 on the IG response (spec vectors §6.4).
    let t = token.unwrap();
    assert!(t.is_bearer());
    assert_eq!(t.expires_in, Some(3600));
    assert_eq!(t.expires_at, Some(T0.plus_secs(3600)));
    assert_eq!(
        t.scope.as_deref(),
        Some("launch/patient patient/Observation.rs patient/Patient.rs")
    );
    assert_eq!(t.refresh_token.as_ref().unwrap().secret(), IG_REFRESH_TOKEN);
    assert_eq!(
        t.context.patient.as_deref(),
        Some("87a339d0-8cae-418e-89c7-8651e6aab3c6")
    );
    assert_eq!(t.context.need_patient_banner, Some(true));
    assert_eq!(
        t.context.smart_style_url.as_deref(),
        Some("https://smart.argo.run/smart-style.json")
    );
    assert_eq!(t.context.encounter, None);
    assert!(t.id_token.is_none());
}

#[test]
fn token_03_symmetric_client_sends_basic_header_only() {
    let auth = ClientAuth::symmetric("my-app", ClientSecret::new("my-app-secret-123"));
    let (req, _) = exchange_with(ig_exchange(auth), 200, IG_TOKEN_RESPONSE);
    // Spec vectors §4.
    assert_eq!(
        req.header("authorization"),
        Some("Basic bXktYXBwOm15LWFwcC1zZWNyZXQtMTIz")
    );
    assert_eq!(
        form_names(&req),
        ["grant_type", "code", "redirect_uri", "code_verifier"],
        "no client_id, no client_secret in the body"
    );
    assert_eq!(form(&req, "redirect_uri").as_deref(), Some(IG_REDIRECT));
    assert_eq!(form(&req, "code_verifier").as_deref(), Some(IG_VERIFIER));

    // Spec vectors §4 second vector / §6.7.
    let auth = ClientAuth::symmetric(IG_CLIENT, ClientSecret::new("secret-key-1234567890"));
    let (req, _) = exchange_with(ig_exchange(auth), 200, IG_TOKEN_RESPONSE);
    assert_eq!(
        req.header("authorization"),
        Some("Basic ZGVtb19hcHBfd2hhdGV2ZXI6c2VjcmV0LWtleS0xMjM0NTY3ODkw")
    );
}

#[test]
fn token_03_asymmetric_client_sends_an_assertion_and_no_client_id() {
    let key = SigningKey::generate(
        JwsAlgorithm::Es384,
        Some("k1"),
        &DeterministicEntropy::new(1),
    )
    .unwrap();
    let auth = ClientAuth::asymmetric(IG_CLIENT, Arc::new(key));
    let (req, token) = exchange_with(ig_exchange(auth), 200, IG_TOKEN_RESPONSE);
    assert!(token.is_ok());
    assert_eq!(req.header("authorization"), None);
    assert_eq!(
        form_names(&req),
        [
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(
        form(&req, "client_id"),
        None,
        "TOKEN-03: omitted by confidential apps"
    );
    assert_eq!(
        form(&req, "client_assertion_type").as_deref(),
        Some(CLIENT_ASSERTION_TYPE)
    );
    let claims = jwt_payload(&form(&req, "client_assertion").unwrap());
    assert_eq!(claims["iss"], IG_CLIENT);
    assert_eq!(claims["sub"], IG_CLIENT);
    assert_eq!(claims["aud"], TOKEN_URL);
    assert_eq!(claims["exp"].as_u64().unwrap(), T0.as_secs() + 240);
    assert_eq!(form(&req, "redirect_uri").as_deref(), Some(IG_REDIRECT));
    assert_eq!(form(&req, "code_verifier").as_deref(), Some(IG_VERIFIER));
}

#[test]
fn token_the_code_is_never_resent_after_abort_or_completion() {
    let mut flow = ig_exchange(ClientAuth::public(IG_CLIENT));
    let _ = send(flow.poll(T0).unwrap());
    assert!(matches!(flow.poll(T0), Err(Error::Misuse(_))), "in flight");
    flow.abort();
    assert!(
        matches!(flow.poll(T0), Err(Error::Misuse(_))),
        "transport failure: the code may have arrived, never send it again"
    );
    assert!(matches!(
        flow.handle_response(HttpResponse::new(200, IG_TOKEN_RESPONSE), T0),
        Err(Error::Misuse(_))
    ));

    // After a completed exchange: Ready once, then Misuse.
    let mut flow = ig_exchange(ClientAuth::public(IG_CLIENT));
    let _ = send(flow.poll(T0).unwrap());
    flow.handle_response(HttpResponse::new(200, IG_TOKEN_RESPONSE), T0)
        .unwrap();
    let _ = ready(flow.poll(T0).unwrap());
    assert!(matches!(flow.poll(T0), Err(Error::Misuse(_))));

    // A transport failure ends the exchange: the error is final and repeated.
    let mut flow = ig_exchange(ClientAuth::public(IG_CLIENT));
    let _ = send(flow.poll(T0).unwrap());
    let t = smart_core::error::TransportError::new(
        TOKEN_URL,
        smart_core::error::TransportErrorKind::Timeout,
        "timeout",
    );
    let e = flow.handle_transport_error(t, T0).unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e}");
    assert_eq!(flow.poll(T0).unwrap_err(), e, "never resent");
}

#[test]
fn token_errors_become_oauth_errors_pkce_mismatch_fixture() {
    let (status, body) = fixture_body(include_str!(
        "fixtures/real-server/app-err-pkce-mismatch.json"
    ));
    let (_, res) = exchange_with(ig_exchange(ClientAuth::public(IG_CLIENT)), status, &body);
    match res.unwrap_err() {
        Error::OAuth(e) => {
            assert_eq!(e.error, "invalid_grant");
            assert_eq!(e.status, Some(401));
        }
        other => panic!("expected OAuth, got {other:?}"),
    }
    let (_, res) = exchange_with(
        ig_exchange(ClientAuth::public(IG_CLIENT)),
        502,
        "<html>bad gateway</html>",
    );
    assert_eq!(
        res.unwrap_err(),
        Error::Http {
            url: TOKEN_URL.into(),
            status: 502
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Real-server fixtures through CodeExchange / Session (RESP-01, CTX-01, OIDC-03)
// ---------------------------------------------------------------------------------------------

fn fixture_exchange(file: &str) -> TokenResponse {
    let (status, body) = fixture_body(file);
    assert_eq!(status, 200);
    exchange_with(ig_exchange(ClientAuth::public(IG_CLIENT)), status, &body)
        .1
        .unwrap()
}

#[test]
fn resp_01_real_server_ehr_token_context_and_fhir_user() {
    let t = fixture_exchange(include_str!("fixtures/real-server/ehr-token.json"));
    assert_eq!(t.context.patient.as_deref(), Some("stub-patient-1"));
    assert_eq!(t.context.encounter.as_deref(), Some("stub-encounter-1"));
    assert_eq!(t.context.need_patient_banner, Some(true));
    assert_eq!(
        t.context.smart_style_url.as_deref(),
        Some("http://127.0.0.1:8445/smart-style.json")
    );
    assert_eq!(
        t.scope.as_deref(),
        Some("launch openid fhirUser offline_access user/*.rs patient/*.rs")
    );
    assert!(t.refresh_token.is_some());
    let claims = UnverifiedIdTokenClaims::decode(t.id_token.as_ref().unwrap()).unwrap();
    assert_eq!(
        claims.fhir_user.as_deref(),
        Some("Practitioner/stub-practitioner-1")
    );
    assert_eq!(
        claims.fhir_user().unwrap().url(&base()).unwrap().as_str(),
        "https://ehr.example.org/fhir/Practitioner/stub-practitioner-1",
        "OIDC-03: relative fhirUser resolves against the FHIR base"
    );
    assert_eq!(
        claims
            .fhir_user()
            .as_ref()
            .and_then(smart_core::FhirUser::reference),
        Some(("Practitioner", "stub-practitioner-1"))
    );
}

#[test]
fn resp_01_real_server_standalone_tokens_patient_and_provider() {
    let patient = fixture_exchange(include_str!(
        "fixtures/real-server/app-patient-standalone-token.json"
    ));
    assert_eq!(patient.context.patient.as_deref(), Some("stub-patient-1"));
    assert_eq!(
        patient.context.encounter.as_deref(),
        Some("stub-encounter-1")
    );
    assert_eq!(patient.context.need_patient_banner, Some(true));
    let c = UnverifiedIdTokenClaims::decode(patient.id_token.as_ref().unwrap()).unwrap();
    assert_eq!(
        c.fhir_user()
            .as_ref()
            .and_then(smart_core::FhirUser::reference),
        Some(("Patient", "stub-patient-1"))
    );
    assert_eq!(c.aud, Some(serde_json::json!("my-patient-app")));

    let provider = fixture_exchange(include_str!(
        "fixtures/real-server/app-provider-standalone-token.json"
    ));
    assert_eq!(provider.context.patient.as_deref(), Some("stub-patient-1"));
    assert_eq!(
        provider.context.smart_style_url.as_deref(),
        Some("http://127.0.0.1:8445/smart-style.json")
    );
    let c = UnverifiedIdTokenClaims::decode(provider.id_token.as_ref().unwrap()).unwrap();
    assert_eq!(
        c.fhir_user().unwrap().url(&base()).unwrap().as_str(),
        "https://ehr.example.org/fhir/Practitioner/stub-practitioner-1"
    );
}

#[test]
fn refr_real_server_refresh_fixture_through_session() {
    let first = fixture_exchange(include_str!(
        "fixtures/real-server/app-patient-standalone-token.json"
    ));
    let old_access = first.access_token.clone();
    let mut s = session(ClientAuth::public("my-patient-app"), first);
    s.request_refresh(None);
    let req = send(s.poll(T0).unwrap());
    assert_eq!(form(&req, "grant_type").as_deref(), Some("refresh_token"));
    let (status, body) = fixture_body(include_str!(
        "fixtures/real-server/app-patient-standalone-refresh.json"
    ));
    s.handle_response(HttpResponse::new(status, body), T0.plus_secs(10))
        .unwrap();
    assert!(s.take_refreshed());
    let t = ready(s.poll(T0.plus_secs(10)).unwrap());
    assert_ne!(t.access_token, old_access);
    assert_eq!(t.expires_at, Some(T0.plus_secs(3610)));
    assert_eq!(t.context.patient.as_deref(), Some("stub-patient-1"));
    assert_eq!(t.context.encounter.as_deref(), Some("stub-encounter-1"));
    let c = UnverifiedIdTokenClaims::decode(t.id_token.as_ref().unwrap()).unwrap();
    assert_eq!(c.fhir_user.as_deref(), Some("Patient/stub-patient-1"));
}

// ---------------------------------------------------------------------------------------------
// Refresh requests (REFR-02, REFR-03) and the Session (B19)
// ---------------------------------------------------------------------------------------------

fn session(auth: ClientAuth, token: TokenResponse) -> Session {
    let app = AppConfig::new(auth, REDIRECT, "openid").unwrap();
    let app = app.with_entropy(Arc::new(entropy()));
    Session::new(&app, base(), Url::parse(TOKEN_URL).unwrap(), token, T0)
}

/// B19 stored state: refresh token R1, online_access (not offline_access), patient context and
/// an id_token; expires at T0 + 3600.
fn b19_token(refresh: Option<&str>) -> TokenResponse {
    let mut v = serde_json::json!({
        "access_token": "A1", "token_type": "Bearer", "expires_in": 3600,
        "scope": "openid fhirUser launch online_access patient/*.rs",
        "patient": "123", "encounter": "enc-1", "need_patient_banner": true,
        "fhirContext": [{"reference": "DiagnosticReport/dr-1"}],
        "id_token": fake_id_token(&serde_json::json!({"sub": "u1", "fhirUser": "Practitioner/p1"})),
    });
    if let Some(r) = refresh {
        v["refresh_token"] = r.into();
    }
    let (_, res) = exchange_with(
        ig_exchange(ClientAuth::public(IG_CLIENT)),
        200,
        &v.to_string(),
    );
    res.unwrap()
}

const EXPIRED: UnixTime = UnixTime::from_secs(1_700_000_000 + 3600);

fn refresh_reply(extra: serde_json::Value) -> HttpResponse {
    let mut v =
        serde_json::json!({"access_token": "A2", "token_type": "bearer", "expires_in": 600});
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    HttpResponse::new(200, v.to_string())
}

#[test]
fn b19_refresh_is_attempted_when_a_refresh_token_exists_regardless_of_scope_text() {
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    // Fresh: no request.
    assert_eq!(
        ready(s.poll(T0.plus_secs(100)).unwrap())
            .access_token
            .secret(),
        "A1"
    );
    // Within the 30 s skew window: refresh.
    let req = send(s.poll(EXPIRED.minus_secs(30)).unwrap());
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url.as_str(), TOKEN_URL);
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "grant_type=refresh_token&refresh_token=R1&client_id=app-1",
        "REFR-02 (public client adds client_id)"
    );
    // Another caller once the token expired, with the refresh still out: it waits.
    assert!(matches!(s.poll(EXPIRED), Ok(Action::WaitForFlight)));
}

#[test]
fn b19abd_absent_null_or_empty_refresh_token_keeps_r1() {
    for (case, reply) in [
        ("a", serde_json::json!({})),
        ("b", serde_json::json!({"refresh_token": null})),
        ("d", serde_json::json!({"refresh_token": ""})),
    ] {
        let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
        let _ = send(s.poll(EXPIRED).unwrap());
        s.handle_response(refresh_reply(reply), EXPIRED).unwrap();
        let t = ready(s.poll(EXPIRED).unwrap());
        assert_eq!(t.access_token.secret(), "A2", "({case})");
        assert_eq!(t.refresh_token.as_ref().unwrap().secret(), "R1", "({case})");
        if case == "d" {
            assert!(
                t.warnings.iter().any(|w| w.contains("refresh_token")),
                "(d) warns: {:?}",
                t.warnings
            );
        }
        // The next refresh still uses R1.
        s.request_refresh(None);
        assert_eq!(
            form(&send(s.poll(EXPIRED).unwrap()), "refresh_token").as_deref(),
            Some("R1")
        );
    }
}

#[test]
fn b19c_refr_04_new_refresh_token_replaces_r1_which_is_never_sent_again() {
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    let _ = send(s.poll(EXPIRED).unwrap());
    s.handle_response(
        refresh_reply(serde_json::json!({"refresh_token": "R2"})),
        EXPIRED,
    )
    .unwrap();
    assert!(s.take_refreshed());
    assert!(!s.take_refreshed(), "take-once");
    assert_eq!(s.token().refresh_token.as_ref().unwrap().secret(), "R2");
    assert_eq!(
        s.to_stored().token.refresh_token.unwrap().secret(),
        "R2",
        "the stored form holds R2"
    );
    s.invalidate();
    let req = send(s.poll(EXPIRED).unwrap());
    assert_eq!(form(&req, "refresh_token").as_deref(), Some("R2"));
    assert!(!String::from_utf8(req.body).unwrap().contains("R1"));
}

#[test]
fn b19e_invalid_grant_drops_the_refresh_token_and_the_next_poll_sends_nothing() {
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    let _ = send(s.poll(EXPIRED).unwrap());
    let err = s
        .handle_response(
            HttpResponse::new(400, r#"{"error":"invalid_grant"}"#),
            EXPIRED,
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::OAuth(OAuthError {
            status: Some(400),
            error: "invalid_grant".into(),
            error_description: None,
            error_uri: None
        })
    );
    assert!(!s.can_refresh());
    assert!(s.token().refresh_token.is_none());
    assert!(
        s.take_refreshed(),
        "the dropped refresh token must be persisted"
    );
    // Session over: even "fresh" time gives NoRefreshToken, without a request.
    assert_eq!(s.poll(T0).unwrap_err(), Error::NoRefreshToken);
    assert_eq!(s.poll(EXPIRED).unwrap_err(), Error::NoRefreshToken);
}

#[test]
fn b19_other_refresh_errors_keep_the_refresh_token() {
    // Without retries or backoff: the 503 is the outcome of the refresh.
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")))
        .with_retry_policy(smart_core::retry::RetryPolicy::none());
    let _ = send(s.poll(EXPIRED).unwrap());
    assert!(matches!(
        s.handle_response(HttpResponse::new(503, "down"), EXPIRED),
        Err(Error::Http { status: 503, .. })
    ));
    assert!(s.can_refresh());
    assert_eq!(
        form(&send(s.poll(EXPIRED).unwrap()), "refresh_token").as_deref(),
        Some("R1")
    );
    // A transport failure (abort) also allows a retry with the same refresh token.
    s.abort();
    assert!(s.can_refresh());
    assert!(matches!(s.poll(EXPIRED).unwrap(), Action::Send(_)));
}

#[test]
fn b19_no_refresh_token_gives_no_refresh_token_without_a_request() {
    let mut s = session(ClientAuth::public("app-1"), b19_token(None));
    assert!(!s.can_refresh());
    assert_eq!(ready(s.poll(T0).unwrap()).access_token.secret(), "A1");
    assert_eq!(s.poll(EXPIRED).unwrap_err(), Error::NoRefreshToken);
    // A 401 from the FHIR server: same.
    let mut s = session(ClientAuth::public("app-1"), b19_token(None));
    s.invalidate();
    assert_eq!(s.poll(T0).unwrap_err(), Error::NoRefreshToken);
    assert!(matches!(
        s.handle_response(refresh_reply(serde_json::json!({})), T0),
        Err(Error::Misuse(_))
    ));
}

#[test]
fn refr_context_and_id_token_survive_a_refresh_without_them() {
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    let before_id = s.token().id_token.clone();
    let _ = send(s.poll(EXPIRED).unwrap());
    s.handle_response(
        refresh_reply(serde_json::json!({"refresh_token": "R2", "scope": "openid fhirUser launch online_access patient/*.rs"})),
        EXPIRED,
    )
    .unwrap();
    let t = ready(s.poll(EXPIRED).unwrap());
    assert_eq!(t.context.patient.as_deref(), Some("123"));
    assert_eq!(t.context.encounter.as_deref(), Some("enc-1"));
    assert_eq!(t.context.need_patient_banner, Some(true));
    assert_eq!(
        t.context.fhir_context[0].reference.as_deref(),
        Some("DiagnosticReport/dr-1")
    );
    assert_eq!(t.id_token, before_id);
    let claims = UnverifiedIdTokenClaims::decode(t.id_token.as_ref().unwrap()).unwrap();
    assert_eq!(claims.fhir_user.as_deref(), Some("Practitioner/p1"));
    assert_eq!(t.expires_at, Some(EXPIRED.plus_secs(600)));
}

#[test]
fn refr_missing_expires_in_in_the_refresh_response_is_not_a_silent_extension() {
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    let _ = send(s.poll(EXPIRED).unwrap());
    s.handle_response(
        HttpResponse::new(200, r#"{"access_token":"A3","token_type":"Bearer"}"#),
        EXPIRED,
    )
    .unwrap();
    let t = s.token();
    assert_eq!(t.access_token.secret(), "A3");
    assert_eq!(t.expires_in, None, "the old 3600 s is not carried over");
    assert_eq!(t.expires_at, None, "no invented expiry");
    // B16: the scope of the original grant is kept (and flagged as inferred).
    assert_eq!(
        t.scope.as_deref(),
        Some("openid fhirUser launch online_access patient/*.rs")
    );
    assert!(t.scope_inferred);
}

#[test]
fn refr_02_narrower_scope_goes_in_the_body() {
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    s.request_refresh(Some("patient/Observation.rs  openid".into()));
    let req = send(s.poll(T0).unwrap());
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "grant_type=refresh_token&refresh_token=R1&scope=patient%2FObservation.rs%20openid&client_id=app-1"
    );
    s.handle_response(
        refresh_reply(serde_json::json!({"scope": "patient/Observation.rs openid"})),
        T0,
    )
    .unwrap();
    assert_eq!(
        s.token().scope.as_deref(),
        Some("patient/Observation.rs openid"),
        "RESP-02: the granted scope is the response's"
    );
    // The narrower scope is not repeated on the next refresh.
    s.request_refresh(None);
    assert_eq!(form(&send(s.poll(T0).unwrap()), "scope"), None);
}

#[test]
fn refr_03_confidential_clients_authenticate_on_refresh() {
    // Symmetric: Basic header, nothing but the grant in the body.
    let mut s = session(
        ClientAuth::symmetric("my-app", ClientSecret::new("my-app-secret-123")),
        b19_token(Some("R1")),
    );
    let req = send(s.poll(EXPIRED).unwrap());
    assert_eq!(
        req.header("authorization"),
        Some("Basic bXktYXBwOm15LWFwcC1zZWNyZXQtMTIz")
    );
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "grant_type=refresh_token&refresh_token=R1"
    );

    // Asymmetric: a new assertion (new jti) on every refresh, no client_id (spec vectors §6.8).
    let key = SigningKey::generate(
        JwsAlgorithm::Es384,
        Some("k1"),
        &DeterministicEntropy::new(1),
    )
    .unwrap();
    let mut s = session(
        ClientAuth::asymmetric(IG_CLIENT, Arc::new(key)),
        b19_token(Some("R1")),
    );
    let first = send(s.poll(EXPIRED).unwrap());
    assert_eq!(
        form_names(&first),
        [
            "grant_type",
            "refresh_token",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    s.abort();
    let second = send(s.poll(EXPIRED).unwrap());
    let (a, b) = (
        jwt_payload(&form(&first, "client_assertion").unwrap()),
        jwt_payload(&form(&second, "client_assertion").unwrap()),
    );
    assert_eq!(a["aud"], TOKEN_URL);
    assert_eq!(a["iss"], IG_CLIENT);
    assert_ne!(a["jti"], b["jti"], "never a replayed assertion");
}

#[test]
fn ig_example_refresh_round_trip_public_client() {
    // Spec vectors §6.4 → §6.5 → §6.6.
    let (_, t) = exchange_with(
        ig_exchange(ClientAuth::public(IG_CLIENT)),
        200,
        IG_TOKEN_RESPONSE,
    );
    let mut s = session(ClientAuth::public(IG_CLIENT), t.unwrap());
    s.request_refresh(None);
    let req = send(s.poll(T0).unwrap());
    let mut fields = req.form_fields();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            ("client_id".to_owned(), IG_CLIENT.to_owned()),
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), IG_REFRESH_TOKEN.to_owned()),
        ]
    );
    s.handle_response(HttpResponse::new(200, IG_REFRESH_RESPONSE), T0.plus_secs(5))
        .unwrap();
    let t = ready(s.poll(T0.plus_secs(5)).unwrap());
    assert_eq!(
        t.scope.as_deref(),
        Some("launch/patient patient/Observation.rs patient/Patient.rs offline_access")
    );
    assert_eq!(
        t.context.patient.as_deref(),
        Some("87a339d0-8cae-418e-89c7-8651e6aab3c6")
    );
    assert_eq!(t.refresh_token.as_ref().unwrap().secret(), IG_REFRESH_TOKEN);
    assert_eq!(t.expires_at, Some(T0.plus_secs(3605)));
}

#[test]
fn b27_string_banner_and_vendor_extras_through_the_exchange() {
    let body = r#"{"access_token":"A1","token_type":"Bearer","expires_in":3600,
 "scope":"launch openid fhirUser patient/Patient.read",
 "patient":"eAbc.123","encounter":"eEnc9","location":"eLoc1","loginDepartment":"eDep7",
 "__epic.dstu2.patient":"T1.Zq","need_patient_banner":"false",
 "smart_style_url":"https://ehr.example.org/style/abc%3D.json",
 "tenant":"t-42","intent":"reconcile-medications"}"#;
    let (_, t) = exchange_with(ig_exchange(ClientAuth::public(IG_CLIENT)), 200, body);
    let t = t.unwrap();
    assert_eq!(t.context.need_patient_banner, Some(false));
    assert_eq!(t.context.patient.as_deref(), Some("eAbc.123"));
    assert_eq!(
        t.context.smart_style_url.as_deref(),
        Some("https://ehr.example.org/style/abc%3D.json")
    );
    assert_eq!(t.extra["location"], "eLoc1");
    assert_eq!(t.extra["__epic.dstu2.patient"], "T1.Zq");
    // Persisted with the session.
    let stored = session(ClientAuth::public(IG_CLIENT), t).to_stored();
    let back: smart_core::store::StoredToken =
        serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
    assert_eq!(back.token.extra["loginDepartment"], "eDep7");
    assert_eq!(back.token.context.tenant.as_deref(), Some("t-42"));
}

#[test]
fn session_from_stored_checks_the_client_id() {
    let s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    let stored = s.to_stored();
    let other = AppConfig::new(ClientAuth::public("app-2"), REDIRECT, "openid").unwrap();
    assert!(matches!(
        Session::from_stored(&other, stored.clone(), T0),
        Err(Error::Config(_))
    ));
    let same = AppConfig::new(ClientAuth::public("app-1"), REDIRECT, "openid").unwrap();
    let mut restored = Session::from_stored(&same, stored, T0).unwrap();
    assert_eq!(
        form(&send(restored.poll(EXPIRED).unwrap()), "refresh_token").as_deref(),
        Some("R1")
    );
}

#[test]
fn entropy_is_the_only_randomness_source() {
    // Same seed → same state and verifier: nothing else feeds the request.
    let app = public_app(REDIRECT, "openid");
    let a = authorize(
        &app,
        &Launch::standalone(base()),
        &default_config(),
        T0,
        &entropy(),
    )
    .unwrap();
    let b = authorize(
        &app,
        &Launch::standalone(base()),
        &default_config(),
        T0,
        &entropy(),
    )
    .unwrap();
    assert_eq!(a.url, b.url);
    let mut buf = [0u8; 2];
    entropy().fill(&mut buf).unwrap();
    assert_eq!(buf, [42, 43]);
}

#[test]
fn refr_a_failed_explicit_refresh_does_not_poison_a_fresh_session() {
    // No refresh token: the explicit refresh fails once; the fresh access token stays usable.
    let mut s = session(ClientAuth::public("app-1"), b19_token(None));
    s.request_refresh(None);
    assert_eq!(s.poll(T0).unwrap_err(), Error::NoRefreshToken);
    assert_eq!(ready(s.poll(T0).unwrap()).access_token.secret(), "A1");

    // A narrower scope the server refuses (REFR-02): reported once, then the still-fresh token
    // is used again and the refused scope is not resent.
    let mut s = session(ClientAuth::public("app-1"), b19_token(Some("R1")));
    s.request_refresh(Some("patient/Secret.rs".into()));
    assert_eq!(
        form(&send(s.poll(T0).unwrap()), "scope").as_deref(),
        Some("patient/Secret.rs")
    );
    let err = s
        .handle_response(HttpResponse::new(400, r#"{"error":"invalid_scope"}"#), T0)
        .unwrap_err();
    assert!(
        matches!(err, Error::OAuth(ref e) if e.error == "invalid_scope"),
        "{err:?}"
    );
    assert!(s.can_refresh());
    assert_eq!(ready(s.poll(T0).unwrap()).access_token.secret(), "A1");
    s.request_refresh(None);
    assert_eq!(form(&send(s.poll(T0).unwrap()), "scope"), None);
}

#[test]
fn b16_resp_02_granted_scope_differs_from_the_request() {
    let requested =
        "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Condition.rs";
    let body = serde_json::json!({
        "access_token": "A1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "R1",
        "scope": "launch/patient openid fhirUser patient/Observation.rs patient/Immunization.rs",
    });
    let (_, t) = exchange_with(
        ig_exchange(ClientAuth::public(IG_CLIENT)),
        200,
        &body.to_string(),
    );
    let t = t.unwrap();
    assert!(
        t.has_scope("patient/Immunization.rs"),
        "extra scope is not an error"
    );
    assert!(!t.has_scope("patient/Condition.rs"));
    assert!(!t.has_scope("offline_access"));
    assert!(!t.scope_inferred);
    // offline_access missing from the grant does not block refresh: a refresh token exists.
    let mut s = session(ClientAuth::public("app-1"), t);
    assert!(s.can_refresh());
    assert_eq!(
        form(&send(s.poll(EXPIRED).unwrap()), "refresh_token").as_deref(),
        Some("R1")
    );

    // Variant: no `scope` member → warning; granted = requested once inferred.
    let (_, t) = exchange_with(
        ig_exchange(ClientAuth::public(IG_CLIENT)),
        200,
        r#"{"access_token":"A1","token_type":"Bearer","expires_in":3600}"#,
    );
    let mut t = t.unwrap();
    assert_eq!(t.scope, None);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.starts_with("`scope` is absent")),
        "{:?}",
        t.warnings
    );
    t.infer_missing_scope(requested);
    assert_eq!(t.scope.as_deref(), Some(requested));
    assert!(t.scope_inferred);
}

#[test]
fn refr_refresh_flow_scrubs_an_echoed_refresh_token() {
    use smart_core::client_auth::ClientAuth;
    use smart_core::refresh::refresh;
    use smart_core::secret::RefreshToken;
    let rt = RefreshToken::new("refresh-token-value-echoed-back");
    let body = r#"{"error":"invalid_grant","error_description":"unknown token refresh-token-value-echoed-back"}"#;
    let mut flow = refresh(
        ClientAuth::public("app-1"),
        Url::parse(TOKEN_URL).unwrap(),
        rt,
        None,
        false,
        Arc::new(entropy()),
    );
    let _ = send(flow.poll(T0).unwrap());
    let err = flow
        .handle_response(HttpResponse::new(400, body), T0)
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_grant"), "{text}");
    assert!(!text.contains("refresh-token-value-echoed-back"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}
