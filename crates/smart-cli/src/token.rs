//! `smart token`: a Backend Services access token, optionally cached in a token store across
//! runs (`--cache`).

use std::path::Path;
use std::sync::Arc;

use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::default_entropy;
use smart_core::token::TokenResponse;
use smart_core::{ClientId, FhirBaseUrl};
use smart_ureq::{BackendServicesAuth, HttpClient};

use crate::store::{self, KeySource, StoreSpec};
use crate::{Alg, CliResult, SentAssertion, check_alg, load_key, print_json, scope, when};

pub(crate) struct TokenArgs<'a> {
    pub fhir_base: &'a str,
    pub client_id: &'a str,
    pub key: &'a Path,
    pub kid: Option<&'a str>,
    pub alg: Option<Alg>,
    pub scope: &'a str,
    pub cache: Option<&'a str>,
    pub cache_key: KeySource<'a>,
    pub json: bool,
    pub verbose: bool,
    pub lint: bool,
    pub allow_insecure_http: bool,
}

pub(crate) fn token(a: &TokenArgs<'_>) -> CliResult {
    if a.lint {
        scope::lint(a.scope, "--scope")?;
    }
    let key = load_key(a.key, a.kid)?;
    check_alg(&key, a.alg, a.key)?;
    let sent = SentAssertion::of(&key);
    // Open the cache before any request: a bad store or key is reported without a token
    // request.
    let cache = match a.cache {
        Some(spec) => {
            let spec = StoreSpec::parse(spec)?;
            Some((store::open(&spec, &a.cache_key)?, spec))
        }
        None => None,
    };
    let base = FhirBaseUrl::new(a.fhir_base)?;
    let http = HttpClient::builder()
        .allow_insecure_http(a.allow_insecure_http)
        .build()?;
    let discovered = smart_ureq::discover(&http, &base)?;
    warn_alg_not_advertised(&discovered.config, &sent);
    let config = BackendServicesConfig::new(ClientId::new(a.client_id), a.scope, Arc::new(key))
        .with_fhir_base(base)
        .with_smart_configuration(discovered.config)
        .allow_insecure_http(a.allow_insecure_http);
    let mut auth = BackendServicesAuth::with_client(config.clone(), http, default_entropy())?;
    let mut cached_access_token = None;
    if let Some((store, spec)) = cache {
        // The key the library stores under: `smart-bs:{token endpoint}:{client_id}:{scope}`.
        let key = BackendServices::new(config, default_entropy())?
            .store_key()
            .ok_or("no token endpoint to key the cache with")?;
        match store.get(&key) {
            Ok(entry) => cached_access_token = entry.map(|e| e.token.access_token),
            // A wrong key or a foreign entry: stop rather than quietly bypass the cache (the
            // entry is left as it is).
            Err(e) if store::is_fatal(&e) => return Err(store::describe(&e).into()),
            // Unreachable (Redis down): the library reports it below and goes on without it.
            Err(_) => {}
        }
        auth = auth
            .with_store(store, None)
            .on_store_event(store::event_hook(spec));
    }
    let token = auth
        .token()
        .map_err(|e| SentAssertion::explain(Some(&sent), e))?;
    scope::warn_if_narrower(a.scope, token.scope.as_deref());
    if a.json {
        return print_json(&token_json(&token));
    }
    println!("{}", token.access_token.secret());
    if a.verbose {
        let from_cache = cached_access_token
            .as_ref()
            .is_some_and(|t| t.secret() == token.access_token.secret());
        eprintln!(
            "scope {}; {}{}",
            token.scope.as_deref().unwrap_or("(none granted)"),
            token.expires_at.map_or_else(
                || "no expiry given".to_owned(),
                |t| when::expiry(t.as_secs())
            ),
            if from_cache { "; from the cache" } else { "" }
        );
    }
    Ok(())
}

/// The token response in its wire shape plus `expires_at` (epoch seconds).
pub(crate) fn token_json(token: &TokenResponse) -> serde_json::Value {
    let mut m = token.to_wire_json();
    if let Some(at) = token.expires_at {
        m.insert("expires_at".into(), at.as_secs().into());
    }
    serde_json::Value::Object(m)
}

/// Warn when the server lists the algorithms it accepts for client assertions and the key's
/// is not among them.
pub(crate) fn warn_alg_not_advertised(config: &SmartConfiguration, sent: &SentAssertion) {
    if config.signing_alg_advertised(sent.alg.as_str()) == Some(false) {
        eprintln!(
            "warning: the server lists {} in token_endpoint_auth_signing_alg_values_supported, \
             not {} (the algorithm of this key); the token request may be refused",
            config
                .token_endpoint_auth_signing_alg_values_supported
                .join(", "),
            sent.alg
        );
    }
}
