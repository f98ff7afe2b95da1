//! Remote signing against the real local sandbox: a [`KmsSigner`] keeps its key in a thread of
//! its own (an in-process stand-in for a KMS or HSM) and answers each signing request through a
//! future, so every `private_key_jwt` request — Backend Services tokens, the code exchange, a
//! session's refresh, introspection, revocation — goes through the drivers' `Action::Sign`
//! path. The sandbox verifies every assertion against the registered public key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use smart_core::assertion::{AssertionSigner, JwsAlgorithm, RemoteSigner, SignFuture};
use smart_core::backend::BackendServicesConfig;
use smart_core::client_auth::ClientAuth;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::introspection::{IntrospectionAuth, TokenTypeHint};
use smart_core::jwk::SigningKey;
use smart_core::launch::Launch;
use smart_core::{ClientId, Error};

use super::{key, read_patient, sandbox_fhir_base};
use crate as kit;
use crate::app::{REDIRECT, REGISTERED_SCOPE, STANDALONE_SCOPE, app, fhir_base};
use crate::driver::Driver;

/// What the signing thread is asked to do.
struct Job {
    input: Vec<u8>,
    reply: Arc<Slot>,
}

/// The signer's answer.
type Signature = Result<Vec<u8>, Error>;

/// A one-shot channel from the signing thread to the future: the answer, and the waker of
/// whoever polls for it.
#[derive(Default)]
struct Slot(Mutex<(Option<Signature>, Option<Waker>)>);

/// The future [`KmsSigner::sign`] returns.
struct Reply(Arc<Slot>);

impl std::future::Future for Reply {
    type Output = Signature;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        match s.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Whether the signing thread holds its answers back, and how many jobs are waiting.
#[derive(Default)]
struct HoldState {
    held: bool,
    waiting: usize,
}

/// Holds a [`KmsSigner`]'s answers back until [`release`](Self::release) (a slow KMS).
#[derive(Clone, Default)]
pub struct Hold(Arc<(Mutex<HoldState>, Condvar)>);

impl Hold {
    /// Wait until the signing thread has a job it is holding back; whether it did within
    /// `timeout`.
    pub fn wait_until_signing(&self, timeout: Duration) -> bool {
        let (m, cv) = &*self.0;
        let s = m.lock().unwrap_or_else(|p| p.into_inner());
        let s = cv
            .wait_timeout_while(s, timeout, |s| s.waiting == 0)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        s.waiting > 0
    }

    /// Let every held and future answer through.
    pub fn release(&self) {
        let (m, cv) = &*self.0;
        m.lock().unwrap_or_else(|p| p.into_inner()).held = false;
        cv.notify_all();
    }

    fn pass(&self) {
        let (m, cv) = &*self.0;
        let mut s = m.lock().unwrap_or_else(|p| p.into_inner());
        s.waiting += 1;
        cv.notify_all();
        while s.held {
            s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.waiting -= 1;
    }
}

/// A [`RemoteSigner`] whose key lives in a thread of its own: [`sign`](RemoteSigner::sign)
/// sends the signing input to that thread and returns a future that the thread completes
/// (waking whichever executor polls it). Works with any driver: tokio tasks, or the blocking
/// driver's own executor.
pub struct KmsSigner {
    alg: JwsAlgorithm,
    kid: String,
    jobs: Mutex<Sender<Job>>,
    signed: Arc<AtomicUsize>,
}

impl std::fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KmsSigner {
    /// Move `key` into a new signing thread.
    pub fn spawn(key: SigningKey) -> Arc<Self> {
        Self::spawn_with(key, None)
    }

    /// As [`spawn`](Self::spawn), with every answer held back until `hold` is released.
    pub fn spawn_held(key: SigningKey) -> (Arc<Self>, Hold) {
        let hold = Hold::default();
        hold.0.0.lock().unwrap_or_else(|p| p.into_inner()).held = true;
        (Self::spawn_with(key, Some(hold.clone())), hold)
    }

