//! A token source shared between tasks: lock-free reads of a fresh token, a background task
//! for renewal ahead of expiry, the driver loop for everything else.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use smart_core::secret::AuthorizationHeader;
use smart_core::source::TokenSource;
use smart_core::store::StoreEvent;
use smart_core::{Action, CachedToken, Error};

use crate::client::{HttpClient, now};
use crate::driver::{Shared, drive};
use smart_core::store::AsyncTokenStore;

/// Called with each store event (a failure the source works around, an ignored entry).
pub type StoreEventHook = Arc<dyn Fn(&StoreEvent) + Send + Sync>;

/// Called with the source after each new token set (the rotation hook, adapted).
pub(crate) type NewTokenHook<S> = Box<dyn Fn(&S) + Send + Sync>;

/// A token source plus its cache, client, store and hooks.
pub(crate) struct Inner<S> {
    pub(crate) shared: Shared<S>,
    cache: ArcSwapOption<CachedToken>,
    pub(crate) http: HttpClient,
    pub(crate) store: Option<Arc<dyn AsyncTokenStore>>,
    pub(crate) on_store_event: Option<StoreEventHook>,
    pub(crate) on_new_token: Option<NewTokenHook<S>>,
}

/// Shared handle to [`Inner`] (the background renewal task holds a clone).
pub(crate) struct SourceHandle<S> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S> std::fmt::Debug for SourceHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceHandle")
            .field("has_store", &self.inner.store.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource + Send + 'static> Inner<S> {
    /// Publish the cached token, report store events and new token sets (lock held).
    fn after_step(&self, s: &mut S) {
        self.cache.store(s.cached_token());
        for event in s.take_store_events() {
            smart_core::trace::store_event(&event);
            if let Some(hook) = &self.on_store_event {
                hook(&event);
            }
        }
        if s.take_new_token()
            && let Some(hook) = &self.on_new_token
        {
            hook(s);
        }
    }

    async fn drive(
        &self,
        first: Option<Action<Arc<CachedToken>>>,
    ) -> Result<Arc<CachedToken>, Error> {
        drive(
            &self.http,
            self.store.as_deref(),
            &self.shared,
            |s, now, holder| {
                if holder {
                    s.poll_flight(now)
                } else {
                    s.poll(now)
                }
            },
            &|s| self.after_step(s),
            first,
        )
        .await
    }
}

impl<S: TokenSource + Send + 'static> SourceHandle<S> {
    pub(crate) fn new(source: S, http: HttpClient) -> Self {
        let cache = ArcSwapOption::new(source.cached_token());
        Self {
            inner: Arc::new(Inner {
                shared: Shared::new(source),
                cache,
                http,
                store: None,
                on_store_event: None,
                on_new_token: None,
            }),
        }
    }

    /// Mutable access while the handle is not shared yet (builders).
    pub(crate) fn inner_mut(&mut self) -> Option<&mut Inner<S>> {
        Arc::get_mut(&mut self.inner)
    }

    /// The fresh cached token without taking any lock, if there is one.
    pub(crate) fn fresh(&self) -> Option<Arc<CachedToken>> {
        let guard = self.inner.cache.load();
        let cached = guard.as_ref()?;
        cached.is_fresh(now()).then(|| cached.clone())
    }

    /// The fresh cached `Authorization` header without taking any lock, if there is one.
    pub(crate) fn fresh_authorization(&self) -> Option<AuthorizationHeader> {
        let guard = self.inner.cache.load();
        let cached = guard.as_ref()?;
        cached
            .is_fresh(now())
            .then(|| CachedToken::authorization_for_this_thread(cached))
    }

    /// A usable token: the fresh one, or whatever the driver loop produces.
    pub(crate) async fn token(&self) -> Result<Arc<CachedToken>, Error> {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        self.run().await
    }

    /// Run the driver loop (no fast path). When this call claims the renewal of a token that
    /// is still valid, the renewal runs in a background task and the valid token is returned
    /// at once.
    pub(crate) async fn run(&self) -> Result<Arc<CachedToken>, Error> {
        self.run_with(true).await
    }

    /// Run the driver loop in this task until any flight this call claims is over, and
    /// return its result: for an explicit refresh, whose caller wants the new token, and for
    /// the first store write of a new client, which must be done before the client is used.
    pub(crate) async fn run_now(&self) -> Result<Arc<CachedToken>, Error> {
        self.run_with(false).await
    }

    async fn run_with(&self, background: bool) -> Result<Arc<CachedToken>, Error> {
        let (first, valid) = {
            let mut s = self.inner.shared.lock();
            let first = s.poll(now())?;
            let valid = s.cached_token().filter(|c| c.is_usable(now()));
            (first, valid)
        };
        match first {
            Action::Ready(t) => Ok(t),
            claimed @ (Action::Send(_) | Action::Sign(_) | Action::Store(_)) => match valid {
                Some(valid) if background && tokio::runtime::Handle::try_current().is_ok() => {
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        // The outcome is recorded in the source (and its backoff); callers
                        // keep the valid token meanwhile.
                        let _ = inner.drive(Some(claimed)).await;
                    });
                    Ok(valid)
                }
                _ => self.inner.drive(Some(claimed)).await,
            },
            Action::WaitUntil(_) | Action::WaitForFlight => self.inner.drive(None).await,
        }
    }

    /// Call `f` on the source under its lock, then publish what changed.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let mut s = self.inner.shared.lock();
        let r = f(&mut s);
        self.inner.after_step(&mut s);
        r
    }
}
