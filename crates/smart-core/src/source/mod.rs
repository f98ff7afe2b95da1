//! The token-source engine behind [`BackendServices`](crate::backend::BackendServices) and
//! [`Session`](crate::session::Session): the cached token, the *flight* that gets a new one,
//! retries and backoff, and the token-store protocol.
//!
//! ```text
//!            poll: fresh ───────────────────────────────▶ Ready(token)
//!            poll: stale/cold, no flight ──▶ flight starts (this caller holds it)
//!   flight:  [setup: discovery] → [Delete rejected] → [Get stored] → [AcquireLease → Get]
//!            → [Sign] → Fetch (retries: RetryWait, [Sign]) → [Set] → [ReleaseLease] → Idle
//!   meanwhile, other callers: Ready(still-valid token) | WaitForFlight | WaitUntil
//!   failure:  BackingOff { until, error }: every poll → Err(error) (or Ready(valid token))
//! ```

mod cached;
mod handle;
mod outcome;

pub use cached::CachedToken;
use cached::MIN_REUSE_MILLIS;

use std::sync::Arc;

use url::Url;

use crate::entropy::{Entropy, random_base64url};
use crate::error::{Error, TransportError};
use crate::flow::Action;
use crate::http::{HttpRequest, HttpResponse};
use crate::redact::SentSecrets;
use crate::request::{Outgoing, refuse_redirect};
use crate::retry::{RetryPolicy, Verdict, judge_response, judge_transport};
use crate::secret::AuthorizationHeader;
use crate::sign::{Next, Prepared, SignSlot};
use crate::store::{LeaseConfig, StoreEvent, StoreOp, StoreResult, StoredToken};
use crate::time::UnixTime;
use crate::token::TokenResponse;

/// The protocol-specific part of a token source.
pub(crate) trait Fetcher: std::fmt::Debug {
    /// A request needed before fetching (discovery), or `None` when set up.
    fn setup_request(&mut self, now: UnixTime) -> Result<Option<HttpRequest>, Error>;
    /// The answer to the setup request.
    fn setup_response(&mut self, response: HttpResponse, now: UnixTime) -> Result<(), Error>;
    /// The setup request failed in transport.
    fn setup_transport_error(&mut self, error: TransportError, now: UnixTime) -> Error;
    /// The setup request was abandoned.
    fn setup_abort(&mut self);
    /// The store key, once known (after setup).
    fn store_key(&self) -> Option<String>;
    /// Whether a fetch is possible from `current` (a session needs a refresh token).
    fn precheck(&self, current: Option<&TokenResponse>) -> Result<(), Error>;
    /// The fetch request (waiting for its signature, with a remote signer).
    fn fetch(
        &mut self,
        current: Option<&TokenResponse>,
        now: UnixTime,
        entropy: &dyn Entropy,
    ) -> Result<Prepared, Error>;
    /// The endpoint fetched from.
    fn fetch_url(&self) -> Option<Url>;
    /// Read the fetch answer into the new token set.
    fn fetched(
        &mut self,
        response: &HttpResponse,
        current: Option<&TokenResponse>,
        now: UnixTime,
    ) -> Result<TokenResponse, Error>;
    /// A fetch failed with `error`: the token set to keep instead of `current`, if it changes
    /// (a session whose refresh token was refused drops it).
    fn failed(&mut self, error: &Error, current: Option<&TokenResponse>) -> Option<TokenResponse>;
    /// The flight ended (success or failure): forget one-shot requests.
    fn flight_over(&mut self);
    /// The store form of `token`.
    fn stored(&self, token: &TokenResponse) -> Option<StoredToken>;
    /// A stored entry this source may use, or why not.
    fn adopt(
        &self,
        stored: StoredToken,
        current: Option<&TokenResponse>,
    ) -> Result<TokenResponse, &'static str>;
    /// How long a stored entry may live, in seconds (`None`: until deleted).
    fn store_ttl_secs(&self, token: &CachedToken, now: UnixTime) -> Option<u64>;
}

