//! The token lifecycle under load and faults, against [hostile](crate::hostile) loopback
//! servers: many callers on a failing, rate-limiting, slow, hanging or short-lived token
//! endpoint. Every assertion is on **counts** (requests the server read, callers that failed,
//! which token each caller got) or on the order and spacing of the server's recorded arrival
//! times, never on how long a caller took: the machine is shared and timings are noisy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::error::TransportErrorKind;
use smart_core::retry::RetryPolicy;
use smart_core::{CachedToken, ClientId, Error};
use url::Url;

use super::{es384_key, now};
use crate::driver::{Driver, HttpOptions};
use crate::hostile::{Behaviour, HostileServer, Response, RetryAfter};

/// Callers released at once in the scenarios below.
const CALLERS: usize = 64;

fn config(token_url: &str) -> BackendServicesConfig {
    BackendServicesConfig::new(ClientId::new("load-test"), "system/Patient.rs", es384_key())
        .with_smart_configuration(SmartConfiguration::new(Url::parse(token_url).unwrap()))
}

/// A backoff long enough (15–30 s after the first failure) that nothing in a scenario
/// outlasts it however slow the machine is.
fn long_backoff() -> RetryPolicy {
    RetryPolicy::default().with_backoff_millis(30_000, 60_000)
}

fn access(t: &CachedToken) -> &str {
    t.access_token.secret()
}

/// Sleep until the wall clock is past `t` (plus a little).
fn sleep_past(t: smart_core::UnixTime) {
    let left = now().until(t);
    std::thread::sleep(left + Duration::from_millis(20));
}

/// A cold cache, many callers, a token endpoint answering 500: every caller gets the same
/// error; the flight made exactly `max_attempts` (3) requests, never more than one at a time;
/// calls during the backoff that follows make no request.
pub fn many_callers_on_a_failing_endpoint_share_one_flight_and_its_error<D: Driver>() {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::text(500, "down"));
    let token_url = server.url_for("/token");
    let auth = Arc::new(D::backend(config(&token_url).with_retry_policy(long_backoff())).unwrap());
    let results = D::concurrent_tokens(&auth, CALLERS);
    let expected = Error::Http {
        url: token_url.clone(),
        status: 500,
    };
    let failed = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| *e == expected))
        .count();
    assert_eq!(
        failed,
        CALLERS,
        "{}: every caller gets the flight's error: {:?}",
        D::NAME,
        results
            .iter()
            .find(|r| !matches!(r, Err(e) if *e == expected))
    );
    assert_eq!(
        server.count("/token"),
        3,
        "{}: one flight, max_attempts requests",
        D::NAME
    );
    assert_eq!(server.max_concurrent("/token"), 1, "{}", D::NAME);
    // The backoff: more callers, no request.
    let again = D::concurrent_tokens(&auth, CALLERS);
    assert!(
        again
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| *e == expected))
    );
    for _ in 0..10 {
        assert_eq!(D::token(&auth).unwrap_err(), expected);
        assert_eq!(D::authorization(&auth).unwrap_err(), expected);
    }
    assert_eq!(
        server.count("/token"),
        3,
        "{}: no request during the backoff",
        D::NAME
    );
}

