//! The driver scenarios, written once and run against every driver.
//!
//! Each scenario is a generic function `fn name<D: Driver>()` that panics on failure. A driver
//! crate runs them all by implementing [`Driver`] in its tests and calling
//! [`scenarios!`](crate::scenarios!) once:
//!
//! ```text
//! // crates/smart-ureq/tests/scenarios/main.rs
//! mod harness;
//! smart_testkit::scenarios!(harness::Ureq);
//! ```
//!
//! which expands to one `#[test]` per scenario, grouped in modules named after the suites
//! (`sandbox_backend::b24_replayed_assertion_is_rejected`, `transport::...`). The sandbox
//! scenarios start the sandbox on first use ([`sandbox_url`](crate::sandbox_url)); the
//! transport scenarios use [`hostile`](crate::hostile) servers only.
//!
//! | module | suite |
//! |---|---|
//! | [`backend`] | Backend Services against the sandbox |
//! | [`app_launch`] | App Launch against the sandbox |
//! | [`id_token`] | `id_token` verification against the sandbox |
//! | [`introspection`] | introspection and revocation against the sandbox |
//! | [`transport`] | the transport policy against hostile loopback servers |
//! | [`observability`] | what the `tracing` feature logs |
//! | [`resource`] | FHIR requests through the drivers' middleware |
//! | [`faults`] | real servers' faults through a driver end to end |
//! | [`canary`] | no sent secret in any error, against reflecting hostile servers |
//! | [`load`] | the token lifecycle under load and faults, counted on hostile loopback servers |
//! | [`remote_sign`] | a remote (KMS-style) signer against the sandbox |

pub mod app_launch;
pub mod backend;
pub mod canary;
pub mod faults;
pub mod id_token;
pub mod introspection;
pub mod load;
pub mod observability;
pub mod remote_sign;
pub mod resource;
pub mod transport;

use std::sync::Arc;

use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::entropy::SystemEntropy;
use smart_core::error::OAuthError;
use smart_core::jwk::SigningKey;
use smart_core::launch::{AppConfig, Launch, PendingAuthorization};
use smart_core::{ClientId, Error, FhirBaseUrl, UnixTime};

use crate::app::{REDIRECT, fhir_base};
use crate::driver::Driver;