    fn spawn_with(key: SigningKey, hold: Option<Hold>) -> Arc<Self> {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = channel();
        let signed = Arc::new(AtomicUsize::new(0));
        let (alg, kid) = (key.algorithm(), key.key_id().to_owned());
        let count = signed.clone();
        std::thread::spawn(move || {
            for job in rx {
                if let Some(h) = &hold {
                    h.pass();
                }
                let result = key.sign(&job.input, &SystemEntropy);
                count.fetch_add(1, Ordering::SeqCst);
                let waker = {
                    let mut s = job.reply.0.lock().unwrap_or_else(|p| p.into_inner());
                    s.0 = Some(result);
                    s.1.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            }
        });
        Arc::new(Self {
            alg,
            kid,
            jobs: Mutex::new(tx),
            signed,
        })
    }

    /// How many signatures the thread has made.
    pub fn signatures(&self) -> usize {
        self.signed.load(Ordering::SeqCst)
    }
}

impl RemoteSigner for KmsSigner {
    fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    fn key_id(&self) -> &str {
        &self.kid
    }

    fn sign(&self, signing_input: Vec<u8>) -> SignFuture {
        let reply = Arc::new(Slot::default());
        let job = Job {
            input: signing_input,
            reply: reply.clone(),
        };
        if self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .is_err()
        {
            return Box::pin(std::future::ready(Err(Error::Key(
                smart_core::error::KeyError::new("the signing thread is gone"),
            ))));
        }
        Box::pin(Reply(reply))
    }
}

fn remote_config(client_id: &str, signer: Arc<KmsSigner>) -> BackendServicesConfig {
    BackendServicesConfig::new_with_remote_signer(
        ClientId::new(client_id),
        "system/Patient.rs",
        signer,
    )
    .with_fhir_base(sandbox_fhir_base())
}

/// Backend Services with a remote signer, ES384 and RS384: a real token from the sandbox and
/// a FHIR read with it; a 401 makes the next call sign and fetch a new one.
pub fn remote_signer_backend_services_token_and_fhir_read<D: Driver>() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let k = key(alg);
        let client_id = kit::register_backend_client(&k, "system/Patient.rs", None);
        let signer = KmsSigner::spawn(k);
        let auth = D::backend(remote_config(&client_id, signer.clone())).unwrap();
        let token = D::token(&auth).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(token.scope.as_deref(), Some("system/Patient.rs"));
        assert_eq!(
            signer.signatures(),
            1,
            "{alg:?}: one assertion signed remotely"
        );
        let header = D::authorization(&auth).unwrap();
        let (status, body) = kit::fhir_get("Patient/123", header.secret());
        assert_eq!(status, 200, "{alg:?}: {body}");
        assert_eq!(D::access_token(&auth).unwrap(), token.access_token);
        assert_eq!(signer.signatures(), 1, "a cached token needs no signature");

