use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::entropy::{Entropy, SystemEntropy};
use smart_core::secret::{AccessToken, AuthorizationHeader};
use smart_core::token::TokenResponse;

use crate::{Error, HttpClient};

/// A thread-safe SMART Backend Services token source (the seed's `BackendServicesAuth`).
///
/// The token is cached until it is within the skew window of expiry (default 30 s).
/// Concurrent callers on a cold or expiring cache cause exactly **one** token request: the
/// first holds the lock while it fetches, the others wait and then reuse its token.
#[derive(Debug)]
pub struct BackendServicesAuth {
    http: HttpClient,
    machine: Mutex<BackendServices>,
}

impl BackendServicesAuth {
    /// A token source with the default [`HttpClient`] and the OS entropy source.
    ///
    /// # Errors
    /// [`Error::Smart`] with [`smart_core::Error::Config`] or `InsecureUrl` for a bad
    /// configuration (see [`BackendServices::new`]).
    pub fn new(config: BackendServicesConfig) -> Result<Self, Error> {
        let http = HttpClient::builder()
            .allow_insecure_http(config.allow_insecure_http)
            .build();
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
        Ok(Self {
            http,
            machine: Mutex::new(BackendServices::new(config, entropy)?),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BackendServices> {
        // A panic while holding the lock cannot leave the machine half-updated in a way that
        // matters: at worst a request is marked in flight, which `abort` clears.
        let mut guard = self.machine.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_awaiting_response() {
            smart_core::Flow::abort(&mut *guard);
        }
        guard
    }

    /// The current token response, fetching a new one if the cache is cold or expiring.
    ///
    /// # Errors
    /// [`Error::Smart`] (e.g. an OAuth error with the server's `error` code and HTTP status),
    /// [`Error::Transport`], [`Error::BodyTooLarge`].
    pub fn token(&self) -> Result<Arc<TokenResponse>, Error> {
        let mut machine = self.lock();
        self.http.run(&mut *machine)
    }

    /// The current access token (see [`token`](Self::token)).
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub fn access_token(&self) -> Result<AccessToken, Error> {
        Ok(self.token()?.access_token.clone())
    }

    /// The `Authorization` header value, `Bearer <access_token>` (RESP-03), as a redacted
    /// secret: call `.secret()` to put it on a request.
    ///
    /// # Errors
    /// As [`token`](Self::token).
    pub fn authorization(&self) -> Result<AuthorizationHeader, Error> {
        let token = self.token()?;
        Ok(AuthorizationHeader::new(format!(
            "Bearer {}",
            token.access_token.secret()
        )))
    }

    /// The FHIR server answered 401: forget the cached token so the next call fetches a new
    /// one (the seed's `onUnauthorized`).
    pub fn on_unauthorized(&self) {
        self.lock().invalidate();
    }
}
