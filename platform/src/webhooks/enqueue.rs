//! Writing deliveries into the outbox, in the caller's transaction: one row per enabled
//! endpoint of the selected schema that subscribes to the event's type, all in one
//! statement (a mall without endpoints pays one cheap statement per change). The body is
//! fixed here: `{"type", "timestamp", "data"}`; its event id is shared by every endpoint
//! it goes to and by its retries.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

/// Enqueues one event of `event_type` with `data`.
pub async fn event(conn: &mut PgConnection, event_type: &str, data: Value) -> Result<()> {
    events(conn, event_type, vec![data]).await
}

/// Enqueues one event of `event_type` per item of `data`, in one statement.
pub async fn events(conn: &mut PgConnection, event_type: &str, data: Vec<Value>) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let timestamp = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let ids: Vec<Uuid> = data.iter().map(|_| Uuid::new_v4()).collect();
    let bodies: Vec<Value> =
        data.into_iter().map(|d| json!({"type": event_type, "timestamp": timestamp, "data": d})).collect();
    sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload) \
         SELECT e.id, x.id, $1, x.body FROM unnest($2::uuid[], $3::jsonb[]) WITH ORDINALITY AS x(id, body, i) \
         JOIN webhook_endpoints e ON e.enabled AND $1 = ANY (e.event_types) \
         ORDER BY x.i, e.id",
    )
    .bind(event_type)
    .bind(&ids)
    .bind(&bodies)
    .execute(conn)
    .await?;
    Ok(())
}
