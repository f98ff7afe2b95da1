//! SMART scopes: parse, build, normalise, compare and explain (SMART App Launch
//! §"Scopes and Launch Context").
//!
//! * [`Scope`] is one scope token, parsed into a typed value. [`ScopeSet`] is an ordered,
//!   de-duplicated list of them, as carried by the space-separated `scope` parameter.
//! * Parsing comes in two modes ([`ParseMode`]): **strict** for what this library builds or is
//!   configured with, **lenient** for what a server grants (servers may return v1 forms, echoed
//!   context scopes and extension scopes). Lenient parsing never fails on a scope list; anything it
//!   cannot type is kept as an opaque [`Scope::Other`] together with a [`ScopeWarning`].
//! * `Display` writes the canonical form and `parse(display(x)) == x` for every value.
//!   Granular parameters are kept as raw text, so they round-trip byte for byte.
//! * Builders: [`resource_scope`], [`launch_scope`], [`OPENID`], [`FHIR_USER`], [`OFFLINE_ACCESS`],
//!   [`ONLINE_ACCESS`], [`LAUNCH`].
//! * [`ScopeSet::permits`] answers "may I do this?" without ever claiming more than was
//!   granted; [`diff`] compares a request with a grant; [`explain`] renders a scope
//!   in plain words.
//!
//! ```
//! use smart_core::scope::{Interaction, Permit, ScopeContext, ScopeSet};
//!
//! let granted: ScopeSet = "launch/patient openid patient/Observation.rs".parse()?;
//! assert_eq!(
//!     granted.permits(ScopeContext::Patient, "Observation", Interaction::Search),
//!     Permit::Granted
//! );
//! assert_eq!(
//!     granted.permits(ScopeContext::Patient, "Condition", Interaction::Read),
//!     Permit::Denied
//! );
//! # Ok::<(), smart_core::Error>(())
//! ```

mod build;
mod context;
mod diff;
mod explain;
mod fuzz;
mod index;
mod launch;
mod parse;
mod permissions;
mod resource;
mod set;
mod token;

pub use build::{
    FHIR_USER, IntoPermissions, LAUNCH, OFFLINE_ACCESS, ONLINE_ACCESS, OPENID, PROFILE,
    launch_scope, resource_scope,
};
pub use context::ScopeContext;
pub use diff::{Narrowed, ScopeDiff, diff};
pub use explain::{Explanation, SetExplanation, explain};
#[doc(hidden)]
pub use fuzz::fuzz_scope;
pub use launch::LaunchScope;
pub use parse::{ParseMode, ScopeWarning, ScopeWarningKind};
pub use permissions::{Interaction, Permissions, ScopeSyntax};
pub(crate) use resource::params_implied;
pub use resource::{ResourceScope, ResourceType, SearchParam};
pub use set::{Permit, ScopeSet};
pub use token::{OIDC_SCOPE_URI_PREFIX, OpaqueScope, SMART_SCOPE_URI_PREFIX, Scope};

use crate::error::{Error, ScopeError, ScopeErrorKind};

/// Build an [`Error::Scope`] for `scope` with a problem of `kind` at byte `position`.
pub(crate) fn scope_error(
    scope: &str,
    kind: ScopeErrorKind,
    position: usize,
    message: impl Into<String>,
) -> Error {
    Error::Scope(ScopeError {
        scope: scope.to_owned(),
        position,
        kind,
        message: message.into(),
    })
}
