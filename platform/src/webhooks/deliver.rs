//! The delivery worker. Each pass goes over the active malls and the alliances; in each it claims due
//! deliveries in a short transaction (`FOR UPDATE SKIP LOCKED`, pushing
//! `next_attempt_at` out by a lease and counting the attempt), commits, sends them
//! (several at once, no transaction open), then records each outcome in another short
//! transaction. Two instances never claim the same delivery; a crash mid-send leaves the
//! delivery to be claimed again when its lease ends, so deliveries survive restarts.
//! A failed attempt is retried after `RETRY_DELAYS_SECS` (±10% jitter) up to
//! `ATTEMPTS_MAX` attempts; `FAILURE_RUN_MAX` failed attempts in a row turn the endpoint
//! off, fail its pending deliveries and leave an audit entry for the merchant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use rand::Rng;
use serde_json::json;
use uuid::Uuid;

use super::address::{self, AddressPolicy, CheckedResolver};
use super::owner::Owner;
use super::{bounds, deliveries, endpoints, sign};
use crate::audit::Actor;
use crate::db::Db;
use crate::directory::{self, TenantStatus};
use crate::error::{Error, Result};
use crate::vault::Vault;

/// The HTTP client of deliveries: no redirects, no proxy, bounded time, and a resolver
/// that keeps public addresses only (unless private ones are allowed).
pub fn client(policy: AddressPolicy) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(bounds::REQUEST_TIMEOUT_SECS))
        .connect_timeout(Duration::from_secs(bounds::CONNECT_TIMEOUT_SECS))
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver { policy }))
        .user_agent("pointsmall-webhooks/1")
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("webhook client: {e}")))
}

/// Sends due deliveries.
#[derive(Clone)]
pub struct Deliverer {
    db: Db,
    vault: Vault,
    policy: AddressPolicy,
    http: reqwest::Client,
}

/// A delivery claimed for one attempt.
struct Claimed {
    id: i64,
    endpoint_id: i64,
    event_id: Uuid,
    body: String,
    /// The attempt this is (1 for the first).
    attempt: i32,
}

/// What one attempt gave.
struct Outcome {
    ok: bool,
    status: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
    excerpt: Option<String>,
}

impl Deliverer {
    pub fn new(db: Db, vault: Vault, policy: AddressPolicy) -> Result<Self> {
        Ok(Self { http: client(policy)?, db, vault, policy })
    }

