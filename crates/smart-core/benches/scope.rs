//! Criterion benchmarks for the scope module: parse a typical 20-scope grant string into a
//! `ScopeSet`, and answer `permits` / `permits_with_params` queries against it; compare
//! large requested/granted sets (`diff`), build them scope by scope (`insert`) and factor
//! them (`factored`).
#![allow(missing_docs)]

use std::hint::black_box;
use std::str::FromStr;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use smart_core::scope::{Interaction, Scope, ScopeContext, ScopeSet, diff};

/// A realistic 20-scope grant: launch context, OIDC, refresh, v2, v1 and granular scopes.
const GRANT: &str = "launch launch/patient launch/encounter openid fhirUser offline_access \
patient/Patient.rs patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory \
patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs \
patient/Condition.rs patient/AllergyIntolerance.rs patient/MedicationRequest.rs patient/Immunization.read \
patient/Procedure.rs patient/DiagnosticReport.rs patient/Encounter.rs user/Practitioner.rs \
user/Appointment.cruds patient/Basic.cuds?code=https://myapp.example.org|encrypted-phr-access-keys \
__profilePhoto.manage";

fn bench_scope(c: &mut Criterion) {
    let set = ScopeSet::from_str(GRANT).expect("valid grant");
    assert_eq!(set.len(), 20);

    c.bench_function("scope/parse_strict_20", |b| {
        b.iter(|| ScopeSet::from_str(black_box(GRANT)))
    });
    c.bench_function("scope/parse_lenient_20", |b| {
        b.iter(|| ScopeSet::parse_lenient(black_box(GRANT)))
    });
    c.bench_function("scope/display_20", |b| {
        b.iter(|| black_box(&set).to_string())
    });
    c.bench_function("scope/permits_granted", |b| {
        b.iter(|| {
            black_box(&set).permits(
                black_box(ScopeContext::Patient),
                black_box("Encounter"),
                black_box(Interaction::Search),
            )
        })
    });
    c.bench_function("scope/permits_denied", |b| {
        b.iter(|| {
            black_box(&set).permits(
                black_box(ScopeContext::System),
                black_box("Observation"),
                black_box(Interaction::Delete),
            )
        })
    });
    c.bench_function("scope/permits_with_params_granular", |b| {
        let params = [(
            "category",
            "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
        )];
        b.iter(|| {
            black_box(&set).permits_with_params(
                ScopeContext::Patient,
                black_box("Observation"),
                Interaction::Search,
                black_box(&params),
            )
        })
    });
    c.bench_function("scope/diff_20", |b| {
        b.iter(|| diff(black_box(&set), black_box(&set)))
    });
}

/// Resource scope number `i` of a synthetic request: the three contexts in turn, two scopes
/// per (context, type) pair, a mix of v2, v1 and granular scopes.
fn requested_scope(i: usize) -> String {
    let ctx = ["patient", "user", "system"][i % 3];
    let ty = format!("Type{}", i / 6);
    match (i % 6 < 3, (i / 6) % 4) {
        (true, 0) => format!("{ctx}/{ty}.read"),
        (true, 1) => format!("{ctx}/{ty}.rs?category=http://example.org/category|c{i}"),
        (true, 2) => format!("{ctx}/{ty}.cruds"),
        (true, _) => format!("{ctx}/{ty}.rs"),
        (false, k) if k % 2 == 0 => format!("{ctx}/{ty}.c"),
        (false, _) => format!("{ctx}/{ty}.cu"),
    }
}

/// A request of `n` scopes: four non-resource scopes, then resource scopes.
fn requested(n: usize) -> ScopeSet {
    let mut s = String::from("launch/patient openid fhirUser offline_access");
    for i in 0..n.saturating_sub(4) {
        s.push(' ');
        s.push_str(&requested_scope(i));
    }
    ScopeSet::from_str(&s).expect("valid request")
}

/// The grant for `requested(n)`, also `n` scopes: most requested scopes as asked, one in ten
/// narrowed (`.r` only), one in ten refused and replaced by an unrequested scope, and a
/// broader `patient/*.r` in place of `fhirUser`.
fn granted(n: usize) -> ScopeSet {
    let mut s = String::from("launch/patient openid offline_access patient/*.r");
    for i in 0..n.saturating_sub(4) {
        s.push(' ');
        match i % 10 {
            3 => s.push_str(&format!(
                "{}/Type{}.r",
                ["patient", "user", "system"][i % 3],
                i / 6
            )),
            7 => s.push_str(&format!("user/Extra{i}.rs")),
            _ => s.push_str(&requested_scope(i)),
        }
    }
    ScopeSet::from_str(&s).expect("valid grant")
}

/// `n` v2 scopes that factor pairwise (`.r` + `.s`, `.c` + `.u`, granular `.r` + `.s`,
/// `.d` + `.s`).
fn unfactored(n: usize) -> ScopeSet {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        let ctx = ["patient", "user", "system"][(i / 2) % 3];
        let ty = format!("Type{}", i / 6);
        let letter = if i % 2 == 0 { "r" } else { "s" };
        match (i / 2) % 4 {
            0 => s.push_str(&format!("{ctx}/{ty}.{letter}")),
            1 => s.push_str(&format!(
                "{ctx}/{ty}.{}",
                if i % 2 == 0 { "c" } else { "u" }
            )),
            2 => s.push_str(&format!(
                "{ctx}/{ty}.{letter}?code=http://example.org|k{}",
                i / 2
            )),
            _ => s.push_str(&format!(
                "{ctx}/{ty}.{}",
                if i % 2 == 0 { "d" } else { "s" }
            )),
        }
    }
    ScopeSet::from_str(&s).expect("valid set")
}

fn bench_large_sets(c: &mut Criterion) {
    let mut group = c.benchmark_group("scope/diff");
    for n in [20, 200, 2000] {
        let (req, grant) = (requested(n), granted(n));
        assert_eq!((req.len(), grant.len()), (n, n));
        let d = diff(&req, &grant);
        assert!(!d.narrowed.is_empty() && !d.refused.is_empty());
        assert!(!d.added_beyond_request.is_empty());
        if n == 2000 {
            group.sample_size(20);
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| diff(black_box(&req), black_box(&grant)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scope/insert");
    for n in [200, 2000] {
        let scopes: Vec<Scope> = requested(n).into_iter().collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(
                || scopes.clone(),
                |scopes| {
                    let mut set = ScopeSet::new();
                    for s in scopes {
                        set.insert(s);
                    }
                    set
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let set = unfactored(200);
    assert_eq!(set.len(), 200);
    assert_eq!(set.factored().len(), 100);
    c.bench_function("scope/factored/200", |b| {
        b.iter(|| black_box(&set).factored())
    });
}

criterion_group!(benches, bench_scope, bench_large_sets);
criterion_main!(benches);
