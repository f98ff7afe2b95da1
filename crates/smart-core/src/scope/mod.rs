//! SMART scopes: parse, build, normalise, compare and explain (SMART App Launch
//! §"Scopes and Launch Context"; spec digest §6, requirements SCOPE-01..SCOPE-09, CTX-04,
//! RESP-02, AUTHZ-04).
//!
//! * [`Scope`] is one scope token, parsed into a typed value. [`ScopeSet`] is an ordered,
//!   de-duplicated list of them, as carried by the space-separated `scope` parameter.
//! * Parsing comes in two modes ([`ParseMode`]): **strict** for what this library builds or
//!   is configured with, **lenient** for what a server grants (spec digest §6.3: "validate
//!   what it builds strictly and parse what it receives leniently"). Lenient parsing never
//!   fails on a scope list; anything it cannot type is kept as an opaque [`Scope::Other`]
//!   together with a [`ScopeWarning`].
//! * `Display` writes the canonical form and `parse(display(x)) == x` for every value.
//!   Granular parameters are kept as raw text, so they round-trip byte for byte.
//! * Builders mirror the TypeScript seed: [`resource_scope`], [`launch_scope`], [`OPENID`],
//!   [`FHIR_USER`], [`OFFLINE_ACCESS`], [`ONLINE_ACCESS`], [`LAUNCH`].
//! * [`ScopeSet::permits`] answers "may I do this?" without ever claiming more than was
//!   granted; [`diff`] compares a request with a grant (RESP-02); [`explain`] renders a scope
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
mod diff;
mod explain;
mod parse;
mod set;

use std::fmt;

pub use build::{
    FHIR_USER, IntoPermissions, LAUNCH, OFFLINE_ACCESS, ONLINE_ACCESS, OPENID, PROFILE,
    launch_scope, resource_scope,
};
pub use diff::{Narrowed, ScopeDiff, diff};
pub use explain::{Explanation, SetExplanation, explain};
pub use parse::{ParseMode, ScopeWarning, ScopeWarningKind};
pub use set::{Permit, ScopeSet};

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

/// The access context of a resource scope: the part before `/` (SCOPE-01).
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

/// The resource-type part of a resource scope (SCOPE-01).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// `*`: every resource type, now and in the future (SCOPE-05: avoid for convenience).
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

/// One FHIR interaction class named by a v2 permission letter (SCOPE-02).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interaction {
    /// `c`: type-level create.
    Create,
    /// `r`: instance read, vread, instance history.
    Read,
    /// `u`: update and patch (including update-as-create).
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: type search, type history, system search, system history.
    Search,
}

impl Interaction {
    /// All five, in canonical letter order `c r u d s`.
    pub const ALL: [Interaction; 5] = [
        Self::Create,
        Self::Read,
        Self::Update,
        Self::Delete,
        Self::Search,
    ];

    /// The v2 permission letter: `c`, `r`, `u`, `d` or `s`.
    pub const fn letter(self) -> char {
        match self {
            Self::Create => 'c',
            Self::Read => 'r',
            Self::Update => 'u',
            Self::Delete => 'd',
            Self::Search => 's',
        }
    }

    /// The interaction for a permission letter, `None` for anything but `c r u d s`.
    pub const fn from_letter(c: char) -> Option<Self> {
        match c {
            'c' => Some(Self::Create),
            'r' => Some(Self::Read),
            'u' => Some(Self::Update),
            'd' => Some(Self::Delete),
            's' => Some(Self::Search),
            _ => None,
        }
    }

    /// A lowercase English verb: `create`, `read`, `update`, `delete`, `search`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Search => "search",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Create => 1,
            Self::Read => 2,
            Self::Update => 4,
            Self::Delete => 8,
            Self::Search => 16,
        }
    }
}

