//! Where `smart` keeps tokens: `smart token --cache`, `smart login --save`, `smart refresh
//! --from` and `smart inspect --from` all name a token store the same way.
//!
//! * no value: the per-user default directory (`FileTokenStore::default_dir()`);
//! * `redis://HOST:PORT/DB` (or `rediss://`): a `RedisTokenStore`;
//! * anything else: a directory for a `FileTokenStore` (created 0700; one 0600 file per entry).
//!
//! Entries may be encrypted with a base64 32-byte key from an environment variable or a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use smart_core::error::{StoreError, StoreErrorKind};
use smart_core::store::{StoreEvent, StoredToken, TokenStore};
use smart_redis::RedisTokenStore;
use smart_store::{EncryptionKey, FileTokenStore};
use smart_ureq::StoreEventHook;

/// The store named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// A directory for a [`FileTokenStore`].
    Dir(PathBuf),
    /// A Redis URL.
    Redis(String),
}

impl StoreSpec {
    /// `value` as given after `--cache`/`--save`/`--from` (empty: the default directory).
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            let dir = FileTokenStore::default_dir().ok_or(
                "no default cache directory (neither XDG_CACHE_HOME nor HOME is set): give a directory",
            )?;
            return Ok(Self::Dir(dir));
        }
        if value.starts_with("redis://") || value.starts_with("rediss://") {
            return Ok(Self::Redis(value.to_owned()));
        }
        if value.contains("://") {
            return Err(format!(
                "unsupported token store `{value}`: give a directory or a redis:// URL"
            ));
        }
        Ok(Self::Dir(PathBuf::from(value)))
    }
}

impl std::fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "{}", d.display()),
            // The URL may carry a password: show host and database only.
            Self::Redis(u) => match url::Url::parse(u) {
                Ok(url) => write!(
                    f,
                    "{}://{}:{}{}",
                    url.scheme(),
                    url.host_str().unwrap_or(""),
                    url.port().unwrap_or(6379),
                    url.path()
                ),
                Err(_) => f.write_str("redis (malformed URL)"),
            },
        }
    }
}

/// Where the encryption key comes from.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeySource<'a> {
    /// `--…-key-env NAME`.
    pub env: Option<&'a str>,
    /// `--…-key-file PATH`.
    pub file: Option<&'a Path>,
}

impl KeySource<'_> {
    fn load(&self) -> Result<Option<EncryptionKey>, String> {
        match (self.env, self.file) {
            (Some(name), _) => EncryptionKey::from_env(name)
                .map(Some)
                .map_err(|e| format!("encryption key: {}", e.message)),
            (None, Some(path)) => EncryptionKey::from_file(path)
                .map(Some)
                .map_err(|e| format!("encryption key: {}", e.message)),
            (None, None) => Ok(None),
        }
    }
}

/// [`open()`] for commands that only read a saved session (`refresh`, `inspect --from`): a
/// directory that does not exist is an error, never created.
pub(crate) fn open_existing(
    spec: &StoreSpec,
    key: &KeySource<'_>,
) -> Result<Arc<dyn TokenStore>, String> {
    if let StoreSpec::Dir(dir) = spec
        && !dir.exists()
    {
        return Err(format!(
            "{} does not exist: give the directory `smart login --save` saved the session in",
            dir.display()
        ));
    }
    open(spec, key)
}

/// Open the store `spec`, encrypted when `key` names a key.
pub(crate) fn open(spec: &StoreSpec, key: &KeySource<'_>) -> Result<Arc<dyn TokenStore>, String> {
    let key = key.load()?;
    Ok(match spec {
        StoreSpec::Dir(dir) => {
            if dir.exists() && !dir.is_dir() {
                return Err(format!(
                    "{} is a file, not a token store directory (smart keeps tokens in a directory: \
                     give a directory path, e.g. {}.d)",
                    dir.display(),
                    dir.display()
                ));
            }
            let store = FileTokenStore::new(dir).map_err(|e| describe(&e))?;
            match key {
                Some(k) => Arc::new(store.encrypted(k)),
                None => Arc::new(store),
            }
        }
        StoreSpec::Redis(url) => {
            let store = RedisTokenStore::open(url).map_err(|e| describe(&e))?;
            match key {
                Some(k) => Arc::new(store.encrypted(k)),
                None => Arc::new(store),
            }
        }
    })
}

/// A store error in words, with what to do about it.
pub(crate) fn describe(e: &StoreError) -> String {
    let cause = std::error::Error::source(e)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let what = match e.kind {
        StoreErrorKind::Decrypt => {
            "; the entry was written with another encryption key (or with none / with one): \
             give the key it was written with"
        }
        StoreErrorKind::Corrupt => "; it is not an entry written by smart and is left as it is",
        StoreErrorKind::Unavailable => "; is the Redis server running?",
        _ => "",
    };
    format!("{e}{cause}{what}")
}

/// Whether the store failed in a way that using it anyway would hide (a wrong key, a foreign
/// entry): the command stops instead of silently working without its cache.
pub(crate) fn is_fatal(e: &StoreError) -> bool {
    matches!(e.kind, StoreErrorKind::Decrypt | StoreErrorKind::Corrupt)
}

/// The store key of a named `smart login --save` session.
pub(crate) fn session_key(name: &str) -> String {
    format!("smart-cli:session:{name}")
}

/// Read the session `name` from `store`.
pub(crate) fn read_session(
    store: &dyn TokenStore,
    spec: &StoreSpec,
    name: &str,
) -> Result<StoredToken, String> {
    match store.get(&session_key(name)) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(format!(
            "no saved session `{name}` in {spec} (sign in with `smart login --save {spec}{}`)",
            if name == "default" {
                String::new()
            } else {
                format!(" --session {name}")
            }
        )),
        Err(e) => Err(format!(
            "cannot read the saved session `{name}`: {}",
            describe(&e)
        )),
    }
}

/// Report what the library noticed about the store `spec` on stderr (it goes on without a
/// failing store for a while; the command still succeeds).
pub(crate) fn event_hook(spec: StoreSpec) -> StoreEventHook {
    Arc::new(move |event: &StoreEvent| match event {
        StoreEvent::Degraded { error, .. } => eprintln!(
            "warning: {}; going on without the token store {spec}",
            describe(error)
        ),
        other => eprintln!("warning: token store {spec}: {other}"),
    })
}
