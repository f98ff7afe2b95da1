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
