//! The delivery log of an endpoint (newest first), manual replay and the test event.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::endpoints;
use super::owner::{self, OwnerTx};
use crate::error::{Error, Result};

/// One delivery of an event to an endpoint, with its last attempt.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: i64,
    /// The `webhook-id` header is `msg_` and this id without dashes.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending` (waiting for its next attempt), `delivered` (answered 2xx) or `failed`
    /// (out of attempts, or its endpoint was turned off).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status of the last attempt (none when it could not be reached).
    pub last_status_code: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    /// The first 1 KB of the receiver's last answer.
    pub response_excerpt: Option<String>,
    /// The delivery this one replays.
    pub replay_of: Option<i64>,
    /// The body sent: `{"type", "timestamp", "data"}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub(crate) const COLUMNS: &str = "id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, \
     last_attempt_at, last_status_code, last_latency_ms, last_error, response_excerpt, replay_of, payload, \
     created_at, delivered_at";

/// A page of an endpoint's deliveries, newest first (404 for an unknown endpoint).
pub async fn list(conn: &mut PgConnection, endpoint_id: i64, before: Option<i64>, limit: i64) -> Result<Vec<Delivery>> {
    endpoints::get(conn, endpoint_id).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2::bigint IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    )))
    .bind(endpoint_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Sends a delivery again: a new delivery of the same event to the same endpoint (same
/// `webhook-id`, so a receiver that de-duplicates keeps one), due now, whatever the
/// first one's state. 409 when its endpoint is turned off.
pub async fn replay(tx: &mut impl OwnerTx, delivery_id: i64) -> Result<Delivery> {
    let endpoint_id: i64 = sqlx::query_scalar("SELECT endpoint_id FROM webhook_deliveries WHERE id = $1")
        .bind(delivery_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("webhook_delivery_not_found", "no such webhook delivery"))?;
    enabled(tx, endpoint_id).await?;
    let delivery: Delivery = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, replay_of) \
         SELECT endpoint_id, event_id, event_type, payload, id FROM webhook_deliveries WHERE id = $1 \
         RETURNING {COLUMNS}"
    )))
    .bind(delivery_id)
    .fetch_one(&mut **tx)
    .await?;
    let details = json!({"delivery_id": delivery_id, "new_id": delivery.id});
    owner::audit(tx, "webhook.replay", &format!("webhook:{endpoint_id}"), details).await?;
    Ok(delivery)
}

/// 404 for an unknown endpoint, 409 for one turned off.
async fn enabled(conn: &mut PgConnection, endpoint_id: i64) -> Result<()> {
    if !endpoints::get(conn, endpoint_id).await?.enabled {
        return Err(Error::conflict("webhook_disabled", "the endpoint is turned off; turn it on first"));
    }
    Ok(())
}

/// Queues the `webhook.test` event to one endpoint (whatever it subscribes to).
pub async fn send_test(tx: &mut impl OwnerTx, endpoint_id: i64) -> Result<Delivery> {
    enabled(tx, endpoint_id).await?;
    let event_id = Uuid::new_v4();
    let now = Utc::now();
    let owner = tx.owner();
    let key = if matches!(owner, super::owner::Owner::Alliance(_)) { "alliance" } else { "mall" };
    let body = json!({
        "type": super::TEST_EVENT,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {"endpoint_id": endpoint_id, key: owner.slug()},
    });
    let delivery: Delivery = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload) VALUES ($1, $2, $3, $4) \
         RETURNING {COLUMNS}"
    )))
    .bind(endpoint_id)
    .bind(event_id)
    .bind(super::TEST_EVENT)
    .bind(body)
    .fetch_one(&mut **tx)
    .await?;
    owner::audit(tx, "webhook.test", &format!("webhook:{endpoint_id}"), json!({"delivery_id": delivery.id})).await?;
    Ok(delivery)
}

/// Marks the endpoint's pending deliveries failed (it was turned off); a replay sends
/// any of them again.
pub async fn fail_pending(conn: &mut PgConnection, endpoint_id: i64, why: &str) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $2 WHERE endpoint_id = $1 AND status = 'pending'",
    )
    .bind(endpoint_id)
    .bind(why)
    .execute(conn)
    .await?
    .rows_affected())
}
