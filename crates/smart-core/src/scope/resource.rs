//! FHIR resource scopes: [`ResourceScope`], its [`ResourceType`] and granular
//! [`SearchParam`]s.

use std::fmt;

use super::parse;
use super::{Interaction, Permissions, ScopeContext, ScopeSyntax, scope_error};
use crate::error::{Error, ScopeErrorKind};

/// The resource-type part of a resource scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// `*`: every resource type, now and in the future (the IG asks apps not to use it merely
    /// for convenience).
    Any,
    /// One FHIR resource type, case-sensitive PascalCase (`Observation`). Validated when a
    /// [`ResourceScope`] is built: an ASCII uppercase letter followed by ASCII letters/digits.
    Named(String),
}

impl ResourceType {
    /// `"*"` for [`ResourceType::Any`], else the type name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Any => "*",
            Self::Named(n) => n,
        }
    }

    /// Whether this covers the concrete resource type `name` (`*` covers every name; a named
    /// type covers only itself, compared case-sensitively).
    pub fn covers_name(&self, name: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Named(n) => n == name,
        }
    }

    /// Whether this covers every type `other` covers (`*` covers `*` and every name).
    pub fn covers(&self, other: &ResourceType) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (Self::Named(_), Self::Any) => false,
            (Self::Named(a), Self::Named(b)) => a == b,
        }
    }

    /// Whether some concrete type is covered by both.
    pub fn overlaps(&self, other: &ResourceType) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One granular-scope search parameter `name=value`, stored as the raw text that
/// appeared in the scope (percent-encoding untouched) so it round-trips byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SearchParam {
    name: String,
    value: String,
}

impl SearchParam {
    /// A parameter from raw `name` and `value` text.
    ///
    /// # Errors
    /// [`Error::Scope`] if either is empty, `name` contains `=`, either contains `&`, `?`
    /// (name only), whitespace, `"`, `\`, a non-ASCII or control byte, or a `%` not followed
    /// by two hex digits.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Result<Self, Error> {
        let (name, value) = (name.into(), value.into());
        let text = format!("{name}={value}");
        let eq = parse::check_param(&text, 0).map_err(|e| e.into_error(&text))?;
        if eq != name.len() {
            return Err(scope_error(
                &text,
                ScopeErrorKind::InvalidParameter,
                eq,
                "search parameter name contains `=`",
            ));
        }
        Ok(Self { name, value })
    }

    /// The raw parameter name, e.g. `category` or `code:in` (modifiers and chains are
    /// experimental).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw value exactly as written in the scope, e.g.
    /// `http://terminology.hl7.org/CodeSystem/observation-category|laboratory`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The value with percent-encoding decoded (invalid UTF-8 replaced by U+FFFD).
    pub fn decoded_value(&self) -> std::borrow::Cow<'_, str> {
        percent_encoding::percent_decode_str(&self.value).decode_utf8_lossy()
    }

    /// Whether a request parameter `name=value` satisfies this constraint: same name, and the
    /// same value after percent-decoding both sides. A comma-separated multi-value request
    /// (`a,b`) does not satisfy a single-value constraint (`a`).
    pub fn matches(&self, name: &str, value: &str) -> bool {
        if self.name != name {
            return false;
        }
        if self.value == value {
            return true;
        }
        if !self.value.contains('%') && !value.contains('%') {
            return false;
        }
        percent_encoding::percent_decode_str(value).decode_utf8_lossy() == self.decoded_value()
    }

    pub(crate) fn from_raw(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }
}

impl fmt::Display for SearchParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// A FHIR resource scope, `context/Type.perms[?params]` (SMART App Launch §"Scopes and Launch
/// Context", "FHIR Resource Scope Syntax").
///
/// Invariants (enforced by every constructor and the parser): permissions are non-empty; a
/// v1 scope has permissions `rs`, `cud` or `cruds` and no parameters; a named type is valid
/// PascalCase.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceScope {
    context: ScopeContext,
    resource_type: ResourceType,
    permissions: Permissions,
    syntax: ScopeSyntax,
    params: Vec<SearchParam>,
}

