//! App Launch: launch input, authorization request, callback, code exchange, refresh. (In progress.)

/// Fuzz entry point: parse arbitrary bytes as a callback URL; must never panic.
#[doc(hidden)]
pub fn fuzz_callback_url(_data: &[u8]) {}
