//! SMART scopes: build, parse, normalise, compare (spec digest §5). (In progress.)

/// Fuzz entry point: parse arbitrary bytes as a scope string; must never panic.
#[doc(hidden)]
pub fn fuzz_scope(_data: &[u8]) {}
