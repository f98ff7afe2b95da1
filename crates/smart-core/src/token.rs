//! Token-endpoint responses, OAuth error bodies and launch context (spec digest §3.6). (In progress.)

/// Fuzz entry point: parse arbitrary bytes as a token response; must never panic.
#[doc(hidden)]
pub fn fuzz_token_response(_data: &[u8]) {}

/// Fuzz entry point: parse arbitrary bytes as an OAuth error body; must never panic.
#[doc(hidden)]
pub fn fuzz_oauth_error(_data: &[u8]) {}

/// Fuzz entry point: parse arbitrary bytes as launch context members; must never panic.
#[doc(hidden)]
pub fn fuzz_launch_context(_data: &[u8]) {}
