//! Hostile inputs for the blocking driver: remote signers that misbehave, hostile token
//! endpoints (Retry-After, expires_in, echoed bodies), and the warm path under replacement.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smart_core::assertion::{AssertionSigner, JwsAlgorithm, RemoteSigner, SignFuture};
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::retry::RetryPolicy;
use smart_core::{ClientId, Error};
use smart_testkit::hostile::{Behaviour, HostileServer, Response};
use smart_ureq::BackendServicesAuth;
use url::Url;

fn key() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(JwsAlgorithm::Es384, Some("k1"), &SystemEntropy).unwrap())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Good,
    PanicInSign,
    PanicInFuture,
    Short,
    Garbage96,
    ErrWithInput,
}

#[derive(Debug)]
struct Evil {
    key: Arc<SigningKey>,
    mode: Mutex<Mode>,
    calls: AtomicUsize,
}

impl Evil {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            key: key(),
            mode: Mutex::new(mode),
            calls: AtomicUsize::new(0),
        })
    }
    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }
}

impl RemoteSigner for Evil {
    fn algorithm(&self) -> JwsAlgorithm {
        JwsAlgorithm::Es384
    }
    fn key_id(&self) -> &str {
        "k1"
    }
    fn sign(&self, input: Vec<u8>) -> SignFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        let key = self.key.clone();
        if mode == Mode::PanicInSign {
            panic!("signer exploded synchronously");
        }
        Box::pin(async move {
            match mode {
                Mode::PanicInFuture => panic!("signer exploded in its future"),
                Mode::Short => Ok(vec![1; 10]),
                Mode::Garbage96 => Ok(vec![0xff; 96]),
                Mode::ErrWithInput => Err(Error::Key(smart_core::error::KeyError::new(format!(
                    "KMS refused input {}",
                    String::from_utf8_lossy(&input)
                )))),
                _ => key.sign(&input, &SystemEntropy),
            }
        })
    }
}

fn token_server() -> HostileServer {
    let s = HostileServer::start();
    let n = Arc::new(AtomicUsize::new(0));
    s.route(
        "POST",
        "/token",
        Behaviour::from_fn(move |_| {
            let i = n.fetch_add(1, Ordering::SeqCst);
            Response::token(&format!("tok-{i}"), 3600)
        }),
    );
    s
}

fn remote_auth(server: &HostileServer, signer: Arc<Evil>) -> BackendServicesAuth {
    let cfg = BackendServicesConfig::new_with_remote_signer(
        ClientId::new("attack"),
        "system/Patient.rs",
        signer,
    )
    .with_smart_configuration(SmartConfiguration::new(
        Url::parse(&server.url_for("/token")).unwrap(),
    ))
    .with_retry_policy(RetryPolicy::none());
    BackendServicesAuth::new(cfg).unwrap()
}

/// PINS (expected to pass): a panicking remote signer (in `sign` or in its future) panics
/// only the calling thread; the source is not stuck and the next caller gets a token.
#[test]
fn panicking_remote_signer_leaves_the_source_usable() {
    for mode in [Mode::PanicInSign, Mode::PanicInFuture] {
        let server = token_server();
        let signer = Evil::new(mode);
        let auth = Arc::new(remote_auth(&server, signer.clone()));
        // Another thread waits on the flight while the holder panics.
        let a2 = auth.clone();
        let r = catch_unwind(AssertUnwindSafe(|| auth.authorization()));
        assert!(r.is_err(), "{mode:?}: panic propagates to the caller");
        signer.set(Mode::Good);
        let started = Instant::now();
        let h = std::thread::spawn(move || a2.authorization())
            .join()
            .expect("no panic in the next caller");
        assert!(h.is_ok(), "{mode:?}: {h:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{mode:?}: not stuck"
        );
        assert_eq!(server.count("/token"), 1);
    }
}

/// PINS: a panicking signer while another thread waits for the flight: the waiter is not
/// left blocked forever.
#[test]
fn waiter_is_released_when_the_signing_holder_panics() {
    let server = token_server();
    #[derive(Debug)]
    struct SlowPanic(AtomicBool);
    impl RemoteSigner for SlowPanic {
        fn algorithm(&self) -> JwsAlgorithm {
            JwsAlgorithm::Es384
        }
        fn key_id(&self) -> &str {
            "k1"
        }
        fn sign(&self, input: Vec<u8>) -> SignFuture {
            let first = !self.0.swap(true, Ordering::SeqCst);
            Box::pin(async move {
                if first {
                    std::thread::sleep(Duration::from_millis(300));
                    panic!("late panic");
                }
                key().sign(&input, &SystemEntropy)
            })
        }
    }
    let cfg = BackendServicesConfig::new_with_remote_signer(
        ClientId::new("attack"),
        "system/Patient.rs",
        Arc::new(SlowPanic(AtomicBool::new(false))),
    )
    .with_smart_configuration(SmartConfiguration::new(
        Url::parse(&server.url_for("/token")).unwrap(),
    ))
    .with_retry_policy(RetryPolicy::none());
    let auth = Arc::new(BackendServicesAuth::new(cfg).unwrap());
    let a1 = auth.clone();
    let holder = std::thread::spawn(move || a1.authorization());
    std::thread::sleep(Duration::from_millis(100));
    let a2 = auth.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(a2.authorization().map(|h| h.secret().to_owned()));
    });
    assert!(holder.join().is_err(), "the holder panicked");
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiter must not hang after the holder's panic");
    assert!(got.is_ok(), "{got:?}");
}

