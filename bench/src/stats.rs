//! Latency figures: mean and nearest-rank percentiles of a set of durations.

use std::time::Duration;

/// Summary of a set of per-item durations (all in milliseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(samples: &[Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean_ms = ms.iter().sum::<f64>() / ms.len() as f64;
        Self { mean_ms, p50_ms: percentile(&ms, 50.0), p99_ms: percentile(&ms, 99.0), max_ms: ms[ms.len() - 1] }
    }
}

/// Nearest-rank percentile of an ascending, non-empty slice.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Items per second over a wall time.
pub fn rate(count: usize, wall: Duration) -> f64 {
    let s = wall.as_secs_f64();
    if s > 0.0 { count as f64 / s } else { 0.0 }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&samples);
        assert!((l.mean_ms - 50.5).abs() < 1e-9);
        assert!((l.p50_ms - 50.0).abs() < 1e-9);
        assert!((l.p99_ms - 99.0).abs() < 1e-9);
        assert!((l.max_ms - 100.0).abs() < 1e-9);
        let one = Latency::of(&[Duration::from_millis(7)]);
        assert!((one.p99_ms - 7.0).abs() < 1e-9);
        assert!(Latency::of(&[]).mean_ms.abs() < 1e-9);
    }
}
