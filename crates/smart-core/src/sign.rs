//! Signing by a [`RemoteSigner`] (a KMS, an HSM): the [`SignRequest`] a flow hands its driver
//! as [`Action::Sign`](crate::flow::Action::Sign), and how every flow that authenticates with
//! `private_key_jwt` waits for the signature (RFC 7523 §2.2; IG "Client Authentication:
//! Asymmetric").
//!
//! ```text
//!   poll ──▶ claims fixed (jti, iat, exp) ──▶ Sign(request) ──▶ driver awaits signer.sign(input)
//!                                                                   │ no lock held
//!   poll ◀── handle_signature(Ok(signature)) ◀──────────────────────┘
//!    └──▶ JWS assembled, checked ──▶ Send(token request with client_assertion)
//! ```
//!
//! A signature that arrives after [`SignRequest::sign_by`] is discarded and the assertion is
//! made again (new `jti`, new times) at the next poll, once per attempt; a second late one ends
//! the attempt with [`Error::Key`]. A stale assertion is never sent.

use std::sync::Arc;

use url::Url;

use crate::assertion::{JwsAlgorithm, RemoteSigner, SignFuture, UnsignedAssertion};
use crate::client_auth::push_assertion;
use crate::error::{Error, KeyError};
use crate::http::{HttpRequest, Purpose};
use crate::redact::SentSecrets;
use crate::request::Outgoing;
use crate::time::UnixTime;

/// The latest a remote signature may arrive is this many **seconds** before the assertion's
/// `exp` (at most half its lifetime before): with the default 240 s lifetime, 180 s after the
/// claims were fixed, so the server still sees `exp` a minute ahead when the request arrives.
pub const REMOTE_SIGN_MARGIN_SECS: u64 = 60;

/// How many late signatures an attempt discards (each followed by a new assertion) before it
/// fails with [`Error::Key`].
pub const MAX_LATE_SIGNATURES: u8 = 1;

/// A signature a flow needs from a [`RemoteSigner`]: what [`Action::Sign`](crate::flow::Action::Sign)
/// carries.
///
/// The driver calls [`sign`](Self::sign) and awaits the future **with no lock held**, then
/// reports the outcome once with [`Flow::handle_signature`](crate::flow::Flow::handle_signature)
/// (or calls [`abort`](crate::flow::Flow::abort)). A driver that stops waiting at
/// [`sign_by`](Self::sign_by) reports [`timeout_error`](Self::timeout_error).
///
/// The signing input is `BASE64URL(header) "." BASE64URL(claims)` of a client assertion: it
/// holds no secret. `Debug` shows the algorithm, `kid`, purpose, input length and deadline.
pub struct SignRequest {
    signer: Arc<dyn RemoteSigner>,
    signing_input: String,
    purpose: Purpose,
    client_id: String,
    made_at: UnixTime,
    sign_by: UnixTime,
}

impl std::fmt::Debug for SignRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRequest")
            .field("alg", &self.algorithm().as_str())
            .field("kid", &self.key_id())
            .field("purpose", &self.purpose.as_str())
            .field("input_bytes", &self.signing_input.len())
            .field("sign_by", &self.sign_by)
            .finish()
    }
}

impl SignRequest {
    /// The bytes to sign: `BASE64URL(header) "." BASE64URL(claims)` (ASCII).
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The JWS `alg` the signature must be made with (the signer's).
    pub fn algorithm(&self) -> JwsAlgorithm {
        self.signer.algorithm()
    }

    /// The `kid` in the assertion's header (the signer's).
    pub fn key_id(&self) -> &str {
        self.signer.key_id()
    }

    /// The signer to ask.
    pub fn signer(&self) -> &Arc<dyn RemoteSigner> {
        &self.signer
    }

    /// The request the assertion is for (`token`, `code_exchange`, `refresh`,
    /// `introspection`, `revocation`).
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The `client_id` the assertion is issued for (`iss` and `sub`).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// When the assertion's claims were fixed (its `iat` is up to 60 s before).
    pub fn made_at(&self) -> UnixTime {
        self.made_at
    }

    /// The deadline: a signature reported after it is discarded (see the
    /// [module docs](self)). `exp − min(`[`REMOTE_SIGN_MARGIN_SECS`]`, lifetime / 2)`.
    pub fn sign_by(&self) -> UnixTime {
        self.sign_by
    }

    /// Start signing: `signer().sign(signing_input)`. Await the future, then report its output
    /// with [`Flow::handle_signature`](crate::flow::Flow::handle_signature).
    pub fn sign(&self) -> SignFuture {
        self.signer.sign(self.signing_input.clone().into_bytes())
    }

    /// The error a driver reports when it stops waiting for the signer at
    /// [`sign_by`](Self::sign_by): [`Error::Key`] naming the `kid` and the time waited.
    pub fn timeout_error(&self) -> Error {
        KeyError::new(format!(
            "the remote signer (kid `{}`) gave no signature within {} s; the assertion would \
             be stale",
            self.key_id(),
            self.made_at.secs_until(self.sign_by)
        ))
        .into()
    }
}

/// A request being built: finished, or waiting for its client assertion's signature.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Ready to send.
    Ready(Outgoing),
    /// Everything but the `client_assertion`, which a remote signer must sign first.
    Unsigned(Box<UnsignedPost>),
}