/// `429` with `Retry-After: 2`: within a flight the retry is sent no sooner than 2 s after the
/// refused request arrived; with retries disabled the flight fails at once, callers get the
/// error without a request until the 2 s have passed, and the next request arrives after them.
pub fn retry_after_2_means_no_request_for_2_seconds<D: Driver>() {
    let retry_after = || Behaviour::retry_after(429, RetryAfter::Seconds(2));
    // (a) Within the flight: the retry waits for Retry-After.
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Behaviour::fail_first_requests(1, retry_after(), Response::token("after-429", 3600)),
    );
    let auth = D::backend(config(&server.url_for("/token"))).unwrap();
    assert_eq!(access(&D::token(&auth).unwrap()), "after-429");
    let requests = server.requests_to("/token");
    assert_eq!(requests.len(), 2, "{}: the 429, then one retry", D::NAME);
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(
        gap >= Duration::from_millis(1_950),
        "{}: retried {gap:?} after a Retry-After of 2 s",
        D::NAME
    );

    // (b) One attempt per flight: the 429 ends the flight; Retry-After is the backoff.
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Behaviour::fail_first_requests(1, retry_after(), Response::token("after-backoff", 3600)),
    );
    let policy = RetryPolicy::default().with_max_attempts(1);
    let auth =
        Arc::new(D::backend(config(&server.url_for("/token")).with_retry_policy(policy)).unwrap());
    let first = D::concurrent_tokens(&auth, CALLERS);
    let refused = first
        .iter()
        .filter(|r| {
            matches!(r, Err(Error::OAuth(o))
                if o.status == Some(429) && o.error == "temporarily_unavailable")
        })
        .count();
    assert_eq!(refused, CALLERS, "{}: every caller gets the 429", D::NAME);
    assert_eq!(server.count("/token"), 1, "{}", D::NAME);
    // Ask until a token comes (bounded): every request but the first arrived ≥ 2 s after it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        match D::token(&auth) {
            Ok(t) => break t,
            Err(e) => assert!(
                matches!(&e, Error::OAuth(o) if o.status == Some(429)),
                "{}: {e:?}",
                D::NAME
            ),
        }
        assert!(
            Instant::now() < deadline,
            "{}: no token within 20 s",
            D::NAME
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(access(&token), "after-backoff");
    let requests = server.requests_to("/token");
    assert_eq!(
        requests.len(),
        2,
        "{}: the 429, then one request after the backoff",
        D::NAME
    );
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(
        gap >= Duration::from_millis(1_950),
        "{}: a request {gap:?} after a Retry-After of 2 s",
        D::NAME
    );
}

/// A door a server thread waits at until the test opens it (or a deadline passes).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn wait(&self, limit: Duration) {
        let guard = self.open.lock().unwrap();
        let _ = self
            .changed
            .wait_timeout_while(guard, limit, |open| !*open)
            .unwrap();
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// A token inside its skew window (still valid) and a renewal that does not answer until the
/// test lets it: no caller fails and no caller gets anything but the old token, except — with
/// a blocking driver, which renews in the calling thread — the one caller that renews, which
/// gets the new one. One renewal request in all.
pub fn a_slow_renewal_in_the_skew_window_fails_no_caller<D: Driver>() {
    let gate = Arc::new(Gate::default());
    let server = HostileServer::start();
    let g = gate.clone();
    server.route(
        "POST",
        "/token",
        Behaviour::sequence([
            // 8 s: renewed 4 s before expiry (half the lifetime), so usable 4 s past that.
            Behaviour::respond(Response::token("old", 8)),
            Behaviour::from_fn(move |_| {
                g.wait(Duration::from_secs(30));
                Response::token("new", 3600)
            }),
        ]),
    );
    let auth = D::backend(config(&server.url_for("/token"))).unwrap();
    let old = D::token(&auth).unwrap();
    assert_eq!(access(&old), "old");
    sleep_past(old.fresh_until());
    assert!(old.is_usable(now()), "still valid: inside the skew window");

    // With a blocking driver one caller renews (and waits for the gate); everyone else must
    // be done before the gate opens.
    let renewing_callers = usize::from(!D::RENEWS_IN_BACKGROUND);
    let done = AtomicUsize::new(0);
    let results: Vec<Result<Arc<CachedToken>, Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|_| {
                s.spawn(|| {
                    let r = D::token(&auth);
                    done.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while done.load(Ordering::SeqCst) < CALLERS - renewing_callers && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        gate.open();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed = results.iter().filter(|r| r.is_err()).count();
    let got = |name: &str| {
        results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|t| access(t) == name))
            .count()
    };
    assert_eq!(failed, 0, "{}: no caller fails", D::NAME);
    assert_eq!(
        (got("old"), got("new")),
        (CALLERS - renewing_callers, renewing_callers),
        "{}: callers get the old token while the renewal runs",
        D::NAME
    );
    // The renewal lands; one request for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while access(&D::token(&auth).unwrap()) != "new" {
        assert!(Instant::now() < deadline, "{}: no renewal", D::NAME);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.count("/token"),
        2,
        "{}: one renewal request",
        D::NAME
    );
    assert_eq!(server.max_concurrent("/token"), 1, "{}", D::NAME);
}

