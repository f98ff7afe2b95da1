//! Requested vs granted scopes (SMART App Launch §"Scopes and Launch Context", "Wildcard
//! scopes": apps should examine the granted scopes, which may differ from the request).

use std::fmt;

use super::index::ResourceIndex;
use super::{Scope, ScopeSet, explain};

/// A requested scope that was granted only in part.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Narrowed {
    /// What was asked for.
    pub requested: Scope,
    /// The granted resource scopes that overlap it (same context, overlapping type, shared
    /// interactions), in grant order. Together they grant less than `requested`.
    pub granted: Vec<Scope>,
}

/// How a grant relates to a request; see [`diff`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeDiff {
    /// Requested scopes fully granted: the same scope, its v1/v2 equivalent, or covered by
    /// broader/combined granted scopes. In request order.
    pub granted_as_requested: Vec<Scope>,
    /// Requested resource scopes granted only in part (fewer interactions, a narrower type,
    /// or extra granular parameters). In request order.
    pub narrowed: Vec<Narrowed>,
    /// Requested scopes of which nothing was granted. In request order.
    pub refused: Vec<Scope>,
    /// Granted scopes that give something the request did not ask for (unrequested scopes,
    /// or broader ones such as `patient/*.rs` for `patient/Observation.rs`). OAuth allows
    /// this; it is not an error. In grant order.
    pub added_beyond_request: Vec<Scope>,
}

impl ScopeDiff {
    /// Whether the grant is exactly what was asked for (nothing narrowed, refused or added).
    pub fn is_exact(&self) -> bool {
        self.narrowed.is_empty() && self.refused.is_empty() && self.added_beyond_request.is_empty()
    }
}

/// Compare `requested` with `granted`. Never fails.
///
/// Resource scopes are compared by meaning, interaction by interaction (`.read` ≡ `.rs`;
/// `.r` + `.s` together cover `.rs`; a granular grant covers an unconditional request only
/// in part). Other scopes (`launch…`, `openid`, extension scopes, …) are compared by value.
///
/// Each scope is compared only with the scopes of the other set that have its context and
/// its resource type or `*`, so the cost grows about linearly with the sizes of both sets and
/// of the answer. It grows faster only when many scopes share one context and type, or when
/// many requested `*` scopes are not fully granted (each of those is checked against every
/// granted scope of its context).
pub fn diff(requested: &ScopeSet, granted: &ScopeSet) -> ScopeDiff {
    let mut d = ScopeDiff::default();
    let granted_index = ResourceIndex::new(granted);
    for r in requested {
        match r {
            Scope::Resource(rs) => {
                let candidates = granted_index.candidates(rs);
                if candidates.contains_equivalent(rs) || candidates.covers(rs) {
                    d.granted_as_requested.push(r.clone());
                    continue;
                }
                let overlapping: Vec<Scope> = candidates
                    .overlapping(rs)
                    .into_iter()
                    .map(|g| Scope::Resource(g.clone()))
                    .collect();
                if overlapping.is_empty() {
                    d.refused.push(r.clone());
                } else {
                    d.narrowed.push(Narrowed {
                        requested: r.clone(),
                        granted: overlapping,
                    });
                }
            }
            other => {
                if granted.contains(other) {
                    d.granted_as_requested.push(other.clone());
                } else {
                    d.refused.push(other.clone());
                }
            }
        }
    }
    let requested_index = ResourceIndex::new(requested);
    for g in granted {
        let beyond = match g {
            Scope::Resource(gs) => {
                let candidates = requested_index.candidates(gs);
                !candidates.contains_equivalent(gs) && !candidates.covers(gs)
            }
            other => !requested.contains(other),
        };
        if beyond {
            d.added_beyond_request.push(g.clone());
        }
    }
    d
}

impl fmt::Display for ScopeDiff {
    /// A report a CLI can print as is: one section per category, one scope per line with a
    /// plain-words explanation; empty sections say `(none)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn section(f: &mut fmt::Formatter<'_>, title: &str, items: &[Scope]) -> fmt::Result {
            writeln!(f, "{title} ({}):", items.len())?;
            if items.is_empty() {
                writeln!(f, "  (none)")?;
            }
            for s in items {
                writeln!(f, "  {s}: {}", explain(s).summary())?;
            }
            Ok(())
        }
        section(f, "granted as requested", &self.granted_as_requested)?;
        writeln!(f, "narrowed ({}):", self.narrowed.len())?;
        if self.narrowed.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for n in &self.narrowed {
            write!(f, "  {} -> ", n.requested)?;
            for (i, g) in n.granted.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{g}")?;
            }
            writeln!(f)?;
        }
        section(f, "refused", &self.refused)?;
        section(f, "added beyond request", &self.added_beyond_request)
    }
}
