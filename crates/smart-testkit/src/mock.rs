//! A tiny loopback HTTP/1.1 server for transport tests and benchmarks: std `TcpListener`,
//! canned answers, `Connection: close`, and every request it reads sent back to the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};

/// One request as the server read it off the socket.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// Header names lower-cased, values as sent.
    pub headers: Vec<(String, String)>,
    /// The body bytes (`Content-Length` of them).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded as form fields.
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(RawRequest {
        method,
        path,
        headers,
        body,
    })
}

/// A canned HTTP/1.1 response with `Content-Length` and `Connection: close`.
pub fn response(status: &str, extra_headers: &[(&str, &str)], body: &str) -> String {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

/// What the server does with each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Answer every request with this response.
    Answer(String),
    /// Read the request, then hold the connection open without answering.
    Silent,
}

/// A loopback server in a thread; every request it reads is sent on the returned channel
/// before it answers.
pub fn serve(behaviour: Behaviour) -> (SocketAddr, Receiver<RawRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx): (Sender<RawRequest>, Receiver<RawRequest>) = channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(req) = read_request(&mut stream) else {
                continue;
            };
            let _ = tx.send(req);
            match &behaviour {
                Behaviour::Answer(r) => {
                    let _ = stream.write_all(r.as_bytes());
                    let _ = stream.flush();
                }
                Behaviour::Silent => held.push(stream),
            }
        }
    });
    (addr, rx)
}
