use std::sync::Arc;

use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::entropy::{Entropy, SystemEntropy};
use smart_core::secret::{AccessToken, AuthorizationHeader};
use smart_core::session::StoredToken;
use smart_core::token::TokenResponse;
use smart_core::{Action, Flow};
use tokio::sync::{Mutex, MutexGuard};

use crate::client::now;
use crate::{Error, HttpClient, TokenStore};

/// The flow plus its optional persistence.
struct Inner {
    flow: BackendServices,
    store: Option<(Arc<dyn TokenStore>, Option<String>)>,
    loaded: bool,
    last_saved: Option<Arc<TokenResponse>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("flow", &self.flow)
            .field("store", &self.store.as_ref().map(|(_, key)| key))
            .field("loaded", &self.loaded)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn key(&self) -> Option<String> {
        let (_, explicit) = self.store.as_ref()?;
        explicit
            .clone()
            .or_else(|| self.flow.cache_key().map(|k| k.to_string()))
    }

    /// Once the token endpoint is known, load a stored token for this (endpoint, client,
    /// scope) into the cache.
    async fn load_once(&mut self) -> Result<(), Error> {
        if self.loaded || self.flow.cache_key().is_none() {
            return Ok(());
        }
        self.loaded = true;
        let (Some((store, _)), Some(key)) = (self.store.clone(), self.key()) else {
            return Ok(());
        };
        let Some(stored) = store.get(&key).await.map_err(Error::Store)? else {
            return Ok(());
        };
        let endpoint_matches = self
            .flow
            .smart_configuration()
            .is_some_and(|sc| sc.token_endpoint == stored.token_endpoint);
        if endpoint_matches && stored.client_id == self.flow.config().client_id {
            let token = Arc::new(stored.token);
            self.last_saved = Some(token.clone());
            self.flow.restore(token);
        }
        Ok(())
    }

    async fn save_if_new(&mut self, token: &Arc<TokenResponse>) -> Result<(), Error> {
        if self
            .last_saved
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, token))
        {
            return Ok(());
        }
        if let (Some((store, _)), Some(key), Some(sc)) = (
            self.store.clone(),
            self.key(),
            self.flow.smart_configuration(),
        ) {
            let stored = StoredToken {
                fhir_base: self.flow.config().fhir_base.clone(),
                token_endpoint: sc.token_endpoint.clone(),
                client_id: self.flow.config().client_id.clone(),
                token: (**token).clone(),
            };
            store.set(&key, &stored).await.map_err(Error::Store)?;
        }
        self.last_saved = Some(token.clone());
        Ok(())
    }
}

/// An async, task-safe SMART Backend Services token source (the seed's `BackendServicesAuth`).
///
/// The token is cached until it is within the skew window of expiry (default 30 s).
/// Concurrent callers on a cold or expiring cache cause exactly **one** token request: the
/// first holds the (async) lock while it fetches, the others wait and then reuse its token.
/// If the fetching task is cancelled, the request is forgotten and the next caller starts a
/// new one with a fresh assertion. With
/// [`with_store`](Self::with_store) the token also persists in a [`TokenStore`] (the seed's
/// `tokenStore` option), keyed by (token endpoint, `client_id`, scope).
#[derive(Debug)]
pub struct BackendServicesAuth {
    http: HttpClient,
    inner: Mutex<Inner>,
}

impl BackendServicesAuth {
    /// A token source with the default [`HttpClient`] and the OS entropy source.
    ///
    /// # Errors
    /// [`Error::Smart`] with [`smart_core::Error::Config`] or `InsecureUrl` for a bad
    /// configuration (see [`BackendServices::new`]); [`Error::Transport`] if the HTTP client
    /// cannot be built.
    pub fn new(config: BackendServicesConfig) -> Result<Self, Error> {
        let http = HttpClient::builder()
            .allow_insecure_http(config.allow_insecure_http)
            .build()?;
        Self::with_client(config, http, Arc::new(SystemEntropy))
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
        let inner = Inner {
            flow,
            store: None,
            loaded: false,
            last_saved: None,
        };
        Ok(Self {
            http,
            inner: Mutex::new(inner),
        })
    }

    /// Persist tokens in `store` under `key` (default: the cache key
    /// `smart-bs:{token endpoint}:{client_id}:{scope}`, percent-encoded). A stored token is
    /// loaded on first use, once the token endpoint is known, and reused while it is fresh.
    #[must_use]
    pub fn with_store(mut self, store: Arc<dyn TokenStore>, key: Option<String>) -> Self {
        let inner = self.inner.get_mut();
        inner.store = Some((store, key));
        inner.loaded = false;
        self
    }

    async fn lock(&self) -> MutexGuard<'_, Inner> {
        // A cancelled holder may have left a request in flight: forget it.
        let mut guard = self.inner.lock().await;
        if guard.flow.is_awaiting_response() {
            guard.flow.abort();
        }
        guard
    }

    /// The current token response, fetching a new one if the cache is cold or expiring.
    ///
    /// # Errors
    /// [`Error::Smart`] (e.g. an OAuth error with the server's `error` code and HTTP status),
    /// [`Error::Transport`], [`Error::BodyTooLarge`], [`Error::Store`].
    pub async fn token(&self) -> Result<Arc<TokenResponse>, Error> {
        let mut inner = self.lock().await;
        loop {
            inner.load_once().await?;
            match inner.flow.poll(now())? {
                Action::Ready(token) => {
                    inner.save_if_new(&token).await?;
                    return Ok(token);
                }
                Action::Send(request) => match self.http.send(request).await {
                    Ok(response) => inner.flow.handle_response(response, now())?,
                    Err(e) => {
                        inner.flow.abort();
                        return Err(e);
                    }
                },
                _ => return Err(smart_core::Error::Misuse("unknown action").into()),
            }
        }
    }

    /// The current access token (see [`token`](Self::token)).
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        Ok(self.token().await?.access_token.clone())
    }

    /// The `Authorization` header value, `Bearer <access_token>` (RESP-03), as a redacted
    /// secret: call `.secret()` to put it on a request.
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub async fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        let token = self.token().await?;
        Ok(AuthorizationHeader::new(format!(
            "Bearer {}",
            token.access_token.secret()
        )))
    }

    /// The FHIR server answered 401: forget the cached token (and delete it from the store)
    /// so the next call fetches a new one (the seed's `onUnauthorized`).
    ///
    /// # Errors
    /// [`Error::Store`] if the store cannot delete it (the in-memory cache is cleared anyway).
    pub async fn on_unauthorized(&self) -> Result<(), Error> {
        let mut inner = self.lock().await;
        inner.flow.invalidate();
        inner.last_saved = None;
        match (inner.store.clone(), inner.key()) {
            (Some((store, _)), Some(key)) => store.delete(&key).await.map_err(Error::Store),
            _ => Ok(()),
        }
    }
}
