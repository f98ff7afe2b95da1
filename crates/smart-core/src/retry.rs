//! When a token request is tried again, and how long callers wait between attempts.
//!
//! Two mechanisms, both decided here and executed by the driver ([`Action::WaitUntil`]):
//!
//! * **Retries within one flight.** A refused connection, or an answer `500`, `502`, `503`,
//!   `504` or `429`, is tried again up to [`RetryPolicy::max_attempts`] attempts in all
//!   (default 3), after [`RetryPolicy::retry_base_millis`] × 2ⁿ with jitter (default 200 ms,
//!   400 ms), or after the server's `Retry-After` when it is at most
//!   [`RetryPolicy::max_retry_wait_millis`] (default 5 s). Each attempt is a new request with
//!   a freshly signed `client_assertion`. OAuth errors (`invalid_client`, `invalid_grant`,
//!   `invalid_scope`, any other 4xx) and timeouts are never retried: a timeout has already
//!   spent the caller's time.
//! * **Backoff between flights.** After a flight fails, no new one starts before
//!   [`RetryPolicy::backoff_base_millis`] × 2^(failures − 1), capped at
//!   [`RetryPolicy::backoff_cap_millis`] (defaults 1 s and 60 s), with "equal jitter" (the
//!   delay is uniformly drawn from its upper half), or before the server's `Retry-After`
//!   (seconds or an HTTP-date, RFC 9110 §10.2.3), capped at
//!   [`RetryPolicy::max_retry_after_secs`] (default 300 s). During the backoff every caller
//!   gets the flight's error at once, without a request — unless a still-valid token is
//!   cached. A token that arrives with a lifetime shorter than the backoff period (e.g.
//!   `expires_in: 0`) is likewise reused for one backoff period, so such a server sees one
//!   request per period, not one per caller.
//!
//! [`Action::WaitUntil`]: crate::flow::Action::WaitUntil

use crate::entropy::Entropy;
use crate::error::TransportErrorKind;
use crate::http::HttpResponse;
use crate::time::UnixTime;

/// The retry and backoff settings of a token source. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per flight, the first included (1 disables retries). Default 3.
    pub max_attempts: u32,
    /// First retry delay within a flight, in milliseconds (doubled each retry). Default 200.
    pub retry_base_millis: u64,
    /// The longest `Retry-After` honoured within a flight, in milliseconds; a longer one ends
    /// the flight and becomes the backoff. Default 5,000.
    pub max_retry_wait_millis: u64,
    /// First backoff after a failed flight, in milliseconds. Default 1,000.
    pub backoff_base_millis: u64,
    /// The longest backoff, in milliseconds. Default 60,000.
    pub backoff_cap_millis: u64,
    /// The longest `Retry-After` honoured, in seconds. Default 300.
    pub max_retry_after_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            retry_base_millis: 200,
            max_retry_wait_millis: 5_000,
            backoff_base_millis: 1_000,
            backoff_cap_millis: 60_000,
            max_retry_after_secs: 300,
        }
    }
}

impl RetryPolicy {
    /// No retries within a flight and no backoff between flights (each caller's poll after a
    /// failure starts a new flight): the behaviour of a plain single-request client.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            retry_base_millis: 0,
            max_retry_wait_millis: 0,
            backoff_base_millis: 0,
            backoff_cap_millis: 0,
            max_retry_after_secs: 0,
        }
    }

    /// Set the number of attempts per flight (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Set the backoff base and cap, in milliseconds.
    #[must_use]
    pub fn with_backoff_millis(mut self, base: u64, cap: u64) -> Self {
        self.backoff_base_millis = base;
        self.backoff_cap_millis = cap.max(base);
        self
    }

    /// The delay before retry number `retry` (1-based) within a flight, with jitter.
    pub(crate) fn retry_delay_millis(&self, retry: u32, entropy: &dyn Entropy) -> u64 {
        let full = self
            .retry_base_millis
            .saturating_mul(1u64 << retry.saturating_sub(1).min(20));
        equal_jitter(full.min(self.max_retry_wait_millis), entropy)
    }

    /// The backoff after `failures` consecutive failed flights (1-based), with jitter.
    pub(crate) fn backoff_millis(&self, failures: u32, entropy: &dyn Entropy) -> u64 {
        let full = self
            .backoff_base_millis
            .saturating_mul(1u64 << failures.saturating_sub(1).min(30))
            .min(self.backoff_cap_millis);
        equal_jitter(full, entropy)
    }

    /// A server's `Retry-After`, capped, in milliseconds.
    pub(crate) fn capped_retry_after_millis(&self, secs: u64) -> u64 {
        secs.min(self.max_retry_after_secs).saturating_mul(1000)
    }
}

