//! [`ScopeSet`]: the space-separated `scope` parameter (AUTHZ-04, RESP-02), and
//! [`Permit`]: what a grant allows (SCOPE-01..03, SCOPE-06).

use std::fmt;

use super::parse::{self, ParseMode, ScopeWarning};
use super::{Interaction, ResourceScope, Scope, ScopeContext, ScopeSyntax, SearchParam};
use crate::error::Error;

/// An ordered, de-duplicated list of scopes: the value of an OAuth `scope` parameter.
///
/// Parsing splits on ASCII whitespace (several spaces are tolerated); `Display` joins with a
/// single space, in insertion order. Duplicates (equal values) are dropped on insert; `.read`
/// and `.rs` are different values and both kept (see [`Scope::is_equivalent`]). Serialized
/// with serde as that string; deserialized leniently.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet {
    scopes: Vec<Scope>,
}

/// The answer of [`ScopeSet::permits`]. Never claims more than was granted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Permit {
    /// No granted scope covers the interaction.
    Denied,
    /// A granted scope without parameters covers the interaction unconditionally.
    Granted,
    /// Only granular scopes cover it: the interaction is allowed only for data matching one
    /// of these parameter sets (each inner list is a conjunction; the outer list is a
    /// union, one entry per granular scope, in grant order).
    OnlyWith(Vec<Vec<SearchParam>>),
}

impl Permit {
    /// Whether the interaction is allowed without conditions.
    pub fn is_granted(&self) -> bool {
        matches!(self, Self::Granted)
    }

    /// Whether nothing allows the interaction.
    pub fn is_denied(&self) -> bool {
        matches!(self, Self::Denied)
    }

    /// Whether a request carrying the search parameters `params` (raw `name`, `value` pairs
    /// as they will be sent; values compared after percent-decoding) is allowed: always for
    /// [`Permit::Granted`], never for [`Permit::Denied`], and for [`Permit::OnlyWith`] when
    /// every parameter of at least one alternative appears in `params` with the same value.
    /// Extra request parameters only narrow the request, so they are fine.
    pub fn allows<N: AsRef<str>, V: AsRef<str>>(&self, params: &[(N, V)]) -> bool {
        match self {
            Self::Denied => false,
            Self::Granted => true,
            Self::OnlyWith(alternatives) => alternatives.iter().any(|alt| {
                alt.iter().all(|need| {
                    params
                        .iter()
                        .any(|(n, v)| need.matches(n.as_ref(), v.as_ref()))
                })
            }),
        }
    }
}

