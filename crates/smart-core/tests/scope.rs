//! SMART scope language: IG fixtures, acceptance cases B10/B16/B25, error positions,
//! conversion, comparison, explanation and a proptest round-trip.
//!
//! Requirement ids refer to the spec digest's table (SCOPE-01..09, CTX-04, RESP-02,
//! AUTHZ-04); case ids to the acceptance-case log.
#![allow(missing_docs)]

use std::str::FromStr;

use proptest::prelude::*;
use smart_core::Error;
use smart_core::error::ScopeError;
use smart_core::scope::{
    FHIR_USER, Interaction, LAUNCH, LaunchScope, Narrowed, OFFLINE_ACCESS, ONLINE_ACCESS, OPENID,
    PROFILE, ParseMode, Permissions, Permit, ResourceScope, ResourceType, Scope, ScopeContext,
    ScopeDiff, ScopeSet, ScopeSyntax, ScopeWarningKind, SearchParam, diff, explain, launch_scope,
    resource_scope,
};

use Interaction::{Create, Delete, Read, Search, Update};
use ScopeContext::{Patient, System, User};

/// Every scope string in the IG (spec vectors §12), copied verbatim. Each must parse strictly
/// and print back byte for byte.
const IG_SCOPES: &[&str] = &[
    "patient/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
    "patient/*.cruds",
    "patient/*.r",
    "patient/Observation.rs",
    "patient/Observation.c",
    "patient/Observation.cu",
    "patient/Patient.r",
    "patient/Patient.rs",
    "patient/AllergyIntolerance.cruds",
    "patient/AllergyIntolerance.rs",
    "patient/AllergyIntolerance.cud",
    "user/Observation.rs",
    "user/Appointment.cruds",
    "user/Appointment.rs",
    "user/Patient.rs",
    "system/Observation.rs",
    "system/Encounter.cud",
    "patient/MedicationRequest.rs",
    "patient/MedicationOrder.rs",
    "user/Basic.cuds",
    "patient/Basic.cuds",
    "user/Basic.s",
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
    "patient/Basic.cuds?code=https://myapp.example.org|encrypted-phr-access-keys",
    "patient/Basic.s?code=https://myapp.example.org|encrypted-phr-access-keys",
    "user/Basic.cuds?code=https://myapp.example.org|hospital-config",
    "user/Basic.s?code=https://myapp.example.org|hospital-config",
    "patient/Basic.s?code=https://app|1",
    "user/Basic.s?code=https://app|1",
    "Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
    "Observation.rs?patient.birthdate=1990",
    "patient/Observation.read",
    "patient/Immunization.read",
    "patient/*.read",
    "launch",
    "launch/patient",
    "launch/encounter",
    "launch/imagingstudy",
    "launch/diagnosticreport",
    "launch/list?role=https://example.org/med-list-at-home",
    "launch/list?role=https://example.org/med-list-at-hospital",
    "launch/relatedperson?role=friend",
    "launch/relatedperson?role=neighbor",
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
    "__profilePhoto.manage",
    "https://ehr.example.org/scopes/profilePhoto.manage",
    // SCOPE-08 URI forms (appendix)
    "http://smarthealthit.org/fhir/scopes/patient/*.r",
    "http://openid.net/specs/openid-connect-core-1_0#openid",
];

/// Full scope strings as sent in the IG (spec vectors §12).
const IG_SCOPE_STRINGS: &[&str] = &[
    "launch patient/Observation.rs patient/Patient.rs openid fhirUser",
    "launch/patient patient/Observation.rs patient/Patient.rs offline_access",
    "launch/patient patient/*.rs __profilePhoto.manage",
];

fn s(x: &str) -> Scope {
    Scope::from_str(x).unwrap_or_else(|e| panic!("{x}: {e}"))
}

fn set(x: &str) -> ScopeSet {
    ScopeSet::from_str(x).unwrap_or_else(|e| panic!("{x}: {e}"))
}

fn res(x: &str) -> ResourceScope {
    match s(x) {
        Scope::Resource(r) => r,
        other => panic!("{x} parsed as {other:?}"),
    }
}

fn scope_err(x: &str) -> ScopeError {
    match Scope::from_str(x) {
        Err(Error::Scope(e)) => e,
        other => panic!("{x}: expected a scope error, got {other:?}"),
    }
}

fn perms(letters: &str) -> Permissions {
    letters
        .chars()
        .map(|c| Interaction::from_letter(c).expect("test letters"))
        .collect()
}

fn list(x: &str) -> Vec<Scope> {
    x.split(' ').map(s).collect()
}

// ---------------------------------------------------------------------------------------
// IG fixtures (SCOPE-01..09)
// ---------------------------------------------------------------------------------------

#[test]
fn ig_vectors_parse_strictly_and_round_trip_byte_for_byte() {
    for &text in IG_SCOPES {
        let scope = s(text);
        assert_eq!(scope.to_string(), text);
        assert_eq!(Scope::from_str(&scope.to_string()).as_ref(), Ok(&scope));
        let (lenient, warnings) = Scope::parse_lenient(text).unwrap();
        assert_eq!(lenient, scope, "{text}");
        assert!(warnings.is_empty(), "{text}: {warnings:?}");
    }
    for &text in IG_SCOPE_STRINGS {
        let parsed = set(text);
        assert_eq!(parsed.to_string(), text);
        assert_eq!(parsed.len(), text.split(' ').count());
    }
}

