//! The resource scopes of a [`ScopeSet`] grouped by context and resource type, so that
//! comparing two sets ([`diff`](super::diff)) looks only at the scopes that can match.

use std::collections::HashMap;

use super::set::covered_by;
use super::{ResourceScope, ResourceType, Scope, ScopeContext, ScopeSet};

/// A position in the set and the resource scope there.
type Entry<'a> = (usize, &'a ResourceScope);

/// The resource scopes of one set, grouped by context and type, each group in set order.
/// Built in linear time (one hash per resource scope); a query costs one hash lookup.
pub(super) struct ResourceIndex<'a> {
    /// The set itself, in order.
    scopes: &'a [Scope],
    /// For each named type present in the set, its group number in each context (see
    /// [`context_slot`]).
    groups: HashMap<&'a str, [Option<usize>; 3]>,
    /// The scopes of named types, by group: group `k` is `named[starts[k]..starts[k + 1]]`.
    named: Vec<Entry<'a>>,
    /// Where each group starts in `named`, plus the end of the last one.
    starts: Vec<usize>,
    /// The `*` scopes of each context.
    wildcards: [Vec<Entry<'a>>; 3],
}

/// The position of `context` in the per-context arrays of [`ResourceIndex`].
fn context_slot(context: ScopeContext) -> usize {
    match context {
        ScopeContext::Patient => 0,
        ScopeContext::User => 1,
        ScopeContext::System => 2,
    }
}

impl<'a> ResourceIndex<'a> {
    /// Index the resource scopes of `set`.
    pub(super) fn new(set: &'a ScopeSet) -> Self {
        let scopes = set.as_slice();
        let mut groups: HashMap<&'a str, [Option<usize>; 3]> = HashMap::with_capacity(scopes.len());
        let mut sizes: Vec<usize> = Vec::new();
        // The named-type scopes in set order, with their group.
        let mut grouped: Vec<(usize, Entry<'a>)> = Vec::with_capacity(scopes.len());
        let mut wildcards: [Vec<Entry<'a>>; 3] = Default::default();
        for (i, s) in scopes.iter().enumerate() {
            let Some(r) = s.as_resource() else {
                continue;
            };
            let slot = context_slot(r.context());
            match r.resource_type() {
                ResourceType::Any => wildcards[slot].push((i, r)),
                ResourceType::Named(name) => {
                    let group = *groups.entry(name).or_default()[slot].get_or_insert_with(|| {
                        sizes.push(0);
                        sizes.len() - 1
                    });
                    sizes[group] += 1;
                    grouped.push((group, (i, r)));
                }
            }
        }
        // Counting sort by group: each group keeps set order.
        let mut starts = Vec::with_capacity(sizes.len() + 1);
        let mut end = 0;
        starts.push(end);
        for size in sizes {
            end += size;
            starts.push(end);
        }
        let mut next = starts.clone();
        let mut named = match grouped.first() {
            Some(&(_, filler)) => vec![filler; grouped.len()],
            None => Vec::new(),
        };
        for (group, entry) in grouped {
            named[next[group]] = entry;
            next[group] += 1;
        }
        Self {
            scopes,
            groups,
            named,
            starts,
            wildcards,
        }
    }

    /// The indexed scopes that can cover, equal or overlap `target`.
    pub(super) fn candidates<'s>(&'s self, target: &'s ResourceScope) -> Candidates<'s, 'a> {
        let slot = context_slot(target.context());
        match target.resource_type() {
            ResourceType::Any => Candidates {
                same_type: &self.wildcards[slot],
                wildcards: &[],
                scopes: self.scopes,
            },
            ResourceType::Named(name) => {
                let group = self.groups.get(name.as_str()).and_then(|g| g[slot]);
                Candidates {
                    same_type: group
                        .map_or(&[], |k| &self.named[self.starts[k]..self.starts[k + 1]]),
                    wildcards: &self.wildcards[slot],
                    scopes: &[],
                }
            }
        }
    }
}

/// The scopes of an indexed set that can matter for one target scope (same context).
pub(super) struct Candidates<'s, 'a> {
    /// Exactly the target's type (`*` scopes for a `*` target), in set order.
    same_type: &'s [Entry<'a>],
    /// For a named target type, the `*` scopes; empty for a `*` target. In set order.
    wildcards: &'s [Entry<'a>],
    /// For a `*` target, the whole set (every resource scope of the context overlaps);
    /// empty otherwise.
    scopes: &'a [Scope],
}

impl<'a> Candidates<'_, 'a> {
    /// Whether a scope equivalent to `target` (equal after v1→v2 conversion) is present:
    /// same context, type, permissions and parameters, any syntax.
    pub(super) fn contains_equivalent(&self, target: &ResourceScope) -> bool {
        self.same_type
            .iter()
            .any(|(_, r)| r.permissions() == target.permissions() && r.params() == target.params())
    }

    /// [`ScopeSet::covers`] for the indexed set: only scopes whose type covers `target`'s
    /// (`*` or the same type) can contribute.
    pub(super) fn covers(&self, target: &ResourceScope) -> bool {
        covered_by(
            target,
            self.wildcards.iter().chain(self.same_type).map(|&(_, r)| r),
        )
    }

    /// The scopes overlapping `target`, in set order: a type covering or covered by
    /// `target`'s and at least one interaction in common.
    pub(super) fn overlapping(&self, target: &ResourceScope) -> Vec<&'a ResourceScope> {
        let shares = |r: &ResourceScope| {
            !r.permissions()
                .intersection(target.permissions())
                .is_empty()
        };
        if matches!(target.resource_type(), ResourceType::Any) {
            // `*` overlaps every type of its context.
            return self
                .scopes
                .iter()
                .filter_map(Scope::as_resource)
                .filter(|r| r.context() == target.context() && shares(r))
                .collect();
        }
        // A named type overlaps `*` and itself: merge both lists by set position.
        let (mut any, mut same) = (self.wildcards, self.same_type);
        let mut out = Vec::new();
        loop {
            let next = match (any.split_first(), same.split_first()) {
                (Some((a, rest)), Some((b, _))) if a.0 < b.0 => {
                    any = rest;
                    a.1
                }
                (_, Some((b, rest))) => {
                    same = rest;
                    b.1
                }
                (Some((a, rest)), None) => {
                    any = rest;
                    a.1
                }
                (None, None) => break,
            };
            if shares(next) {
                out.push(next);
            }
        }
        out
    }
}
