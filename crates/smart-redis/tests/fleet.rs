//! Fleet-wide tokens on a real Redis and the real local SMART sandbox: many processes, one
//! token; a lease holder killed mid-request; Redis restarted mid-run; a rotating session
//! shared by two processes. Child processes are this test binary re-run on one `#[ignore]`d
//! entry point (they run only when a parent test starts them).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::store::{LeaseConfig, StoreEvent, TokenStore};
use smart_core::{ClientId, Error, FhirBaseUrl};
use smart_redis::RedisTokenStore;
use smart_testkit as kit;
use smart_testkit::hostile::{Behaviour, HostileServer, Response};
use smart_testkit::redis_server::{RedisServer, RedisStop};

const SCOPE: &str = "system/Patient.rs";

fn child(entry: &str, envs: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", entry, "--ignored", "--quiet", "--nocapture"])
        .env("SMART_SANDBOX_URL", kit::sandbox_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run by a parent test"))
}

fn millis_now() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Lines a child printed with the `RESULT ` prefix.
fn results(c: Child) -> (bool, Vec<String>) {
    let out = c.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT ").map(str::to_owned))
        .collect();
    (out.status.success(), lines)
}

fn backend_config(client_id: &str, key: SigningKey) -> BackendServicesConfig {
    BackendServicesConfig::new(ClientId::new(client_id), SCOPE, Arc::new(key))
        .with_fhir_base(FhirBaseUrl::new(kit::fhir_base()).unwrap())
}

// ---------------------------------------------------------------------------------------------
// 8 processes × 100 tasks, one token
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "child process of eight_processes_times_a_hundred_tasks_mint_exactly_one_token"]
fn child_fleet_tasks() {
    let key = SigningKey::from_pem(&env("FLEET_KEY_PEM")).unwrap();
    let store = RedisTokenStore::open(&env("FLEET_REDIS"))
        .unwrap()
        .with_prefix(env("FLEET_PREFIX"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let auth = Arc::new(
            smart_reqwest::BackendServicesAuth::new(backend_config(&env("FLEET_CLIENT"), key))
                .unwrap()
                .with_store(Arc::new(store), None),
        );
        let start: u64 = env("FLEET_START_AT").parse().unwrap();
        tokio::time::sleep(Duration::from_millis(start.saturating_sub(millis_now()))).await;
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let a = auth.clone();
                tokio::spawn(
                    async move { a.token().await.map(|t| t.access_token.secret().to_owned()) },
                )
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.unwrap().expect("every task gets a token"));
        }
        tokens.dedup();
        assert_eq!(tokens.len(), 1, "one token within the process");
        // Print a digest, never the token.
        println!(
            "RESULT {}",
            tokens[0].len() * 31 + tokens[0].bytes().map(usize::from).sum::<usize>()
        );
    });
}

#[test]
fn eight_processes_times_a_hundred_tasks_mint_exactly_one_token() {
    let key = SigningKey::generate(JwsAlgorithm::Es384, None, &SystemEntropy).unwrap();
    let client_id = kit::register_backend_client(&key, SCOPE, None);
    let pem = key.to_pkcs8_pem().unwrap().secret().to_owned();
    // One prefix (one store key) and one start time for all eight processes.
    let prefix = kit::unique("fleet") + ":";
    let start = (millis_now() + 4_000).to_string();
    let children: Vec<_> = (0..8)
        .map(|_| {
            child(
                "child_fleet_tasks",
                &[
                    ("FLEET_KEY_PEM", pem.clone()),
                    ("FLEET_CLIENT", client_id.clone()),
                    ("FLEET_REDIS", kit::redis_url()),
                    ("FLEET_PREFIX", prefix.clone()),
                    ("FLEET_START_AT", start.clone()),
                ],
            )
        })
        .collect();
    let mut digests = Vec::new();
    for c in children {
        let (ok, lines) = results(c);
        assert!(ok, "a fleet process failed");
        digests.extend(lines);
    }
    assert_eq!(digests.len(), 8);
    digests.dedup();
    assert_eq!(digests.len(), 1, "every process got the same token");
    assert_eq!(
        kit::token_requests(&client_id),
        1,
        "800 callers in 8 processes: one token request"
    );
}

