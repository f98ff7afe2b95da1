//! The resource scopes of a [`ScopeSet`] grouped by context and resource type, so that
//! comparing two sets ([`diff`](super::diff)) looks only at the scopes that can match.

use std::collections::HashMap;

use super::set::covered_by;
use super::{ResourceScope, ResourceType, ScopeContext, ScopeSet};

/// A position in the set and the resource scope there.
type Entry<'a> = (usize, &'a ResourceScope);

/// The resource scopes of one set, by (context, type) and by context, each list in set order.
pub(super) struct ResourceIndex<'a> {
    /// Scopes with exactly this context and type (`*` is a type of its own here).
    by_slot: HashMap<(ScopeContext, &'a ResourceType), Vec<Entry<'a>>>,
    /// Scopes with this context, any type; indexed by [`context_slot`].
    by_context: [Vec<&'a ResourceScope>; 3],
}

/// The position of `context` in [`ResourceIndex::by_context`].
fn context_slot(context: ScopeContext) -> usize {
    match context {
        ScopeContext::Patient => 0,
        ScopeContext::User => 1,
        ScopeContext::System => 2,
    }
}

impl<'a> ResourceIndex<'a> {
    /// Index the resource scopes of `set`; linear in its length.
    pub(super) fn new(set: &'a ScopeSet) -> Self {
        let mut by_slot: HashMap<(ScopeContext, &'a ResourceType), Vec<Entry<'a>>> = HashMap::new();
        let mut by_context: [Vec<&'a ResourceScope>; 3] = Default::default();
        for (i, s) in set.iter().enumerate() {
            if let Some(r) = s.as_resource() {
                by_slot
                    .entry((r.context(), r.resource_type()))
                    .or_default()
                    .push((i, r));
                by_context[context_slot(r.context())].push(r);
            }
        }
        Self {
            by_slot,
            by_context,
        }
    }

    /// The scopes with exactly `context` and `resource_type`, in set order.
    fn slot<'s>(
        &'s self,
        context: ScopeContext,
        resource_type: &'s ResourceType,
    ) -> &'s [Entry<'a>] {
        self.by_slot
            .get(&(context, resource_type))
            .map_or(&[], Vec::as_slice)
    }

    /// The scopes of `target`'s context whose type covers `target`'s: the `*` scopes and, for
    /// a named type, the scopes of that type. Not in set order.
    fn covering<'s>(
        &'s self,
        target: &'s ResourceScope,
    ) -> impl Iterator<Item = &'a ResourceScope> + 's {
        let context = target.context();
        let named = match target.resource_type() {
            ResourceType::Any => &[][..],
            named @ ResourceType::Named(_) => self.slot(context, named),
        };
        self.slot(context, &ResourceType::Any)
            .iter()
            .chain(named)
            .map(|&(_, r)| r)
    }

    /// Whether a scope equivalent to `target` (equal after v1→v2 conversion) is indexed:
    /// same context, type, permissions and parameters, any syntax.
    pub(super) fn contains_equivalent(&self, target: &ResourceScope) -> bool {
        self.slot(target.context(), target.resource_type())
            .iter()
            .any(|(_, r)| r.permissions() == target.permissions() && r.params() == target.params())
    }

    /// [`ScopeSet::covers`] for the indexed set.
    pub(super) fn covers(&self, target: &ResourceScope) -> bool {
        covered_by(target, self.covering(target))
    }

    /// The indexed scopes overlapping `target`, in set order: same context, a type covering
    /// or covered by `target`'s, and at least one interaction in common.
    pub(super) fn overlapping(&self, target: &ResourceScope) -> Vec<&'a ResourceScope> {
        let shares = |r: &&ResourceScope| {
            !r.permissions()
                .intersection(target.permissions())
                .is_empty()
        };
        let context = target.context();
        match target.resource_type() {
            // `*` overlaps every type of its context.
            ResourceType::Any => self.by_context[context_slot(context)]
                .iter()
                .copied()
                .filter(shares)
                .collect(),
            // A named type overlaps `*` and itself: merge both lists by set position.
            named @ ResourceType::Named(_) => {
                let (mut any, mut same) = (
                    self.slot(context, &ResourceType::Any),
                    self.slot(context, named),
                );
                let mut out = Vec::new();
                loop {
                    let next = match (any.first(), same.first()) {
                        (Some(a), Some(b)) if a.0 < b.0 => {
                            any = &any[1..];
                            a.1
                        }
                        (_, Some(b)) => {
                            same = &same[1..];
                            b.1
                        }
                        (Some(a), None) => {
                            any = &any[1..];
                            a.1
                        }
                        (None, None) => break,
                    };
                    if shares(&next) {
                        out.push(next);
                    }
                }
                out
            }
        }
    }
}