#[test]
fn ig_vectors_have_the_documented_interpretation() {
    // SCOPE-01/02: v2 letters.
    let r = res("patient/*.rs");
    assert_eq!(r.context(), Patient);
    assert_eq!(r.resource_type(), &ResourceType::Any);
    assert_eq!(r.permissions(), Permissions::READ_SEARCH);
    assert_eq!(r.syntax(), ScopeSyntax::V2);
    assert_eq!(res("user/*.cruds").permissions(), Permissions::ALL);
    assert_eq!(res("system/*.rs").context(), System);
    // write does not imply read
    assert_eq!(
        res("patient/Observation.c").permissions(),
        Permissions::only(Create)
    );
    assert_eq!(res("user/Basic.cuds").permissions(), perms("cuds"));
    assert_eq!(res("user/Basic.s").permissions(), Permissions::only(Search));
    assert_eq!(
        res("patient/MedicationOrder.rs").resource_type(),
        &ResourceType::Named("MedicationOrder".into())
    );
    // SCOPE-06: v1
    let v1 = res("patient/Immunization.read");
    assert_eq!(v1.syntax(), ScopeSyntax::V1);
    assert_eq!(v1.permissions(), Permissions::READ_SEARCH);
    // SCOPE-03: granular, params in order, raw
    let g = res("patient/Basic.cuds?code=https://myapp.example.org|encrypted-phr-access-keys");
    assert_eq!(g.params().len(), 1);
    assert_eq!(g.params()[0].name(), "code");
    assert_eq!(
        g.params()[0].value(),
        "https://myapp.example.org|encrypted-phr-access-keys"
    );
    // SCOPE-07, CTX-04
    assert_eq!(s("launch"), LAUNCH);
    assert_eq!(s("launch/patient"), launch_scope("patient").unwrap());
    let Scope::Launch(l) = s("launch/list?role=https://example.org/med-list-at-home") else {
        panic!("not a launch scope")
    };
    assert_eq!(l.context_type(), Some("list"));
    assert_eq!(l.role(), Some("https://example.org/med-list-at-home"));
    let Scope::Launch(l) = s("launch/relatedperson?role=friend") else {
        panic!("not a launch scope")
    };
    assert_eq!(l.role(), Some("friend"));
    // OIDC and refresh scopes
    assert_eq!(s("openid"), OPENID);
    assert_eq!(s("fhirUser"), FHIR_USER);
    assert_eq!(s("profile"), PROFILE);
    assert_eq!(s("offline_access"), OFFLINE_ACCESS);
    assert_eq!(s("online_access"), ONLINE_ACCESS);
    // SCOPE-09 / SCOPE-08 / fragments: opaque, verbatim
    for text in [
        "__profilePhoto.manage",
        "https://ehr.example.org/scopes/profilePhoto.manage",
        "http://smarthealthit.org/fhir/scopes/patient/*.r",
        "Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
    ] {
        match s(text) {
            Scope::Other(o) => assert_eq!(o.as_str(), text),
            other => panic!("{text}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// B10 — granular scopes survive encoding and parse back (SCOPE-03, AUTHZ-04)
// ---------------------------------------------------------------------------------------

const B10_REQUESTED: &str = "launch/patient openid fhirUser patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern";
const B10_LAB: &str = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

#[test]
fn b10_granular_scope_list_survives_encoding() {
    let requested = set(B10_REQUESTED);
    assert_eq!(requested.len(), 5);
    let text = requested.to_string();
    assert_eq!(
        text, B10_REQUESTED,
        "Display reproduces the input byte for byte"
    );

    // RFC 3986 unreserved characters stay, everything else is percent-encoded.
    const ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(&text, ENCODE).to_string();
    assert!(encoded.starts_with(
        "launch%2Fpatient%20openid%20fhirUser%20patient%2FObservation.rs%3Fcategory%3Dhttp%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Claboratory"
    ), "{encoded}");
    let decoded = percent_encoding::percent_decode_str(&encoded)
        .decode_utf8()
        .unwrap();
    assert_eq!(set(&decoded), requested);

    // Form encoding (spaces as `+`) also decodes to the same set.
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("scope", &text)
        .finish();
    let (_, back) = form_urlencoded::parse(form.as_bytes()).next().unwrap();
    assert_eq!(back, B10_REQUESTED);
}

#[test]
fn b10_granted_granular_scope_fields() {
    let r = res(B10_LAB);
    assert_eq!(r.context(), Patient);
    assert_eq!(
        r.resource_type(),
        &ResourceType::Named("Observation".into())
    );
    assert_eq!(
        r.permissions(),
        Permissions::only(Read) | Permissions::only(Search)
    );
    let params: Vec<(&str, &str)> = r.params().iter().map(|p| (p.name(), p.value())).collect();
    assert_eq!(
        params,
        [(
            "category",
            "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
        )]
    );
    assert!(r.is_granular());
}

#[test]
fn b10_granular_grant_covers_nothing_beyond_its_filter() {
    let granted = set(B10_LAB);
    let lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let vitals = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";
    assert_eq!(
        granted.permits(Patient, "Observation", Search),
        Permit::OnlyWith(vec![vec![SearchParam::new("category", lab).unwrap()]])
    );
    assert!(!granted.permits_with_params(Patient, "Observation", Search, &[("category", vitals)]));
    assert!(granted.permits_with_params(Patient, "Observation", Search, &[("category", lab)]));
    // percent-encoded request value is compared decoded
    assert!(granted.permits_with_params(
        Patient,
        "Observation",
        Search,
        &[(
            "category",
            "http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Claboratory"
        )]
    ));
    // no filter in the request → not allowed; two categories (OR) → not allowed
    assert!(!granted.permits_with_params::<&str, &str>(Patient, "Observation", Search, &[]));
    assert!(!granted.permits_with_params(
        Patient,
        "Observation",
        Search,
        &[("category", format!("{lab},{vitals}").as_str())]
    ));
    // extra params narrow further → allowed
    assert!(granted.permits_with_params(
        Patient,
        "Observation",
        Search,
        &[("category", lab), ("date", "ge2024")]
    ));
    assert_eq!(
        granted.permits(Patient, "Observation", Create),
        Permit::Denied
    );
    assert_eq!(granted.permits(User, "Observation", Search), Permit::Denied);
    // an unconditional scope wins over a granular one
    let both = set(&format!("{B10_LAB} patient/Observation.s"));
    assert_eq!(
        both.permits(Patient, "Observation", Search),
        Permit::Granted
    );
    assert!(both.permits_with_params(Patient, "Observation", Search, &[("category", vitals)]));
}

// ---------------------------------------------------------------------------------------
// B16 — granted scope differs from the request (RESP-02)
// ---------------------------------------------------------------------------------------

#[test]
fn b16_narrower_grant_with_extra_scope() {
    let requested = set(
        "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Condition.rs",
    );
    let granted =
        set("launch/patient openid fhirUser patient/Observation.rs patient/Immunization.rs");

    assert_eq!(granted.permits(Patient, "Condition", Read), Permit::Denied);
    assert_eq!(
        granted.permits(Patient, "Immunization", Search),
        Permit::Granted
    );

    let d = diff(&requested, &granted);
    assert_eq!(
        d,
        ScopeDiff {
            granted_as_requested: list("launch/patient openid fhirUser patient/Observation.rs"),
            narrowed: vec![],
            refused: list("offline_access patient/Condition.rs"),
            added_beyond_request: list("patient/Immunization.rs"),
        }
    );
    assert!(!d.is_exact());
    assert_eq!(
        d.to_string(),
        "granted as requested (4):\n\
         \x20 launch/patient: ask for a patient in context (`patient` in the token response)\n\
         \x20 openid: OpenID Connect sign-in: the server issues an id_token\n\
         \x20 fhirUser: adds the fhirUser claim (the FHIR resource of the signed-in user) to the id_token; needs openid\n\
         \x20 patient/Observation.rs: read and search Observation resources about the patient in context (SMART v2 syntax)\n\
         narrowed (0):\n\
         \x20 (none)\n\
         refused (2):\n\
         \x20 offline_access: a refresh token that keeps working while the user is offline\n\
         \x20 patient/Condition.rs: read and search Condition resources about the patient in context (SMART v2 syntax)\n\
         added beyond request (1):\n\
         \x20 patient/Immunization.rs: read and search Immunization resources about the patient in context (SMART v2 syntax)\n"
    );
}

#[test]
fn b16_b21_backend_grant_narrowed_to_one_v1_scope() {
    let d = diff(
        &set("system/Encounter.read system/Patient.read"),
        &set("system/Patient.read"),
    );
    assert_eq!(d.granted_as_requested, list("system/Patient.read"));
    assert_eq!(d.refused, list("system/Encounter.read"));
    assert!(d.narrowed.is_empty() && d.added_beyond_request.is_empty());
}

#[test]
fn diff_narrowed_and_equivalent_and_broader() {
    // v1 requested, v2 equivalent granted → as requested (SCOPE-06)
    let d = diff(
        &set("patient/Observation.read"),
        &set("patient/Observation.rs"),
    );
    assert!(d.is_exact(), "{d:?}");
    // fewer letters → narrowed
    let d = diff(
        &set("patient/Observation.rs"),
        &set("patient/Observation.r"),
    );
    assert_eq!(
        d.narrowed,
        vec![Narrowed {
            requested: s("patient/Observation.rs"),
            granted: list("patient/Observation.r"),
        }]
    );
    assert!(d.refused.is_empty() && d.added_beyond_request.is_empty());
    // granular grant for an unconditional request → narrowed
    let d = diff(&set("patient/Observation.rs"), &set(B10_LAB));
    assert_eq!(d.narrowed.len(), 1);
    assert_eq!(d.narrowed[0].granted, list(B10_LAB));
    // split grant covers the request (scope equivalence: .rs ≡ .r + .s)
    let d = diff(
        &set("patient/Observation.rs"),
        &set("patient/Observation.r patient/Observation.s"),
    );
    assert_eq!(d.granted_as_requested, list("patient/Observation.rs"));
    assert!(d.narrowed.is_empty() && d.added_beyond_request.is_empty());
    // broader grant: request covered, grant is beyond request
    let d = diff(&set("patient/Observation.rs"), &set("patient/*.cruds"));
    assert_eq!(d.granted_as_requested, list("patient/Observation.rs"));
    assert_eq!(d.added_beyond_request, list("patient/*.cruds"));
    // wildcard requested, one type granted → narrowed
    let d = diff(&set("user/*.rs"), &set("user/Patient.rs"));
    assert_eq!(d.narrowed.len(), 1);
    // contexts are distinct
    let d = diff(&set("patient/Observation.rs"), &set("user/Observation.rs"));
    assert_eq!(d.refused, list("patient/Observation.rs"));
    assert_eq!(d.added_beyond_request, list("user/Observation.rs"));
}

// ---------------------------------------------------------------------------------------
// B25 — v2 grammar: order, equivalence, v1 keywords (SCOPE-01, -02, -06)
// ---------------------------------------------------------------------------------------

#[test]
fn b25_build_is_canonical() {
    let built = resource_scope(Patient, "Observation", [Search, Read]).unwrap();
    assert_eq!(built.to_string(), "patient/Observation.rs");
    assert_eq!(
        resource_scope(Patient, "Observation", "sr")
            .unwrap()
            .to_string(),
        "patient/Observation.rs"
    );
    assert_eq!(
        resource_scope(Patient, "Condition", "*")
            .unwrap()
            .to_string(),
        "patient/Condition.cruds"
    );
}

#[test]
fn b25_out_of_order_is_an_error_in_strict_mode() {
    let e = scope_err("patient/Observation.sr");
    assert_eq!(e.scope, "patient/Observation.sr");
    assert_eq!(e.position, 21, "at the `r`");
    assert!(
        e.message.contains("in-order subset of `cruds`"),
        "{}",
        e.message
    );

    let e = scope_err("patient/Observation.dus");
    assert_eq!(e.position, 21, "`u` after `d`");
    assert!(
        e.message.contains("permission `u` after `d`"),
        "{}",
        e.message
    );
}

#[test]
fn b25_out_of_order_parses_leniently_with_a_warning() {
    let (scope, w) = Scope::parse_lenient("patient/Observation.sr").unwrap();
    assert_eq!(scope, s("patient/Observation.rs"));
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].kind, ScopeWarningKind::OutOfOrder);
    assert_eq!(w[0].position, 21);

    let (scope, w) = Scope::parse_lenient("patient/Observation.dus").unwrap();
    assert_eq!(res(&scope.to_string()).permissions(), perms("uds"));
    assert_eq!(scope.to_string(), "patient/Observation.uds");
    assert_eq!(w[0].kind, ScopeWarningKind::OutOfOrder);
}

#[test]
fn b25_v1_keywords_are_not_letters() {
    let r = res("patient/Observation.read");
    assert_eq!(
        r.permissions(),
        perms("rs"),
        "{{read, search}}, not {{read, delete}}"
    );
    assert!(!r.permissions().contains(Delete));
    assert_eq!(r.syntax(), ScopeSyntax::V1);
    assert_eq!(res("user/*.write").permissions(), perms("cud"));
    assert_eq!(res("user/*.*").permissions(), Permissions::ALL);
    let all = res("system/Patient.cruds");
    assert_eq!(all.context(), System);
    assert_eq!(all.permissions(), Permissions::ALL);
    let rd = res("patient/Observation.rd");
    assert_eq!(
        rd.permissions(),
        Permissions::only(Read) | Permissions::only(Delete)
    );
    assert_eq!(rd.syntax(), ScopeSyntax::V2);
}

#[test]
fn b25_non_resource_scopes_recognised_and_verbatim() {
    let line =
        "launch launch/patient launch/encounter openid fhirUser offline_access online_access";
    let parsed = set(line);
    assert_eq!(
        parsed.as_slice(),
        &[
            LAUNCH,
            launch_scope("patient").unwrap(),
            launch_scope("encounter").unwrap(),
            OPENID,
            FHIR_USER,
            OFFLINE_ACCESS,
            ONLINE_ACCESS
        ]
    );
    assert_eq!(parsed.to_string(), line);
}

// ---------------------------------------------------------------------------------------
// Errors and byte positions (strict mode) and lenient fallbacks
// ---------------------------------------------------------------------------------------

#[test]
fn strict_errors_name_the_byte_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "empty scope"),
        ("patient/Observation.rs user/Patient.rs", 22, "whitespace"),
        ("patient/Observation.", 20, "empty permissions"),
        ("patient/Observation", 19, "expected `.` and permissions"),
        ("patient/Observation.rx", 21, "unknown permission `x`"),
        ("patient/Observation.Read", 20, "unknown permission `R`"),
        ("patient/Observation.rr", 21, "permission `r` repeated"),
        ("patient/.rs", 8, "expected a FHIR resource type"),
        ("patient/observation.rs", 8, "PascalCase"),
        ("user/Obs-ervation.rs", 8, "unexpected `-`"),
        ("patient/Observation.rs?", 23, "empty search parameter"),
        ("patient/Observation.rs?category", 31, "expected `=value`"),
        (
            "patient/Observation.rs?=x",
            23,
            "empty search parameter name",
        ),
        (
            "patient/Observation.rs?a=",
            25,
            "empty search parameter value",
        ),
        (
            "patient/Observation.rs?a=1&&b=2",
            27,
            "empty search parameter",
        ),
        ("patient/Observation.rs?a=1&", 27, "empty search parameter"),
        ("patient/Observation.rs?a=%zz", 25, "two hex digits"),
        (
            "patient/Observation.read?a=1",
            24,
            "need v2 permission letters",
        ),
        ("patient/Observation.rs?a=\"x\"", 25, "RFC 6749"),
        ("patient/Observation.rs?a=é", 25, "RFC 6749"),
        ("launch/", 7, "expected a context type"),
        ("launch?role=x", 6, "needs a context type"),
        ("launch/pa-tient", 9, "unexpected `-`"),
        ("launch/list?role=", 17, "empty role"),
        ("launch/list?x=1", 12, "only `role=<uri>`"),
        ("launch/list?role=a&role=b", 18, "at most one role"),
        ("__vendor\\x", 8, "RFC 6749"),
    ];
    for &(input, position, fragment) in cases {
        let e = scope_err(input);
        assert_eq!(e.scope, input);
        assert_eq!(e.position, position, "{input}: {}", e.message);
        assert!(e.message.contains(fragment), "{input}: {}", e.message);
        let shown = Error::Scope(e).to_string();
        assert!(shown.contains(&format!("at byte {position}")), "{shown}");
    }
}

