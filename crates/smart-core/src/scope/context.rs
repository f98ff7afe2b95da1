//! The access context of a resource scope: [`ScopeContext`].

use std::fmt;

/// The access context of a resource scope: the part before `/`.
///
/// The three contexts are distinct: a `user/` grant never implies a `patient/` one and vice
/// versa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeContext {
    /// `patient/`: data about the patient in context (the server establishes that patient).
    Patient,
    /// `user/`: data the signed-in user may access.
    User,
    /// `system/`: data the client itself may access (Backend Services).
    System,
}

impl ScopeContext {
    /// All three contexts, in spec order.
    pub const ALL: [ScopeContext; 3] = [Self::Patient, Self::User, Self::System];

    /// The lowercase prefix as written in a scope: `patient`, `user` or `system`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::User => "user",
            Self::System => "system",
        }
    }

    /// Parse the exact lowercase prefix (`"patient"`, `"user"`, `"system"`); the spec makes
    /// these case-sensitive, so `"Patient"` is `None`.
    pub fn from_prefix(s: &str) -> Option<Self> {
        match s {
            "patient" => Some(Self::Patient),
            "user" => Some(Self::User),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

impl fmt::Display for ScopeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
