//! The hostile server itself: every behaviour, the records and counters, keep-alive, request
//! body framings, concurrency and shutdown. Clients: ureq (blocking) and raw `TcpStream`s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use smart_testkit::hostile::{Behaviour, HostileServer, Request, Response, RetryAfter};

fn agent() -> ureq::Agent {
    agent_with_timeout(Duration::from_secs(10))
}

fn agent_with_timeout(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// `GET url` → (status, headers, body).
fn get(agent: &ureq::Agent, url: &str) -> (u16, Vec<(String, String)>, String) {
    let mut resp = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let status = resp.status().as_u16();
    (status, headers, resp.body_mut().read_to_string().unwrap())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sends `raw` on a new connection and reads until the server closes it.
/// Waits (up to 5 s) until no request to `path` is in flight, and returns how many are. The
/// server ends a request after it wrote the answer, so a client can have read the whole answer
/// a moment before the server counts the request as over.
fn settled_in_flight(server: &HostileServer, path: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.in_flight(path) != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.in_flight(path)
}

fn raw_exchange(server: &HostileServer, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a `Content-Length` body off `r`: (status line, body).
fn read_response(r: &mut impl BufRead) -> (String, String) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (
        status.trim_end().to_owned(),
        String::from_utf8(body).unwrap(),
    )
}

#[test]
fn url_is_loopback_with_the_bound_port() {
    let server = HostileServer::start();
    assert_eq!(
        server.url(),
        format!("http://127.0.0.1:{}", server.addr().port())
    );
    assert_eq!(server.url_for("/token"), format!("{}/token", server.url()));
    assert!(server.addr().ip().is_loopback());
}

#[test]
fn a_fixed_response_is_sent_as_configured_and_the_request_is_recorded() {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Response::json(201, r#"{"ok":true}"#)
            .header("X-Test", "one")
            .header("X-Test", "two")
            .reason("Made"),
    );
    let before = Instant::now();
    let mut resp = agent()
        .post(&server.url_for("/token?a=1&b=x%20y"))
        .header("Authorization", "Bearer abc")
        .header("content-type", "application/x-www-form-urlencoded")
        .send("grant_type=client_credentials&scope=system%2FPatient.rs")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let tests: Vec<_> = resp
        .headers()
        .get_all("x-test")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(tests, ["one", "two"]);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(resp.headers().get("content-length").unwrap(), "11");
    assert_eq!(resp.body_mut().read_to_string().unwrap(), r#"{"ok":true}"#);

    assert_eq!(server.count("/token"), 1);
    assert_eq!(server.count_method("POST", "/token"), 1);
    assert_eq!(server.count_method("GET", "/token"), 0);
    assert_eq!(server.total(), 1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r: &Request = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/token");
    assert_eq!(r.query.as_deref(), Some("a=1&b=x%20y"));
    assert_eq!(r.target, "/token?a=1&b=x%20y");
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(
        r.query_pairs(),
        [("a".into(), "1".into()), ("b".into(), "x y".into())]
    );
    assert_eq!(r.header("AUTHORIZATION"), Some("Bearer abc"));
    assert!(r.headers.iter().all(|(k, _)| *k == k.to_ascii_lowercase()));
    assert_eq!(
        r.body_text(),
        "grant_type=client_credentials&scope=system%2FPatient.rs"
    );
    assert_eq!(r.form_value("scope").as_deref(), Some("system/Patient.rs"));
    assert!(!r.chunked);
    assert!(r.received_at >= before && r.received_at <= Instant::now());
    assert!(
        SystemTime::now()
            .duration_since(r.received_at_system)
            .unwrap()
            < Duration::from_secs(10)
    );
    assert_eq!((r.connection, r.index), (0, 0));
    assert_eq!(
        server.last_request("/token").unwrap().body,
        reqs[0].body,
        "last_request"
    );
    assert!(server.last_request("/other").is_none());
}

#[test]
fn routes_match_method_and_exact_path_ignoring_the_query() {
    let server = HostileServer::start();
    server
        .route("GET", "/a", Response::text(200, "get a"))
        .route("POST", "/a", Response::text(200, "post a"))
        .route("*", "/any", Response::text(200, "any"));
    let a = agent();
    assert_eq!(get(&a, &server.url_for("/a?x=1")).2, "get a");
    let mut resp = a.post(&server.url_for("/a")).send("").unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "post a");
    assert_eq!(get(&a, &server.url_for("/any")).2, "any");
    let mut resp = a.put(&server.url_for("/any")).send("x").unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "any");
    // Unmatched: the default fallback, a 404 JSON error naming the route.
    for path in ["/a/", "/A", "/ab", "/"] {
        let (status, headers, body) = get(&a, &server.url_for(path));
        assert_eq!(status, 404, "{path}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "not_found");
        assert_eq!(v["error_description"], format!("no route for GET {path}"));
    }
    let mut resp = a.delete(&server.url_for("/a")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let _ = resp.body_mut().read_to_string();
    // Counts are per path, any method.
    assert_eq!(server.count("/a"), 3);
    assert_eq!(server.count("/any"), 2);

    // A custom fallback, a replaced route, a removed route.
    server.fallback(Response::text(418, "teapot"));
    assert_eq!(get(&a, &server.url_for("/nothing")).0, 418);
    server.route("GET", "/a", Response::text(200, "new a"));
    assert_eq!(get(&a, &server.url_for("/a")).2, "new a");
    server.remove_route("GET", "/a");
    assert_eq!(get(&a, &server.url_for("/a")).0, 418);
}

#[test]
fn a_sequence_gives_one_behaviour_per_request_and_repeats_the_last() {
    let server = HostileServer::start();
    let seq = Behaviour::sequence([
        Response::text(500, "first"),
        Response::text(502, "second"),
        Response::text(200, "rest"),
    ]);
    server.route("GET", "/s", seq.clone());
    let a = agent();
    let got: Vec<(u16, String)> = (0..5)
        .map(|_| {
            let (s, _, b) = get(&a, &server.url_for("/s"));
            (s, b)
        })
        .collect();
    assert_eq!(
        got,
        [
            (500, "first".into()),
            (502, "second".into()),
            (200, "rest".into()),
            (200, "rest".into()),
            (200, "rest".into()),
        ]
    );
    // Installing the same value again starts it over.
    server.route("GET", "/s", seq);
    assert_eq!(get(&a, &server.url_for("/s")).2, "first");
}

#[test]
fn fail_first_requests_then_succeed() {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Behaviour::fail_first_requests(
            2,
            Response::oauth_error(503, "temporarily_unavailable", "down"),
            Response::token("tok", 300),
        ),
    );
    let a = agent();
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            let mut r = a.post(&server.url_for("/token")).send("").unwrap();
            let _ = r.body_mut().read_to_string();
            r.status().as_u16()
        })
        .collect();
    assert_eq!(statuses, [503, 503, 200, 200]);
    let mut r = a.post(&server.url_for("/token")).send("").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"access_token":"tok","token_type":"Bearer","expires_in":300})
    );
}

