//! [`Request`]: a request as the server read it, and the reading of it.

use super::*;

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

    /// The form body decoded and joined back as `k=v&k=v` without percent-encoding: what a
    /// server that reflects "the decoded request" shows.
    pub fn decoded_form_text(&self) -> String {
        self.form()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
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
pub(super) fn split_target(target: &str) -> (String, Option<String>) {
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
pub(super) fn read_line<R: BufRead>(r: &mut R, limit: usize) -> Result<Option<Vec<u8>>, ReadError> {
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
