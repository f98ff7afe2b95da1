//! PEM text (RFC 7468): blocks, the `kid:` line of explanatory text, and [`PrivateKeyPem`].

use super::key_err;
use crate::error::Error;
use crate::secret::constant_time_eq;
use p384::elliptic_curve::zeroize::Zeroizing;
use pkcs8::LineEnding;
use std::fmt;

/// The name of the explanatory-text line that carries a key's `kid` (`kid: my-key-1`).
const KID_LINE: &str = "kid:";

/// A PEM-encoded private key (PKCS#8 `-----BEGIN PRIVATE KEY-----`, RFC 5958 / RFC 7468), as
/// exported by [`SigningKey::to_pkcs8_pem`](super::SigningKey::to_pkcs8_pem) and
/// [`SigningKey::to_pkcs8_pem_with_kid`](super::SigningKey::to_pkcs8_pem_with_kid). Also
/// reachable as `secret::PrivateKeyPem`.
///
/// Like the types in [`secret`](crate::secret) it prints as `PrivateKeyPem([redacted])` under
/// `Debug`, has no `Display` and compares in constant time; in addition its buffer is zeroized
/// when dropped.
#[derive(Clone)]
pub struct PrivateKeyPem(Zeroizing<String>);

impl PrivateKeyPem {
    /// Wrap PEM text (the buffer is zeroized when this value is dropped).
    pub fn new(pem: impl Into<String>) -> Self {
        Self(Zeroizing::new(pem.into()))
    }

    /// The PEM text.
    ///
    /// # Security
    /// This is the private key: whoever holds it can authenticate as the client. Write it only
    /// to protected storage (the IG: "protect the private key"); never log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem([redacted])")
    }
}

impl PartialEq for PrivateKeyPem {
    /// Constant-time comparison of the SHA-256 digests of both values.
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for PrivateKeyPem {}

/// `-----BEGIN PRIVATE KEY-----` around `der` (LF line endings, 64-character lines), preceded
/// by a `kid:` line when `kid` is given.
pub(super) fn encode_private_key(der: &[u8], kid: Option<&str>) -> Result<PrivateKeyPem, Error> {
    let pem = pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, der)
        .map(Zeroizing::new)
        .map_err(|_| key_err("PEM encoding failed"))?;
    let Some(kid) = kid else {
        return Ok(PrivateKeyPem(pem));
    };
    let line = kid_line(kid);
    let mut text = Zeroizing::new(String::with_capacity(line.len() + 1 + pem.len()));
    text.push_str(&line);
    text.push('\n');
    text.push_str(&pem);
    Ok(PrivateKeyPem(text))
}

/// `kid: <kid>`; the value is written as a JSON string when it would not survive as bare
/// text (empty, surrounding white space, a leading `"`, or control characters).
fn kid_line(kid: &str) -> String {
    let bare = !kid.is_empty()
        && kid.trim() == kid
        && !kid.starts_with('"')
        && !kid.chars().any(char::is_control);
    if bare {
        format!("{KID_LINE} {kid}")
    } else {
        format!("{KID_LINE} {}", serde_json::Value::from(kid))
    }
}

/// One `-----BEGIN …-----` / `-----END …-----` block.
pub(super) struct PemBlock {
    /// The label, e.g. `PRIVATE KEY`.
    pub(super) label: String,
    /// An RFC 1421 `Proc-Type: 4,ENCRYPTED` header was present.
    pub(super) encrypted: bool,
    /// The base64 body, without line breaks.
    pub(super) body: Zeroizing<String>,
}

/// PEM text split into blocks, plus the `kid:` line of the explanatory text, if any.
pub(super) struct PemText {
    pub(super) blocks: Vec<PemBlock>,
    pub(super) kid: Option<String>,
}