impl fmt::Display for Interaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Interaction`]s (the `cruds` letters, SCOPE-02). `Display` writes the letters in
/// canonical order `c r u d s`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Permissions(u8);

impl Permissions {
    /// No interaction (invalid in a scope; the builder rejects it).
    pub const NONE: Permissions = Permissions(0);
    /// All five interactions: `cruds` (v1 `.*`).
    pub const ALL: Permissions = Permissions(31);
    /// `rs`, the v2 equivalent of v1 `.read` (SCOPE-06).
    pub const READ_SEARCH: Permissions = Permissions(2 | 16);
    /// `cud`, the v2 equivalent of v1 `.write` (SCOPE-06).
    pub const CREATE_UPDATE_DELETE: Permissions = Permissions(1 | 4 | 8);

    /// The empty set.
    pub const fn empty() -> Self {
        Self::NONE
    }

    /// A set holding exactly `i`.
    pub const fn only(i: Interaction) -> Self {
        Self(i.bit())
    }

    /// Whether `i` is in the set.
    pub const fn contains(self, i: Interaction) -> bool {
        self.0 & i.bit() != 0
    }

    /// Add `i`.
    pub fn insert(&mut self, i: Interaction) {
        self.0 |= i.bit();
    }

    /// Remove `i`.
    pub fn remove(&mut self, i: Interaction) {
        self.0 &= !i.bit();
    }

    /// Union of both sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Intersection of both sets.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Interactions in `self` but not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether every interaction of `self` is in `other`.
    pub const fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of interactions (0..=5).
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The interactions in canonical order `c r u d s`.
    pub fn iter(self) -> impl Iterator<Item = Interaction> {
        Interaction::ALL
            .into_iter()
            .filter(move |i| self.contains(*i))
    }

    /// The v1 keyword with exactly this meaning (`read` = `rs`, `write` = `cud`, `*` =
    /// `cruds`), if any (SCOPE-06).
    pub const fn v1_keyword(self) -> Option<&'static str> {
        match self.0 {
            18 => Some("read"),
            13 => Some("write"),
            31 => Some("*"),
            _ => None,
        }
    }
}

impl FromIterator<Interaction> for Permissions {
    fn from_iter<T: IntoIterator<Item = Interaction>>(iter: T) -> Self {
        let mut p = Self::NONE;
        for i in iter {
            p.insert(i);
        }
        p
    }
}

impl From<Interaction> for Permissions {
    fn from(i: Interaction) -> Self {
        Self::only(i)
    }
}

impl std::ops::BitOr for Permissions {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in self.iter() {
            fmt::Write::write_char(f, i.letter())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions(\"{self}\")")
    }
}

/// Which permission syntax a resource scope uses (spec digest §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeSyntax {
    /// SMART v1: `.read`, `.write`, `.*` (capability `permission-v1`).
    V1,
    /// SMART v2: `.cruds` letters, optional granular `?param=value` (capability
    /// `permission-v2`).
    V2,
}

impl ScopeSyntax {
    /// The syntax to request from a server advertising `capabilities` (the discovery
    /// document's `capabilities` array, spec digest §2.3):
    ///
    /// * `permission-v2` present → [`ScopeSyntax::V2`];
    /// * otherwise → [`ScopeSyntax::V1`]. That covers servers advertising only
    ///   `permission-v1` and pre-2.0 servers that advertise neither (both strings are new in
    ///   2.0.0, so a server without them speaks STU1 scopes).
    pub fn for_capabilities<S: AsRef<str>>(capabilities: &[S]) -> Self {
        if capabilities.iter().any(|c| c.as_ref() == "permission-v2") {
            Self::V2
        } else {
            Self::V1
        }
    }
}

/// One granular-scope search parameter `name=value` (SCOPE-03), stored as the raw text that
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

/// A FHIR resource scope, `context/Type.perms[?params]` (SCOPE-01..03, SCOPE-06).
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
    /// [`Error::Scope`] if `permissions` is empty (spec digest §12: an empty permission
    /// string is rejected when building) or a named type is not `[A-Z][A-Za-z0-9]*`.
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
    /// scope (SCOPE-03). A v1 scope is converted to v2 first.
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
    /// ⇒ `.cud`, `.*` ⇒ `.cruds`; SCOPE-06). A v2 scope is returned unchanged.
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
    /// [`ScopeSet::permits`]).
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

/// A launch-context scope: `launch`, `launch/<type>` or `launch/<type>?role=<uri>`
/// (SCOPE-07, CTX-04).
///
/// The context type is kept exactly as given (the IG writes it lowercase: `launch/patient`,
/// `launch/imagingstudy`); the role is raw text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaunchScope {
    context_type: Option<String>,
    role: Option<String>,
}

impl LaunchScope {
    /// Bare `launch`: EHR launch, asks for the context the EHR established (LAUNCH-01).
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

    /// Add `?role=<role>` (2.2.0, experimental; at most one role per scope, CTX-04).
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

/// A scope the library does not interpret: extension scopes (`__profilePhoto.manage`, full
/// URIs such as `https://ehr.example.org/scopes/x`, SCOPE-09), SCOPE-08 URI forms, and — in
/// lenient mode only — malformed SMART-looking tokens. Kept verbatim, never dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpaqueScope(String);

