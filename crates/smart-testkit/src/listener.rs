//! The loopback listener behind the test servers: an accept thread, a thread per connection,
//! and a stop that closes every connection (hung ones included) and waits for the threads.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Stack size of the per-connection threads (they parse, sleep and write; TLS needs a little
/// more than plain HTTP, and responder closures run there too).
const CONNECTION_STACK: usize = 512 * 1024;
/// How long [`ConnListener::stop`] waits for connection threads to end.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
struct Conns {
    live: Mutex<HashMap<u64, Arc<TcpStream>>>,
    changed: Condvar,
}

/// A bound `127.0.0.1:0` listener; [`serve`](Self::serve) starts accepting.
pub(crate) struct ConnListener {
    addr: SocketAddr,
    listener: Option<TcpListener>,
    stopping: Arc<AtomicBool>,
    conns: Arc<Conns>,
    accept: Option<JoinHandle<()>>,
}

impl ConnListener {
    /// Binds `127.0.0.1:0`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub(crate) fn bind() -> ConnListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        ConnListener {
            addr,
            listener: Some(listener),
            stopping: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Conns::default()),
            accept: None,
        }
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Set once the listener is stopping.
    pub(crate) fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stopping)
    }

    /// Accepts connections on a thread named `name`, and runs `handler(stream, id)` for each on
    /// a thread of its own (ids 0, 1, 2, ... in accept order). The socket is shut down when the
    /// handler returns (or panics).
    ///
    /// # Panics
    /// When called twice, or when the accept thread cannot be started.
    pub(crate) fn serve<F>(&mut self, name: &str, handler: F)
    where
        F: Fn(Arc<TcpStream>, u64) + Send + Sync + 'static,
    {
        let listener = self.listener.take().expect("serve() once");
        let stopping = Arc::clone(&self.stopping);
        let conns = Arc::clone(&self.conns);
        let handler = Arc::new(handler);
        let conn_name = format!("{name}-conn");
        self.accept = Some(
            std::thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || {
                    accept_loop(&listener, &stopping, &conns, &handler, &conn_name);
                })
                .expect("spawn the accept thread"),
        );
    }

    /// Stops accepting, shuts every live connection down and waits (a few seconds at most) for
    /// their threads. Idempotent.
    pub(crate) fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.listener = None;
        if let Some(t) = self.accept.take() {
            // Wake the accept loop with a connection of our own.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = t.join();
        }
        let live = lock(&self.conns.live);
        for s in live.values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // A handler that never returns within the grace time: leave its thread behind.
        drop(
            self.conns
                .changed
                .wait_timeout_while(live, STOP_GRACE, |live| !live.is_empty())
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

impl Drop for ConnListener {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop<F>(
    listener: &TcpListener,
    stopping: &AtomicBool,
    conns: &Arc<Conns>,
    handler: &Arc<F>,
    conn_name: &str,
) where
    F: Fn(Arc<TcpStream>, u64) + Send + Sync + 'static,
{
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            Err(_) => {
                // Out of file descriptors or similar: back off a little.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let _ = stream.set_nodelay(true);
        let stream = Arc::new(stream);
        let id = next_id;
        next_id += 1;
        lock(&conns.live).insert(id, Arc::clone(&stream));
        let (c, h) = (Arc::clone(conns), Arc::clone(handler));
        let spawned = std::thread::Builder::new()
            .name(format!("{conn_name}-{id}"))
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                let _registered = Registered { conns: c, id };
                h(stream, id);
            });
        if spawned.is_err()
            && let Some(s) = lock(&conns.live).remove(&id)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Shuts a connection down and forgets it when its thread ends (even by panic).
struct Registered {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.conns.live).remove(&self.id) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.conns.changed.notify_all();
    }
}
