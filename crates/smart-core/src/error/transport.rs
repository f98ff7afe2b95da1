//! Errors of the I/O a driver performs for a flow: HTTP transport and token stores.
//!
//! The core performs no I/O, but it defines these types so that every crate of the family
//! reports one error type ([`Error`](super::Error)), so that a flow can decide what a failure
//! means (retry a refused connection, never resend an authorization code), and so that every
//! caller waiting on one request receives the same error.

use std::fmt;
use std::sync::Arc;

/// The underlying error of a transport or store failure, kept for
/// [`std::error::Error::source`]. Shared, so the error stays `Clone`.
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of transport failure happened. The same kinds in every driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The request did not complete within the driver's timeout (connect, send, or receive).
    Timeout,
    /// The connection could not be established (DNS, TCP refused or reset).
    Connect,
    /// The TLS handshake failed (untrusted certificate, name mismatch, protocol error).
    Tls,
    /// The response body exceeded the driver's limit.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request could not be built or the response could not be read for another reason.
    Other,
}

impl TransportErrorKind {
    /// A short lower-case name: `timeout`, `connect`, `tls`, `body_too_large`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::Other => "other",
        }
    }

    /// Whether another attempt could succeed: a refused or reset connection can; a timeout
    /// has already used the caller's time budget, a TLS failure or an oversized body will not
    /// change by themselves.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Connect)
    }
}

/// A request could not be sent, or its response could not be read.
///
/// Carries the URL (never a body), the [kind](TransportErrorKind), the driver's message and
/// the underlying error as [`source`](std::error::Error::source). Equality ignores the
/// source.
#[derive(Clone)]
pub struct TransportError {
    /// The URL of the failed request.
    pub url: String,
    /// What went wrong.
    pub kind: TransportErrorKind,
    /// The driver's description (no body, no secret). When the driver kept the underlying
    /// error ([`source_error`](Self::source_error)), this is that error's text and `Display`
    /// leaves it to the error chain.
    pub message: String,
    source: Option<ErrorSource>,
}

impl TransportError {
    /// A transport error for `url`.
    pub fn new(
        url: impl Into<String>,
        kind: TransportErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Keep `source` as the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The underlying error, if the driver kept one.
    pub fn source_error(&self) -> Option<&ErrorSource> {
        self.source.as_ref()
    }
}

impl PartialEq for TransportError {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.kind == other.kind && self.message == other.message
    }
}

impl Eq for TransportError {}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("has_source", &self.source.is_some())
            .finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Tls => "TLS failure",
            TransportErrorKind::BodyTooLarge { limit } => {
                return write!(f, "response from {} exceeds {limit} bytes", self.url);
            }
            TransportErrorKind::Other => "failed",
        };
        write!(f, "request to {} {what}", self.url)?;
        // With a source, the details are the source's (printed by an error chain, e.g.
        // `Error::report`); printing them here too would show them twice.
        if self.source.is_none() && !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What kind of token-store failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached (e.g. the Redis server is down). Token sources keep
    /// working in-process and try the store again later.
    Unavailable,
    /// What is stored is not a token set this library wrote (corrupt, truncated, foreign). It
    /// is left untouched.
    Corrupt,
    /// An encrypted entry could not be decrypted: wrong key, or tampered data. It is left
    /// untouched.
    Decrypt,
    /// A file-system or other I/O failure.
    Io,
    /// Anything else (the message says what).
    Other,
}

/// A token store failed. The message never contains a token.
#[derive(Clone)]
pub struct StoreError {
    /// What went wrong.
    pub kind: StoreErrorKind,
    /// A description (a path or key, never a stored value).
    pub message: String,
    source: Option<ErrorSource>,
}

impl StoreError {
    /// A store error of `kind`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Keep `source` as the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for StoreError {}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("has_source", &self.source.is_some())
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Corrupt => "entry is not a stored token set",
            StoreErrorKind::Decrypt => "entry cannot be decrypted (wrong key or tampered)",
            StoreErrorKind::Io => "I/O error",
            StoreErrorKind::Other => "error",
        };
        write!(f, "token store {what}: {}", self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
