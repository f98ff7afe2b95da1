//! # smart-ureq
//!
//! A blocking driver for the [`smart_core`] SMART on FHIR state machines, built on
//! [`ureq`](https://docs.rs/ureq/3) 3 with rustls.
//!
//! - [`HttpClient`] sends one [`HttpRequest`](smart_core::HttpRequest) and runs any
//!   [`Flow`](smart_core::Flow) to completion ([`HttpClient::run`]).
//! - [`BackendServicesAuth`] is a ready-to-use SMART Backend Services token source: share it
//!   between threads, call [`authorization`](BackendServicesAuth::authorization) before each
//!   FHIR request, and [`on_unauthorized`](BackendServicesAuth::on_unauthorized) when the
//!   FHIR server answers 401.
//!
//! The client never follows redirects (a redirected token request could leak an assertion to
//! another host), times out after 30 s by default, caps response bodies at
//! [`MAX_RESPONSE_BYTES`](smart_core::http::MAX_RESPONSE_BYTES), hands 4xx/5xx answers to the
//! state machine (so OAuth error bodies become typed errors), and refuses plain `http://`
//! except to loopback hosts unless [`HttpClientBuilder::allow_insecure_http`] is set.
//!
//! ```no_run
//! use std::sync::Arc;
//! use smart_core::backend::BackendServicesConfig;
//! use smart_core::jwk::SigningKey;
//! use smart_core::{ClientId, FhirBaseUrl};
//! use smart_ureq::BackendServicesAuth;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::from_pem(&std::fs::read_to_string("key.pem")?)?;
//! let config = BackendServicesConfig::new(ClientId::new("my-client"), "system/Patient.rs", Arc::new(key))
//!     .with_fhir_base(FhirBaseUrl::new("https://ehr.example.org/fhir")?);
//! let auth = BackendServicesAuth::new(config)?;
//! let header = auth.authorization()?; // "Bearer …", cached until 30 s before expiry
//! # let _ = header;
//! # Ok(()) }
//! ```
//!
//! ## Keys in a KMS or HSM
//!
//! A key that never leaves a KMS or HSM signs through a
//! [`RemoteSigner`](smart_core::assertion::RemoteSigner), whose `sign` returns a future: pass
//! it to [`BackendServicesConfig::new_with_remote_signer`](smart_core::backend::BackendServicesConfig::new_with_remote_signer)
//! (Backend Services) or [`ClientAuth::asymmetric_remote`](smart_core::client_auth::ClientAuth::asymmetric_remote)
//! (App Launch, introspection, revocation). The flows fix each assertion's claims and ask the
//! driver to sign ([`Action::Sign`](smart_core::Action::Sign)); this driver runs the future to
//! completion **on the calling thread**, with a small built-in executor and without holding
//! the token source's lock, so other threads keep using a still-valid token meanwhile. It
//! stops waiting at [`SignRequest::sign_by`](smart_core::SignRequest::sign_by) (180 s with the
//! default assertion lifetime) with an [`Error::Key`]. The future is
//! polled outside any async runtime: a signer whose client needs one (a tokio-based SDK, for
//! example) must bring its own — spawn the call on a runtime it owns and return a future that
//! waits for the answer (a `tokio::sync::oneshot` receiver can be awaited anywhere).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
compile_error!(
    "smart-ureq needs a TLS backend: enable its `rustls` (default) or `native-tls` feature"
);
mod app;
mod backend;
mod client;
mod driver;
pub mod middleware;
mod sign;
mod source;

pub use app::{
    RotationHook, SmartClient, SmartClientBuilder, begin_launch, complete_launch, discover,
    introspect, refresh_token, revoke,
};
pub use backend::BackendServicesAuth;
pub use client::{HttpClient, HttpClientBuilder};
pub use smart_core;
pub use smart_core::Error;
pub use smart_core::store::{InMemoryTokenStore, TokenStore};
pub use source::StoreEventHook;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The crate's README (the crates.io page), its examples compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
