use std::fmt;

/// Errors from the blocking driver. Never contains a token, secret or response body.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A protocol error from the state machine: an OAuth error from the server
    /// ([`smart_core::Error::OAuth`]), a discovery or parse failure, bad configuration…
    Smart(smart_core::Error),
    /// The request could not be sent or the response could not be read (DNS, TCP, TLS,
    /// timeout).
    Transport {
        /// The URL of the failed request.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The token store failed.
    Store(crate::StoreError),
    /// The response body exceeded the limit (bytes).
    BodyTooLarge {
        /// The URL of the request.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
}

impl Error {
    /// The OAuth error (RFC 6749 §5.2) the server answered with, if that is what this is.
    pub fn oauth_error(&self) -> Option<&smart_core::error::OAuthError> {
        match self {
            Self::Smart(smart_core::Error::OAuth(e)) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smart(e) => e.fmt(f),
            Self::Transport { url, message } => write!(f, "request to {url} failed: {message}"),
            Self::Store(e) => e.fmt(f),
            Self::BodyTooLarge { url, limit } => {
                write!(f, "response from {url} exceeds {limit} bytes")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Smart(e) => Some(e),
            _ => None,
        }
    }
}

impl From<smart_core::Error> for Error {
    fn from(e: smart_core::Error) -> Self {
        Self::Smart(e)
    }
}
