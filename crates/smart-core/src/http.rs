//! The plain HTTP values that cross the driver contract ([`HttpRequest`], [`HttpResponse`]),
//! form encoding, and the URL rule every request obeys (https, or http to loopback).

use crate::error::Error;
use url::Url;

/// RFC 3986 unreserved characters stay literal; everything else is percent-encoded.
const FORM_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode a form or query component: everything but RFC 3986 unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`) becomes `%XX`, so a space is `%20` and `|`, `?`, `=`, `/`, `:` are
/// escaped. Decodes identically under `application/x-www-form-urlencoded`.
pub fn form_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, FORM_VALUE).to_string()
}

/// `name=value&…` with both sides [`form_encode`]d.
pub fn form_body<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    fields
        .into_iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The most response-body bytes a driver should read before giving up (1 MiB). SMART
/// documents (discovery, token responses) are a few kilobytes.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// An HTTP method. SMART only ever needs these two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
}

impl Method {
    /// The method name as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// A request the driver must send. `Debug` prints the method, URL and header names only:
/// the body (which may carry a `client_assertion`, `code`, `code_verifier` or
/// `refresh_token`) and the `Authorization` header value are redacted.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: Url,
    /// Header name/value pairs, in order. Names are lower-case.
    pub headers: Vec<(String, String)>,
    /// The body (`application/x-www-form-urlencoded` for token requests; empty for GET).
    pub body: Vec<u8>,
    /// What the request is for (never sent): for logs, metrics and tracing spans.
    pub context: RequestContext,
}

/// What a request is for. Never sent: drivers use it to label logs and tracing spans, so
/// nothing in it is secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// The protocol step.
    pub purpose: Purpose,
    /// The `client_id` the request authenticates as, when it does.
    pub client_id: Option<String>,
    /// The attempt number, from 1: a token source's retries of the same request count up.
    pub attempt: u32,
}

impl Default for RequestContext {
    fn default() -> Self {
        Self {
            purpose: Purpose::Other,
            client_id: None,
            attempt: 1,
        }
    }
}

/// The protocol step a request belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// Anything else.
    #[default]
    Other,
    /// `GET {base}/.well-known/smart-configuration` (and its redirects).
    Discovery,
    /// `GET {base}/metadata`, the CapabilityStatement fallback.
    Metadata,
    /// `GET {issuer}/.well-known/openid-configuration`.
    OpenIdConfiguration,
    /// `GET` of a JWK Set.
    Jwks,
    /// A Backend Services token request (`client_credentials`).
    TokenRequest,
    /// The authorization-code exchange.
    CodeExchange,
    /// A refresh.
    Refresh,
    /// Token introspection.
    Introspection,
    /// Token revocation.
    Revocation,
}

impl Purpose {
    /// A short lower-case name: `discovery`, `metadata`, `openid_configuration`, `jwks`,
    /// `token`, `code_exchange`, `refresh`, `introspection`, `revocation`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Other => "other",
            Self::Discovery => "discovery",
            Self::Metadata => "metadata",
            Self::OpenIdConfiguration => "openid_configuration",
            Self::Jwks => "jwks",
            Self::TokenRequest => "token",
            Self::CodeExchange => "code_exchange",
            Self::Refresh => "refresh",
            Self::Introspection => "introspection",
            Self::Revocation => "revocation",
        }
    }
}

impl HttpRequest {
    /// A request with no header and an empty body.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            context: RequestContext::default(),
        }
    }

    /// This request with the header `name: value` added (`name` is lower-cased).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// This request labelled with `purpose`.
    #[must_use]
    pub fn with_purpose(mut self, purpose: Purpose) -> Self {
        self.context.purpose = purpose;
        self
    }

    /// A `GET` with `Accept: application/json`.
    pub fn get_json(url: Url) -> Self {
        Self {
            method: Method::Get,
            url,
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            context: RequestContext::default(),
        }
    }

    /// A form `POST` (`application/x-www-form-urlencoded`, RFC 6749 §4.1.3) accepting JSON.
    /// Names and values are percent-encoded with [`form_encode`].
    pub fn post_form<'a>(url: Url, fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            method: Method::Post,
            url,
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("accept".into(), "application/json".into()),
            ],
            body: form_body(fields).into_bytes(),
            context: RequestContext::default(),
        }
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as form fields (for tests and diagnostics).
    pub fn form_fields(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("purpose", &self.context.purpose)
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &names)
            .field(
                "body",
                &format_args!("[{} bytes redacted]", self.body.len()),
            )
            .finish()
    }
}

/// A response the driver received. `Debug` prints the status and header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header name/value pairs as received.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status` and `body` and no headers (handy in tests).
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The value of header `name` (case-insensitive, SMART 2.2.0), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the status is a redirect that carries a `Location` to follow: 301, 302, 303,
    /// 307 or 308 (RFC 9110 §15.4).
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &names)
            .field(
                "body",
                &format_args!("[{} bytes redacted]", self.body.len()),
            )
            .finish()
    }
}