/// Every scenario as `(test module, source module, [names])`, for [`scenarios!`]. A unit test
/// checks that each public scenario function of the modules above is listed here.
#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_list {
    ($callback:ident) => {
        $crate::$callback! {
            sandbox_backend, backend, [
                bes_token_and_fhir_read_es384_and_rs384,
                discovery_reads_the_sandbox_well_known,
                cached_token_is_reused_and_a_401_forces_a_new_one,
                short_lived_tokens_are_renewed_in_the_skew_window,
                concurrency_200_callers_cold_cache_one_token_request,
                concurrency_1000_callers_cold_cache_one_token_request,
                asym_12_wrong_key_and_unknown_kid_are_typed_oauth_errors,
                b20_wrong_aud_and_expired_assertions_are_rejected,
                b24_replayed_assertion_is_rejected,
                errors_and_debug_never_contain_tokens_or_keys,
                token_store_default_key_shares_the_token_and_a_401_replaces_it,
                token_store_explicit_key_and_an_entry_of_another_client_is_never_used,
            ];
            sandbox_app_launch, app_launch, [
                standalone_launch_public_symmetric_asymmetric,
                ehr_launch_public_symmetric_asymmetric,
                refresh_rotates_reports_to_the_hook_and_keeps_context,
                pkce_mismatch_is_invalid_grant_400,
                wrong_state_is_state_mismatch_and_no_token_request,
                denied_authorization_is_an_error_redirect,
                rfc9207_iss_mismatch_is_refused_without_a_token_request,
                iss_outside_the_allow_list_is_refused_before_any_request,
                authorize_post_form_completes_the_launch,
                a_401_invalidates_and_the_next_authorization_refreshes,
                refr_02_free_refresh_token_function_with_a_narrower_scope,
                client_refresh_with_a_narrower_scope,
            ];
            sandbox_id_token, id_token, [
                standalone_launch_id_token_verifies_with_sandbox_jwks,
                verify_id_token_without_openid_is_missing,
            ];
            sandbox_introspection, introspection, [
                introspect_active_access_token_for_each_client_type,
                revoked_refresh_token_is_dead,
                revoked_access_token_is_rejected_by_the_fhir_api,
                unknown_token_is_inactive_and_bad_credentials_are_invalid_client,
            ];
            transport, transport, [
                a_redirect_from_the_token_endpoint_is_refused_and_not_followed,
                discovery_follows_302_and_307_relative_and_absolute,
                discovery_follows_at_most_five_redirects,
                a_discovery_redirect_to_plain_http_elsewhere_is_refused,
                a_body_over_the_cap_is_body_too_large,
                a_400_oauth_error_from_the_token_endpoint_is_a_typed_oauth_error,
                a_500_with_html_is_an_http_error_after_three_attempts,
                plain_http_to_a_non_loopback_host_is_refused_unless_allowed,
                the_request_on_the_wire_is_exactly_what_the_core_produced,
                a_timeout_is_a_typed_transport_error_and_ends_the_flight,
                a_refused_connection_is_a_connect_transport_error,
                a_token_source_uses_the_callers_client_and_backs_off_after_a_timeout,
            ];
            observability, observability, [
                tracing_output_carries_no_secret,
                tracing_records_a_sign_span_without_the_assertion,
            ];
            faults, faults, [
                n01_discovery_behind_each_redirect_status_resolves_against_the_fhir_base,
                n01_metadata_fallback_behind_a_relative_redirect,
                n08_error_redirect_without_state_reports_the_reason_unverified,
                callback_warnings_reach_the_token_warnings,
                builder_retry_policy_governs_refresh_attempts,
            ];
            resource, resource, [
                middleware_replaces_a_revoked_token_and_sends_again_once,
                middleware_sends_again_at_most_once,
                middleware_never_sends_again_after_403_or_insufficient_scope,
                middleware_token_does_not_follow_a_redirect_to_another_origin,
            ];
            canary, canary, [
                canary_backend_services_token,
                canary_code_exchange,
                canary_refresh,
                canary_introspection_and_revocation,
            ];
            load, load, [
                many_callers_on_a_failing_endpoint_share_one_flight_and_its_error,
                retry_after_2_means_no_request_for_2_seconds,
                a_slow_renewal_in_the_skew_window_fails_no_caller,
                expires_in_0_is_one_request_per_backoff_period,
                a_timeout_under_many_callers_is_one_request_and_typed_for_all,
            ];
            sandbox_remote_sign, remote_sign, [
                remote_signer_backend_services_token_and_fhir_read,
                a_slow_remote_signer_does_not_hold_the_token_source_lock,
                remote_signer_app_launch_exchange_refresh_introspect_revoke,
                a_remote_signer_that_never_answers_times_out_at_its_deadline,
            ];
        }
    };
}

/// Expands the scenario list into test modules.
#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_tests {
    ($($module:ident, $source:ident, [$($name:ident),* $(,)?];)*) => {$(
        mod $module {
            $(
                #[test]
                fn $name() {
                    $crate::scenarios::$source::$name::<super::ScenarioDriver>();
                }
            )*
        }
    )*};
}

/// One `#[test]` per scenario for the driver `$driver` (a type implementing
/// [`Driver`](crate::driver::Driver)), in modules `sandbox_backend`, `sandbox_app_launch`,
/// `sandbox_id_token`, `sandbox_introspection`, `transport`, `canary` and `load`. Invoke it
/// once, at the top level of a test crate.
#[macro_export]
macro_rules! scenarios {
    ($driver:ty) => {
        /// The driver every scenario of this test binary runs against.
        type ScenarioDriver = $driver;
        $crate::__scenario_list!(__scenario_tests);
    };
}

// ---- Helpers shared by the scenarios ------------------------------------------------------

/// The wall clock.
pub fn now() -> UnixTime {
    UnixTime::from(std::time::SystemTime::now())
}

/// A fresh signing key.
///
/// # Panics
/// When key generation fails.
pub fn key(alg: JwsAlgorithm) -> SigningKey {
    SigningKey::generate(alg, None, &SystemEntropy).expect("generate a key")
}

/// A fresh ES384 key, shared.
pub fn es384_key() -> Arc<SigningKey> {
    Arc::new(key(JwsAlgorithm::Es384))
}

