//! Using a token at the resource server (RFC 6750): what a `401` or `403` answer means for
//! the token, and whether the request may be sent again with a new one.
//!
//! Drivers' middleware call [`after_response`] with the status and the `WWW-Authenticate`
//! header of each answer to a request they authorized.

/// What to do after the resource server answered a request sent with a bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Advice {
    /// Nothing about the token: hand the answer to the caller.
    Done,
    /// The token was rejected (`401` with `error="invalid_token"`, or with no error code —
    /// RFC 6750 §3.1: expired, revoked, malformed): stop using it, get a new one, and send
    /// the request again **once** if its body can be sent again.
    RenewAndRetry,
}

/// The advice for an answer with `status` and `WWW-Authenticate` header `www_authenticate`.
///
/// - `401` whose `Bearer` challenge has `error="invalid_token"` or no `error` at all, or
///   that has no `WWW-Authenticate` header: [`Advice::RenewAndRetry`].
/// - `401` with another error code (`invalid_request`): [`Advice::Done`] — a new token would
///   not change the request.
/// - `403` (`insufficient_scope`, RFC 6750 §3.1) and every other status: [`Advice::Done`];
///   a token with the same grant would be refused again.
pub fn after_response(status: u16, www_authenticate: Option<&str>) -> Advice {
    if status != 401 {
        return Advice::Done;
    }
    match www_authenticate.map(bearer_error) {
        None | Some(None) => Advice::RenewAndRetry,
        Some(Some(e)) if e == "invalid_token" => Advice::RenewAndRetry,
        Some(Some(_)) => Advice::Done,
    }
}

/// The `error` parameter of the `Bearer` challenge in a `WWW-Authenticate` value (RFC 6750
/// §3, RFC 9110 §11.6.1), if any. Other schemes' parameters are ignored; a quoted value is
/// unquoted. Never fails: anything unreadable gives `None`.
pub fn bearer_error(www_authenticate: &str) -> Option<String> {
    let mut in_bearer = false;
    let mut rest = www_authenticate;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        // A token: a scheme name (followed by space or end) or a parameter name (followed by
        // `=`).
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let after = rest[end..].trim_start_matches([' ', '\t']);
        if let Some(value_part) = after.strip_prefix('=') {
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (value, remaining) = parse_value(value_part);
            if in_bearer && word.eq_ignore_ascii_case("error") {
                return Some(value);
            }
            rest = remaining;
        } else {
            in_bearer = word.eq_ignore_ascii_case("bearer");
            rest = after;
        }
    }
}

/// A quoted-string (with `\` escapes) or a token; returns it and the text after it.
fn parse_value(s: &str) -> (String, &str) {
    if let Some(inner) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => return (out, &inner[i + 1..]),
                _ => out.push(c),
            }
        }
        (out, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_owned(), &s[end..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        assert_eq!(
            bearer_error(r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#).as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            bearer_error("Bearer error=insufficient_scope").as_deref(),
            Some("insufficient_scope")
        );
        assert_eq!(bearer_error(r#"Bearer realm="x""#), None);
        assert_eq!(
            bearer_error(r#"Basic realm="a", Bearer error="invalid_token""#).as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            bearer_error(r#"Basic error="nope""#),
            None,
            "another scheme's parameter"
        );
        assert_eq!(
            bearer_error(r#"bearer ERROR="a\"b""#).as_deref(),
            Some("a\"b")
        );
        for junk in [
            "",
            ",,,",
            "=",
            "Bearer =",
            "\"",
            "Bearer error=\"unterminated",
        ] {
            let _ = bearer_error(junk);
        }
    }

    #[test]
    fn advice() {
        assert_eq!(after_response(200, None), Advice::Done);
        assert_eq!(after_response(401, None), Advice::RenewAndRetry);
        assert_eq!(after_response(401, Some("Bearer")), Advice::RenewAndRetry);
        assert_eq!(
            after_response(401, Some(r#"Bearer error="invalid_token""#)),
            Advice::RenewAndRetry
        );
        assert_eq!(
            after_response(401, Some(r#"Bearer error="invalid_request""#)),
            Advice::Done
        );
        assert_eq!(
            after_response(403, Some(r#"Bearer error="insufficient_scope""#)),
            Advice::Done
        );
        assert_eq!(after_response(403, None), Advice::Done);
    }
}
