//! A real Redis for tests, run by `scripts/redis-start` / `scripts/redis-stop` (which install
//! the Debian package `redis-server` when it is missing).
//!
//! * [`redis_url`]: the Redis shared by all tests on this checkout, started on
//!   first use (like [`sandbox_url`](crate::sandbox_url)); [`redis_restart`]
//!   restarts it on the same port.
//! * [`RedisServer`]: a Redis of the test's own (own port, own run dir, stopped on drop), for
//!   tests that stop, restart or crash it without disturbing other tests.
//!
//! What comes back after a restart depends on how it stopped ([`RedisStop`]) and whether the
//! server is durable ([`RedisServer::start_durable`]). A test that claims "nothing acknowledged
//! is lost when Redis restarts" needs a durable server and [`RedisStop::Kill`]: durable means
//! `--appendonly yes --appendfsync always`, so Redis writes and fsyncs every write to its
//! append-only file before it replies, and a write the client saw acknowledged is on disk even
//! if the process dies the next instant. ([`RedisStop::Save`] keeps everything too, but only
//! because a graceful shutdown snapshots memory; it proves nothing about crashes.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How a Redis server is stopped, and so what a later start finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStop {
    /// Graceful `SHUTDOWN NOSAVE`, data deleted: it comes back empty.
    Discard,
    /// Graceful `SHUTDOWN SAVE`: everything in memory is written to disk first, so it comes
    /// back with every write it acknowledged (durable or not).
    Save,
    /// `SIGKILL`, like a crash: it comes back with what was on disk. Durable: every
    /// acknowledged write. Not durable: nothing.
    Kill,
}

impl RedisStop {
    fn arg(self) -> &'static str {
        match self {
            RedisStop::Discard => "",
            RedisStop::Save => "--keep-data",
            RedisStop::Kill => "--kill",
        }
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script(name: &str) -> PathBuf {
    repo_root().join("scripts").join(name)
}

/// Runs `bash -c <shell>` with `args` (as `$1`...) and `env`, under `flock -o lock` if given;
/// returns its stdout, trimmed.
///
/// # Panics
/// When it fails: with its stderr.
fn run(shell: &str, args: &[&str], env: &[(&str, String)], lock: Option<&Path>) -> String {
    let mut cmd = match lock {
        Some(lock) => {
            // `-o`: the lock is not inherited by the redis-server that the script leaves running.
            let mut c = Command::new("flock");
            c.arg("-o").arg(lock).arg("bash");
            c
        }
        None => Command::new("bash"),
    };
    cmd.arg("-c").arg(shell).arg("redis-script").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {shell} (needs bash and flock): {e}"));
    assert!(
        out.status.success(),
        "{shell} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .trim()
        .to_owned()
}

fn start_script(run_dir: &Path, port: Option<u16>, durable: Option<bool>) -> String {
    let mut env = vec![("REDIS_RUN_DIR", run_dir.display().to_string())];
    if let Some(p) = port {
        env.push(("REDIS_PORT", p.to_string()));
    }
    if let Some(d) = durable {
        env.push(("REDIS_DURABLE", if d { "1" } else { "0" }.to_owned()));
    }
    let start = script("redis-start");
    run(r#""$1""#, &[&start.display().to_string()], &env, None)
}

fn stop_script(run_dir: &Path, how: RedisStop) {
    let stop = script("redis-stop");
    let env = [("REDIS_RUN_DIR", run_dir.display().to_string())];
    run(
        r#""$1" $2"#,
        &[&stop.display().to_string(), how.arg()],
        &env,
        None,
    );
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in Redis URL {url}"))
}

/// The run dir of the shared Redis: `$REDIS_RUN_DIR`, else `<repo>/.run/redis`.
fn shared_run_dir() -> PathBuf {
    match std::env::var("REDIS_RUN_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join(".run/redis"),
    }
}

/// The shared test Redis, e.g. `redis://127.0.0.1:41234` (no trailing slash).
///
/// `$SMART_REDIS_URL` when set; otherwise `scripts/redis-start` starts it (once, under a file
/// lock, so parallel test binaries share one server; it keeps running afterwards, stop it with
/// `scripts/redis-stop`). It has no persistence unless started with `REDIS_DURABLE=1`. Every
/// test using it sees the others' keys: use unique key names (e.g. from [`unique`](crate::unique)).
///
/// # Panics
/// When Redis cannot be installed or started: the test must fail, not skip.
pub fn redis_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("SMART_REDIS_URL")
            && !u.is_empty()
        {
            return u.trim_end_matches('/').to_owned();
        }
        let run_dir = shared_run_dir();
        std::fs::create_dir_all(&run_dir).expect("create the Redis run dir");
        let env = [("REDIS_RUN_DIR", run_dir.display().to_string())];
        let start = script("redis-start");
        run(
            r#""$1""#,
            &[&start.display().to_string()],
            &env,
            Some(&run_dir.join("start.lock")),
        )
    })
    .clone()
}

