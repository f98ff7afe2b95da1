//! Token-endpoint client authentication: HTTP Basic (SYM-01, case B17), public clients, and
//! `private_key_jwt` request shape (ASYM-11, BES-03, TOKEN-03, cases B21 and B24).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use smart_core::assertion::{CLIENT_ASSERTION_TYPE, DEFAULT_ASSERTION_LIFETIME_SECS};
use smart_core::client_auth::{BasicEncoding, ClientAuth, basic_authorization};
use smart_core::entropy::DeterministicEntropy;
use smart_core::jwk::SigningKey;
use smart_core::secret::ClientSecret;
use smart_core::{Error, HttpRequest, UnixTime};
use std::sync::Arc;
use url::Url;

const IG_ES384_PRIVATE: &str = include_str!("fixtures/ig/ES384.private.json");
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn token_url() -> Url {
    Url::parse("https://ehr.example.org/oauth2/token").unwrap()
}

fn claims_of(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn asymmetric() -> ClientAuth {
    ClientAuth::asymmetric(
        "c-123",
        Arc::new(SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap()),
    )
}

#[test]
fn sym01_ig_basic_vectors() {
    // vectors.md §4; no reserved characters, so both encodings agree.
    for enc in [BasicEncoding::Raw, BasicEncoding::FormUrlEncoded] {
        assert_eq!(
            basic_authorization("my-app", &ClientSecret::new("my-app-secret-123"), enc),
            "Basic bXktYXBwOm15LWFwcC1zZWNyZXQtMTIz"
        );
        assert_eq!(
            basic_authorization(
                "demo_app_whatever",
                &ClientSecret::new("secret-key-1234567890"),
                enc
            ),
            "Basic ZGVtb19hcHBfd2hhdGV2ZXI6c2VjcmV0LWtleS0xMjM0NTY3ODkw"
        );
    }
}

#[test]
fn b17_both_basic_modes_exact_and_raw_by_default() {
    let secret = ClientSecret::new("s3cr+t/=x");
    assert_eq!(
        basic_authorization("app-1", &secret, BasicEncoding::FormUrlEncoded),
        "Basic YXBwLTE6czNjciUyQnQlMkYlM0R4" // base64("app-1:s3cr%2Bt%2F%3Dx")
    );
    assert_eq!(
        basic_authorization("app-1", &secret, BasicEncoding::Raw),
        "Basic YXBwLTE6czNjcit0Lz14" // base64("app-1:s3cr+t/=x")
    );
    assert_eq!(BasicEncoding::default(), BasicEncoding::Raw);
    // Unreserved characters only (RFC 3986 ALPHA / DIGIT / - . _ ~): identical headers.
    let plain = ClientSecret::new("Az09-._~secret");
    assert_eq!(
        basic_authorization("client.id_1-~", &plain, BasicEncoding::Raw),
        basic_authorization("client.id_1-~", &plain, BasicEncoding::FormUrlEncoded)
    );
}

#[test]
fn symmetric_apply_sets_header_only() {
    // SYM-01 + TOKEN-03: Basic header, and neither client_id nor client_secret in the body,
    // even if a caller had put them there.
    let auth = ClientAuth::symmetric(
        "demo_app_whatever",
        ClientSecret::new("secret-key-1234567890"),
    );
    let mut fields = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("client_id".to_owned(), "demo_app_whatever".to_owned()),
        (
            "client_secret".to_owned(),
            "secret-key-1234567890".to_owned(),
        ),
    ];
    let mut headers = vec![("Authorization".to_owned(), "Bearer stale".to_owned())];
    auth.apply(
        &mut fields,
        &mut headers,
        token_url(),
        NOW,
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    assert_eq!(
        fields,
        [("grant_type".to_owned(), "authorization_code".to_owned())]
    );
    assert_eq!(
        headers,
        [(
            "authorization".to_owned(),
            "Basic ZGVtb19hcHBfd2hhdGV2ZXI6c2VjcmV0LWtleS0xMjM0NTY3ODkw".to_owned()
        )]
    );
    assert_eq!(auth.method_name(), "client_secret_basic");
}

#[test]
fn public_apply_puts_client_id_in_body() {
    // TOKEN-03: public apps send client_id (once).
    let auth = ClientAuth::public("app-client-id");
    let mut fields = vec![("client_id".to_owned(), "other".to_owned())];
    let mut headers = Vec::new();
    auth.apply(
        &mut fields,
        &mut headers,
        token_url(),
        NOW,
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    assert_eq!(
        fields,
        [("client_id".to_owned(), "app-client-id".to_owned())]
    );
    assert!(headers.is_empty());
    assert_eq!(auth.client_id().as_str(), "app-client-id");
    assert_eq!(auth.method_name(), "none");
}

#[test]
fn b21_asymmetric_request_shape() {
    // B21 / BES-03 / ASYM-11: the assertion is in the two form fields, never in a header; no
    // client_id, no client_secret.
    let auth = asymmetric();
    let mut fields = vec![
        ("grant_type".to_owned(), "client_credentials".to_owned()),
        (
            "scope".to_owned(),
            "system/Encounter.read system/Patient.read".to_owned(),
        ),
    ];
    let mut headers = Vec::new();
    auth.apply(
        &mut fields,
        &mut headers,
        token_url(),
        NOW,
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    assert!(headers.is_empty(), "no Authorization header: {headers:?}");
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "scope",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(
        fields[2].1,
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(fields[2].1, CLIENT_ASSERTION_TYPE);

    let jwt = fields[3].1.clone();
    let claims = claims_of(&jwt);
    assert_eq!(claims["aud"], "https://ehr.example.org/oauth2/token");
    assert_eq!(claims["iss"], "c-123");
    assert_eq!(claims["sub"], "c-123");
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        NOW.as_secs() + DEFAULT_ASSERTION_LIFETIME_SECS
    );

    // The exact body of case B21 once the fields go through the form encoder.
    let req = HttpRequest::post_form(
        token_url(),
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let body = String::from_utf8(req.body.clone()).unwrap();
    let expected_prefix = "grant_type=client_credentials&scope=system%2FEncounter.read%20system%2FPatient.read\
        &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
        &client_assertion=";
    assert_eq!(body, format!("{expected_prefix}{jwt}"));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(auth.method_name(), "private_key_jwt");
}

#[test]
fn b24_each_apply_mints_a_new_assertion() {
    // Two concurrent calls plus one retry → three requests, three assertions, three jtis.
    let auth = asymmetric();
    let entropy = DeterministicEntropy::new(0);
    let mut jtis = Vec::new();
    let mut jwts = Vec::new();
    for t in [0, 0, 2] {
        let mut fields = Vec::new();
        let mut headers = Vec::new();
        auth.apply(
            &mut fields,
            &mut headers,
            token_url(),
            NOW.plus_secs(t),
            &entropy,
        )
        .unwrap();
        let jwt = fields
            .iter()
            .find(|(k, _)| k == "client_assertion")
            .unwrap()
            .1
            .clone();
        jtis.push(claims_of(&jwt)["jti"].as_str().unwrap().to_owned());
        jwts.push(jwt);
    }
    for i in 0..3 {
        for j in i + 1..3 {
            assert_ne!(jtis[i], jtis[j]);
            assert_ne!(jwts[i], jwts[j]);
        }
    }
}

#[test]
fn asymmetric_apply_errors_leave_request_untouched() {
    let ClientAuth::ConfidentialAsymmetric {
        client_id, signer, ..
    } = asymmetric()
    else {
        unreachable!()
    };
    let auth = ClientAuth::ConfidentialAsymmetric {
        client_id,
        signer,
        assertion_lifetime_secs: 301,
        jku: None,
    };
    let mut fields = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
    let mut headers = Vec::new();
    let err = auth.apply(
        &mut fields,
        &mut headers,
        token_url(),
        NOW,
        &DeterministicEntropy::new(0),
    );
    assert!(matches!(err, Err(Error::Config(_))), "{err:?}");
    assert_eq!(fields.len(), 1);
    assert!(headers.is_empty());
}

#[test]
fn asymmetric_jku_is_passed_through() {
    let ClientAuth::ConfidentialAsymmetric {
        client_id, signer, ..
    } = asymmetric()
    else {
        unreachable!()
    };
    let auth = ClientAuth::ConfidentialAsymmetric {
        client_id,
        signer,
        assertion_lifetime_secs: 60,
        jku: Some("https://app.example.org/jwks.json".into()),
    };
    let mut fields = Vec::new();
    auth.apply(
        &mut fields,
        &mut Vec::new(),
        token_url(),
        NOW,
        &DeterministicEntropy::new(0),
    )
    .unwrap();
    let jwt = &fields[1].1;
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["jku"], "https://app.example.org/jwks.json");
    assert_eq!(claims_of(jwt)["exp"].as_u64().unwrap(), NOW.as_secs() + 60);
}

#[test]
fn debug_never_shows_secrets() {
    let sym = ClientAuth::symmetric("app-1", ClientSecret::new("s3cr+t/=x"));
    let d = format!("{sym:?}");
    assert_eq!(
        d,
        r#"ConfidentialSymmetric { client_id: ClientId("app-1"), client_secret: "[redacted]", encoding: Raw }"#
    );
    let asym = asymmetric();
    let d = format!("{asym:?}");
    assert!(
        d.contains("kid: \"cd520211e5661dbba2256f67f6d53f97\""),
        "{d}"
    );
    assert!(d.contains("alg: \"ES384\""), "{d}");
    // The IG private scalar `d` starts with this.
    assert!(!d.contains("hQCNmfvZ"), "{d}");
    assert!(!format!("{asym:#?}").contains("hQCNmfvZ"));
}
