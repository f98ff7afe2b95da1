//! Canary values: secrets a test sends on purpose, then looks for in every text the client
//! shows (an error's `Display`, `Debug` and `source()` chain; a program's stdout and stderr),
//! in every form a server could echo them in.
//!
//! ```
//! use smart_testkit::canary::Canaries;
//!
//! let mut c = Canaries::new();
//! c.add("refresh token", "rt/canary+value= 1");
//! assert!(c.find("grant rt%2Fcanary%2Bvalue%3D%201 rejected").len() == 1);
//! assert!(c.find("grant rt%2fcanary%2bvalue%3d+1 rejected").len() == 1);
//! assert!(c.find("grant [redacted] rejected").is_empty());
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// One canary form found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The canary's label (`"client secret"`, `"refresh token"`, …).
    pub canary: String,
    /// Which form of it was found (`"raw"`, `"percent-encoded, lower-case hex"`, …).
    pub form: &'static str,
}

/// Forms shorter than this are not looked for (they would match ordinary text).
const MIN_FORM_LEN: usize = 6;

/// A set of canary values and every form of each that is looked for.
#[derive(Debug, Clone, Default)]
pub struct Canaries {
    /// `(canary label, form name, form text)`.
    forms: Vec<(String, &'static str, String)>,
}

/// `s` with the two hex digits after each `%` lower-cased.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut left = 0;
    for c in s.chars() {
        if left > 0 {
            out.push(c.to_ascii_lowercase());
            left -= 1;
        } else {
            if c == '%' {
                left = 2;
            }
            out.push(c);
        }
    }
    out
}

impl Canaries {
    /// No canary yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, label: &str, form: &'static str, text: String) {
        if text.chars().count() < MIN_FORM_LEN
            || self.forms.iter().any(|(l, _, t)| l == label && *t == text)
        {
            return;
        }
        // As `Debug` prints it inside a string (quotes and backslashes escaped) too.
        let debug = text.escape_debug().to_string();
        self.forms.push((label.to_owned(), form, text));
        if !self.forms.iter().any(|(l, _, t)| l == label && *t == debug) {
            self.forms
                .push((label.to_owned(), "as escaped by Debug", debug));
        }
    }

    /// Look for `value` (labelled `label`): raw; percent-encoded (RFC 3986 unreserved kept)
    /// with upper- and lower-case hex; `application/x-www-form-urlencoded` (`+` for space)
    /// with upper- and lower-case hex; base64 and base64url.
    pub fn add(&mut self, label: &str, value: &str) {
        let pct = smart_core::http::form_encode(value);
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        self.push(label, "raw", value.to_owned());
        self.push(label, "percent-encoded", pct.clone());
        self.push(label, "percent-encoded, lower-case hex", lower_hex(&pct));
        self.push(label, "form-encoded (+ for space)", form.clone());
        self.push(
            label,
            "form-encoded (+ for space), lower-case hex",
            lower_hex(&form),
        );
        self.push(label, "base64", STANDARD.encode(value));
        self.push(label, "base64url", URL_SAFE_NO_PAD.encode(value));
    }

    /// Look for an HTTP Basic credential: `user_id:password` (as it went into the header,
    /// already encoded) in base64, and the whole header value; plus `password` itself as
    /// [`add`](Self::add) does.
    pub fn add_basic(&mut self, label: &str, user_id: &str, password: &str) {
        self.add(label, password);
        let b64 = STANDARD.encode(format!("{user_id}:{password}"));
        self.push(label, "Basic credential (base64 of id:secret)", b64.clone());
        self.push(label, "Basic header value", format!("Basic {b64}"));
    }

    /// How many forms are looked for.
    pub fn len(&self) -> usize {
        self.forms.len()
    }

    /// Whether no canary was added.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// Every canary form found in `text` (each counted once).
    pub fn find(&self, text: &str) -> Vec<Hit> {
        self.forms
            .iter()
            .filter(|(_, _, t)| text.contains(t.as_str()))
            .map(|(l, f, _)| Hit {
                canary: l.clone(),
                form: f,
            })
            .collect()
    }
}

/// Every text an error shows: its `Display` and `Debug`, then those of each error in its
/// `source()` chain.
pub fn error_texts(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        out.push(e.to_string());
        out.push(format!("{e:?}"));
        next = e.source();
    }
    out
}

/// The canary forms found in any text `error` shows ([`error_texts`]).
pub fn find_in_error(canaries: &Canaries, error: &(dyn std::error::Error + 'static)) -> Vec<Hit> {
    let mut hits = Vec::new();
    for text in error_texts(error) {
        for h in canaries.find(&text) {
            if !hits.contains(&h) {
                hits.push(h);
            }
        }
    }
    hits
}
