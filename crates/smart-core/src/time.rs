//! Wall-clock time as passed into the state machines.
//!
//! `smart-core` never reads a clock. Every function that needs the current time takes a
//! [`UnixTime`] argument; drivers read the system clock and convert with `UnixTime::from`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time since the Unix epoch (1970-01-01T00:00:00Z), with **millisecond**
/// resolution.
///
/// Protocol times are whole seconds (JWT `iat`/`exp`, RFC 7519 §2 "NumericDate"; the expiry
/// computed from `expires_in`, RFC 6749 §5.1): [`as_secs`](Self::as_secs) truncates. The
/// milliseconds matter only for retry delays and backoff, which are shorter than a second at
/// first.
///
/// Serialized as whole seconds (a JSON integer), the form stored tokens have always used;
/// a fractional number of seconds is accepted when reading.
///
/// Arithmetic saturates: no operation overflows or panics, whatever the operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: Self = Self(0);

    /// The latest representable time (about 584 million years after the epoch).
    pub const MAX: Self = Self(u64::MAX);

    /// A time `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// A time `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Whole seconds since the epoch (truncated).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + secs` seconds, saturating at [`UnixTime::MAX`] instead of overflowing.
    #[must_use]
    pub const fn plus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// `self - secs` seconds, saturating at the epoch.
    #[must_use]
    pub const fn minus_secs(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs.saturating_mul(1000)))
    }

    /// `self + millis` milliseconds, saturating.
    #[must_use]
    pub const fn plus_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// `self + d`, saturating (sub-millisecond parts of `d` are dropped).
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        self.plus_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Whole seconds from `self` until `later` (0 if `later` is not after `self`).
    pub const fn secs_until(self, later: Self) -> u64 {
        later.0.saturating_sub(self.0) / 1000
    }

    /// The time from `self` until `later` (zero if `later` is not after `self`).
    pub const fn until(self, later: Self) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }
}

impl From<SystemTime> for UnixTime {
    /// Truncates to whole milliseconds; times before the epoch become the epoch.
    fn from(t: SystemTime) -> Self {
        Self(
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl From<UnixTime> for SystemTime {
    /// Saturates at the latest time the platform's `SystemTime` can hold.
    fn from(t: UnixTime) -> Self {
        UNIX_EPOCH
            .checked_add(Duration::from_millis(t.0))
            .unwrap_or_else(|| UNIX_EPOCH + Duration::from_secs(i32::MAX as u64))
    }
}

impl std::fmt::Display for UnixTime {
    /// Whole seconds since the epoch.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_secs())
    }
}

impl serde::Serialize for UnixTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.as_secs())
    }
}

impl<'de> serde::Deserialize<'de> for UnixTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Secs;
        impl serde::de::Visitor<'_> for Secs {
            type Value = UnixTime;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative number of seconds since the epoch")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<UnixTime, E> {
                Ok(UnixTime::from_secs(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<UnixTime, E> {
                u64::try_from(v)
                    .map(UnixTime::from_secs)
                    .map_err(|_| E::custom("negative time"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<UnixTime, E> {
                if v.is_finite() && v >= 0.0 {
                    // Saturating float-to-int conversion; sub-millisecond parts are dropped.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Ok(UnixTime::from_millis((v * 1000.0) as u64))
                } else {
                    Err(E::custom("not a non-negative number of seconds"))
                }
            }
        }
        d.deserialize_any(Secs)
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
        assert_eq!(UnixTime::MAX.plus_secs(1), UnixTime::MAX);
        assert_eq!(UnixTime::from_secs(u64::MAX), UnixTime::MAX);
        assert_eq!(UnixTime::MAX.plus(Duration::MAX), UnixTime::MAX);
        assert_eq!(t.secs_until(UnixTime::from_secs(4)), 0);
        assert_eq!(t.secs_until(UnixTime::from_secs(14)), 4);
        assert_eq!(t.until(t.plus_millis(1_500)), Duration::from_millis(1_500));
        assert_eq!(t.plus_millis(999).as_secs(), 10);
    }

    #[test]
    fn from_system_time_keeps_milliseconds() {
        let st = UNIX_EPOCH + Duration::from_millis(1_500);
        let t = UnixTime::from(st);
        assert_eq!(t.as_secs(), 1);
        assert_eq!(t.as_millis(), 1_500);
        assert_eq!(SystemTime::from(t), st);
    }

    #[test]
    fn serde_is_whole_seconds() {
        let t = UnixTime::from_millis(1_700_000_000_750);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000");
        let back: UnixTime = serde_json::from_str("1700000000").unwrap();
        assert_eq!(back, UnixTime::from_secs(1_700_000_000));
        let frac: UnixTime = serde_json::from_str("1.5").unwrap();
        assert_eq!(frac.as_millis(), 1_500);
        assert!(serde_json::from_str::<UnixTime>("-1").is_err());
        assert!(serde_json::from_str::<UnixTime>("\"1\"").is_err());
    }
}