#[test]
fn fail_for_a_duration_after_the_first_request() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/t",
        Behaviour::fail_for(
            Duration::from_millis(1000),
            Response::new(500),
            Response::new(204),
        ),
    );
    let a = agent();
    // The clock starts at the first request, not at route().
    std::thread::sleep(Duration::from_millis(1100));
    let start = Instant::now();
    assert_eq!(get(&a, &server.url_for("/t")).0, 500);
    assert_eq!(get(&a, &server.url_for("/t")).0, 500);
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    std::thread::sleep(Duration::from_millis(1100) - elapsed);
    assert_eq!(get(&a, &server.url_for("/t")).0, 204);
    assert_eq!(get(&a, &server.url_for("/t")).0, 204);
}

#[test]
fn nested_composites_count_only_the_requests_that_reach_them() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/n",
        Behaviour::fail_first_requests(
            1,
            Response::new(500),
            Behaviour::sequence([Response::new(201), Response::new(202)]),
        ),
    );
    let a = agent();
    let got: Vec<u16> = (0..4).map(|_| get(&a, &server.url_for("/n")).0).collect();
    assert_eq!(got, [500, 201, 202, 202]);
}

#[test]
fn hang_reads_the_request_and_never_answers() {
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::hang());
    let a = agent_with_timeout(Duration::from_millis(300));
    let start = Instant::now();
    let err = a
        .post(&server.url_for("/token"))
        .send("grant_type=x")
        .unwrap_err();
    assert!(
        matches!(err, ureq::Error::Timeout(_)),
        "expected a timeout, got {err:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(300));
    // The request was read in full.
    assert_eq!(server.count("/token"), 1);
    assert_eq!(server.requests_to("/token")[0].body, b"grant_type=x");
    // The client gave up and closed the connection: the request is no longer in flight.
    assert_eq!(settled_in_flight(&server, "/token"), 0);
    assert_eq!(server.max_concurrent("/token"), 1);
}

