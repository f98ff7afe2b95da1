//! # smart-reqwest
//!
//! An async driver for the [`smart_core`] SMART on FHIR state machines, built on
//! [`reqwest`](https://docs.rs/reqwest/0.13) (rustls) and tokio.
//!
//! - [`HttpClient`] sends one [`HttpRequest`](smart_core::HttpRequest) and runs any
//!   [`Flow`](smart_core::Flow) to completion ([`HttpClient::run`]).
//! - [`BackendServicesAuth`] is a ready-to-use SMART Backend Services token source: share it
//!   (in an `Arc`) between tasks, call [`authorization`](BackendServicesAuth::authorization)
//!   before each FHIR request, and [`on_unauthorized`](BackendServicesAuth::on_unauthorized)
//!   when the FHIR server answers 401.
//!
//! The client never follows redirects, times out after 30 s by default, caps response bodies
//! at [`MAX_RESPONSE_BYTES`](smart_core::http::MAX_RESPONSE_BYTES), hands 4xx/5xx answers to
//! the state machine (so OAuth error bodies become typed errors), and refuses plain `http://`
//! except to loopback hosts unless [`HttpClientBuilder::allow_insecure_http`] is set.
//!
//! ```no_run
//! use std::sync::Arc;
//! use smart_core::backend::BackendServicesConfig;
//! use smart_core::jwk::SigningKey;
//! use smart_core::{ClientId, FhirBaseUrl};
//! use smart_reqwest::BackendServicesAuth;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::from_pem(&std::fs::read_to_string("key.pem")?)?;
//! let config = BackendServicesConfig::new(ClientId::new("my-client"), "system/Patient.rs", Arc::new(key))
//!     .with_fhir_base(FhirBaseUrl::new("https://ehr.example.org/fhir")?);
//! let auth = Arc::new(BackendServicesAuth::new(config)?);
//! let header = auth.authorization().await?; // "Bearer …", cached until 30 s before expiry
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
//! driver to sign ([`Action::Sign`](smart_core::Action::Sign)); this driver awaits the future
//! on the calling task — never blocking the runtime, never holding the token source's lock,
//! so other tasks keep using a still-valid token meanwhile — and stops waiting at
//! [`SignRequest::sign_by`](smart_core::SignRequest::sign_by) (180 s with the default
//! assertion lifetime) with an [`Error::Key`]. The
//! `remote_signer` example simulates a KMS with a task that owns the key.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
compile_error!(
    "smart-reqwest needs a TLS backend: enable its `rustls` (default) or `native-tls` feature"
);
mod app;
mod backend;
mod client;
mod driver;
pub mod middleware;
mod source;
mod store;

pub use app::{
    RotationHook, SmartClient, SmartClientBuilder, begin_launch, complete_launch, discover,
    introspect, refresh_token, revoke,
};
pub use backend::BackendServicesAuth;
pub use client::{HttpClient, HttpClientBuilder};
pub use smart_core;
pub use smart_core::Error;
pub use smart_core::store::InMemoryTokenStore;
pub use smart_core::store::{AsyncTokenStore, StoreFuture};
pub use source::StoreEventHook;

#[cfg(doctest)]
mod guide;

/// The crate's README (the crates.io page), its examples compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
