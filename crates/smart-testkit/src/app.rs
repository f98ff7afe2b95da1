//! App Launch helpers shared by both adapters' sandbox tests: client registration of each
//! client type, the app configuration, callback-URL rewriting, and an EHR launch from the
//! sandbox's simulated EHR.
#![allow(missing_docs)]

use std::sync::Arc;

use smart_core::FhirBaseUrl;
use smart_core::assertion::JwsAlgorithm;
use smart_core::client_auth::ClientAuth;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::launch::AppConfig;
use smart_core::secret::ClientSecret;
use url::Url;

/// The app's redirect URI: loopback, any port matches the registered `http://127.0.0.1/callback`.
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// Registered scopes: the launch/OIDC ones form the client's allow-list (sandbox README).
pub const REGISTERED_SCOPE: &str =
    "launch launch/patient openid fhirUser offline_access online_access patient/*.rs user/*.rs";
pub const STANDALONE_SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";
pub const EHR_SCOPE: &str = "launch openid fhirUser online_access patient/*.rs user/*.rs";

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `token_endpoint_auth_method: none`.
    Public,
    /// `client_secret_basic`.
    Symmetric,
    /// `private_key_jwt` with a fresh ES384 key.
    Asymmetric,
}

pub const KINDS: [Kind; 3] = [Kind::Public, Kind::Symmetric, Kind::Asymmetric];

/// Register a fresh client of `kind`; returns its id and how the app authenticates.
pub fn register(kind: Kind) -> (String, ClientAuth) {
    let client_id = crate::unique("app");
    let mut meta = serde_json::json!({
        "client_id": client_id,
        "redirect_uris": ["http://127.0.0.1/callback"],
        "scope": REGISTERED_SCOPE,
    });
    let auth = match kind {
        Kind::Public => {
            meta["token_endpoint_auth_method"] = "none".into();
            ClientAuth::public(&client_id)
        }
        Kind::Symmetric => {
            let secret = crate::unique("secret");
            meta["token_endpoint_auth_method"] = "client_secret_basic".into();
            meta["client_secret"] = secret.clone().into();
            ClientAuth::symmetric(&client_id, ClientSecret::new(secret))
        }
        Kind::Asymmetric => {
            let key = SigningKey::generate(JwsAlgorithm::Es384, None, &SystemEntropy).unwrap();
            meta["token_endpoint_auth_method"] = "private_key_jwt".into();
            meta["jwks"] = key.public_jwks();
            ClientAuth::asymmetric(&client_id, Arc::new(key))
        }
    };
    crate::register_client(&meta);
    (client_id, auth)
}

pub fn app(auth: ClientAuth, scope: &str) -> AppConfig {
    AppConfig::new(auth, REDIRECT, scope).unwrap()
}

pub fn fhir_base() -> FhirBaseUrl {
    FhirBaseUrl::new(crate::fhir_base()).unwrap()
}

pub fn practitioner_url() -> String {
    format!("{}/Practitioner/smart-Practitioner-1", crate::fhir_base())
}

/// Replace the value of query parameter `name` in `url`.
pub fn rewrite(url: &str, name: &str, value: &str) -> String {
    let mut u = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    assert!(
        pairs.iter().any(|(k, _)| k == name),
        "{name} not in callback"
    );
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An EHR launch from the sandbox's simulated EHR: patient 123, encounter enc-1, one
/// fhirContext item. Returns the launch URL the EHR opened.
pub fn ehr_launch_url() -> String {
    let app_launch = "http://127.0.0.1:9/launch";
    let start = format!(
        "{}/_sandbox/ehr-launch?patient=123&encounter=enc-1&fhirContext=DiagnosticReport/dr-1&launch_url={}&redirect=1",
        crate::sandbox_url(),
        smart_core::http::form_encode(app_launch)
    );
    crate::browser_until(&start, app_launch, None)
}
