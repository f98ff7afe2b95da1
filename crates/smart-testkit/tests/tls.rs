//! The TLS test server: trusted through its generated CA, refused with the default roots or an
//! unrelated CA, mTLS with the issued client identity, keep-alive, and a plain rustls client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use smart_testkit::hostile::Response;
use smart_testkit::tls::{
    Identity, TlsServer, smart_responder, unrelated_ca_pem, untrusted_client_identity,
};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// A ureq agent trusting `roots` (PEM) only, or the default web PKI roots with `None`; with a
/// client certificate if given.
fn agent(roots: Option<&str>, identity: Option<&Identity>) -> ureq::Agent {
    let mut tls = TlsConfig::builder();
    if let Some(pem) = roots {
        let cert = Certificate::from_pem(pem.as_bytes()).unwrap();
        tls = tls.root_certs(RootCerts::new_with_certs(&[cert]));
    }
    if let Some(id) = identity {
        let cert = Certificate::from_pem(id.cert_pem.as_bytes()).unwrap();
        let key = PrivateKey::from_pem(id.key_pem.as_bytes()).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&[cert], key)));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .tls_config(tls.build())
        .build()
        .into()
}

fn json(agent: &ureq::Agent, url: &str) -> serde_json::Value {
    let mut resp = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status().as_u16(), 200);
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

/// Whether `err` is a certificate verification failure reported by rustls.
fn is_cert_error(err: &ureq::Error) -> bool {
    let text = format!("{err:?}");
    matches!(err, ureq::Error::Rustls(_) | ureq::Error::Io(_))
        && (text.contains("UnknownIssuer") || text.contains("InvalidCertificate"))
}

#[test]
fn a_client_trusting_the_generated_ca_gets_smart_configuration_and_a_token() {
    let server = TlsServer::start(smart_responder);
    let port = server.addr().port();
    assert_eq!(server.url(), format!("https://localhost:{port}"));
    assert_eq!(server.ip_url(), format!("https://127.0.0.1:{port}"));
    assert!(server.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!server.requires_client_cert());

    let a = agent(Some(server.ca_pem()), None);
    let config = json(&a, &server.url_for("/fhir/.well-known/smart-configuration"));
    assert_eq!(
        config["token_endpoint"],
        format!("https://localhost:{port}/token")
    );
    let mut resp = a
        .post(config["token_endpoint"].as_str().unwrap())
        .send("grant_type=client_credentials")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let token: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(token["access_token"], "tls-test-token");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 300);

    // The certificate also names 127.0.0.1.
    let config = json(
        &a,
        &format!("{}/fhir/.well-known/smart-configuration", server.ip_url()),
    );
    assert_eq!(
        config["token_endpoint"],
        format!("https://127.0.0.1:{port}/token")
    );
    // Anything else is 404.
    let resp = a.get(&server.url_for("/nope")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    assert_eq!(server.count("/fhir/.well-known/smart-configuration"), 2);
    assert_eq!(server.count("/token"), 1);
    let reqs = server.requests();
    assert_eq!(reqs[1].body, b"grant_type=client_credentials");
    assert!(server.failed_handshakes().is_empty());
    // One connection per host name, reused (keep-alive): two handshakes for four requests.
    assert_eq!(server.handshakes(), 2);
}

#[test]
fn a_client_with_only_the_default_roots_fails_the_handshake() {
    let server = TlsServer::start(smart_responder);
    let err = agent(None, None)
        .get(&server.url_for("/fhir/.well-known/smart-configuration"))
        .call()
        .unwrap_err();
    assert!(
        is_cert_error(&err),
        "expected a TLS certificate error, got {err:?}"
    );
    assert_eq!(server.count("/fhir/.well-known/smart-configuration"), 0);
    assert!(server.wait_for_failed_handshakes(1, Duration::from_secs(5)));
    assert_eq!(server.handshakes(), 0);
    // ureq hangs up without sending its alert: the server sees the connection end mid-handshake.
    let failed = server.failed_handshakes();
    assert_eq!(failed.len(), 1, "{failed:?}");
}

#[test]
fn a_client_trusting_an_unrelated_ca_fails_too() {
    let server = TlsServer::start(smart_responder);
    let other = unrelated_ca_pem();
    assert_ne!(other, server.ca_pem());
    let err = agent(Some(&other), None)
        .get(&server.url_for("/fhir/.well-known/smart-configuration"))
        .call()
        .unwrap_err();
    assert!(is_cert_error(&err), "{err:?}");
    assert_eq!(server.requests().len(), 0);
}

#[test]
fn each_server_has_its_own_ca() {
    let a = TlsServer::start(smart_responder);
    let b = TlsServer::start(smart_responder);
    assert_ne!(a.ca_pem(), b.ca_pem());
    let err = agent(Some(a.ca_pem()), None)
        .get(&b.url_for("/fhir/.well-known/smart-configuration"))
        .call()
        .unwrap_err();
    assert!(is_cert_error(&err), "{err:?}");
}

#[test]
fn mtls_accepts_the_issued_client_certificate_only() {
    let server = TlsServer::start_mtls(|req| Response::text(200, format!("hello {}", req.path)));
    assert!(server.requires_client_cert());
    let id = server.client_identity();
    assert!(id.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(id.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(id.pem().contains("CERTIFICATE") && id.pem().contains("PRIVATE KEY"));
    assert!(
        !format!("{id:?}").contains(&id.key_pem),
        "Debug hides the key"
    );

    let mut resp = agent(Some(server.ca_pem()), Some(id))
        .get(&server.url_for("/x"))
        .call()
        .unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "hello /x");
    assert_eq!(server.handshakes(), 1);

    // No client certificate: refused during the handshake.
    let err = agent(Some(server.ca_pem()), None)
        .get(&server.url_for("/x"))
        .call()
        .unwrap_err();
    assert!(
        matches!(err, ureq::Error::Rustls(_) | ureq::Error::Io(_)),
        "{err:?}"
    );
    assert!(server.wait_for_failed_handshakes(1, Duration::from_secs(5)));
    // A certificate from another CA: refused as well.
    let untrusted = untrusted_client_identity();
    assert!(
        agent(Some(server.ca_pem()), Some(&untrusted))
            .get(&server.url_for("/x"))
            .call()
            .is_err()
    );
    assert!(server.wait_for_failed_handshakes(2, Duration::from_secs(5)));
    assert_eq!(
        server.count("/x"),
        1,
        "only the authenticated request got through"
    );
    assert_eq!(
        server.failed_handshakes(),
        [
            "peer sent no certificates",
            "invalid peer certificate: UnknownIssuer"
        ]
    );
    assert!(!server.wait_for_failed_handshakes(3, Duration::from_millis(50)));
}

#[test]
fn a_plain_rustls_client_with_the_ca_as_root() {
    let server = TlsServer::start_mtls(smart_responder);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let id = server.client_identity();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(server.addr()).unwrap());
    tls.write_all(
        b"POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b",
    )
    .unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    let body = out.split_once("\r\n\r\n").unwrap().1;
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(token["access_token"], "tls-test-token");
    assert_eq!(
        tls.conn.alpn_protocol(),
        None,
        "no ALPN offered, none chosen"
    );
    let peer = tls.conn.peer_certificates().unwrap();
    assert_eq!(peer.len(), 2, "leaf and CA");
    assert_eq!(
        peer[1].as_ref(),
        CertificateDer::from_pem_slice(server.ca_pem().as_bytes())
            .unwrap()
            .as_ref()
    );
    assert_eq!(server.requests()[0].body, b"a=b");
}
