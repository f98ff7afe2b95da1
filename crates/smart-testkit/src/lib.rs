//! Test-only helpers for integration tests against the local SMART sandbox (`sandbox/`), and
//! other test servers: [`hostile`] (a scriptable misbehaving HTTP server), [`tls`] (HTTPS with
//! a generated CA, optional mTLS) and [`redis_server`] (a real local Redis).
//!
//! The drivers' integration scenarios live here too, written once: [`driver::Driver`] is what
//! they need from a driver crate, [`scenarios`](mod@scenarios) are the scenarios, and
//! [`scenarios!`] instantiates them as `#[test]`s in a driver crate's tests.
//!
//! [`sandbox_url`] returns `$SMART_SANDBOX_URL` when set (the test script exports it after
//! `sandbox/start`), and otherwise starts the sandbox itself (under a file lock, so parallel
//! test binaries start it once). Nothing here is skipped: if the sandbox cannot be started the
//! calling test fails with the reason.
#![forbid(unsafe_code)]

pub mod app;
pub mod canary;
pub mod driver;
pub mod hostile;
mod listener;
pub mod load_report;
pub mod redis_server;
pub mod scenarios;
pub mod tls;
pub mod trace_capture;

pub use redis_server::{RedisServer, RedisStop, redis_restart, redis_url};

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use smart_core::jwk::SigningKey;
use url::Url;

/// The sandbox base URL, e.g. `http://127.0.0.1:4010` (no trailing slash).
///
/// # Panics
/// When the sandbox is not running and cannot be started: the test must fail, not skip.
pub fn sandbox_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("SMART_SANDBOX_URL")
            && !u.is_empty()
        {
            return u.trim_end_matches('/').to_owned();
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let run = root.join("sandbox/.run");
        std::fs::create_dir_all(&run).expect("create sandbox/.run");
        // `-o`: the lock is not inherited by the sandbox server that `start` leaves running
        // (otherwise the next test binary would wait for it forever).
        let out = Command::new("flock")
            .arg("-o")
            .arg(run.join("start.lock"))
            .arg(root.join("sandbox/start"))
            .output()
            .expect("run sandbox/start (needs flock, node and npm)");
        assert!(
            out.status.success(),
            "sandbox/start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 URL")
            .trim()
            .to_owned()
    })
    .clone()
}

/// The sandbox's FHIR base URL (`{sandbox}/fhir`).
pub fn fhir_base() -> String {
    format!("{}/fhir", sandbox_url())
}

/// The sandbox's token endpoint.
pub fn token_endpoint() -> String {
    format!("{}/token", sandbox_url())
}

/// A name unique to this process and call, for client ids.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .build()
        .into()
}

