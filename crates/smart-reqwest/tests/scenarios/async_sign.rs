//! A remote signer under the async driver: the signature is awaited on the calling task, so a
//! current-thread runtime keeps running its other tasks while the signer works, and the token
//! source's lock is free meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smart_core::ClientId;
use smart_core::assertion::{AssertionSigner, JwsAlgorithm, RemoteSigner, SignFuture};
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_reqwest::BackendServicesAuth;
use smart_testkit::hostile::{HostileServer, Response};
use smart_testkit::scenarios::{jwt_claims, key};
use tokio::sync::Notify;

/// A signer that says when it is asked, then waits to be released before signing.
#[derive(Debug)]
struct Gated {
    key: Arc<SigningKey>,
    asked: Arc<Notify>,
    release: Arc<Notify>,
    calls: AtomicUsize,
}

impl RemoteSigner for Gated {
    fn algorithm(&self) -> JwsAlgorithm {
        self.key.algorithm()
    }
    fn key_id(&self) -> &str {
        self.key.kid()
    }
    fn sign(&self, input: Vec<u8>) -> SignFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (key, asked, release) = (self.key.clone(), self.asked.clone(), self.release.clone());
        Box::pin(async move {
            asked.notify_one();
            release.notified().await;
            key.sign(&input, &SystemEntropy)
        })
    }
}

async fn pending_signature_scenario() -> Result<(), String> {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::token("T1", 3600));
    let signer = Arc::new(Gated {
        key: Arc::new(key(JwsAlgorithm::Es384)),
        asked: Arc::new(Notify::new()),
        release: Arc::new(Notify::new()),
        calls: AtomicUsize::new(0),
    });
    let config = BackendServicesConfig::new_with_remote_signer(
        ClientId::new("gated"),
        "system/Patient.rs",
        signer.clone(),
    )
    .with_smart_configuration(SmartConfiguration::new(
        url::Url::parse(&server.url_for("/token")).unwrap(),
    ));
    let auth = Arc::new(BackendServicesAuth::new(config).map_err(|e| e.to_string())?);

    let holder = tokio::spawn({
        let auth = auth.clone();
        async move { auth.token().await }
    });
    signer.asked.notified().await;

    // The signature is pending. The lock is free: a call that takes it returns at once.
    auth.on_unauthorized().map_err(|e| e.to_string())?;
    // Another caller joins the same flight and waits for it.
    let waiter = tokio::spawn({
        let auth = auth.clone();
        async move { auth.token().await }
    });
    // The runtime (one thread) keeps running other tasks: timers fire, tasks finish.
    let ticks = tokio::spawn(async {
        let mut n = 0;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            n += 1;
        }
        n
    });
    assert_eq!(ticks.await.map_err(|e| e.to_string())?, 5);
    tokio::task::yield_now().await;
    assert!(!holder.is_finished() && !waiter.is_finished());
    assert_eq!(
        server.count("/token"),
        0,
        "nothing is sent before the signature"
    );

    signer.release.notify_one();
    let a = holder
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let b = waiter
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    assert_eq!(a.access_token.secret(), "T1");
    assert_eq!(b.access_token, a.access_token);
    assert_eq!(
        signer.calls.load(Ordering::SeqCst),
        1,
        "one flight, one signature"
    );
    let requests = server.requests_to("/token");
    assert_eq!(requests.len(), 1);
    let jwt = requests[0].form_value("client_assertion").unwrap();
    let claims = jwt_claims(&jwt);
    assert_eq!(claims["iss"], "gated");
    assert_eq!(claims["aud"], server.url_for("/token"));
    Ok(())
}

#[test]
fn a_pending_signature_blocks_neither_a_current_thread_runtime_nor_the_lock() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(pending_signature_scenario()));
    });
    // A driver that blocked the runtime's only thread while signing would never get here.
    let outcome = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the current-thread runtime made progress while the signer waited");
    outcome.unwrap();
}
