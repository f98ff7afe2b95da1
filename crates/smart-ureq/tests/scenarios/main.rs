//! The shared driver scenarios (`smart_testkit::scenarios`: Backend Services, App Launch,
//! `id_token`, introspection against the local sandbox; the transport policy against hostile
//! loopback servers), run against the blocking driver. The driver is described to them in
//! `harness.rs`.

mod harness;

smart_testkit::scenarios!(harness::Ureq);
