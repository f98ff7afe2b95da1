//! A scriptable, misbehaving HTTP/1.1 server on loopback, for fault tests of the drivers.
//!
//! [`HostileServer::start`] binds `127.0.0.1:0` and serves each connection on a thread of its own
//! (keep-alive, `Content-Length` and chunked request bodies, `Expect: 100-continue`). Requests are
//! routed by method and exact path (the query is ignored for matching but kept in the record) to
//! a [`Behaviour`], which tests may replace at any time while the server runs:
//!
//! | behaviour | what the client sees |
//! |---|---|
//! | [`Behaviour::respond`] / `From<Response>` | a fixed [`Response`] |
//! | [`Behaviour::sequence`] | one behaviour per request, the last one repeating |
//! | [`Behaviour::fail_first_requests`] / [`Behaviour::fail_for`] | a failure for the first N requests / seconds, then something else |
//! | [`Behaviour::hang`] | nothing: the request is read and never answered |
//! | [`Behaviour::delay`] | an answer after a delay |
//! | [`Behaviour::trickle`] | an answer a few bytes at a time |
//! | [`Behaviour::close`] | the connection closed without an answer |
//! | [`Behaviour::raw`] / [`Behaviour::raw_then_hang`] | exactly these bytes (malformed framing, truncated bodies, ...) |
//! | [`Behaviour::retry_after`] | 429 / 503 with `Retry-After` (seconds, HTTP-date or any text) |
//! | [`Behaviour::redirect`] | a 3xx with `Location` |
//! | [`Behaviour::echo`] | a 400 OAuth error reflecting the request's body and `Authorization` |
//! | [`Behaviour::from_fn`] / [`Behaviour::dynamic`] | a response (or behaviour) computed from the request |
//!
//! Every request is recorded ([`HostileServer::requests`]) before it is answered, and counted per
//! path ([`HostileServer::count`], [`HostileServer::max_concurrent`]).
//!
//! The API is blocking but never waits unless asked to ([`HostileServer::wait_for`]), so it can be
//! called from `#[tokio::test]` code as well as from blocking tests. Dropping the server closes
//! every connection (hung ones included) and stops its threads.
//!
//! ```no_run
//! use std::time::Duration;
//! use smart_testkit::hostile::{Behaviour, HostileServer, Response, RetryAfter};
//!
//! let server = HostileServer::start();
//! server.route(
//!     "POST",
//!     "/token",
//!     Behaviour::fail_first_requests(
//!         2,
//!         Behaviour::retry_after(429, RetryAfter::Seconds(1)),
//!         Response::token("abc", 300),
//!     ),
//! );
//! let token_url = server.url_for("/token");
//! // ... run the client against token_url ...
//! assert_eq!(server.count("/token"), 3);
//! assert_eq!(server.max_concurrent("/token"), 1);
//! # let _ = (token_url, Duration::ZERO);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;

use crate::listener::{ConnListener, lock};

/// The most header bytes (request line included) the servers read for one request.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The largest request body the servers accept (larger ones get 413 and the connection closes).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

mod behaviour;
mod request;
mod response;

pub use behaviour::Behaviour;
pub use request::Request;
use request::*;
pub(crate) use request::{ReadError, read_request};
use response::*;
pub use response::{Response, RetryAfter};