#[test]
fn a_hung_connection_stays_silent_until_the_server_is_dropped() {
    let server = HostileServer::start();
    server.route("GET", "/h", Behaviour::hang());
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(server.wait_for("/h", 1, Duration::from_secs(5)));
    assert_eq!(server.in_flight("/h"), 1);
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    let e = s.read(&mut buf).unwrap_err();
    assert!(matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    // Dropping the server closes the hung connection promptly.
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "EOF (or reset) after drop, no bytes");
}

#[test]
fn delay_answers_late_and_a_shorter_client_timeout_fails() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/slow",
        Behaviour::delay(Duration::from_millis(400), Response::text(200, "late")),
    );
    let start = Instant::now();
    let (status, _, body) = get(&agent(), &server.url_for("/slow"));
    let took = start.elapsed();
    assert_eq!((status, body.as_str()), (200, "late"));
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    let err = agent_with_timeout(Duration::from_millis(100))
        .get(&server.url_for("/slow"))
        .call()
        .unwrap_err();
    assert!(matches!(err, ureq::Error::Timeout(_)), "{err:?}");
    assert_eq!(server.count("/slow"), 2);
}

#[test]
fn close_drops_the_connection_without_an_answer() {
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::close());
    let err = agent()
        .post(&server.url_for("/token"))
        .send("x=1")
        .unwrap_err();
    assert!(
        !matches!(err, ureq::Error::Timeout(_)),
        "expected a connection error, got {err:?}"
    );
    assert_eq!(server.count("/token"), 1);
    assert_eq!(
        raw_exchange(
            &server,
            b"POST /token HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        ),
        ""
    );
    assert_eq!(settled_in_flight(&server, "/token"), 0);
}

#[test]
fn retry_after_in_seconds_in_an_http_date_or_raw() {
    let server = HostileServer::start();
    server
        .route(
            "GET",
            "/429",
            Behaviour::retry_after(429, RetryAfter::Seconds(7)),
        )
        .route(
            "GET",
            "/503",
            Behaviour::retry_after(503, RetryAfter::date_in(Duration::from_secs(120))),
        )
        .route(
            "GET",
            "/bad",
            Behaviour::retry_after(429, RetryAfter::Raw("soon-ish".into())),
        );
    let a = agent();
    let (status, headers, body) = get(&a, &server.url_for("/429"));
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "retry-after"), Some("7"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "temporarily_unavailable");

    let (status, headers, _) = get(&a, &server.url_for("/503"));
    assert_eq!(status, 503);
    let value = header(&headers, "retry-after").unwrap();
    assert!(value.ends_with(" GMT"), "{value}");
    let when = httpdate_parse(value);
    let ahead = when.duration_since(SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(110) && ahead <= Duration::from_secs(121),
        "{ahead:?}"
    );
    assert_eq!(
        RetryAfter::Date(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)).header_value(),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );

    let (status, headers, _) = get(&a, &server.url_for("/bad"));
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "retry-after"), Some("soon-ish"));
}

/// Parses an IMF-fixdate (the only form the server sends).
fn httpdate_parse(s: &str) -> SystemTime {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let parts: Vec<&str> = s.split([' ', ':']).collect();
    let day: u64 = parts[1].parse().unwrap();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])
    .unwrap() as u64
        + 1;
    let year: u64 = parts[3].parse().unwrap();
    let (h, m, sec): (u64, u64, u64) = (
        parts[4].parse().unwrap(),
        parts[5].parse().unwrap(),
        parts[6].parse().unwrap(),
    );
    // Days from civil (Howard Hinnant), years >= 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[test]
fn redirects_with_absolute_and_relative_locations() {
    let server = HostileServer::start();
    let absolute = server.url_for("/elsewhere");
    let a = agent();
    for status in [301, 302, 303, 307, 308] {
        for location in [absolute.as_str(), "/relative?x=1", "../up"] {
            server.route("GET", "/r", Behaviour::redirect(status, location));
            let (got, headers, body) = get(&a, &server.url_for("/r"));
            assert_eq!(got, status);
            assert_eq!(header(&headers, "location"), Some(location));
            assert_eq!(body, "");
        }
    }
    assert_eq!(server.count("/elsewhere"), 0, "nothing followed");
    assert_eq!(server.count("/r"), 15);
}