#[test]
fn lenient_keeps_malformed_smart_scopes_opaque() {
    for input in [
        "patient/Observation.",
        "patient/Observation.rx",
        "patient/observation.rs",
        "patient/Observation.read?a=1",
        "launch/list?role=a&role=b",
        "patient/Observation.rs?a=é",
    ] {
        let (scope, w) = Scope::parse_lenient(input).unwrap();
        match &scope {
            Scope::Other(o) => assert_eq!(o.as_str(), input),
            other => panic!("{input}: {other:?}"),
        }
        assert_eq!(w.len(), 1, "{input}");
        assert_eq!(w[0].kind, ScopeWarningKind::KeptOpaque);
        assert_eq!(w[0].position, scope_err(input).position, "{input}");
        assert_eq!(Scope::parse_lenient(&scope.to_string()).unwrap().0, scope);
    }
    // lenient still rejects what is not one token
    assert!(Scope::parse_lenient("").is_err());
    assert!(Scope::parse_lenient("a b").is_err());
}

#[test]
fn repeated_letters_lenient() {
    let (scope, w) = Scope::parse_lenient("patient/Observation.rrs").unwrap();
    assert_eq!(scope, s("patient/Observation.rs"));
    assert_eq!(w[0].kind, ScopeWarningKind::Repeated);
    assert_eq!(w[0].position, 21);
    assert!(
        w[0].to_string().contains("accepted and normalised"),
        "{}",
        w[0]
    );
}

