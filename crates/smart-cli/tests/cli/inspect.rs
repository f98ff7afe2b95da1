//! `smart inspect`: JWTs and token sets decoded and explained, secrets hidden unless asked.

use base64::Engine as _;
use smart_testkit as kit;

use super::*;

fn b64url(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn inspect_a_jwt_shows_header_claims_and_times_but_not_the_signature() {
    let exp = 1_796_120_100; // 2026-12-01 10:15:00 UTC
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJlLWJ5dGVz",
        b64url(&serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})),
        b64url(&serde_json::json!({
            "iss": "https://ehr.example.org", "sub": "u1", "aud": "my-app",
            "exp": exp, "iat": exp - 3600, "fhirUser": "Practitioner/7",
            "scope": "patient/Observation.rs launch/patient"
        }))
    );
    let o = smart(&["inspect", &jwt]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("(JWT; signature not verified)"), "{out}");
    assert!(out.contains("alg            RS256"), "{out}");
    assert!(out.contains("kid            k1"), "{out}");
    assert!(out.contains("fhirUser       Practitioner/7"), "{out}");
    assert!(
        out.contains(&format!("exp            {exp} = 2026-12-01 10:15:00 UTC (")),
        "{out}"
    );
    assert!(
        out.contains("iat            1796116500 = 2026-12-01 09:15:00 UTC ("),
        "{out}"
    );
    assert!(
        out.contains("patient/Observation.rs: read and search Observation resources about the patient in context"),
        "scopes explained: {out}"
    );
    assert!(
        !out.contains("c2lnbmF0dXJlLWJ5dGVz"),
        "signature hidden: {out}"
    );
    assert!(
        out.contains("signature        (hidden: signature, 20 characters"),
        "{out}"
    );

    let o = smart(&["inspect", &jwt, "--show-secrets"]);
    assert!(stdout(&o).contains("signature        c2lnbmF0dXJlLWJ5dGVz"));

    let o = smart(&["inspect", &jwt, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["kind"], "jwt");
    assert_eq!(v["claims"]["exp"], exp, "--json keeps epoch seconds");
    assert_eq!(v["header"]["kid"], "k1");
    assert!(v.get("signature").is_none());
}

#[test]
fn inspect_a_login_token_file_and_a_saved_session_hides_the_tokens() {
    let client_id = public_client(STANDALONE_SCOPE);
    let dir = tmp("sessions");
    let o = login(
        &["--scope", STANDALONE_SCOPE, "--json", "--save", s(&dir)],
        &client_id,
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let file = tmp("login.json");
    std::fs::write(&file, stdout(&o)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let secrets = [
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
        v["id_token"]
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_owned(),
    ];

    let o = smart(&["inspect", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("token set\n"), "{out}");
    assert!(out.contains("patient              123"), "{out}");
    assert!(out.contains("launch/patient: "), "scopes explained: {out}");
    assert!(out.contains("expires              "), "{out}");
    assert!(out.contains(" UTC (in "), "{out}");
    assert!(
        out.contains("access_token         (hidden: opaque"),
        "{out}"
    );
    assert!(
        out.contains("refresh_token        (hidden: present"),
        "{out}"
    );
    assert!(
        out.contains("id_token (JWT; signature not verified)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("aud            {client_id}")),
        "{out}"
    );
    for secret in &secrets {
        assert!(!out.contains(secret.as_str()), "a secret printed: {out}");
    }
    let o = smart(&["inspect", s(&file), "--show-secrets"]);
    let out = stdout(&o);
    for secret in &secrets {
        assert!(
            out.contains(secret.as_str()),
            "--show-secrets prints {secret}"
        );
    }

    // The saved session, through its store.
    let o = smart(&["inspect", "--from", s(&dir)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("client_id            {client_id}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("fhir_base            {}", kit::fhir_base())),
        "{out}"
    );
    assert!(!out.contains(secrets[1].as_str()), "refresh token hidden");
    let o = smart(&["inspect", "--from", s(&dir), "--json"]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["kind"], "token_set");
    assert_eq!(j["token"]["refresh_token"], "(hidden)");
    assert!(j["token"]["expires_at"].as_u64().is_some());
    assert!(j["id_token"]["claims"]["exp"].as_u64().is_some());
}

#[test]
fn inspect_garbage_is_a_clear_message() {
    let file = tmp("garbage.txt");
    std::fs::write(&file, "hello, world").unwrap();
    let o = smart(&["inspect", s(&file)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is neither a JWT nor a token set"), "{err}");
    assert!(!err.contains("StoredToken"), "{err}");
    let o = smart(&["inspect", "definitely-not-a-file-or-jwt"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("neither a compact JWT nor an existing file"),
        "{}",
        stderr(&o)
    );
    let o = smart(&["inspect", "e30.bm90LWpzb24.sig"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("payload is not a JSON object"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inspect_from_a_missing_directory_does_not_create_it() {
    let dir = tmp("typo-dir");
    let o = smart(&["inspect", "--from", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert!(
        !dir.exists(),
        "a read-only command created {}",
        dir.display()
    );
}
