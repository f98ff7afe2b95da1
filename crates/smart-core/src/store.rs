//! What token stores hold, under which keys, and the operations token sources ask a driver to
//! perform on a store ([`StoreOp`] → [`StoreResult`]).
//!
//! The decisions are made here, in the core: when to read a stored token set, whether a
//! stored set may be used, what to write after a new token arrives, what to delete after a
//! 401, and how processes sharing a store take turns (a *lease*: one process fetches while
//! the others wait for the result it stores). Drivers only execute the operations.

use std::future::Future;
use std::pin::Pin;

use url::Url;

use crate::error::StoreError;
use crate::time::UnixTime;
use crate::token::TokenResponse;
use crate::types::{ClientId, Endpoint, FhirBaseUrl};

/// What a token store holds: an App Launch session or a Backend Services token, with what
/// identifies it. Serialize it with serde; it contains the access and refresh tokens, so
/// encrypt it at rest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredToken {
    /// The FHIR base the tokens are for (always set for App Launch sessions; Backend Services
    /// tokens configured without a FHIR base have none).
    pub fhir_base: Option<FhirBaseUrl>,
    /// The token endpoint used for refresh, as the server advertised it (the `aud` of a
    /// restored session's `client_assertion` is this text; it serializes as that string).
    pub token_endpoint: Endpoint,
    /// The `client_id` the tokens were issued to.
    pub client_id: ClientId,
    /// The current token set (launch context and `id_token` merged across refreshes).
    pub token: TokenResponse,
}

impl StoredToken {
    /// The default token-store key for an App Launch session: distinct for every token
    /// endpoint, client, user (`id_token` `sub` or `fhirUser`, else `patient`) and grant (the
    /// first refresh token, else the access token), so two launches, servers or users never
    /// share a slot. See [`session_key`].
    pub fn default_key(&self) -> String {
        let t = &self.token;
        let user = t
            .id_token
            .as_ref()
            .and_then(|i| crate::id_token::UnverifiedIdTokenClaims::decode(i).ok())
            .and_then(|c| c.sub.or(c.fhir_user))
            .or_else(|| t.context.patient.clone())
            .unwrap_or_default();
        let grant = t
            .refresh_token
            .as_ref()
            .map_or(t.access_token.secret(), |r| r.secret());
        session_key(&self.token_endpoint, &self.client_id, &user, grant)
    }

    /// Whether this entry was issued by `token_endpoint` to `client_id`: the same URL once
    /// parsed (so `https://EHR.example.org:443/token` as advertised and stored matches the
    /// `https://ehr.example.org/token` it is sent to) and the exact `client_id`. A token
    /// source never uses an entry that fails this check.
    pub fn belongs_to(&self, token_endpoint: &Url, client_id: &ClientId) -> bool {
        self.token_endpoint.url() == token_endpoint && &self.client_id == client_id
    }
}

/// A token-store key for an App Launch session: `smart-app:` and the hex SHA-256 of the
/// length-prefixed token endpoint, `client_id`, user and grant, so no two servers, clients,
/// users or grants collide and the key reveals none of them.
pub fn session_key(token_endpoint: &Url, client_id: &ClientId, user: &str, grant: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for part in [token_endpoint.as_str(), client_id.as_str(), user, grant] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("smart-app:{hex}")
}

/// The Backend Services cache key: `(token endpoint, client_id, scope)`. Two configurations
/// that differ in any of the three never share a cached or stored token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The exact token endpoint URL.
    pub token_endpoint: String,
    /// The `client_id`.
    pub client_id: String,
    /// The requested scope string, normalised to single spaces.
    pub scope: String,
}

impl std::fmt::Display for CacheKey {
    /// The store key: `smart-bs:{endpoint}:{client_id}:{scope}` with each part
    /// percent-encoded, so no part can forge another.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        write!(
            f,
            "smart-bs:{}:{}:{}",
            enc(&self.token_endpoint),
            enc(&self.client_id),
            enc(&self.scope)
        )
    }
}

