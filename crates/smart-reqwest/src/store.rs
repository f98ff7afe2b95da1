use std::future::Future;
use std::pin::Pin;

use smart_core::error::StoreError;
use smart_core::store::{
    InMemoryTokenStore, LeaseConfig, StoreOp, StoreResult, StoredToken, TokenStore,
};

/// The future an [`AsyncTokenStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Async persistence for token sets (App Launch sessions and Backend Services tokens),
/// object-safe so a client can hold any store as `Arc<dyn AsyncTokenStore>`.
///
/// Values contain access and refresh tokens: implementations should encrypt them at rest
/// and must not log them. A store that coordinates processes (e.g. Redis) implements the
/// lease methods and returns an enabled [`LeaseConfig`] from
/// [`lease_config`](Self::lease_config); the defaults do no coordination.
pub trait AsyncTokenStore: Send + Sync {
    /// The entry stored under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredToken>>;

    /// Store `value` under `key`, replacing what was there; it may expire after `ttl_secs`
    /// seconds when given.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a StoredToken,
        ttl_secs: Option<u64>,
    ) -> StoreFuture<'a, ()>;

    /// Remove `key`.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Take the lease on `key` for `ttl_millis` milliseconds if nobody holds it. The default
    /// (no coordination) always succeeds.
    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl_millis: u64,
    ) -> StoreFuture<'a, bool> {
        let _ = (key, owner, ttl_millis);
        Box::pin(async { Ok(true) })
    }

    /// Release the lease on `key` if `owner` holds it. The default does nothing.
    fn release_lease<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        let _ = (key, owner);
        Box::pin(async { Ok(()) })
    }

    /// How token sources use this store's leases (default: disabled).
    fn lease_config(&self) -> LeaseConfig {
        LeaseConfig::default()
    }
}

/// Perform a token source's [`StoreOp`] on `store`.
pub(crate) async fn perform(store: &dyn AsyncTokenStore, op: StoreOp) -> StoreResult {
    let result = match op {
        StoreOp::Get { key } => store
            .get(&key)
            .await
            .map(|v| StoreResult::Value(v.map(Box::new))),
        StoreOp::Set {
            key,
            value,
            ttl_secs,
        } => store
            .set(&key, &value, ttl_secs)
            .await
            .map(|()| StoreResult::Done),
        StoreOp::Delete { key } => store.delete(&key).await.map(|()| StoreResult::Done),
        StoreOp::AcquireLease {
            key,
            owner,
            ttl_millis,
        } => store
            .try_lease(&key, &owner, ttl_millis)
            .await
            .map(StoreResult::Lease),
        StoreOp::ReleaseLease { key, owner } => store
            .release_lease(&key, &owner)
            .await
            .map(|()| StoreResult::Done),
    };
    result.unwrap_or_else(StoreResult::Failed)
}

impl AsyncTokenStore for InMemoryTokenStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredToken>> {
        let v = TokenStore::get(self, key);
        Box::pin(async move { v })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a StoredToken,
        ttl_secs: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        let r = TokenStore::set(self, key, value, ttl_secs);
        Box::pin(async move { r })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let r = TokenStore::delete(self, key);
        Box::pin(async move { r })
    }
}
