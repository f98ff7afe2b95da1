//! # smart-core
//!
//! Sans-IO building blocks for **SMART App Launch v2** (STU 2.0–2.2) clients: discovery,
//! Backend Services (`client_credentials` with a signed `client_assertion`), the
//! authorization-code flow with PKCE, refresh, launch context and scopes.
//!
//! Nothing here opens a socket, starts a runtime or reads a clock. Each protocol step is a
//! [`Flow`] that emits [`HttpRequest`]s and consumes [`HttpResponse`]s; time arrives as a
//! [`UnixTime`] argument (seconds since the epoch) and randomness from an injected
//! [`Entropy`](entropy::Entropy). The `smart-ureq` (blocking) and `smart-reqwest` (async)
//! crates drive these flows over HTTP; tests drive them by hand.
//!
//! **Just want a token?** Use a driver crate, `smart-ureq` (blocking) or `smart-reqwest`
//! (async): its `BackendServicesAuth` for Backend Services, and its `begin_launch` /
//! `complete_launch` / `SmartClient` for App Launch.
//! This crate is for driving the protocol yourself (another HTTP stack, WASM, tests).
//!
//! ## Contents
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`discovery`] | `.well-known/smart-configuration` (+ CapabilityStatement fallback) | IG "Conformance" |
//! | [`backend`] | Backend Services flow and token cache | IG "Backend Services" |
//! | [`launch`] | EHR/standalone launch, authorize URL, callback, code exchange, refresh | IG "App Launch" |
//! | [`session`] | a signed-in App Launch session with automatic refresh | IG "App Launch" §refresh |
//! | [`assertion`], [`jwk`] | RFC 7523 `client_assertion` (ES384/RS384), keys, JWKS | IG "Client Authentication: Asymmetric" |
//! | [`sign`] | signing by a remote (KMS/HSM) signer: `Action::Sign` and its deadline | IG "Client Authentication: Asymmetric" |
//! | [`client_auth`] | public / HTTP Basic / `private_key_jwt` token-endpoint authentication | IG client types |
//! | [`pkce`] | RFC 7636 S256 `code_verifier`/`code_challenge`, `state` | IG "App Launch" §PKCE |
//! | [`token`] | token responses, OAuth errors, launch context (`patient`, `fhirContext`…) | IG "Scopes and Launch Context" |
//! | [`id_token`] | `id_token` verification (JWKS, RS256/RS384/ES256/ES384, claims) and `fhirUser` | IG §"identity data" |
//! | [`scope`] | the scope language: parse, build, compare, explain | IG "Scopes" |
//! | [`introspection`] | RFC 7662 token introspection (client or bearer auth) and RFC 7009 revocation | IG "Token Introspection" |
//!
//! ## Driving a flow by hand
//!
//! ```
//! use std::sync::Arc;
//! use smart_core::backend::{BackendServices, BackendServicesConfig};
//! use smart_core::entropy::DeterministicEntropy;
//! use smart_core::jwk::SigningKey;
//! use smart_core::assertion::JwsAlgorithm;
//! use smart_core::{Action, ClientId, FhirBaseUrl, Flow, HttpResponse, UnixTime};
//!
//! # fn main() -> Result<(), smart_core::Error> {
//! let entropy = Arc::new(DeterministicEntropy::new(7)); // tests only: predictable!
//! let key = SigningKey::generate(JwsAlgorithm::Es384, Some("k1"), entropy.as_ref())?;
//! let config = BackendServicesConfig::new(ClientId::new("app"), "system/Patient.rs", Arc::new(key))
//!     .with_fhir_base(FhirBaseUrl::new("https://ehr.example.org/fhir")?);
//! let mut flow = BackendServices::new(config, entropy)?;
//! let now = UnixTime::from_secs(1_700_000_000);
//!
//! // 1. Discovery.
//! let Action::Send(req) = flow.poll(now)? else { unreachable!() };
//! assert_eq!(req.url.as_str(), "https://ehr.example.org/fhir/.well-known/smart-configuration");
//! flow.handle_response(HttpResponse::new(200, r#"{"token_endpoint":"https://ehr.example.org/token",
//!     "grant_types_supported":["client_credentials"],"capabilities":[],
//!     "code_challenge_methods_supported":["S256"]}"#), now)?;
//!
//! // 2. The token request, with a freshly signed client_assertion.
//! let Action::Send(req) = flow.poll(now)? else { unreachable!() };
//! assert_eq!(req.url.as_str(), "https://ehr.example.org/token");
//! flow.handle_response(HttpResponse::new(200,
//!     r#"{"access_token":"t0k3n","token_type":"bearer","expires_in":300,"scope":"system/Patient.rs"}"#), now)?;
//!
//! // 3. Cached until 30 s before expiry.
//! let Action::Ready(token) = flow.poll(now.plus_secs(60))? else { unreachable!() };
//! assert_eq!(token.access_token.secret(), "t0k3n");
//! # Ok(()) }
//! ```
//!
//! ## Security
//!
//! - Secrets ([`secret`]) print as `Name([redacted])`; errors never carry bodies, tokens,
//!   keys, codes or verifiers.
//! - Drivers must not follow redirects and must refuse plain `http://` except to loopback
//!   ([`http::check_url_security`]).
//! - PKCE is always S256; `state` and `jti` carry 256 random bits.
//! - `id_token` claims are either verified ([`id_token::IdTokenVerifier`]: signature against
//!   the issuer's JWKS, `iss`, `aud`, `exp`) or visibly not
//!   ([`id_token::UnverifiedIdTokenClaims`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod assertion;
pub mod backend;
pub mod client_auth;
pub mod context;
pub mod discovery;
pub mod entropy;
pub mod error;
pub mod flow;
pub mod fuzzing;
pub mod http;
pub mod id_token;
pub mod introspection;
pub mod jwk;
pub mod launch;
mod lenient;
pub mod oauth_error;
pub mod oidc;
pub mod pkce;
pub mod redact;
pub mod refresh;
mod request;
pub mod resource;
pub mod retry;
pub mod scope;
pub mod secret;
pub mod session;
pub mod sign;
pub mod single;
pub mod source;
pub mod store;
pub mod time;
pub mod token;
pub mod trace;
pub mod types;

pub use error::Error;
pub use flow::{Action, Flow, HttpRequest, HttpResponse, Method, SignRequest};
pub use source::CachedToken;
pub use time::UnixTime;
pub use types::{ClientId, Endpoint, FhirBaseUrl, FhirUser};
/// The `url` crate, whose `Url` the API takes and returns.
pub use url;

/// The crate's README (the crates.io page), its examples compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