/// One thing to do on the connection.
enum Step {
    Respond(Response),
    Raw(Vec<u8>),
    Trickle(Response, usize, Duration),
    Wait(Duration),
    Hang,
    Close,
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// Counters of one path.
#[derive(Debug, Default, Clone, Copy)]
struct PathStats {
    count: usize,
    in_flight: usize,
    max_in_flight: usize,
}

struct State {
    routes: HashMap<(String, String), Behaviour>,
    fallback: Behaviour,
    requests: Vec<Request>,
    paths: HashMap<String, PathStats>,
    next_index: u64,
    connections: u64,
}

struct Shared {
    addr: SocketAddr,
    base_url: String,
    stopping: Arc<AtomicBool>,
    state: Mutex<State>,
    /// Notified on every request recorded and every request finished.
    changed: Condvar,
}

/// A scriptable HTTP/1.1 server on `127.0.0.1` (see the [module docs](self)).
///
/// `Send + Sync`: share it between tasks by reference or in an `Arc`. Dropping it stops it.
pub struct HostileServer {
    shared: Arc<Shared>,
    listener: ConnListener,
}

impl fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostileServer")
            .field("url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl HostileServer {
    /// Binds `127.0.0.1:0` and starts accepting. Every route answers 404 until configured.
    ///
    /// # Panics
    /// When no loopback port can be bound or no thread started.
    pub fn start() -> HostileServer {
        let mut listener = ConnListener::bind();
        let addr = listener.addr();
        let shared = Arc::new(Shared {
            addr,
            base_url: format!("http://{addr}"),
            stopping: listener.stop_flag(),
            state: Mutex::new(State {
                routes: HashMap::new(),
                fallback: Behaviour::dynamic(|req| {
                    Behaviour::respond(Response::oauth_error(
                        404,
                        "not_found",
                        &format!("no route for {} {}", req.method, req.path),
                    ))
                }),
                requests: Vec::new(),
                paths: HashMap::new(),
                next_index: 0,
                connections: 0,
            }),
            changed: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        listener.serve("hostile", move |stream, id| {
            lock(&s.state).connections += 1;
            serve_connection(&s, &stream, id);
        });
        HostileServer { shared, listener }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `{url}{path}`, e.g. `url_for("/token")`.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.shared.base_url)
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Sets (or replaces) the behaviour of `method` requests to `path` (exact match, query
    /// ignored). `method` `"*"` matches any method not routed explicitly. Requests already being
    /// answered keep the behaviour they started with. Returns `self` for chaining.
    pub fn route(&self, method: &str, path: &str, behaviour: impl Into<Behaviour>) -> &Self {
        let b = behaviour.into().fresh();
        lock(&self.shared.state)
            .routes
            .insert((method.to_owned(), path.to_owned()), b);
        self
    }

    /// Removes the route of `method` and `path`; such requests then get the fallback.
    pub fn remove_route(&self, method: &str, path: &str) -> &Self {
        lock(&self.shared.state)
            .routes
            .remove(&(method.to_owned(), path.to_owned()));
        self
    }

    /// Sets the behaviour for requests no route matches (by default a 404 OAuth-style JSON
    /// error).
    pub fn fallback(&self, behaviour: impl Into<Behaviour>) -> &Self {
        lock(&self.shared.state).fallback = behaviour.into().fresh();
        self
    }

    /// Every request read so far (since start or [`clear_records`](Self::clear_records)), in
    /// order of arrival.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.state).requests.clone()
    }

    /// The requests to `path` (any method), in order of arrival.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        lock(&self.shared.state)
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The latest request to `path`, if any.
    pub fn last_request(&self, path: &str) -> Option<Request> {
        lock(&self.shared.state)
            .requests
            .iter()
            .rev()
            .find(|r| r.path == path)
            .cloned()
    }

    /// How many requests to `path` (any method) were read.
    pub fn count(&self, path: &str) -> usize {
        lock(&self.shared.state)
            .paths
            .get(path)
            .map_or(0, |s| s.count)
    }

    /// How many `method` requests to `path` were read.
    pub fn count_method(&self, method: &str, path: &str) -> usize {
        lock(&self.shared.state)
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// How many requests were read in all.
    pub fn total(&self) -> usize {
        lock(&self.shared.state).requests.len()
    }

    /// How many requests to `path` are in flight now: read, and neither answered in full nor
    /// abandoned (the client closed the connection, or the server was told to close it).
    pub fn in_flight(&self, path: &str) -> usize {
        lock(&self.shared.state)
            .paths
            .get(path)
            .map_or(0, |s| s.in_flight)
    }

    /// The most requests to `path` that were [in flight](Self::in_flight) at once.
    pub fn max_concurrent(&self, path: &str) -> usize {
        lock(&self.shared.state)
            .paths
            .get(path)
            .map_or(0, |s| s.max_in_flight)
    }

    /// How many TCP connections were accepted (a client that reuses connections opens fewer).
    pub fn connections(&self) -> u64 {
        lock(&self.shared.state).connections
    }

    /// Blocks until at least `n` requests to `path` were read, or `timeout` passed; returns
    /// whether they were. In async code call it from `spawn_blocking`, or only once the client
    /// is known to have sent them.
    pub fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> bool {
        let seen = |st: &State| st.paths.get(path).map_or(0, |s| s.count) >= n;
        let st = self
            .shared
            .changed
            .wait_timeout_while(lock(&self.shared.state), timeout, |st| !seen(st))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        seen(&st)
    }

    /// Forgets the recorded requests and counters (requests in flight stay in flight, and
    /// count towards the new maximum). Routes and their state are kept.
    pub fn clear_records(&self) {
        let mut st = lock(&self.shared.state);
        st.requests.clear();
        st.connections = 0;
        for s in st.paths.values_mut() {
            *s = PathStats {
                count: 0,
                in_flight: s.in_flight,
                max_in_flight: s.in_flight,
            };
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Closes every connection (hung ones included) and waits for their threads.
        self.listener.stop();
    }
}

/// Marks a request in flight; ends it on drop (even by panic).
struct InFlight {
    shared: Arc<Shared>,
    path: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = lock(&self.shared.state);
        if let Some(s) = st.paths.get_mut(&self.path) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        drop(st);
        self.shared.changed.notify_all();
    }
}

/// Records `parsed`, marks it in flight and picks its behaviour.
fn begin(shared: &Arc<Shared>, parsed: ParsedRequest, conn: u64) -> (Request, Behaviour, InFlight) {
    let mut st = lock(&shared.state);
    let index = st.next_index;
    st.next_index += 1;
    let req = parsed.into_request(conn, index);
    let behaviour = st
        .routes
        .get(&(req.method.clone(), req.path.clone()))
        .or_else(|| st.routes.get(&("*".to_owned(), req.path.clone())))
        .unwrap_or(&st.fallback)
        .clone();
    let stats = st.paths.entry(req.path.clone()).or_default();
    stats.count += 1;
    stats.in_flight += 1;
    stats.max_in_flight = stats.max_in_flight.max(stats.in_flight);
    st.requests.push(req.clone());
    drop(st);
    shared.changed.notify_all();
    let guard = InFlight {
        shared: Arc::clone(shared),
        path: req.path.clone(),
    };
    (req, behaviour, guard)
}

fn serve_connection(shared: &Arc<Shared>, stream: &TcpStream, conn: u64) {
    let mut reader = BufReader::new(stream);
    loop {
        let parsed = match read_request(&mut reader) {
            Ok(Some(p)) => p,
            Ok(None) | Err(ReadError::Io) => break,
            Err(ReadError::Bad(status, why)) => {
                let r = Response::text(status, why).header("Connection", "close");
                let _ = reader.get_mut().write_all(&r.to_bytes());
                drain_then_close(stream);
                break;
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let (req, behaviour, in_flight) = begin(shared, parsed, conn);
        let mut steps = Vec::new();
        behaviour.plan(&req, &shared.base_url, &mut steps);
        let keep = run_steps(shared, stream, &req, steps);
        drop(in_flight);
        if !keep || !req.keep_alive() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Closes our side, then reads (and drops) what the client still sends for a moment, so that
/// unread request bytes do not turn the close into a reset that could destroy the answer before
/// the client reads it.
fn drain_then_close(mut stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 8192];
    let mut left: usize = 1024 * 1024;
    while left > 0 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Carries out `steps`; returns whether the connection can serve another request.
fn run_steps(shared: &Shared, mut stream: &TcpStream, req: &Request, steps: Vec<Step>) -> bool {
    let head_only = req.method == "HEAD";
    for step in steps {
        match step {
            Step::Respond(r) => {
                let bytes = if head_only {
                    r.head_bytes()
                } else {
                    r.to_bytes()
                };
                if stream
                    .write_all(&bytes)
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return false;
                }
                return !r.closes();
            }
            Step::Raw(bytes) => {
                if stream
                    .write_all(&bytes)
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return false;
                }
            }
            Step::Trickle(r, n, interval) => {
                let bytes = if head_only {
                    r.head_bytes()
                } else {
                    r.to_bytes()
                };
                for (i, piece) in bytes.chunks(n).enumerate() {
                    if i > 0 && !wait(shared, stream, Some(interval)) {
                        return false;
                    }
                    if stream
                        .write_all(piece)
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        return false;
                    }
                }
                return !r.closes();
            }
            Step::Wait(d) => {
                if !wait(shared, stream, Some(d)) {
                    return false;
                }
            }
            Step::Hang => {
                wait(shared, stream, None);
                return false;
            }
            Step::Close => return false,
        }
    }
    false
}

/// Waits `d` (forever with `None`) while watching the connection; returns `true` when the time
/// is up, `false` as soon as the client closed the connection or the server is stopping.
fn wait(shared: &Shared, stream: &TcpStream, d: Option<Duration>) -> bool {
    let deadline = d.map(|d| Instant::now() + d);
    let mut probe = [0u8; 1];
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return false;
        }
        let left = match deadline {
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return true;
                }
                Some(left)
            }
            None => None,
        };
        if stream.set_read_timeout(left).is_err() {
            return false;
        }
        // A peek blocks until the client sends more, closes (0), or the timeout passes; the
        // server's drop shuts the socket down, which also ends it.
        let peeked = stream.peek(&mut probe);
        let _ = stream.set_read_timeout(None);
        match peeked {
            Ok(0) => return false,
            Ok(_) => {
                // The client sent more (a pipelined request): it is still there, so just sleep.
                let st = lock(&shared.state);
                let slice = left.map_or(Duration::from_millis(100), |l| {
                    l.min(Duration::from_millis(100))
                });
                let _ = shared.changed.wait_timeout(st, slice);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
