//! # smart-redis
//!
//! A Redis token store for the SMART on FHIR clients of `smart-ureq` (blocking) and
//! `smart-reqwest` (async, with the `tokio` feature): every process of a fleet shares one
//! token per (token endpoint, `client_id`, scope), and one App Launch session can be shared
//! between processes without two of them spending the same refresh token.
//!
//! - Entries are stored with a TTL equal to the token's remaining lifetime (`SET … PX`), in
//!   the format of `smart_store::EntryCodec`, optionally encrypted at rest.
//! - **Cross-process single flight**: the store implements leases (`SET lease NX PX` with a
//!   random owner, released by an atomic compare-and-delete script). However many processes
//!   find the cache cold, one fetches and the others wait for the token it stores (polling
//!   every 100 ms, for at most the lease time plus 1 s, then they fetch themselves). A holder
//!   that dies loses the lease when it expires (10 s by default).
//! - **Degrades, never blocks**: when Redis is unreachable an operation fails with
//!   `StoreErrorKind::Unavailable` within the connection timeout; token sources then go on in
//!   process (single flight within each process), report a `StoreEvent::Degraded`, and try
//!   Redis again after 30 s.
//!
//! ```no_run
//! use std::sync::Arc;
//! use smart_redis::RedisTokenStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(RedisTokenStore::open("redis://127.0.0.1:6379/0")?);
//! # let config: smart_core::backend::BackendServicesConfig = unimplemented!();
//! let auth = smart_ureq::BackendServicesAuth::new(config)?.with_store(store, None);
//! # let _ = auth;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod store;

pub use store::RedisTokenStore;

/// The guide page "Sharing tokens across processes", its examples compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/sharing-tokens.md")]
struct SharingTokensGuide;

/// The crate's README (the crates.io page), its examples compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
