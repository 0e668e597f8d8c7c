//! The event log as staff read it (R5): events received and what the rules made of them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::batch::EventStatus;
use crate::error::Result;
use crate::tx::TenantTx;

/// One recorded event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventRow {
    pub id: i64,
    pub event_key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub member_id: i64,
    /// The event's data as posted (as a JSON string of its text in the rare case that
    /// stored data cannot be read back as JSON numbers, e.g. one beyond f64).
    pub data: Value,
    pub occurred_at: DateTime<Utc>,
    pub source: String,
    pub status: EventStatus,
    pub effects: Value,
    pub error: Option<String>,
}

/// Which events: by outcome and member, newest first, before an id.
#[derive(Debug, Default)]
pub struct Filter {
    pub status: Option<String>,
    pub member_id: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A row as stored; JSON columns are read as text so that no stored value can fail
/// the page (`stored_json`).
#[derive(sqlx::FromRow)]
struct Stored {
    id: i64,
    event_key: String,
    #[sqlx(rename = "type")]
    kind: String,
    member_id: i64,
    data: String,
    occurred_at: DateTime<Utc>,
    source: String,
    status: EventStatus,
    effects: String,
    error: Option<String>,
}

impl From<Stored> for EventRow {
    fn from(r: Stored) -> Self {
        Self {
            id: r.id,
            event_key: r.event_key,
            kind: r.kind,
            member_id: r.member_id,
            data: stored_json(r.data),
            occurred_at: r.occurred_at,
            source: r.source,
            status: r.status,
            effects: stored_json(r.effects),
            error: r.error,
        }
    }
}

/// JSON read back from PostgreSQL as text. Data stored before the edge refused
/// unstorable numbers (or written by another path) may not parse as `serde_json`
/// numbers; such a value is answered as its text rather than failing the read.
fn stored_json(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

pub async fn page(tx: &mut TenantTx, f: &Filter) -> Result<Vec<EventRow>> {
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT id, event_key, type, member_id, data::text AS data, occurred_at, source, status, \
         effects::text AS effects, error FROM events \
         WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR member_id = $2) AND ($3::bigint IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(&f.status)
    .bind(f.member_id)
    .bind(f.before)
    .bind(f.limit)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(EventRow::from).collect())
}
