//! The report of the drivers' `load` examples: one Markdown table row per scenario, with
//! latency percentiles and when token requests arrived.

use std::time::Duration;

use crate::hostile::HostileServer;

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    /// The scenario's name.
    pub scenario: &'static str,
    /// Token requests the endpoint received.
    pub requests: usize,
    /// Calls made by all callers.
    pub calls: usize,
    /// Median call latency.
    pub p50: Duration,
    /// 99th-percentile call latency.
    pub p99: Duration,
    /// Calls that returned an error.
    pub failed_calls: usize,
    /// Callers that never got a token.
    pub callers_failed: usize,
    /// Anything else worth saying.
    pub note: String,
}

/// What one wave of callers saw: latencies (sorted), failures, how many got the access token
/// `old`.
#[derive(Debug)]
pub struct Wave {
    /// Call latencies, sorted.
    pub latencies: Vec<Duration>,
    /// Calls that failed.
    pub failed: usize,
    /// Calls that got the access token `old`.
    pub got_old: usize,
}

/// The `p`-th percentile of `sorted` (0 when empty).
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// A duration in s, µs or ns, whichever reads best.
pub fn fmt_d(d: Duration) -> String {
    if d >= Duration::from_millis(10) {
        format!("{:.2} s", d.as_secs_f64())
    } else if d >= Duration::from_micros(10) {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{} ns", d.as_nanos())
    }
}

/// When each token request arrived at `server`, in seconds after the first.
pub fn arrivals(server: &HostileServer) -> String {
    let r = server.requests_to("/token");
    let Some(first) = r.first().map(|r| r.received_at) else {
        return String::new();
    };
    r.iter()
        .map(|r| format!("{:.1}", (r.received_at - first).as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Print the table's header.
pub fn print_header() {
    println!(
        "| scenario | token requests | calls | call p50 | call p99 | failed calls | callers failed | note |"
    );
    println!("|---|---|---|---|---|---|---|---|");
}

/// Print one row.
pub fn print_row(row: &Row) {
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        row.scenario,
        row.requests,
        row.calls,
        fmt_d(row.p50),
        fmt_d(row.p99),
        row.failed_calls,
        row.callers_failed,
        row.note
    );
}