#[derive(Debug)]
enum Step {
    Setup,
    Delete,
    Get {
        after_lease: bool,
    },
    Lease,
    LeaseWait {
        until: UnixTime,
    },
    Fetch {
        attempt: u32,
    },
    /// A remote signer signs the fetch request's client assertion.
    Sign {
        attempt: u32,
    },
    RetryWait {
        until: UnixTime,
        attempt: u32,
    },
    Save,
    Release,
}

#[derive(Debug)]
enum Flight {
    Idle,
    /// A flight in progress: the current step, and whether it is out with a driver.
    Running {
        step: Step,
        outstanding: bool,
    },
    BackingOff {
        until: UnixTime,
        error: Error,
    },
}

/// What considering a stored entry gave.
#[derive(Debug, PartialEq, Eq)]
enum Adopted {
    /// Not used.
    No,
    /// Used as the current state, but stale: fetch anyway.
    Stale,
    /// Fresh: the flight is done.
    Fresh,
}

/// What a flight will report when it ends (after saving and releasing).
#[derive(Debug)]
enum Outcome {
    Token,
    Failed {
        error: Error,
        retry_after_secs: Option<u64>,
    },
}

#[derive(Debug)]
struct StoreState {
    lease: LeaseConfig,
    degraded_until: Option<UnixTime>,
}

/// The engine. See the module docs.
#[derive(Debug)]
pub(crate) struct Engine<F> {
    pub(crate) fetcher: F,
    entropy: Arc<dyn Entropy>,
    pub(crate) policy: RetryPolicy,
    skew_secs: u64,
    cached: Option<Arc<CachedToken>>,
    /// A new token set waiting to be stored before it is handed out.
    pending: Option<Arc<CachedToken>>,
    /// Store the cached token set at the next poll (a store was just configured).
    save_first: bool,
    /// SHA-256 of the access token the resource server rejected (never adopted again).
    rejected: Option<[u8; 32]>,
    force: bool,
    flight: Flight,
    failures: u32,
    store: Option<StoreState>,
    pending_delete: bool,
    lease_owner: Option<String>,
    lease_deadline: Option<UnixTime>,
    sent: SentSecrets,
    /// The fetch request waiting for (or just given) its remote signature.
    slot: SignSlot,
    outcome: Option<Outcome>,
    events: Vec<StoreEvent>,
    refreshed: bool,
}

fn digest(s: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes()).into()
}

impl<F: Fetcher> Engine<F> {
    pub(crate) fn new(fetcher: F, entropy: Arc<dyn Entropy>, skew_secs: u64) -> Self {
        Self {
            fetcher,
            entropy,
            policy: RetryPolicy::default(),
            skew_secs,
            cached: None,
            pending: None,
            save_first: false,
            rejected: None,
            force: false,
            flight: Flight::Idle,
            failures: 0,
            store: None,
            pending_delete: false,
            lease_owner: None,
            lease_deadline: None,
            sent: SentSecrets::new(),
            slot: SignSlot::default(),
            outcome: None,
            events: Vec::new(),
            refreshed: false,
        }
    }

    /// Use a store; with `persist_current`, the cached token set is stored at the next poll.
    pub(crate) fn set_store(&mut self, lease: LeaseConfig, persist_current: bool) {
        self.store = Some(StoreState {
            lease,
            degraded_until: None,
        });
        self.save_first = persist_current && self.cached.is_some();
    }

    pub(crate) fn cached(&self) -> Option<&Arc<CachedToken>> {
        self.cached.as_ref()
    }

    pub(crate) fn entropy(&self) -> &Arc<dyn Entropy> {
        &self.entropy
    }

    /// Put `token`, received at `now`, into the cache (a restored session, a stored token).
    pub(crate) fn restore(&mut self, token: TokenResponse, now: UnixTime) {
        self.cached = Some(Arc::new(CachedToken::new(token, now, self.skew_secs, 0)));
    }

    /// The resource server rejected the cached token: never use it again; the next poll
    /// fetches (and deletes the stored copy first).
    pub(crate) fn invalidate(&mut self) {
        if let Some(p) = self.pending.take() {
            // Rejected before it was even stored: never store or hand it out.
            self.cached = Some(p);
        }
        if let Some(c) = self.cached.take() {
            self.rejected = Some(digest(c.access_token.secret()));
            // Keep the token set (a session's refresh token), but never hand it out again.
            self.cached = Some(Arc::new(CachedToken {
                response: c.response.clone(),
                authorization: c.authorization.clone(),
                fresh_until: UnixTime::EPOCH,
                usable_until: Some(UnixTime::EPOCH),
            }));
        }
        self.pending_delete = self.store.is_some();
        if let Flight::BackingOff { .. } = self.flight {
            // A fresh 401 is new information: let the next poll try at once.
            self.flight = Flight::Idle;
        }
    }

