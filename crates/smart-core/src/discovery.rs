//! `.well-known/smart-configuration` discovery (spec digest §2). (In progress.)

/// Fuzz entry point: parse arbitrary bytes as a smart-configuration; must never panic.
#[doc(hidden)]
pub fn fuzz_smart_configuration(_data: &[u8]) {}
