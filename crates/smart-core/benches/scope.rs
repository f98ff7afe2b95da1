//! Criterion benchmarks for the scope module: parse a typical 20-scope grant string into a
//! `ScopeSet`, and answer `permits` / `permits_with_params` queries against it.
#![allow(missing_docs)]

use std::hint::black_box;
use std::str::FromStr;

use criterion::{Criterion, criterion_group, criterion_main};
use smart_core::scope::{Interaction, ScopeContext, ScopeSet, diff};

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

criterion_group!(benches, bench_scope);
criterion_main!(benches);