    /// [`invalidate`](Self::invalidate) only if `used` is the cached token's header: a 401
    /// for a token that was already replaced changes nothing (many callers may report the
    /// same rejection). Returns whether the cached token was invalidated.
    pub(crate) fn invalidate_if(&mut self, used: &AuthorizationHeader) -> bool {
        let current = self.pending.as_ref().or(self.cached.as_ref());
        let already = |c: &CachedToken| self.rejected == Some(digest(c.access_token.secret()));
        if current.is_some_and(|c| c.authorization() == used && !already(c)) {
            self.invalidate();
            return true;
        }
        false
    }

    /// Fetch at the next poll even though the token is fresh (an explicit request: it also
    /// ends a backoff).
    pub(crate) fn force_fetch(&mut self) {
        self.force = true;
        if let Flight::BackingOff { .. } = self.flight {
            self.flight = Flight::Idle;
        }
    }

    pub(crate) fn take_events(&mut self) -> Vec<StoreEvent> {
        std::mem::take(&mut self.events)
    }

    pub(crate) fn take_refreshed(&mut self) -> bool {
        std::mem::take(&mut self.refreshed)
    }

    pub(crate) fn in_flight(&self) -> bool {
        matches!(self.flight, Flight::Running { .. })
    }

    fn store_usable(&self, now: UnixTime) -> bool {
        self.store
            .as_ref()
            .is_some_and(|s| s.degraded_until.is_none_or(|t| now >= t))
    }

    fn leases(&self, now: UnixTime) -> bool {
        self.store_usable(now) && self.store.as_ref().is_some_and(|s| s.lease.enabled)
    }

    fn usable(&self, now: UnixTime) -> Option<Arc<CachedToken>> {
        self.cached.as_ref().filter(|c| c.is_usable(now)).cloned()
    }

    /// Ready with a usable token, else `otherwise`.
    fn usable_or(
        &self,
        now: UnixTime,
        otherwise: Action<Arc<CachedToken>>,
    ) -> Action<Arc<CachedToken>> {
        match self.usable(now) {
            Some(t) => Action::Ready(t),
            None => otherwise,
        }
    }

    /// `holder`: the caller holding the flight continues it (waits for retry delays) instead
    /// of taking the still-valid token.
    pub(crate) fn poll(
        &mut self,
        now: UnixTime,
        holder: bool,
    ) -> Result<Action<Arc<CachedToken>>, Error> {
        loop {
            match &self.flight {
                Flight::Running {
                    outstanding: true, ..
                } if holder => return Ok(Action::WaitForFlight),
                Flight::Running {
                    outstanding: true, ..
                } => return Ok(self.usable_or(now, Action::WaitForFlight)),
                Flight::Running {
                    step: Step::LeaseWait { until } | Step::RetryWait { until, .. },
                    ..
                } if now < *until => {
                    let until = *until;
                    if holder {
                        return Ok(Action::WaitUntil(until));
                    }
                    return Ok(self.usable_or(now, Action::WaitUntil(until)));
                }
                Flight::Running { .. } => {
                    if let Some(action) = self.emit(now)? {
                        return Ok(action);
                    }
                }
                Flight::BackingOff { until, error } if now < *until => {
                    return match self.usable(now) {
                        Some(t) => Ok(Action::Ready(t)),
                        None => Err(error.clone()),
                    };
                }
                Flight::BackingOff { .. } => self.flight = Flight::Idle,
                Flight::Idle if holder => {
                    // The flight is over: hand out its result.
                    return match self.cached.as_ref() {
                        Some(c) => Ok(Action::Ready(c.clone())),
                        None => Err(Error::Misuse("a flight ended without a token")),
                    };
                }
                Flight::Idle if self.save_first => {
                    self.save_first = false;
                    if self.store_usable(now) {
                        self.pending = self.cached.clone();
                        self.set_step(Step::Save, false);
                    }
                }
                Flight::Idle => {
                    if !self.force
                        && let Some(c) = self.cached.as_ref().filter(|c| c.is_fresh(now))
                    {
                        return Ok(Action::Ready(c.clone()));
                    }
                    let current = self.cached.as_deref().map(CachedToken::response);
                    if let Err(e) = self.fetcher.precheck(current) {
                        // An explicit request is answered with the error; otherwise a
                        // still-usable token is handed out until it expires.
                        let forced = std::mem::take(&mut self.force);
                        self.fetcher.flight_over();
                        return match self.usable(now) {
                            Some(t) if !forced => Ok(Action::Ready(t)),
                            _ => Err(e),
                        };
                    }
                    self.flight = Flight::Running {
                        step: Step::Setup,
                        outstanding: false,
                    };
                }
            }
        }
    }

