//! Locked points with a release schedule (L5): a grant locks `total` and releases
//! `per_day` each day until exhausted; a release can be accelerated (rules will do so,
//! e.g. seed 004's referral acceleration).
//!
//! A grant of the alliance's shared currency (issue 12, point 4) keeps its row here —
//! partners and rules name it by this id, rules read it in `member.locks` — while its
//! points are locked and released in the alliance's ledger (`Keeper`), where a twin row
//! (`alliance_grant_id`, with the granting `mall_id`) is what `ledger verify` sums
//! against the locked balance. Both rows move together, in one transaction. Issuing one
//! (and charging the mall's budget for it) is the alliance's business
//! (`alliance::locks`); releasing it is this mall's jobs'.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::keeper::{self, Keeper};
use super::post::{self, LotPart};
use super::{Entry, Source, bounds};
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

/// Where a grant row's points are: the mall's ledger, or the alliance's twin grant.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Twin {
    alliance_grant_id: Option<i64>,
}

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

/// Locks `total` for the member in the mall's own ledger, to be released `per_day` at
/// each of the mall's local midnights, the first one after `now`. The shared currency
/// goes through `alliance::locks::grant` (which ends in `grant_kept`).
pub async fn grant(
    conn: &mut PgConnection,
    tenant: &Tenant,
    g: &NewLockGrant,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<LockGrant> {
    Ok(grant_kept(conn, tenant, &Keeper::Mall, g, source, now).await?.0)
}

/// Locks `total` for the member in the ledger `k` keeps the currency in; returns the
/// grant (as the mall knows it) and the lock entry (in `k`'s ledger, named by the
/// ledger's member: the issuing budget is charged for it by the caller).
pub async fn grant_kept(
    conn: &mut PgConnection,
    tenant: &Tenant,
    k: &Keeper,
    g: &NewLockGrant,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<(LockGrant, Entry)> {
    post::check_amount("total", g.total)?;
    post::check_amount("per_day", g.per_day)?;
    let (member, src) = (k.member(g.member_id), k.source(source));
    let next = next_midnight(tenant, now, 1);
    let shared = k.is_shared();
    let (entry, twin) = k
        .within(conn, async |c| {
            let entry = post::lock(c, member, &g.currency, g.total, &src, now).await?;
            if !shared {
                return Ok((entry, None));
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO lock_grants (member_id, currency, entry_id, total, per_day, next_release_at, memo, mall_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(member)
            .bind(&g.currency)
            .bind(entry.id)
            .bind(g.total)
            .bind(g.per_day)
            .bind(next)
            .bind(&g.memo)
            .bind(tenant.id)
            .fetch_one(c)
            .await?;
            Ok((entry, Some(id)))
        })
        .await?;
    let grant = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO lock_grants (member_id, currency, entry_id, alliance_grant_id, total, per_day, next_release_at, memo) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(g.member_id)
    .bind(&g.currency)
    .bind(twin.is_none().then_some(entry.id))
    .bind(twin)
    .bind(g.total)
    .bind(g.per_day)
    .bind(next)
    .bind(&g.memo)
    .fetch_one(&mut *conn)
    .await?;
    Ok((grant, entry))
}

/// The ledger a grant's points are in: the mall's, or — for a grant of the shared
/// currency — the alliance's (that of the alliance the mall is in, or last left: its
/// grants go on releasing there).
async fn keeper_of(conn: &mut PgConnection, tenant: &Tenant, g: &LockGrant, twin: Twin) -> Result<Keeper> {
    if twin.alliance_grant_id.is_none() {
        return Ok(Keeper::Mall);
    }
    let identity: Option<i64> = sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1")
        .bind(g.member_id)
        .fetch_one(&mut *conn)
        .await?;
    let alliance_id = match tenant.alliance_id {
        Some(id) => Some(id),
        None => {
            sqlx::query_scalar(
                "SELECT alliance_id FROM control.alliance_departures WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(tenant.id)
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    match (identity, alliance_id) {
        (Some(identity), Some(alliance_id)) => Ok(Keeper::Alliance {
            schema: keeper::alliance_schema(alliance_id),
            home: tenant.schema_name.clone(),
            tenant_id: tenant.id,
            identity,
        }),
        _ => Err(Error::Internal(anyhow::anyhow!("lock grant {} of the shared currency has no alliance ledger", g.id))),
    }
}

#[allow(clippy::too_many_arguments)]
async fn release_from(
    conn: &mut PgConnection,
    tenant: &Tenant,
    locked: &Locked,
    amount: i64,
    next_release_at: DateTime<Utc>,
    accelerated: bool,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<i64> {
    let Locked { grant, twin, keeper: k } = locked;
    let amount = amount.min(grant.total - grant.released);
    if amount <= 0 {
        return Ok(0);
    }
    let expires = super::currencies::get(conn, &grant.currency).await?.expires;
    let expires_at = tenant.settings.default_expiry(expires, now);
    let (member, src) = (k.member(grant.member_id), k.source(source));
    let entry = k
        .within(conn, async |c| {
            let entry = post::release(c, member, &grant.currency, LotPart { amount, expires_at }, &src, now).await?;
            if let Some(id) = twin.alliance_grant_id {
                move_grant(c, id, amount, next_release_at).await?;
            }
            Ok(entry)
        })
        .await?;
    let entry = k.show_one(conn, grant.member_id, entry).await?;
    move_grant(conn, grant.id, amount, next_release_at).await?;
    sqlx::query("INSERT INTO events_outbox (kind, member_id, payload) VALUES ('points_released', $1, $2)")
        .bind(grant.member_id)
        .bind(serde_json::json!({"grant_id": grant.id, "amount": amount, "currency": grant.currency, "entry_id": entry.id, "accelerated": accelerated}))
        .execute(&mut *conn)
        .await?;
    Ok(amount)
}

async fn move_grant(conn: &mut PgConnection, id: i64, amount: i64, next_release_at: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE lock_grants SET released = released + $2, next_release_at = $3 WHERE id = $1")
        .bind(id)
        .bind(amount)
        .bind(next_release_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// A grant locked for a release, with the ledger its points are in.
struct Locked {
    grant: LockGrant,
    twin: Twin,
    keeper: Keeper,
}

async fn lock_grant(conn: &mut PgConnection, tenant: &Tenant, id: i64) -> Result<Locked> {
    // The account first, as every ledger write does (in the alliance's ledger for the
    // shared currency, with the twin grant), then the grant.
    let found: Option<LockGrant> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lock_grants WHERE id = $1")))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let g = found.ok_or_else(|| Error::not_found("lock_grant_not_found", "no such lock grant"))?;
    let twin: Twin = sqlx::query_as("SELECT alliance_grant_id FROM lock_grants WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    let k = keeper_of(conn, tenant, &g, twin).await?;
    let member = k.member(g.member_id);
    k.within(conn, async |c| {
        sqlx::query("SELECT 1 FROM accounts WHERE member_id = $1 AND currency = $2 FOR UPDATE")
            .bind(member)
            .bind(&g.currency)
            .execute(&mut *c)
            .await?;
        if let Some(twin) = twin.alliance_grant_id {
            sqlx::query("SELECT 1 FROM lock_grants WHERE id = $1 FOR UPDATE").bind(twin).execute(&mut *c).await?;
        }
        Ok(())
    })
    .await?;
    let grant =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lock_grants WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_one(conn)
            .await?;
    Ok(Locked { grant, twin, keeper: k })
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
    let l = lock_grant(conn, tenant, id).await?;
    let next = l.grant.next_release_at;
    let released = release_from(conn, tenant, &l, amount, next, true, source, now).await?;
    let g = get(conn, id).await?;
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
            let l = lock_grant(&mut tx, tenant, id).await?;
            let g = &l.grant;
            if g.next_release_at > now || g.released >= g.total {
                continue;
            }
            let days = (now - g.next_release_at).num_days() + 1;
            let next = next_midnight(tenant, g.next_release_at, days);
            let source = Source::new(super::SourceKind::System, "system:release").reference(format!("grant:{}", g.id));
            let n =
                release_from(&mut tx, tenant, &l, g.per_day.saturating_mul(days), next, false, &source, now).await?;
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

/// One grant, as the mall knows it.
pub async fn get(conn: &mut PgConnection, id: i64) -> Result<LockGrant> {
    let found: Option<LockGrant> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM lock_grants WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await?;
    found.ok_or_else(|| Error::not_found("lock_grant_not_found", "no such lock grant"))
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
