//! How a flight ends: a stored token adopted, a new token, a retry, a failure and its
//! backoff.

use super::*;

impl<F: Fetcher> Engine<F> {
    pub(super) fn try_adopt(&mut self, stored: StoredToken, now: UnixTime) -> Adopted {
        let key = self.key().unwrap_or_default();
        let current = self.cached.as_deref().map(CachedToken::response);
        match self.fetcher.adopt(stored, current) {
            Ok(token) => {
                let rejected = self
                    .rejected
                    .is_some_and(|r| r == digest(token.access_token.secret()));
                let cached = CachedToken::new(token, now, self.skew_secs, 0);
                if rejected {
                    self.events.push(StoreEvent::Ignored {
                        key,
                        reason: "it holds the token the server rejected",
                    });
                    Adopted::No
                } else if self.same_as_cached(&cached) {
                    Adopted::No
                } else if cached.is_fresh(now) && !self.force {
                    self.cached = Some(Arc::new(cached));
                    self.refreshed = true;
                    Adopted::Fresh
                } else {
                    self.cached = Some(Arc::new(cached));
                    Adopted::Stale
                }
            }
            Err(reason) => {
                self.events.push(StoreEvent::Ignored { key, reason });
                Adopted::No
            }
        }
    }

    pub(super) fn same_as_cached(&self, other: &CachedToken) -> bool {
        self.cached
            .as_ref()
            .is_some_and(|c| c.access_token == other.access_token)
    }

    /// A stored token was adopted: release the lease if held, then done.
    pub(super) fn adopted(&mut self, now: UnixTime) -> Result<(), Error> {
        self.outcome = Some(Outcome::Token);
        if self.lease_owner.is_some() {
            self.set_step(Step::Release, false);
            Ok(())
        } else {
            self.finish(now)
        }
    }

    pub(super) fn succeed(&mut self, token: TokenResponse, now: UnixTime) -> Result<(), Error> {
        if self
            .rejected
            .is_some_and(|r| r == digest(token.access_token.secret()))
        {
            // The server issued the rejected token again (some cache client_credentials
            // tokens): it is its current token now, and a new rejection of it must count.
            self.rejected = None;
        }
        let lifetime_short = token
            .expires_in
            .is_some_and(|l| l.saturating_mul(1000) < MIN_REUSE_MILLIS.max(self.backoff_floor()));
        let floor = if lifetime_short {
            // Reuse a short-lived token for one backoff period; the period grows while
            // tokens keep arriving short-lived.
            self.failures = self.failures.saturating_add(1);
            self.policy
                .backoff_millis(self.failures, self.entropy.as_ref())
                .max(MIN_REUSE_MILLIS)
        } else {
            self.failures = 0;
            MIN_REUSE_MILLIS
        };
        self.pending = Some(Arc::new(CachedToken::new(
            token,
            now,
            self.skew_secs,
            floor,
        )));
        self.outcome = Some(Outcome::Token);
        self.save_or_finish(now)
    }

    /// After a new token set: store it (when a store is in use), else hand it out and end
    /// the flight at once.
    pub(super) fn save_or_finish(&mut self, now: UnixTime) -> Result<(), Error> {
        if self.store_usable(now) && self.key().is_some() {
            self.set_step(Step::Save, false);
            return Ok(());
        }
        self.after_save(now);
        if self.lease_owner.is_some() {
            Ok(())
        } else {
            self.finish(now)
        }
    }

    pub(super) fn backoff_floor(&self) -> u64 {
        self.policy.backoff_base_millis
    }

    pub(super) fn retry_or_fail(
        &mut self,
        error: Error,
        attempt: u32,
        retry_after_secs: Option<u64>,
        now: UnixTime,
    ) -> Result<(), Error> {
        if attempt >= self.policy.max_attempts {
            return self.fail(error, retry_after_secs, now);
        }
        let delay = match retry_after_secs {
            Some(s) if s.saturating_mul(1000) > self.policy.max_retry_wait_millis => {
                return self.fail(error, retry_after_secs, now);
            }
            Some(s) => s.saturating_mul(1000),
            None => self
                .policy
                .retry_delay_millis(attempt, self.entropy.as_ref()),
        };
        self.set_step(
            Step::RetryWait {
                until: now.plus_millis(delay),
                attempt: attempt + 1,
            },
            false,
        );
        Ok(())
    }

    pub(super) fn fail(
        &mut self,
        error: Error,
        retry_after_secs: Option<u64>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let current = self.cached.as_deref().map(CachedToken::response);
        if let Some(updated) = self.fetcher.failed(&error, current) {
            self.pending = Some(Arc::new(CachedToken::new(updated, now, self.skew_secs, 0)));
            self.outcome = Some(Outcome::Failed {
                error,
                retry_after_secs,
            });
            return self.save_or_finish(now);
        }
        self.outcome = Some(Outcome::Failed {
            error,
            retry_after_secs,
        });
        if self.lease_owner.is_some() {
            self.set_step(Step::Release, false);
            Ok(())
        } else {
            self.finish(now)
        }
    }

    /// End the flight with its outcome.
    pub(super) fn finish(&mut self, now: UnixTime) -> Result<(), Error> {
        self.force = false;
        self.lease_deadline = None;
        self.sent = SentSecrets::new();
        self.slot.reset();
        self.fetcher.flight_over();
        match self.outcome.take() {
            Some(Outcome::Failed {
                error,
                retry_after_secs,
            }) => {
                let current = self.cached.as_deref().map(CachedToken::response);
                if self.fetcher.precheck(current).is_err() {
                    // No request is possible any more (a session without a refresh token):
                    // later polls say so; there is nothing to back off from.
                    self.flight = Flight::Idle;
                    return Err(error);
                }
                self.failures = self.failures.saturating_add(1);
                let backoff = self
                    .policy
                    .backoff_millis(self.failures, self.entropy.as_ref());
                let server =
                    retry_after_secs.map_or(0, |s| self.policy.capped_retry_after_millis(s));
                self.flight = Flight::BackingOff {
                    until: now.plus_millis(backoff.max(server)),
                    error: error.clone(),
                };
                Err(error)
            }
            Some(Outcome::Token) | None => {
                self.flight = Flight::Idle;
                Ok(())
            }
        }
    }
}
