//! The shared driver scenarios (`smart_testkit::scenarios`: Backend Services, App Launch,
//! `id_token`, introspection against the local sandbox; the transport policy against hostile
//! loopback servers), run against the async driver. The driver is described to them in
//! `harness.rs`; `async_only.rs` holds what only the async driver has (a call dropped in
//! flight, an async token store), `async_sign.rs` a remote signer awaited on a
//! current-thread runtime.

mod async_only;
mod async_sign;
mod harness;

smart_testkit::scenarios!(harness::Reqwest);
