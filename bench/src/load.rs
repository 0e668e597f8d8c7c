//! A closed-loop load: C clients, each sending its next request as soon as the previous
//! one answered, for a fixed time. Every request must succeed; the first failure stops
//! the phase and is returned (the figures would not mean what they say).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::progress;
use crate::stats::{Latency, rate};

/// What one timed phase did.
#[derive(Debug, Clone)]
pub struct Phase {
    pub label: String,
    pub clients: usize,
    /// Requests answered successfully.
    pub requests: usize,
    /// Items they carried (ledger entries, events…).
    pub items: usize,
    /// From the start until the last request in flight at the deadline answered.
    pub wall: Duration,
    pub latency: Latency,
}

impl Phase {
    pub fn items_per_sec(&self) -> f64 {
        rate(self.items, self.wall)
    }

    pub fn requests_per_sec(&self) -> f64 {
        rate(self.requests, self.wall)
    }
}

/// Runs `clients` loops for `duration`; loop `c` calls `work(c, n)` for its n-th
/// request, which returns how many items the request carried. No request starts after
/// the deadline; those in flight finish and count.
pub async fn run<F, Fut>(label: &str, clients: usize, duration: Duration, work: F) -> anyhow::Result<Phase>
where
    F: Fn(usize, u64) -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let clients = clients.max(1);
    let stop = AtomicBool::new(false);
    let bar = progress::counter(label);
    let started = Instant::now();
    let deadline = started + duration;
    let loops = (0..clients).map(|c| {
        let (work, stop, bar) = (&work, &stop, &bar);
        async move {
            let mut latencies = Vec::with_capacity(4096);
            let mut items = 0;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let t0 = Instant::now();
                match work(c, n).await {
                    Ok(k) => {
                        latencies.push(t0.elapsed());
                        items += k;
                        bar.inc(1);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e.context(format!("client {c}, request {n}")));
                    }
                }
                n += 1;
            }
            Ok((latencies, items))
        }
    });
    let results = futures::future::join_all(loops).await;
    let wall = started.elapsed();
    bar.finish_and_clear();
    let mut all = Vec::new();
    let mut items = 0;
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok((l, k)) => {
                all.extend(l);
                items += k;
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(first) = errors.into_iter().next() {
        return Err(first.context(format!("{label}: a request failed after {} successful request(s)", all.len())));
    }
    Ok(Phase { label: label.to_string(), clients, requests: all.len(), items, wall, latency: Latency::of(&all) })
}
