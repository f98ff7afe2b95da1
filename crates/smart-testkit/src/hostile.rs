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

/// One request as the server read it off the socket.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method as sent, e.g. `POST`.
    pub method: String,
    /// The request target exactly as sent (path and query, or an absolute URI).
    pub target: String,
    /// The path of the target, as sent (not percent-decoded), without the query.
    pub path: String,
    /// The query (after `?`, as sent), if the target had one.
    pub query: Option<String>,
    /// The protocol version from the request line, e.g. `HTTP/1.1`.
    pub version: String,
    /// Every header in order, names lower-cased, values as sent (surrounding blanks trimmed).
    pub headers: Vec<(String, String)>,
    /// The body: `Content-Length` bytes, or the decoded chunks of a chunked body.
    pub body: Vec<u8>,
    /// Whether the body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// When the whole request (head and body) had been read.
    pub received_at: Instant,
    /// The same moment on the wall clock.
    pub received_at_system: SystemTime,
    /// The connection it came on: 0, 1, 2, ... in the order the server accepted connections.
    pub connection: u64,
    /// Its place among all requests the server read: 0, 1, 2, ...
    pub index: u64,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as `application/x-www-form-urlencoded` fields, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// The first form field `name` of the body, decoded.
    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The query decoded as form fields, in order (empty without a query).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `user:password` of an HTTP Basic `Authorization` header, base64-decoded (not
    /// percent-decoded), if there is one.
    pub fn basic_credentials(&self) -> Option<String> {
        let auth = self.header("authorization")?;
        let (scheme, rest) = auth.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Whether the client asked to keep the connection open after the answer.
    pub(crate) fn keep_alive(&self) -> bool {
        let conn = self.header_all("connection").join(",").to_ascii_lowercase();
        let has = |t: &str| conn.split(',').any(|v| v.trim() == t);
        if self.version == "HTTP/1.0" {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket failed (or closed in the middle of a request).
    Io,
    /// The bytes are not an HTTP/1.x request: answer this status, then close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Io
    }
}

/// What [`read_request`] returns before the server adds its bookkeeping.
pub(crate) struct ParsedRequest {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunked: bool,
}

impl ParsedRequest {
    /// The full [`Request`], stamped now.
    pub(crate) fn into_request(self, connection: u64, index: u64) -> Request {
        let (path, query) = split_target(&self.target);
        Request {
            method: self.method,
            path,
            query,
            target: self.target,
            version: self.version,
            headers: self.headers,
            body: self.body,
            chunked: self.chunked,
            received_at: Instant::now(),
            received_at_system: SystemTime::now(),
            connection,
            index,
        }
    }
}

/// `(path, query)` of a request target; an absolute URI's scheme and authority are dropped.
fn split_target(target: &str) -> (String, Option<String>) {
    let mut rest = target;
    for scheme in ["http://", "https://"] {
        if rest.len() >= scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let after = &rest[scheme.len()..];
            rest = after.find('/').map_or("/", |i| &after[i..]);
            break;
        }
    }
    let rest = rest.split('#').next().unwrap_or("");
    match rest.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (rest.to_owned(), None),
    }
}