#[test]
fn scope_set_parsing() {
    // multiple spaces / tabs tolerated, Display joins with one space, duplicates dropped
    let x = set("  openid   fhirUser\tpatient/*.rs openid  ");
    assert_eq!(x.to_string(), "openid fhirUser patient/*.rs");
    assert_eq!(x.len(), 3);
    assert!(set("").is_empty());
    assert!(set("   ").is_empty());
    // strict set fails on the first bad token, naming it
    match ScopeSet::from_str("openid patient/Observation.sr") {
        Err(Error::Scope(e)) => {
            assert_eq!(e.scope, "patient/Observation.sr");
            assert_eq!(e.position, 21);
        }
        other => panic!("{other:?}"),
    }
    // lenient set never fails and keeps unknown tokens
    let (x, w) = ScopeSet::parse_lenient(
        "openid patient/Observation.sr patient/Observation.rs x/y.z patient/Foo.",
    );
    assert_eq!(
        x.to_string(),
        "openid patient/Observation.rs x/y.z patient/Foo."
    );
    assert_eq!(w.len(), 2);
    let mut w2 = Vec::new();
    let y = ScopeSet::parse_with("user/*.sr", ParseMode::Lenient, &mut w2).unwrap();
    assert_eq!(y.to_string(), "user/*.rs");
    assert_eq!(w2.len(), 1);
    // v1 and v2 forms are distinct values but equivalent
    let z = set("patient/*.read patient/*.rs");
    assert_eq!(z.len(), 2);
    assert!(z.contains_equivalent(&s("patient/*.rs")));
    assert!(set("patient/*.read").contains_equivalent(&s("patient/*.rs")));
}

// ---------------------------------------------------------------------------------------
// Builders (seed: buildScopes, resourceScope, launchScope, constants)
// ---------------------------------------------------------------------------------------

#[test]
fn builders_match_the_seed_example() {
    let built: ScopeSet = [
        OPENID,
        FHIR_USER,
        OFFLINE_ACCESS,
        launch_scope("patient").unwrap(),
        resource_scope(Patient, "Observation", "rs").unwrap(),
        resource_scope(Patient, "Condition", "*").unwrap(),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        built.to_string(),
        "openid fhirUser offline_access launch/patient patient/Observation.rs patient/Condition.cruds"
    );
    assert_eq!(
        resource_scope(User, "*", Permissions::ALL)
            .unwrap()
            .to_string(),
        "user/*.cruds"
    );
    assert_eq!(
        resource_scope(System, "Patient", Read).unwrap().to_string(),
        "system/Patient.r"
    );
    assert_eq!(
        resource_scope(Patient, "Observation", vec![Create, Update])
            .unwrap()
            .to_string(),
        "patient/Observation.cu"
    );
    assert_eq!(LAUNCH.to_string(), "launch");
    assert_eq!(ONLINE_ACCESS.to_string(), "online_access");
}

#[test]
fn builder_errors() {
    let e = |r: Result<Scope, Error>| match r {
        Err(Error::Scope(e)) => e,
        other => panic!("{other:?}"),
    };
    let empty = e(resource_scope(Patient, "Observation", ""));
    assert!(empty.message.contains("at least one"), "{}", empty.message);
    assert_eq!(empty.scope, "patient/Observation.");
    assert_eq!(empty.position, 20);
    assert!(
        e(resource_scope(Patient, "Observation", Permissions::NONE))
            .message
            .contains("at least one")
    );
    assert!(
        e(resource_scope(Patient, "Observation", &[][..]))
            .message
            .contains("at least one")
    );
    assert_eq!(e(resource_scope(Patient, "Observation", "rx")).position, 1);
    assert!(
        e(resource_scope(Patient, "Observation", "rr"))
            .message
            .contains("repeated")
    );
    assert_eq!(e(resource_scope(Patient, "observation", "rs")).position, 0);
    assert!(e(launch_scope("")).message.contains("context type"));
    assert_eq!(e(launch_scope("a/b")).position, 1);
    assert!(LaunchScope::EHR.with_role("x").is_err());
    assert!(SearchParam::new("a=b", "c").is_err());
    assert!(SearchParam::new("a", "b&c").is_err());
    assert!(SearchParam::new("a", "").is_err());
}

