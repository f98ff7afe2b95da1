//! OAuth 2.0 error responses (RFC 6749 §5.2 for the token endpoint, §4.1.2.1 for the
//! authorization redirect): reading them, and making server-supplied text safe to log.

use crate::error::{Error, OAuthError};
use serde_json::{Map, Value};

/// The most characters of an `error_description` / `error_uri` kept (longer text is cut).
const MAX_ERROR_TEXT: usize = 1024;

/// Remove values this client sent (refresh token, code, `code_verifier`, client secret) from
/// the server-supplied texts of an OAuth error: some servers echo request values into
/// `error_description`, and errors are logged. A value cut by the 1,024-character limit is
/// removed too (a trailing prefix of 8 or more characters). Other errors pass unchanged.
pub(crate) fn redact_echoed_secrets(e: Error, secrets: &[&str]) -> Error {
    const REDACTED: &str = "[redacted]";
    let Error::OAuth(mut o) = e else { return e };
    for text in [
        Some(&mut o.error),
        o.error_description.as_mut(),
        o.error_uri.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            if text.contains(*secret) {
                *text = text.replace(*secret, REDACTED);
            }
            let cut = (8..secret.len())
                .rev()
                .filter(|&n| secret.is_char_boundary(n))
                .find(|&n| text.ends_with(&secret[..n]));
            if let Some(n) = cut {
                text.truncate(text.len() - n);
                text.push_str(REDACTED);
            }
        }
    }
    Error::OAuth(o)
}

/// Server- or redirect-supplied text made safe to log: control characters removed, cut at
/// [`MAX_ERROR_TEXT`] characters.
pub(crate) fn clean_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_TEXT)
        .collect()
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
/// Returns `None` when the body is not such a document (HTML, empty, no `error`).
pub fn parse_oauth_error(status: u16, body: &[u8]) -> Option<OAuthError> {
    match serde_json::from_slice::<Value>(body) {
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
