//! `smart_testkit::driver::Driver` for the blocking driver: each method is the driver's call
//! of the same name; concurrent callers are threads.

use std::sync::{Arc, Barrier};

use smart_core::backend::BackendServicesConfig;
use smart_core::client_auth::ClientAuth;
use smart_core::discovery::Discovered;
use smart_core::entropy::Entropy;
use smart_core::id_token::VerifiedIdTokenClaims;
use smart_core::introspection::{Introspection, IntrospectionAuth, TokenTypeHint};
use smart_core::launch::{AppConfig, AuthorizationRequest, Launch, PendingAuthorization};
use smart_core::secret::{AccessToken, AuthorizationHeader, RefreshToken};
use smart_core::session::Session;
use smart_core::store::InMemoryTokenStore;
use smart_core::token::TokenResponse;
use smart_core::{CachedToken, Error, FhirBaseUrl, Flow, HttpRequest, HttpResponse};
use smart_testkit::driver::{ClientOptions, ClientSnapshot, Driver, HttpOptions};
use smart_ureq::{BackendServicesAuth, HttpClient, SmartClient};
use url::Url;

/// The blocking (ureq) driver.
pub struct Ureq;

impl Driver for Ureq {
    const NAME: &'static str = "ureq";
    const RENEWS_IN_BACKGROUND: bool = false;

    type Http = HttpClient;
    type Auth = BackendServicesAuth;
    type Client = SmartClient;

    fn http(options: HttpOptions) -> Result<HttpClient, Error> {
        smart_testkit::http_builder!(HttpClient::builder(), options).build()
    }

    fn send(http: &HttpClient, request: HttpRequest) -> Result<HttpResponse, Error> {
        http.send(request)
    }

    fn run<F: Flow + Send>(http: &HttpClient, flow: F) -> Result<F::Output, Error>
    where
        F::Output: Send,
    {
        http.run(flow)
    }

    fn backend(config: BackendServicesConfig) -> Result<BackendServicesAuth, Error> {
        BackendServicesAuth::new(config)
    }

    fn backend_with_client(
        config: BackendServicesConfig,
        http: HttpClient,
        entropy: Arc<dyn Entropy>,
    ) -> Result<BackendServicesAuth, Error> {
        BackendServicesAuth::with_client(config, http, entropy)
    }

    fn backend_with_store(
        auth: BackendServicesAuth,
        store: Arc<InMemoryTokenStore>,
        key: Option<String>,
    ) -> BackendServicesAuth {
        auth.with_store(store, key)
    }

    fn token(auth: &BackendServicesAuth) -> Result<Arc<CachedToken>, Error> {
        auth.token()
    }

    fn access_token(auth: &BackendServicesAuth) -> Result<AccessToken, Error> {
        auth.access_token()
    }

    fn authorization(auth: &BackendServicesAuth) -> Result<AuthorizationHeader, Error> {
        auth.authorization()
    }

    fn on_unauthorized(auth: &BackendServicesAuth) -> Result<(), Error> {
        auth.on_unauthorized()
    }

    fn concurrent_tokens(
        auth: &Arc<BackendServicesAuth>,
        callers: usize,
    ) -> Vec<Result<Arc<CachedToken>, Error>> {
        let barrier = Barrier::new(callers);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..callers)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        auth.token()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn discover(http: &HttpClient, fhir_base: &FhirBaseUrl) -> Result<Discovered, Error> {
        smart_ureq::discover(http, fhir_base)
    }

    fn begin_launch(
        http: &HttpClient,
        app: &AppConfig,
        launch: Launch,
    ) -> Result<AuthorizationRequest, Error> {
        smart_ureq::begin_launch(http, app, launch)
    }

    fn complete_launch(
        http: &HttpClient,
        app: &AppConfig,
        pending: PendingAuthorization,
        redirect_url: &str,
    ) -> Result<SmartClient, Error> {
        smart_ureq::complete_launch(http, app, pending, redirect_url)
    }

    fn refresh_token(
        http: &HttpClient,
        app: &AppConfig,
        token_endpoint: &Url,
        refresh_token: &RefreshToken,
        scope: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        smart_ureq::refresh_token(http, app, token_endpoint, refresh_token, scope)
    }

    fn introspect(
        http: &HttpClient,
        endpoint: &Url,
        token: &AccessToken,
        token_type_hint: Option<TokenTypeHint>,
        auth: IntrospectionAuth,
    ) -> Result<Introspection, Error> {
        smart_ureq::introspect(http, endpoint, token, token_type_hint, auth)
    }

    fn revoke(
        http: &HttpClient,
        endpoint: &Url,
        token: &AccessToken,
        token_type_hint: Option<TokenTypeHint>,
        client_auth: &ClientAuth,
    ) -> Result<(), Error> {
        smart_ureq::revoke(http, endpoint, token, token_type_hint, client_auth)
    }

    fn client(session: Session, options: ClientOptions<HttpClient>) -> Result<SmartClient, Error> {
        let b = smart_testkit::client_builder!(SmartClient::builder(session), options);
        b.build()
    }

    fn restore(
        app: &AppConfig,
        store: Arc<InMemoryTokenStore>,
        key: &str,
    ) -> Result<SmartClient, Error> {
        SmartClient::restore(app, store, key)
    }

    fn client_token(client: &SmartClient) -> Result<Arc<CachedToken>, Error> {
        client.token()
    }

    fn client_authorization(client: &SmartClient) -> Result<AuthorizationHeader, Error> {
        client.authorization()
    }

    fn client_refresh(
        client: &SmartClient,
        scope: Option<&str>,
    ) -> Result<Arc<CachedToken>, Error> {
        client.refresh(scope)
    }

    fn client_on_unauthorized(client: &SmartClient) -> Result<(), Error> {
        client.on_unauthorized()
    }

    fn client_verify_id_token(client: &SmartClient) -> Result<VerifiedIdTokenClaims, Error> {
        client.verify_id_token()
    }

    fn snapshot(client: &SmartClient) -> ClientSnapshot {
        smart_testkit::client_snapshot!(client)
    }
}
