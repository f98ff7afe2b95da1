//! OAuth 2.0 error responses (RFC 6749 §5.2 for the token endpoint, §4.1.2.1 for the
//! authorization redirect): reading them, and making server-supplied text safe to log.

use crate::error::OAuthError;
use serde_json::{Map, Value};

/// The most characters of an `error_description` / `error_uri` kept (longer text is cut).
const MAX_ERROR_TEXT: usize = 1024;

/// Server- or redirect-supplied text made safe to log: [`log_safe`] cut at
/// [`MAX_ERROR_TEXT`] characters.
pub(crate) fn clean_text(s: &str) -> String {
    log_safe(s, MAX_ERROR_TEXT)
}

/// Text from a server (an error description, a claim, a page) made safe to put on one line of
/// a log or terminal: control characters, the Unicode line and paragraph separators (U+2028,
/// U+2029) and the invisible format characters (general category `Cf`: bidirectional
/// overrides and isolates, zero-width characters, the BOM) are removed, and at most
/// `max_chars` characters (Unicode scalar values) are kept. Every error and warning of this
/// library that repeats server text has been through it.
///
/// ```
/// use smart_core::oauth_error::log_safe;
/// assert_eq!(log_safe("bad\r\nX-Forged: 1\u{202e}txt", 100), "badX-Forged: 1txt");
/// assert_eq!(log_safe("abcdef", 3), "abc");
/// ```
pub fn log_safe(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|&c| !c.is_control() && !is_separator_or_format(c))
        .take(max_chars)
        .collect()
}

/// U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR and the characters of general category
/// `Cf` (Unicode 15.1): they break lines or reorder and hide text in a log or terminal.
fn is_separator_or_format(c: char) -> bool {
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = u32::from(c);
    FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

pub(crate) fn oauth_error_from_object(
    status: Option<u16>,
    obj: &Map<String, Value>,
) -> Option<OAuthError> {
    let text = |k: &str| match obj.get(k) {
        Some(Value::String(s)) => Some(clean_text(s).trim().to_owned()).filter(|t| !t.is_empty()),
        _ => None,
    };
    let error = text("error")?;
    Some(OAuthError {
        status,
        error,
        error_description: text("error_description"),
        error_uri: text("error_uri"),
    })
}

/// Read an RFC 6749 §5.2 error body: a JSON object with a non-empty string `error`, and
/// optional string `error_description`, `error_uri` (other types are ignored). Control
/// characters are removed, each text is cut at 1024 characters and trimmed. `status` is recorded as
/// [`OAuthError::status`].
///
/// One leading UTF-8 byte-order mark is skipped (RFC 8259 §8.1).
///
/// Returns `None` when the body is not such a document (HTML, empty, no `error`).
pub fn parse_oauth_error(status: u16, body: &[u8]) -> Option<OAuthError> {
    match serde_json::from_slice::<Value>(crate::lenient::strip_bom(body).0) {
        Ok(Value::Object(o)) => oauth_error_from_object(Some(status), &o),
        _ => None,
    }
}

/// Fuzz entry point: parse arbitrary bytes as an OAuth error body; must never panic.
#[doc(hidden)]
pub fn fuzz_oauth_error(data: &[u8]) {
    if let Some(e) = parse_oauth_error(400, data) {
        let _ = e.to_string();
        let json = serde_json::to_vec(&serde_json::json!({
            "error": e.error,
            "error_description": e.error_description,
            "error_uri": e.error_uri,
        }))
        .expect("serializes");
        assert_eq!(
            parse_oauth_error(400, &json),
            Some(e),
            "OAuth error round trip"
        );
    }
}