/// Whether `url` may carry credentials: `https`, or `http` to a loopback host
/// (`localhost`, `127.0.0.0/8`, `[::1]`, RFC 8252 §7.3).
pub fn is_secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// [`Error::InsecureUrl`] unless [`is_secure_or_loopback`] (or `allow_insecure` is set), and
/// for any URL carrying user info (`https://user:pass@host/…`): HTTP clients turn it into
/// credentials of their own, and it would be printed in errors.
///
/// # Errors
/// [`Error::InsecureUrl`] naming the URL (with any user info removed).
pub fn check_url_security(url: &Url, allow_insecure: bool) -> Result<(), Error> {
    let has_userinfo = !url.username().is_empty() || url.password().is_some();
    if !has_userinfo && (is_secure_or_loopback(url) || (allow_insecure && url.scheme() == "http")) {
        return Ok(());
    }
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    Err(Error::InsecureUrl {
        url: shown.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_body_and_auth() {
        let mut r = HttpRequest::post_form(
            Url::parse("https://ehr.example.org/token").unwrap(),
            [("client_assertion", "eyJ.secret.sig")],
        );
        r.headers
            .push(("authorization".into(), "Basic c2VjcmV0".into()));
        let d = format!("{r:?}");
        assert!(!d.contains("secret"), "{d}");
        assert!(!d.contains("c2VjcmV0"), "{d}");
        assert!(d.contains("authorization"));
    }

    #[test]
    fn form_encoding_escapes_reserved() {
        let r = HttpRequest::post_form(
            Url::parse("https://e/t").unwrap(),
            [("scope", "patient/Observation.rs?category=a|b&x=y")],
        );
        assert_eq!(
            String::from_utf8(r.body.clone()).unwrap(),
            "scope=patient%2FObservation.rs%3Fcategory%3Da%7Cb%26x%3Dy"
        );
        assert_eq!(
            r.form_fields()[0].1,
            "patient/Observation.rs?category=a|b&x=y"
        );
    }

    #[test]
    fn loopback_rule() {
        let ok = [
            "https://x.org/",
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "http://[::1]/",
        ];
        for u in ok {
            assert!(is_secure_or_loopback(&Url::parse(u).unwrap()), "{u}");
        }
        let bad = ["http://ehr.example.org/", "ftp://x/", "http://10.0.0.1/"];
        for u in bad {
            assert!(!is_secure_or_loopback(&Url::parse(u).unwrap()), "{u}");
        }
        assert!(check_url_security(&Url::parse("http://ehr.example.org/").unwrap(), true).is_ok());
        let err = check_url_security(
            &Url::parse("https://u:pw@ehr.example.org/t").unwrap(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::InsecureUrl {
                url: "https://ehr.example.org/t".into()
            }
        );
    }
}
