#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smart_core::fuzzing::oauth_error(data));
