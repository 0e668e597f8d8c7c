//! The merchant's messages to its members (SPEC K6): written once for every member or a
//! saved segment, sent now or at a scheduled time (the jobs loop sends due ones), each
//! recipient getting an in-app message; the merchant sees how many got it and how many
//! have read it. These are in-app messages only (the member's inbox): no SMS or push
//! goes out, so the member's `marketing` switch (for outside channels) does not apply.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result, Validator};
use crate::limits::members::{BROADCAST_AHEAD_DAYS_MAX, BROADCAST_BODY_MAX_CHARS, BROADCAST_TITLE_MAX_CHARS};
use crate::segments::{self, MATCH, MemberFilter};
use crate::tx::TenantTx;

/// Where a broadcast stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastStatus {
    Scheduled,
    Sent,
    Cancelled,
}

impl BroadcastStatus {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "scheduled" => Ok(Self::Scheduled),
            "sent" => Ok(Self::Sent),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(Error::Internal(anyhow::anyhow!("unknown broadcast status {other:?}"))),
        }
    }
}

/// A message to members, with its reach.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Broadcast {
    pub id: i64,
    pub title: String,
    pub body: String,
    /// The saved segment it was written for; `null` for every member (or a segment
    /// deleted since).
    pub segment_id: Option<i64>,
    pub segment_name: Option<String>,
    /// Who it goes to, as the segment read when the message was written.
    pub filter: MemberFilter,
    pub send_at: DateTime<Utc>,
    pub status: BroadcastStatus,
    /// Members who got it (once sent).
    pub recipients: Option<i32>,
    /// Of those, how many have read it.
    pub read: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What staff send to write a message to members.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastInput {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub title: String,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub body: String,
    /// A saved segment; absent for every member.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub segment_id: Option<i64>,
    /// When to send it, at most a year ahead; absent or past means now.
    #[serde(default)]
    pub send_at: Option<DateTime<Utc>>,
}

