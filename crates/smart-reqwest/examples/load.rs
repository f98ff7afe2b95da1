//! Load figures for the async driver: 1,000 tasks calling `BackendServicesAuth::token()` at
//! once against a hostile loopback token endpoint, in four situations. Prints a Markdown
//! table: requests the endpoint saw, callers' latency (p50/p99), callers that failed.
//!
//! | scenario | token endpoint | what the callers do |
//! |---|---|---|
//! | `a-500-for-8s` | 500 for 8 s from the first request, then tokens | each calls until it gets a token (100 ms pause after an error; 60 s limit) |
//! | `b-hang` | never answers; client timeout 5 s | one call each |
//! | `c-slow-renewal` | 3 s per answer; a still-valid token is cached inside the skew window | one call each |
//! | `d-expires-in-0` | tokens with `expires_in: 0` | a call every 10 ms each, for 10 s |
//!
//! `cargo run --release -p smart-reqwest --example load_async [-- SCENARIO…] [--callers N]`
//!
//! Not a test and not a benchmark: figures for a note (the machine's load changes them). The
//! server is on 127.0.0.1 only; every loop is bounded in count and time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::{SystemEntropy, default_entropy};
use smart_core::jwk::SigningKey;
use smart_core::{ClientId, Error};
use smart_reqwest::{BackendServicesAuth, HttpClient};
use smart_testkit::hostile::{Behaviour, HostileServer, Response};
use smart_testkit::load_report::{Row, Wave, arrivals, fmt_d, percentile, print_header, print_row};

fn auth_for(
    server: &HostileServer,
    timeout: Option<Duration>,
) -> Result<Arc<BackendServicesAuth>, Error> {
    let key = SigningKey::generate(
        smart_core::assertion::JwsAlgorithm::Es384,
        None,
        &SystemEntropy,
    )?;
    let url =
        url::Url::parse(&server.url_for("/token")).map_err(|e| Error::Config(e.to_string()))?;
    let config =
        BackendServicesConfig::new(ClientId::new("load"), "system/Patient.rs", Arc::new(key))
            .with_smart_configuration(SmartConfiguration::new(url));
    let mut http = HttpClient::builder();
    if let Some(t) = timeout {
        http = http.timeout(t);
    }
    Ok(Arc::new(BackendServicesAuth::with_client(
        config,
        http.build()?,
        default_entropy(),
    )?))
}

/// `callers` tasks released together, each calling once.
async fn one_call_each(auth: &Arc<BackendServicesAuth>, callers: usize) -> Wave {
    let barrier = Arc::new(tokio::sync::Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let auth = auth.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let start = Instant::now();
                let r = auth.token().await;
                let old = r.as_ref().is_ok_and(|t| t.access_token.secret() == "old");
                (start.elapsed(), r.is_err(), old)
            })
        })
        .collect();
    let mut wave = Wave {
        latencies: Vec::with_capacity(callers),
        failed: 0,
        got_old: 0,
    };
    for t in tasks {
        let (d, err, old) = t.await.expect("task");
        wave.latencies.push(d);
        wave.failed += usize::from(err);
        wave.got_old += usize::from(old);
    }
    wave.latencies.sort();
    wave
}

