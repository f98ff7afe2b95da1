//! Parse cost of the two documents every flow reads: the real-server smart-configuration
//! fixture and a token response (the IG's example). In each group the library parse (every
//! tolerance rule and warning included) sits next to a plain typed serde parse of the same
//! bytes, and next to a parse into `serde_json::Value` (what the library did before it read
//! documents with typed tolerant visitors).
#![allow(missing_docs)] // criterion_main! generates an undocumented `main`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smart_core::discovery::parse_smart_configuration;
use smart_core::token::parse_token_response;
use smart_core::{FhirBaseUrl, HttpResponse, UnixTime};
use url::Url;

const CONFIG: &[u8] = include_bytes!("../tests/fixtures/real-server/smart-configuration.json");
const TOKEN: &[u8] = include_bytes!("../tests/fixtures/token/ig-6.4-token.json");

/// The smart-configuration members with the types a plain typed parse would use (endpoints
/// as `Url`, like the library's output).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct PlainConfig {
    issuer: Option<String>,
    jwks_uri: Option<Url>,
    authorization_endpoint: Option<Url>,
    token_endpoint: Url,
    introspection_endpoint: Option<Url>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    grant_types_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    #[serde(default)]
    response_types_supported: Vec<String>,
    #[serde(default)]
    capabilities: Vec<String>,
}

/// The token-response members of RFC 6749 §5.1 plus SMART's launch context, plainly typed.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct PlainToken {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    scope: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    patient: Option<String>,
    encounter: Option<String>,
    need_patient_banner: Option<bool>,
    smart_style_url: Option<String>,
}

fn bench(c: &mut Criterion) {
    let base = FhirBaseUrl::new("http://127.0.0.1:8445/v/r4/fhir").unwrap();
    let url = base.well_known();
    assert!(parse_smart_configuration(CONFIG, &base, &url).is_ok());
    let mut g = c.benchmark_group("parse_smart_configuration_real_server");
    g.bench_function("library", |b| {
        b.iter(|| parse_smart_configuration(black_box(CONFIG), &base, &url).unwrap())
    });
    g.bench_function("plain_serde_typed", |b| {
        b.iter(|| serde_json::from_slice::<PlainConfig>(black_box(CONFIG)).unwrap())
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(CONFIG)).unwrap())
    });
    g.finish();

    let token_url = Url::parse("https://ehr.example.org/token").unwrap();
    let now = UnixTime::from_secs(1_700_000_000);
    let resp = HttpResponse::new(200, TOKEN.to_vec());
    assert!(parse_token_response(&resp, &token_url, now).is_ok());
    let mut g = c.benchmark_group("parse_token_response_ig");
    g.bench_function("library", |b| {
        b.iter(|| parse_token_response(black_box(&resp), &token_url, now).unwrap())
    });
    g.bench_function("plain_serde_typed", |b| {
        b.iter(|| serde_json::from_slice::<PlainToken>(black_box(TOKEN)).unwrap())
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(TOKEN)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
