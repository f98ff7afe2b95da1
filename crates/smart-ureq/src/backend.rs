use std::sync::Arc;

use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::entropy::{Entropy, default_entropy};
use smart_core::secret::{AccessToken, AuthorizationHeader};
use smart_core::source::TokenSource as _;
use smart_core::store::TokenStore;
use smart_core::{CachedToken, Error};

use crate::HttpClient;
use crate::source::{SourceHandle, StoreEventHook};

/// A thread-safe SMART Backend Services token source.
///
/// - A fresh token is read without taking any lock.
/// - On a cold cache exactly **one** token request is in flight however many threads ask;
///   they all get its outcome, success or the same error.
/// - Inside the skew window (default 30 s before expiry) the one thread that claims the
///   renewal fetches a new token while every other thread keeps the still-valid one.
/// - Failures are retried and backed off as `smart_core::retry` describes: during a backoff
///   callers get the last error at once, without a request, unless a valid token is cached.
/// - With [`with_store`](Self::with_store) tokens persist in a [`TokenStore`] keyed by
///   (token endpoint, `client_id`, scope); a store that coordinates processes (e.g. Redis)
///   makes processes take turns, so a fleet mints one token per expiry.
#[derive(Debug)]
pub struct BackendServicesAuth {
    source: SourceHandle<BackendServices>,
}

impl BackendServicesAuth {
    /// A token source with a default [`HttpClient`] (allowing plain HTTP only if the
    /// configuration does) and the operating system's entropy.
    ///
    /// # Errors
    /// [`Error::Config`] or [`Error::InsecureUrl`] for a bad configuration (see
    /// [`BackendServices::new`]).
    pub fn new(config: BackendServicesConfig) -> Result<Self, Error> {
        let http = HttpClient::builder()
            .allow_insecure_http(config.allow_insecure_http)
            .build()?;
        Self::with_client(config, http, default_entropy())
    }

    /// A token source with a caller-supplied client and entropy source.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_client(
        config: BackendServicesConfig,
        http: HttpClient,
        entropy: Arc<dyn Entropy>,
    ) -> Result<Self, Error> {
        let flow = BackendServices::new(config, entropy)?;
        Ok(Self {
            source: SourceHandle::new(flow, http),
        })
    }

    /// Persist tokens in `store` under `key` (default: the cache key
    /// `smart-bs:{token endpoint}:{client_id}:{scope}`, percent-encoded). A stored token is
    /// used once the token endpoint is known, while it is fresh; if the store fails, the
    /// source goes on without it and reports a `StoreEvent` to
    /// [`on_store_event`](Self::on_store_event).
    #[must_use]
    pub fn with_store(mut self, store: Arc<dyn TokenStore>, key: Option<String>) -> Self {
        let lease = store.lease_config();
        self.source.shared.lock().set_store(key, lease);
        self.source.store = Some(store);
        self
    }

    /// Report store events (failures, ignored entries) to `hook`.
    #[must_use]
    pub fn on_store_event(mut self, hook: StoreEventHook) -> Self {
        self.source.on_store_event = Some(hook);
        self
    }

    /// The current token, fetching a new one if the cache is cold or expiring.
    ///
    /// # Errors
    /// [`Error::OAuth`] (e.g. `invalid_client` with the HTTP status), [`Error::Transport`],
    /// [`Error::Discovery`], [`Error::Store`] …: the error of the flight this call waited on.
    pub fn token(&self) -> Result<Arc<CachedToken>, Error> {
        self.source.token()
    }

    /// The current access token (see [`token`](Self::token)).
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub fn access_token(&self) -> Result<AccessToken, Error> {
        Ok(self.token()?.access_token.clone())
    }

    /// The `Authorization` header value, `Bearer <access_token>` (RFC 6750 §2.1), shared
    /// with every other caller: call `.secret()` to put it on a request.
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        match self.source.fresh_authorization() {
            Some(h) => Ok(h),
            None => Ok(self.source.run()?.authorization().clone()),
        }
    }

    /// The FHIR server answered 401: the cached token is never used again and the next call
    /// fetches a new one (deleting the stored copy first).
    ///
    /// # Errors
    /// None today; the `Result` is kept for stores that act at once.
    pub fn on_unauthorized(&self) -> Result<(), Error> {
        self.source.with(BackendServices::invalidate);
        Ok(())
    }

    /// The FHIR server answered 401 to a request sent with `used`: if that is still the
    /// current token, it is never used again (as [`on_unauthorized`](Self::on_unauthorized));
    /// a token fetched since is kept. Many callers may report the same rejection.
    ///
    /// # Errors
    /// None today; the `Result` is kept for stores that act at once.
    pub fn on_rejected(&self, used: &AuthorizationHeader) -> Result<(), Error> {
        self.source.with(|s| s.invalidate_if(used));
        Ok(())
    }
}