impl Prepared {
    /// The finished request, for the synchronous request builders.
    ///
    /// # Errors
    /// [`Error::Config`] when the request needs a remote signature.
    pub(crate) fn into_request(self) -> Result<HttpRequest, Error> {
        match self {
            Self::Ready(o) => Ok(o.request),
            Self::Unsigned(_) => Err(crate::client_auth::remote_needs_a_flow()),
        }
    }
}

/// A form `POST` whose `client_assertion` awaits its signature. `Debug` shows the URL,
/// purpose and form field names, never their values (a code, a refresh token).
pub(crate) struct UnsignedPost {
    pub(crate) url: Url,
    pub(crate) purpose: Purpose,
    pub(crate) client_id: String,
    pub(crate) fields: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) sent: SentSecrets,
    pub(crate) assertion: UnsignedAssertion,
    pub(crate) signer: Arc<dyn RemoteSigner>,
}

impl std::fmt::Debug for UnsignedPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("UnsignedPost")
            .field("url", &self.url.as_str())
            .field("purpose", &self.purpose.as_str())
            .field("fields", &names)
            .finish_non_exhaustive()
    }
}

impl UnsignedPost {
    fn sign_by(&self) -> UnixTime {
        let made = self.assertion.made_at();
        let exp = self.assertion.expires_at();
        let lifetime = made.secs_until(exp);
        exp.minus_secs(REMOTE_SIGN_MARGIN_SECS.min(lifetime / 2))
    }

    fn sign_request(&self) -> SignRequest {
        SignRequest {
            signer: self.signer.clone(),
            signing_input: self.assertion.signing_input().to_owned(),
            purpose: self.purpose,
            client_id: self.client_id.clone(),
            made_at: self.assertion.made_at(),
            sign_by: self.sign_by(),
        }
    }

    /// The request with the signed assertion, after checking the signature's shape.
    fn complete(self, signature: &[u8]) -> Result<Outgoing, Error> {
        if self.signer.algorithm() != self.assertion.alg() {
            return Err(
                KeyError::new("the remote signer changed its algorithm while signing").into(),
            );
        }
        let Self {
            url,
            purpose,
            client_id,
            mut fields,
            headers,
            mut sent,
            assertion,
            ..
        } = self;
        let jwt = assertion.complete(signature)?;
        push_assertion(&mut fields, &mut sent, jwt);
        Ok(crate::request::form_post(
            url, purpose, client_id, &fields, headers, sent,
        ))
    }
}

/// What to do with a prepared request.
pub(crate) enum Next {
    Send(Outgoing),
    Sign(SignRequest),
}

/// The signing step of a flow's request: the post waiting for its signature, the signed
/// request waiting to be sent, and the late signatures discarded in this attempt.
#[derive(Debug, Default)]
pub(crate) struct SignSlot {
    waiting: Option<UnsignedPost>,
    signed: Option<Outgoing>,
    late: u8,
}

impl SignSlot {
    /// The request signed since the last poll, if any: send it.
    pub(crate) fn take_signed(&mut self) -> Option<Outgoing> {
        self.signed.take()
    }

    /// Send `prepared` at once, or ask for its signature (keeping it until
    /// [`signature`](Self::signature)).
    pub(crate) fn begin(&mut self, prepared: Prepared) -> Next {
        match prepared {
            Prepared::Ready(o) => Next::Send(o),
            Prepared::Unsigned(post) => {
                let request = post.sign_request();
                self.waiting = Some(*post);
                Next::Sign(request)
            }
        }
    }

    /// The signature arrived at `now`. `Ok(())`: poll again, which sends the signed request
    /// ([`take_signed`](Self::take_signed)) or, after a late signature, builds a new one.
    ///
    /// # Errors
    /// The signer's error; [`Error::Key`] for a signature of the wrong shape or a second late
    /// one; [`Error::Misuse`] when no signature is awaited (nothing changes then).
    pub(crate) fn signature(
        &mut self,
        signature: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let post = self.waiting.take().ok_or(Error::Misuse(
            "handle_signature called with no signature pending",
        ))?;
        let signature = signature.inspect_err(|_| self.late = 0)?;
        let sign_by = post.sign_by();
        if now > sign_by {
            self.late += 1;
            if self.late > MAX_LATE_SIGNATURES {
                self.late = 0;
                return Err(KeyError::new(format!(
                    "the remote signer (kid `{}`) answered after the assertion's deadline \
                     {} times ({} s after the claims were fixed, at most {} s allowed)",
                    post.signer.key_id(),
                    MAX_LATE_SIGNATURES + 1,
                    post.assertion.made_at().secs_until(now),
                    post.assertion.made_at().secs_until(sign_by),
                ))
                .into());
            }
            return Ok(());
        }
        self.late = 0;
        self.signed = Some(post.complete(&signature)?);
        Ok(())
    }

    /// Forget everything (the step was abandoned or the attempt is over).
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}
