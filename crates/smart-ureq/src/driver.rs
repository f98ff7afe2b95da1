//! The one driver loop: it runs every flow, one-shot or token source, and is the only place
//! that sends a request, waits for a remote signer or touches a token store.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use smart_core::store::{StoreResult, TokenStore};
use smart_core::{Action, Error, Flow, UnixTime};

use crate::client::{HttpClient, now};
use smart_core::trace::{FlowSpan, RequestSpan, SignSpan};

/// A flow shared between callers: a lock held only while the flow is called (never across
/// I/O or a wait), and a condition variable for callers waiting on another's flight.
#[derive(Debug)]
pub(crate) struct Shared<F> {
    flow: Mutex<F>,
    flight_ended: Condvar,
}

impl<F> Shared<F> {
    pub(crate) fn new(flow: F) -> Self {
        Self {
            flow: Mutex::new(flow),
            flight_ended: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, F> {
        // A panic while holding the lock leaves the flow consistent (its methods never panic
        // half way); the flight holder's guard has aborted its step.
        self.flow.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How the loop polls: `holder` is true once this caller holds the flight.
pub(crate) type PollFn<F> =
    fn(&mut F, UnixTime, bool) -> Result<Action<<F as Flow>::Output>, Error>;

/// Called after every step with the lock held (publish the cache, report store events).
pub(crate) type StepFn<'a, F> = &'a dyn Fn(&mut F);

/// Aborts the held step if the caller unwinds before reporting it.
struct Holding<'a, F: Flow> {
    shared: &'a Shared<F>,
    armed: bool,
}

impl<F: Flow> Drop for Holding<'_, F> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.lock().abort();
            self.shared.flight_ended.notify_all();
        }
    }
}

/// Run `shared` until it is `Ready`: poll, perform the action (send, sign, store, wait),
/// report, repeat. The lock is held only to poll and report: a request, a remote signature
/// (its future run to completion on this thread, giving up at its `sign_by`) and a store
/// operation all run without it.
///
/// # Errors
/// Whatever the flow returns; [`Error::InsecureUrl`] for a request this client refuses;
/// [`Error::Misuse`] for a store operation without a store.
pub(crate) fn drive<F: Flow>(
    http: &HttpClient,
    store: Option<&dyn TokenStore>,
    shared: &Shared<F>,
    poll: PollFn<F>,
    on_step: StepFn<'_, F>,
) -> Result<F::Output, Error> {
    let span = FlowSpan::start::<F>();
    let _entered = span.entered();
    let r = drive_inner(http, store, shared, poll, on_step);
    span.outcome(&r);
    r
}

fn drive_inner<F: Flow>(
    http: &HttpClient,
    store: Option<&dyn TokenStore>,
    shared: &Shared<F>,
    poll: PollFn<F>,
    on_step: StepFn<'_, F>,
) -> Result<F::Output, Error> {
    let mut holder = false;
    let mut flow = shared.lock();
    loop {
        match poll(&mut flow, now(), holder)? {
            Action::Ready(output) => return Ok(output),
            Action::WaitForFlight => {
                flow = shared
                    .flight_ended
                    .wait(flow)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            Action::WaitUntil(t) => {
                drop(flow);
                std::thread::sleep(now().until(t));
                flow = shared.lock();
            }
            Action::Send(request) => {
                holder = true;
                if let Err(e) = http.check(&request) {
                    flow.abort();
                    on_step(&mut flow);
                    shared.flight_ended.notify_all();
                    return Err(e);
                }
                drop(flow);
                let mut holding = Holding {
                    shared,
                    armed: true,
                };
                let span = RequestSpan::start(&request);
                let started = std::time::Instant::now();
                let result = http.exchange(request);
                match &result {
                    Ok(r) => span.response(r.status, started.elapsed()),
                    Err(t) => span.transport_error(t.kind.as_str(), started.elapsed()),
                }
                holding.armed = false;
                flow = shared.lock();
                let reported = match result {
                    Ok(response) => flow.handle_response(response, now()),
                    Err(e) => flow.handle_transport_error(e, now()),
                };
                on_step(&mut flow);
                shared.flight_ended.notify_all();
                reported?;
            }
            Action::Sign(request) => {
                holder = true;
                drop(flow);
                let mut holding = Holding {
                    shared,
                    armed: true,
                };
                let span = SignSpan::start(&request);
                let started = std::time::Instant::now();
                let wait = now().until(request.sign_by());
                let signature = crate::sign::block_on_until(request.sign(), wait)
                    .unwrap_or_else(|| Err(request.timeout_error()));
                span.done(&signature, started.elapsed());
                holding.armed = false;
                flow = shared.lock();
                let reported = flow.handle_signature(signature, now());
                on_step(&mut flow);
                shared.flight_ended.notify_all();
                reported?;
            }
            Action::Store(op) => {
                holder = true;
                drop(flow);
                let mut holding = Holding {
                    shared,
                    armed: true,
                };
                let result = match store {
                    Some(s) => s.perform(op),
                    None => StoreResult::Failed(smart_core::error::StoreError::new(
                        smart_core::error::StoreErrorKind::Other,
                        "no token store is configured",
                    )),
                };
                holding.armed = false;
                flow = shared.lock();
                let reported = flow.handle_store(result, now());
                on_step(&mut flow);
                shared.flight_ended.notify_all();
                reported?;
            }
        }
    }
}

/// Poll a one-shot flow (the `holder` flag does not apply).
pub(crate) fn poll_one_shot<F: Flow>(
    flow: &mut F,
    now: UnixTime,
    _holder: bool,
) -> Result<Action<F::Output>, Error> {
    flow.poll(now)
}

impl HttpClient {
    /// Run a one-shot flow to completion in this thread: discovery, the launch, the code
    /// exchange, refresh, introspection, revocation, `id_token` verification.
    ///
    /// # Errors
    /// Whatever the flow returns (its protocol errors, [`Error::Transport`]);
    /// [`Error::InsecureUrl`] for a request this client refuses.
    pub fn run<F: Flow>(&self, flow: F) -> Result<F::Output, Error> {
        drive(self, None, &Shared::new(flow), poll_one_shot, &|_| {})
    }
}