async fn a_500_for_8s(callers: usize) -> Result<Row, Error> {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Behaviour::fail_for(
            Duration::from_secs(8),
            Response::text(500, "down"),
            Response::token("ok", 3600),
        ),
    );
    let auth = auth_for(&server, None)?;
    let barrier = Arc::new(tokio::sync::Barrier::new(callers));
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let auth = auth.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut calls = Vec::new();
                let mut errors = 0;
                loop {
                    let start = Instant::now();
                    let r = auth.token().await;
                    calls.push(start.elapsed());
                    match r {
                        Ok(_) => return (calls, errors, Some(Instant::now())),
                        Err(_) if Instant::now() >= deadline => return (calls, errors + 1, None),
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut served = Vec::new();
    let (mut failed_calls, mut never) = (0, 0);
    for t in tasks {
        let (calls, errors, got) = t.await.expect("task");
        latencies.extend(calls);
        failed_calls += errors;
        match got {
            Some(at) => served.push(at - started),
            None => never += 1,
        }
    }
    latencies.sort();
    served.sort();
    Ok(Row {
        scenario: "a-500-for-8s",
        requests: server.count("/token"),
        calls: latencies.len(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        failed_calls,
        callers_failed: never,
        note: format!(
            "time to a token p50 {} / p99 {}; request arrivals (s): {}",
            fmt_d(percentile(&served, 50)),
            fmt_d(percentile(&served, 99)),
            arrivals(&server)
        ),
    })
}

async fn b_hang(callers: usize) -> Result<Row, Error> {
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::hang());
    let auth = auth_for(&server, Some(Duration::from_secs(5)))?;
    let first = one_call_each(&auth, callers).await;
    let requests = server.count("/token");
    // During the backoff that follows: the same error at once, no request.
    let again = one_call_each(&auth, callers).await;
    Ok(Row {
        scenario: "b-hang (timeout 5 s)",
        requests,
        calls: first.latencies.len(),
        p50: percentile(&first.latencies, 50),
        p99: percentile(&first.latencies, 99),
        failed_calls: first.failed,
        callers_failed: first.failed,
        note: format!(
            "a second wave during the backoff: {} failed, p50 {} / p99 {}, {} more requests",
            again.failed,
            fmt_d(percentile(&again.latencies, 50)),
            fmt_d(percentile(&again.latencies, 99)),
            server.count("/token") - requests
        ),
    })
}

async fn c_slow_renewal(callers: usize) -> Result<Row, Error> {
    let server = HostileServer::start();
    // 10 s tokens: renewed 5 s before expiry (half the lifetime), so still valid for 5 s
    // inside the window; the renewal takes 3 s.
    server.route(
        "POST",
        "/token",
        Behaviour::sequence([
            Behaviour::respond(Response::token("old", 10)),
            Behaviour::delay(Duration::from_secs(3), Response::token("new", 3600)),
        ]),
    );
    let auth = auth_for(&server, None)?;
    let old = auth.token().await?;
    let wait = smart_core::UnixTime::from(std::time::SystemTime::now()).until(old.fresh_until());
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    let wave = one_call_each(&auth, callers).await;
    // The renewal answers 3 s after it was sent.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = auth.token().await?;
    Ok(Row {
        scenario: "c-slow-renewal (3 s) in the skew window",
        requests: server.count("/token") - 1,
        calls: wave.latencies.len(),
        p50: percentile(&wave.latencies, 50),
        p99: percentile(&wave.latencies, 99),
        failed_calls: wave.failed,
        callers_failed: wave.failed,
        note: format!(
            "renewal requests only (the first token not counted); {} callers got the old token; 4 s later the token is `{}`",
            wave.got_old,
            after.access_token.secret()
        ),
    })
}

async fn d_expires_in_0(callers: usize) -> Result<Row, Error> {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::token("zero", 0));
    let auth = auth_for(&server, None)?;
    let run_for = Duration::from_secs(10);
    let barrier = Arc::new(tokio::sync::Barrier::new(callers));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let auth = auth.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let end = Instant::now() + run_for;
                let mut calls = Vec::new();
                let mut errors = 0;
                while Instant::now() < end {
                    let start = Instant::now();
                    errors += usize::from(auth.token().await.is_err());
                    calls.push(start.elapsed());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (calls, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (calls, errors) = t.await.expect("task");
        latencies.extend(calls);
        failed += errors;
    }
    latencies.sort();
    let requests = server.count("/token");
    Ok(Row {
        scenario: "d-expires-in-0 (10 s of load)",
        requests,
        calls: latencies.len(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        failed_calls: failed,
        callers_failed: failed,
        note: format!(
            "{:.2} requests/s; request arrivals (s): {}",
            requests as f64 / run_for.as_secs_f64(),
            arrivals(&server)
        ),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut callers = 1_000;
    let mut only = Vec::new();
    while let Some(a) = args.next() {
        if a == "--callers" {
            callers = args.next().ok_or("--callers N")?.parse()?;
        } else {
            only.push(a);
        }
    }
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.starts_with(o.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("reqwest driver, {callers} tasks on a 2-worker runtime\n");
    print_header();
    for (name, f) in [("a", 0usize), ("b", 1), ("c", 2), ("d", 3)] {
        if !wanted(name) {
            continue;
        }
        let row = rt.block_on(async {
            match f {
                0 => a_500_for_8s(callers).await,
                1 => b_hang(callers).await,
                2 => c_slow_renewal(callers).await,
                _ => d_expires_in_0(callers).await,
            }
        })?;
        print_row(&row);
    }
    Ok(())
}