/// The sandbox's FHIR base.
pub fn sandbox_fhir_base() -> FhirBaseUrl {
    fhir_base()
}

/// A Backend Services token source for a sandbox client (`system/Patient.rs`, discovery from
/// the sandbox's FHIR base), built with the driver's defaults.
///
/// # Panics
/// When the driver refuses the configuration.
pub fn sandbox_auth<D: Driver>(client_id: &str, key: SigningKey) -> D::Auth {
    let config =
        BackendServicesConfig::new(ClientId::new(client_id), "system/Patient.rs", Arc::new(key))
            .with_fhir_base(sandbox_fhir_base());
    D::backend(config).expect("BackendServicesAuth::new")
}

/// `(status, error)` of an OAuth error.
///
/// # Panics
/// When `e` is not an OAuth error.
pub fn oauth_status_and_code(e: &Error) -> (Option<u16>, String) {
    let o = oauth(e).unwrap_or_else(|| panic!("expected an OAuth error, got {e:?}"));
    (o.status, o.error.clone())
}

/// The OAuth error inside `e`, if it is one.
pub fn oauth(e: &Error) -> Option<&OAuthError> {
    match e {
        Error::OAuth(o) => Some(o),
        _ => None,
    }
}

/// A standalone launch at the sandbox up to the callback URL (the browser played by
/// [`browser_until`](crate::browser_until)).
///
/// # Panics
/// When the launch fails.
pub fn standalone_callback<D: Driver>(
    http: &D::Http,
    app: &AppConfig,
) -> (PendingAuthorization, String) {
    let req = D::begin_launch(http, app, Launch::standalone(fhir_base())).expect("begin_launch");
    let cb = crate::browser_until(req.url.as_str(), REDIRECT, None);
    (req.pending, cb)
}

/// `GET Patient/123` at the sandbox with the client's `Authorization` header.
///
/// # Panics
/// When the client has no usable token.
pub fn read_patient<D: Driver>(client: &D::Client) -> (u16, String) {
    let header = D::client_authorization(client).expect("authorization");
    crate::fhir_get("Patient/123", header.secret())
}

/// The claims of a compact JWT, **unverified** (for looking at a `client_assertion`).
///
/// # Panics
/// When `jwt` is not a JWT with a JSON payload.
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The `jti` of the `client_assertion` in a token request's form fields.
///
/// # Panics
/// When there is no `client_assertion` or it has no `jti`.
pub fn assertion_jti(form: &[(String, String)]) -> String {
    let assertion = form
        .iter()
        .find(|(k, _)| k == "client_assertion")
        .map(|(_, v)| v.as_str())
        .expect("client_assertion");
    jwt_claims(assertion)["jti"]
        .as_str()
        .expect("jti")
        .to_owned()
}

#[cfg(test)]
mod tests {
    /// Every public generic scenario of every module is listed in `__scenario_list!`, so no
    /// scenario is written and silently never run.
    #[test]
    fn every_scenario_is_listed() {
        let list = include_str!("mod.rs");
        let list = &list[list.find("macro_rules! __scenario_list").unwrap()..];
        let list = &list[..list.find("macro_rules! __scenario_tests").unwrap()];
        let sources = [
            ("backend", include_str!("backend.rs")),
            ("app_launch", include_str!("app_launch.rs")),
            ("id_token", include_str!("id_token.rs")),
            ("introspection", include_str!("introspection.rs")),
            ("transport", include_str!("transport.rs")),
            ("observability", include_str!("observability.rs")),
            ("resource", include_str!("resource.rs")),
            ("faults", include_str!("faults.rs")),
            ("load", include_str!("load.rs")),
            ("canary", include_str!("canary.rs")),
            ("remote_sign", include_str!("remote_sign.rs")),
        ];
        let mut total = 0;
        for (module, source) in sources {
            for line in source.lines() {
                let Some(rest) = line.strip_prefix("pub fn ") else {
                    continue;
                };
                let Some((name, _)) = rest.split_once("<D: Driver>()") else {
                    continue;
                };
                total += 1;
                assert!(
                    list.contains(&format!("{name},")),
                    "scenario {module}::{name} is not in __scenario_list!"
                );
            }
        }
        // (A listed name without a function does not compile.)
        assert!(
            total >= 40,
            "only {total} scenarios found: is the pattern still right?"
        );
    }
}
