//! Running a remote signer's future on the calling thread, for
//! [`Action::Sign`](smart_core::Action::Sign).
//!
//! The blocking driver has no async runtime: it polls the
//! [`SignFuture`](smart_core::assertion::SignFuture) here, parking the thread between wake-ups
//! (the `block_on` of the [`std::task::Wake`] documentation, plus a deadline). The future is
//! polled only on this thread, so it must not need a particular runtime's context: a signer
//! built on a tokio-based SDK spawns its call on a runtime it owns and returns a future that
//! waits for the answer (a `tokio::sync::oneshot` receiver works anywhere).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Wakes the thread that is blocked on the future.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Poll `future` on this thread until it is ready (`Some(output)`) or `timeout` has passed
/// (`None`; the future is dropped). A spurious wake-up only costs one more poll.
pub(crate) fn block_on_until<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now().checked_add(timeout);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                std::thread::park_timeout(left);
            }
            None => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A future completed by another thread after `delay`, through its waker.
    struct Later {
        state: Arc<Mutex<(Option<u32>, Option<Waker>)>>,
    }

    impl Future for Later {
        type Output = u32;
        fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            let mut s = self.state.lock().unwrap();
            match s.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    fn later(value: u32, delay: Duration) -> Later {
        let state = Arc::new(Mutex::new((None, None::<Waker>)));
        let s = state.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let waker = {
                let mut g = s.lock().unwrap();
                g.0 = Some(value);
                g.1.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
        Later { state }
    }

    #[test]
    fn ready_future_needs_no_wait() {
        assert_eq!(
            block_on_until(async { 7 }, Duration::ZERO),
            Some(7),
            "a ready future is polled once even with no time left"
        );
    }

    #[test]
    fn a_future_woken_by_another_thread_completes() {
        let started = Instant::now();
        let out = block_on_until(
            later(42, Duration::from_millis(50)),
            Duration::from_secs(10),
        );
        assert_eq!(out, Some(42));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(
            waited < Duration::from_secs(5),
            "woken, not timed out: {waited:?}"
        );
    }

    #[test]
    fn a_future_that_never_completes_times_out() {
        let started = Instant::now();
        let out = block_on_until(std::future::pending::<u32>(), Duration::from_millis(80));
        assert_eq!(out, None);
        assert!(started.elapsed() >= Duration::from_millis(80));
    }
}