#[test]
fn echo_reflects_the_body_raw_and_decoded_and_the_authorization_header() {
    let server = HostileServer::start();
    server.route("POST", "/token", Behaviour::echo());
    let secret = "s3cr+t/é";
    let body = format!(
        "grant_type=client_credentials&client_secret={}",
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
    );
    assert!(body.contains("s3cr%2Bt%2F%C3%A9"));
    let mut resp = agent()
        .post(&server.url_for("/token"))
        .header("Authorization", "Basic Y2xpZW50OnBhc3N3b3Jk") // client:password
        .header("content-type", "application/x-www-form-urlencoded")
        .send(&body)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"], "invalid_request");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.contains(&body), "raw body in {d}");
    assert!(
        d.contains(&format!("client_secret={secret}")),
        "decoded in {d}"
    );
    assert!(
        d.contains("Basic Y2xpZW50OnBhc3N3b3Jk"),
        "authorization in {d}"
    );
    assert!(d.contains("client:password"), "decoded basic in {d}");
    assert!(d.contains("POST /token"), "{d}");
    let uri = v["error_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("{}/echo?{body}#Basic Y2xpZW50OnBhc3N3b3Jk", server.url())
    );

    // A bearer token and a query are reflected too; another status.
    server.route("GET", "/fhir/Patient", Behaviour::echo_with_status(401));
    let mut resp = agent()
        .get(&server.url_for("/fhir/Patient?token=q"))
        .header("Authorization", "Bearer at-123")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let d = v["error_description"].as_str().unwrap();
    assert!(
        d.contains("Bearer at-123") && d.contains("/fhir/Patient?token=q"),
        "{d}"
    );
}

#[test]
fn from_fn_computes_the_response_from_the_request() {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/f",
        Behaviour::from_fn(|req| {
            let n = req.form_value("n").unwrap_or_default();
            Response::text(200, format!("{} got n={n}", req.method))
        }),
    );
    let mut resp = agent().post(&server.url_for("/f")).send("n=42").unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "POST got n=42");
}

#[test]
fn dynamic_chooses_a_behaviour_per_request() {
    let server = HostileServer::start();
    let seq = Behaviour::sequence([Response::new(201), Response::new(202)]);
    server.route(
        "GET",
        "/d",
        Behaviour::dynamic(move |req| {
            if req.query.as_deref() == Some("close") {
                Behaviour::close()
            } else {
                seq.clone()
            }
        }),
    );
    let a = agent();
    assert_eq!(get(&a, &server.url_for("/d")).0, 201);
    assert!(a.get(&server.url_for("/d?close")).call().is_err());
    // The captured sequence kept its place.
    assert_eq!(get(&a, &server.url_for("/d")).0, 202);
    assert_eq!(get(&a, &server.url_for("/d")).0, 202);
}

