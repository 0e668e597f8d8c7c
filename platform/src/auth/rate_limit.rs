//! Login throttling: attempts are counted per account (tenant + normalized identifier)
//! and per client address in a fixed window, before the password is checked; past the
//! bound, attempts are refused with 429 and Retry-After until the window ends. A
//! successful login clears its account's count and gives the address its attempt back.
//! Counters live in the database (`throttle`), so the bounds hold under concurrency
//! and across server instances.

use std::time::Duration;

use sqlx::PgPool;

use super::throttle;
use crate::error::Result;
use crate::limits;

#[derive(Clone)]
pub struct LoginLimiter {
    per_account: u32,
    per_address: u32,
    window: Duration,
    /// Prefix of every key (tests give each server its own counters).
    namespace: String,
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
        Self { per_account, per_address, window, namespace: String::new() }
    }

    /// The same bounds with counters of their own.
    pub fn namespaced(mut self, namespace: &str) -> Self {
        self.namespace = format!("{namespace}:");
        self
    }

    fn keys(&self, account: &str, address: &str) -> (String, String) {
        (format!("{}login:acct:{account}", self.namespace), format!("{}login:addr:{address}", self.namespace))
    }

    /// Counts an attempt; refuses it if the account or the address is over its bound.
    pub async fn attempt(&self, pool: &PgPool, account: &str, address: &str) -> Result<()> {
        let (acct, addr) = self.keys(account, address);
        let secs = self.window.as_secs() as i64;
        throttle::hit(pool, &addr, self.per_address, secs).await?;
        throttle::hit(pool, &acct, self.per_account, secs).await
    }

    /// The attempt succeeded.
    pub async fn succeeded(&self, pool: &PgPool, account: &str, address: &str) -> Result<()> {
        let (acct, addr) = self.keys(account, address);
        throttle::clear(pool, &acct).await?;
        throttle::refund(pool, &addr).await
    }
}
