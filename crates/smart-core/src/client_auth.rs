//! Client authentication at the token endpoint (SMART App Launch §"Obtain access token" and
//! the pages "Client Authentication: Symmetric" and "Client Authentication: Asymmetric"):
//! public clients (`client_id` in the body), confidential-symmetric clients (HTTP Basic) and
//! confidential-asymmetric clients (`private_key_jwt`, RFC 7523).
//!
//! Flows build the form fields of a token request and call [`ClientAuth::apply`], which adds
//! exactly what the chosen method needs and nothing else: confidential clients omit
//! `client_id` from the body (SMART App Launch §"Obtain access token"), and an assertion
//! travels in the form body, never in an `Authorization` header (RFC 7523 §2.2).

use crate::assertion::{
    AssertionClaims, AssertionKey, AssertionSigner, CLIENT_ASSERTION_TYPE,
    DEFAULT_ASSERTION_LIFETIME_SECS, RemoteSigner, UnsignedAssertion, client_assertion,
};
use crate::entropy::Entropy;
use crate::error::Error;
use crate::redact::SentSecrets;
use crate::secret::ClientAssertion;
use crate::secret::ClientSecret;
use crate::time::UnixTime;
use crate::types::{ClientId, Endpoint};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::sync::Arc;

/// How `client_id` and `client_secret` are encoded inside an HTTP Basic `Authorization` header.
///
/// **Decision: the default is [`Raw`](Self::Raw).** RFC 6749
/// §2.3.1 says to form-urlencode both before Base64, but the SMART IG never mentions it, most
/// OAuth servers decode the credentials without it, and at least one large EHR rejects the
/// encoded form with `invalid_client`. The two modes differ only when the id or secret contains
/// a character outside `A–Z a–z 0–9 - . _ ~`; use [`FormUrlEncoded`](Self::FormUrlEncoded) for
/// servers that follow the RFC strictly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BasicEncoding {
    /// `base64(client_id ":" client_secret)` with the values as they are (the default).
    #[default]
    Raw,
    /// RFC 6749 §2.3.1 / Appendix B: percent-encode every byte of each value except
    /// `A–Z a–z 0–9 - . _ ~` (UTF-8, `%XX` upper-case, space as `%20`), then Base64.
    FormUrlEncoded,
}

