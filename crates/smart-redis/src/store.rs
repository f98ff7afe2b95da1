//! [`RedisTokenStore`].

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use smart_core::UnixTime;
use smart_core::error::{StoreError, StoreErrorKind};
use smart_core::store::{LeaseConfig, StoredToken, TokenStore};
use smart_store::{EncryptionKey, EntryCodec};

/// Compare-and-delete: release the lease only if this owner still holds it.
const RELEASE: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// A token store on Redis, shared by every process that opens the same database. See the
/// [crate docs](crate).
///
/// Keys are `{prefix}{store key}` (default prefix `smart-rs:`), leases
/// `{prefix}{store key}:lease`. Connections are opened lazily and reopened after a failure;
/// every operation is bounded by the timeout (default 2 s). Implements the blocking
/// `TokenStore`, and with the `tokio` feature `AsyncTokenStore`.
pub struct RedisTokenStore {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    lease: LeaseConfig,
    codec: EntryCodec,
    conn: Mutex<Option<redis::Connection>>,
    #[cfg(feature = "tokio")]
    manager: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.client.get_connection_info();
        f.debug_struct("RedisTokenStore")
            .field("addr", &info.addr().to_string())
            .field("prefix", &self.prefix)
            .field("encrypted", &self.codec.is_encrypted())
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// Map a Redis failure: anything about reaching the server is `Unavailable` (the token
/// source then degrades); the rest is `Other`.
fn store_error(what: &str, e: redis::RedisError) -> StoreError {
    let kind = if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
    {
        StoreErrorKind::Unavailable
    } else {
        StoreErrorKind::Other
    };
    StoreError::new(kind, format!("redis {what}: {}", e.kind_name())).with_source(e)
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for redis::RedisError {
    /// A short description without any argument of the command (no stored value).
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}

fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}

impl RedisTokenStore {
    /// A store on the Redis server at `url` (`redis://[user:password@]host:port/db`, or
    /// `rediss://` for TLS when the redis crate's TLS feature is enabled). Nothing is
    /// connected until the first operation.
    ///
    /// # Errors
    /// [`StoreErrorKind::Other`] for a malformed URL.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::new(StoreErrorKind::Other, format!("redis URL: {e}")))?;
        Ok(Self {
            client,
            prefix: "smart-rs:".into(),
            timeout: Duration::from_secs(2),
            lease: LeaseConfig::shared(),
            codec: EntryCodec::new(),
            conn: Mutex::new(None),
            #[cfg(feature = "tokio")]
            manager: tokio::sync::OnceCell::new(),
        })
    }

    /// Prefix every key with `prefix` (default `smart-rs:`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bound every connection attempt and command by `timeout` (default 2 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Use `lease` for cross-process single flight (default: `LeaseConfig::shared()`, a
    /// 10 s lease polled every 100 ms).
    #[must_use]
    pub fn with_lease_config(mut self, lease: LeaseConfig) -> Self {
        self.lease = lease;
        self.lease.enabled = true;
        self
    }

    /// Encrypt entries at rest with `key` (XChaCha20-Poly1305; a wrong key is a
    /// `StoreErrorKind::Decrypt` error).
    #[must_use]
    pub fn encrypted(mut self, key: EncryptionKey) -> Self {
        self.codec = self.codec.encrypted(key);
        self
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}{key}:lease", self.prefix)
    }

    /// Run `f` on the (re)opened blocking connection; a failed connection is dropped so the
    /// next call reconnects.
    fn with_conn<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(|e| store_error("connect", e))?;
            c.set_read_timeout(Some(self.timeout))
                .and_then(|()| c.set_write_timeout(Some(self.timeout)))
                .map_err(|e| store_error("connect", e))?;
            *slot = Some(c);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "no connection",
            ));
        };
        let r = f(conn).map_err(|e| store_error(what, e));
        if r.as_ref()
            .is_err_and(|e| e.kind == StoreErrorKind::Unavailable)
        {
            *slot = None;
        }
        r
    }

    fn decode(&self, key: &str, bytes: Option<Vec<u8>>) -> Result<Option<StoredToken>, StoreError> {
        match bytes {
            None => Ok(None),
            Some(b) => self.codec.decode(
                &format!("redis key {}", self.entry_key(key)),
                key,
                &b,
                now(),
            ),
        }
    }

    fn encode(&self, key: &str, value: &StoredToken) -> Result<Vec<u8>, StoreError> {
        // Redis expires the entry itself; no expiry inside the value.
        self.codec.encode(key, value, None)
    }
}