type Row = (
    i64,
    String,
    String,
    Option<i64>,
    Option<String>,
    serde_json::Value,
    DateTime<Utc>,
    String,
    Option<i32>,
    i64,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

const SELECT: &str = "SELECT b.id, b.title, b.body, b.segment_id, s.name, b.filter, b.send_at, b.status, b.recipients, \
         (SELECT count(*) FROM messages x WHERE x.broadcast_id = b.id AND x.read_at IS NOT NULL), b.sent_at, b.created_at \
     FROM broadcasts b LEFT JOIN segments s ON s.id = b.segment_id";

fn from_row(r: Row) -> Result<Broadcast> {
    let (id, title, body, segment_id, segment_name, filter, send_at, status, recipients, read, sent_at, created_at) = r;
    let filter = segments::stored(&format!("broadcast {id}"), filter)?;
    let status = BroadcastStatus::parse(&status)?;
    Ok(Broadcast {
        id,
        title,
        body,
        segment_id,
        segment_name,
        filter,
        send_at,
        status,
        recipients,
        read,
        sent_at,
        created_at,
    })
}

fn validate(input: &BroadcastInput, now: DateTime<Utc>) -> Result<()> {
    let len_ok = |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max;
    let mut v = Validator::new();
    v.check(len_ok(&input.title, BROADCAST_TITLE_MAX_CHARS), "title", "1 to 100 characters");
    v.check(len_ok(&input.body, BROADCAST_BODY_MAX_CHARS), "body", "1 to 2000 characters");
    v.check(input.segment_id.is_none_or(|s| s >= 1), "segment_id", "a segment id");
    v.check(
        input.send_at.is_none_or(|at| at <= now + Duration::days(BROADCAST_AHEAD_DAYS_MAX)),
        "send_at",
        "at most 365 days ahead",
    );
    v.finish()
}

/// Writes a message to members; sends it in this transaction when it is due now.
/// Audited.
pub async fn create(tx: &mut TenantTx, input: &BroadcastInput, now: DateTime<Utc>) -> Result<Broadcast> {
    validate(input, now)?;
    let filter = match input.segment_id {
        Some(id) => segments::get(tx, id).await?.filter,
        None => MemberFilter::default(),
    };
    let send_at = input.send_at.filter(|at| *at > now).unwrap_or(now);
    let json = serde_json::to_value(&filter).map_err(|e| Error::Internal(e.into()))?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO broadcasts (title, body, segment_id, filter, send_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(input.title.trim())
    .bind(input.body.trim())
    .bind(input.segment_id)
    .bind(&json)
    .bind(send_at)
    .fetch_one(&mut **tx)
    .await?;
    tx.audit(
        "broadcast.create",
        &format!("broadcast:{id}"),
        serde_json::json!({"title": input.title.trim(), "segment_id": input.segment_id, "send_at": send_at}),
    )
    .await?;
    if send_at <= now {
        send(tx, id, &filter, now).await?;
    }
    get(tx, id).await
}

/// Writes the message of broadcast `id` to every member `filter` matches now, and marks
/// it sent with the count. A member gets it once, however often this runs.
async fn send(tx: &mut TenantTx, id: i64, filter: &MemberFilter, now: DateTime<Utc>) -> Result<i64> {
    let bound = filter.bind(tx.tenant().settings.tz())?;
    let sql = format!(
        "WITH sent AS (INSERT INTO messages (member_id, kind, title, body, broadcast_id, dedupe_key) \
         SELECT m.id, 'broadcast', b.title, b.body, b.id, 'broadcast:' || b.id || ':' || m.id \
         FROM broadcasts b, members m \
         WHERE b.id = $1 AND m.created_at <= $2 AND m.status = 'active' AND {MATCH} \
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1) SELECT count(*) FROM sent"
    );
    let (n,): (i64,) =
        bound.apply(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).bind(now)).fetch_one(&mut **tx).await?;
    sqlx::query(
        "UPDATE broadcasts SET status = 'sent', sent_at = $2, \
             recipients = (SELECT count(*) FROM messages WHERE broadcast_id = $1) WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(n)
}

/// One broadcast with its reach (404 when there is none).
pub async fn get(tx: &mut TenantTx, id: i64) -> Result<Broadcast> {
    let sql = format!("{SELECT} WHERE b.id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut **tx).await?;
    from_row(row.ok_or_else(|| Error::not_found("broadcast_not_found", "no such message to members"))?)
}

/// The mall's broadcasts, newest first, before an id.
pub async fn page(tx: &mut TenantTx, before: Option<i64>, limit: i64) -> Result<Vec<Broadcast>> {
    let sql = format!("{SELECT} WHERE ($1::bigint IS NULL OR b.id < $1) ORDER BY b.id DESC LIMIT $2");
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(before).bind(limit).fetch_all(&mut **tx).await?;
    rows.into_iter().map(from_row).collect()
}

/// Cancels a scheduled broadcast (409 once sent or cancelled); audited.
pub async fn cancel(tx: &mut TenantTx, id: i64) -> Result<Broadcast> {
    let current = get(tx, id).await?;
    if current.status != BroadcastStatus::Scheduled {
        return Err(Error::conflict("broadcast_not_scheduled", "only a scheduled message can be cancelled"));
    }
    let done = sqlx::query("UPDATE broadcasts SET status = 'cancelled' WHERE id = $1 AND status = 'scheduled'")
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if done == 0 {
        return Err(Error::conflict("broadcast_not_scheduled", "only a scheduled message can be cancelled"));
    }
    tx.audit("broadcast.cancel", &format!("broadcast:{id}"), serde_json::json!({})).await?;
    get(tx, id).await
}

/// Sends every broadcast of `tenant` due at `now`, each in its own transaction (a
/// broadcast another instance is sending is skipped). Returns how many were sent.
pub async fn send_due(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<u64> {
    let mut sent = 0;
    loop {
        let done = db
            .write(tenant, &crate::audit::Actor::system("system:broadcasts"), async |tx| {
                let due: Option<(i64, serde_json::Value)> = sqlx::query_as(
                    "SELECT id, filter FROM broadcasts WHERE status = 'scheduled' AND send_at <= $1 \
                     ORDER BY send_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                )
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((id, filter)) = due else { return Ok(false) };
                let filter = segments::stored(&format!("broadcast {id}"), filter)?;
                send(tx, id, &filter, now).await?;
                Ok(true)
            })
            .await?;
        if !done {
            return Ok(sent);
        }
        sent += 1;
    }
}
