//! `smart token --cache`: one token for many runs, in a directory or in Redis, optionally
//! encrypted.

use base64::Engine as _;
use smart_testkit as kit;

use super::*;

const SCOPE: &str = "system/Patient.rs";

fn b64(bytes: [u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn cache_dir_100_sequential_runs_make_exactly_one_token_request() {
    let (client_id, key) = backend_client(SCOPE);
    let dir = tmp("cache");
    let mut first: Option<String> = None;
    for run in 0..100 {
        let o = token(&client_id, &key, SCOPE, &["--cache", s(&dir)]);
        assert!(o.status.success(), "run {run}: {}", stderr(&o));
        assert!(stderr(&o).is_empty(), "run {run}: {}", stderr(&o));
        let t = stdout(&o).trim().to_owned();
        match &first {
            None => first = Some(t),
            Some(f) => assert_eq!(&t, f, "run {run} printed another token"),
        }
    }
    let requests = kit::token_requests(&client_id);
    eprintln!("100 runs of `smart token --cache DIR` -> {requests} token request(s)");
    assert_eq!(requests, 1);
    let token = first.unwrap();
    let (status, body) = kit::fhir_get("Patient/123", &format!("Bearer {token}"));
    assert_eq!(status, 200, "{body}");
    // A private directory: one 0600 entry (plus the lock file), named by a hash of the key.
    let files = snapshot(&dir);
    let entries: Vec<&String> = files
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(entries.len(), 1, "{files:?}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(entries[0])), 0o600);
    }
    assert!(
        !entries[0].contains(&client_id),
        "the file name does not reveal the client"
    );
}

#[test]
fn cache_is_keyed_by_scope_and_default_dir_is_the_user_cache() {
    let (client_id, key) = backend_client("system/Patient.rs system/Observation.rs");
    let home = tmp("xdg");
    let env = [("XDG_CACHE_HOME", s(&home))];
    for _ in 0..3 {
        let o = token_with(&client_id, &key, "system/Patient.rs", &["--cache"], &env);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(kit::token_requests(&client_id), 1);
    assert!(
        home.join("smart-rs/tokens").is_dir(),
        "FileTokenStore::default_dir() under XDG_CACHE_HOME"
    );
    // Another scope is another cache entry: one more request, then cached too.
    for _ in 0..3 {
        let o = token_with(
            &client_id,
            &key,
            "system/Observation.rs",
            &["--cache"],
            &env,
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(kit::token_requests(&client_id), 2);
    // -v says where the token came from and when it expires, in words.
    let o = token_with(
        &client_id,
        &key,
        "system/Patient.rs",
        &["--cache", "-v"],
        &env,
    );
    let err = stderr(&o);
    assert!(err.contains("; from the cache"), "{err}");
    assert!(err.contains(" UTC (in "), "{err}");
}

#[test]
fn cache_in_redis_a_handful_of_runs_make_one_token_request() {
    let (client_id, key) = backend_client(SCOPE);
    let url = format!("{}/0", kit::redis_url());
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let o = token(&client_id, &key, SCOPE, &["--cache", &url]);
        assert!(o.status.success(), "{}", stderr(&o));
        tokens.push(stdout(&o).trim().to_owned());
    }
    assert_eq!(kit::token_requests(&client_id), 1);
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "{tokens:?}");

    // Redis unreachable: a warning, and the token all the same.
    let o = token(
        &client_id,
        &key,
        SCOPE,
        &["--cache", "redis://127.0.0.1:1/0"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).trim().is_empty());
    assert!(
        stderr(&o).contains("going on without the token store redis://127.0.0.1:1/0"),
        "{}",
        stderr(&o)
    );

    // Encrypted in Redis: a key from a file.
    let (client_id, key) = backend_client(SCOPE);
    let key_file = tmp("redis.key");
    std::fs::write(&key_file, b64([7; 32])).unwrap();
    for _ in 0..3 {
        let o = token(
            &client_id,
            &key,
            SCOPE,
            &["--cache", &url, "--cache-key-file", s(&key_file)],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(kit::token_requests(&client_id), 1);
    // Read without the key: a clear error, no request.
    let o = token(&client_id, &key, SCOPE, &["--cache", &url]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("encrypt"), "{}", stderr(&o));
    assert_eq!(kit::token_requests(&client_id), 1);
}

#[test]
fn cache_with_a_wrong_key_is_a_clear_error_and_the_cache_is_unchanged() {
    let (client_id, key) = backend_client(SCOPE);
    let dir = tmp("cache");
    let right = b64([1; 32]);
    let wrong = b64([2; 32]);
    let with_key = |k: &str| {
        token_with(
            &client_id,
            &key,
            SCOPE,
            &[
                "--cache",
                s(&dir),
                "--cache-key-env",
                "SMART_TEST_CACHE_KEY",
            ],
            &[("SMART_TEST_CACHE_KEY", k)],
        )
    };
    let o = with_key(&right);
    assert!(o.status.success(), "{}", stderr(&o));
    let access_token = stdout(&o).trim().to_owned();
    assert_eq!(kit::token_requests(&client_id), 1);
    let before = snapshot(&dir);
    assert!(
        before
            .iter()
            .all(|(_, bytes)| !String::from_utf8_lossy(bytes).contains(&access_token)),
        "the token is encrypted at rest"
    );

    let o = with_key(&wrong);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty(), "no token printed");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("smart: error: token store entry cannot be decrypted"),
        "{err}"
    );
    assert!(
        err.contains("another encryption key"),
        "says what to do: {err}"
    );
    assert!(
        !err.contains(&right) && !err.contains(&wrong),
        "no key in the error"
    );
    assert_eq!(snapshot(&dir), before, "the cache is unchanged");
    assert_eq!(kit::token_requests(&client_id), 1, "no token request");

    // Without a key, and with a malformed key: errors too, nothing requested or changed.
    let o = token(&client_id, &key, SCOPE, &["--cache", s(&dir)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("this store has no key"),
        "{}",
        stderr(&o)
    );
    let o = with_key("not base64!");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not base64"), "{}", stderr(&o));
    assert_eq!(snapshot(&dir), before);
    assert_eq!(kit::token_requests(&client_id), 1);

    // The right key still reads the cached token.
    let o = with_key(&right);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), access_token);
    assert_eq!(kit::token_requests(&client_id), 1);

    // A key option without --cache is a usage error.
    let o = token(&client_id, &key, SCOPE, &["--cache-key-env", "X"]);
    assert_eq!(o.status.code(), Some(2));
}
