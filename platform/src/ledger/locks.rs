//! Locked points with a release schedule (L5): a grant locks `total` and releases
//! `per_day` each day until exhausted; a release can be accelerated (rules will do so,
//! e.g. seed 004's referral acceleration).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::post::{self, LotPart};
use super::{Source, bounds};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::localtime;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LockGrant {
    pub id: i64,
    pub member_id: i64,
    pub currency: String,
    pub total: i64,
    pub released: i64,
    pub per_day: i64,
    pub next_release_at: DateTime<Utc>,
    pub memo: String,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, member_id, currency, total, released, per_day, next_release_at, memo, created_at";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLockGrant {
    pub member_id: i64,
    #[serde(default = "crate::ledger::points_currency")]
    #[schema(value_type = super::currencies::CurrencyCode)]
    pub currency: String,
    #[schema(value_type = crate::limits::ledger::Amount)]
    pub total: i64,
    #[schema(value_type = crate::limits::ledger::Amount)]
    pub per_day: i64,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub memo: String,
}

/// Locks `total` for the member, to be released `per_day` at each of the mall's local
/// midnights, the first one after `now`.
pub async fn grant(
    conn: &mut PgConnection,
    tenant: &Tenant,
    g: &NewLockGrant,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<LockGrant> {
    post::check_amount("total", g.total)?;
    post::check_amount("per_day", g.per_day)?;
    let entry = post::lock(conn, g.member_id, &g.currency, g.total, source, now).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO lock_grants (member_id, currency, entry_id, total, per_day, next_release_at, memo) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(g.member_id)
    .bind(&g.currency)
    .bind(entry.id)
    .bind(g.total)
    .bind(g.per_day)
    .bind(next_midnight(tenant, now, 1))
    .bind(&g.memo)
    .fetch_one(conn)
    .await?)
}

#[allow(clippy::too_many_arguments)]
async fn release_from(
    conn: &mut PgConnection,
    tenant: &Tenant,
    grant: &LockGrant,
    amount: i64,
    next_release_at: DateTime<Utc>,
    accelerated: bool,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<i64> {
    let amount = amount.min(grant.total - grant.released);
    if amount <= 0 {
        return Ok(0);
    }
    let expires = super::currencies::get(conn, &grant.currency).await?.expires;
    let expires_at = tenant.settings.default_expiry(expires, now);
    let entry =
        post::release(conn, grant.member_id, &grant.currency, LotPart { amount, expires_at }, source, now).await?;
    sqlx::query("UPDATE lock_grants SET released = released + $2, next_release_at = $3 WHERE id = $1")
        .bind(grant.id)
        .bind(amount)
        .bind(next_release_at)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO events_outbox (kind, member_id, payload) VALUES ('points_released', $1, $2)")
        .bind(grant.member_id)
        .bind(serde_json::json!({"grant_id": grant.id, "amount": amount, "currency": grant.currency, "entry_id": entry.id, "accelerated": accelerated}))
        .execute(&mut *conn)
        .await?;
    Ok(amount)
}

async fn lock_grant(conn: &mut PgConnection, id: i64) -> Result<LockGrant> {
    // The account first, as every ledger write does, then the grant.
    let (member_id, currency): (i64, String) =
        sqlx::query_as("SELECT member_id, currency FROM lock_grants WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::not_found("lock_grant_not_found", "no such lock grant"))?;
    sqlx::query("SELECT 1 FROM accounts WHERE member_id = $1 AND currency = $2 FOR UPDATE")
        .bind(member_id)
        .bind(&currency)
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lock_grants WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_one(conn)
        .await?)
}

/// Releases `amount` of a grant now, ahead of schedule.
pub async fn accelerate(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: i64,
    amount: i64,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<(LockGrant, i64)> {
    post::check_amount("amount", amount)?;
    let g = lock_grant(conn, id).await?;
    let released = release_from(conn, tenant, &g, amount, g.next_release_at, true, source, now).await?;
    let g = lock_grant(conn, id).await?;
    Ok((g, released))
}

/// Releases every grant due at `now`: `per_day` for each day that has come due
/// (missed days catch up). Returns (grants released, amount).
pub async fn release_due(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<(u64, i64)> {
    let (mut grants, mut total) = (0u64, 0i64);
    loop {
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM lock_grants WHERE released < total AND next_release_at <= $1 ORDER BY next_release_at LIMIT $2",
        )
        .bind(now)
        .bind(bounds::JOB_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if due.is_empty() {
            return Ok((grants, total));
        }
        for id in due {
            let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
            let g = lock_grant(&mut tx, id).await?;
            if g.next_release_at > now || g.released >= g.total {
                continue;
            }
            let days = (now - g.next_release_at).num_days() + 1;
            let next = next_midnight(tenant, g.next_release_at, days);
            let source = Source::new(super::SourceKind::System, "system:release").reference(format!("grant:{}", g.id));
            let n =
                release_from(&mut tx, tenant, &g, g.per_day.saturating_mul(days), next, false, &source, now).await?;
            tx.commit().await?;
            grants += 1;
            total += n;
        }
    }
}

/// The mall's local midnight `days` days after the local day of `at`.
fn next_midnight(tenant: &Tenant, at: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    let tz = tenant.settings.tz();
    let day = localtime::day(tz, at);
    let next = day.checked_add_signed(Duration::days(days)).unwrap_or(day);
    localtime::start_of(tz, next)
}

pub async fn list_for_member(conn: &mut PgConnection, member_id: i64) -> Result<Vec<LockGrant>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM lock_grants WHERE member_id = $1 ORDER BY id DESC LIMIT 100"
    )))
    .bind(member_id)
    .fetch_all(conn)
    .await?)
}

/// The member's oldest grant that still has locked points, if any.
pub async fn oldest_open(conn: &mut PgConnection, member_id: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM lock_grants WHERE member_id = $1 AND released < total ORDER BY id LIMIT 1")
        .bind(member_id)
        .fetch_optional(conn)
        .await?)
}
