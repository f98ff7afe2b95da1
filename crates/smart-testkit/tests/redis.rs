//! The Redis helpers against a real Redis: it starts, answers PING over a raw TCP connection,
//! and comes back on the same port after each kind of stop, with the data each promises.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use smart_testkit::{RedisServer, RedisStop, redis_restart, redis_url, unique};

/// A RESP reply.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

/// A raw RESP connection.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn(BufReader::new(s))
    }

    fn cmd(&mut self, args: &[&str]) -> Reply {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.0.get_mut().write_all(out.as_bytes()).unwrap();
        self.reply()
    }

    fn reply(&mut self) -> Reply {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Simple(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0u8; n as usize + 2];
                std::io::Read::read_exact(&mut self.0, &mut buf).unwrap();
                buf.truncate(n as usize);
                Reply::Bulk(Some(String::from_utf8(buf).unwrap()))
            }
            "*" => {
                let n: usize = rest.parse().unwrap();
                Reply::Array((0..n).map(|_| self.reply()).collect())
            }
            _ => panic!("unexpected reply {line:?}"),
        }
    }

    fn get(&mut self, key: &str) -> Option<String> {
        match self.cmd(&["GET", key]) {
            Reply::Bulk(v) => v,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    fn set(&mut self, key: &str, value: &str) {
        assert_eq!(self.cmd(&["SET", key, value]), Reply::Simple("OK".into()));
    }
}

fn addr_of(url: &str) -> SocketAddr {
    let hostport = url.strip_prefix("redis://").expect("redis:// URL");
    hostport.parse().unwrap()
}

/// `PING` as raw bytes on a new connection; returns the raw reply line.
fn raw_ping(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}

fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
}

// One test function for the shared server: restarting it would break a parallel test using it.
#[test]
fn the_shared_redis_answers_ping_and_restarts_on_the_same_port() {
    let url = redis_url();
    assert!(url.starts_with("redis://127.0.0.1:"), "{url}");
    let addr = addr_of(&url);
    assert_eq!(raw_ping(addr), "+PONG\r\n");
    assert_eq!(redis_url(), url, "started once");

    let key = unique("shared");
    Conn::open(addr).set(&key, "kept");
    assert_eq!(redis_restart(RedisStop::Save), url);
    assert_eq!(raw_ping(addr), "+PONG\r\n");
    assert_eq!(Conn::open(addr).get(&key).as_deref(), Some("kept"));

    assert_eq!(redis_restart(RedisStop::Discard), url);
    assert_eq!(raw_ping(addr), "+PONG\r\n");
    assert_eq!(Conn::open(addr).get(&key), None);
}

#[test]
fn a_private_redis_comes_back_with_what_each_stop_promises() {
    let server = RedisServer::start();
    assert!(!server.is_durable());
    let bulk = |s: &str| Reply::Bulk(Some(s.to_owned()));
    let mut c = Conn::open(server.addr());
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendonly"]),
        Reply::Array(vec![bulk("appendonly"), bulk("no")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "save"]),
        Reply::Array(vec![bulk("save"), bulk("")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "bind"]),
        Reply::Array(vec![bulk("bind"), bulk("127.0.0.1")])
    );
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
    assert_eq!(server.addr(), addr_of(server.url()));
    assert_eq!(raw_ping(server.addr()), "+PONG\r\n");

    let mut c = Conn::open(server.addr());
    c.set("k", "v1");
    // Graceful with a save: every acknowledged write is back.
    server.restart(RedisStop::Save);
    let mut c2 = Conn::open(server.addr());
    assert_eq!(c2.get("k").as_deref(), Some("v1"));
    // The old connection did not survive the restart.
    let mut buf = String::new();
    let old = c.0.get_mut().write_all(b"*1\r\n$4\r\nPING\r\n");
    assert!(
        old.is_err() || c.0.read_line(&mut buf).map_or(true, |n| n == 0),
        "the old connection still answered: {buf:?}"
    );

    // A crash without persistence loses everything.
    c2.set("k", "v2");
    server.restart(RedisStop::Kill);
    assert_eq!(Conn::open(server.addr()).get("k"), None);

    // Discard: a clean slate.
    Conn::open(server.addr()).set("k", "v3");
    server.restart(RedisStop::Discard);
    assert_eq!(Conn::open(server.addr()).get("k"), None);
    assert_eq!(raw_ping(server.addr()), "+PONG\r\n");
}

#[test]
fn a_durable_redis_keeps_every_acknowledged_write_through_a_kill() {
    let server = RedisServer::start_durable();
    assert!(server.is_durable());
    let mut c = Conn::open(server.addr());
    let bulk = |s: &str| Reply::Bulk(Some(s.to_owned()));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendonly"]),
        Reply::Array(vec![bulk("appendonly"), bulk("yes")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendfsync"]),
        Reply::Array(vec![bulk("appendfsync"), bulk("always")])
    );
    for i in 0..300 {
        c.set(&format!("key-{i}"), &i.to_string());
        assert_eq!(c.cmd(&["INCR", "counter"]), Reply::Int(i + 1));
    }
    // Kill right after the last acknowledgement: nothing may be lost.
    server.restart(RedisStop::Kill);
    let mut c = Conn::open(server.addr());
    for i in 0..300 {
        assert_eq!(c.get(&format!("key-{i}")), Some(i.to_string()), "key-{i}");
    }
    assert_eq!(c.get("counter").as_deref(), Some("300"));
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(301));
}

#[test]
fn a_stopped_redis_refuses_connections_until_started_again() {
    let server = RedisServer::start();
    Conn::open(server.addr()).set("k", "v");
    server.stop(RedisStop::Save);
    assert!(refuses(server.addr()));
    server.start_again();
    assert_eq!(Conn::open(server.addr()).get("k").as_deref(), Some("v"));
    // Starting a running server is a no-op (the script is idempotent).
    let pid = std::fs::read_to_string(server.run_dir().join("pid")).unwrap();
    server.start_again();
    assert_eq!(
        std::fs::read_to_string(server.run_dir().join("pid")).unwrap(),
        pid
    );
    assert_eq!(Conn::open(server.addr()).get("k").as_deref(), Some("v"));
}

#[test]
fn private_servers_are_separate_and_drop_stops_them() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    Conn::open(a.addr()).set("only-in-a", "1");
    assert_eq!(Conn::open(b.addr()).get("only-in-a"), None);
    let (addr, dir) = (a.addr(), a.run_dir().to_owned());
    drop(a);
    assert!(refuses(addr));
    assert!(!dir.exists());
    assert_eq!(raw_ping(b.addr()), "+PONG\r\n");
}
