//! `smart login --save` and `smart refresh` on the token stores.

use smart_testkit as kit;

use super::*;

#[test]
fn refresh_reads_the_client_id_from_the_session_and_checks_an_explicit_one() {
    let client_id = public_client(STANDALONE_SCOPE);
    let dir = tmp("sessions");
    let o = login(
        &[
            "--scope",
            STANDALONE_SCOPE,
            "--save",
            s(&dir),
            "--session",
            "ehr-a",
        ],
        &client_id,
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "saved the session as `ehr-a` in {}; refresh it with `smart refresh --from {} --session ehr-a`",
            dir.display(),
            dir.display()
        )),
        "{}",
        stderr(&o)
    );
    let before = saved_session(&dir, "ehr-a");

    // A wrong explicit client id: an error naming both, nothing sent, nothing changed.
    let o = smart(&[
        "refresh",
        "--from",
        s(&dir),
        "--session",
        "ehr-a",
        "--client-id",
        "someone-else",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("`someone-else`") && err.contains(&format!("`{client_id}`")),
        "names both ids: {err}"
    );
    assert_eq!(saved_session(&dir, "ehr-a"), before);

    // Without --client-id (and with the right one): refreshed and rotated in the store.
    let requests = kit::token_requests(&client_id);
    let o = smart(&["refresh", "--from", s(&dir), "--session", "ehr-a"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(kit::token_requests(&client_id), requests + 1);
    let after = saved_session(&dir, "ehr-a");
    assert_ne!(after.token.refresh_token, before.token.refresh_token);
    let o = smart(&[
        "refresh",
        "--from",
        s(&dir),
        "--session",
        "ehr-a",
        "--client-id",
        &client_id,
        "--fhir-base",
        &kit::fhir_base(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // --fhir-base is checked against the saved session's.
    let o = smart(&[
        "refresh",
        "--from",
        s(&dir),
        "--session",
        "ehr-a",
        "--fhir-base",
        "http://127.0.0.1:9/other/fhir",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not match the saved session's FHIR base"));

    // Another session name: says what to do.
    let o = smart(&["refresh", "--from", s(&dir), "--session", "nobody"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("no saved session `nobody`"), "{err}");
    assert!(err.contains("smart login --save"), "{err}");
}

#[test]
fn login_save_without_a_value_uses_the_default_directory() {
    let client_id = public_client(STANDALONE_SCOPE);
    let home = tmp("xdg");
    let env = [("XDG_CACHE_HOME", s(&home))];
    let o = login(&["--scope", STANDALONE_SCOPE, "--save"], &client_id, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = home.join("smart-rs/tokens");
    assert_eq!(saved_session(&dir, "default").client_id.as_str(), client_id);
    let o = smart_with(&["refresh", "--json"], &env, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["patient"], "123");
    assert!(v["expires_at"].as_u64().is_some(), "--json: epoch seconds");
}

#[test]
fn login_save_in_redis_encrypted_then_refresh() {
    let client_id = public_client(STANDALONE_SCOPE);
    let url = format!("{}/0", kit::redis_url());
    let session = kit::unique("alice");
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, base64
    let env = [("SMART_TEST_STORE_KEY", key)];
    let o = login(
        &[
            "--scope",
            STANDALONE_SCOPE,
            "--save",
            &url,
            "--session",
            &session,
            "--store-key-env",
            "SMART_TEST_STORE_KEY",
        ],
        &client_id,
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let refresh = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["refresh", "--from", &url, "--session", &session, "--json"];
        args.extend_from_slice(extra);
        smart_with(&args, env, None)
    };
    let o = refresh(&["--store-key-env", "SMART_TEST_STORE_KEY"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let (status, _) = kit::fhir_get(
        "Patient/123",
        &format!("Bearer {}", v["access_token"].as_str().unwrap()),
    );
    assert_eq!(status, 200);
    // Without the key: a clear error.
    let requests = kit::token_requests(&client_id);
    let o = refresh(&[], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("cannot read the saved session"), "{err}");
    assert!(err.contains("encrypted"), "{err}");
    assert_eq!(kit::token_requests(&client_id), requests);
}

#[test]
fn refresh_from_garbage_or_a_plain_file_is_a_clear_message() {
    // A store directory whose session entry is garbage.
    let dir = tmp("sessions");
    let entry = smart_store::FileTokenStore::new(&dir)
        .unwrap()
        .path_of("smart-cli:session:default");
    std::fs::write(&entry, "this is not a token set").unwrap();
    let o = smart(&["refresh", "--from", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot read the saved session `default`"),
        "{err}"
    );
    assert!(err.contains("not a token store entry"), "{err}");
    assert!(!err.contains("StoredToken"), "no internal type name: {err}");
    assert_eq!(
        std::fs::read_to_string(&entry).unwrap(),
        "this is not a token set",
        "left as it is"
    );

    // A plain file (e.g. a token file from an older smart, or anything else).
    let file = tmp("tokens.json");
    std::fs::write(&file, "{\"garbage\": true}").unwrap();
    let o = smart(&["refresh", "--token-file", s(&file)]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("is a file, not a token store directory"),
        "{err}"
    );
    assert!(!err.contains("StoredToken"), "{err}");

    let o = smart(&["refresh", "--from", s(&tmp("missing"))]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}
