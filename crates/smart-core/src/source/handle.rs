//! The engine's handlers: what each answer from the driver does to the flight.

use super::*;

impl<F: Fetcher> Engine<F> {
    pub(crate) fn handle_response(
        &mut self,
        response: HttpResponse,
        now: UnixTime,
    ) -> Result<(), Error> {
        match self.outstanding_step() {
            Some(Step::Setup) => match self.fetcher.setup_response(response, now) {
                Ok(()) => {
                    self.set_step(Step::Setup, false);
                    Ok(())
                }
                Err(e) => self.fail(e, None, now),
            },
            Some(Step::Fetch { attempt }) => {
                let url = self.fetcher.fetch_url();
                let redirect = url
                    .as_ref()
                    .and_then(|u| refuse_redirect(&response, u, &self.sent));
                let current = self.cached.as_deref().map(CachedToken::response);
                let result = match redirect {
                    Some(e) => Err(e),
                    None => self.fetcher.fetched(&response, current, now),
                };
                match result {
                    Ok(token) => self.succeed(token, now),
                    Err(e) => {
                        let e = self.sent.scrub_error(e);
                        match judge_response(&response, now) {
                            Verdict::Retry { retry_after_secs } => {
                                self.retry_or_fail(e, attempt, retry_after_secs, now)
                            }
                            Verdict::GiveUp { retry_after_secs } => {
                                self.fail(e, retry_after_secs, now)
                            }
                        }
                    }
                }
            }
            Some(other) => {
                self.set_step(other, true);
                Err(Error::Misuse(
                    "handle_response called during a store operation or a signature",
                ))
            }
            None => Err(Error::Misuse(
                "handle_response called with no request in flight",
            )),
        }
    }

    pub(crate) fn handle_transport_error(
        &mut self,
        error: TransportError,
        now: UnixTime,
    ) -> Result<(), Error> {
        match self.outstanding_step() {
            Some(Step::Setup) => {
                let e = self.fetcher.setup_transport_error(error, now);
                self.fail(e, None, now)
            }
            Some(Step::Fetch { attempt }) => {
                let kind = error.kind;
                let e = self.sent.scrub_error(Error::Transport(error));
                match judge_transport(kind) {
                    Verdict::Retry { .. } => self.retry_or_fail(e, attempt, None, now),
                    Verdict::GiveUp { .. } => self.fail(e, None, now),
                }
            }
            Some(other) => {
                self.set_step(other, true);
                Err(Error::Misuse(
                    "handle_transport_error called during a store operation or a signature",
                ))
            }
            None => Err(Error::Misuse(
                "handle_transport_error called with no request in flight",
            )),
        }
    }

    pub(crate) fn handle_store(&mut self, result: StoreResult, now: UnixTime) -> Result<(), Error> {
        let Some(step) = self.outstanding_step() else {
            return Err(Error::Misuse(
                "handle_store called with no store operation in flight",
            ));
        };
        let result = match result {
            StoreResult::Failed(error) => {
                let retry_at = now.plus_millis(
                    self.store
                        .as_ref()
                        .map_or(0, |s| s.lease.retry_store_after_millis),
                );
                if let Some(s) = self.store.as_mut() {
                    s.degraded_until = Some(retry_at);
                }
                self.events.push(StoreEvent::Degraded { error, retry_at });
                None
            }
            other => Some(other),
        };
        match step {
            Step::Delete => {
                self.pending_delete = false;
                self.after_delete(now);
                Ok(())
            }
            Step::Get { after_lease } => {
                if let Some(StoreResult::Value(Some(stored))) = result
                    && self.try_adopt(*stored, now) == Adopted::Fresh
                {
                    return self.adopted(now);
                }
                let next = if after_lease || !self.leases(now) {
                    Step::Fetch { attempt: 1 }
                } else {
                    Step::Lease
                };
                self.set_step(next, false);
                Ok(())
            }
            Step::Lease => {
                match result {
                    Some(StoreResult::Lease(true)) => {
                        self.set_step(Step::Get { after_lease: true }, false);
                    }
                    Some(StoreResult::Lease(false)) => {
                        let deadline = self.lease_deadline.unwrap_or(now);
                        self.lease_owner = None;
                        if now >= deadline {
                            if let Some(key) = self.key() {
                                self.events.push(StoreEvent::LeaseWaitExpired { key });
                            }
                            self.set_step(Step::Fetch { attempt: 1 }, false);
                        } else {
                            let poll = self.store.as_ref().map_or(100, |s| s.lease.poll_millis);
                            let until = now.plus_millis(poll).min(deadline);
                            self.set_step(Step::LeaseWait { until }, false);
                        }
                    }
                    _ => {
                        // Store failed (now degraded) or answered oddly: go on without a lease.
                        self.lease_owner = None;
                        self.set_step(Step::Fetch { attempt: 1 }, false);
                    }
                }
                Ok(())
            }
            Step::Save => {
                self.after_save(now);
                Ok(())
            }
            Step::Release => {
                self.lease_owner = None;
                self.finish(now)
            }
            other => {
                self.set_step(other, true);
                Err(Error::Misuse(
                    "handle_store called while a request or a signature is in flight",
                ))
            }
        }
    }

    pub(crate) fn handle_signature(
        &mut self,
        signature: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        match self.outstanding_step() {
            Some(Step::Sign { attempt }) => match self.slot.signature(signature, now) {
                // Signed: the next poll sends it. Late: the next poll makes a new assertion.
                Ok(()) => {
                    self.set_step(Step::Fetch { attempt }, false);
                    Ok(())
                }
                Err(e) => {
                    self.slot.reset();
                    self.fail(e, None, now)
                }
            },
            Some(other) => {
                self.set_step(other, true);
                Err(Error::Misuse(
                    "handle_signature called while a request or store operation is in flight",
                ))
            }
            None => Err(Error::Misuse(
                "handle_signature called with no signature pending",
            )),
        }
    }

    /// The holder abandoned its outstanding step: the flight ends without an outcome (a
    /// lease it held expires by itself). Without an outstanding step, nothing happens.
    pub(crate) fn abort(&mut self) {
        let Some(step) = self.outstanding_step() else {
            return;
        };
        if let Step::Setup = step {
            self.fetcher.setup_abort();
        }
        self.flight = Flight::Idle;
        self.force = false;
        self.lease_owner = None;
        self.lease_deadline = None;
        self.outcome = None;
        self.pending = None;
        self.sent = SentSecrets::new();
        self.slot.reset();
        self.fetcher.flight_over();
    }
}