    /// Passes over the malls (or the one named) every `every`, for as long as it runs.
    pub async fn run_forever(self, every: Duration, only: Option<String>) {
        loop {
            if let Err(e) = self.pass(only.as_deref()).await {
                tracing::error!(error = %e, "webhook deliveries could not run");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// One pass over the active malls and the alliances (or the one named by its slug);
    /// returns the attempts made.
    pub async fn pass(&self, only: Option<&str>) -> Result<u64> {
        let mut owners: Vec<Owner> = directory::list(self.db.control())
            .await?
            .into_iter()
            .filter(|t| t.status == TenantStatus::Active)
            .map(Owner::Mall)
            .collect();
        owners.extend(directory::list_alliances(self.db.control()).await?.into_iter().map(Owner::Alliance));
        let mut attempts = 0;
        for o in owners.iter().filter(|o| only.is_none_or(|s| s == o.slug())) {
            match self.owner_pass(o).await {
                Ok(n) => attempts += n,
                Err(e) => tracing::warn!(owner = %o.slug(), error = %e, "webhook deliveries of a mall failed"),
            }
        }
        Ok(attempts)
    }

    /// Claims and sends a mall's (or alliance's) due deliveries, a batch at a time, while
    /// there are some (at most 20 batches a pass, so one busy mall cannot hold the others
    /// up long).
    async fn owner_pass(&self, t: &Owner) -> Result<u64> {
        let mut total = 0;
        for _ in 0..20 {
            let claimed = self.claim(t).await?;
            let n = claimed.len() as u64;
            if n == 0 {
                break;
            }
            let targets = self.targets(t, &claimed).await?;
            let results: Vec<Result<()>> = futures::stream::iter(claimed)
                .map(|c| {
                    let target = targets.get(&c.endpoint_id);
                    async move {
                        let outcome = self.attempt(target, &c).await;
                        self.record(t, &c, &outcome).await
                    }
                })
                .buffer_unordered(bounds::SENDS_IN_FLIGHT_MAX)
                .collect()
                .await;
            for r in results {
                r?;
            }
            total += n;
            if n < bounds::CLAIM_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    async fn claim(&self, t: &Owner) -> Result<Vec<Claimed>> {
        let mut tx = self.db.tenant_tx(t.cluster(), t.schema()).await?;
        let rows: Vec<(i64, i64, Uuid, String, i32)> = sqlx::query_as(
            "UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(), \
                 next_attempt_at = now() + make_interval(secs => $2) \
             WHERE d.id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now() \
                            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING d.id, d.endpoint_id, d.event_id, d.payload::text, d.attempts",
        )
        .bind(bounds::CLAIM_BATCH)
        .bind(bounds::LEASE_SECS as f64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(id, endpoint_id, event_id, body, attempt)| Claimed { id, endpoint_id, event_id, body, attempt })
            .collect())
    }

    /// The URL and key of every enabled endpoint the claimed deliveries go to.
    async fn targets(&self, t: &Owner, claimed: &[Claimed]) -> Result<HashMap<i64, endpoints::Target>> {
        let mut ids: Vec<i64> = claimed.iter().map(|c| c.endpoint_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.db.tenant_tx(t.cluster(), t.schema()).await?;
        let mut out = HashMap::new();
        for id in ids {
            if let Some(target) = endpoints::target(&mut tx, &self.vault, t, id).await? {
                out.insert(id, target);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn attempt(&self, target: Option<&endpoints::Target>, c: &Claimed) -> Outcome {
        let Some(target) = target else {
            return Outcome::failed(None, 0, "the endpoint is turned off or gone".into());
        };
        // A literal address is checked here too: the resolver only sees host names.
        if let Err(e) = address::check_url(&target.url, self.policy) {
            return Outcome::failed(None, 0, e.to_string());
        }
        let msg_id = format!("msg_{}", c.event_id.simple());
        let timestamp = Utc::now().timestamp();
        let signature = sign::signature(&target.key, &msg_id, timestamp, &c.body);
        let started = Instant::now();
        let sent = self
            .http
            .post(&target.url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(c.body.clone())
            .send()
            .await;
        let mut outcome = match sent {
            Ok(resp) => {
                let status = resp.status();
                let excerpt = excerpt(resp).await;
                Outcome {
                    ok: status.is_success(),
                    status: Some(i32::from(status.as_u16())),
                    latency_ms: 0,
                    error: (!status.is_success()).then(|| format!("answered {status}")),
                    excerpt: Some(excerpt),
                }
            }
            Err(e) => Outcome::failed(None, 0, describe(&e)),
        };
        outcome.latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        outcome
    }

    async fn record(&self, t: &Owner, c: &Claimed, o: &Outcome) -> Result<()> {
        let mut tx = self.db.tenant_tx(t.cluster(), t.schema()).await?;
        let (status, delay_secs) = match (o.ok, c.attempt >= bounds::ATTEMPTS_MAX) {
            (true, _) => ("delivered", 0.0),
            (false, true) => ("failed", 0.0),
            (false, false) => ("pending", retry_delay_secs(c.attempt)),
        };
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, next_attempt_at = now() + make_interval(secs => $4), \
                 last_status_code = $5, last_latency_ms = $6, last_error = $7, response_excerpt = $8, \
                 delivered_at = CASE WHEN $3 = 'delivered' THEN now() END \
             WHERE id = $1 AND attempts = $2 AND status = 'pending'",
        )
        .bind(c.id)
        .bind(c.attempt)
        .bind(status)
        .bind(delay_secs)
        .bind(o.status)
        .bind(o.latency_ms)
        .bind(o.error.as_deref().map(|e| clip(e, 500)))
        .bind(&o.excerpt)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // 0: another instance took the delivery over after the lease ran out.
        if n == 1 {
            self.count_run(&mut tx, t, c.endpoint_id, o.ok).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves the endpoint's run of failures; turns it off at `FAILURE_RUN_MAX`.
    async fn count_run(&self, conn: &mut sqlx::PgConnection, t: &Owner, endpoint_id: i64, ok: bool) -> Result<()> {
        if ok {
            sqlx::query("UPDATE webhook_endpoints SET failure_run = 0 WHERE id = $1 AND failure_run <> 0")
                .bind(endpoint_id)
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        let row: Option<(i32, bool)> = sqlx::query_as(
            "UPDATE webhook_endpoints SET failure_run = failure_run + 1 WHERE id = $1 RETURNING failure_run, enabled",
        )
        .bind(endpoint_id)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some((run, true)) if run >= bounds::FAILURE_RUN_MAX => disable(conn, t, endpoint_id, run).await,
            _ => Ok(()),
        }
    }
}

/// Turns an endpoint off after `run` failed attempts in a row, fails its pending
/// deliveries and tells the merchant (audit log, actor `system:webhooks`).
async fn disable(conn: &mut sqlx::PgConnection, t: &Owner, endpoint_id: i64, run: i32) -> Result<()> {
    let reason = format!("turned off after {run} failed attempts in a row; fix the receiver, then turn it on again");
    sqlx::query("UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1")
        .bind(endpoint_id)
        .bind(&reason)
        .execute(&mut *conn)
        .await?;
    deliveries::fail_pending(conn, endpoint_id, "the endpoint was turned off after failing").await?;
    let details = json!({"failure_run": run, "reason": reason});
    t.audit(conn, &Actor::system("webhooks"), "webhook.disabled", &format!("webhook:{endpoint_id}"), details).await?;
    tracing::warn!(owner = %t.slug(), endpoint_id, run, "a webhook endpoint was turned off after failing");
    Ok(())
}

impl Outcome {
    fn failed(status: Option<i32>, latency_ms: i32, error: String) -> Self {
        Self { ok: false, status, latency_ms, error: Some(error), excerpt: None }
    }
}

/// The wait after failed attempt `attempt` (1-based), with ±10% jitter.
pub fn retry_delay_secs(attempt: i32) -> f64 {
    let i = usize::try_from(attempt - 1).unwrap_or(0).min(bounds::RETRY_DELAYS_SECS.len() - 1);
    let base = bounds::RETRY_DELAYS_SECS[i] as f64;
    base * rand::rng().random_range(0.9..=1.1)
}

/// The first `RESPONSE_EXCERPT_BYTES` of an answer (read no further).
async fn excerpt(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < bounds::RESPONSE_EXCERPT_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    clip(&String::from_utf8_lossy(&buf), bounds::RESPONSE_EXCERPT_BYTES)
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// An error of a send, in a line (its source chain included: "connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_over_about_a_day() {
        let total: i64 = bounds::RETRY_DELAYS_SECS.iter().sum();
        assert!((20 * 3600..=36 * 3600).contains(&total), "{total}");
        assert_eq!(bounds::RETRY_DELAYS_SECS.len() as i32, bounds::ATTEMPTS_MAX - 1);
        for attempt in 1..=bounds::ATTEMPTS_MAX {
            let d = retry_delay_secs(attempt);
            let i = (attempt as usize - 1).min(bounds::RETRY_DELAYS_SECS.len() - 1);
            let base = bounds::RETRY_DELAYS_SECS[i] as f64;
            assert!(d >= base * 0.9 && d <= base * 1.1, "{attempt}: {d}");
        }
    }

    #[test]
    fn clips_at_a_character_boundary() {
        assert_eq!(clip("积分商城", 7), "积分");
        assert_eq!(clip("abc", 10), "abc");
    }
}