    fn set_step(&mut self, step: Step, outstanding: bool) {
        self.flight = Flight::Running { step, outstanding };
    }

    fn key(&self) -> Option<String> {
        self.fetcher.store_key()
    }

    /// Emit the current step's action, or advance past a step with nothing to do
    /// (`Ok(None)`).
    fn emit(&mut self, now: UnixTime) -> Result<Option<Action<Arc<CachedToken>>>, Error> {
        let Flight::Running { step, .. } = std::mem::replace(&mut self.flight, Flight::Idle) else {
            return Err(Error::Misuse("no flight to emit"));
        };
        match step {
            Step::Setup => match self.fetcher.setup_request(now) {
                Ok(Some(req)) => {
                    self.set_step(Step::Setup, true);
                    Ok(Some(Action::Send(req)))
                }
                Ok(None) => {
                    self.after_setup(now);
                    Ok(None)
                }
                Err(e) => self.fail(e, None, now).map(|()| None),
            },
            Step::Delete => match self.key() {
                Some(key) if self.store_usable(now) => {
                    self.set_step(Step::Delete, true);
                    Ok(Some(Action::Store(StoreOp::Delete { key })))
                }
                _ => {
                    self.pending_delete = false;
                    self.after_delete(now);
                    Ok(None)
                }
            },
            Step::Get { after_lease } => match self.key() {
                Some(key) if self.store_usable(now) => {
                    self.set_step(Step::Get { after_lease }, true);
                    Ok(Some(Action::Store(StoreOp::Get { key })))
                }
                _ => {
                    self.set_step(Step::Fetch { attempt: 1 }, false);
                    Ok(None)
                }
            },
            Step::LeaseWait { .. } => {
                // The wait is over: look for the holder's result before asking again.
                self.set_step(Step::Get { after_lease: false }, false);
                Ok(None)
            }
            Step::Lease => match self.key() {
                Some(key) if self.leases(now) => {
                    let owner = match &self.lease_owner {
                        Some(o) => o.clone(),
                        None => {
                            let o = random_base64url(self.entropy.as_ref(), 16)?;
                            self.lease_owner = Some(o.clone());
                            o
                        }
                    };
                    let lease = self.store.as_ref().map(|s| s.lease).unwrap_or_default();
                    if self.lease_deadline.is_none() {
                        self.lease_deadline = Some(now.plus_millis(lease.max_wait_millis));
                    }
                    self.set_step(Step::Lease, true);
                    Ok(Some(Action::Store(StoreOp::AcquireLease {
                        key,
                        owner,
                        ttl_millis: lease.ttl_millis,
                    })))
                }
                _ => {
                    self.lease_owner = None;
                    self.set_step(Step::Fetch { attempt: 1 }, false);
                    Ok(None)
                }
            },
            Step::Fetch { attempt } | Step::RetryWait { attempt, .. } => {
                let next = match self.slot.take_signed() {
                    Some(signed) => Next::Send(signed),
                    None => {
                        let current = self.cached.as_deref().map(CachedToken::response);
                        match self.fetcher.fetch(current, now, self.entropy.as_ref()) {
                            Ok(prepared) => self.slot.begin(prepared),
                            Err(e) => return self.fail(e, None, now).map(|()| None),
                        }
                    }
                };
                match next {
                    Next::Send(Outgoing { mut request, sent }) => {
                        request.context.attempt = attempt;
                        self.sent = sent;
                        self.set_step(Step::Fetch { attempt }, true);
                        Ok(Some(Action::Send(request)))
                    }
                    Next::Sign(request) => {
                        self.set_step(Step::Sign { attempt }, true);
                        Ok(Some(Action::Sign(request)))
                    }
                }
            }
            Step::Sign { attempt } => {
                // Never left un-outstanding; if it were, sign again.
                self.slot.reset();
                self.set_step(Step::Fetch { attempt }, false);
                Ok(None)
            }
            Step::Save => {
                let stored = self.pending.as_ref().and_then(|c| {
                    Some((self.fetcher.stored(c)?, self.fetcher.store_ttl_secs(c, now)))
                });
                match (self.key(), stored) {
                    (Some(key), Some((value, ttl_secs))) if self.store_usable(now) => {
                        self.set_step(Step::Save, true);
                        Ok(Some(Action::Store(StoreOp::Set {
                            key,
                            value: Box::new(value),
                            ttl_secs,
                        })))
                    }
                    _ => {
                        self.after_save(now);
                        Ok(None)
                    }
                }
            }
            Step::Release => match (self.key(), self.lease_owner.clone()) {
                (Some(key), Some(owner)) if self.store_usable(now) => {
                    self.set_step(Step::Release, true);
                    Ok(Some(Action::Store(StoreOp::ReleaseLease { key, owner })))
                }
                _ => {
                    self.lease_owner = None;
                    self.finish(now).map(|()| None)
                }
            },
        }
    }