/// Reads one line (up to and including `\n`) of at most `limit` bytes; `None` at a clean EOF.
fn read_line<R: BufRead>(r: &mut R, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    let n = r.take(limit as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > limit {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        return Err(ReadError::Io); // EOF in the middle of a line
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(line))
}

/// Reads one request from `r`; `Ok(None)` when the peer closed the connection between requests.
/// Answers `Expect: 100-continue` through `r.get_mut()`.
pub(crate) fn read_request<S: Read + Write>(
    r: &mut BufReader<S>,
) -> Result<Option<ParsedRequest>, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let line = loop {
        let Some(line) = read_line(r, budget)? else {
            return Ok(None);
        };
        budget = budget.saturating_sub(line.len() + 2);
        if !line.is_empty() {
            break line;
        }
    };
    let line = String::from_utf8_lossy(&line).into_owned();
    let mut parts = line.split(' ').filter(|s| !s.is_empty());
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(505, "only HTTP/1.x is served"));
    }
    let (method, target, version) = (method.to_owned(), target.to_owned(), version.to_owned());

    let mut headers = Vec::new();
    loop {
        let Some(h) = read_line(r, budget)? else {
            return Err(ReadError::Io);
        };
        budget = budget.saturating_sub(h.len() + 2);
        if h.is_empty() {
            break;
        }
        let h = String::from_utf8_lossy(&h);
        let Some((k, v)) = h.split_once(':') else {
            return Err(ReadError::Bad(400, "malformed header line"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        if budget == 0 {
            return Err(ReadError::Bad(431, "request head too large"));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    let chunked = header("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = match header("content-length").as_slice() {
        [] => None,
        [v] => Some(
            v.parse::<usize>()
                .map_err(|_| ReadError::Bad(400, "bad content-length"))?,
        ),
        _ => return Err(ReadError::Bad(400, "several content-length headers")),
    };
    if length.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    let expects_body = chunked || length.is_some_and(|n| n > 0);
    if expects_body
        && header("expect")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        let w = r.get_mut();
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        w.flush()?;
    }

    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(r, 4096)?.ok_or(ReadError::Io)?;
            let size_line = String::from_utf8_lossy(&size_line);
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
            if size == 0 {
                // Trailer fields, up to the empty line.
                while !read_line(r, 4096)?.ok_or(ReadError::Io)?.is_empty() {}
                break;
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err(ReadError::Bad(413, "request body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            if !read_line(r, 2)?.ok_or(ReadError::Io)?.is_empty() {
                return Err(ReadError::Bad(400, "chunk not followed by CRLF"));
            }
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(ParsedRequest {
        method,
        target,
        version,
        headers,
        body,
        chunked,
    }))
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A response to send: status, headers in order, body.
///
/// [`Response::to_bytes`] adds `Content-Length` unless the headers already have a
/// `Content-Length` or `Transfer-Encoding` (so a test can send a wrong length on purpose); it adds
/// nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (any number: the server does not check it).
    pub status: u16,
    /// The reason phrase; `None` uses the standard one for the status.
    pub reason: Option<String>,
    /// Headers in the order they are sent, names as given.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            reason: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `status` with `Content-Type: application/json` and `json` (a `serde_json::Value` or JSON
    /// text) as the body.
    pub fn json(status: u16, json: impl fmt::Display) -> Self {
        Response::new(status)
            .header("Content-Type", "application/json")
            .body(json.to_string())
    }

    /// `status` with `Content-Type: text/plain; charset=utf-8` and `text` as the body.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(text.into())
    }

    /// An OAuth 2.0 error (RFC 6749 §5.2): `{"error":..,"error_description":..}` with `status`.
    pub fn oauth_error(status: u16, error: &str, description: &str) -> Self {
        Response::json(
            status,
            serde_json::json!({"error": error, "error_description": description}),
        )
        .header("Cache-Control", "no-store")
    }

    /// A 200 token response: `{"access_token":..,"token_type":"Bearer","expires_in":..}`.
    pub fn token(access_token: &str, expires_in: u64) -> Self {
        Response::json(
            200,
            serde_json::json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": expires_in,
            }),
        )
        .header("Cache-Control", "no-store")
    }

    /// A redirect: `status` (301, 302, 303, 307, 308, or anything else) with `Location: location`
    /// (absolute or relative, sent as given) and an empty body.
    pub fn redirect(status: u16, location: &str) -> Self {
        Response::new(status).header("Location", location)
    }

    /// `status` (e.g. 429 or 503) with a `Retry-After` header and a JSON
    /// `{"error":"temporarily_unavailable"}` body.
    pub fn retry_after(status: u16, after: RetryAfter) -> Self {
        Response::oauth_error(status, "temporarily_unavailable", "try again later")
            .header("Retry-After", after.header_value())
    }

    /// Adds a header (after the existing ones; names may repeat).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Replaces the reason phrase.
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bytes on the wire: status line, headers (plus `Content-Length` if missing), body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.head_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// The status line and headers (with the blank line), without the body.
    pub(crate) fn head_bytes(&self) -> Vec<u8> {
        let reason = self
            .reason
            .clone()
            .unwrap_or_else(|| reason_phrase(self.status).to_owned());
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status).into_bytes();
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if self.header_value("content-length").is_none()
            && self.header_value("transfer-encoding").is_none()
        {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Whether the response itself asks to close the connection afterwards.
    pub(crate) fn closes(&self) -> bool {
        self.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }
}

/// The standard reason phrase of `status` (`"Unknown"` for others).
fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The value of a `Retry-After` header (RFC 9110 §10.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// `delay-seconds`, e.g. `Retry-After: 5`.
    Seconds(u64),
    /// An HTTP-date (IMF-fixdate), e.g. `Retry-After: Sun, 06 Nov 1994 08:49:37 GMT`.
    Date(SystemTime),
    /// Any text, sent as is (for malformed values).
    Raw(String),
}

impl RetryAfter {
    /// An HTTP-date `delay` from now.
    pub fn date_in(delay: Duration) -> Self {
        RetryAfter::Date(SystemTime::now() + delay)
    }

    /// The header value.
    pub fn header_value(&self) -> String {
        match self {
            RetryAfter::Seconds(s) => s.to_string(),
            RetryAfter::Date(t) => httpdate::fmt_http_date(*t),
            RetryAfter::Raw(s) => s.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviours
// ---------------------------------------------------------------------------------------------

type ResponseFn = dyn Fn(&Request) -> Response + Send + Sync;
type BehaviourFn = dyn Fn(&Request) -> Behaviour + Send + Sync;

/// What the server does with a request on a route. Cheap to clone.
///
/// Composite behaviours ([`sequence`](Behaviour::sequence),
/// [`fail_first_requests`](Behaviour::fail_first_requests), [`fail_for`](Behaviour::fail_for))
/// keep state: how many requests reached them, when the first did. Installing a behaviour with
/// [`HostileServer::route`] starts that state afresh, so a behaviour value can be installed
/// again (or on several routes) and starts over each time. Within one installed behaviour,
/// nested composites count only the requests that reach them.
#[derive(Clone)]
pub struct Behaviour(Arc<Kind>);

enum Kind {
    Respond(Response),
    Sequence(Vec<Behaviour>, AtomicUsize),
    FirstRequests {
        n: usize,
        during: Behaviour,
        then: Behaviour,
        seen: AtomicUsize,
    },
    FirstDuration {
        duration: Duration,
        during: Behaviour,
        then: Behaviour,
        first: OnceLock<Instant>,
    },
    Hang,
    Delay(Duration, Behaviour),
    Close,
    Echo(u16),
    FromFn(Arc<ResponseFn>),
    Dynamic(Arc<BehaviourFn>),
    Raw(Vec<u8>, bool),
    Trickle(Response, usize, Duration),
}

impl fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Kind::Respond(r) => f.debug_tuple("Respond").field(&r.status).finish(),
            Kind::Sequence(items, _) => f.debug_tuple("Sequence").field(items).finish(),
            Kind::FirstRequests {
                n, during, then, ..
            } => f
                .debug_struct("FailFirstRequests")
                .field("n", n)
                .field("fail", during)
                .field("then", then)
                .finish(),
            Kind::FirstDuration {
                duration,
                during,
                then,
                ..
            } => f
                .debug_struct("FailFor")
                .field("duration", duration)
                .field("fail", during)
                .field("then", then)
                .finish(),
            Kind::Hang => f.write_str("Hang"),
            Kind::Delay(d, b) => f.debug_tuple("Delay").field(d).field(b).finish(),
            Kind::Close => f.write_str("Close"),
            Kind::Echo(s) => f.debug_tuple("Echo").field(s).finish(),
            Kind::FromFn(_) => f.write_str("FromFn(..)"),
            Kind::Dynamic(_) => f.write_str("Dynamic(..)"),
            Kind::Raw(b, hang) => f
                .debug_struct("Raw")
                .field("len", &b.len())
                .field("then_hang", hang)
                .finish(),
            Kind::Trickle(r, n, d) => f
                .debug_tuple("Trickle")
                .field(&r.status)
                .field(n)
                .field(d)
                .finish(),
        }
    }
}

impl From<Response> for Behaviour {
    fn from(r: Response) -> Self {
        Behaviour::respond(r)
    }
}

impl Behaviour {
    fn new(kind: Kind) -> Self {
        Behaviour(Arc::new(kind))
    }

    /// Answer every request with `response`.
    pub fn respond(response: Response) -> Self {
        Behaviour::new(Kind::Respond(response))
    }

    /// Answer with [`Response::json`]`(status, json)`.
    pub fn json(status: u16, json: impl fmt::Display) -> Self {
        Behaviour::respond(Response::json(status, json))
    }

    /// Request 1 gets `items[0]`, request 2 `items[1]`, ...; once they are used up the last one
    /// answers every further request.
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn sequence<B: Into<Behaviour>>(items: impl IntoIterator<Item = B>) -> Self {
        let items: Vec<Behaviour> = items.into_iter().map(Into::into).collect();
        assert!(
            !items.is_empty(),
            "Behaviour::sequence needs at least one behaviour"
        );
        Behaviour::new(Kind::Sequence(items, AtomicUsize::new(0)))
    }

    /// The first `n` requests get `fail`, every later one `then`.
    pub fn fail_first_requests(
        n: usize,
        fail: impl Into<Behaviour>,
        then: impl Into<Behaviour>,
    ) -> Self {
        Behaviour::new(Kind::FirstRequests {
            n,
            during: fail.into(),
            then: then.into(),
            seen: AtomicUsize::new(0),
        })
    }

    /// Requests that arrive less than `duration` after the first request get `fail` (the first
    /// request included), later ones `then`.
    pub fn fail_for(
        duration: Duration,
        fail: impl Into<Behaviour>,
        then: impl Into<Behaviour>,
    ) -> Self {
        Behaviour::new(Kind::FirstDuration {
            duration,
            during: fail.into(),
            then: then.into(),
            first: OnceLock::new(),
        })
    }

    /// Read the request and never answer: the connection stays open, silent, until the client
    /// closes it or the server is dropped.
    pub fn hang() -> Self {
        Behaviour::new(Kind::Hang)
    }

    /// Wait `delay`, then do `then`. If the client closes the connection meanwhile, nothing is
    /// sent.
    pub fn delay(delay: Duration, then: impl Into<Behaviour>) -> Self {
        Behaviour::new(Kind::Delay(delay, then.into()))
    }

    /// Read the request, then close the connection without answering.
    pub fn close() -> Self {
        Behaviour::new(Kind::Close)
    }

    /// Send `bytes` exactly as given (no framing added), then close the connection.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Behaviour::new(Kind::Raw(bytes.into(), false))
    }

    /// Send `bytes` exactly as given, then keep the connection open and silent, like
    /// [`hang`](Behaviour::hang) (e.g. a head promising a body that never comes).
    pub fn raw_then_hang(bytes: impl Into<Vec<u8>>) -> Self {
        Behaviour::new(Kind::Raw(bytes.into(), true))
    }

    /// Send `response` `chunk` bytes at a time (at least 1), waiting `interval` before each
    /// further piece: a slow server that keeps sending.
    pub fn trickle(response: Response, chunk: usize, interval: Duration) -> Self {
        Behaviour::new(Kind::Trickle(response, chunk.max(1), interval))
    }

    /// `status` with a `Retry-After` header ([`Response::retry_after`]).
    pub fn retry_after(status: u16, after: RetryAfter) -> Self {
        Behaviour::respond(Response::retry_after(status, after))
    }

    /// A redirect ([`Response::redirect`]).
    pub fn redirect(status: u16, location: &str) -> Self {
        Behaviour::respond(Response::redirect(status, location))
    }

    /// A 400 OAuth error that reflects the request, as a hostile or careless server might.
    ///
    /// `error` is `invalid_request`; `error_description` holds the method and target, the raw
    /// body, the body's form fields percent-decoded (`name=value`, `&`-joined), the
    /// `Authorization` header, and the decoded `user:password` of a Basic `Authorization`;
    /// `error_uri` is `{server url}/echo?{raw body}#{Authorization}`, unescaped (so not always a
    /// valid URI). A client that shows either field in its errors leaks whatever secret the
    /// request carried.
    pub fn echo() -> Self {
        Behaviour::new(Kind::Echo(400))
    }

    /// [`echo`](Behaviour::echo) with another status (e.g. 401 or 500).
    pub fn echo_with_status(status: u16) -> Self {
        Behaviour::new(Kind::Echo(status))
    }

    /// Answer with the response `f` computes from the request. `f` runs on the connection's
    /// thread, so it may block (that delays only this answer); a panic in it closes the
    /// connection.
    pub fn from_fn(f: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        Behaviour::new(Kind::FromFn(Arc::new(f)))
    }

    /// Do what the behaviour `f` returns for the request. Behaviours captured by `f` keep their
    /// state across requests (a captured sequence advances).
    pub fn dynamic(f: impl Fn(&Request) -> Behaviour + Send + Sync + 'static) -> Self {
        Behaviour::new(Kind::Dynamic(Arc::new(f)))
    }

    /// A copy with its state (and that of every nested behaviour) started afresh.
    fn fresh(&self) -> Behaviour {
        let kind = match &*self.0 {
            Kind::Sequence(items, _) => Kind::Sequence(
                items.iter().map(Behaviour::fresh).collect(),
                AtomicUsize::new(0),
            ),
            Kind::FirstRequests {
                n, during, then, ..
            } => Kind::FirstRequests {
                n: *n,
                during: during.fresh(),
                then: then.fresh(),
                seen: AtomicUsize::new(0),
            },
            Kind::FirstDuration {
                duration,
                during,
                then,
                ..
            } => Kind::FirstDuration {
                duration: *duration,
                during: during.fresh(),
                then: then.fresh(),
                first: OnceLock::new(),
            },
            Kind::Delay(d, b) => Kind::Delay(*d, b.fresh()),
            // Stateless: share.
            _ => return self.clone(),
        };
        Behaviour::new(kind)
    }

    /// The steps for one request, advancing composite state.
    fn plan(&self, req: &Request, base_url: &str, steps: &mut Vec<Step>) {
        match &*self.0 {
            Kind::Respond(r) => steps.push(Step::Respond(r.clone())),
            Kind::Sequence(items, next) => {
                let i = next.fetch_add(1, Ordering::SeqCst).min(items.len() - 1);
                items[i].plan(req, base_url, steps);
            }
            Kind::FirstRequests {
                n,
                during,
                then,
                seen,
            } => {
                if seen.fetch_add(1, Ordering::SeqCst) < *n {
                    during.plan(req, base_url, steps);
                } else {
                    then.plan(req, base_url, steps);
                }
            }
            Kind::FirstDuration {
                duration,
                during,
                then,
                first,
            } => {
                let first = *first.get_or_init(Instant::now);
                if first.elapsed() < *duration {
                    during.plan(req, base_url, steps);
                } else {
                    then.plan(req, base_url, steps);
                }
            }
            Kind::Hang => steps.push(Step::Hang),
            Kind::Delay(d, then) => {
                steps.push(Step::Wait(*d));
                then.plan(req, base_url, steps);
            }
            Kind::Close => steps.push(Step::Close),
            Kind::Echo(status) => steps.push(Step::Respond(echo_response(*status, req, base_url))),
            Kind::FromFn(f) => steps.push(Step::Respond(f(req))),
            Kind::Dynamic(f) => f(req).plan(req, base_url, steps),
            Kind::Raw(bytes, hang) => {
                steps.push(Step::Raw(bytes.clone()));
                steps.push(if *hang { Step::Hang } else { Step::Close });
            }
            Kind::Trickle(r, n, d) => steps.push(Step::Trickle(r.clone(), *n, *d)),
        }
    }
}

/// The response of [`Behaviour::echo`].
fn echo_response(status: u16, req: &Request, base_url: &str) -> Response {
    let raw = req.body_text();
    let decoded = req
        .form()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let auth = req.header("authorization").unwrap_or("");
    let basic = req.basic_credentials().unwrap_or_default();
    let description = format!(
        "hostile echo of {} {}: body: {raw}; decoded body: {decoded}; authorization: {auth}; basic credentials: {basic}",
        req.method, req.target
    );
    Response::json(
        status,
        serde_json::json!({
            "error": "invalid_request",
            "error_description": description,
            "error_uri": format!("{base_url}/echo?{raw}#{auth}"),
        }),
    )
}

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
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared.state);
        loop {
            if st.paths.get(path).map_or(0, |s| s.count) >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
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
