//! The driver contract: [`Flow`] and [`Action`], stated once for every flow in the crate.
//!
//! Every operation that talks to a server is a flow: discovery ([`Discovery`]), Backend
//! Services ([`BackendServices`]), the launch ([`LaunchFlow`]) and code exchange
//! ([`CodeExchange`]), an App Launch session ([`Session`]), refresh, introspection and
//! revocation ([`SingleRequest`]), and `id_token` verification ([`IdTokenVerifier`]). A flow
//! never performs I/O and never reads a clock: it tells its driver what to do next
//! ([`Action`]) and is told what happened (`handle_*`), with the time passed in.
//!
//! [`Discovery`]: crate::discovery::Discovery
//! [`BackendServices`]: crate::backend::BackendServices
//! [`LaunchFlow`]: crate::launch::LaunchFlow
//! [`CodeExchange`]: crate::launch::CodeExchange
//! [`Session`]: crate::session::Session
//! [`SingleRequest`]: crate::single::SingleRequest
//! [`IdTokenVerifier`]: crate::id_token::IdTokenVerifier
//!
//! # Two kinds of flow
//!
//! - **One-shot flows** produce one output: the driver polls until [`Action::Ready`], and the
//!   flow is then finished (a later `poll` returns [`Error::Misuse`]).
//! - **Token sources** ([`BackendServices`], [`Session`]) answer [`Action::Ready`] with the
//!   current token whenever a usable one is cached, and live on: the driver polls again each
//!   time a token is needed. One token source may serve many callers at once. A caller whose
//!   poll returns [`Action::Send`], [`Action::Sign`] or [`Action::Store`] *holds the flight*
//!   (the work of getting a new token); every other caller gets `Ready` with the still-valid
//!   token, or [`Action::WaitForFlight`] when there is none.
//!
//! # The actions
//!
//! | action | what the driver does | then it calls |
//! |---|---|---|
//! | [`Send(request)`](Action::Send) | sends `request` (never following a redirect, capping the body at [`MAX_RESPONSE_BYTES`](crate::http::MAX_RESPONSE_BYTES)) | [`handle_response`](Flow::handle_response) with whatever status came back, or [`handle_transport_error`](Flow::handle_transport_error) |
//! | [`Sign(request)`](Action::Sign) | awaits [`request.sign()`](SignRequest::sign), the client's [`RemoteSigner`](crate::assertion::RemoteSigner) signing a client assertion (optionally giving up at [`sign_by`](SignRequest::sign_by)) | [`handle_signature`](Flow::handle_signature) with the signature or the signer's error ([`timeout_error`](SignRequest::timeout_error) when it gave up) |
//! | [`Store(op)`](Action::Store) | performs `op` on its token store | [`handle_store`](Flow::handle_store) |
//! | [`WaitUntil(t)`](Action::WaitUntil) | waits until `t` (a retry delay, a server's `Retry-After`, a lease poll) | [`poll`](Flow::poll) |
//! | [`WaitForFlight`](Action::WaitForFlight) | waits until the caller holding the flight calls a `handle_*` method or [`abort`](Flow::abort) | [`poll`](Flow::poll) |
//! | [`Ready(output)`](Action::Ready) | returns `output` | — |
//!
//! # Rules
//!
//! 1. `poll`, `handle_*` and `abort` never block, never perform I/O and never read a clock;
//!    `now` is the driver's current time. Several callers may share one flow behind a lock,
//!    held only while calling these methods, **never across I/O or a wait**.
//! 2. After `Send`, `Sign` or `Store`, the caller that received it must report exactly once:
//!    the matching `handle_*` method, or `abort` when it gives up without a result
//!    (cancelled, panicked). Until then every other poll of that flow returns
//!    `WaitForFlight` (or `Ready` with a still-valid token, for a token source). A `Sign` is
//!    awaited with the lock released, like a `Send`: a slow signer never blocks the other
//!    callers.
//! 3. A `handle_*` method returning `Ok(())` means: poll again. Returning `Err(e)` means the
//!    attempt is over and `e` is its outcome: a one-shot flow is finished and every later
//!    `poll` returns the same `e`; a token source answers every `poll` with the same `e`
//!    (shared by all the callers that waited on that flight) until its backoff period ends,
//!    unless a still-valid token is cached, which is returned instead.
//! 4. `abort` forgets the step in flight without recording an error: the next `poll` repeats
//!    it where that is safe (a discovery `GET`; a token request, with a freshly signed
//!    `client_assertion`; a signature, which sent nothing). Where repeating is unsafe — an
//!    authorization code already sent, which is single use — the flow finishes with
//!    [`Error::Misuse`] instead of resending.
//! 5. A client assertion's claims (`jti`, `iat`, `exp`) are fixed when `Sign` is emitted. A
//!    signature reported after [`SignRequest::sign_by`] is discarded and the next `poll`
//!    makes a new assertion (once per attempt; a second late signature ends the attempt with
//!    [`Error::Key`]); a signature of the wrong shape for its algorithm ends the attempt with
//!    [`Error::Key`]. A stale or malformed assertion is never sent.
//! 6. Errors never contain a token, secret, key, code or `code_verifier`, even when a server
//!    echoes one back: a flow removes every value it sent from the server's text before it
//!    returns an error (see [`SentSecrets`](crate::redact::SentSecrets)).
//!
//! # A driver loop
//!
//! ```text
//! loop {
//!     match flow.poll(now())? {
//!         Action::Ready(output) => return Ok(output),
//!         Action::Send(request) => match http.send(request) {
//!             Ok(response) => flow.handle_response(response, now())?,
//!             Err(transport) => flow.handle_transport_error(transport, now())?,
//!         },
//!         Action::Sign(request) => flow.handle_signature(block_on(request.sign()), now())?,
//!         Action::Store(op) => flow.handle_store(store.perform(op), now())?,
//!         Action::WaitUntil(t) => sleep_until(t),
//!         Action::WaitForFlight => wait_for_the_flight_holder(),
//!     }
//! }
//! ```