/// Bytes left unencoded by [`BasicEncoding::FormUrlEncoded`]: the RFC 3986 unreserved set,
/// which every form or percent decoder maps back to itself.
const BASIC_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The HTTP Basic credential for a confidential-symmetric client (RFC 7617; IG "Client
/// Authentication: Symmetric"):
/// `"Basic " + base64(id ":" secret)`, with id and secret encoded per `encoding` first.
///
/// The credential is always decodable (RFC 7617 §2): in [`BasicEncoding::Raw`] mode a
/// `client_id` containing `:` (e.g. `urn:app:smart-1`), or an id or secret containing a
/// control character, is form-urlencoded as in [`BasicEncoding::FormUrlEncoded`] — a raw `:`
/// in the user-id would make the server read the id as everything before it. A `:` in the
/// secret is fine and stays raw.
///
/// `basic_authorization("my-app", &ClientSecret::new("my-app-secret-123"), BasicEncoding::Raw)`
/// is `"Basic bXktYXBwOm15LWFwcC1zZWNyZXQtMTIz"` (the IG's example).
///
/// # Security
/// The returned string contains the secret (merely Base64-encoded): send it only to the token
/// endpoint over TLS, never log it.
pub fn basic_authorization(
    client_id: &str,
    secret: &ClientSecret,
    encoding: BasicEncoding,
) -> String {
    let (id, password) = basic_parts(client_id, secret.secret(), encoding);
    format!("Basic {}", STANDARD.encode(format!("{id}:{password}")))
}

/// The user-id and password as they go into the Basic credential.
fn basic_parts(client_id: &str, secret: &str, encoding: BasicEncoding) -> (String, String) {
    let encode = |v: &str| utf8_percent_encode(v, BASIC_ENCODE_SET).to_string();
    match encoding {
        BasicEncoding::Raw => {
            let id = if client_id.contains(':') || client_id.chars().any(char::is_control) {
                encode(client_id)
            } else {
                client_id.to_owned()
            };
            let password = if secret.chars().any(char::is_control) {
                encode(secret)
            } else {
                secret.to_owned()
            };
            (id, password)
        }
        BasicEncoding::FormUrlEncoded => (encode(client_id), encode(secret)),
    }
}

/// How the client authenticates to the token endpoint (SMART App Launch §"Obtain access
/// token": public apps send `client_id`, confidential apps authenticate instead).
///
/// `Debug` never shows the `client_secret` or key material: an asymmetric signer is shown by
/// its `alg` and `kid` only.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A public client (`client-public`): `client_id` goes in the form body; no secret.
    Public {
        /// The registered `client_id`.
        client_id: ClientId,
    },
    /// A confidential-symmetric client (`client-confidential-symmetric`; IG "Client
    /// Authentication: Symmetric"):
    /// `Authorization: Basic …` header only; neither `client_id` nor `client_secret` in the
    /// body. Not for Backend Services.
    ConfidentialSymmetric {
        /// The registered `client_id`.
        client_id: ClientId,
        /// The shared secret.
        client_secret: ClientSecret,
        /// How id and secret are encoded before Base64 (default [`BasicEncoding::Raw`]; see
        /// [`BasicEncoding`] for why).
        encoding: BasicEncoding,
    },
    /// A confidential-asymmetric client (`client-confidential-asymmetric`, `private_key_jwt`)
    /// and every Backend Services client: a fresh signed `client_assertion` per request, in the
    /// form body with `client_assertion_type`; no `client_id` in the body.
    ConfidentialAsymmetric {
        /// The registered `client_id`: `iss` and `sub` of every assertion.
        client_id: ClientId,
        /// Signs the assertions: a local signer (a [`SigningKey`](crate::jwk::SigningKey) or a
        /// synchronous plug-in), or a [`RemoteSigner`] whose signature the flows ask their
        /// driver for ([`Action::Sign`](crate::flow::Action::Sign)).
        signer: AssertionKey,
        /// Assertion lifetime in seconds, 1..=300 (`exp = now + lifetime`, `iat` backdated as
        /// described under [`AssertionClaims`](crate::assertion::AssertionClaims#clock-skew));
        /// checked on each [`apply`](ClientAuth::apply).
        assertion_lifetime_secs: u64,
        /// Optional `jku` header: the registered JWKS URL (IG "Client Authentication:
        /// Asymmetric").
        jku: Option<String>,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Public { client_id } => f
                .debug_struct("Public")
                .field("client_id", client_id)
                .finish(),
            Self::ConfidentialSymmetric {
                client_id,
                client_secret: _,
                encoding,
            } => f
                .debug_struct("ConfidentialSymmetric")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .field("encoding", encoding)
                .finish(),
            Self::ConfidentialAsymmetric {
                client_id,
                signer,
                assertion_lifetime_secs,
                jku,
            } => {
                let mut d = f.debug_struct("ConfidentialAsymmetric");
                d.field("client_id", client_id)
                    .field("alg", &signer.algorithm().as_str())
                    .field("kid", &signer.key_id());
                if signer.is_remote() {
                    d.field("remote_signer", &true);
                }
                d.field("assertion_lifetime_secs", assertion_lifetime_secs)
                    .field("jku", jku)
                    .finish()
            }
        }
    }
}

/// Form fields a client-authentication method may set; [`ClientAuth::apply`] removes any
/// earlier values so credentials never appear twice or in two places.
const AUTH_FIELDS: [&str; 4] = [
    "client_id",
    "client_secret",
    "client_assertion_type",
    "client_assertion",
];

impl ClientAuth {
    /// A public client.
    pub fn public(client_id: impl Into<String>) -> Self {
        Self::Public {
            client_id: ClientId::new(client_id),
        }
    }

    /// A confidential-symmetric client with the default [`BasicEncoding::Raw`].
    pub fn symmetric(client_id: impl Into<String>, client_secret: ClientSecret) -> Self {
        Self::ConfidentialSymmetric {
            client_id: ClientId::new(client_id),
            client_secret,
            encoding: BasicEncoding::default(),
        }
    }

    /// A confidential-asymmetric client with lifetime
    /// [`DEFAULT_ASSERTION_LIFETIME_SECS`] (240 s) and no `jku`.
    pub fn asymmetric(client_id: impl Into<String>, signer: Arc<dyn AssertionSigner>) -> Self {
        Self::ConfidentialAsymmetric {
            client_id: ClientId::new(client_id),
            signer: AssertionKey::Local(signer),
            assertion_lifetime_secs: DEFAULT_ASSERTION_LIFETIME_SECS,
            jku: None,
        }
    }

