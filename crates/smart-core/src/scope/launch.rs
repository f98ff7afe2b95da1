//! Launch-context scopes: [`LaunchScope`].

use std::fmt;

use super::parse;
use super::scope_error;
use crate::error::{Error, ScopeErrorKind};

/// A launch-context scope: `launch`, `launch/<type>` or `launch/<type>?role=<uri>`
/// (SMART App Launch §"Scopes and Launch Context", "Scopes for requesting context data").
///
/// The context type is kept exactly as given (the IG writes it lowercase: `launch/patient`,
/// `launch/imagingstudy`); the role is raw text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaunchScope {
    context_type: Option<String>,
    role: Option<String>,
}

impl LaunchScope {
    /// Bare `launch`: EHR launch, asks for the context the EHR established.
    pub const EHR: LaunchScope = LaunchScope {
        context_type: None,
        role: None,
    };

    /// `launch/<context_type>`, e.g. `patient`, `encounter`, `imagingstudy`.
    ///
    /// # Errors
    /// [`Error::Scope`] if `context_type` is empty or not ASCII letters/digits.
    pub fn context(context_type: impl Into<String>) -> Result<Self, Error> {
        let t = context_type.into();
        parse::check_launch_type(&t).map_err(|e| e.into_error(&t))?;
        Ok(Self {
            context_type: Some(t),
            role: None,
        })
    }

    /// Add `?role=<role>` (2.2.0, experimental; at most one role per scope).
    ///
    /// # Errors
    /// [`Error::Scope`] if this is bare `launch` (a role needs a type), or `role` is empty or
    /// contains `&`, whitespace, `"`, `\`, non-ASCII/control bytes or a bad `%` escape.
    pub fn with_role(mut self, role: impl Into<String>) -> Result<Self, Error> {
        let role = role.into();
        if self.context_type.is_none() {
            return Err(scope_error(
                "launch",
                ScopeErrorKind::InvalidLaunch,
                6,
                "a role needs a context type: launch/<type>?role=<uri>",
            ));
        }
        parse::check_role_value(&role, 0).map_err(|e| e.into_error(&role))?;
        self.role = Some(role);
        Ok(self)
    }

    pub(crate) fn from_parts(context_type: Option<String>, role: Option<String>) -> Self {
        Self { context_type, role }
    }

    /// The requested context type (`patient`, `encounter`, …); `None` for bare `launch`.
    pub fn context_type(&self) -> Option<&str> {
        self.context_type.as_deref()
    }

    /// The requested role URI, if any.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Whether this is bare `launch` (EHR launch).
    pub fn is_ehr_launch(&self) -> bool {
        self.context_type.is_none()
    }
}

impl fmt::Display for LaunchScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("launch")?;
        if let Some(t) = &self.context_type {
            write!(f, "/{t}")?;
        }
        if let Some(r) = &self.role {
            write!(f, "?role={r}")?;
        }
        Ok(())
    }
}
