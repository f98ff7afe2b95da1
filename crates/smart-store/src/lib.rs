//! # smart-store
//!
//! Durable token stores for the SMART on FHIR clients of `smart-ureq` (blocking) and
//! `smart-reqwest` (async): [`FileTokenStore`], one file per key in a private directory,
//! written atomically under a lock, optionally encrypted at rest with an [`EncryptionKey`].
//! It implements both `smart_core::store::TokenStore` and `AsyncTokenStore`, so either
//! driver's token sources (and the `smart` command-line tool) can use it.
//!
//! For a fleet of processes on several hosts, use the Redis store of `smart-redis`; a file
//! store coordinates the processes of one host.
//!
//! ```
//! use smart_core::store::TokenStore;
//! use smart_store::{EncryptionKey, FileTokenStore};
//!
//! # fn main() -> Result<(), smart_core::error::StoreError> {
//! # let dir = std::env::temp_dir().join(format!("smart-store-doc-{}", std::process::id()));
//! let key = EncryptionKey::generate(smart_core::entropy::default_entropy().as_ref())?;
//! let store = FileTokenStore::new(&dir)?.encrypted(key);
//! assert!(store.get("smart-bs:nothing-yet")?.is_none());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod file;
mod seal;

pub use file::FileTokenStore;
pub use seal::{EncryptionKey, EntryCodec, FORMAT};

/// The crate's README (the crates.io page), its examples compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;