// ---------------------------------------------------------------------------------------------
// The lease holder dies mid-request
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "child process of a_killed_lease_holder_is_replaced_within_the_lease_time"]
fn child_lease_token() {
    let key = SigningKey::generate(JwsAlgorithm::Es384, Some("k"), &SystemEntropy).unwrap();
    let token_url = url::Url::parse(&env("LEASE_TOKEN_URL")).unwrap();
    let config = BackendServicesConfig::new(ClientId::new("lease-app"), SCOPE, Arc::new(key))
        .with_smart_configuration(SmartConfiguration::new(token_url));
    let store = RedisTokenStore::open(&env("LEASE_REDIS"))
        .unwrap()
        .with_prefix(env("LEASE_PREFIX"))
        .with_lease_config(LeaseConfig::shared().with_ttl_millis(2_000));
    let http = smart_ureq::HttpClient::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let auth = smart_ureq::BackendServicesAuth::with_client(config, http, Arc::new(SystemEntropy))
        .unwrap()
        .with_store(Arc::new(store), None);
    let t = auth.token().expect("a token");
    println!("RESULT {}", t.access_token.secret().len());
}

#[test]
fn a_killed_lease_holder_is_replaced_within_the_lease_time_plus_one_second() {
    let server = HostileServer::start();
    // The first token request hangs (the holder is killed during it); later ones answer.
    server.route(
        "POST",
        "/token",
        Behaviour::sequence([
            Behaviour::hang(),
            Response::token("from-the-second", 300).into(),
        ]),
    );
    let envs = [
        ("LEASE_TOKEN_URL", server.url_for("/token")),
        ("LEASE_REDIS", kit::redis_url()),
        ("LEASE_PREFIX", kit::unique("lease") + ":"),
    ];
    let mut holder = child("child_lease_token", &envs);
    assert!(
        server.wait_for("/token", 1, Duration::from_secs(20)),
        "the holder never asked"
    );
    // A second process arrives while the holder holds the lease.
    let waiter = child("child_lease_token", &envs);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.count("/token"), 1, "the waiter waits for the lease");
    holder.kill().unwrap(); // SIGKILL
    let killed_at = Instant::now();
    let _ = holder.wait();
    let (ok, lines) = results(waiter);
    let took = killed_at.elapsed();
    assert!(ok && lines.len() == 1, "the waiter got a token");
    assert_eq!(server.count("/token"), 2);
    assert!(
        took <= Duration::from_millis(3_000),
        "minted {took:?} after the kill: more than the 2 s lease + 1 s"
    );
}

// ---------------------------------------------------------------------------------------------
// Redis restarted during a run
// ---------------------------------------------------------------------------------------------

#[test]
fn redis_restart_degrades_to_in_process_single_flight_then_recovers_without_losing_data() {
    let redis = RedisServer::start_durable();
    let key = SigningKey::generate(JwsAlgorithm::Es384, None, &SystemEntropy).unwrap();
    let client_id = kit::register_backend_client(&key, SCOPE, None);
    let lease = LeaseConfig::shared().with_retry_store_after_millis(500);
    let store = Arc::new(
        RedisTokenStore::open(redis.url())
            .unwrap()
            .with_timeout(Duration::from_millis(500))
            .with_lease_config(lease),
    );
    let degraded = Arc::new(AtomicUsize::new(0));
    let d = degraded.clone();
    let auth = smart_ureq::BackendServicesAuth::new(backend_config(&client_id, key))
        .unwrap()
        .with_store(store.clone(), None)
        .on_store_event(Arc::new(move |e| {
            if matches!(e, StoreEvent::Degraded { .. }) {
                d.fetch_add(1, Ordering::SeqCst);
            }
        }));
    let first = auth.token().unwrap();
    // Acknowledged: the entry is in Redis.
    let acked = TokenStore::get(store.as_ref(), &cache_key(&client_id)).unwrap();
    assert_eq!(
        acked
            .as_ref()
            .map(|e| e.token.access_token.secret().to_owned()),
        Some(first.access_token.secret().to_owned())
    );

    redis.stop(RedisStop::Kill);
    // Redis is down: the caller is not failed; the source works in-process and says so.
    auth.on_unauthorized().unwrap();
    let during = auth.token().expect("degraded, not failed");
    assert_ne!(during.access_token, first.access_token);
    assert!(
        degraded.load(Ordering::SeqCst) >= 1,
        "the degradation was reported"
    );

    redis.start_again();
    // Nothing acknowledged was lost (append-only file, fsync always).
    let after = TokenStore::get(store.as_ref(), &cache_key(&client_id)).unwrap();
    assert!(after.is_some(), "the acknowledged entry survived the crash");
    // After the retry period the store is used again: a new token is stored.
    std::thread::sleep(Duration::from_millis(600));
    auth.on_unauthorized().unwrap();
    let recovered = auth.token().unwrap();
    let stored = TokenStore::get(store.as_ref(), &cache_key(&client_id))
        .unwrap()
        .expect("stored again");
    assert_eq!(stored.token.access_token, recovered.access_token);
}