use crate::error::{Error, TransportError};
use crate::store::{StoreOp, StoreResult};
use crate::time::UnixTime;

pub use crate::http::{HttpRequest, HttpResponse, Method};
pub use crate::sign::SignRequest;

/// What the driver must do next. See the [module docs](self) for who may see which action.
#[must_use]
#[derive(Debug)]
pub enum Action<T> {
    /// Send this request, then report with [`Flow::handle_response`] or
    /// [`Flow::handle_transport_error`].
    Send(HttpRequest),
    /// Have a remote signer sign this client assertion (await [`SignRequest::sign`] with no
    /// lock held), then report with [`Flow::handle_signature`]. Only flows whose client
    /// authenticates with a [`RemoteSigner`](crate::assertion::RemoteSigner) emit it.
    Sign(SignRequest),
    /// Perform this token-store operation, then report with [`Flow::handle_store`]. Only
    /// token sources configured with a store emit it.
    Store(StoreOp),
    /// Nothing to do before this time (a retry delay, a `Retry-After`, a lease poll): wait,
    /// then poll again. Never emitted by one-shot flows.
    WaitUntil(UnixTime),
    /// Another caller holds this token source's flight: wait until it reports, then poll
    /// again. Only a token source shared between callers emits it.
    WaitForFlight,
    /// The flow's output.
    Ready(T),
}

/// A sans-IO protocol state machine. The [module docs](self) state the contract.
pub trait Flow {
    /// What the flow produces.
    type Output;

    /// The next action at time `now`.
    ///
    /// # Errors
    /// The outcome recorded by the last failed `handle_*` call (rule 3 of the module docs),
    /// an error found while building a request (a key that cannot sign, an insecure URL), or
    /// [`Error::Misuse`] when a one-shot flow already produced its output.
    fn poll(&mut self, now: UnixTime) -> Result<Action<Self::Output>, Error>;

    /// Feed the response to the request last returned by [`poll`](Self::poll), whatever its
    /// status.
    ///
    /// # Errors
    /// The error the response represents (e.g. [`Error::OAuth`] for a 400 from the token
    /// endpoint), or [`Error::Misuse`] when no request is in flight.
    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error>;

    /// The request last returned by [`poll`](Self::poll) could not be sent or its response
    /// could not be read. The flow decides whether to try again (`Ok`, then poll) or to give
    /// up (`Err`).
    ///
    /// # Errors
    /// `error` itself ([`Error::Transport`]) when the flow gives up, or [`Error::Misuse`]
    /// when no request is in flight.
    fn handle_transport_error(&mut self, error: TransportError, now: UnixTime)
    -> Result<(), Error>;

    /// Feed the result of the store operation last returned by [`poll`](Self::poll). Flows
    /// without a store never emit [`Action::Store`]; their implementation returns
    /// [`Error::Misuse`].
    ///
    /// # Errors
    /// As for [`handle_response`](Self::handle_response).
    fn handle_store(&mut self, result: StoreResult, now: UnixTime) -> Result<(), Error> {
        let _ = (result, now);
        Err(Error::Misuse("this flow performs no store operations"))
    }

    /// Feed the outcome of the signature last asked for with [`Action::Sign`]: the raw
    /// signature bytes (`ES384`: 96 bytes `R||S`; `RS384`: as long as the modulus), or the
    /// signer's error. `Ok(())` means poll again (which sends the signed request, or signs a
    /// new assertion when this one came too late; rule 5 of the module docs). Flows whose
    /// client signs locally never emit `Sign`; their implementation returns
    /// [`Error::Misuse`].
    ///
    /// # Errors
    /// The signer's error; [`Error::Key`] for a signature of the wrong shape, or a second
    /// late one; [`Error::Misuse`] when no signature is pending. A token source answers as
    /// after any failed attempt (rule 3): a still-valid token is still handed out.
    fn handle_signature(
        &mut self,
        signature: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let _ = (signature, now);
        Err(Error::Misuse("this flow requests no signatures"))
    }

    /// The step in flight was abandoned without a result (the caller was cancelled or
    /// panicked). See rule 4 of the module docs.
    fn abort(&mut self);
}

/// A flow borrowed mutably is a flow: drivers can run a caller's flow in place.
impl<F: Flow + ?Sized> Flow for &mut F {
    type Output = F::Output;

    fn poll(&mut self, now: UnixTime) -> Result<Action<Self::Output>, Error> {
        (**self).poll(now)
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        (**self).handle_response(response, now)
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        now: UnixTime,
    ) -> Result<(), Error> {
        (**self).handle_transport_error(error, now)
    }

    fn handle_store(&mut self, result: StoreResult, now: UnixTime) -> Result<(), Error> {
        (**self).handle_store(result, now)
    }

    fn handle_signature(
        &mut self,
        signature: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        (**self).handle_signature(signature, now)
    }

    fn abort(&mut self) {
        (**self).abort();
    }
}