/// Stops the shared Redis ([`redis_url`]) as `how` says and starts it again on the same port,
/// with the same persistence; returns its URL (unchanged).
///
/// Every test using the shared server at that moment sees its connections fail: a test that
/// restarts Redis while others may be using it should rather use a [`RedisServer`] of its own.
///
/// # Panics
/// When the shared server was not started by `scripts/redis-start` in its run dir (e.g.
/// `$SMART_REDIS_URL` points elsewhere), or does not come back.
pub fn redis_restart(how: RedisStop) -> String {
    let url = redis_url();
    let run_dir = shared_run_dir();
    let recorded = std::fs::read_to_string(run_dir.join("url")).unwrap_or_default();
    assert_eq!(
        recorded.trim(),
        url,
        "cannot restart {url}: it is not the Redis that scripts/redis-start runs in {}",
        run_dir.display()
    );
    let env = [
        ("REDIS_RUN_DIR", run_dir.display().to_string()),
        ("REDIS_PORT", port_of(&url).to_string()),
    ];
    let (stop, start) = (script("redis-stop"), script("redis-start"));
    let again = run(
        r#""$1" $2 && "$3""#,
        &[
            &stop.display().to_string(),
            how.arg(),
            &start.display().to_string(),
        ],
        &env,
        Some(&run_dir.join("start.lock")),
    );
    assert_eq!(again, url, "Redis came back elsewhere");
    again
}

/// A Redis server of the test's own: its own free port and run dir (in the temp dir), stopped
/// and deleted on drop. Stop, crash and restart it at will; it always comes back on the same
/// port.
#[derive(Debug)]
pub struct RedisServer {
    run_dir: PathBuf,
    url: String,
    port: u16,
    durable: bool,
}

impl RedisServer {
    /// Starts a Redis without persistence (`--save '' --appendonly no`).
    ///
    /// # Panics
    /// When Redis cannot be installed or started.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// Starts a durable Redis: `--appendonly yes --appendfsync always`, every write on disk
    /// before it is acknowledged, so it survives [`RedisStop::Kill`].
    ///
    /// # Panics
    /// When Redis cannot be installed or started.
    pub fn start_durable() -> RedisServer {
        RedisServer::start_with(true)
    }

    fn start_with(durable: bool) -> RedisServer {
        let run_dir = std::env::temp_dir().join(crate::unique("smart-testkit-redis"));
        std::fs::create_dir_all(&run_dir).expect("create the Redis run dir");
        let url = start_script(&run_dir, None, Some(durable));
        let port = port_of(&url);
        RedisServer {
            run_dir,
            url,
            port,
            durable,
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, for raw TCP connections.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Whether it was started with [`start_durable`](Self::start_durable).
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// Its run dir (pid, port, `redis.log`, `data/`).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Stops it as `how` says; connections to it fail until [`start_again`](Self::start_again).
    pub fn stop(&self, how: RedisStop) {
        stop_script(&self.run_dir, how);
    }

    /// Starts it again (after [`stop`](Self::stop)) on the same port with the same persistence.
    /// A no-op when it is running.
    ///
    /// # Panics
    /// When the port was taken meanwhile, or Redis does not start.
    pub fn start_again(&self) {
        let url = start_script(&self.run_dir, Some(self.port), Some(self.durable));
        assert_eq!(url, self.url, "Redis came back elsewhere");
    }

    /// [`stop`](Self::stop) then [`start_again`](Self::start_again).
    pub fn restart(&self, how: RedisStop) {
        self.stop(how);
        self.start_again();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let stop = script("redis-stop");
        let _ = Command::new("bash")
            .arg(&stop)
            .env("REDIS_RUN_DIR", &self.run_dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}
