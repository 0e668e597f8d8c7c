//! Events the platform itself emits into the rules pipeline (SPEC R1, issue 12): written
//! to `events_outbox` in the same transaction as what caused them, then run through the
//! rules by `rules::pipeline::drain_outbox` (right after the request, and by the jobs),
//! once each (their event id is `outbox:<id>`), within the cascade bound.

use sqlx::PgConnection;

use crate::error::Result;

/// Internal events of the ledger and levels.
pub const INTERNAL_EVENTS: &[&str] = &["level_changed", "points_released"];

/// The mall's own events, with their payloads (documented in `examples/README.md`):
/// - `logged_in` {}: a member signed in (password or one-time code);
/// - `favorited` {product_id}: a product became a favorite;
/// - `review_posted` {order_id, product_id, rating, has_text}: a completed order was reviewed;
/// - `order_completed` {source: "mall", order_id, order_no, product_id, currency,
///   points_amount, cash_fen}: a mall order reached `completed`;
/// - `first_redemption` {order_id, product_id}: the member's first mall order;
/// - `profile_completed` {}: the member's profile got its nickname and avatar;
/// - `task_completed` {task_id, name, period}: the member completed a task (K2).
pub const MALL_EVENTS: &[&str] = &[
    "logged_in",
    "favorited",
    "review_posted",
    "order_completed",
    "first_redemption",
    "profile_completed",
    "task_completed",
];

/// Every kind the pipeline drains from the outbox.
pub fn drained_kinds() -> Vec<&'static str> {
    INTERNAL_EVENTS.iter().chain(MALL_EVENTS).copied().collect()
}

/// Emits `kind` for `member_id` in the transaction on `conn`.
pub async fn emit(conn: &mut PgConnection, kind: &str, member_id: i64, payload: serde_json::Value) -> Result<()> {
    emit_all(conn, vec![Emitted { kind, member_id, payload }]).await
}

/// One event to emit.
pub struct Emitted<'a> {
    pub kind: &'a str,
    pub member_id: i64,
    pub payload: serde_json::Value,
}

/// Emits `events` in the transaction on `conn`, in one statement and in this order.
pub async fn emit_all(conn: &mut PgConnection, events: Vec<Emitted<'_>>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    let members: Vec<i64> = events.iter().map(|e| e.member_id).collect();
    let payloads: Vec<serde_json::Value> = events.into_iter().map(|e| e.payload).collect();
    sqlx::query(
        "INSERT INTO events_outbox (kind, member_id, payload) \
         SELECT k, m, p FROM unnest($1::text[], $2::bigint[], $3::jsonb[]) WITH ORDINALITY AS t(k, m, p, i) ORDER BY i",
    )
    .bind(&kinds)
    .bind(&members)
    .bind(&payloads)
    .execute(conn)
    .await?;
    Ok(())
}
