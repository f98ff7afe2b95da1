//! A token source shared between threads: lock-free reads of a fresh token, the driver loop
//! for everything else.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use smart_core::secret::AuthorizationHeader;
use smart_core::source::TokenSource;
use smart_core::store::{StoreEvent, TokenStore};
use smart_core::{CachedToken, Error};

use crate::client::{HttpClient, now};
use crate::driver::{Shared, drive};

/// Called with each store event (a failure the source works around, an ignored entry).
pub type StoreEventHook = Arc<dyn Fn(&StoreEvent) + Send + Sync>;

/// Called with the source after each new token set (the rotation hook, adapted).
pub(crate) type NewTokenHook<S> = Box<dyn Fn(&S) + Send + Sync>;

/// A token source plus its cache, client, store and hooks.
pub(crate) struct SourceHandle<S> {
    pub(crate) shared: Shared<S>,
    cache: ArcSwapOption<CachedToken>,
    pub(crate) http: HttpClient,
    pub(crate) store: Option<Arc<dyn TokenStore>>,
    pub(crate) on_store_event: Option<StoreEventHook>,
    pub(crate) on_new_token: Option<NewTokenHook<S>>,
}

impl<S> std::fmt::Debug for SourceHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceHandle")
            .field("has_store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> SourceHandle<S> {
    pub(crate) fn new(source: S, http: HttpClient) -> Self {
        let cache = ArcSwapOption::new(source.cached_token());
        Self {
            shared: Shared::new(source),
            cache,
            http,
            store: None,
            on_store_event: None,
            on_new_token: None,
        }
    }

    /// The fresh cached token without taking any lock, if there is one.
    pub(crate) fn fresh(&self) -> Option<Arc<CachedToken>> {
        let guard = self.cache.load();
        let cached = guard.as_ref()?;
        cached.is_fresh(now()).then(|| cached.clone())
    }

    /// The fresh cached `Authorization` header without taking any lock, if there is one.
    ///
    /// The warm path of every `authorization()`: one `ArcSwap` load, a clock read and this
    /// thread's copy of the header (`CachedToken::authorization_for_this_thread`), so that threads calling at once on
    /// several cores write no shared cache line.
    pub(crate) fn fresh_authorization(&self) -> Option<AuthorizationHeader> {
        let guard = self.cache.load();
        let cached = guard.as_ref()?;
        cached
            .is_fresh(now())
            .then(|| CachedToken::authorization_for_this_thread(cached))
    }

    /// A usable token: the fresh one, or whatever the driver loop produces.
    pub(crate) fn token(&self) -> Result<Arc<CachedToken>, Error> {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        self.run()
    }

    /// Run the driver loop (no fast path).
    pub(crate) fn run(&self) -> Result<Arc<CachedToken>, Error> {
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
        )
    }

    /// Call `f` on the source under its lock, then publish what changed.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let mut s = self.shared.lock();
        let r = f(&mut s);
        self.after_step(&mut s);
        r
    }

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
}
