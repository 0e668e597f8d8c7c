//! Login throttling: failed attempts are counted per account and per client address in
//! a fixed window; past the bound, attempts are refused with 429 and Retry-After until
//! the window ends. Counters live in this server instance's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::error::{Error, Result};
use crate::limits;

struct Window {
    started: Instant,
    failures: AtomicU32,
}

#[derive(Clone)]
pub struct LoginLimiter {
    windows: Cache<String, Arc<Window>>,
    per_account: u32,
    per_address: u32,
    window: Duration,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(
            limits::LOGIN_ATTEMPTS_PER_ACCOUNT,
            limits::LOGIN_ATTEMPTS_PER_ADDRESS,
            Duration::from_secs(limits::LOGIN_WINDOW_SECS),
        )
    }
}

impl LoginLimiter {
    pub fn new(per_account: u32, per_address: u32, window: Duration) -> Self {
        Self {
            windows: Cache::builder().max_capacity(1_000_000).time_to_live(window).build(),
            per_account,
            per_address,
            window,
        }
    }

    fn check_key(&self, key: &str, max: u32) -> Result<()> {
        if let Some(w) = self.windows.get(key)
            && w.failures.load(Ordering::Relaxed) >= max
        {
            let left = self.window.saturating_sub(w.started.elapsed()).as_secs().max(1);
            return Err(Error::RateLimited { retry_after_secs: left });
        }
        Ok(())
    }

    /// Refuses the attempt if the account or the address is over its bound.
    pub fn check(&self, account: &str, address: &str) -> Result<()> {
        self.check_key(&format!("acct:{account}"), self.per_account)?;
        self.check_key(&format!("addr:{address}"), self.per_address)
    }

    /// Counts a failed attempt.
    pub fn failed(&self, account: &str, address: &str) {
        for key in [format!("acct:{account}"), format!("addr:{address}")] {
            let w = self
                .windows
                .get_with(key, || Arc::new(Window { started: Instant::now(), failures: AtomicU32::new(0) }));
            w.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_bound_with_a_retry_time() {
        let l = LoginLimiter::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            l.check("t1:a@x", "1.2.3.4").unwrap();
            l.failed("t1:a@x", "1.2.3.4");
        }
        match l.check("t1:a@x", "1.2.3.4") {
            Err(Error::RateLimited { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs))
            }
            other => panic!("expected rate limit, got {other:?}"),
        }
        // Another account from the same address is still allowed.
        l.check("t1:b@x", "1.2.3.4").unwrap();
    }
}