/// A delay drawn uniformly from `[full/2, full]`.
fn equal_jitter(full: u64, entropy: &dyn Entropy) -> u64 {
    if full < 2 {
        return full;
    }
    let mut b = [0u8; 8];
    let r = if entropy.fill(&mut b).is_ok() {
        u64::from_le_bytes(b)
    } else {
        0
    };
    let half = full / 2;
    half + r % (full - half + 1)
}

/// Whether a failed attempt may be tried again within the flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again (after the server's `Retry-After`, in seconds, if it sent one).
    Retry { retry_after_secs: Option<u64> },
    /// Do not try again in this flight; back off for the server's `Retry-After` if any.
    GiveUp { retry_after_secs: Option<u64> },
}

/// Judge a non-2xx token-endpoint response.
pub(crate) fn judge_response(response: &HttpResponse, now: UnixTime) -> Verdict {
    let retry_after_secs = retry_after_secs(response, now);
    match response.status {
        429 | 500 | 502 | 503 | 504 => Verdict::Retry { retry_after_secs },
        _ => Verdict::GiveUp { retry_after_secs },
    }
}

/// Judge a transport failure.
pub(crate) fn judge_transport(kind: TransportErrorKind) -> Verdict {
    if kind.is_retryable() {
        Verdict::Retry {
            retry_after_secs: None,
        }
    } else {
        Verdict::GiveUp {
            retry_after_secs: None,
        }
    }
}

/// The `Retry-After` header of `response` (RFC 9110 §10.2.3) in whole seconds from `now`:
/// a non-negative integer of seconds, or an HTTP-date (in the past → 0). `None` when absent
/// or malformed.
pub fn retry_after_secs(response: &HttpResponse, now: UnixTime) -> Option<u64> {
    let v = response.header("retry-after")?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    let when = httpdate::parse_http_date(v).ok()?;
    let when = UnixTime::from(when);
    Some(now.secs_until(when))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DeterministicEntropy;

    #[test]
    fn retry_after_forms() {
        let now = UnixTime::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        let mut r = HttpResponse::new(503, "");
        assert_eq!(retry_after_secs(&r, now), None);
        r.headers.push(("Retry-After".into(), " 120 ".into()));
        assert_eq!(retry_after_secs(&r, now), Some(120));
        r.headers[0].1 = "Wed, 21 Oct 2015 07:30:00 GMT".into();
        assert_eq!(retry_after_secs(&r, now), Some(120));
        r.headers[0].1 = "Wed, 21 Oct 2015 07:00:00 GMT".into();
        assert_eq!(retry_after_secs(&r, now), Some(0));
        r.headers[0].1 = "soon".into();
        assert_eq!(retry_after_secs(&r, now), None);
        r.headers[0].1 = "-5".into();
        assert_eq!(retry_after_secs(&r, now), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = RetryPolicy::default();
        let e = DeterministicEntropy::new(3);
        for failures in 1..=10u32 {
            let full = (1000u64 << (failures - 1)).min(60_000);
            let d = p.backoff_millis(failures, &e);
            assert!(
                d >= full / 2 && d <= full,
                "{failures}: {d} not in [{}, {full}]",
                full / 2
            );
        }
        assert!(p.backoff_millis(u32::MAX, &e) <= 60_000);
        assert!(p.retry_delay_millis(u32::MAX, &e) <= 5_000);
        assert_eq!(p.capped_retry_after_millis(u64::MAX), 300_000);
        assert_eq!(RetryPolicy::none().backoff_millis(5, &e), 0);
    }

    #[test]
    fn verdicts() {
        let now = UnixTime::from_secs(0);
        for s in [429, 500, 502, 503, 504] {
            assert!(matches!(
                judge_response(&HttpResponse::new(s, ""), now),
                Verdict::Retry { .. }
            ));
        }
        for s in [400, 401, 403, 404, 501] {
            assert!(matches!(
                judge_response(&HttpResponse::new(s, ""), now),
                Verdict::GiveUp { .. }
            ));
        }
        assert!(matches!(
            judge_transport(TransportErrorKind::Timeout),
            Verdict::GiveUp { .. }
        ));
        assert!(matches!(
            judge_transport(TransportErrorKind::Connect),
            Verdict::Retry { .. }
        ));
    }
}