/// PINS: wrong-length / garbage signatures are typed key errors and nothing is sent.
#[test]
fn garbage_remote_signatures_are_typed_key_errors() {
    for mode in [Mode::Short, Mode::Garbage96] {
        let server = token_server();
        let auth = remote_auth(&server, Evil::new(mode));
        let e = auth.authorization().unwrap_err();
        assert!(matches!(e, Error::Key(_)), "{mode:?}: {e:?}");
        assert_eq!(server.count("/token"), 0, "{mode:?}");
    }
}

/// OBSERVE: a signer error that quotes the signing input is passed through unchanged (the
/// input holds no secret; this only documents it).
#[test]
fn signer_error_is_passed_through() {
    let server = token_server();
    let auth = remote_auth(&server, Evil::new(Mode::ErrWithInput));
    let e = auth.authorization().unwrap_err();
    assert!(matches!(e, Error::Key(_)), "{e:?}");
    assert_eq!(server.count("/token"), 0);
}

fn local_auth(server: &HostileServer, policy: RetryPolicy) -> BackendServicesAuth {
    let cfg = BackendServicesConfig::new(ClientId::new("attack"), "system/Patient.rs", key())
        .with_smart_configuration(SmartConfiguration::new(
            Url::parse(&server.url_for("/token")).unwrap(),
        ))
        .with_retry_policy(policy);
    BackendServicesAuth::new(cfg).unwrap()
}

/// PINS: hostile Retry-After values never panic and never make a call wait unboundedly.
#[test]
fn hostile_retry_after_values_are_bounded() {
    for v in [
        "99999999999999999999999",
        "18446744073709551615",
        "-1",
        "1.5",
        "1e9",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Mon, 32 Foo 2020 99:99:99 GMT",
        "",
        "\u{00e9}t\u{00e9}",
    ] {
        let server = HostileServer::start();
        server.route(
            "POST",
            "/token",
            Response::json(503, r#"{"error":"temporarily_unavailable"}"#).header("Retry-After", v),
        );
        let auth = local_auth(&server, RetryPolicy::default());
        let started = Instant::now();
        let e = auth.authorization().unwrap_err();
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(12),
            "Retry-After {v:?}: took {took:?}"
        );
        let _ = e;
        // During the backoff, a caller fails fast.
        let started = Instant::now();
        let _ = auth.authorization().unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "Retry-After {v:?}"
        );
    }
}

/// PINS: a 503/429 body echoing the request never puts the assertion into the error.
#[test]
fn echoed_request_body_is_scrubbed_from_errors() {
    for status in [429, 503, 400] {
        let server = HostileServer::start();
        server.route("POST", "/token", Behaviour::echo_with_status(status));
        let auth = local_auth(&server, RetryPolicy::none());
        let e = auth.authorization().unwrap_err();
        let req = server.last_request("/token").unwrap();
        let assertion = req.form_value("client_assertion").unwrap();
        let sig = assertion.rsplit('.').next().unwrap();
        for shown in [format!("{e}"), format!("{e:#}"), format!("{e:?}")] {
            assert!(!shown.contains(sig), "{status}: signature leaked: {shown}");
            assert!(
                !shown.contains(&assertion[..40]),
                "{status}: assertion leaked: {shown}"
            );
        }
    }
}

/// PINS: expires_in extremes parse or fail typed; no panic, no unbounded cache.
#[test]
fn expires_in_extremes() {
    for v in [
        "0",
        "1",
        "18446744073709551615",
        "99999999999999999999999",
        "-1",
        "1e300",
        "3600.7",
        "\"3600\"",
        "null",
        "-0",
        "1.8e19",
    ] {
        let server = HostileServer::start();
        server.route(
            "POST",
            "/token",
            Response::json(
                200,
                format!(r#"{{"access_token":"x","token_type":"Bearer","expires_in":{v}}}"#),
            ),
        );
        let auth = local_auth(&server, RetryPolicy::none());
        let r = catch_unwind(AssertUnwindSafe(|| auth.token()));
        let r = r.unwrap_or_else(|_| panic!("expires_in {v}: panicked"));
        match r {
            Ok(t) => eprintln!("expires_in {v}: ok, expires_at {:?}", t.expires_at),
            Err(e) => eprintln!("expires_in {v}: {e}"),
        }
    }
}

/// Warm path under replacement: once `on_rejected(h)` has returned, no call that starts
/// afterwards, on any thread, may be handed `h` again.
#[test]
fn no_thread_gets_a_rejected_header_after_on_rejected_returned() {
    let server = token_server();
    let auth = Arc::new(local_auth(&server, RetryPolicy::none()));
    let rejected: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let violations = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (auth, rejected, stop, violations) = (
            auth.clone(),
            rejected.clone(),
            stop.clone(),
            violations.clone(),
        );
        readers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let before: HashSet<String> = rejected.lock().unwrap().clone();
                let h = auth.authorization().unwrap();
                if before.contains(h.secret()) {
                    violations.fetch_add(1, Ordering::SeqCst);
                }
                n += 1;
            }
            n
        }));
    }
    for _ in 0..200 {
        let h = auth.authorization().unwrap();
        auth.on_rejected(&h).unwrap();
        rejected.lock().unwrap().insert(h.secret().to_owned());
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::SeqCst);
    let calls: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "stale headers among {calls} calls"
    );
    let _ = Arc::new(key()) as Arc<dyn AssertionSigner + 'static>;
}
