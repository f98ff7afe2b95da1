use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use smart_core::session::StoredToken;

/// A token store failed (e.g. the database is down). The message must not contain tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// Blocking persistence for App Launch sessions (the seed's `TokenStore`).
///
/// Values contain access and refresh tokens: implementations should encrypt them at rest
/// and must not log them. Keys come from [`SmartClient::store_key`](crate::SmartClient::store_key).
pub trait TokenStore: Send + Sync {
    /// The session stored under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    fn get(&self, key: &str) -> Result<Option<StoredToken>, StoreError>;
    /// Store `value` under `key`, replacing what was there.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    fn set(&self, key: &str, value: &StoredToken) -> Result<(), StoreError>;
    /// Remove `key`.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// The default store: a process-local map (lost on exit).
#[derive(Debug, Default)]
pub struct InMemoryTokenStore {
    map: Mutex<HashMap<String, StoredToken>>,
}

impl InMemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl TokenStore for InMemoryTokenStore {
    fn get(&self, key: &str) -> Result<Option<StoredToken>, StoreError> {
        Ok(self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned())
    }

    fn set(&self, key: &str, value: &StoredToken) -> Result<(), StoreError> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        Ok(())
    }
}
