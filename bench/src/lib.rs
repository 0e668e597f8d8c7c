//! Shared code of the benchmark commands (`bench-tenants`, `bench-ledger`, `bench-flash`, `bench-catalog`,
//! `bench-events`, `bench-rules`, `bench-reload`): the server as a child process, HTTP
//! set-up of a tenant over the real API, a closed-loop load generator, the `pgbench`
//! anchor, latency statistics, progress bars and cleanup.
//!
//! The commands print figures; they are not tests and never fail because a number is
//! slow. They do fail on real errors (a non-2xx answer, a ledger that does not verify),
//! and say so.

pub mod api;
pub mod cleanup;
pub mod cpu;
pub mod harness;
pub mod load;
pub mod pgbench;
pub mod progress;
pub mod server;
pub mod stats;

use rand::Rng;
use rand::distr::Alphanumeric;

/// Six lowercase letters and digits, so reruns never collide on slugs.
pub fn random_runid() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(6).map(|b| char::from(b).to_ascii_lowercase()).collect()
}

/// `release` or `debug`: figures of a debug build are not representative.
pub fn build_kind() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

/// A note for the first line of a run's output.
pub fn build_note() -> &'static str {
    if cfg!(debug_assertions) { " (debug figures are not representative; use --release)" } else { "" }
}

/// `met` / `NOT met` (targets are printed, never enforced).
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The 1-minute load average and the number of CPUs, e.g. "load 1.93 on 2 CPUs": the
/// machine may be shared (other builds), which moves every figure.
pub fn machine_load() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!("load {load} on {cpus} CPUs")
}

/// Thousands with a thin separator: 12345.6 → "12,346".
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3 + 1);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0.0), "0");
        assert_eq!(super::thousands(999.4), "999");
        assert_eq!(super::thousands(1234.0), "1,234");
        assert_eq!(super::thousands(1234567.0), "1,234,567");
        assert_eq!(super::thousands(-1234.0), "-1,234");
    }
}