#[test]
fn constructed_granular_and_role_scopes_round_trip() {
    let r = ResourceScope::new(
        Patient,
        ResourceType::Named("Observation".into()),
        perms("rs"),
    )
    .unwrap()
    .with_params([
        ("category", "laboratory"),
        ("code:in", "http://vs.example.org/x%7C1"),
    ])
    .unwrap();
    let text = r.to_string();
    assert_eq!(
        text,
        "patient/Observation.rs?category=laboratory&code:in=http://vs.example.org/x%7C1"
    );
    assert_eq!(res(&text), r);
    assert_eq!(r.params()[1].decoded_value(), "http://vs.example.org/x|1");
    let l = LaunchScope::context("list")
        .unwrap()
        .with_role("https://example.org/r")
        .unwrap();
    assert_eq!(
        Scope::Launch(l.clone()).to_string(),
        "launch/list?role=https://example.org/r"
    );
    assert_eq!(
        s("launch/list?role=https://example.org/r"),
        Scope::Launch(l)
    );
    // CTX-04: the case given is kept
    assert_eq!(s("launch/ImagingStudy").to_string(), "launch/ImagingStudy");
}

// ---------------------------------------------------------------------------------------
// Normalise / convert (SCOPE-06) and capabilities
// ---------------------------------------------------------------------------------------

#[test]
fn v1_v2_conversion() {
    assert_eq!(
        s("patient/Observation.read").to_v2(),
        s("patient/Observation.rs")
    );
    assert_eq!(s("user/*.write").to_v2(), s("user/*.cud"));
    assert_eq!(s("system/*.*").to_v2(), s("system/*.cruds"));
    assert_eq!(
        s("patient/Observation.rs").to_v1(),
        Some(s("patient/Observation.read"))
    );
    assert_eq!(s("user/*.cud").to_v1(), Some(s("user/*.write")));
    assert_eq!(s("system/*.cruds").to_v1(), Some(s("system/*.*")));
    assert_eq!(s("patient/Observation.r").to_v1(), None, "no v1 equivalent");
    assert_eq!(s("patient/Observation.cu").to_v1(), None);
    assert_eq!(s(B10_LAB).to_v1(), None, "granular has no v1 form");
    assert_eq!(OPENID.to_v1(), Some(OPENID));
    assert!(s("patient/*.read").is_equivalent(&s("patient/*.rs")));
    assert!(!s("patient/*.read").is_equivalent(&s("patient/*.rd")));
}

#[test]
fn syntax_for_capabilities() {
    let wanted =
        set("launch/patient openid patient/Observation.rs patient/Condition.r patient/*.cud");
    let v2_caps = ["launch-standalone", "permission-v1", "permission-v2"];
    assert_eq!(ScopeSyntax::for_capabilities(&v2_caps), ScopeSyntax::V2);
    assert_eq!(wanted.for_capabilities(&v2_caps), wanted);
    let v1_caps = vec!["launch-standalone".to_string(), "permission-v1".to_string()];
    assert_eq!(ScopeSyntax::for_capabilities(&v1_caps), ScopeSyntax::V1);
    assert_eq!(
        wanted.for_capabilities(&v1_caps).to_string(),
        "launch/patient openid patient/Observation.read patient/Condition.r patient/*.write",
        "scopes without a v1 form stay v2"
    );
    let none: [&str; 0] = [];
    assert_eq!(
        ScopeSyntax::for_capabilities(&none),
        ScopeSyntax::V1,
        "pre-2.0 server"
    );
    // to V2 merges duplicates created by the rewrite
    assert_eq!(
        set("patient/*.read patient/*.rs")
            .to_syntax(ScopeSyntax::V2)
            .to_string(),
        "patient/*.rs"
    );
}

#[test]
fn factored_is_the_shortest_form_scope_04() {
    let x = set(
        "openid patient/Observation.r user/Observation.s patient/Observation.s patient/Observation.read \
         patient/Observation.c?category=a patient/Observation.r?category=a patient/*.rs",
    );
    assert_eq!(
        x.factored().to_string(),
        "openid patient/Observation.rs user/Observation.s patient/Observation.read \
         patient/Observation.cr?category=a patient/*.rs"
    );
    assert!(diff(&x, &x.factored()).refused.is_empty());
    assert!(diff(&x, &x.factored()).narrowed.is_empty());
}

// ---------------------------------------------------------------------------------------
// permits: wildcards, contexts, v1 (SCOPE-01, -02, -05, -06)
// ---------------------------------------------------------------------------------------

