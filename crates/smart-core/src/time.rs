//! Wall-clock time as passed into the state machines.
//!
//! `smart-core` never reads a clock. Every function that needs the current time takes a
//! [`UnixTime`] argument; adapters read the system clock and convert with `UnixTime::from`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in whole **seconds** since the Unix epoch (1970-01-01T00:00:00Z).
///
/// This is the unit of JWT `iat`/`exp` (RFC 7519 §2 "NumericDate") and of the absolute expiry
/// the library computes from a token response's `expires_in` (RFC 6749 §5.1).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: Self = Self(0);

    /// A time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `self + secs`, saturating at `u64::MAX` instead of overflowing.
    #[must_use]
    pub const fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating at the epoch.
    #[must_use]
    pub const fn minus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs))
    }

    /// Whole seconds from `self` until `later` (0 if `later` is not after `self`).
    pub const fn secs_until(self, later: Self) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

impl From<SystemTime> for UnixTime {
    /// Truncates to whole seconds; times before the epoch become the epoch.
    fn from(t: SystemTime) -> Self {
        Self(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
}

impl From<UnixTime> for SystemTime {
    fn from(t: UnixTime) -> Self {
        UNIX_EPOCH + Duration::from_secs(t.0)
    }
}

impl std::fmt::Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = UnixTime::from_secs(10);
        assert_eq!(t.plus_secs(5).as_secs(), 15);
        assert_eq!(t.minus_secs(20), UnixTime::EPOCH);
        assert_eq!(
            UnixTime::from_secs(u64::MAX).plus_secs(1).as_secs(),
            u64::MAX
        );
        assert_eq!(t.secs_until(UnixTime::from_secs(4)), 0);
        assert_eq!(t.secs_until(UnixTime::from_secs(14)), 4);
    }

    #[test]
    fn from_system_time_truncates() {
        let st = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(UnixTime::from(st).as_secs(), 1);
    }
}
