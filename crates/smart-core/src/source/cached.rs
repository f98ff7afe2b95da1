//! [`CachedToken`]: a token as a token source hands it out.

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
