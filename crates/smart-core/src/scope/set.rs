//! [`ScopeSet`]: the space-separated `scope` parameter of requests and grants, and
//! [`Permit`]: what a grant allows.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use super::parse::{self, ParseMode, ScopeWarning};
use super::{
    Interaction, Permissions, ResourceScope, ResourceType, Scope, ScopeContext, ScopeSyntax,
    SearchParam,
};
use crate::error::Error;

/// An ordered, de-duplicated list of scopes: the value of an OAuth `scope` parameter.
///
/// Parsing splits on ASCII whitespace (several spaces are tolerated); `Display` joins with a
/// single space, in insertion order. Duplicates (equal values) are dropped on insert; `.read`
/// and `.rs` are different values and both kept (see [`Scope::is_equivalent`]). Serialized
/// with serde as that string; deserialized leniently.
///
/// Inserting and looking up a scope take constant time on average (the set keeps a hash
/// index next to the ordered list), so building a set of `n` scopes is linear in `n`.
#[derive(Clone, Default)]
pub struct ScopeSet {
    scopes: Vec<Scope>,
    /// Hashes scopes for `positions`, with keys random per set.
    hasher: RandomState,
    /// For every hash of a scope in `scopes`, the position of the first scope with that hash.
    /// A scope whose hash is absent is absent from the set; only a genuine 64-bit collision
    /// sends a lookup to a linear scan.
    positions: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
}