#[test]
fn permits_honours_wildcards_v1_and_contexts() {
    let g = set("patient/*.read user/Observation.c system/Patient.cruds");
    assert_eq!(g.permits(Patient, "Anything", Read), Permit::Granted);
    assert_eq!(g.permits(Patient, "Observation", Search), Permit::Granted);
    assert_eq!(
        g.permits(Patient, "Observation", Delete),
        Permit::Denied,
        ".read is not .rd"
    );
    assert_eq!(g.permits(User, "Observation", Create), Permit::Granted);
    assert_eq!(
        g.permits(User, "Observation", Read),
        Permit::Denied,
        "write does not imply read"
    );
    assert_eq!(
        g.permits(User, "Patient", Read),
        Permit::Denied,
        "patient/ does not imply user/"
    );
    assert_eq!(g.permits(System, "Patient", Update), Permit::Granted);
    assert_eq!(
        g.permits(System, "patient", Update),
        Permit::Denied,
        "types are case-sensitive"
    );
    assert_eq!(g.permits(System, "Observation", Read), Permit::Denied);
    // non-resource and opaque scopes grant no resource access
    let o = set("openid launch/patient __x http://smarthealthit.org/fhir/scopes/patient/*.r");
    assert!(o.permits(Patient, "Patient", Read).is_denied());
    // several granular alternatives are a union
    let two = set("patient/Observation.s?category=a patient/Observation.rs?category=b&code=c");
    match two.permits(Patient, "Observation", Search) {
        Permit::OnlyWith(alts) => assert_eq!(alts.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(two.permits_with_params(Patient, "Observation", Search, &[("category", "a")]));
    // permits_with_params agrees with permits(..).allows(..)
    for q in [
        vec![("category", "a")],
        vec![("category", "b")],
        vec![("code", "c"), ("category", "b")],
        vec![],
    ] {
        for i in Interaction::ALL {
            assert_eq!(
                two.permits_with_params(Patient, "Observation", i, &q),
                two.permits(Patient, "Observation", i).allows(&q),
                "{q:?} {i}"
            );
        }
    }
    assert!(!two.permits_with_params(Patient, "Observation", Search, &[("category", "b")]));
    assert!(two.permits_with_params(
        Patient,
        "Observation",
        Search,
        &[("code", "c"), ("category", "b")]
    ));
    assert_eq!(
        two.permits(Patient, "Observation", Search).to_string(),
        "granted only where category=a or category=b and code=c"
    );
}

// ---------------------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------------------

#[test]
fn explain_in_plain_words() {
    let cases = [
        (
            "patient/Observation.rs",
            "read and search Observation resources about the patient in context (SMART v2 syntax)",
        ),
        (
            "user/*.cruds",
            "create, read, update, delete and search resources of every type (wildcard `*`, including future types) that the user may access (SMART v2 syntax)",
        ),
        (
            "patient/*.read",
            "read and search resources of every type (wildcard `*`, including future types) about the patient in context (SMART v1 syntax; v2 equivalent `patient/*.rs`)",
        ),
        (
            "system/Encounter.cud",
            "create, update and delete Encounter resources that this client may access (backend system access); no read or search access (SMART v2 syntax)",
        ),
        (
            B10_LAB,
            "read and search Observation resources about the patient in context, only where category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory (granular SMART v2 scope)",
        ),
        (
            "launch",
            "EHR launch: use the context the EHR established (sent with the `launch` parameter)",
        ),
        (
            "launch/imagingstudy",
            "ask for imagingstudy context (delivered in `fhirContext`)",
        ),
        (
            "launch/list?role=https://example.org/med-list-at-home",
            "ask for list context (delivered in `fhirContext`), with role https://example.org/med-list-at-home (experimental)",
        ),
        (
            "__profilePhoto.manage",
            "vendor extension scope (`__` prefix), kept as is",
        ),
        (
            "https://ehr.example.org/scopes/profilePhoto.manage",
            "extension scope (full URI), kept as is",
        ),
        (
            "http://smarthealthit.org/fhir/scopes/patient/*.r",
            "URI form of the SMART scope `patient/*.r`, kept as is",
        ),
        (
            "http://openid.net/specs/openid-connect-core-1_0#openid",
            "URI form of the OpenID Connect scope `openid`, kept as is",
        ),
        (
            "online_access",
            "a refresh token that works only while the user stays online (EHR launch; experimental)",
        ),
    ];
    for (scope, summary) in cases {
        let sc = s(scope);
        assert_eq!(explain(&sc).summary(), summary, "{scope}");
        assert_eq!(explain(&sc).to_string(), format!("{scope}: {summary}"));
    }
    assert_eq!(
        set("openid profile").explain().to_string(),
        "openid: OpenID Connect sign-in: the server issues an id_token\n\
         profile: standard OpenID Connect profile claims (legacy in SMART)\n"
    );
}

// ---------------------------------------------------------------------------------------
// serde, fuzz entry
// ---------------------------------------------------------------------------------------

#[test]
fn serde_as_a_string() {
    let x = set("launch/patient patient/Observation.rs?category=a|b");
    let json = serde_json::to_string(&x).unwrap();
    assert_eq!(
        json,
        "\"launch/patient patient/Observation.rs?category=a|b\""
    );
    assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), x);
    // lenient on the way in: malformed tokens kept
    let y: ScopeSet = serde_json::from_str("\"patient/Observation.sr patient/Foo.\"").unwrap();
    assert_eq!(y.to_string(), "patient/Observation.rs patient/Foo.");
    let one: Scope = serde_json::from_str("\"user/*.read\"").unwrap();
    assert_eq!(one, s("user/*.read"));
    assert_eq!(serde_json::to_string(&one).unwrap(), "\"user/*.read\"");
}

#[test]
fn fuzz_entry_accepts_odd_inputs() {
    for data in [
        &b""[..],
        b"   ",
        b"\xff\xfe patient/*.rs",
        b"patient/Observation.sr user/*.dus",
        b"launch/x?role=%",
        b"patient/Observation.rs?a=b&c=d&e=f=g",
        b"patient/*.read patient/*.rs patient/*.*",
        "launch/\u{00e9}".as_bytes(),
    ] {
        smart_core::fuzzing::scope(data);
    }
}

// ---------------------------------------------------------------------------------------
// proptest: parse(display(x)) == x for arbitrary valid scopes (SCOPE-01..09)
// ---------------------------------------------------------------------------------------

fn arb_context() -> impl Strategy<Value = ScopeContext> {
    prop_oneof![Just(Patient), Just(User), Just(System)]
}

fn arb_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("Observation".to_string()),
        "[A-Z][A-Za-z0-9]{0,15}",
    ]
}

fn arb_value() -> impl Strategy<Value = String> {
    "([A-Za-z0-9:/.|,_~!$'()*+;@-]|%[0-9A-Fa-f]{2}|=|\\?){1,24}"
}

fn arb_params() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-z_][a-z0-9_.:-]{0,10}", arb_value()), 0..4)
}

fn arb_resource() -> impl Strategy<Value = Scope> {
    (
        arb_context(),
        arb_type(),
        1u8..32,
        any::<bool>(),
        arb_params(),
    )
        .prop_map(|(ctx, ty, bits, v1, params)| {
            let p: Permissions = Interaction::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, x)| x)
                .collect();
            let rt = if ty == "*" {
                ResourceType::Any
            } else {
                ResourceType::Named(ty)
            };
            let r = ResourceScope::new(ctx, rt, p).expect("valid by construction");
            let r = if params.is_empty() {
                r
            } else {
                r.with_params(params).expect("valid params")
            };
            let r = if v1 { r.to_v1().unwrap_or(r) } else { r };
            Scope::Resource(r)
        })
}

fn arb_scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        4 => arb_resource(),
        1 => Just(LAUNCH),
        1 => "[a-z][a-z0-9]{0,14}".prop_map(|t| launch_scope(&t).expect("valid")),
        1 => ("[a-z]{1,10}", arb_value().prop_filter("no &", |v| !v.contains('&'))).prop_map(|(t, r)| {
            Scope::Launch(LaunchScope::context(t).and_then(|l| l.with_role(r)).expect("valid"))
        }),
        1 => prop_oneof![Just(OPENID), Just(FHIR_USER), Just(PROFILE), Just(OFFLINE_ACCESS), Just(ONLINE_ACCESS)],
        1 => "(__[A-Za-z0-9._]{1,12}|https://ehr\\.example\\.org/scopes/[a-z.]{1,10}|[a-z]{1,8}:[a-z]{1,8})".prop_map(|t| s(&t)),
    ]
}

proptest! {
    #[test]
    fn prop_scope_round_trip(scope in arb_scope()) {
        let text = scope.to_string();
        prop_assert_eq!(Scope::from_str(&text), Ok(scope.clone()));
        let (lenient, warnings) = Scope::parse_lenient(&text).unwrap();
        prop_assert_eq!(lenient, scope.clone());
        prop_assert!(warnings.is_empty());
        // v1 <-> v2 keeps the meaning
        if let Some(v1) = scope.to_v1() {
            prop_assert_eq!(v1.to_v2(), scope.to_v2());
        }
    }

    #[test]
    fn prop_set_round_trip(scopes in prop::collection::vec(arb_scope(), 0..12)) {
        let set: ScopeSet = scopes.into_iter().collect();
        let text = set.to_string();
        prop_assert_eq!(ScopeSet::from_str(&text), Ok(set.clone()));
        // a grant always permits what each of its own resource scopes names
        for r in set.resource_scopes() {
            let ty = match r.resource_type() { ResourceType::Any => "Patient", ResourceType::Named(n) => n.as_str() };
            for i in r.permissions().iter() {
                prop_assert!(!set.permits(r.context(), ty, i).is_denied());
            }
        }
        prop_assert!(diff(&set, &set).is_exact());
    }

    #[test]
    fn prop_lenient_never_fails_and_round_trips(input in "[ -~]{0,60}") {
        let (set, _) = ScopeSet::parse_lenient(&input);
        prop_assert_eq!(ScopeSet::parse_lenient(&set.to_string()).0, set);
        smart_core::fuzzing::scope(input.as_bytes());
    }
}