    /// A confidential-asymmetric client whose key is behind a [`RemoteSigner`] (a KMS or
    /// HSM), with lifetime [`DEFAULT_ASSERTION_LIFETIME_SECS`] (240 s) and no `jku`.
    ///
    /// The flows using it (code exchange, refresh, a session, introspection, revocation) fix
    /// each assertion's claims, then emit [`Action::Sign`](crate::flow::Action::Sign) and wait
    /// for [`handle_signature`](crate::flow::Flow::handle_signature) before sending; the
    /// synchronous [`apply`](Self::apply) and the `*_request` builders refuse it
    /// ([`Error::Config`]).
    pub fn asymmetric_remote(client_id: impl Into<String>, signer: Arc<dyn RemoteSigner>) -> Self {
        Self::ConfidentialAsymmetric {
            client_id: ClientId::new(client_id),
            signer: AssertionKey::Remote(signer),
            assertion_lifetime_secs: DEFAULT_ASSERTION_LIFETIME_SECS,
            jku: None,
        }
    }

    /// The `client_id`, whatever the method.
    pub fn client_id(&self) -> &ClientId {
        match self {
            Self::Public { client_id }
            | Self::ConfidentialSymmetric { client_id, .. }
            | Self::ConfidentialAsymmetric { client_id, .. } => client_id,
        }
    }

    /// The `token_endpoint_auth_method` name (RFC 7591 §2) of this method: `none`,
    /// `client_secret_basic` or `private_key_jwt`. Compare with discovery's
    /// `token_endpoint_auth_methods_supported`.
    pub fn method_name(&self) -> &'static str {
        match self {
            Self::Public { .. } => "none",
            Self::ConfidentialSymmetric { .. } => "client_secret_basic",
            Self::ConfidentialAsymmetric { .. } => "private_key_jwt",
        }
    }

    /// Authenticate a token request being built (code exchange, refresh, or
    /// `client_credentials`).
    ///
    /// First removes any `client_id`, `client_secret`, `client_assertion_type` and
    /// `client_assertion` from `fields` and any `authorization` header from `headers`, then:
    ///
    /// - `Public`: pushes `("client_id", id)`.
    /// - `ConfidentialSymmetric`: pushes header `("authorization", "Basic …")`; nothing in the
    ///   body.
    /// - `ConfidentialAsymmetric`: mints a **new** assertion (fresh `jti`, `aud` = the
    ///   endpoint's advertised text, [`Endpoint::as_str`], byte for byte — RFC 7523 §3
    ///   compares audiences as strings, so `https://ehr.example.org:443/token` keeps its
    ///   `:443`; `exp = now + assertion_lifetime_secs`) and pushes
    ///   `("client_assertion_type", CLIENT_ASSERTION_TYPE)` and `("client_assertion", jwt)`;
    ///   no header, no `client_id`. Call it again for every HTTP attempt, retries included:
    ///   servers reject a replayed `jti`.
    ///
    /// Header names are lower-case, as in [`HttpRequest`](crate::flow::HttpRequest). The
    /// caller is responsible for checking that `token_endpoint` is `https` (or loopback).
    /// `token_endpoint` is an [`Endpoint`] (pass `&config.token_endpoint` from discovery to
    /// keep the advertised text) or a [`Url`](url::Url), whose normalised text becomes the
    /// `aud`.
    ///
    /// # Errors
    /// For `ConfidentialAsymmetric`, whatever [`client_assertion`] returns:
    /// [`Error::Config`] (lifetime outside 1..=300 s, bad `jku`, empty `kid`),
    /// [`Error::Entropy`], or the signer's [`Error::Key`]; [`Error::Config`] for a
    /// [`RemoteSigner`], which cannot sign synchronously (run a flow instead). The other
    /// methods cannot fail.
    pub fn apply(
        &self,
        fields: &mut Vec<(String, String)>,
        headers: &mut Vec<(String, String)>,
        token_endpoint: impl Into<Endpoint>,
        now: UnixTime,
        entropy: &dyn Entropy,
    ) -> Result<(), Error> {
        self.apply_recording(
            fields,
            headers,
            &token_endpoint.into(),
            now,
            entropy,
            &mut SentSecrets::new(),
        )
    }

    /// [`apply`](Self::apply), also recording every secret value it adds (the client secret
    /// and Basic credential, the signed assertion) in `sent`, so errors built from the
    /// server's answer can be scrubbed of them.
    ///
    /// # Errors
    /// As [`apply`](Self::apply).
    pub fn apply_recording(
        &self,
        fields: &mut Vec<(String, String)>,
        headers: &mut Vec<(String, String)>,
        token_endpoint: &Endpoint,
        now: UnixTime,
        entropy: &dyn Entropy,
        sent: &mut SentSecrets,
    ) -> Result<(), Error> {
        if let Self::ConfidentialAsymmetric {
            signer: AssertionKey::Remote(_),
            ..
        } = self
        {
            // Refused before anything changes: the request stays untouched.
            return Err(remote_needs_a_flow());
        }
        self.apply_deferring(fields, headers, token_endpoint, now, entropy, sent)
            .map(|_| ())
    }

    /// [`apply_recording`](Self::apply_recording), except that a [`RemoteSigner`] does not
    /// fail: every other field is applied (the old credentials removed), and the assertion,
    /// its claims fixed, is returned for the driver to sign; once signed,
    /// [`push_assertion`] adds it.
    pub(crate) fn apply_deferring(
        &self,
        fields: &mut Vec<(String, String)>,
        headers: &mut Vec<(String, String)>,
        token_endpoint: &Endpoint,
        now: UnixTime,
        entropy: &dyn Entropy,
        sent: &mut SentSecrets,
    ) -> Result<Option<Deferred>, Error> {
        // Mint first, so that a failure leaves the request untouched.
        let mut deferred = None;
        let assertion = match self {
            Self::ConfidentialAsymmetric {
                client_id,
                signer,
                assertion_lifetime_secs,
                jku,
            } => {
                let claims = AssertionClaims {
                    client_id: client_id.as_str(),
                    audience: token_endpoint.as_str(),
                    lifetime_secs: *assertion_lifetime_secs,
                    jku: jku.as_deref(),
                };
                match signer {
                    AssertionKey::Local(signer) => {
                        Some(client_assertion(signer.as_ref(), &claims, now, entropy)?)
                    }
                    AssertionKey::Remote(signer) => {
                        let unsigned = UnsignedAssertion::new(
                            signer.algorithm(),
                            signer.key_id(),
                            &claims,
                            now,
                            entropy,
                        )?;
                        deferred = Some((unsigned, signer.clone()));
                        None
                    }
                }
            }
            _ => None,
        };
        fields.retain(|(k, _)| !AUTH_FIELDS.contains(&k.as_str()));
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        match self {
            Self::Public { client_id } => {
                fields.push(("client_id".into(), client_id.as_str().into()));
            }
            Self::ConfidentialSymmetric {
                client_id,
                client_secret,
                encoding,
            } => {
                let header = basic_authorization(client_id.as_str(), client_secret, *encoding);
                let (id, password) =
                    basic_parts(client_id.as_str(), client_secret.secret(), *encoding);
                sent.add(client_secret.secret());
                sent.add_basic(&id, &password, &header);
                headers.push(("authorization".into(), header));
            }
            Self::ConfidentialAsymmetric { .. } => {
                if let Some(jwt) = assertion {
                    push_assertion(fields, sent, jwt);
                }
            }
        }
        Ok(deferred)
    }
}