    fn after_setup(&mut self, now: UnixTime) {
        if self.pending_delete && self.store_usable(now) {
            self.set_step(Step::Delete, false);
        } else {
            self.pending_delete = false;
            self.after_delete(now);
        }
    }

    fn after_delete(&mut self, now: UnixTime) {
        let step = if self.store_usable(now) {
            Step::Get { after_lease: false }
        } else {
            Step::Fetch { attempt: 1 }
        };
        self.set_step(step, false);
    }

    /// The new token set is stored (or there is no store): hand it out from now on.
    fn after_save(&mut self, _now: UnixTime) {
        if let Some(p) = self.pending.take() {
            self.cached = Some(p);
            self.refreshed = true;
        }
        self.set_step(Step::Release, false);
    }

    fn outstanding_step(&mut self) -> Option<Step> {
        match std::mem::replace(&mut self.flight, Flight::Idle) {
            Flight::Running {
                step,
                outstanding: true,
            } => Some(step),
            other => {
                self.flight = other;
                None
            }
        }
    }
}

/// What the two token sources ([`BackendServices`](crate::backend::BackendServices) and
/// [`Session`](crate::session::Session)) offer a driver beyond [`Flow`](crate::flow::Flow).
pub trait TokenSource: crate::flow::Flow<Output = Arc<CachedToken>> {
    /// Continue the flight this caller holds: like [`poll`](crate::flow::Flow::poll), but
    /// while the flight is unfinished it never answers with the still-valid old token — it
    /// waits out retry delays ([`Action::WaitUntil`]) so the flight completes — and once the
    /// flight is over it answers `Ready` with the new token (or the flight's error).
    ///
    /// # Errors
    /// As [`poll`](crate::flow::Flow::poll).
    fn poll_flight(&mut self, now: UnixTime) -> Result<Action<Arc<CachedToken>>, Error>;

    /// The cached token, fresh or not (what a driver publishes for lock-free reads).
    fn cached_token(&self) -> Option<Arc<CachedToken>>;

    /// Store events since the last call (failures, ignored entries), for the driver to
    /// report.
    fn take_store_events(&mut self) -> Vec<StoreEvent>;

    /// Whether a new token set arrived since the last call (take-once).
    fn take_new_token(&mut self) -> bool;

    /// The resource server answered 401 to the cached token.
    fn invalidate(&mut self);

    /// The resource server answered 401 to a request sent with `used`: invalidate the cached
    /// token only if it is that one (a later token is kept). Returns whether it was.
    fn invalidate_if(&mut self, used: &AuthorizationHeader) -> bool;
}
