//! A member's in-app messages (expiry reminders, order and level updates).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::tx::TenantTx;

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Message {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// The member's messages, newest first, before an id.
pub async fn page(tx: &mut TenantTx, member_id: i64, before: Option<i64>, limit: i64) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, title, body, created_at, read_at FROM messages WHERE member_id = $1 \
         AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(member_id)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?)
}
