//! The one driver loop: it runs every flow, one-shot or token source, and is the only place
//! that sends a request, awaits a remote signer or touches a token store.

use std::sync::{Mutex, MutexGuard, PoisonError};

use smart_core::error::{StoreError, StoreErrorKind};
use smart_core::store::StoreResult;
use smart_core::{Action, Error, Flow, HttpRequest, SignRequest, UnixTime};
use tokio::sync::Notify;

use crate::client::{HttpClient, now};
use crate::store::perform;
use smart_core::store::AsyncTokenStore;
use smart_core::trace::{FlowSpan, RequestSpan, SignSpan};

/// A flow shared between tasks: a lock held only while the flow is called (never across an
/// `.await`), and a notification for tasks waiting on another's flight.
#[derive(Debug)]
pub(crate) struct Shared<F> {
    flow: Mutex<F>,
    flight_ended: Notify,
}

impl<F> Shared<F> {
    pub(crate) fn new(flow: F) -> Self {
        Self {
            flow: Mutex::new(flow),
            flight_ended: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, F> {
        self.flow.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How the loop polls: `holder` is true once this caller holds the flight.
pub(crate) type PollFn<F> =
    fn(&mut F, UnixTime, bool) -> Result<Action<<F as Flow>::Output>, Error>;

/// Aborts the held step if the task is cancelled (dropped) before reporting it.
struct Holding<'a, F: Flow> {
    shared: &'a Shared<F>,
    armed: bool,
}

impl<F: Flow> Drop for Holding<'_, F> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.lock().abort();
            self.shared.flight_ended.notify_waiters();
        }
    }
}

/// What to do with the lock released.
enum Next<T> {
    Ready(T),
    Send(HttpRequest),
    Sign(SignRequest),
    Store(smart_core::store::StoreOp),
    Sleep(UnixTime),
}

/// Run `shared` until it is `Ready`: poll, perform the action (send, sign, store, wait),
/// report, repeat. The lock is held only to poll and report: a request, a remote signature
/// (awaited on this task, giving up at its `sign_by`) and a store operation all run without
/// it. `first` is an action this caller already received from a poll (it then holds the
/// flight).
///
/// # Errors
/// Whatever the flow returns; [`Error::InsecureUrl`] for a request this client refuses.
pub(crate) async fn drive<F: Flow>(
    http: &HttpClient,
    store: Option<&dyn AsyncTokenStore>,
    shared: &Shared<F>,
    poll: PollFn<F>,
    on_step: &(dyn Fn(&mut F) + Send + Sync),
    first: Option<Action<F::Output>>,
) -> Result<F::Output, Error> {
    let span = FlowSpan::start::<F>();
    let r = span
        .around(drive_inner(http, store, shared, poll, on_step, first))
        .await;
    span.outcome(&r);
    r
}

async fn drive_inner<F: Flow>(
    http: &HttpClient,
    store: Option<&dyn AsyncTokenStore>,
    shared: &Shared<F>,
    poll: PollFn<F>,
    on_step: &(dyn Fn(&mut F) + Send + Sync),
    first: Option<Action<F::Output>>,
) -> Result<F::Output, Error> {
    let mut holder = first.is_some();
    let mut pending = first;
    loop {
        let next = loop {
            // Created before the poll: `notify_waiters` reaches a `Notified` from its
            // creation on, so a flight that ends right after this poll still wakes us.
            let notified = shared.flight_ended.notified();
            let action = match pending.take() {
                Some(a) => a,
                None => poll(&mut shared.lock(), now(), holder)?,
            };
            match action {
                Action::Ready(out) => break Next::Ready(out),
                Action::Send(r) => break Next::Send(r),
                Action::Sign(r) => break Next::Sign(r),
                Action::Store(op) => break Next::Store(op),
                Action::WaitUntil(t) => break Next::Sleep(t),
                Action::WaitForFlight => notified.await,
            }
        };
        match next {
            Next::Ready(out) => return Ok(out),
            Next::Sleep(t) => tokio::time::sleep(now().until(t)).await,
            Next::Send(request) => {
                holder = true;
                if let Err(e) = http.check(&request) {
                    let mut flow = shared.lock();
                    flow.abort();
                    on_step(&mut flow);
                    drop(flow);
                    shared.flight_ended.notify_waiters();
                    return Err(e);
                }
                let mut holding = Holding {
                    shared,
                    armed: true,
                };
                let span = RequestSpan::start(&request);
                let started = std::time::Instant::now();
                let result = http.exchange(request).await;
                match &result {
                    Ok(r) => span.response(r.status, started.elapsed()),
                    Err(t) => span.transport_error(t.kind.as_str(), started.elapsed()),
                }
                holding.armed = false;
                let reported = {
                    let mut flow = shared.lock();
                    let r = match result {
                        Ok(response) => flow.handle_response(response, now()),
                        Err(e) => flow.handle_transport_error(e, now()),
                    };
                    on_step(&mut flow);
                    r
                };
                shared.flight_ended.notify_waiters();
                reported?;
            }
            Next::Sign(request) => {
                holder = true;
                let mut holding = Holding {
                    shared,
                    armed: true,
                };
                let span = SignSpan::start(&request);
                let started = std::time::Instant::now();
                let wait = now().until(request.sign_by());
                let signature = match tokio::time::timeout(wait, request.sign()).await {
                    Ok(signature) => signature,
                    Err(_elapsed) => Err(request.timeout_error()),
                };
                span.done(&signature, started.elapsed());
                holding.armed = false;
                let reported = {
                    let mut flow = shared.lock();
                    let r = flow.handle_signature(signature, now());
                    on_step(&mut flow);
                    r
                };
                shared.flight_ended.notify_waiters();
                reported?;
            }
            Next::Store(op) => {
                holder = true;
                let mut holding = Holding {
                    shared,
                    armed: true,
                };
                let result = match store {
                    Some(s) => perform(s, op).await,
                    None => StoreResult::Failed(StoreError::new(
                        StoreErrorKind::Other,
                        "no token store is configured",
                    )),
                };
                holding.armed = false;
                let reported = {
                    let mut flow = shared.lock();
                    let r = flow.handle_store(result, now());
                    on_step(&mut flow);
                    r
                };
                shared.flight_ended.notify_waiters();
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
    /// Run a one-shot flow to completion: discovery, the launch, the code exchange, refresh,
    /// introspection, revocation, `id_token` verification.
    ///
    /// # Errors
    /// Whatever the flow returns (its protocol errors, [`Error::Transport`]);
    /// [`Error::InsecureUrl`] for a request this client refuses.
    pub async fn run<F: Flow + Send>(&self, flow: F) -> Result<F::Output, Error>
    where
        F::Output: Send,
    {
        drive(self, None, &Shared::new(flow), poll_one_shot, &|_| {}, None).await
    }
}
