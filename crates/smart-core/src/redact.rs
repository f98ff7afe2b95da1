//! Removing every value a request sent from the server's text before it reaches an error.
//!
//! Some servers reflect the request in `error_description`, `error_uri` or a redirect's
//! `Location` — the refresh token, the authorization code, the `client_assertion`, the HTTP
//! Basic credential — and errors get logged. Each flow records what it sent in a
//! [`SentSecrets`] when it builds a request and passes every error through
//! [`SentSecrets::scrub_error`] before returning it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{Error, OAuthError};

/// What replaces a secret found in server text.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not looked for: a 1–3 character string is no credential and
/// would blank out ordinary words.
const MIN_SECRET_LEN: usize = 4;

/// A trailing fragment of a secret at the end of a text (cut by a length limit) is removed
/// when it is at least this long.
const MIN_TRAILING_FRAGMENT: usize = 8;

/// `encodeURIComponent` keeps these besides alphanumerics.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The secret values one request carried, in every form a server might echo them in.
///
/// For each value added: the raw text; its percent-encoded forms (RFC 3986 unreserved kept,
/// upper- and lower-case hex; `application/x-www-form-urlencoded` with `+` for space; the
/// JavaScript `encodeURIComponent` set); and for an HTTP Basic credential also the base64 of
/// `client_id:client_secret` and the whole header value. [`scrub`](Self::scrub) replaces
/// each occurrence anywhere in a text with `[redacted]`, longest form first, and removes a
/// trailing fragment (8 or more characters) of one, as left by a server or by this library
/// cutting a long text.
///
/// `Debug` prints only how many forms are held.
#[derive(Clone, Default)]
pub struct SentSecrets {
    forms: Vec<String>,
}

impl std::fmt::Debug for SentSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SentSecrets({} forms)", self.forms.len())
    }
}

impl SentSecrets {
    /// Nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    fn push(&mut self, form: String) {
        if form.len() >= MIN_SECRET_LEN && !self.forms.contains(&form) {
            self.forms.push(form);
        }
    }

    /// Record `value` (a token, code, `code_verifier`, client secret, assertion) and its
    /// encoded forms.
    pub fn add(&mut self, value: &str) {
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        self.push(value.to_owned());
        let upper = crate::http::form_encode(value);
        self.push(upper.to_ascii_lowercase_hex());
        self.push(upper);
        self.push(form_urlencoded::byte_serialize(value.as_bytes()).collect());
        self.push(utf8_percent_encode(value, URI_COMPONENT).to_string());
        self.sort();
    }

    /// Record an HTTP Basic credential (RFC 7617): the user-id and password as sent
    /// (already encoded as the client sends them), their base64 form and the whole header
    /// value.
    pub fn add_basic(&mut self, user_id: &str, password: &str, header_value: &str) {
        self.add(password);
        let joined = format!("{user_id}:{password}");
        self.push(STANDARD.encode(joined.as_bytes()));
        self.push(header_value.to_owned());
        self.sort();
    }

    /// Record everything `other` recorded.
    pub fn extend(&mut self, other: &SentSecrets) {
        for f in &other.forms {
            self.push(f.clone());
        }
        self.sort();
    }

    fn sort(&mut self) {
        // Longest first, so a form containing another is replaced whole.
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// `text` with every recorded form replaced by `[redacted]` (anywhere in the text), and a
    /// trailing fragment of one removed.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), REDACTED);
            }
        }
        for form in &self.forms {
            let cut = (MIN_TRAILING_FRAGMENT..form.len())
                .rev()
                .filter(|&n| form.is_char_boundary(n))
                .find(|&n| out.ends_with(&form[..n]));
            if let Some(n) = cut {
                out.truncate(out.len() - n);
                out.push_str(REDACTED);
            }
        }
        out
    }

    /// `error` with [`scrub`](Self::scrub) applied to every text that can come from a server:
    /// an OAuth error's `error`, `error_description` and `error_uri` (token endpoint or
    /// redirect), a redirect's `Location`, a transport error's message, the `token_type` of
    /// a token response refused for it.
    pub fn scrub_error(&self, error: Error) -> Error {
        if self.forms.is_empty() {
            return error;
        }
        let scrub_oauth = |mut o: OAuthError| {
            o.error = self.scrub(&o.error);
            o.error_description = o.error_description.map(|t| self.scrub(&t));
            o.error_uri = o.error_uri.map(|t| self.scrub(&t));
            o
        };
        match error {
            Error::OAuth(o) => Error::OAuth(scrub_oauth(o)),
            Error::Callback(crate::error::CallbackError::Authorization(o)) => {
                Error::Callback(crate::error::CallbackError::Authorization(scrub_oauth(o)))
            }
            Error::Redirect {
                url,
                status,
                location,
            } => Error::Redirect {
                url: self.scrub(&url),
                status,
                location: location.map(|l| self.scrub(&l)),
            },
            Error::Transport(mut t) => {
                t.message = self.scrub(&t.message);
                t.url = self.scrub(&t.url);
                Error::Transport(t)
            }
            Error::Http { url, status } => Error::Http {
                url: self.scrub(&url),
                status,
            },
            Error::UnsupportedTokenType { token_type } => Error::UnsupportedTokenType {
                token_type: self.scrub(&token_type),
            },
            other => other,
        }
    }
}