impl OpaqueScope {
    /// The scope token exactly as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn new(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for OpaqueScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One SMART scope token (spec digest §6).
///
/// Parse with [`str::parse`] (strict) or [`Scope::parse_with`] (strict or lenient). `Display`
/// writes the canonical form; `Scope::from_str(&s.to_string()) == Ok(s)` for every value
/// obtained strictly or from a constructor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// A FHIR resource scope (`patient/Observation.rs`, `user/*.read`, granular forms).
    Resource(ResourceScope),
    /// A launch-context scope (`launch`, `launch/patient`, `launch/list?role=…`).
    Launch(LaunchScope),
    /// `openid`: OpenID Connect authentication, an `id_token` is issued.
    OpenId,
    /// `fhirUser`: the `fhirUser` claim in the `id_token` (needs `openid`).
    FhirUser,
    /// `profile`: the standard OIDC scope (legacy in SMART).
    Profile,
    /// `offline_access`: a refresh token usable while the user is offline.
    OfflineAccess,
    /// `online_access`: a refresh token usable while the user stays online (experimental).
    OnlineAccess,
    /// Any other token, kept verbatim.
    Other(OpaqueScope),
}

/// Prefix of the URI form of SMART scopes (SCOPE-08): `http://smarthealthit.org/fhir/scopes/`
/// followed by the scope, e.g. `…/scopes/patient/Observation.rs`.
pub const SMART_SCOPE_URI_PREFIX: &str = "http://smarthealthit.org/fhir/scopes/";

/// Prefix of the URI form of OpenID Connect scopes (SCOPE-08), e.g. `…#openid`.
pub const OIDC_SCOPE_URI_PREFIX: &str = "http://openid.net/specs/openid-connect-core-1_0#";

impl Scope {
    /// The URI form of this scope (SCOPE-08): `openid` and `profile` under
    /// [`OIDC_SCOPE_URI_PREFIX`], every other SMART scope under [`SMART_SCOPE_URI_PREFIX`];
    /// opaque scopes are returned unchanged (they are already URIs or vendor strings).
    pub fn to_uri(&self) -> String {
        match self {
            Self::OpenId | Self::Profile => format!("{OIDC_SCOPE_URI_PREFIX}{self}"),
            Self::Other(o) => o.as_str().to_owned(),
            other => format!("{SMART_SCOPE_URI_PREFIX}{other}"),
        }
    }

