//! [`Response`]: a scripted answer, and `Retry-After` values.

use super::*;

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
pub(super) fn reason_phrase(status: u16) -> &'static str {
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

pub(super) type ResponseFn = dyn Fn(&Request) -> Response + Send + Sync;
pub(super) type BehaviourFn = dyn Fn(&Request) -> Behaviour + Send + Sync;