        D::on_unauthorized(&auth).unwrap();
        let second = D::token(&auth).unwrap();
        assert_ne!(second.access_token, token.access_token);
        assert_eq!(signer.signatures(), 2);
        assert_eq!(kit::token_requests(&client_id), 2);
    }
}

/// While the remote signer holds its answer back, the token source's lock is free: another
/// caller's `on_unauthorized` (which takes the lock) returns at once, and other callers wait
/// for the one flight; once the signer answers, every caller gets the same token from one
/// token request.
pub fn a_slow_remote_signer_does_not_hold_the_token_source_lock<D: Driver>() {
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::register_backend_client(&k, "system/Patient.rs", None);
    let (signer, hold) = KmsSigner::spawn_held(k);
    let auth = Arc::new(D::backend(remote_config(&client_id, signer.clone())).unwrap());

    let callers: Vec<_> = (0..3)
        .map(|_| {
            let auth = auth.clone();
            std::thread::spawn(move || D::token(&auth))
        })
        .collect();
    assert!(
        hold.wait_until_signing(Duration::from_secs(20)),
        "the signer was asked"
    );
    // The signature is pending: the lock must be free.
    let started = Instant::now();
    let (tx, rx) = channel();
    let a = auth.clone();
    std::thread::spawn(move || {
        let _ = tx.send(D::on_unauthorized(&a));
    });
    let locked = rx.recv_timeout(Duration::from_secs(5));
    assert!(
        matches!(locked, Ok(Ok(()))),
        "on_unauthorized while signing: {locked:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(signer.signatures(), 0, "still held back");
    assert_eq!(
        kit::token_requests(&client_id),
        0,
        "nothing sent before the signature"
    );

    hold.release();
    let tokens: Vec<_> = callers
        .into_iter()
        .map(|c| c.join().unwrap().unwrap())
        .collect();
    assert!(
        tokens
            .iter()
            .all(|t| t.access_token == tokens[0].access_token)
    );
    assert_eq!(signer.signatures(), 1, "one flight, one signature");
    assert_eq!(kit::token_requests(&client_id), 1);
}

/// An App Launch client whose key is behind a remote signer: the code exchange, a refresh,
/// introspection and revocation each sign an assertion remotely, and the sandbox accepts them.
pub fn remote_signer_app_launch_exchange_refresh_introspect_revoke<D: Driver>() {
    let http = D::default_http();
    let k = key(JwsAlgorithm::Es384);
    let client_id = kit::unique("app");
    kit::register_client(&serde_json::json!({
        "client_id": client_id,
        "redirect_uris": ["http://127.0.0.1/callback"],
        "scope": REGISTERED_SCOPE,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": k.public_jwks(),
    }));
    let signer = KmsSigner::spawn(k);
    let app = app(
        ClientAuth::asymmetric_remote(&client_id, signer.clone()),
        STANDALONE_SCOPE,
    );

    let req = D::begin_launch(&http, &app, Launch::standalone(fhir_base())).unwrap();
    let cb = kit::browser_until(req.url.as_str(), REDIRECT, None);
    let client = D::complete_launch(&http, &app, req.pending, &cb).unwrap();
    assert_eq!(signer.signatures(), 1, "the code exchange");
    let (status, body) = read_patient::<D>(&client);
    assert_eq!(status, 200, "{body}");

    let first = D::client_token(&client).unwrap();
    let refreshed = D::client_refresh(&client, None).unwrap();
    assert_ne!(refreshed.access_token, first.access_token);
    assert_eq!(signer.signatures(), 2, "the refresh");
    assert_eq!(kit::token_requests(&client_id), 2);

    let d = D::discover(&http, &fhir_base()).unwrap();
    let introspection = d.config.introspection_endpoint.clone().unwrap();
    let revocation = d.config.revocation_endpoint.clone().unwrap();
    let info = D::introspect(
        &http,
        &introspection,
        &refreshed.access_token,
        Some(TokenTypeHint::AccessToken),
        IntrospectionAuth::Client(app.client_auth.clone()),
    )
    .unwrap();
    assert!(info.active);
    assert_eq!(info.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(signer.signatures(), 3, "the introspection");

    D::revoke(
        &http,
        &revocation,
        &refreshed.access_token,
        Some(TokenTypeHint::AccessToken),
        &app.client_auth,
    )
    .unwrap();
    assert_eq!(signer.signatures(), 4, "the revocation");
    let (status, _) = kit::fhir_get("Patient/123", refreshed.authorization().secret());
    assert_eq!(status, 401, "revoked");
}

/// A signer that never answers: the driver stops waiting at the request's `sign_by` and the
/// call fails with a typed key error, without any request; during the backoff that follows,
/// callers get the same error at once.
pub fn a_remote_signer_that_never_answers_times_out_at_its_deadline<D: Driver>() {
    #[derive(Debug)]
    struct Silent;
    impl RemoteSigner for Silent {
        fn algorithm(&self) -> JwsAlgorithm {
            JwsAlgorithm::Es384
        }
        fn key_id(&self) -> &str {
            "silent"
        }
        fn sign(&self, _: Vec<u8>) -> SignFuture {
            Box::pin(std::future::pending())
        }
    }
    let config = BackendServicesConfig::new_with_remote_signer(
        ClientId::new("silent"),
        "system/Patient.rs",
        Arc::new(Silent),
    )
    // Never contacted: nothing is sent without a signature.
    .with_smart_configuration(SmartConfiguration::new(
        url::Url::parse("http://127.0.0.1:9/token").unwrap(),
    ))
    // sign_by = exp − min(60, lifetime / 2): 1 s after the claims are fixed.
    .with_assertion_lifetime_secs(2);
    let auth = D::backend(config).unwrap();
    let started = Instant::now();
    let err = D::token(&auth).unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(&err, Error::Key(k) if k.message.contains("gave no signature within 1 s")),
        "{}: {err}",
        D::NAME
    );
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    let started = Instant::now();
    assert_eq!(
        D::token(&auth).unwrap_err(),
        err,
        "the backoff answers at once"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
}
