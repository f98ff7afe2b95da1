//! The stored form of one entry, optionally encrypted at rest with XChaCha20-Poly1305.
//!
//! ```text
//! { "format": "smart-rs token store v1", "key": "<hex SHA-256 of the store key>",
//!   "expires_at": 1700000300 | null, "token": { …StoredToken… } }         // plain
//! { "format": "smart-rs token store v1", "key": "<hex SHA-256 …>", "expires_at": …,
//!   "sealed": { "alg": "XChaCha20-Poly1305", "nonce": "<base64>", "ciphertext": "<base64>" } }
//! ```
//!
//! The associated data of a sealed entry is the format and the key, so an entry copied under
//! another key does not open. A store with a key refuses plain entries (no downgrade), and a
//! store without one refuses sealed entries: both are [`StoreErrorKind::Decrypt`].

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use smart_core::UnixTime;
use smart_core::entropy::Entropy;
use smart_core::error::{StoreError, StoreErrorKind};
use smart_core::store::StoredToken;
use zeroize::Zeroizing;

/// The `format` member of every entry this crate writes.
pub const FORMAT: &str = "smart-rs token store v1";

/// A 256-bit key for encryption at rest (XChaCha20-Poly1305). `Debug` is redacted; the key
/// is wiped from memory when dropped.
#[derive(Clone)]
pub struct EncryptionKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

fn config_error(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Other, message)
}

impl EncryptionKey {
    /// A new random key from `entropy` (e.g. `smart_core::entropy::default_entropy()`).
    ///
    /// # Errors
    /// [`StoreErrorKind::Other`] when the entropy source fails.
    pub fn generate(entropy: &dyn Entropy) -> Result<Self, StoreError> {
        let mut k = Zeroizing::new([0u8; 32]);
        entropy
            .fill(&mut k[..])
            .map_err(|_| config_error("the entropy source failed"))?;
        Ok(Self(k))
    }

    /// A key from its base64 form (standard or URL-safe alphabet, padding optional): 32
    /// bytes.
    ///
    /// # Errors
    /// [`StoreErrorKind::Other`] when the text is not base64 of exactly 32 bytes (the message
    /// never quotes it).
    pub fn from_base64(text: &str) -> Result<Self, StoreError> {
        let t = text.trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .map_err(|_| config_error("the encryption key is not base64"))?,
        );
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            config_error(format!(
                "the encryption key must be 32 bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// A key from the environment variable `name` (base64 of 32 bytes).
    ///
    /// # Errors
    /// [`StoreErrorKind::Other`] when the variable is unset or malformed.
    pub fn from_env(name: &str) -> Result<Self, StoreError> {
        let v = Zeroizing::new(
            std::env::var(name)
                .map_err(|_| config_error(format!("environment variable {name} is not set")))?,
        );
        Self::from_base64(&v)
    }

    /// A key from a file holding its base64 form.
    ///
    /// # Errors
    /// [`StoreErrorKind::Io`] when the file cannot be read; as
    /// [`from_base64`](Self::from_base64) otherwise.
    pub fn from_file(path: &Path) -> Result<Self, StoreError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Io,
                format!("cannot read key file {}", path.display()),
            )
            .with_source(e)
        })?);
        Self::from_base64(&text)
    }

    /// The key's base64 form, to save it (it is the secret that opens the store).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(&self.0[..]))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    format: String,
    key: String,
    #[serde(default)]
    expires_at: Option<UnixTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<StoredToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<Sealed>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    alg: String,
    nonce: String,
    ciphertext: String,
}

const ALG: &str = "XChaCha20-Poly1305";

/// Encodes and decodes stored entries in this crate's format, sealing them when a key is set
/// (the form [`FileTokenStore`](crate::FileTokenStore) writes to files and other stores,
/// e.g. Redis, keep as values).
#[derive(Clone, Debug)]
pub struct EntryCodec {
    pub(crate) key: Option<EncryptionKey>,
    pub(crate) entropy: std::sync::Arc<dyn Entropy>,
}

impl Default for EntryCodec {
    fn default() -> Self {
        Self::new()
    }
}

/// The hex SHA-256 of a store key (what an entry records, so the key itself, which names a
/// server and a client, is not written out).
pub(crate) fn key_digest(key: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn aad(key: &str) -> Vec<u8> {
    format!("{FORMAT}\n{key}").into_bytes()
}

fn corrupt(what: &str, why: &str) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, format!("{what}: {why}"))
}

impl EntryCodec {
    /// Plain entries, nonces from the operating system's generator.
    pub fn new() -> Self {
        Self {
            key: None,
            entropy: smart_core::entropy::default_entropy(),
        }
    }

