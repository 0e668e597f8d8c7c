//! The use cases of issuing budgets (SPEC A3, A5): what alliance admins and a mall's
//! staff do with them, each in one transaction in the alliance's schema with its audit
//! entry. The arithmetic and the charge on every issue live in `budget`.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::budget::{self, Budget, BudgetEntry, BudgetTerms, TopUp};
use crate::audit::{self, Actor};
use crate::db::{Db, select_schema};
use crate::directory::{self, Alliance, Tenant};
use crate::error::{Error, Result};

/// A mall's budget as the alliance sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MallBudget {
    pub slug: String,
    pub name: String,
    #[serde(flatten)]
    pub budget: Budget,
}

/// Every mall's budget and the clearing value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Budgets {
    /// Clearing value of the shared currency: this many points are worth one yuan.
    pub points_per_yuan: i32,
    pub malls: Vec<MallBudget>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Clearing {
    /// This many shared points are worth one yuan (1 to 1000000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub points_per_yuan: i32,
    /// The alliance's time zone for settlement periods (an IANA name such as
    /// `Asia/Shanghai`, the default). Kept when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9_+/-]*$")]
    pub time_zone: Option<String>,
}

/// Runs `work` in one transaction with the alliance's schema selected.
async fn in_alliance<T>(db: &Db, a: &Alliance, work: impl AsyncFnOnce(&mut PgConnection) -> Result<T>) -> Result<T> {
    let mut tx = db.cluster(&a.cluster)?.begin().await?;
    select_schema(&mut tx, &a.schema_name).await?;
    let out = work(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// The malls of `a` (any status), and those that left it (their budgets are closed and
/// stay visible).
async fn malls(db: &Db, a: &Alliance) -> Result<Vec<Tenant>> {
    let mut malls: Vec<Tenant> =
        directory::list(db.control()).await?.into_iter().filter(|t| t.alliance_id == Some(a.id)).collect();
    malls.extend(super::membership::departed(db.control(), a.id).await?.into_iter().map(|(t, _)| t));
    Ok(malls)
}

/// The mall `slug` of alliance `a` (404 for a mall elsewhere, as for none).
pub async fn mall_of(db: &Db, a: &Alliance, slug: &str) -> Result<Tenant> {
    malls(db, a)
        .await?
        .into_iter()
        .find(|t| t.slug == slug)
        .ok_or_else(|| Error::not_found("tenant_not_found", "no such mall in this alliance"))
}

/// The alliance of a mall (404 `not_in_alliance` for a mall in none).
pub async fn alliance_of(db: &Db, tenant: &Tenant) -> Result<Alliance> {
    let id = match tenant.alliance_id {
        Some(id) => Some(id),
        None => {
            let mut conn = db.control().acquire().await?;
            super::membership::last_left(&mut conn, tenant.id).await?
        }
    };
    let id = id.ok_or_else(|| Error::not_found("not_in_alliance", "this mall is in no alliance"))?;
    directory::list_alliances(db.control())
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| Error::not_found("alliance_not_found", "no such alliance"))
}

/// Every mall's budget (A5).
pub async fn overview(db: &Db, a: &Alliance) -> Result<Budgets> {
    let malls = malls(db, a).await?;
    in_alliance(db, a, async |conn| {
        let points_per_yuan = budget::points_per_yuan(conn).await?;
        let mut out = Vec::with_capacity(malls.len());
        for t in malls {
            let b = budget::get(conn, t.id).await?;
            out.push(MallBudget { slug: t.slug, name: t.name, budget: b });
        }
        Ok(Budgets { points_per_yuan, malls: out })
    })
    .await
}

/// One mall's budget.
pub async fn of_mall(db: &Db, a: &Alliance, t: &Tenant) -> Result<Budget> {
    in_alliance(db, a, async |conn| budget::get(conn, t.id).await).await
}

/// A mall's budget entries, newest first.
pub async fn entries(db: &Db, a: &Alliance, t: &Tenant, before: Option<i64>, limit: i64) -> Result<Vec<BudgetEntry>> {
    in_alliance(db, a, async |conn| budget::entries(conn, t.id, before, limit).await).await
}

/// Tops up a mall's budget (by an alliance admin or the mall's owner). Audited.
pub async fn top_up(db: &Db, a: &Alliance, t: &Tenant, top: &TopUp, actor: &Actor) -> Result<BudgetEntry> {
    in_alliance(db, a, async |conn| top_up_in(conn, a, t, top, actor).await).await
}

async fn top_up_in(
    conn: &mut PgConnection,
    a: &Alliance,
    t: &Tenant,
    top: &TopUp,
    actor: &Actor,
) -> Result<BudgetEntry> {
    let e = budget::top_up(conn, t.id, top, &actor.label).await?;
    let details =
        serde_json::json!({"amount_fen": top.amount_fen, "memo": top.memo, "balance_after_fen": e.balance_after_fen});
    audit::record_alliance(conn, actor, a.id, "alliance.budget.top_up", &t.slug, details).await?;
    Ok(e)
}

/// A top-up's `Idempotency-Key`: the key, the scope it is unique in (who, which route)
/// and the digest of the request (`idempotency::request_hash`).
pub struct OnceKey {
    pub scope: String,
    pub key: String,
    pub hash: Vec<u8>,
}

/// A top-up guarded by an `Idempotency-Key` (L8), claimed in the alliance's schema in the
/// top-up's transaction: the same key again answers the first top-up's entry (`true`:
/// replayed) and adds nothing; with another body it is 422 `idempotency_key_reused`.
pub async fn top_up_once(
    db: &Db,
    a: &Alliance,
    t: &Tenant,
    top: &TopUp,
    actor: &Actor,
    once: &OnceKey,
) -> Result<(serde_json::Value, bool)> {
    in_alliance(db, a, async |conn| {
        if let Some(replay) = crate::idempotency::begin(conn, &once.scope, &once.key, &once.hash).await? {
            return Ok((replay.body, true));
        }
        let e = top_up_in(conn, a, t, top, actor).await?;
        let body = serde_json::to_value(&e).map_err(|e| Error::Internal(e.into()))?;
        crate::idempotency::finish(conn, &once.scope, &once.key, 201, &body).await?;
        Ok((body, false))
    })
    .await
}

/// Sets a mall's issuing rate and alert threshold (alliance admins). Audited.
pub async fn set_terms(db: &Db, a: &Alliance, t: &Tenant, terms: &BudgetTerms, actor: &Actor) -> Result<Budget> {
    in_alliance(db, a, async |conn| {
        let b = budget::set_terms(conn, t.id, terms).await?;
        let details = serde_json::json!({"rate_bp": terms.rate_bp, "low_threshold_fen": terms.low_threshold_fen});
        audit::record_alliance(conn, actor, a.id, "alliance.budget.terms", &t.slug, details).await?;
        Ok(b)
    })
    .await
}

/// Sets the alliance's clearing value (alliance admins). Audited.
pub async fn set_clearing(db: &Db, a: &Alliance, c: Clearing, actor: &Actor) -> Result<Clearing> {
    in_alliance(db, a, async |conn| {
        if let Some(tz) = &c.time_zone
            && crate::localtime::parse(tz).is_none()
        {
            return Err(Error::invalid_field("time_zone", "an IANA time zone such as Asia/Shanghai"));
        }
        let points_per_yuan = budget::set_points_per_yuan(conn, c.points_per_yuan).await?;
        let time_zone = budget::set_time_zone(conn, c.time_zone.as_deref()).await?;
        let details = serde_json::json!({"points_per_yuan": points_per_yuan, "time_zone": time_zone});
        audit::record_alliance(conn, actor, a.id, "alliance.clearing", &a.slug, details).await?;
        Ok(Clearing { points_per_yuan, time_zone: Some(time_zone) })
    })
    .await
}
