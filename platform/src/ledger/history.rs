//! A member's view of the ledger (L11): balances, open lots with expiry dates, lock
//! grants, level, and entries paged by cursor with filters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::{ENTRY_COLUMNS, Entry, Reason};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Balance {
    pub currency: String,
    pub name: String,
    pub spendable: bool,
    /// Spendable now.
    pub balance: i64,
    /// Locked, released on a schedule.
    pub locked: i64,
    pub lifetime_earned: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OpenLot {
    pub id: i64,
    pub currency: String,
    pub amount: i64,
    pub remaining: i64,
    pub earned_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MemberLevel {
    pub id: i64,
    pub name: String,
    pub threshold: i64,
    pub benefits: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PointsSummary {
    pub balances: Vec<Balance>,
    /// Open lots, soonest expiry first (at most 200).
    pub lots: Vec<OpenLot>,
    pub lock_grants: Vec<super::locks::LockGrant>,
    pub level: Option<MemberLevel>,
    /// The next level and how much of the level currency is still needed.
    pub next_level: Option<NextLevel>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NextLevel {
    pub name: String,
    pub threshold: i64,
    pub missing: i64,
}

/// A member's balances, open lots, lock grants and level. Lots past their `expires_at`
/// count as gone at once, whether or not the expiry job has written their entry yet.
pub async fn summary(conn: &mut PgConnection, member_id: i64) -> Result<PointsSummary> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT id FROM members WHERE id = $1").bind(member_id).fetch_optional(&mut *conn).await?;
    exists.ok_or_else(|| Error::not_found("member_not_found", "no such member"))?;
    let balances: Vec<Balance> = sqlx::query_as(
        "SELECT c.code AS currency, c.name, c.spendable, \
                coalesce(a.balance, 0) - coalesce((SELECT sum(l.remaining) FROM lots l WHERE l.member_id = $1 \
                    AND l.currency = c.code AND l.remaining > 0 AND l.expires_at <= now()), 0)::bigint AS balance, \
                coalesce(a.locked, 0) AS locked, \
                coalesce(a.lifetime_earned, 0) AS lifetime_earned \
         FROM currencies c LEFT JOIN accounts a ON a.currency = c.code AND a.member_id = $1 ORDER BY c.code = 'points' DESC, c.code = 'exp' DESC, c.created_at, c.code",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    let lots: Vec<OpenLot> = sqlx::query_as(
        "SELECT id, currency, amount, remaining, earned_at, expires_at FROM lots WHERE member_id = $1 AND remaining > 0 \
         AND (expires_at IS NULL OR expires_at > now()) ORDER BY expires_at ASC NULLS LAST, id LIMIT 200",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    let level: Option<MemberLevel> = sqlx::query_as(
        "SELECT l.id, l.name, l.threshold, l.benefits FROM members m JOIN levels l ON l.id = m.level_id WHERE m.id = $1",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?;
    let level_balance = balances.iter().find(|b| b.currency == "exp").map_or(0, |b| b.balance);
    let next: Option<(String, i64)> = sqlx::query_as(
        "SELECT name, threshold FROM levels WHERE NOT retired AND threshold > $1 ORDER BY threshold LIMIT 1",
    )
    .bind(level_balance)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(PointsSummary {
        balances,
        lots,
        lock_grants: super::locks::list_for_member(conn, member_id).await?,
        level,
        next_level: next.map(|(name, threshold)| NextLevel { name, threshold, missing: threshold - level_balance }),
    })
}

/// Filters of the entry history.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct EntryFilter {
    pub currency: Option<String>,
    /// earn, spend, adjust, expire, transfer_in, transfer_out, hold, hold_return, refund, lock, release
    #[param(value_type = Option<super::Reason>, inline)]
    pub reason: Option<String>,
    /// Entries at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

pub async fn entries(
    conn: &mut PgConnection,
    member_id: i64,
    f: &EntryFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>> {
    if let Some(r) = &f.reason
        && Reason::parse(r).is_none()
    {
        return Err(Error::invalid_field("reason", "not a ledger reason"));
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM entries WHERE member_id = $1 \
           AND ($2::text IS NULL OR currency = $2) AND ($3::text IS NULL OR reason = $3) \
           AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5) \
           AND ($6::bigint IS NULL OR id < $6) \
         ORDER BY id DESC LIMIT $7"
    )))
    .bind(member_id)
    .bind(&f.currency)
    .bind(&f.reason)
    .bind(f.from)
    .bind(f.to)
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