/// An operation a token source asks its driver to perform on the token store
/// ([`Action::Store`](crate::flow::Action::Store)). Report the outcome with
/// [`Flow::handle_store`](crate::flow::Flow::handle_store).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Read the entry under `key`. Answer [`StoreResult::Value`].
    Get {
        /// The key.
        key: String,
    },
    /// Write `value` under `key`, replacing what is there. When `ttl_secs` is set the entry
    /// may expire after that many **seconds** (the access token's remaining lifetime); `None`
    /// keeps it until deleted (a session holding a refresh token). Answer
    /// [`StoreResult::Done`].
    Set {
        /// The key.
        key: String,
        /// The token set to store.
        value: Box<StoredToken>,
        /// Lifetime of the entry in seconds, if it may expire.
        ttl_secs: Option<u64>,
    },
    /// Remove the entry under `key` (the server rejected its access token). Answer
    /// [`StoreResult::Done`].
    Delete {
        /// The key.
        key: String,
    },
    /// Take the lease on `key` for `ttl_millis` milliseconds if nobody holds it (e.g. Redis
    /// `SET lease-key owner NX PX ttl`). Answer [`StoreResult::Lease`]. Stores without
    /// cross-process coordination answer `Lease(true)`.
    AcquireLease {
        /// The key the lease protects (the store may derive its own lease key from it).
        key: String,
        /// A random value naming this holder; only the holder may release the lease.
        owner: String,
        /// How long the lease lasts if never released, in milliseconds.
        ttl_millis: u64,
    },
    /// Release the lease on `key` if `owner` still holds it (compare-and-delete). Answer
    /// [`StoreResult::Done`].
    ReleaseLease {
        /// The key.
        key: String,
        /// The value given when acquiring.
        owner: String,
    },
}

impl std::fmt::Debug for StoreOp {
    /// Keys and kinds only: never the stored tokens, never the lease owner value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Get { key } => f.debug_struct("Get").field("key", key).finish(),
            Self::Set { key, ttl_secs, .. } => f
                .debug_struct("Set")
                .field("key", key)
                .field("ttl_secs", ttl_secs)
                .finish_non_exhaustive(),
            Self::Delete { key } => f.debug_struct("Delete").field("key", key).finish(),
            Self::AcquireLease {
                key, ttl_millis, ..
            } => f
                .debug_struct("AcquireLease")
                .field("key", key)
                .field("ttl_millis", ttl_millis)
                .finish_non_exhaustive(),
            Self::ReleaseLease { key, .. } => f
                .debug_struct("ReleaseLease")
                .field("key", key)
                .finish_non_exhaustive(),
        }
    }
}

/// The outcome of a [`StoreOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreResult {
    /// The answer to [`StoreOp::Get`]: the entry, or `None` when there is none (or it
    /// expired).
    Value(Option<Box<StoredToken>>),
    /// [`StoreOp::Set`], [`StoreOp::Delete`] or [`StoreOp::ReleaseLease`] succeeded.
    Done,
    /// The answer to [`StoreOp::AcquireLease`]: whether this caller now holds the lease.
    Lease(bool),
    /// The operation failed. Token sources keep working in-process (they degrade to
    /// single flight within the process) and report the failure as a [`StoreEvent`].
    Failed(StoreError),
}

/// How a token source uses a shared store to take turns with other processes.
///
/// Defaults: a lease of 10 s; waiters poll the store every 100 ms for the token the holder
/// stores; a waiter gives up waiting after the lease time plus 1 s and tries itself (by then
/// the lease of a holder that died has expired). After a store failure the store is not used
/// for 30 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// Whether the store coordinates processes (answers `AcquireLease` truthfully). Without
    /// it, no lease operations are emitted.
    pub enabled: bool,
    /// Lease lifetime in milliseconds: longer than a token request normally takes.
    pub ttl_millis: u64,
    /// How often a waiting process looks for the stored result, in milliseconds.
    pub poll_millis: u64,
    /// How long a process waits for another's result before fetching itself, in
    /// milliseconds.
    pub max_wait_millis: u64,
    /// How long the store is left alone after it failed, in milliseconds.
    pub retry_store_after_millis: u64,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl_millis: 10_000,
            poll_millis: 100,
            max_wait_millis: 11_000,
            retry_store_after_millis: 30_000,
        }
    }
}

impl LeaseConfig {
    /// The defaults with leases on (for stores shared between processes, e.g. Redis).
    pub fn shared() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// The lease lifetime (and the wait limit, lifetime + 1 s) in milliseconds.
    #[must_use]
    pub fn with_ttl_millis(mut self, ttl_millis: u64) -> Self {
        self.ttl_millis = ttl_millis.max(1);
        self.max_wait_millis = ttl_millis.saturating_add(1_000);
        self
    }

    /// How often a waiting process polls the store, in milliseconds.
    #[must_use]
    pub fn with_poll_millis(mut self, poll_millis: u64) -> Self {
        self.poll_millis = poll_millis.max(1);
        self
    }