fn set_cmd(key: String, bytes: Vec<u8>, ttl_secs: Option<u64>) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(bytes);
    if let Some(t) = ttl_secs {
        cmd.arg("PX").arg(t.max(1).saturating_mul(1000));
    }
    cmd
}

fn lease_cmd(key: String, owner: &str, ttl_millis: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key)
        .arg(owner)
        .arg("NX")
        .arg("PX")
        .arg(ttl_millis.max(1));
    cmd
}

impl TokenStore for RedisTokenStore {
    fn get(&self, key: &str) -> Result<Option<StoredToken>, StoreError> {
        let k = self.entry_key(key);
        let bytes: Option<Vec<u8>> =
            self.with_conn("GET", |c| redis::cmd("GET").arg(&k).query(c))?;
        self.decode(key, bytes)
    }

    fn set(&self, key: &str, value: &StoredToken, ttl_secs: Option<u64>) -> Result<(), StoreError> {
        let bytes = self.encode(key, value)?;
        let cmd = set_cmd(self.entry_key(key), bytes, ttl_secs);
        self.with_conn("SET", |c| cmd.query::<()>(c))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let k = self.entry_key(key);
        self.with_conn("DEL", |c| redis::cmd("DEL").arg(&k).query::<()>(c))
    }

    fn try_lease(&self, key: &str, owner: &str, ttl_millis: u64) -> Result<bool, StoreError> {
        let cmd = lease_cmd(self.lease_key(key), owner, ttl_millis);
        let r: Option<String> = self.with_conn("SET NX", |c| cmd.query(c))?;
        Ok(r.is_some())
    }

    fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let k = self.lease_key(key);
        self.with_conn("release lease", |c| {
            redis::Script::new(RELEASE)
                .key(&k)
                .arg(owner)
                .invoke::<i64>(c)
                .map(|_| ())
        })
    }

    fn lease_config(&self) -> LeaseConfig {
        self.lease
    }
}

#[cfg(feature = "tokio")]
mod asynchronous {
    use smart_core::store::{AsyncTokenStore, StoreFuture};

    use super::*;

    impl RedisTokenStore {
        async fn manager(&self) -> Result<redis::aio::ConnectionManager, StoreError> {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(1);
            self.manager
                .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
                .await
                .cloned()
                .map_err(|e| store_error("connect", e))
        }

        async fn run<T: redis::FromRedisValue>(
            &self,
            what: &str,
            cmd: redis::Cmd,
        ) -> Result<T, StoreError> {
            let mut m = self.manager().await?;
            cmd.query_async(&mut m)
                .await
                .map_err(|e| store_error(what, e))
        }
    }

    impl AsyncTokenStore for RedisTokenStore {
        fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredToken>> {
            Box::pin(async move {
                let mut cmd = redis::cmd("GET");
                cmd.arg(self.entry_key(key));
                let bytes: Option<Vec<u8>> = self.run("GET", cmd).await?;
                self.decode(key, bytes)
            })
        }

        fn set<'a>(
            &'a self,
            key: &'a str,
            value: &'a StoredToken,
            ttl_secs: Option<u64>,
        ) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                let bytes = self.encode(key, value)?;
                self.run("SET", set_cmd(self.entry_key(key), bytes, ttl_secs))
                    .await
            })
        }

        fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(self.entry_key(key));
                self.run::<()>("DEL", cmd).await
            })
        }

        fn try_lease<'a>(
            &'a self,
            key: &'a str,
            owner: &'a str,
            ttl_millis: u64,
        ) -> StoreFuture<'a, bool> {
            Box::pin(async move {
                let r: Option<String> = self
                    .run("SET NX", lease_cmd(self.lease_key(key), owner, ttl_millis))
                    .await?;
                Ok(r.is_some())
            })
        }

        fn release_lease<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                let mut m = self.manager().await?;
                redis::Script::new(RELEASE)
                    .key(self.lease_key(key))
                    .arg(owner)
                    .invoke_async::<i64>(&mut m)
                    .await
                    .map(|_| ())
                    .map_err(|e| store_error("release lease", e))
            })
        }

        fn lease_config(&self) -> LeaseConfig {
            self.lease
        }
    }
}