/// The hasher of [`ScopeSet::positions`], whose keys are already random-keyed hashes: a
/// `u64` passes through unchanged.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed (see `write_u64`); fold anything else all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
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

    /// Parse leniently (for granted scopes): never fails; returns the set
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
    /// string is server input, so nothing here may be quadratic in its length).
    fn extend_unique(&mut self, scopes: impl IntoIterator<Item = Scope>) {
        let scopes = scopes.into_iter();
        let more = scopes.size_hint().0;
        self.scopes.reserve(more);
        self.positions.reserve(more);
        for s in scopes {
            self.insert(s);
        }
    }

    /// The hash of `scope` under this set's keys.
    fn hash_of(&self, scope: &Scope) -> u64 {
        self.hasher.hash_one(scope)
    }

    /// Whether a scope equal to `scope`, whose hash is `hash`, is present.
    fn contains_hashed(&self, scope: &Scope, hash: u64) -> bool {
        match self.positions.get(&hash) {
            None => false,
            Some(&i) => self.scopes[i] == *scope || self.scopes.contains(scope),
        }
    }

    /// Add `scope` at the end unless an equal one is present; returns whether it was added.
    /// Constant time on average.
    pub fn insert(&mut self, scope: Scope) -> bool {
        let hash = self.hash_of(&scope);
        if self.contains_hashed(&scope, hash) {
            return false;
        }
        self.positions.entry(hash).or_insert(self.scopes.len());
        self.scopes.push(scope);
        true
    }

    /// Remove an equal scope; returns whether one was present. Linear in the set's length (the
    /// later scopes move up one place).
    pub fn remove(&mut self, scope: &Scope) -> bool {
        if !self.contains(scope) {
            return false;
        }
        self.scopes.retain(|s| s != scope);
        self.positions.clear();
        for (i, s) in self.scopes.iter().enumerate() {
            self.positions.entry(self.hasher.hash_one(s)).or_insert(i);
        }
        true
    }

    /// Whether an equal scope is present (exact value; see [`ScopeSet::contains_equivalent`]).
    /// Constant time on average.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.contains_hashed(scope, self.hash_of(scope))
    }

    /// Whether a scope equivalent to `scope` (equal after v1→v2 conversion) is present.
    pub fn contains_equivalent(&self, scope: &Scope) -> bool {
        match scope {
            Scope::Resource(_) => self.scopes.iter().any(|s| s.is_equivalent(scope)),
            // Only equality makes a non-resource scope equivalent to another scope.
            other => self.contains(other),
        }
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

    /// Rewrite every resource scope into `syntax`: to V2 always succeeds; to V1,
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

    /// The shortest equivalent form (SMART App Launch §"Scopes and Launch Context", "Scope
    /// Equivalence": "factor scopes to their shortest form"): v2 resource scopes with the same
    /// context, type and parameters are merged into one with the union of their permissions, at the
    /// position of the first (`patient/Observation.r patient/Observation.s` ⇒
    /// `patient/Observation.rs`). v1 scopes and other scopes are kept as they are; no scope is
    /// dropped for being covered by a wildcard.
    pub fn factored(&self) -> ScopeSet {
        type Twin<'a> = (ScopeContext, &'a ResourceType, &'a [SearchParam]);
        let mut out: Vec<Scope> = Vec::with_capacity(self.scopes.len());
        // (context, type, parameters) of each v2 resource scope in `out` → its position there.
        let mut twins: HashMap<Twin<'_>, usize> = HashMap::new();
        for s in &self.scopes {
            if let Scope::Resource(r) = s
                && r.syntax() == ScopeSyntax::V2
            {
                match twins.entry((r.context(), r.resource_type(), r.params())) {
                    Entry::Occupied(twin) => {
                        if let Scope::Resource(o) = &mut out[*twin.get()] {
                            o.add_permissions(r.permissions());
                        }
                        continue;
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(out.len());
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
        let mut alternatives: Vec<&[SearchParam]> = Vec::new();
        let mut seen: HashSet<&[SearchParam]> = HashSet::new();
        for r in self.resource_scopes() {
            if r.applies_to(context, resource_type, interaction) {
                if !r.is_granular() {
                    return Permit::Granted;
                }
                if seen.insert(r.params()) {
                    alternatives.push(r.params());
                }
            }
        }
        if alternatives.is_empty() {
            Permit::Denied
        } else {
            Permit::OnlyWith(
                alternatives
                    .into_iter()
                    .map(<[SearchParam]>::to_vec)
                    .collect(),
            )
        }
    }

    /// [`ScopeSet::permits`] checked against a concrete request's search parameters (see
    /// [`Permit::allows`]). A grant of `patient/Observation.rs?category=…|laboratory`
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
        covered_by(target, self.resource_scopes())
    }
}

/// Whether the scopes among `candidates` with `target`'s context, a type covering `target`'s
/// and parameters implied by `target`'s together grant every interaction of `target`.
pub(super) fn covered_by<'a>(
    target: &ResourceScope,
    candidates: impl IntoIterator<Item = &'a ResourceScope>,
) -> bool {
    let need = target.permissions();
    let mut have = Permissions::NONE;
    for g in candidates {
        if g.context() == target.context()
            && g.resource_type().covers(target.resource_type())
            && !g
                .permissions()
                .difference(have)
                .intersection(need)
                .is_empty()
            && super::params_implied(g.params(), target.params())
        {
            have = have.union(g.permissions());
            if need.is_subset(have) {
                return true;
            }
        }
    }
    need.is_subset(have)
}

impl PartialEq for ScopeSet {
    /// Equal when the scopes are equal, in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.scopes == other.scopes
    }
}

impl Eq for ScopeSet {}

impl Hash for ScopeSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scopes.hash(state);
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeSet")
            .field("scopes", &self.scopes)
            .finish()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        s.parse().expect("valid scope")
    }

    /// A 64-bit hash collision cannot be produced on purpose (the keys are random), so fake
    /// one: point `b`'s hash at `a`'s position, as if `a` were the first scope with that hash.
    /// Lookups must fall back to comparing scopes and still give the right answers.
    #[test]
    fn a_hash_collision_falls_back_to_comparing_scopes() {
        let (a, b, c) = (
            scope("patient/Observation.rs"),
            scope("patient/Condition.rs"),
            scope("openid"),
        );
        let mut set: ScopeSet = [a.clone(), b.clone()].into_iter().collect();
        let (ha, hb) = (set.hash_of(&a), set.hash_of(&b));
        set.positions.clear();
        set.positions.insert(ha, 0);
        set.positions.insert(hb, 0);

        assert!(set.contains(&a) && set.contains(&b));
        assert!(!set.contains(&c));
        assert!(!set.insert(b.clone()));
        assert!(set.insert(c.clone()));
        assert_eq!(
            set.to_string(),
            "patient/Observation.rs patient/Condition.rs openid"
        );
        assert!(set.remove(&a));
        assert!(!set.contains(&a) && set.contains(&b) && set.contains(&c));
        assert_eq!(set.to_string(), "patient/Condition.rs openid");
    }

    #[test]
    fn pass_through_hashes_a_u64_to_itself() {
        let mut h = PassThrough::default();
        h.write_u64(0x0123_4567_89ab_cdef);
        assert_eq!(h.finish(), 0x0123_4567_89ab_cdef);
    }
}
