//! [`SingleRequest`]: a one-shot [`Flow`] of one authenticated `POST` and one parsed answer
//! — refresh ([`crate::refresh::refresh`]), introspection
//! ([`crate::introspection::introspect`]) and revocation ([`crate::introspection::revoke`]).

use std::fmt;

use url::Url;

use crate::error::{Error, TransportError};
use crate::flow::{Action, Flow};
use crate::http::HttpResponse;
use crate::redact::SentSecrets;
use crate::request::{Outgoing, refuse_redirect};
use crate::sign::{Next, Prepared, SignSlot};
use crate::time::UnixTime;

/// Builds the request at `now` (making a fresh assertion each time it is called).
pub(crate) type BuildFn = Box<dyn Fn(UnixTime) -> Result<Prepared, Error> + Send + Sync>;
/// Reads the answer at `now`.
pub(crate) type ParseFn<T> = fn(&HttpResponse, &Url, UnixTime) -> Result<T, Error>;

enum State<T> {
    /// The next poll builds and sends the request (or sends the one just signed).
    Start,
    /// A remote signer is signing the request's client assertion.
    Signing,
    /// The request is in flight; these secrets went with it.
    InFlight(SentSecrets),
    /// The answer, to hand out at the next poll.
    Done(Result<T, Error>),
    /// The output was handed out.
    Finished,
}

/// A one-shot [`Flow`]: one `POST`, one answer read by a parser; output `T`.
///
/// The request is built when first polled (an asymmetric client signs its
/// `client_assertion` then, with that poll's `now`; with a remote signer the poll emits
/// [`Action::Sign`] and the request is sent at the poll after
/// [`handle_signature`](Flow::handle_signature)). A transport failure is final (the error
/// is returned and repeated by later polls); [`abort`](Flow::abort) rebuilds the request at
/// the next poll. A redirect is refused ([`Error::Redirect`]). Every error is scrubbed of the
/// values the request carried.
pub struct SingleRequest<T> {
    what: &'static str,
    url: Url,
    build: BuildFn,
    parse: ParseFn<T>,
    state: State<T>,
    slot: SignSlot,
}

impl<T> fmt::Debug for SingleRequest<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Start => "start",
            State::Signing => "signing",
            State::InFlight(_) => "in flight",
            State::Done(Ok(_)) => "done",
            State::Done(Err(_)) => "failed",
            State::Finished => "finished",
        };
        f.debug_struct("SingleRequest")
            .field("what", &self.what)
            .field("url", &self.url.as_str())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<T> SingleRequest<T> {
    pub(crate) fn new(what: &'static str, url: Url, build: BuildFn, parse: ParseFn<T>) -> Self {
        Self {
            what,
            url,
            build,
            parse,
            state: State::Start,
            slot: SignSlot::default(),
        }
    }

    /// What this request does (`"refresh"`, `"introspection"`, `"revocation"`).
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The endpoint URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl<T> Flow for SingleRequest<T> {
    type Output = T;

    fn poll(&mut self, now: UnixTime) -> Result<Action<T>, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Start => {
                let next = match self.slot.take_signed() {
                    Some(signed) => Next::Send(signed),
                    None => self.slot.begin((self.build)(now)?),
                };
                match next {
                    Next::Send(Outgoing { request, sent }) => {
                        self.state = State::InFlight(sent);
                        Ok(Action::Send(request))
                    }
                    Next::Sign(request) => {
                        self.state = State::Signing;
                        Ok(Action::Sign(request))
                    }
                }
            }
            State::Signing => {
                self.state = State::Signing;
                Err(Error::Misuse("poll called while a signature is pending"))
            }
            State::InFlight(sent) => {
                self.state = State::InFlight(sent);
                Err(Error::Misuse("poll called while the request is in flight"))
            }
            State::Done(Ok(out)) => Ok(Action::Ready(out)),
            State::Done(Err(e)) => {
                self.state = State::Done(Err(e.clone()));
                Err(e)
            }
            State::Finished => Err(Error::Misuse("the flow already produced its output")),
        }
    }

    fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error> {
        if !matches!(self.state, State::InFlight(_)) {
            // Nothing in flight: the state stays as it was.
            return Err(Error::Misuse(
                "handle_response called with no request in flight",
            ));
        }
        let State::InFlight(sent) = std::mem::replace(&mut self.state, State::Finished) else {
            return Err(Error::Misuse(
                "handle_response called with no request in flight",
            ));
        };
        let result = match refuse_redirect(&response, &self.url, &sent) {
            Some(e) => Err(e),
            None => (self.parse)(&response, &self.url, now).map_err(|e| sent.scrub_error(e)),
        };
        let out = result.as_ref().err().cloned();
        self.state = State::Done(result);
        out.map_or(Ok(()), Err)
    }

    fn handle_transport_error(
        &mut self,
        error: TransportError,
        _now: UnixTime,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::InFlight(_)) {
            // Nothing in flight: the state stays as it was.
            return Err(Error::Misuse(
                "handle_transport_error called with no request in flight",
            ));
        }
        let State::InFlight(sent) = std::mem::replace(&mut self.state, State::Finished) else {
            return Err(Error::Misuse(
                "handle_transport_error called with no request in flight",
            ));
        };
        let e = sent.scrub_error(Error::Transport(error));
        self.state = State::Done(Err(e.clone()));
        Err(e)
    }

    fn handle_signature(
        &mut self,
        signature: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        if !matches!(self.state, State::Signing) {
            return Err(Error::Misuse(
                "handle_signature called with no signature pending",
            ));
        }
        match self.slot.signature(signature, now) {
            Ok(()) => {
                self.state = State::Start;
                Ok(())
            }
            Err(e) => {
                self.slot.reset();
                self.state = State::Done(Err(e.clone()));
                Err(e)
            }
        }
    }

    fn abort(&mut self) {
        if matches!(self.state, State::InFlight(_) | State::Signing) {
            self.slot.reset();
            self.state = State::Start;
        }
    }
}