/// Tokens with `expires_in: 0` are reused for one backoff period: all the callers inside one
/// period cause one request, and the next period one more, not one per caller.
pub fn expires_in_0_is_one_request_per_backoff_period<D: Driver>() {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::token("zero", 0));
    let token_url = server.url_for("/token");

    // A long period (≥ 15 s): two waves of callers inside it, one request.
    let auth = Arc::new(D::backend(config(&token_url).with_retry_policy(long_backoff())).unwrap());
    for wave in 1..=2 {
        let results = D::concurrent_tokens(&auth, CALLERS);
        let ok = results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|t| access(t) == "zero"))
            .count();
        assert_eq!(ok, CALLERS, "{}: wave {wave}", D::NAME);
        assert_eq!(server.count("/token"), 1, "{}: wave {wave}", D::NAME);
    }

    // The default period (1 s): once it has passed, the next wave makes one more request.
    server.clear_records();
    let auth = Arc::new(D::backend(config(&token_url)).unwrap());
    let first = D::concurrent_tokens(&auth, CALLERS);
    assert!(first.iter().all(Result::is_ok), "{}", D::NAME);
    assert_eq!(server.count("/token"), 1, "{}", D::NAME);
    let reused_until = first
        .iter()
        .map(|r| r.as_ref().unwrap().fresh_until())
        .max()
        .unwrap();
    sleep_past(reused_until);
    let second = D::concurrent_tokens(&auth, CALLERS);
    assert!(second.iter().all(Result::is_ok), "{}", D::NAME);
    assert_eq!(
        server.count("/token"),
        2,
        "{}: one more request for the next period, not one per caller",
        D::NAME
    );
    assert_eq!(server.max_concurrent("/token"), 1, "{}", D::NAME);
}

/// A hanging token endpoint and many callers: one request; every caller gets the same
/// `TransportErrorKind::Timeout` error, with the driver's error kept as its `source()`; calls
/// during the backoff make no request.
pub fn a_timeout_under_many_callers_is_one_request_and_typed_for_all<D: Driver>() {
    use std::error::Error as _;
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::hang());
    let token_url = server.url_for("/token");
    let http = D::http(HttpOptions::default().timeout(Duration::from_millis(300))).unwrap();
    let auth = Arc::new(
        D::backend_with_client(
            config(&token_url).with_retry_policy(long_backoff()),
            http,
            Arc::new(SystemEntropy),
        )
        .unwrap(),
    );
    let results = D::concurrent_tokens(&auth, CALLERS);
    let mut timeouts = 0;
    for r in &results {
        let Err(e @ Error::Transport(t)) = r else {
            panic!("{}: expected a transport error, got {r:?}", D::NAME);
        };
        assert_eq!(t.kind, TransportErrorKind::Timeout, "{}: {t:?}", D::NAME);
        assert_eq!(t.url, token_url);
        assert!(
            e.source().is_some(),
            "{}: the driver's error is kept",
            D::NAME
        );
        timeouts += 1;
    }
    assert_eq!(timeouts, CALLERS);
    assert_eq!(
        server.count("/token"),
        1,
        "{}: a timeout is not retried",
        D::NAME
    );
    let again = D::token(&auth).unwrap_err();
    assert!(
        again.source().is_some(),
        "{}: kept in the backoff too",
        D::NAME
    );
    assert_eq!(again, *results[0].as_ref().unwrap_err());
    assert_eq!(
        server.count("/token"),
        1,
        "{}: none during the backoff",
        D::NAME
    );
}