    /// Parse a scope given in URI form (SCOPE-08) or in the short form: the prefix, if any, is
    /// removed and the rest parsed strictly.
    ///
    /// # Errors
    /// [`Error::Scope`] as [`FromStr`](std::str::FromStr) for the scope after the prefix.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        match uri
            .strip_prefix(SMART_SCOPE_URI_PREFIX)
            .or_else(|| uri.strip_prefix(OIDC_SCOPE_URI_PREFIX))
        {
            Some(short) if !short.is_empty() => short.parse(),
            _ => uri.parse(),
        }
    }

    /// Parse one scope token.
    ///
    /// In [`ParseMode::Strict`] malformed SMART scopes are errors; in [`ParseMode::Lenient`]
    /// out-of-order or repeated permission letters are accepted (normalised, with a warning)
    /// and any other malformed SMART-looking token becomes [`Scope::Other`] with a warning.
    /// Warnings are appended to `warnings`.
    ///
    /// # Errors
    /// [`Error::Scope`] naming the byte position: in both modes for an empty token or one
    /// containing whitespace; in strict mode also for a malformed scope (bad permission
    /// letters, order, type name, parameters, launch form) or a byte outside RFC 6749
    /// `scope-token` (`%x21 / %x23-5B / %x5D-7E`).
    pub fn parse_with(
        input: &str,
        mode: ParseMode,
        warnings: &mut Vec<ScopeWarning>,
    ) -> Result<Scope, Error> {
        parse::parse_token(input, mode, warnings)
    }

    /// Parse leniently, returning the scope and any warning.
    ///
    /// # Errors
    /// [`Error::Scope`] only for an empty token or one containing whitespace.
    pub fn parse_lenient(input: &str) -> Result<(Scope, Vec<ScopeWarning>), Error> {
        let mut w = Vec::new();
        let s = parse::parse_token(input, ParseMode::Lenient, &mut w)?;
        Ok((s, w))
    }

    /// The resource scope inside, if this is one.
    pub fn as_resource(&self) -> Option<&ResourceScope> {
        match self {
            Self::Resource(r) => Some(r),
            _ => None,
        }
    }

    /// The v2 form: v1 resource scopes are rewritten (`.read` ⇒ `.rs`, …); everything else is
    /// returned unchanged.
    pub fn to_v2(&self) -> Scope {
        match self {
            Self::Resource(r) => Self::Resource(r.to_v2()),
            other => other.clone(),
        }
    }

    /// The v1 form, or `None` for a resource scope with no v1 equivalent (see
    /// [`ResourceScope::to_v1`]). Non-resource scopes are returned unchanged.
    pub fn to_v1(&self) -> Option<Scope> {
        match self {
            Self::Resource(r) => r.to_v1().map(Self::Resource),
            other => Some(other.clone()),
        }
    }

    /// Whether two scopes mean the same thing: equal after converting both to v2.
    pub fn is_equivalent(&self, other: &Scope) -> bool {
        match (self, other) {
            (Self::Resource(a), Self::Resource(b)) => a.to_v2() == b.to_v2(),
            _ => self == other,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resource(r) => r.fmt(f),
            Self::Launch(l) => l.fmt(f),
            Self::OpenId => f.write_str("openid"),
            Self::FhirUser => f.write_str("fhirUser"),
            Self::Profile => f.write_str("profile"),
            Self::OfflineAccess => f.write_str("offline_access"),
            Self::OnlineAccess => f.write_str("online_access"),
            Self::Other(o) => o.fmt(f),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;

    /// Strict parse of one token (see [`Scope::parse_with`]).
    fn from_str(s: &str) -> Result<Self, Error> {
        parse::parse_token(s, ParseMode::Strict, &mut Vec::new())
    }
}

impl From<ResourceScope> for Scope {
    fn from(r: ResourceScope) -> Self {
        Self::Resource(r)
    }
}

impl From<LaunchScope> for Scope {
    fn from(l: LaunchScope) -> Self {
        Self::Launch(l)
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    /// Lenient parse of one token (warnings are dropped), so whatever was serialized comes
    /// back.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse_lenient(&s)
            .map(|(s, _)| s)
            .map_err(serde::de::Error::custom)
    }
}

/// Fuzz entry point: parse arbitrary bytes (UTF-8, lossy) as a scope list and as a single
/// scope in both modes. Never panics on input; asserts the round-trip property
/// `parse(display(x)) == x` for every strictly parsed value (and its lenient analogue), and
/// exercises conversion, factoring, `permits`, `diff` and `explain`.
#[doc(hidden)]
pub fn fuzz_scope(data: &[u8]) {
    use std::str::FromStr;
    let input = String::from_utf8_lossy(data);

    if let Ok(set) = ScopeSet::from_str(&input) {
        let again = ScopeSet::from_str(&set.to_string());
        assert_eq!(again.as_ref(), Ok(&set), "strict set round-trip");
    }
    if let Ok(s) = Scope::from_str(&input) {
        assert_eq!(
            Scope::from_str(&s.to_string()),
            Ok(s.clone()),
            "strict round-trip"
        );
        if let Some(v1) = s.to_v1() {
            assert_eq!(v1.to_v2(), s.to_v2(), "v1/v2 conversion");
        }
    }
    if let Ok((s, _)) = Scope::parse_lenient(&input) {
        let again = Scope::parse_lenient(&s.to_string()).map(|(s, _)| s);
        assert_eq!(again, Ok(s), "lenient round-trip");
    }

    let (set, _warnings) = ScopeSet::parse_lenient(&input);
    let (again, _) = ScopeSet::parse_lenient(&set.to_string());
    assert_eq!(again, set, "lenient set round-trip");
    let v2 = set.to_syntax(ScopeSyntax::V2);
    let _ = set.to_syntax(ScopeSyntax::V1);
    for s in set.iter() {
        let _ = explain(s).to_string();
        if let Scope::Resource(r) = s {
            for i in r.permissions().iter() {
                let name = match r.resource_type() {
                    ResourceType::Any => "Observation",
                    ResourceType::Named(n) => n.as_str(),
                };
                assert_ne!(
                    set.permits(r.context(), name, i),
                    Permit::Denied,
                    "own grant"
                );
            }
        }
    }
    let d = diff(&set, &v2);
    assert!(
        d.refused.is_empty() && d.narrowed.is_empty(),
        "v2 form grants the same"
    );
    let _ = d.to_string();
    let factored = set.factored();
    for (a, b) in [(&set, &factored), (&factored, &set)] {
        let d = diff(a, b);
        assert!(
            d.refused.is_empty() && d.narrowed.is_empty(),
            "factored form grants the same"
        );
    }
}