impl fmt::Display for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied => f.write_str("denied"),
            Self::Granted => f.write_str("granted"),
            Self::OnlyWith(alts) => {
                f.write_str("granted only where ")?;
                for (i, alt) in alts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    for (j, p) in alt.iter().enumerate() {
                        if j > 0 {
                            f.write_str(" and ")?;
                        }
                        write!(f, "{}={}", p.name(), p.value())?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl ScopeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse a space-separated scope string in `mode`, appending lenient-mode warnings to
    /// `warnings`. An empty or all-whitespace string gives an empty set.
    ///
    /// # Errors
    /// Strict mode: the first malformed token's [`Error::Scope`] (position inside that
    /// token). Lenient mode never fails.
    pub fn parse_with(
        input: &str,
        mode: ParseMode,
        warnings: &mut Vec<ScopeWarning>,
    ) -> Result<Self, Error> {
        let mut parsed = Vec::new();
        for token in input.split_ascii_whitespace() {
            parsed.push(parse::parse_token(token, mode, warnings)?);
        }
        let mut set = Self::new();
        set.extend_unique(parsed);
        Ok(set)
    }

    /// Parse leniently (for granted scopes, spec digest §6.3): never fails; returns the set
    /// and the warnings.
    pub fn parse_lenient(input: &str) -> (Self, Vec<ScopeWarning>) {
        let mut warnings = Vec::new();
        let mut parsed = Vec::new();
        for token in input.split_ascii_whitespace() {
            // A token from split_ascii_whitespace is non-empty and has no ASCII whitespace,
            // the only lenient-mode errors; keep it opaque should that ever change.
            let scope = parse::parse_token(token, ParseMode::Lenient, &mut warnings)
                .unwrap_or_else(|_| Scope::Other(super::OpaqueScope::new(token)));
            parsed.push(scope);
        }
        let mut set = Self::new();
        set.extend_unique(parsed);
        (set, warnings)
    }

    /// Append each scope not already present, in order, in linear time (a granted `scope`
    /// string is server input: `insert` in a loop would be quadratic in its length).
    fn extend_unique(&mut self, scopes: impl IntoIterator<Item = Scope>) {
        let mut seen: std::collections::HashSet<Scope> = self.scopes.iter().cloned().collect();
        for s in scopes {
            if !seen.contains(&s) {
                seen.insert(s.clone());
                self.scopes.push(s);
            }
        }
    }

    /// Add `scope` at the end unless an equal one is present; returns whether it was added.
    pub fn insert(&mut self, scope: Scope) -> bool {
        if self.scopes.contains(&scope) {
            false
        } else {
            self.scopes.push(scope);
            true
        }
    }

    /// Remove an equal scope; returns whether one was present.
    pub fn remove(&mut self, scope: &Scope) -> bool {
        let before = self.scopes.len();
        self.scopes.retain(|s| s != scope);
        before != self.scopes.len()
    }

    /// Whether an equal scope is present (exact value; see [`ScopeSet::contains_equivalent`]).
    pub fn contains(&self, scope: &Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether a scope equivalent to `scope` (equal after v1→v2 conversion) is present.
    pub fn contains_equivalent(&self, scope: &Scope) -> bool {
        self.scopes.iter().any(|s| s.is_equivalent(scope))
    }

    /// The scopes in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.scopes.iter()
    }

    /// The scopes in order, as a slice.
    pub fn as_slice(&self) -> &[Scope] {
        &self.scopes
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// The resource scopes, in order.
    pub fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.scopes.iter().filter_map(Scope::as_resource)
    }

    /// Rewrite every resource scope into `syntax` (SCOPE-06): to V2 always succeeds; to V1,
    /// scopes without a v1 equivalent (letter sets other than `rs`/`cud`/`cruds`, granular
    /// scopes) **stay in v2**, since dropping them would silently lose access the app needs.
    /// Use [`Scope::to_v1`] to detect them. Duplicates created by the rewrite are merged.
    pub fn to_syntax(&self, syntax: ScopeSyntax) -> ScopeSet {
        self.scopes
            .iter()
            .map(|s| match syntax {
                ScopeSyntax::V2 => s.to_v2(),
                ScopeSyntax::V1 => s.to_v1().unwrap_or_else(|| s.clone()),
            })
            .collect()
    }

    /// The shortest equivalent form (SCOPE-04, "factor scopes to their shortest form"): v2
    /// resource scopes with the same context, type and parameters are merged into one with
    /// the union of their permissions, at the position of the first
    /// (`patient/Observation.r patient/Observation.s` ⇒ `patient/Observation.rs`). v1 scopes
    /// and other scopes are kept as they are; no scope is dropped for being covered by a
    /// wildcard.
    pub fn factored(&self) -> ScopeSet {
        let mut out: Vec<Scope> = Vec::with_capacity(self.scopes.len());
        for s in &self.scopes {
            if let Scope::Resource(r) = s {
                if r.syntax() == ScopeSyntax::V2 {
                    let twin = out.iter_mut().find_map(|o| match o {
                        Scope::Resource(o)
                            if o.syntax() == ScopeSyntax::V2
                                && o.context() == r.context()
                                && o.resource_type() == r.resource_type()
                                && o.params() == r.params() =>
                        {
                            Some(o)
                        }
                        _ => None,
                    });
                    if let Some(o) = twin {
                        o.add_permissions(r.permissions());
                        continue;
                    }
                }
            }
            out.push(s.clone());
        }
        out.into_iter().collect()
    }

    /// This set rewritten in the syntax a server with discovery `capabilities` understands
    /// (see [`ScopeSyntax::for_capabilities`]: v2 if `permission-v2` is advertised, else v1,
    /// keeping v2-only scopes as v2).
    pub fn for_capabilities<S: AsRef<str>>(&self, capabilities: &[S]) -> ScopeSet {
        self.to_syntax(ScopeSyntax::for_capabilities(capabilities))
    }

    /// May the holder of this grant perform `interaction` on `resource_type` (a concrete
    /// FHIR type name, case-sensitive) in `context`? Honours `*`, v1 and v2 forms; contexts
    /// are distinct (`user/` never implies `patient/`). An unconditional scope wins over
    /// granular ones; granular scopes yield [`Permit::OnlyWith`] their parameter sets.
    pub fn permits(
        &self,
        context: ScopeContext,
        resource_type: &str,
        interaction: Interaction,
    ) -> Permit {
        let mut alternatives: Vec<Vec<SearchParam>> = Vec::new();
        for r in self.resource_scopes() {
            if r.applies_to(context, resource_type, interaction) {
                if !r.is_granular() {
                    return Permit::Granted;
                }
                if !alternatives.iter().any(|a| a.as_slice() == r.params()) {
                    alternatives.push(r.params().to_vec());
                }
            }
        }
        if alternatives.is_empty() {
            Permit::Denied
        } else {
            Permit::OnlyWith(alternatives)
        }
    }

    /// [`ScopeSet::permits`] checked against a concrete request's search parameters (see
    /// [`Permit::allows`]). B10: a grant of `patient/Observation.rs?category=…|laboratory`
    /// does not allow a search with `category=…|vital-signs`.
    pub fn permits_with_params<N: AsRef<str>, V: AsRef<str>>(
        &self,
        context: ScopeContext,
        resource_type: &str,
        interaction: Interaction,
        params: &[(N, V)],
    ) -> bool {
        // Same answer as `self.permits(..).allows(params)`, without building the `Permit`.
        self.resource_scopes().any(|r| {
            r.applies_to(context, resource_type, interaction)
                && r.params().iter().all(|need| {
                    params
                        .iter()
                        .any(|(n, v)| need.matches(n.as_ref(), v.as_ref()))
                })
        })
    }

    /// Whether every interaction `target` grants is granted by this set (scope by scope or
    /// combined, e.g. `.r` + `.s` cover `.rs`), under parameters implied by `target`'s.
    pub fn covers(&self, target: &ResourceScope) -> bool {
        target.permissions().iter().all(|i| {
            self.resource_scopes().any(|g| {
                g.context() == target.context()
                    && g.resource_type().covers(target.resource_type())
                    && g.permissions().contains(i)
                    && super::params_implied(g.params(), target.params())
            })
        })
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.scopes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ScopeSet {
    type Err = Error;

    /// Strict parse (see [`ScopeSet::parse_with`]).
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse_with(s, ParseMode::Strict, &mut Vec::new())
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

impl Extend<Scope> for ScopeSet {
    fn extend<T: IntoIterator<Item = Scope>>(&mut self, iter: T) {
        self.extend_unique(iter);
    }
}

impl IntoIterator for ScopeSet {
    type Item = Scope;
    type IntoIter = std::vec::IntoIter<Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.scopes.into_iter()
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.scopes.iter()
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    /// Lenient parse of a space-separated string (warnings dropped), so every serialized set
    /// comes back equal.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse_lenient(&s).0)
    }
}