fn post_json(path: &str, body: &serde_json::Value) -> serde_json::Value {
    let url = format!("{}{path}", sandbox_url());
    let mut resp = agent()
        .post(&url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    assert!(
        (200..300).contains(&status),
        "POST {url} -> {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// Register (or replace) a client with oidc-provider metadata via `POST /_admin/clients`.
pub fn register_client(metadata: &serde_json::Value) -> serde_json::Value {
    post_json("/_admin/clients", metadata)
}

/// Register a Backend Services client for `key` with `scope`; returns the new `client_id`.
/// `access_token_ttl` (seconds) overrides the token lifetime.
pub fn register_backend_client(
    key: &SigningKey,
    scope: &str,
    access_token_ttl: Option<u64>,
) -> String {
    let client_id = unique("bs");
    let mut meta = serde_json::json!({
        "client_id": client_id,
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "jwks": key.public_jwks(),
        "scope": scope,
    });
    if let Some(ttl) = access_token_ttl {
        meta["access_token_ttl"] = ttl.into();
    }
    register_client(&meta);
    client_id
}

/// How many token requests the sandbox saw for `client_id` (counted server side).
pub fn token_requests(client_id: &str) -> u64 {
    let v = get_json(&format!("/_admin/stats?client_id={client_id}"));
    v["token_requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("no token_requests in {v}"))
}

/// How many token requests the sandbox saw in all, from every client and of every grant type,
/// successful or not, since it started or since the last [`reset_sandbox_stats`] (counted server
/// side, `GET /_admin/stats`).
///
/// The count is shared by every test using the sandbox, including those running in parallel in
/// other threads or test binaries: compare it only where nothing else can ask for tokens, and
/// prefer [`token_requests`] for a client of the test's own.
pub fn sandbox_token_requests() -> u64 {
    let v = get_json("/_admin/stats");
    v["token_requests"]
        .as_u64()
        .unwrap_or_else(|| panic!("no token_requests in {v}"))
}

/// The sandbox's token counters as it reports them (`GET /_admin/stats`): `token_requests`,
/// `token_success`, `token_errors`, `max_concurrent_token_requests`, `by_grant_type`, `clients`
/// (see `sandbox/README.md`).
pub fn sandbox_stats() -> serde_json::Value {
    get_json("/_admin/stats")
}

/// Set the sandbox's token counters (global and per client) to zero
/// (`POST /_admin/stats/reset`). This affects every test using the sandbox.
pub fn reset_sandbox_stats() {
    let v = post_json("/_admin/stats/reset", &serde_json::json!({}));
    assert_eq!(v["reset"], true, "unexpected reset answer {v}");
}

fn get_json(path: &str) -> serde_json::Value {
    let url = format!("{}{path}", sandbox_url());
    let mut resp = agent()
        .get(&url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    assert!(
        (200..300).contains(&status),
        "GET {url} -> {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"))
}

/// Destroy every access token (and refresh token, if `refresh_tokens`) issued to `client_id`.
pub fn revoke(client_id: &str, refresh_tokens: bool) {
    let q = if refresh_tokens {
        "&refresh_tokens=1"
    } else {
        ""
    };
    post_json(
        &format!("/_admin/revoke?client_id={client_id}{q}"),
        &serde_json::json!({}),
    );
}

/// `GET {fhir_base}/{path}` with `authorization`; returns `(status, body)`.
pub fn fhir_get(path: &str, authorization: &str) -> (u16, String) {
    let url = format!("{}/{}", fhir_base(), path.trim_start_matches('/'));
    let mut resp = agent()
        .get(&url)
        .header("authorization", authorization)
        .header("accept", "application/fhir+json")
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// Plays the user's browser: follows redirects from `start` (keeping cookies) until one
/// points at `redirect_prefix`, and returns that URL (the app's callback) without
/// requesting it. `post_body` makes the first request a form POST (`authorize-post`).
///
/// # Panics
/// After 20 hops, or on a non-redirect answer before the callback.
pub fn browser_until(start: &str, redirect_prefix: &str, post_body: Option<&str>) -> String {
    let agent = agent();
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut url = start.to_owned();
    let mut body = post_body.map(str::to_owned);
    for _ in 0..20 {
        if url.starts_with(redirect_prefix) {
            return url;
        }
        let cookie_header = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut resp = match body.take() {
            Some(b) => agent
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &cookie_header)
                .send(b),
            None => agent.get(&url).header("cookie", &cookie_header).call(),
        }
        .unwrap_or_else(|e| panic!("browser GET {url}: {e}"));
        for v in resp.headers().get_all("set-cookie") {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                cookies.retain(|(n, _)| n != k.trim());
                cookies.push((k.trim().to_owned(), val.trim().to_owned()));
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(loc) if (300..400).contains(&status) => {
                url = Url::parse(&url)
                    .and_then(|u| u.join(&loc))
                    .expect("redirect URL")
                    .to_string();
                // join() normalises; keep an absolute Location byte-exact.
                if Url::parse(&loc).is_ok() {
                    url = loc;
                }
            }
            _ => {
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                panic!("browser: {url} answered {status} without a redirect: {text:.500}");
            }
        }
    }
    panic!("browser: too many redirects from {start}");
}

/// A plain `GET url` (no redirects followed); returns `(status, body)`.
pub fn http_get(url: &str) -> (u16, String) {
    let mut resp = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

/// The path of the example `name` of the crate under test, as `cargo build --examples` leaves
/// it next to the test binaries (`target/<profile>/examples/<name>`; `scripts/test` builds
/// them first: `cargo test --all-targets` compiles examples only as test harnesses).
///
/// # Panics
/// When the example was not built: run `cargo build --workspace --examples` first.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>")
        .join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example {name} not built at {}: run `cargo build --workspace --examples` first",
        path.display()
    );
    path
}

/// Run the example `name` with `env` added to the environment; `(success, stdout, stderr)`.
///
/// # Panics
/// As [`example_binary`]; when the example cannot be started.
pub fn run_example(name: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(example_binary(name));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("start the example");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running example (see [`spawn_example`]): its stdout arrives line by line, stderr is
/// collected; the process is killed when this is dropped, so a failing assertion does not
/// leave it running.
pub struct RunningExample {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Start the example `name` with `env` added to the environment, stdout and stderr piped.
///
/// # Panics
/// As [`example_binary`]; when the example cannot be started.
pub fn spawn_example(name: &str, env: &[(&str, &str)]) -> RunningExample {
    spawn_example_with(name, &[], env)
}

/// [`spawn_example`] with command-line `args`; its stdin is a pipe that
/// [`RunningExample::write_line`] writes to (closed when the example is dropped).
///
/// # Panics
/// As [`example_binary`]; when the example cannot be started.
pub fn spawn_example_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> RunningExample {
    use std::io::{BufRead as _, Read as _};
    use std::sync::{Arc, Mutex};

    let mut cmd = Command::new(example_binary(name));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(if args.is_empty() {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::piped()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start the example {name}: {e}"));
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let out = child.stdout.take().expect("piped stdout");
    let all = stdout.clone();
    let out_reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            all.lock()
                .expect("stdout lock")
                .push_str(&format!("{line}\n"));
            // Nobody may read lines any more: keep collecting the whole output anyway.
            let _ = tx.send(line);
        }
    });
    let mut err = child.stderr.take().expect("piped stderr");
    let all = stderr.clone();
    let err_reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.lock()
                .expect("stderr lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    RunningExample {
        child,
        lines,
        stdout,
        stderr,
        readers: vec![out_reader, err_reader],
    }
}

impl RunningExample {
    /// The next line of stdout (without its newline), waiting up to `timeout`.
    ///
    /// # Panics
    /// When no line comes in time or stdout closes first (the message shows stderr).
    pub fn next_line(&mut self, timeout: std::time::Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(e) => {
                // Let the reader threads collect a failure message.
                std::thread::sleep(std::time::Duration::from_millis(200));
                panic!(
                    "no line from the example ({e}); exit: {:?}\nstdout so far:\n{}\nstderr:\n{}",
                    self.child.try_wait(),
                    self.stdout(),
                    self.stderr()
                )
            }
        }
    }

    /// Write `line` and a newline to the example's stdin (started by [`spawn_example_with`]).
    ///
    /// # Panics
    /// When stdin is not a pipe or the example has closed it.
    pub fn write_line(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("stdin is a pipe");
        writeln!(stdin, "{line}").expect("write to the example's stdin");
        stdin.flush().expect("flush the example's stdin");
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Wait up to `timeout` for the process to exit; whether it succeeded, its whole stdout
    /// and its stderr.
    ///
    /// # Panics
    /// When it is still running after `timeout` (it is killed then).
    pub fn wait(mut self, timeout: std::time::Duration) -> (bool, String, String) {
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the example") {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the example still runs after {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        // The pipes close with the process: let the reader threads read to the end.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status.success(), self.stdout(), self.stderr())
    }
}

impl Drop for RunningExample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `text` contains something shaped like a token: a JWT (`eyJ…`, e.g. an `id_token`)
/// or a run of 43 or more base64url characters (the sandbox's opaque access and refresh
/// tokens are 43 such characters: 256 random bits). For asserting that an app never prints
/// or renders its tokens. An authorization URL matches too (its `state` and `code_challenge`
/// have the same shape): leave it out of the text checked.
pub fn contains_token_like(text: &str) -> Option<String> {
    if let Some(i) = text.find("eyJ") {
        return Some(text[i..].chars().take(20).collect());
    }
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run.push(c);
        } else {
            if run.len() >= 43 {
                return Some(run);
            }
            run.clear();
        }
    }
    None
}