    /// How long the store is left alone after it failed, in milliseconds.
    #[must_use]
    pub fn with_retry_store_after_millis(mut self, millis: u64) -> Self {
        self.retry_store_after_millis = millis;
        self
    }
}

/// Something a token source noticed about its store, for the driver to report (a warning
/// hook, a log line). Never contains a token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// The store failed; the token source goes on without it (single flight within this
    /// process only) until `retry_at`.
    Degraded {
        /// The failure.
        error: StoreError,
        /// When the store will be used again.
        retry_at: UnixTime,
    },
    /// An entry was found but not used: it belongs to another endpoint or client, or it is
    /// the token the server just rejected.
    Ignored {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// Another process held the lease for longer than the wait limit; this process fetched
    /// on its own.
    LeaseWaitExpired {
        /// The key.
        key: String,
    },
}

impl std::fmt::Display for StoreEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Degraded { error, retry_at } => write!(
                f,
                "{error}; continuing without the store (single flight in this process) until {retry_at}"
            ),
            Self::Ignored { key, reason } => write!(f, "stored entry `{key}` not used: {reason}"),
            Self::LeaseWaitExpired { key } => write!(
                f,
                "waited too long for another process to store a token under `{key}`; fetching here"
            ),
        }
    }
}

/// Blocking persistence for token sets (App Launch sessions and Backend Services tokens),
/// shared by the blocking driver and the command-line tool.
///
/// Values contain access and refresh tokens: implementations should encrypt them at rest
/// and must not log them. A store that coordinates processes (e.g. Redis) implements the
/// lease methods and returns an enabled [`LeaseConfig`] from
/// [`lease_config`](Self::lease_config); the defaults do no coordination.
pub trait TokenStore: Send + Sync {
    /// The entry stored under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails or the entry is not a token set.
    fn get(&self, key: &str) -> Result<Option<StoredToken>, StoreError>;

    /// Store `value` under `key`, replacing what was there; it may expire after `ttl_secs`
    /// seconds when given.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    fn set(&self, key: &str, value: &StoredToken, ttl_secs: Option<u64>) -> Result<(), StoreError>;

    /// Remove `key`.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Take the lease on `key` for `ttl_millis` milliseconds if nobody holds it. The default
    /// (no coordination) always succeeds.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    fn try_lease(&self, key: &str, owner: &str, ttl_millis: u64) -> Result<bool, StoreError> {
        let _ = (key, owner, ttl_millis);
        Ok(true)
    }

    /// Release the lease on `key` if `owner` holds it. The default does nothing.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let _ = (key, owner);
        Ok(())
    }

    /// How token sources use this store's leases (default: disabled).
    fn lease_config(&self) -> LeaseConfig {
        LeaseConfig::default()
    }

    /// Perform a token source's [`StoreOp`] and report its [`StoreResult`].
    fn perform(&self, op: StoreOp) -> StoreResult {
        let result = match op {
            StoreOp::Get { key } => self.get(&key).map(|v| StoreResult::Value(v.map(Box::new))),
            StoreOp::Set {
                key,
                value,
                ttl_secs,
            } => self.set(&key, &value, ttl_secs).map(|()| StoreResult::Done),
            StoreOp::Delete { key } => self.delete(&key).map(|()| StoreResult::Done),
            StoreOp::AcquireLease {
                key,
                owner,
                ttl_millis,
            } => self
                .try_lease(&key, &owner, ttl_millis)
                .map(StoreResult::Lease),
            StoreOp::ReleaseLease { key, owner } => {
                self.release_lease(&key, &owner).map(|()| StoreResult::Done)
            }
        };
        result.unwrap_or_else(StoreResult::Failed)
    }
}

/// A process-local store (lost on exit): the default of session clients, and a test double.
#[derive(Debug, Default)]
pub struct InMemoryTokenStore {
    map: std::sync::Mutex<std::collections::HashMap<String, StoredToken>>,
}

impl InMemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, StoredToken>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl TokenStore for InMemoryTokenStore {
    fn get(&self, key: &str) -> Result<Option<StoredToken>, StoreError> {
        Ok(self.map().get(key).cloned())
    }

    fn set(
        &self,
        key: &str,
        value: &StoredToken,
        _ttl_secs: Option<u64>,
    ) -> Result<(), StoreError> {
        self.map().insert(key.to_owned(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map().remove(key);
        Ok(())
    }
}

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
