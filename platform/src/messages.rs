//! A member's in-app messages (expiry reminders, order and level updates, the
//! merchant's own messages): newest first, unread counts, marking read.

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

/// How many of the member's messages are unread.
pub async fn unread(tx: &mut TenantTx, member_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM messages WHERE member_id = $1 AND read_at IS NULL")
        .bind(member_id)
        .fetch_one(&mut **tx)
        .await?)
}

/// Marks one of the member's messages read (again is fine); 404 for another's.
pub async fn mark_read(tx: &mut TenantTx, member_id: i64, id: i64) -> Result<Message> {
    let m: Option<Message> = sqlx::query_as(
        "UPDATE messages SET read_at = coalesce(read_at, now()) WHERE id = $1 AND member_id = $2 \
         RETURNING id, kind, title, body, created_at, read_at",
    )
    .bind(id)
    .bind(member_id)
    .fetch_optional(&mut **tx)
    .await?;
    m.ok_or_else(|| crate::error::Error::not_found("message_not_found", "no such message"))
}

/// Marks every unread message of the member read; returns how many were unread.
pub async fn mark_all_read(tx: &mut TenantTx, member_id: i64) -> Result<u64> {
    Ok(sqlx::query("UPDATE messages SET read_at = now() WHERE member_id = $1 AND read_at IS NULL")
        .bind(member_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}
