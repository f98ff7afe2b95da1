//! [`CachedToken`]: a token as a token source hands it out.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use crate::secret::AuthorizationHeader;
use crate::time::UnixTime;
use crate::token::TokenResponse;

/// A token a short lifetime (e.g. `expires_in: 0`) is still handed out for at least this
/// many milliseconds (or one backoff period, if longer), so callers do not each fetch one.
pub(crate) const MIN_REUSE_MILLIS: u64 = 1_000;

/// A token as a token source hands it out: the token response, the `Authorization` header
/// value built once, and the times that govern its use.
///
/// Dereferences to the [`TokenResponse`] (`cached.access_token`, `cached.scope`, …).
/// `Debug` is redacted like the token response's.
pub struct CachedToken {
    pub(super) response: TokenResponse,
    pub(super) authorization: AuthorizationHeader,
    pub(super) fresh_until: UnixTime,
    pub(super) usable_until: Option<UnixTime>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("response", &self.response)
            .field("fresh_until", &self.fresh_until)
            .field("usable_until", &self.usable_until)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for CachedToken {
    type Target = TokenResponse;
    fn deref(&self) -> &TokenResponse {
        &self.response
    }
}

impl CachedToken {
    /// Wrap `response` received at `now`, renewing it `skew_secs` seconds before it expires
    /// (at most half its lifetime before), but not before `min_reuse_millis` have passed.
    pub(crate) fn new(
        response: TokenResponse,
        now: UnixTime,
        skew_secs: u64,
        min_reuse_millis: u64,
    ) -> Self {
        let authorization = AuthorizationHeader::bearer(&response.access_token);
        let floor = now.plus_millis(min_reuse_millis);
        let (fresh_until, usable_until) = match response.expires_at {
            Some(at) => {
                let skew = response
                    .expires_in
                    .map_or(skew_secs, |l| skew_secs.min(l / 2));
                let fresh = if min_reuse_millis > 0 {
                    at.minus_secs(skew).max(floor)
                } else {
                    at.minus_secs(skew)
                };
                (fresh, Some(at.max(fresh)))
            }
            // Unknown lifetime: usable until the resource server answers 401.
            None => (UnixTime::MAX, None),
        };
        Self {
            response,
            authorization,
            fresh_until,
            usable_until,
        }
    }

    /// The token response.
    pub fn response(&self) -> &TokenResponse {
        &self.response
    }

    /// `Authorization: Bearer <access token>`, built once (RFC 6750 §2.1).
    pub fn authorization(&self) -> &AuthorizationHeader {
        &self.authorization
    }

    /// [`authorization`](Self::authorization) as this thread's own copy: the same header
    /// value, made once per thread and token and shared by every call on the thread.
    ///
    /// For a token source's warm path, called on many cores at once: cloning the token's own
    /// header from every core writes its one reference count, a cache line that then moves
    /// between the cores on every call; a thread's copy is written by that thread only. A
    /// thread keeps copies for its four most recent tokens and forgets those of dropped
    /// tokens (the token itself is not kept alive). Inside thread-local destructors it
    /// returns a clone of the shared header.
    pub fn authorization_for_this_thread(this: &Arc<Self>) -> AuthorizationHeader {
        thread_local! {
            static COPIES: RefCell<Vec<(Weak<CachedToken>, AuthorizationHeader)>> =
                const { RefCell::new(Vec::new()) };
        }
        // A copy is keyed by the token's allocation and holds it by a `Weak`, so the address
        // is not reused while the key lives; copies of dropped tokens go at the next miss.
        COPIES
            .try_with(|copies| {
                // Never re-entered (nothing below calls back into a source); if it were, or
                // during thread teardown, the shared header is used.
                let Ok(mut copies) = copies.try_borrow_mut() else {
                    return this.authorization().clone();
                };
                let key = Arc::as_ptr(this);
                if let Some((_, header)) =
                    copies.iter().find(|(k, _)| std::ptr::eq(k.as_ptr(), key))
                {
                    return header.clone();
                }
                copies.retain(|(k, _)| k.strong_count() > 0);
                if copies.len() >= THREAD_COPIES {
                    copies.remove(0);
                }
                // The bytes of the header built with the token, never re-formatted.
                let header = AuthorizationHeader::new(this.authorization().secret());
                copies.push((Arc::downgrade(this), header.clone()));
                header
            })
            .unwrap_or_else(|_| this.authorization().clone())
    }

    /// Until when the token is used without renewal: its expiry minus the skew (or the
    /// short-lifetime floor). [`UnixTime::MAX`] for a token of unknown lifetime.
    pub fn fresh_until(&self) -> UnixTime {
        self.fresh_until
    }

    /// Until when the token may be used at all (its expiry); `None` when unknown.
    pub fn usable_until(&self) -> Option<UnixTime> {
        self.usable_until
    }

    /// Whether `now` is before [`fresh_until`](Self::fresh_until).
    pub fn is_fresh(&self, now: UnixTime) -> bool {
        now < self.fresh_until
    }

    /// Whether `now` is before the expiry (always, when the expiry is unknown).
    pub fn is_usable(&self, now: UnixTime) -> bool {
        self.usable_until.is_none_or(|u| now < u)
    }
}

/// How many tokens' headers a thread keeps a copy of (a source or two, and the token that
/// just replaced another).
const THREAD_COPIES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpResponse;

    fn cached(access_token: &str) -> Arc<CachedToken> {
        let body = format!(
            r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":3600}}"#
        );
        let url = url::Url::parse("https://ehr.example.org/token").unwrap();
        let now = UnixTime::from_secs(1_700_000_000);
        let response =
            crate::token::parse_token_response(&HttpResponse::new(200, body), &url, now).unwrap();
        Arc::new(CachedToken::new(response, now, 60, MIN_REUSE_MILLIS))
    }

    #[test]
    fn a_threads_copy_is_the_header_made_once_per_thread_and_token() {
        let a = cached("token-a");
        let first = CachedToken::authorization_for_this_thread(&a);
        let again = CachedToken::authorization_for_this_thread(&a);
        assert_eq!(first, *a.authorization());
        assert_eq!(first.secret(), "Bearer token-a");
        // One copy per thread: the same allocation on this thread, not the token's own.
        assert_eq!(first.secret().as_ptr(), again.secret().as_ptr());
        assert_ne!(first.secret().as_ptr(), a.authorization().secret().as_ptr());
        // Another thread makes its own.
        let a2 = a.clone();
        let there = std::thread::spawn(move || {
            let h = CachedToken::authorization_for_this_thread(&a2);
            (h.secret().to_owned(), h.secret().as_ptr() as usize)
        })
        .join()
        .unwrap();
        assert_eq!(there.0, "Bearer token-a");
        assert_ne!(there.1, first.secret().as_ptr() as usize);
        // A new token is never served an old token's copy, however many come and go.
        for i in 0..10 {
            let t = cached(&format!("token-{i}"));
            assert_eq!(
                CachedToken::authorization_for_this_thread(&t).secret(),
                format!("Bearer token-{i}")
            );
        }
        assert_eq!(
            CachedToken::authorization_for_this_thread(&a).secret(),
            "Bearer token-a"
        );
    }
}