/// The committed seeds in `fuzz/corpus/scope/` replay without panicking (the shared
/// `fuzz_corpus` test needs every target's corpus; this one checks ours alone).
#[test]
fn scope_fuzz_seeds_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/scope");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("scope corpus present") {
        let data = std::fs::read(entry.expect("dir entry").path()).expect("readable seed");
        smart_core::fuzzing::scope(&data);
        n += 1;
    }
    assert!(n >= 10, "only {n} seeds");
}

#[test]
fn scope_08_uri_forms_round_trip() {
    use smart_core::scope::{OIDC_SCOPE_URI_PREFIX, SMART_SCOPE_URI_PREFIX, Scope};
    for short in [
        "patient/Observation.rs",
        "launch/patient",
        "offline_access",
        "fhirUser",
        "user/*.read",
    ] {
        let s: Scope = short.parse().unwrap();
        let uri = s.to_uri();
        assert_eq!(uri, format!("{SMART_SCOPE_URI_PREFIX}{short}"));
        assert_eq!(Scope::from_uri(&uri).unwrap(), s, "{uri}");
    }
    let openid: Scope = "openid".parse().unwrap();
    assert_eq!(openid.to_uri(), format!("{OIDC_SCOPE_URI_PREFIX}openid"));
    assert_eq!(
        Scope::from_uri("http://openid.net/specs/openid-connect-core-1_0#openid").unwrap(),
        openid
    );
    // Short forms pass through; a malformed scope after the prefix is an error.
    assert_eq!(
        Scope::from_uri("launch").unwrap(),
        "launch".parse::<Scope>().unwrap()
    );
    assert!(Scope::from_uri(&format!("{SMART_SCOPE_URI_PREFIX}patient/Observation.sr")).is_err());
}

#[test]
fn b25_scope_error_kinds_are_typed() {
    use smart_core::Error;
    use smart_core::error::ScopeErrorKind as K;
    use smart_core::scope::Scope;
    let kind = |s: &str| match s.parse::<Scope>() {
        Err(Error::Scope(e)) => e.kind,
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(kind("patient/Observation.sr"), K::OutOfOrder);
    assert_eq!(kind("patient/Observation.dus"), K::OutOfOrder);
    assert_eq!(kind("patient/Observation.rr"), K::RepeatedPermission);
    assert_eq!(kind("patient/Observation.rx"), K::UnknownPermission);
    assert_eq!(kind("patient/Observation."), K::MissingPermissions);
    assert_eq!(kind("patient/Observation"), K::MissingPermissions);
    assert_eq!(kind("patient/observation.rs"), K::InvalidResourceType);
    assert_eq!(kind("patient/Observation.rs?category"), K::InvalidParameter);
    assert_eq!(
        kind("patient/Observation.read?category=x"),
        K::InvalidParameter
    );
    assert_eq!(kind("launch/"), K::InvalidLaunch);
    assert_eq!(kind("launch/patient?role="), K::InvalidLaunch);
    assert_eq!(kind(""), K::Empty);
    assert_eq!(kind("a b"), K::Whitespace);
    assert_eq!(kind("patient/Observation.rs\"x"), K::InvalidCharacter);
}

// ---------------------------------------------------------------------------------------
// Reference implementations: the straightforward linear-scan (quadratic) `ScopeSet` code as it
// stood before the indexed versions, kept here as an oracle. The proptests below check that
// `diff`, `insert`, `factored`, `contains`, `contains_equivalent`, `covers`, `permits` and
// `remove` give exactly the oracle's answers (values and order) on random scope sets drawn
// from a small universe, so that requested and granted scopes overlap often.
// ---------------------------------------------------------------------------------------

mod reference {
    use smart_core::scope::{
        Interaction, Narrowed, Permit, ResourceScope, Scope, ScopeContext, ScopeDiff, ScopeSyntax,
        SearchParam,
    };

    fn resource_scopes(set: &[Scope]) -> impl Iterator<Item = &ResourceScope> {
        set.iter().filter_map(Scope::as_resource)
    }

    /// `ScopeSet::insert` in a loop on a plain list: the kept scopes and each call's answer.
    pub fn insert_all(scopes: &[Scope]) -> (Vec<Scope>, Vec<bool>) {
        let mut kept: Vec<Scope> = Vec::new();
        let mut answers = Vec::new();
        for s in scopes {
            if kept.contains(s) {
                answers.push(false);
            } else {
                kept.push(s.clone());
                answers.push(true);
            }
        }
        (kept, answers)
    }

    pub fn contains(set: &[Scope], scope: &Scope) -> bool {
        set.contains(scope)
    }

    pub fn contains_equivalent(set: &[Scope], scope: &Scope) -> bool {
        set.iter().any(|s| s.is_equivalent(scope))
    }

    fn params_implied(needed: &[SearchParam], have: &[SearchParam]) -> bool {
        needed
            .iter()
            .all(|n| have.iter().any(|h| n.matches(h.name(), h.value())))
    }

    pub fn covers(set: &[Scope], target: &ResourceScope) -> bool {
        target.permissions().iter().all(|i| {
            resource_scopes(set).any(|g| {
                g.context() == target.context()
                    && g.resource_type().covers(target.resource_type())
                    && g.permissions().contains(i)
                    && params_implied(g.params(), target.params())
            })
        })
    }

    pub fn permits(
        set: &[Scope],
        context: ScopeContext,
        resource_type: &str,
        interaction: Interaction,
    ) -> Permit {
        let mut alternatives: Vec<Vec<SearchParam>> = Vec::new();
        for r in resource_scopes(set) {
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

    pub fn factored(set: &[Scope]) -> Vec<Scope> {
        let mut out: Vec<Scope> = Vec::with_capacity(set.len());
        for s in set {
            if let Scope::Resource(r) = s
                && r.syntax() == ScopeSyntax::V2
            {
                let twin = out.iter_mut().find(|o| match o {
                    Scope::Resource(o) => {
                        o.syntax() == ScopeSyntax::V2
                            && o.context() == r.context()
                            && o.resource_type() == r.resource_type()
                            && o.params() == r.params()
                    }
                    _ => false,
                });
                if let Some(o) = twin {
                    let Scope::Resource(old) = &*o else {
                        unreachable!("twins are resource scopes")
                    };
                    let merged = ResourceScope::new(
                        old.context(),
                        old.resource_type().clone(),
                        old.permissions().union(r.permissions()),
                    )
                    .and_then(|m| m.with_params(old.params().iter().map(|p| (p.name(), p.value()))))
                    .expect("a merge of valid scopes is valid");
                    *o = Scope::Resource(merged);
                    continue;
                }
            }
            out.push(s.clone());
        }
        insert_all(&out).0
    }

    pub fn diff(requested: &[Scope], granted: &[Scope]) -> ScopeDiff {
        let mut d = ScopeDiff::default();
        for r in requested {
            match r {
                Scope::Resource(rs) => {
                    if contains_equivalent(granted, r) || covers(granted, rs) {
                        d.granted_as_requested.push(r.clone());
                        continue;
                    }
                    let overlapping: Vec<Scope> = resource_scopes(granted)
                        .filter(|g| {
                            g.context() == rs.context()
                                && g.resource_type().overlaps(rs.resource_type())
                                && !g.permissions().intersection(rs.permissions()).is_empty()
                        })
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
                    if contains(granted, other) {
                        d.granted_as_requested.push(other.clone());
                    } else {
                        d.refused.push(other.clone());
                    }
                }
            }
        }
        for g in granted {
            let beyond = match g {
                Scope::Resource(gs) => !contains_equivalent(requested, g) && !covers(requested, gs),
                other => !contains(requested, other),
            };
            if beyond {
                d.added_beyond_request.push(g.clone());
            }
        }
        d
    }
}

/// A resource scope from a small universe: few types (with `*`), few parameters (one value
/// percent-encoded, `%61` = `a`), v1 where possible.
fn arb_small_resource() -> impl Strategy<Value = Scope> {
    let ty = prop_oneof![
        Just("*"),
        Just("Observation"),
        Just("Patient"),
        Just("Condition")
    ];
    let param = (
        prop_oneof![Just("category"), Just("code")],
        prop_oneof![Just("a"), Just("b"), Just("%61")],
    );
    let params = prop_oneof![
        3 => Just(Vec::new()),
        1 => prop::collection::vec(param, 1..3),
    ];
    (arb_context(), ty, 1u8..32, any::<bool>(), params).prop_map(|(ctx, ty, bits, v1, params)| {
        let p: Permissions = Interaction::ALL
            .into_iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, x)| x)
            .collect();
        let rt = if ty == "*" {
            ResourceType::Any
        } else {
            ResourceType::Named(ty.to_owned())
        };
        let r = ResourceScope::new(ctx, rt, p)
            .and_then(|r| r.with_params(params))
            .expect("valid by construction");
        let r = if v1 { r.to_v1().unwrap_or(r) } else { r };
        Scope::Resource(r)
    })
}

fn arb_small_scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        6 => arb_small_resource(),
        1 => prop_oneof![
            Just(LAUNCH),
            Just(s("launch/patient")),
            Just(OPENID),
            Just(FHIR_USER),
            Just(OFFLINE_ACCESS),
            Just(s("__x")),
        ],
    ]
}