trait LowerHex {
    fn to_ascii_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    /// Lower-case the two hex digits after each `%`, leaving everything else.
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut hex_left = 0;
        for c in self.chars() {
            if hex_left > 0 {
                out.push(c.to_ascii_lowercase());
                hex_left -= 1;
            } else {
                if c == '%' {
                    hex_left = 2;
                }
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary/refresh+token=value 42";

    #[test]
    fn every_encoded_form_is_removed_anywhere() {
        let mut s = SentSecrets::new();
        s.add(CANARY);
        let texts = [
            format!("bad token {CANARY}."),
            format!("x{}y", crate::http::form_encode(CANARY)),
            "grant refresh_token=canary%2frefresh%2btoken%3dvalue%2042&x".to_owned(),
            "canary%2Frefresh%2Btoken%3Dvalue+42 was rejected".to_owned(),
            format!("{} (js)", utf8_percent_encode(CANARY, URI_COMPONENT)),
        ];
        for t in texts {
            let out = s.scrub(&t);
            assert!(!out.contains("canary"), "{t} -> {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
    }

    #[test]
    fn basic_credential_and_truncated_fragment() {
        let mut s = SentSecrets::new();
        let header = format!("Basic {}", STANDARD.encode("app:s3cret-value"));
        s.add_basic("app", "s3cret-value", &header);
        let b64 = STANDARD.encode("app:s3cret-value");
        assert_eq!(s.scrub(&format!("got {header}")), "got [redacted]");
        assert_eq!(s.scrub(&format!("creds {b64} bad")), "creds [redacted] bad");
        assert_eq!(s.scrub("secret was s3cret-val"), "secret was [redacted]");
        assert_eq!(s.scrub("nothing here"), "nothing here");
    }

    #[test]
    fn scrub_error_covers_server_texts() {
        let mut s = SentSecrets::new();
        s.add("the-code-123456");
        let e = s.scrub_error(Error::OAuth(OAuthError {
            status: Some(400),
            error: "invalid_grant the-code-123456".into(),
            error_description: Some("code the-code-123456 expired".into()),
            error_uri: Some("https://x/?code=the-code-123456".into()),
        }));
        assert!(!format!("{e:?}").contains("the-code"), "{e:?}");
        let e = s.scrub_error(Error::Redirect {
            url: "https://x/token".into(),
            status: 302,
            location: Some("https://y/?c=the-code-123456".into()),
        });
        assert!(!e.to_string().contains("the-code"), "{e}");
    }

    /// Regression: a 200 whose `token_type` reflects the request (a hostile server) was
    /// refused as `UnsupportedTokenType` with the reflected secrets in it.
    #[test]
    fn scrub_error_covers_a_reflected_token_type() {
        let mut s = SentSecrets::new();
        s.add("rt/refresh+token 42");
        let e = s.scrub_error(Error::UnsupportedTokenType {
            token_type: "grant refresh_token=rt%2Frefresh%2Btoken%2042 (rt/refresh+token 42)"
                .into(),
        });
        assert_eq!(
            e,
            Error::UnsupportedTokenType {
                token_type: "grant refresh_token=[redacted] ([redacted])".into()
            }
        );
    }

    #[test]
    fn short_values_are_not_searched() {
        let mut s = SentSecrets::new();
        s.add("abc");
        assert!(s.is_empty());
        assert_eq!(s.scrub("abc abc"), "abc abc");
    }
}