fn cache_key(client_id: &str) -> String {
    smart_core::store::CacheKey {
        token_endpoint: kit::token_endpoint(),
        client_id: client_id.to_owned(),
        scope: SCOPE.to_owned(),
    }
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// One App Launch session, two processes, rotating refresh tokens
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "child process of two_processes_sharing_a_rotating_session_never_spend_a_refresh_token_twice"]
fn child_session_refresher() {
    use smart_core::client_auth::ClientAuth;
    let app = kit::app::app(
        ClientAuth::public(env("SESSION_CLIENT")),
        kit::app::STANDALONE_SCOPE,
    );
    let store = Arc::new(
        RedisTokenStore::open(&env("SESSION_REDIS"))
            .unwrap()
            .with_prefix(env("SESSION_PREFIX")),
    );
    let client = smart_ureq::SmartClient::restore(&app, store, &env("SESSION_KEY")).unwrap();
    let start: u64 = env("SESSION_START_AT").parse().unwrap();
    std::thread::sleep(Duration::from_millis(start.saturating_sub(millis_now())));
    let mut invalid_grant = 0;
    let mut other = Vec::new();
    for _ in 0..25 {
        match client.refresh(None) {
            Ok(_) => {}
            Err(Error::OAuth(e)) if e.error == "invalid_grant" => invalid_grant += 1,
            Err(e) => other.push(e.to_string()),
        }
    }
    assert!(other.is_empty(), "{other:?}");
    println!("RESULT {invalid_grant}");
}

#[test]
fn two_processes_sharing_a_rotating_session_never_spend_a_refresh_token_twice() {
    use smart_core::launch::Launch;
    let (client_id, auth) = kit::app::register(kit::app::Kind::Public);
    let app = kit::app::app(auth, kit::app::STANDALONE_SCOPE);
    let http = smart_ureq::HttpClient::new().unwrap();
    let request =
        smart_ureq::begin_launch(&http, &app, Launch::standalone(kit::app::fhir_base())).unwrap();
    let callback = kit::browser_until(request.url.as_str(), "http://127.0.0.1:9/callback", None);
    let client = smart_ureq::complete_launch(&http, &app, request.pending, &callback).unwrap();
    let stored = client.stored();
    assert!(
        stored.token.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    let prefix = kit::unique("session") + ":";
    let key = "shared-session";
    let store = RedisTokenStore::open(&kit::redis_url())
        .unwrap()
        .with_prefix(prefix.clone());
    TokenStore::set(&store, key, &stored, None).unwrap();
    let before = kit::token_requests(&client_id);

    let start = (millis_now() + 3_000).to_string();
    let envs = [
        ("SESSION_CLIENT", client_id.clone()),
        ("SESSION_REDIS", kit::redis_url()),
        ("SESSION_PREFIX", prefix),
        ("SESSION_KEY", key.to_owned()),
        ("SESSION_START_AT", start),
    ];
    let a = child("child_session_refresher", &envs);
    let b = child("child_session_refresher", &envs);
    let mut invalid_grants = 0;
    for c in [a, b] {
        let (ok, lines) = results(c);
        assert!(ok, "a refresher failed");
        invalid_grants += lines[0].parse::<u32>().unwrap();
    }
    assert_eq!(invalid_grants, 0, "no refresh token was spent twice");
    assert_eq!(
        kit::token_requests(&client_id) - before,
        50,
        "50 refreshes, each one request"
    );
    // The stored session is the latest rotation and still refreshes.
    let last = TokenStore::get(&store, key).unwrap().expect("stored");
    let refreshed = smart_ureq::refresh_token(
        &http,
        &app,
        &last.token_endpoint,
        last.token.refresh_token.as_ref().unwrap(),
        None,
    )
    .unwrap();
    assert!(refreshed.refresh_token.is_some());
}
