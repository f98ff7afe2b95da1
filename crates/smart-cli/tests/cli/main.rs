//! The `smart` binary end to end, against the local sandbox where a server is needed (and a
//! local Redis for the Redis store). One test binary; the modules group the behaviours.

mod basics;
mod cache;
mod helpful;
mod inspect;
mod sessions;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use smart_testkit as kit;

/// Run `smart` with `args`.
pub fn smart(args: &[&str]) -> Output {
    smart_with(args, &[], None)
}

/// Run `smart` with `args`, extra environment variables and optional standard input.
pub fn smart_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smart"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run smart");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().expect("wait for smart")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory of this test's own, and `name` inside it.
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(kit::unique("smart-cli"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A path as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The permission bits of `path`.
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `smart keygen` for an algorithm: returns (key path, public JWKS).
pub fn keygen(alg: &str) -> (PathBuf, serde_json::Value) {
    let key = tmp("key.pem");
    let o = smart(&["keygen", "--alg", alg, "--out", s(&key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    (
        key,
        serde_json::from_str(&stdout(&o)).expect("JWKS on stdout"),
    )
}

/// A Backend Services client registered with a new ES384 key for `scope`: (client_id, key).
pub fn backend_client(scope: &str) -> (String, PathBuf) {
    let (key, jwks) = keygen("ES384");
    let client_id = kit::unique("cli-bs");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"], "jwks": jwks, "scope": scope
    }));
    (client_id, key)
}

/// A public App Launch client for the loopback redirect URI.
pub fn public_client(scope: &str) -> String {
    let client_id = kit::unique("cli-public");
    kit::register_client(&serde_json::json!({
        "client_id": client_id, "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://127.0.0.1/callback"], "scope": scope
    }));
    client_id
}

/// `smart token` for the sandbox with `extra` arguments.
pub fn token(client_id: &str, key: &Path, scope: &str, extra: &[&str]) -> Output {
    token_with(client_id, key, scope, extra, &[])
}

/// `smart token` with environment variables.
pub fn token_with(
    client_id: &str,
    key: &Path,
    scope: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let base = kit::fhir_base();
    let mut args = vec![
        "token",
        "--fhir-base",
        &base,
        "--client-id",
        client_id,
        "--key",
        s(key),
        "--scope",
        scope,
    ];
    args.extend_from_slice(extra);
    smart_with(&args, env, None)
}

/// The scope of a standalone launch with a refresh token.
pub const STANDALONE_SCOPE: &str = "launch/patient openid fhirUser offline_access patient/*.rs";

/// Runs `smart login --no-browser`, plays the browser with the URL it prints, delivers the
/// callback to its loopback listener, and returns its output.
pub fn login(extra: &[&str], client_id: &str, env: &[(&str, &str)]) -> Output {
    login_with_stdin(extra, client_id, env, None)
}

/// [`login`] with `stdin` written to the process first.
pub fn login_with_stdin(
    extra: &[&str],
    client_id: &str,
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smart"));
    cmd.args([
        "login",
        "--fhir-base",
        &kit::fhir_base(),
        "--client-id",
        client_id,
        "--no-browser",
        "--timeout-secs",
        "60",
    ])
    .args(extra)
    .stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        // Dropped at the end of the statement: the CLI sees end of input.
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    let mut before = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("http") {
            url = line.trim().to_owned();
            break;
        }
        before.push_str(&line);
        line.clear();
    }
    assert!(
        url.contains("code_challenge_method=S256"),
        "printed the authorization URL: {url} (stderr so far: {before})"
    );
    let redirect = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "RFC 8252 loopback: {redirect}"
    );
    let callback = kit::browser_until(&url, &redirect, None);
    // Deliver the callback to the CLI's listener, as the browser would.
    let (status, _) = kit::http_get(&callback);
    assert_eq!(status, 200);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        status: out.status,
        stdout: out.stdout,
        stderr: format!("{before}{line}{rest}").into_bytes(),
    }
}

/// The entry of session `name` in the file store `dir`, read through the library.
pub fn saved_session(dir: &Path, name: &str) -> smart_core::store::StoredToken {
    use smart_core::store::TokenStore as _;
    smart_store::FileTokenStore::new(dir)
        .unwrap()
        .get(&format!("smart-cli:session:{name}"))
        .unwrap()
        .expect("a saved session")
}

/// The files of a directory (names and contents), for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}
