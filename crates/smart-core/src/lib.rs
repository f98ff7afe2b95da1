//! # smart-core
//!
//! Sans-IO building blocks for **SMART App Launch v2** (STU 2.0–2.2) clients: discovery,
//! Backend Services (`client_credentials` with a signed `client_assertion`), the
//! authorization-code flow with PKCE, refresh, launch context and scopes.
//!
//! Nothing here opens a socket, starts a runtime or reads a clock. Each protocol step is a
//! [`Flow`](flow::Flow) that emits [`HttpRequest`](flow::HttpRequest)s and consumes
//! [`HttpResponse`](flow::HttpResponse)s; time arrives as a [`UnixTime`](time::UnixTime)
//! argument and randomness from an injected [`Entropy`](entropy::Entropy). The
//! `smart-ureq` (blocking) and `smart-reqwest` (async) crates drive these flows over HTTP.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod assertion;
pub mod backend;
pub mod client_auth;
pub mod discovery;
pub mod entropy;
pub mod error;
pub mod flow;
pub mod fuzzing;
pub mod id_token;
pub mod jwk;
pub mod launch;
pub mod pkce;
pub mod scope;
pub mod secret;
pub mod session;
pub mod time;
pub mod token;
pub mod types;

pub use error::Error;
pub use flow::{Action, Flow, HttpRequest, HttpResponse, Method};
pub use time::UnixTime;
pub use types::{ClientId, FhirBaseUrl};
