//! A mall leaving its alliance (issue 12, A1 and A5), and what stays of it there.
//!
//! Leaving, in one transaction on the control pool (every mall of an alliance lives on
//! the alliance's cluster, the main one today):
//! - the directory row loses its alliance, and `control.alliance_departures` records the
//!   leave (when, by whom), so settlement keeps naming the mall and refunds of its old
//!   orders still find the alliance ledger;
//! - the mall's products priced in the shared currency are delisted (its staff may
//!   reprice and list them again in the mall's own points);
//! - its issuing budget is closed (`budgets.closed_at`): no more issues or top-ups, the
//!   balance left stays visible. The budget's row lock orders the close against issues in
//!   flight, so no issue commits after the leave.
//! - audited once, for the mall and the alliance (`tenant.alliance.leave`), announced to
//!   every server.
//!
//! Members keep their shared balance (it lives in the alliance schema, under their
//! identity) and spend it in the other malls; the mall that left no longer shows it.
//! Joining again reopens the budget with what was left.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, Actor};
use crate::db::{Db, MAIN_CLUSTER, select_schema};
use crate::directory::{Alliance, Tenant, find_by_slug};
use crate::error::{Error, Result};
use crate::ids::{AllianceId, TenantId};
use crate::notify;

/// What a leave did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Departure {
    /// The mall that left.
    pub mall: String,
    /// The alliance it left.
    pub alliance: String,
    pub left_at: DateTime<Utc>,
    /// Products priced in the shared currency that were delisted.
    pub delisted_products: i64,
    /// What was left in the mall's issuing budget, now closed (fen).
    pub budget_left_fen: i64,
}

/// Mall `t` leaves alliance `a` (404 `not_in_alliance` when it is not a member of it).
pub async fn leave(db: &Db, a: &Alliance, t: &Tenant, actor: &Actor) -> Result<Departure> {
    if t.cluster != MAIN_CLUSTER || a.cluster != MAIN_CLUSTER {
        return Err(Error::Internal(anyhow::anyhow!("alliance {} or mall {} is off the main cluster", a.id, t.id)));
    }
    let mut tx = db.control().begin().await?;
    let left = sqlx::query(
        "UPDATE control.tenants SET alliance_id = NULL, updated_at = now() WHERE id = $1 AND alliance_id = $2",
    )
    .bind(t.id)
    .bind(a.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if left == 0 {
        return Err(Error::not_found("not_in_alliance", "this mall is not in this alliance"));
    }
    let left_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO control.alliance_departures (alliance_id, tenant_id, actor) VALUES ($1, $2, $3) RETURNING left_at",
    )
    .bind(a.id)
    .bind(t.id)
    .bind(&actor.label)
    .fetch_one(&mut *tx)
    .await?;

    select_schema(&mut tx, &t.schema_name).await?;
    let delisted: i64 = sqlx::query_scalar(
        "WITH d AS (UPDATE products SET status = 'delisted', updated_at = now() \
                    WHERE currency = $1 AND status = 'listed' RETURNING 1) \
         SELECT count(*) FROM d",
    )
    .bind(&a.currency_code)
    .fetch_one(&mut *tx)
    .await?;

    select_schema(&mut tx, &a.schema_name).await?;
    let budget_left_fen: i64 = sqlx::query_scalar(
        "INSERT INTO budgets (tenant_id, closed_at) VALUES ($1, now()) \
         ON CONFLICT (tenant_id) DO UPDATE SET closed_at = now(), updated_at = now() RETURNING balance_fen",
    )
    .bind(t.id)
    .fetch_one(&mut *tx)
    .await?;

    let details = serde_json::json!({
        "alliance": a.slug, "delisted_products": delisted, "budget_left_fen": budget_left_fen,
    });
    audit::record_both(&mut tx, actor, t.id, a.id, "tenant.alliance.leave", &t.slug, details).await?;
    notify::publish(&mut tx, &notify::Change::Tenant { slug: t.slug.clone() }).await?;
    tx.commit().await?;
    Ok(Departure {
        mall: t.slug.clone(),
        alliance: a.slug.clone(),
        left_at,
        delisted_products: delisted,
        budget_left_fen,
    })
}

/// Reopens mall `tenant_id`'s budget in the alliance schema selected on `conn`, when it
/// joins (again).
pub async fn reopen_budget(conn: &mut PgConnection, tenant_id: TenantId) -> Result<()> {
    sqlx::query(
        "UPDATE budgets SET closed_at = NULL, updated_at = now() WHERE tenant_id = $1 AND closed_at IS NOT NULL",
    )
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The malls that left alliance `alliance_id` and are not members again: (tenant, when
/// it last left).
pub async fn departed(pool: &PgPool, alliance_id: AllianceId) -> Result<Vec<(Tenant, DateTime<Utc>)>> {
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT t.slug, max(d.left_at) FROM control.alliance_departures d JOIN control.tenants t ON t.id = d.tenant_id \
         WHERE d.alliance_id = $1 AND t.alliance_id IS DISTINCT FROM $1 GROUP BY t.slug ORDER BY t.slug",
    )
    .bind(alliance_id)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (slug, at) in rows {
        if let Some(t) = find_by_slug(pool, &slug).await? {
            out.push((t, at));
        }
    }
    Ok(out)
}

/// The alliance a mall last left, when it is in none now (its old orders' refunds and
/// its closed budget are kept there).
pub async fn last_left(conn: &mut PgConnection, tenant_id: TenantId) -> Result<Option<AllianceId>> {
    Ok(sqlx::query_scalar(
        "SELECT d.alliance_id FROM control.alliance_departures d JOIN control.tenants t ON t.id = d.tenant_id \
         WHERE d.tenant_id = $1 AND t.alliance_id IS NULL ORDER BY d.id DESC LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?)
}