/// An assertion whose claims are fixed, and the remote signer that must sign it.
pub(crate) type Deferred = (UnsignedAssertion, Arc<dyn RemoteSigner>);

/// Why the synchronous builders refuse a remote signer.
const REMOTE_NEEDS_A_FLOW: &str = "a remote signer signs asynchronously: run the flow (a \
    driver's `run`, or `Action::Sign` by hand) instead of building the request synchronously";

/// The error of a synchronous request builder given a remote signer.
pub(crate) fn remote_needs_a_flow() -> Error {
    Error::Config(REMOTE_NEEDS_A_FLOW.into())
}

/// Add a signed assertion to a request's form fields (RFC 7523 §2.2), recording it in `sent`.
pub(crate) fn push_assertion(
    fields: &mut Vec<(String, String)>,
    sent: &mut SentSecrets,
    jwt: ClientAssertion,
) {
    sent.add(jwt.secret());
    fields.push(("client_assertion_type".into(), CLIENT_ASSERTION_TYPE.into()));
    fields.push(("client_assertion".into(), jwt.into_secret()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_set_keeps_unreserved_only() {
        for b in 0x20u8..0x7f {
            let c = char::from(b).to_string();
            let enc = utf8_percent_encode(&c, BASIC_ENCODE_SET).to_string();
            let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            assert_eq!(enc == c, unreserved, "{c:?} -> {enc}");
            if !unreserved {
                assert_eq!(enc, format!("%{b:02X}"));
            }
        }
        assert_eq!(
            utf8_percent_encode("a b+\u{e9}", BASIC_ENCODE_SET).to_string(),
            "a%20b%2B%C3%A9"
        );
    }
}
