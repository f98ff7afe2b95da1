//! Fuzz entry point for the scope language.

use super::{Permit, ResourceType, Scope, ScopeSet, ScopeSyntax, diff, explain};

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