impl ResourceScope {
    /// A v2 scope without parameters.
    ///
    /// # Errors
    /// [`Error::Scope`] if `permissions` is empty (the grammar allows an empty permission string,
    /// but no example uses it and servers may reject it, so building refuses it) or a named type is
    /// not `[A-Z][A-Za-z0-9]*`.
    pub fn new(
        context: ScopeContext,
        resource_type: ResourceType,
        permissions: Permissions,
    ) -> Result<Self, Error> {
        if let ResourceType::Named(n) = &resource_type {
            parse::check_type_name(n).map_err(|e| e.into_error(n))?;
        }
        if permissions.is_empty() {
            return Err(scope_error(
                &format!("{context}/{resource_type}."),
                ScopeErrorKind::MissingPermissions,
                context.as_str().len() + 1 + resource_type.as_str().len() + 1,
                "a resource scope needs at least one of the permissions c, r, u, d, s",
            ));
        }
        Ok(Self {
            context,
            resource_type,
            permissions,
            syntax: ScopeSyntax::V2,
            params: Vec::new(),
        })
    }

    /// Append granular search parameters (raw text, order kept), making this a granular v2
    /// scope. A v1 scope is converted to v2 first.
    ///
    /// # Errors
    /// [`Error::Scope`] as for [`SearchParam::new`].
    pub fn with_params<N: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, Error> {
        self.syntax = ScopeSyntax::V2;
        for (n, v) in params {
            self.params.push(SearchParam::new(n, v)?);
        }
        Ok(self)
    }

    pub(crate) fn from_parts(
        context: ScopeContext,
        resource_type: ResourceType,
        permissions: Permissions,
        syntax: ScopeSyntax,
        params: Vec<SearchParam>,
    ) -> Self {
        Self {
            context,
            resource_type,
            permissions,
            syntax,
            params,
        }
    }

    /// Union `more` into the permissions (v2 only: callers keep v1 scopes apart).
    pub(crate) fn add_permissions(&mut self, more: Permissions) {
        self.permissions = self.permissions.union(more);
    }

    /// The context (`patient`, `user`, `system`).
    pub fn context(&self) -> ScopeContext {
        self.context
    }

    /// The resource type or `*`.
    pub fn resource_type(&self) -> &ResourceType {
        &self.resource_type
    }

    /// The granted interactions (v1 keywords already mapped: `.read` = {read, search}).
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    /// Which syntax the scope was written in.
    pub fn syntax(&self) -> ScopeSyntax {
        self.syntax
    }

    /// Granular search parameters in their original order; empty for an unconditional scope.
    pub fn params(&self) -> &[SearchParam] {
        &self.params
    }

    /// Whether the scope carries `?param=value` constraints.
    pub fn is_granular(&self) -> bool {
        !self.params.is_empty()
    }

    /// The v2 form: same meaning, letters instead of v1 keywords (`.read` ⇒ `.rs`, `.write`
    /// ⇒ `.cud`, `.*` ⇒ `.cruds`, as the IG maps them). A v2 scope is returned unchanged.
    pub fn to_v2(&self) -> ResourceScope {
        let mut s = self.clone();
        s.syntax = ScopeSyntax::V2;
        s
    }

    /// The v1 form (`.rs` ⇒ `.read`, `.cud` ⇒ `.write`, `.cruds` ⇒ `.*`), or `None` when v1
    /// cannot say the same thing: other letter sets (e.g. `.r`, `.cu`) and granular scopes.
    pub fn to_v1(&self) -> Option<ResourceScope> {
        if self.is_granular() || self.permissions.v1_keyword().is_none() {
            return None;
        }
        let mut s = self.clone();
        s.syntax = ScopeSyntax::V1;
        Some(s)
    }

    /// Whether this scope alone grants `interaction` on `resource_type` in `context`
    /// *unconditionally or under its parameters* (parameters are not checked here; see
    /// [`ScopeSet::permits`](super::ScopeSet::permits)).
    pub fn applies_to(
        &self,
        context: ScopeContext,
        resource_type: &str,
        interaction: Interaction,
    ) -> bool {
        self.context == context
            && self.resource_type.covers_name(resource_type)
            && self.permissions.contains(interaction)
    }

    /// Whether everything `other` grants is also granted by `self` alone: same context, a
    /// type covering `other`'s, a superset of permissions, and `self`'s parameters all
    /// present in `other`'s (a filter is implied by a stricter one). Syntax is ignored.
    pub fn covers(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && self.resource_type.covers(&other.resource_type)
            && other.permissions.is_subset(self.permissions)
            && params_implied(&self.params, &other.params)
    }
}

/// Whether every constraint in `needed` is present in `have`.
pub(crate) fn params_implied(needed: &[SearchParam], have: &[SearchParam]) -> bool {
    needed
        .iter()
        .all(|n| have.iter().any(|h| n.matches(&h.name, &h.value)))
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.", self.context, self.resource_type)?;
        match (self.syntax, self.permissions.v1_keyword()) {
            (ScopeSyntax::V1, Some(k)) => f.write_str(k)?,
            _ => write!(f, "{}", self.permissions)?,
        }
        for (i, p) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
