use smart_core::store::{AsyncTokenStore, StoreOp, StoreResult};

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