/// A request and a grant: the grant keeps some requested scopes (masked) and adds others.
fn arb_request_and_grant() -> impl Strategy<Value = (Vec<Scope>, Vec<Scope>)> {
    (
        prop::collection::vec(arb_small_scope(), 0..40),
        prop::collection::vec(arb_small_scope(), 0..40),
        prop::collection::vec(any::<bool>(), 40),
    )
        .prop_map(|(requested, extra, keep)| {
            let mut granted: Vec<Scope> = requested
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(s, _)| s.clone())
                .collect();
            granted.extend(extra);
            (requested, granted)
        })
}

fn hash_of(set: &ScopeSet) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    set.hash(&mut h);
    h.finish()
}

proptest! {
    #[test]
    fn prop_diff_matches_reference((requested, granted) in arb_request_and_grant()) {
        let requested: ScopeSet = requested.into_iter().collect();
        let granted: ScopeSet = granted.into_iter().collect();
        let (req, grant) = (requested.as_slice(), granted.as_slice());
        prop_assert_eq!(diff(&requested, &granted), reference::diff(req, grant));
        prop_assert_eq!(diff(&granted, &requested), reference::diff(grant, req));
        prop_assert_eq!(diff(&requested, &requested), reference::diff(req, req));
        let factored = requested.factored();
        prop_assert_eq!(
            diff(&requested, &factored),
            reference::diff(req, factored.as_slice())
        );
    }

    #[test]
    fn prop_set_operations_match_reference(
        scopes in prop::collection::vec(arb_small_scope(), 0..60),
        probes in prop::collection::vec(arb_small_scope(), 0..12),
    ) {
        // insert, one by one and via collect / extend
        let (kept, answers) = reference::insert_all(&scopes);
        let mut set = ScopeSet::new();
        let got: Vec<bool> = scopes.iter().map(|s| set.insert(s.clone())).collect();
        prop_assert_eq!(&got, &answers);
        prop_assert_eq!(set.as_slice(), kept.as_slice());
        let collected: ScopeSet = scopes.iter().cloned().collect();
        prop_assert_eq!(&collected, &set);
        prop_assert_eq!(hash_of(&collected), hash_of(&set));
        prop_assert_eq!(
            format!("{set:?}"),
            format!("ScopeSet {{ scopes: {:?} }}", set.as_slice())
        );

        // factored: same scopes, same order, same text
        let factored = set.factored();
        let expected = reference::factored(set.as_slice());
        prop_assert_eq!(factored.as_slice(), expected.as_slice());

        // lookups
        for p in probes.iter().chain(&scopes) {
            prop_assert_eq!(set.contains(p), reference::contains(&kept, p));
            prop_assert_eq!(
                set.contains_equivalent(p),
                reference::contains_equivalent(&kept, p)
            );
            if let Scope::Resource(r) = p {
                prop_assert_eq!(set.covers(r), reference::covers(&kept, r));
            }
        }
        for ctx in ScopeContext::ALL {
            for ty in ["Observation", "Patient", "Condition", "Encounter"] {
                for i in Interaction::ALL {
                    prop_assert_eq!(
                        set.permits(ctx, ty, i),
                        reference::permits(&kept, ctx, ty, i)
                    );
                }
            }
        }

        // remove, then insert again: the set stays consistent with a plain list
        let mut list = kept.clone();
        for p in &probes {
            let was = list.contains(p);
            list.retain(|s| s != p);
            prop_assert_eq!(set.remove(p), was);
            prop_assert!(!set.contains(p));
            prop_assert_eq!(set.as_slice(), list.as_slice());
            prop_assert!(set.insert(p.clone()));
            list.push(p.clone());
            prop_assert!(!set.insert(p.clone()));
            prop_assert_eq!(set.as_slice(), list.as_slice());
        }
        let rebuilt: ScopeSet = list.iter().cloned().collect();
        prop_assert_eq!(hash_of(&rebuilt), hash_of(&set));
        prop_assert_eq!(rebuilt, set);
    }
}