    /// Seal entries with `key` (and refuse plain ones).
    #[must_use]
    pub fn encrypted(mut self, key: EncryptionKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Draw nonces from `entropy`.
    #[must_use]
    pub fn with_entropy(mut self, entropy: std::sync::Arc<dyn Entropy>) -> Self {
        self.entropy = entropy;
        self
    }

    /// Whether entries are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The stored bytes for `value` under `key`, expiring at `expires_at`.
    ///
    /// # Errors
    /// [`StoreErrorKind::Other`] when serialization, the entropy source or encryption fails.
    pub fn encode(
        &self,
        key: &str,
        value: &StoredToken,
        expires_at: Option<UnixTime>,
    ) -> Result<Vec<u8>, StoreError> {
        let mut env = Envelope {
            format: FORMAT.into(),
            key: key_digest(key),
            expires_at,
            token: None,
            sealed: None,
        };
        match &self.key {
            None => env.token = Some(value.clone()),
            Some(k) => {
                let plain = Zeroizing::new(
                    serde_json::to_vec(value)
                        .map_err(|e| config_error(format!("cannot serialize the entry: {e}")))?,
                );
                let mut nonce = [0u8; 24];
                self.entropy
                    .fill(&mut nonce)
                    .map_err(|_| config_error("the entropy source failed"))?;
                let cipher = XChaCha20Poly1305::new((&*k.0).into());
                let ct = cipher
                    .encrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: &plain,
                            aad: &aad(key),
                        },
                    )
                    .map_err(|_| config_error("encryption failed"))?;
                env.sealed = Some(Sealed {
                    alg: ALG.into(),
                    nonce: STANDARD.encode(nonce),
                    ciphertext: STANDARD.encode(ct),
                });
            }
        }
        serde_json::to_vec(&env).map_err(|e| config_error(format!("cannot serialize: {e}")))
    }

    /// The entry in `bytes`, read as the entry under `key` at `now`: `None` when it expired.
    ///
    /// # Errors
    /// [`StoreErrorKind::Corrupt`] for bytes that are not an entry of this format for `key`;
    /// [`StoreErrorKind::Decrypt`] for a wrong key, a tampered entry, or an entry whose
    /// protection does not match the store's (sealed without a key, plain with one). `what`
    /// names the entry in messages (a path, a Redis key).
    pub fn decode(
        &self,
        what: &str,
        key: &str,
        bytes: &[u8],
        now: UnixTime,
    ) -> Result<Option<StoredToken>, StoreError> {
        let env: Envelope = serde_json::from_slice(bytes)
            .map_err(|_| corrupt(what, "not a token store entry (unreadable JSON)"))?;
        if env.format != FORMAT {
            return Err(corrupt(what, "written in an unknown format"));
        }
        if env.key != key_digest(key) {
            return Err(corrupt(what, "holds the entry of another key"));
        }
        if env.expires_at.is_some_and(|t| now >= t) {
            return Ok(None);
        }
        match (&self.key, env.token, env.sealed) {
            (None, Some(token), None) => Ok(Some(token)),
            (Some(k), None, Some(sealed)) => {
                if sealed.alg != ALG {
                    return Err(corrupt(what, "sealed with an unknown algorithm"));
                }
                let nonce: [u8; 24] = STANDARD
                    .decode(&sealed.nonce)
                    .ok()
                    .and_then(|n| n.try_into().ok())
                    .ok_or_else(|| corrupt(what, "bad nonce"))?;
                let ct = STANDARD
                    .decode(&sealed.ciphertext)
                    .map_err(|_| corrupt(what, "bad ciphertext encoding"))?;
                let cipher = XChaCha20Poly1305::new((&*k.0).into());
                let plain = Zeroizing::new(
                    cipher
                        .decrypt(
                            &XNonce::from(nonce),
                            Payload {
                                msg: &ct,
                                aad: &aad(key),
                            },
                        )
                        .map_err(|_| {
                            StoreError::new(
                                StoreErrorKind::Decrypt,
                                format!("{what}: wrong key, or the entry was altered"),
                            )
                        })?,
                );
                serde_json::from_slice(&plain)
                    .map(Some)
                    .map_err(|_| corrupt(what, "decrypted entry is not a token set"))
            }
            (None, None, Some(_)) => Err(StoreError::new(
                StoreErrorKind::Decrypt,
                format!("{what}: the entry is encrypted and this store has no key"),
            )),
            (Some(_), Some(_), None) => Err(StoreError::new(
                StoreErrorKind::Decrypt,
                format!("{what}: the entry is not encrypted but this store requires encryption"),
            )),
            _ => Err(corrupt(what, "neither a token set nor a sealed one")),
        }
    }
}