/// Split PEM text into its blocks. Text outside blocks (RFC 7468 §5.2 explanatory text,
/// OpenSSL's "Bag Attributes" etc.) is ignored, except one `kid: <value>` line (the value bare,
/// or a JSON string); RFC 1421 headers inside a block are skipped (and
/// `Proc-Type: 4,ENCRYPTED` noted).
pub(super) fn parse(text: &str) -> Result<PemText, Error> {
    let mut blocks = Vec::new();
    let mut kids = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            if let Some(value) = line.strip_prefix(KID_LINE) {
                kids.push(parse_kid(value.trim())?);
            }
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut block = PemBlock {
            label: label.to_owned(),
            encrypted: false,
            body: Zeroizing::new(String::new()),
        };
        let mut closed = false;
        for inner in lines.by_ref() {
            if inner == end {
                closed = true;
                break;
            }
            if inner.starts_with("-----") {
                break;
            }
            if let Some((name, value)) = inner.split_once(':') {
                if name.trim().eq_ignore_ascii_case("Proc-Type") && value.contains("ENCRYPTED") {
                    block.encrypted = true;
                }
                continue;
            }
            block.body.push_str(inner);
        }
        if !closed {
            return Err(key_err(format!(
                "PEM block `{label}` has no matching END line"
            )));
        }
        blocks.push(block);
    }
    let kid = match kids.len() {
        0 | 1 => kids.pop(),
        n => {
            return Err(key_err(format!(
                "PEM text has {n} `kid:` lines; keep exactly one"
            )));
        }
    };
    Ok(PemText { blocks, kid })
}

fn parse_kid(value: &str) -> Result<String, Error> {
    let kid = if value.starts_with('"') {
        serde_json::from_str::<String>(value)
            .map_err(|_| key_err("the `kid:` line holds an unterminated or invalid JSON string"))?
    } else {
        value.to_owned()
    };
    if kid.is_empty() {
        return Err(key_err("the `kid:` line before the key is empty"));
    }
    Ok(kid)
}

/// Why PEM text without a private key block cannot sign.
pub(super) fn describe_non_private(blocks: &[PemBlock]) -> String {
    let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    if labels.contains(&"CERTIFICATE") || labels.contains(&"TRUSTED CERTIFICATE") {
        "PEM text is a certificate, not a private key; supply the private key".into()
    } else if labels.iter().any(|l| l.ends_with("PUBLIC KEY")) {
        "PEM text is a public key; a private key is required to sign".into()
    } else {
        format!(
            "PEM text contains no private key (found {})",
            labels.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_pem_debug_is_redacted() {
        let pem = PrivateKeyPem::new(
            "-----BEGIN PRIVATE KEY-----\nMIG2AgEA\n-----END PRIVATE KEY-----\n",
        );
        assert_eq!(format!("{pem:?}"), "PrivateKeyPem([redacted])");
        assert_eq!(pem, PrivateKeyPem::new(pem.secret()));
    }

    #[test]
    fn pem_splitter_handles_headers_and_noise() {
        let text = "Bag Attributes\n-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\nQUJD\n-----END X-----\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.blocks.len(), 1);
        assert!(parsed.blocks[0].encrypted);
        assert_eq!(parsed.blocks[0].body.as_str(), "QUJD");
        assert_eq!(parsed.kid, None);
        assert!(parse("-----BEGIN X-----\nQUJD\n").is_err());
    }

    #[test]
    fn k01_kid_line_round_trips_bare_and_quoted() {
        for kid in [
            "my-key-1",
            "-starts-with-dash",
            "kid: nested",
            " padded ",
            "\"quoted\"",
            "line\nbreak",
            "ünï",
        ] {
            let line = kid_line(kid);
            assert!(!line.contains('\n'), "{line}");
            let text = format!("{line}\n-----BEGIN X-----\nQUJD\n-----END X-----\n");
            assert_eq!(parse(&text).unwrap().kid.as_deref(), Some(kid), "{line}");
        }
        assert_eq!(kid_line("my-key-1"), "kid: my-key-1");
        assert_eq!(kid_line(" a"), "kid: \" a\"");
        // A `kid:` header *inside* a block is an RFC 1421 header, not explanatory text.
        let inside = parse("-----BEGIN X-----\nkid: no\nQUJD\n-----END X-----\n").unwrap();
        assert_eq!(inside.kid, None);
        assert!(parse("kid: a\nkid: b\n").is_err());
        assert!(parse("kid:\n").is_err());
        assert!(parse("kid: \"open\n").is_err());
    }
}
