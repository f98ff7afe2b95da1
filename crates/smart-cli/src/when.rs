//! Times for people: `2026-12-01 10:15:00 UTC (in 4 min 59 s)`. `--json` output keeps epoch
//! seconds instead.

use smart_core::UnixTime;

/// The current time.
pub(crate) fn now() -> UnixTime {
    UnixTime::from(std::time::SystemTime::now())
}

/// `secs` (seconds since the epoch) as `YYYY-MM-DD hh:mm:ss UTC`.
pub(crate) fn utc(secs: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{secs} (seconds since 1970)"))
}

/// A duration in words: `59 s`, `4 min 59 s`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn span(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) if s == 0 => format!("{m} min"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, 0) => format!("{h} h"),
        (0, _, _) => format!("{h} h {m} min"),
        (_, 0, _) => format!("{d} d"),
        _ => format!("{d} d {h} h"),
    }
}

/// `at` (seconds since the epoch) relative to `now`: `in 4 min 59 s`, `3 min ago`, `now`.
pub(crate) fn relative(at: u64, now: u64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", span(at - now)),
        std::cmp::Ordering::Less => format!("{} ago", span(now - at)),
        std::cmp::Ordering::Equal => "now".into(),
    }
}

/// `2026-12-01 10:15:00 UTC (in 4 min 59 s)`.
pub(crate) fn human(at: u64) -> String {
    format!("{} ({})", utc(at), relative(at, now().as_secs()))
}

/// The expiry of a token in words: `expires at … (in …)` or `expired at … (… ago)`.
pub(crate) fn expiry(at: u64) -> String {
    let now = now().as_secs();
    let verb = if at > now { "expires" } else { "expired" };
    format!("{verb} at {} ({})", utc(at), relative(at, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_spans() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_796_120_100), "2026-12-01 10:15:00 UTC");
        assert_eq!(span(0), "0 s");
        assert_eq!(span(59), "59 s");
        assert_eq!(span(60), "1 min");
        assert_eq!(span(299), "4 min 59 s");
        assert_eq!(span(3_600), "1 h");
        assert_eq!(span(7_500), "2 h 5 min");
        assert_eq!(span(86_400 * 3 + 3_600 * 4 + 5), "3 d 4 h");
        assert_eq!(relative(1_299, 1_000), "in 4 min 59 s");
        assert_eq!(relative(1_000, 1_180), "3 min ago");
        assert_eq!(relative(5, 5), "now");
    }
}
