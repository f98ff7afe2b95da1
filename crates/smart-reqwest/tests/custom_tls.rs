//! Your own TLS: a private CA as the only root, mutual TLS, and your own
//! `reqwest::ClientBuilder` — the driver's rules (no redirects, https or loopback) still
//! hold. Against a local HTTPS server with a CA generated for the test.

use smart_core::FhirBaseUrl;
use smart_core::error::{Error, TransportErrorKind};
use smart_reqwest::HttpClient;
use smart_testkit::tls::{TlsServer, smart_responder, unrelated_ca_pem};

fn base(server: &TlsServer) -> FhirBaseUrl {
    FhirBaseUrl::new(format!("{}/fhir", server.url())).unwrap()
}

#[tokio::test]
async fn a_private_ca_as_root_is_trusted_and_the_default_roots_are_not() {
    let server = TlsServer::start(smart_responder);
    let trusted = HttpClient::builder()
        .root_certificates_pem(server.ca_pem())
        .build()
        .unwrap();
    let d = smart_reqwest::discover(&trusted, &base(&server))
        .await
        .unwrap();
    assert!(
        d.config
            .token_endpoint
            .as_str()
            .starts_with("https://localhost:")
    );

    let default = HttpClient::new().unwrap();
    let e = smart_reqwest::discover(&default, &base(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Tls),
        "{e:?}"
    );
    assert!(
        std::error::Error::source(&e).is_some(),
        "the TLS error is kept as the source"
    );

    let other_ca = HttpClient::builder()
        .root_certificates_pem(unrelated_ca_pem())
        .build()
        .unwrap();
    assert!(
        smart_reqwest::discover(&other_ca, &base(&server))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let server = TlsServer::start_mtls(smart_responder);
    let id = server.client_identity();
    let with_cert = HttpClient::builder()
        .root_certificates_pem(server.ca_pem())
        .client_identity_pem(&id.cert_pem, &id.key_pem)
        .build()
        .unwrap();
    smart_reqwest::discover(&with_cert, &base(&server))
        .await
        .unwrap();

    let without = HttpClient::builder()
        .root_certificates_pem(server.ca_pem())
        .build()
        .unwrap();
    assert!(
        smart_reqwest::discover(&without, &base(&server))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn garbage_roots_are_a_typed_error_at_build() {
    let e = HttpClient::builder()
        .root_certificates_pem("not a certificate")
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Tls),
        "{e:?}"
    );
}

#[tokio::test]
async fn your_own_builder_still_never_follows_a_redirect_and_keeps_https() {
    use smart_testkit::hostile::{Behaviour, HostileServer, Response};
    // A builder that would follow redirects by itself.
    let own = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(10));
    let http = HttpClient::builder().reqwest_builder(own).build().unwrap();
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::redirect(307, "/elsewhere"));
    server.route("POST", "/elsewhere", Response::token("leaked", 300));
    let config = smart_core::discovery::SmartConfiguration::new(
        url::Url::parse(&server.url_for("/token")).unwrap(),
    );
    let key = smart_core::jwk::SigningKey::generate(
        smart_core::assertion::JwsAlgorithm::Es384,
        Some("k"),
        &smart_core::entropy::SystemEntropy,
    )
    .unwrap();
    let auth = smart_reqwest::BackendServicesAuth::with_client(
        smart_core::backend::BackendServicesConfig::new(
            smart_core::ClientId::new("c"),
            "system/Patient.rs",
            std::sync::Arc::new(key),
        )
        .with_smart_configuration(config),
        http,
        std::sync::Arc::new(smart_core::entropy::SystemEntropy),
    )
    .unwrap();
    let e = auth.token().await.unwrap_err();
    assert!(
        matches!(&e, Error::Redirect { status: 307, location: Some(l), .. } if l == "/elsewhere"),
        "{e:?}"
    );
    assert_eq!(
        server.count("/elsewhere"),
        0,
        "the assertion never left for the redirect"
    );

    let http = HttpClient::builder()
        .reqwest_builder(reqwest::Client::builder())
        .build()
        .unwrap();
    let e = smart_reqwest::discover(
        &http,
        &FhirBaseUrl::new("http://ehr.example.org/fhir").unwrap(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::InsecureUrl { .. }), "{e:?}");
}
