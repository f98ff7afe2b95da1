//! [`FileTokenStore`]: one file per key in a directory, written atomically under a lock.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use smart_core::UnixTime;
use smart_core::entropy::Entropy;
use smart_core::error::{StoreError, StoreErrorKind};
use smart_core::store::{AsyncTokenStore, LeaseConfig, StoreFuture, StoredToken, TokenStore};

use crate::seal::{EncryptionKey, EntryCodec, key_digest};

/// The largest entry read (bytes): a token set is a few kilobytes.
const MAX_ENTRY_BYTES: u64 = 1 << 20;

/// A durable token store: one JSON file per key in a directory, for a service that restarts
/// or a command-line tool run many times.
///
/// - **Atomic**: an entry is written to a temporary file in the same directory, flushed to
///   disk (`fsync`), then renamed over the old one (and the directory synced), so a reader
///   sees the old entry or the new one, never half of one.
/// - **Private**: the directory is created with mode 0700 and entries with 0600 (Unix).
/// - **Locked**: writers take an exclusive lock on `<dir>/.lock`, so two processes on one
///   host never interleave writes; the same lock guards the lease files, so processes on one
///   host also take turns fetching (see `smart_core::store::LeaseConfig`).
/// - **Checked**: a file that is not an entry for its key (corrupt, truncated, foreign) is a
///   [`StoreErrorKind::Corrupt`] error and is left untouched, on reads and on writes.
/// - **Optionally encrypted** ([`encrypted`](Self::encrypted)): XChaCha20-Poly1305 with a
///   256-bit key; a wrong key is a [`StoreErrorKind::Decrypt`] error.
/// - **Expiring**: an entry written with a lifetime is not returned after it.
///
/// File names are the hex SHA-256 of the key, so keys (which may name servers and clients)
/// do not appear in the directory listing. Both store traits are implemented; the async one
/// performs the same small blocking file operations.
#[derive(Clone, Debug)]
pub struct FileTokenStore {
    dir: PathBuf,
    codec: EntryCodec,
}

fn io_error(what: String, e: std::io::Error) -> StoreError {
    StoreError::new(StoreErrorKind::Io, what).with_source(e)
}

fn now() -> UnixTime {
    UnixTime::from(SystemTime::now())
}

impl FileTokenStore {
    /// A store in `dir`, created (mode 0700) if missing.
    ///
    /// # Errors
    /// [`StoreErrorKind::Io`] when the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(&dir)
            .map_err(|e| io_error(format!("cannot create {}", dir.display()), e))?;
        Ok(Self {
            dir,
            codec: EntryCodec::new(),
        })
    }

    /// The per-user default directory: `$XDG_CACHE_HOME/smart-rs/tokens`, else
    /// `$HOME/.cache/smart-rs/tokens`; `None` when neither variable is set.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("smart-rs").join("tokens"))
    }

    /// Encrypt entries with `key` (and refuse plain ones).
    #[must_use]
    pub fn encrypted(mut self, key: EncryptionKey) -> Self {
        self.codec.key = Some(key);
        self
    }

    /// Draw encryption nonces from `entropy` (default: the operating system's generator).
    #[must_use]
    pub fn with_entropy(mut self, entropy: Arc<dyn Entropy>) -> Self {
        self.codec.entropy = entropy;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `key`'s entry.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", key_digest(key)))
    }

    fn lease_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.lease", key_digest(key)))
    }

    /// Hold the directory's exclusive lock while `f` runs.
    fn locked<R>(&self, f: impl FnOnce() -> Result<R, StoreError>) -> Result<R, StoreError> {
        let path = self.dir.join(".lock");
        let lock = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
        lock.lock()
            .map_err(|e| io_error(format!("cannot lock {}", path.display()), e))?;
        let r = f();
        let _ = lock.unlock();
        r
    }

    fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("cannot read {}", path.display()), e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return Err(StoreError::new(
                StoreErrorKind::Corrupt,
                format!("{}: larger than a token store entry", path.display()),
            ));
        }
        Ok(Some(bytes))
    }

    /// Write `bytes` to `path` atomically (temp file, fsync, rename, fsync the directory).
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let mut suffix = [0u8; 8];
        let _ = self.codec.entropy.fill(&mut suffix);
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            u64::from_le_bytes(suffix)
        ));
        let result = (|| {
            let mut f = private_options()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| io_error(format!("cannot create {}", tmp.display()), e))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(|e| io_error(format!("cannot write {}", tmp.display()), e))?;
            std::fs::rename(&tmp, path)
                .map_err(|e| io_error(format!("cannot replace {}", path.display()), e))?;
            // Make the rename itself durable.
            if let Ok(d) = File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn get_at(&self, key: &str, at: UnixTime) -> Result<Option<StoredToken>, StoreError> {
        let path = self.path_of(key);
        match Self::read(&path)? {
            None => Ok(None),
            Some(bytes) => self
                .codec
                .decode(&path.display().to_string(), key, &bytes, at),
        }
    }
}

fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Lease {
    owner: String,
    expires_at: UnixTime,
}

impl TokenStore for FileTokenStore {
    fn get(&self, key: &str) -> Result<Option<StoredToken>, StoreError> {
        self.get_at(key, now())
    }

    fn set(&self, key: &str, value: &StoredToken, ttl_secs: Option<u64>) -> Result<(), StoreError> {
        let at = now();
        let bytes = self
            .codec
            .encode(key, value, ttl_secs.map(|t| at.plus_secs(t)))?;
        self.locked(|| {
            // Never overwrite what is not ours: a corrupt or foreign file (or one this key
            // cannot open) stays as it is, and the error says which file.
            self.get_at(key, UnixTime::EPOCH)?;
            self.write_atomic(&self.path_of(key), &bytes)
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key);
        self.locked(|| match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(format!("cannot remove {}", path.display()), e)),
        })
    }

    fn try_lease(&self, key: &str, owner: &str, ttl_millis: u64) -> Result<bool, StoreError> {
        let path = self.lease_path(key);
        self.locked(|| {
            let at = now();
            let held = Self::read(&path)?
                .and_then(|b| serde_json::from_slice::<Lease>(&b).ok())
                .is_some_and(|l| l.owner != owner && at < l.expires_at);
            if held {
                return Ok(false);
            }
            let lease = Lease {
                owner: owner.to_owned(),
                expires_at: at.plus_millis(ttl_millis),
            };
            let bytes = serde_json::to_vec(&lease)
                .map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))?;
            self.write_atomic(&path, &bytes)?;
            Ok(true)
        })
    }

    fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let path = self.lease_path(key);
        self.locked(|| {
            let ours = Self::read(&path)?
                .and_then(|b| serde_json::from_slice::<Lease>(&b).ok())
                .is_some_and(|l| l.owner == owner);
            if ours {
                let _ = std::fs::remove_file(&path);
            }
            Ok(())
        })
    }

    fn lease_config(&self) -> LeaseConfig {
        LeaseConfig::shared()
    }
}

impl AsyncTokenStore for FileTokenStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StoredToken>> {
        let r = TokenStore::get(self, key);
        Box::pin(async move { r })
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

    fn try_lease<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl_millis: u64,
    ) -> StoreFuture<'a, bool> {
        let r = TokenStore::try_lease(self, key, owner, ttl_millis);
        Box::pin(async move { r })
    }

    fn release_lease<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        let r = TokenStore::release_lease(self, key, owner);
        Box::pin(async move { r })
    }

    fn lease_config(&self) -> LeaseConfig {
        LeaseConfig::shared()
    }
}