#[test]
fn raw_bytes_are_sent_exactly_then_the_connection_closes() {
    let server = HostileServer::start();
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec();
    server.route("GET", "/raw", Behaviour::raw(bytes.clone()));
    assert_eq!(
        raw_exchange(&server, b"GET /raw HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        &bytes[..]
    );
    // A client sees a truncated body.
    let mut resp = agent().get(&server.url_for("/raw")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.body_mut().read_to_string().is_err());

    server.route(
        "GET",
        "/garbage",
        Behaviour::raw(&b"NOT HTTP AT ALL\r\n\r\n"[..]),
    );
    assert!(agent().get(&server.url_for("/garbage")).call().is_err());
}

#[test]
fn raw_then_hang_sends_a_head_and_no_body() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/half",
        Behaviour::raw_then_hang(&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"[..]),
    );
    let mut resp = agent_with_timeout(Duration::from_millis(400))
        .get(&server.url_for("/half"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let start = Instant::now();
    let err = resp.body_mut().read_to_string().unwrap_err();
    assert!(matches!(err, ureq::Error::Timeout(_)), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn trickle_sends_the_response_a_few_bytes_at_a_time() {
    let server = HostileServer::start();
    let response = Response::text(200, "0123456789");
    let len = response.to_bytes().len();
    server.route(
        "GET",
        "/trickle",
        Behaviour::trickle(response, 16, Duration::from_millis(40)),
    );
    let start = Instant::now();
    let (status, _, body) = get(&agent(), &server.url_for("/trickle"));
    let took = start.elapsed();
    assert_eq!((status, body.as_str()), (200, "0123456789"));
    let pauses = len.div_ceil(16) - 1;
    assert!(pauses >= 4);
    assert!(
        took >= Duration::from_millis(40) * pauses as u32,
        "{took:?} for {pauses} pauses"
    );

    // The pieces arrive separately.
    server.route(
        "GET",
        "/trickle",
        Behaviour::trickle(
            Response::text(200, "0123456789"),
            16,
            Duration::from_millis(500),
        ),
    );
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(b"GET /trickle HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(n, 16, "the first read gets exactly one piece");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = HostileServer::start();
    server.route("GET", "/k", Response::text(200, "k"));
    let a = agent();
    for _ in 0..5 {
        assert_eq!(get(&a, &server.url_for("/k")).2, "k");
    }
    assert_eq!(server.connections(), 1);
    assert!(server.requests().iter().all(|r| r.connection == 0));

    // Raw: two requests, pipelined on one connection, two answers in order.
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(
        b"GET /k HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(
        read_response(&mut r),
        ("HTTP/1.1 200 OK".into(), "k".into())
    );
    let (status, _) = read_response(&mut r);
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed after Connection: close");
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_response_with_connection_close_closes_and_the_client_reconnects() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/c",
        Response::text(200, "bye").header("Connection", "close"),
    );
    let a = agent();
    for _ in 0..3 {
        assert_eq!(get(&a, &server.url_for("/c")).2, "bye");
    }
    assert_eq!(server.connections(), 3);
    // HTTP/1.0 without keep-alive closes as well.
    server.route("GET", "/ten", Response::text(200, "old"));
    let out = raw_exchange(&server, b"GET /ten HTTP/1.0\r\n\r\n");
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nold"),
        "{out}"
    );
}

#[test]
fn chunked_request_bodies_are_decoded() {
    let server = HostileServer::start();
    server.route("POST", "/token", Response::text(200, "ok"));
    let out = raw_exchange(
        &server,
        b"POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: t\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    let r = server.last_request("/token").unwrap();
    assert!(r.chunked);
    assert_eq!(r.body, b"hello, world");

    // ureq sends a reader of unknown length chunked.
    let mut resp = agent()
        .post(&server.url_for("/token"))
        .send(ureq::SendBody::from_reader(&mut &b"streamed body"[..]))
        .unwrap();
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "ok");
    let r = server.last_request("/token").unwrap();
    assert!(r.chunked, "{:?}", r.headers);
    assert_eq!(r.body, b"streamed body");
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = HostileServer::start();
    server.route("PUT", "/up", Response::text(200, "stored"));
    let s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (&s).write_all(
        b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(&s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "\r\n");
    (&s).write_all(b"data").unwrap();
    assert_eq!(
        read_response(&mut r),
        ("HTTP/1.1 200 OK".into(), "stored".into())
    );
    assert_eq!(server.last_request("/up").unwrap().body, b"data");
}

#[test]
fn head_requests_get_no_body() {
    let server = HostileServer::start();
    server.route("HEAD", "/h", Response::text(200, "body"));
    let out = raw_exchange(&server, b"HEAD /h HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(out.ends_with("Content-Length: 4\r\n\r\n"), "{out}");
}

#[test]
fn malformed_requests_get_400_and_are_not_recorded() {
    let server = HostileServer::start();
    let out = raw_exchange(&server, b"this is not http\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    let out = raw_exchange(&server, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    let out = raw_exchange(&server, b"GET / HTTP/2.0\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 505 "), "{out}");
    let out = raw_exchange(
        &server,
        format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(70_000)).as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
    assert_eq!(server.total(), 0);
}

#[test]
fn a_lying_content_length_is_sent_as_given() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/lie",
        Response::text(200, "short").header("Content-Length", "3"),
    );
    let out = raw_exchange(&server, b"GET /lie HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(out.contains("Content-Length: 3\r\n"), "{out}");
    assert_eq!(out.matches("Content-Length").count(), 1);
    assert!(out.ends_with("\r\n\r\nshort"));
}

#[test]
fn behaviour_can_change_while_requests_are_in_flight() {
    let server = HostileServer::start();
    server.route(
        "GET",
        "/x",
        Behaviour::delay(Duration::from_millis(300), Response::text(200, "old")),
    );
    let url = server.url_for("/x");
    let t = std::thread::spawn(move || get(&agent(), &url).2);
    assert!(server.wait_for("/x", 1, Duration::from_secs(5)));
    server.route("GET", "/x", Response::text(200, "new"));
    assert_eq!(get(&agent(), &server.url_for("/x")).2, "new");
    assert_eq!(t.join().unwrap(), "old", "started with the old behaviour");
}

#[test]
fn sequential_requests_are_never_concurrent() {
    let server = HostileServer::start();
    server.route(
        "POST",
        "/token",
        Behaviour::delay(Duration::from_millis(20), Response::token("t", 60)),
    );
    let a = agent();
    for _ in 0..5 {
        let mut r = a.post(&server.url_for("/token")).send("").unwrap();
        let _ = r.body_mut().read_to_string();
    }
    assert_eq!(server.count("/token"), 5);
    assert_eq!(server.max_concurrent("/token"), 1);
    assert_eq!(settled_in_flight(&server, "/token"), 0);
    assert_eq!(server.max_concurrent("/other"), 0);
}

#[test]
fn parallel_requests_are_counted_in_flight_together() {
    const N: usize = 16;
    let server = Arc::new(HostileServer::start());
    // Every request waits until all N are in flight: max_concurrent must reach N exactly.
    let gate = Arc::new((Mutex::new(0usize), Condvar::new()));
    let g = Arc::clone(&gate);
    server.route(
        "GET",
        "/p",
        Behaviour::from_fn(move |_| {
            let (m, cv) = &*g;
            let mut n = m.lock().unwrap();
            *n += 1;
            cv.notify_all();
            let (n, _) = cv
                .wait_timeout_while(n, Duration::from_secs(20), |n| *n < N)
                .unwrap();
            Response::text(200, format!("{}", *n))
        }),
    );
    let barrier = Arc::new(Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (url, b) = (server.url_for("/p"), Arc::clone(&barrier));
            std::thread::spawn(move || {
                b.wait();
                get(&agent(), &url).2
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), N.to_string());
    }
    assert_eq!(server.count("/p"), N);
    assert_eq!(server.max_concurrent("/p"), N);
    assert_eq!(settled_in_flight(&server, "/p"), 0);
    assert_eq!(server.connections(), N as u64);
}

#[test]
fn a_thousand_concurrent_connections() {
    const N: usize = 1000;
    let server = HostileServer::start();
    let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
    let a = Arc::clone(&arrived);
    server.route(
        "POST",
        "/token",
        Behaviour::from_fn(move |req| {
            let (m, cv) = &*a;
            let mut n = m.lock().unwrap();
            *n += 1;
            cv.notify_all();
            drop(cv.wait_timeout_while(n, Duration::from_secs(60), |n| *n < N));
            Response::text(200, req.body_text())
        }),
    );
    let mut streams: Vec<TcpStream> = (0..N)
        .map(|i| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            let body = format!("n={i}");
            s.write_all(
                format!(
                    "POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    for (i, s) in streams.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (status, body) = read_response(&mut BufReader::new(&*s));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, format!("n={i}"));
    }
    assert_eq!(server.count("/token"), N);
    assert_eq!(server.max_concurrent("/token"), N);
    assert_eq!(server.connections(), N as u64);
    drop(streams);
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn wait_for_and_clear_records() {
    let server = HostileServer::start();
    assert!(!server.wait_for("/w", 1, Duration::from_millis(50)));
    let url = server.url_for("/w");
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        get(&agent(), &url).0
    });
    assert!(server.wait_for("/w", 1, Duration::from_secs(5)));
    assert_eq!(t.join().unwrap(), 404);
    assert_eq!(server.count("/w"), 1);
    server.clear_records();
    assert_eq!(server.count("/w"), 0);
    assert_eq!(server.max_concurrent("/w"), 0);
    assert_eq!(server.total(), 0);
    assert_eq!(server.connections(), 0);
    assert!(server.requests().is_empty());
}

#[test]
fn drop_stops_listening_and_ends_its_threads() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = HostileServer::start();
    let c = Arc::clone(&calls);
    server.route(
        "GET",
        "/x",
        Behaviour::from_fn(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Response::new(200)
        }),
    );
    // An idle keep-alive connection and a request stuck in a long delay.
    let a = agent();
    assert_eq!(get(&a, &server.url_for("/x")).0, 200);
    server.route(
        "GET",
        "/slow",
        Behaviour::delay(Duration::from_secs(60), Response::new(200)),
    );
    let url = server.url_for("/slow");
    let t = std::thread::spawn(move || agent().get(&url).call().map(|r| r.status().as_u16()));
    assert!(server.wait_for("/slow", 1, Duration::from_secs(5)));
    let addr = server.addr();
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        t.join().unwrap().is_err(),
        "the delayed request never got its answer"
    );
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
