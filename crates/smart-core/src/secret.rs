//! Secret newtypes: bearer credentials and key material that must never be logged.
//!
//! Each type prints as `Name([redacted])` under `Debug`, has no `Display`, and gives up its
//! value only through [`secret`](AccessToken::secret) or `into_secret`, whose names make every
//! read visible in review. Equality compares SHA-256 digests in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::jwk::PrivateKeyPem;

macro_rules! secret_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wrap a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value.
            ///
            /// # Security
            /// Leaking this value lets anyone act with the credential it represents: do not
            /// log it, put it in an error, or send it anywhere but its intended endpoint.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Consume the wrapper and return the secret value (see [`secret`](Self::secret)).
            pub fn into_secret(self) -> String {
                self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            /// Constant-time comparison of the SHA-256 digests of both values.
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(&self.0, &other.0)
            }
        }

        impl Eq for $name {}
    };
}

secret_newtype!(
    /// An OAuth 2.0 access token (RFC 6749 §1.4), sent as `Authorization: Bearer …`.
    AccessToken
);
secret_newtype!(
    /// An OAuth 2.0 refresh token (RFC 6749 §1.5).
    RefreshToken
);
secret_newtype!(
    /// A confidential-symmetric client's `client_secret` (RFC 6749 §2.3.1; SMART
    /// client-confidential-symmetric).
    ClientSecret
);
secret_newtype!(
    /// An authorization `code` from the redirect (RFC 6749 §4.1.2).
    AuthorizationCode
);
secret_newtype!(
    /// A PKCE `code_verifier` (RFC 7636 §4.1).
    PkceCodeVerifier
);
secret_newtype!(
    /// The OAuth `state` parameter (RFC 6749 §10.12), bound to the user's session.
    CsrfToken
);
secret_newtype!(
    /// An OpenID Connect `id_token` (compact JWT), as returned in a token response.
    IdToken
);
secret_newtype!(
    /// A signed `client_assertion` JWT (RFC 7523 §2.2). Single use: one per token request.
    ClientAssertion
);

/// An HTTP `Authorization` header value carrying a credential, e.g. `Bearer <token>`
/// (RFC 6750 §2.1).
///
/// Shared, not copied: cloning it is a reference-count increment, so token sources hand the
/// same header value to every caller. `Debug` is redacted; there is no `Display`.
#[derive(Clone)]
pub struct AuthorizationHeader(std::sync::Arc<str>);

impl AuthorizationHeader {
    /// Wrap a header value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(std::sync::Arc::from(value.into()))
    }

    /// `Bearer <access token>` (RFC 6750 §2.1).
    pub fn bearer(token: &AccessToken) -> Self {
        Self::new(format!("Bearer {}", token.secret()))
    }

    /// The header value.
    ///
    /// # Security
    /// It carries the credential: send it only in the `Authorization` header of a request to
    /// its resource server; do not log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AuthorizationHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthorizationHeader([redacted])")
    }
}

impl PartialEq for AuthorizationHeader {
    /// Constant-time comparison of the SHA-256 digests of both values.
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for AuthorizationHeader {}

/// Compare two secrets in constant time (over their SHA-256 digests, so length is hidden too).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let da = Sha256::digest(a.as_bytes());
    let db = Sha256::digest(b.as_bytes());
    da.ct_eq(&db).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("eyJhbGciOi.secret.value");
        let s = format!("{t:?}");
        assert_eq!(s, "AccessToken([redacted])");
        assert!(!s.contains("secret.value"));
        assert_eq!(
            format!("{:?}", ClientSecret::new("pw")),
            "ClientSecret([redacted])"
        );
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(CsrfToken::new("abc"), CsrfToken::new("abc"));
        assert_ne!(CsrfToken::new("abc"), CsrfToken::new("abd"));
        assert!(!constant_time_eq("a", "ab"));
    }
}
