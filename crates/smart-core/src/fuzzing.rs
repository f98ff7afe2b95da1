//! Entry points shared by the `fuzz/` targets and the corpus-replay test. Not a stable API.
#![doc(hidden)]

pub use crate::discovery::fuzz_smart_configuration as smart_configuration;
pub use crate::launch::fuzz_callback_url as callback_url;
pub use crate::scope::fuzz_scope as scope;
pub use crate::token::fuzz_launch_context as launch_context;
pub use crate::token::fuzz_oauth_error as oauth_error;
pub use crate::token::fuzz_token_response as token_response;

/// A fuzz entry point: takes arbitrary bytes, must never panic.
pub type Target = fn(&[u8]);

/// Every target by name, as the fuzz crate and `tests/fuzz_corpus.rs` see them.
pub const TARGETS: &[(&str, Target)] = &[
    ("smart_configuration", smart_configuration),
    ("token_response", token_response),
    ("oauth_error", oauth_error),
    ("launch_context", launch_context),
    ("callback_url", callback_url),
    ("scope", scope),
];
