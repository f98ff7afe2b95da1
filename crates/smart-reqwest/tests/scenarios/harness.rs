//! `smart_testkit::driver::Driver` for the async driver: each method runs the driver's call of
//! the same name to completion on one multi-thread tokio runtime kept for the test binary;
//! concurrent callers are tasks of that runtime.

use std::future::Future;
use std::sync::{Arc, OnceLock};

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
use smart_reqwest::{BackendServicesAuth, HttpClient, SmartClient};
use smart_testkit::driver::{ClientOptions, ClientSnapshot, Driver, HttpOptions};
use url::Url;

/// The runtime every call runs on (2 workers, like the machine). One for the whole binary:
/// the driver's connection pool and background renewals live on it.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

fn block_on<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// The async (reqwest + tokio) driver.
pub struct Reqwest;

impl Driver for Reqwest {
    const NAME: &'static str = "reqwest";
    const RENEWS_IN_BACKGROUND: bool = true;

    type Http = HttpClient;
    type Auth = BackendServicesAuth;
    type Client = SmartClient;

    fn http(options: HttpOptions) -> Result<HttpClient, Error> {
        smart_testkit::http_builder!(HttpClient::builder(), options).build()
    }

    fn send(http: &HttpClient, request: HttpRequest) -> Result<HttpResponse, Error> {
        block_on(http.send(request))
    }

    fn run<F: Flow + Send>(http: &HttpClient, flow: F) -> Result<F::Output, Error>
    where
        F::Output: Send,
    {
        block_on(http.run(flow))
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
        block_on(auth.token())
    }

    fn access_token(auth: &BackendServicesAuth) -> Result<AccessToken, Error> {
        block_on(auth.access_token())
    }

    fn authorization(auth: &BackendServicesAuth) -> Result<AuthorizationHeader, Error> {
        block_on(auth.authorization())
    }

    fn on_unauthorized(auth: &BackendServicesAuth) -> Result<(), Error> {
        auth.on_unauthorized()
    }

    fn concurrent_tokens(
        auth: &Arc<BackendServicesAuth>,
        callers: usize,
    ) -> Vec<Result<Arc<CachedToken>, Error>> {
        block_on(async {
            let barrier = Arc::new(tokio::sync::Barrier::new(callers));
            let tasks: Vec<_> = (0..callers)
                .map(|_| {
                    let auth = auth.clone();
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        auth.token().await
                    })
                })
                .collect();
            let mut results = Vec::with_capacity(callers);
            for t in tasks {
                results.push(t.await.expect("task"));
            }
            results
        })
    }

    fn discover(http: &HttpClient, fhir_base: &FhirBaseUrl) -> Result<Discovered, Error> {
        block_on(smart_reqwest::discover(http, fhir_base))
    }

    fn begin_launch(
        http: &HttpClient,
        app: &AppConfig,
        launch: Launch,
    ) -> Result<AuthorizationRequest, Error> {
        block_on(smart_reqwest::begin_launch(http, app, launch))
    }

    fn complete_launch(
        http: &HttpClient,
        app: &AppConfig,
        pending: PendingAuthorization,
        redirect_url: &str,
    ) -> Result<SmartClient, Error> {
        block_on(smart_reqwest::complete_launch(
            http,
            app,
            pending,
            redirect_url,
        ))
    }

    fn refresh_token(
        http: &HttpClient,
        app: &AppConfig,
        token_endpoint: &Url,
        refresh_token: &RefreshToken,
        scope: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        block_on(smart_reqwest::refresh_token(
            http,
            app,
            token_endpoint,
            refresh_token,
            scope,
        ))
    }

    fn introspect(
        http: &HttpClient,
        endpoint: &Url,
        token: &AccessToken,
        token_type_hint: Option<TokenTypeHint>,
        auth: IntrospectionAuth,
    ) -> Result<Introspection, Error> {
        block_on(smart_reqwest::introspect(
            http,
            endpoint,
            token,
            token_type_hint,
            auth,
        ))
    }

    fn revoke(
        http: &HttpClient,
        endpoint: &Url,
        token: &AccessToken,
        token_type_hint: Option<TokenTypeHint>,
        client_auth: &ClientAuth,
    ) -> Result<(), Error> {
        block_on(smart_reqwest::revoke(
            http,
            endpoint,
            token,
            token_type_hint,
            client_auth,
        ))
    }

    fn client(session: Session, options: ClientOptions<HttpClient>) -> Result<SmartClient, Error> {
        let b = smart_testkit::client_builder!(SmartClient::builder(session), options);
        block_on(b.build())
    }

    fn restore(
        app: &AppConfig,
        store: Arc<InMemoryTokenStore>,
        key: &str,
    ) -> Result<SmartClient, Error> {
        block_on(SmartClient::restore(app, store, key))
    }

    fn client_token(client: &SmartClient) -> Result<Arc<CachedToken>, Error> {
        block_on(client.token())
    }

    fn client_authorization(client: &SmartClient) -> Result<AuthorizationHeader, Error> {
        block_on(client.authorization())
    }

    fn client_refresh(
        client: &SmartClient,
        scope: Option<&str>,
    ) -> Result<Arc<CachedToken>, Error> {
        block_on(client.refresh(scope))
    }

    fn client_on_unauthorized(client: &SmartClient) -> Result<(), Error> {
        client.on_unauthorized()
    }

    fn client_verify_id_token(client: &SmartClient) -> Result<VerifiedIdTokenClaims, Error> {
        block_on(client.verify_id_token())
    }

    fn snapshot(client: &SmartClient) -> ClientSnapshot {
        smart_testkit::client_snapshot!(client)
    }
}
