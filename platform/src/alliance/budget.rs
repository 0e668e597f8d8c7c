//! Issuing budgets (SPEC A3): each mall of an alliance funds a budget, in fen, and every
//! shared point it issues draws on it in the same transaction, at the alliance's
//! clearing value and the mall's issuing rate:
//!
//! `cost (fen) = ⌈points × 100 / points_per_yuan × rate_bp / 10000⌉`
//!
//! e.g. 1,000 points at 100 points = ¥1 and a rate of 15% cost ¥1.50 (150 fen). An
//! exhausted budget refuses with 409 `budget_exhausted` (naming what is left) and
//! nothing is written. The balance is the sum of the budget's entries (top-ups and
//! issues), which `ledger verify` proves. Every function here runs with the alliance
//! schema selected.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::{Error, Result, Validator};
use crate::ids::{EntryId, TenantId};

/// Largest single top-up: ¥100,000,000.
pub const TOP_UP_FEN_MAX: i64 = 10_000_000_000;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Budget {
    pub tenant_id: TenantId,
    pub balance_fen: i64,
    /// Share of the issued points' clearing value the mall bears (1500 = 15%).
    pub rate_bp: i32,
    pub low_threshold_fen: i64,
    pub updated_at: DateTime<Utc>,
    /// Set when the mall left the alliance: no more issues or top-ups.
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BudgetEntry {
    pub id: i64,
    pub tenant_id: TenantId,
    /// Positive for a top-up, negative for an issue.
    pub amount_fen: i64,
    /// `top_up` or `issue`.
    pub kind: String,
    /// Shared points issued (issues only).
    pub points: Option<i64>,
    /// The alliance ledger entry of the issue.
    pub ledger_entry_id: Option<EntryId>,
    pub balance_after_fen: i64,
    pub actor: String,
    pub memo: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    /// Fen to add, 1 to 10^10.
    #[schema(minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount_fen: i64,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub memo: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetTerms {
    /// Issuing rate in basis points, 0 to 100000 (1500 = 15%).
    #[schema(minimum = 0, maximum = 100_000)]
    pub rate_bp: i32,
    /// Alert below this balance (0: never).
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub low_threshold_fen: i64,
}

const COLUMNS: &str = "tenant_id, balance_fen, rate_bp, low_threshold_fen, updated_at, closed_at";
const ENTRY_COLUMNS: &str =
    "id, tenant_id, amount_fen, kind, points, ledger_entry_id, balance_after_fen, actor, memo, created_at";

/// The cost in fen of issuing `points` (rounded up; saturates rather than overflows).
pub fn cost_fen(points: i64, points_per_yuan: i32, rate_bp: i32) -> i64 {
    let num = i128::from(points) * 100 * i128::from(rate_bp);
    let den = i128::from(points_per_yuan.max(1)) * 10_000;
    i64::try_from((num + den - 1).div_euclid(den)).unwrap_or(i64::MAX)
}

/// The alliance's clearing value: points per yuan.
pub async fn points_per_yuan(conn: &mut PgConnection) -> Result<i32> {
    let v: Option<i32> = sqlx::query_scalar("SELECT points_per_yuan FROM alliance_terms").fetch_optional(conn).await?;
    Ok(v.unwrap_or(100))
}

/// Sets the alliance's time zone when `tz` is given (validated by the caller); returns
/// the one in force.
pub async fn set_time_zone(conn: &mut PgConnection, tz: Option<&str>) -> Result<String> {
    Ok(sqlx::query_scalar(
        "INSERT INTO alliance_terms (only_row, time_zone) VALUES (true, coalesce($1, 'Asia/Shanghai')) \
         ON CONFLICT (only_row) DO UPDATE SET time_zone = coalesce($1, alliance_terms.time_zone), updated_at = now() \
         RETURNING time_zone",
    )
    .bind(tz)
    .fetch_one(conn)
    .await?)
}

/// Sets the alliance's clearing value (audited by the caller).
pub async fn set_points_per_yuan(conn: &mut PgConnection, points_per_yuan: i32) -> Result<i32> {
    if !(1..=1_000_000).contains(&points_per_yuan) {
        return Err(Error::invalid_field("points_per_yuan", "between 1 and 1000000"));
    }
    sqlx::query(
        "INSERT INTO alliance_terms (only_row, points_per_yuan) VALUES (true, $1) \
         ON CONFLICT (only_row) DO UPDATE SET points_per_yuan = EXCLUDED.points_per_yuan, updated_at = now()",
    )
    .bind(points_per_yuan)
    .execute(conn)
    .await?;
    Ok(points_per_yuan)
}

/// The mall's budget (a zero budget at the default rate if it was never funded).
pub async fn get(conn: &mut PgConnection, tenant_id: TenantId) -> Result<Budget> {
    ensure(conn, tenant_id).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM budgets WHERE tenant_id = $1")))
        .bind(tenant_id)
        .fetch_one(conn)
        .await?)
}

async fn ensure(conn: &mut PgConnection, tenant_id: TenantId) -> Result<()> {
    sqlx::query("INSERT INTO budgets (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING")
        .bind(tenant_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The budget's entries, newest first, before an id.
pub async fn entries(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<BudgetEntry>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM budget_entries WHERE tenant_id = $1 AND ($2::bigint IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    )))
    .bind(tenant_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Adds `t.amount_fen` to the mall's budget.
pub async fn top_up(conn: &mut PgConnection, tenant_id: TenantId, t: &TopUp, actor: &str) -> Result<BudgetEntry> {
    let mut v = Validator::new();
    v.check((1..=TOP_UP_FEN_MAX).contains(&t.amount_fen), "amount_fen", "between 1 and 10000000000");
    v.check(t.memo.chars().count() <= 500, "memo", "at most 500 characters");
    v.finish()?;
    ensure(conn, tenant_id).await?;
    let balance: Option<i64> = sqlx::query_scalar(
        "UPDATE budgets SET balance_fen = balance_fen + $2, updated_at = now() \
         WHERE tenant_id = $1 AND closed_at IS NULL RETURNING balance_fen",
    )
    .bind(tenant_id)
    .bind(t.amount_fen)
    .fetch_optional(&mut *conn)
    .await?;
    let balance = balance.ok_or_else(closed)?;
    insert_entry(conn, tenant_id, t.amount_fen, "top_up", None, balance, actor, &t.memo).await
}

/// Sets the mall's issuing rate and alert threshold.
pub async fn set_terms(conn: &mut PgConnection, tenant_id: TenantId, t: &BudgetTerms) -> Result<Budget> {
    let mut v = Validator::new();
    v.check((0..=100_000).contains(&t.rate_bp), "rate_bp", "between 0 and 100000");
    v.check((0..=TOP_UP_FEN_MAX).contains(&t.low_threshold_fen), "low_threshold_fen", "between 0 and 10000000000");
    v.finish()?;
    ensure(conn, tenant_id).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE budgets SET rate_bp = $2, low_threshold_fen = $3, updated_at = now() WHERE tenant_id = $1 RETURNING {COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(t.rate_bp)
    .bind(t.low_threshold_fen)
    .fetch_one(conn)
    .await?)
}

/// What the mall is charged for issuing: (points, alliance ledger entry) per credit.
/// Draws the total on its budget under the budget's row lock, or refuses with 409
/// `budget_exhausted` when the budget does not cover it (the caller's transaction then
/// writes nothing). Returns the balance left.
pub async fn charge(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    issued: &[(i64, EntryId)],
    actor: &str,
) -> Result<i64> {
    let ppy = points_per_yuan(conn).await?;
    ensure(conn, tenant_id).await?;
    let (balance, rate_bp, threshold, is_closed): (i64, i32, i64, bool) = sqlx::query_as(
        "SELECT balance_fen, rate_bp, low_threshold_fen, closed_at IS NOT NULL FROM budgets WHERE tenant_id = $1 FOR UPDATE",
    )
    .bind(tenant_id)
    .fetch_one(&mut *conn)
    .await?;
    if is_closed {
        return Err(closed());
    }
    let costs: Vec<i64> = issued.iter().map(|(points, _)| cost_fen(*points, ppy, rate_bp)).collect();
    let total = costs.iter().fold(0i64, |a, c| a.saturating_add(*c));
    if total > balance {
        return Err(Error::Conflict {
            code: "budget_exhausted",
            message: format!(
                "the mall's issuing budget has {balance} fen left; issuing these shared points costs {total} fen"
            ),
        });
    }
    let mut left = balance;
    for ((points, entry), cost) in issued.iter().zip(costs) {
        if cost == 0 {
            continue;
        }
        left -= cost;
        insert_entry(conn, tenant_id, -cost, "issue", Some((*points, *entry)), left, actor, "").await?;
    }
    sqlx::query("UPDATE budgets SET balance_fen = $2, updated_at = now() WHERE tenant_id = $1")
        .bind(tenant_id)
        .bind(left)
        .execute(&mut *conn)
        .await?;
    if threshold > 0 && left < threshold && balance >= threshold {
        tracing::warn!(
            tenant_id = tenant_id.get(),
            left,
            threshold,
            "an alliance issuing budget fell below its alert threshold"
        );
        alert_low(conn, tenant_id, left, threshold).await?;
    }
    Ok(left)
}

/// 409 `budget_closed`: the mall left the alliance.
fn closed() -> Error {
    Error::conflict("budget_closed", "the mall left the alliance: its issuing budget is closed")
}

/// `budget.low` to the alliance's webhooks (this runs with the alliance's schema
/// selected) and to the mall's, written into the mall's schema, in the same transaction;
/// and a notice for the mall's staff in its audit log (`alliance.budget.low`, labelled in
/// the portal in zh-CN and en).
async fn alert_low(conn: &mut PgConnection, tenant_id: TenantId, left: i64, threshold: i64) -> Result<()> {
    let details = serde_json::json!({"balance_fen": left, "low_threshold_fen": threshold});
    let system = crate::audit::Actor::system("system:budget");
    crate::audit::record(conn, &system, Some(tenant_id), "alliance.budget.low", "alliance-budget", details).await?;
    let (schema, slug): (String, String) =
        sqlx::query_as("SELECT schema_name, slug FROM control.tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_one(&mut *conn)
            .await?;
    let data = serde_json::json!({"tenant_id": tenant_id, "balance_fen": left, "low_threshold_fen": threshold});
    let mut to_alliance = data.clone();
    to_alliance["mall"] = serde_json::Value::String(slug);
    crate::webhooks::enqueue::event(conn, "budget.low", to_alliance).await?;
    let back: String = sqlx::query_scalar("SELECT current_schema()::text").fetch_one(&mut *conn).await?;
    crate::db::enter_schema(conn, &schema).await?;
    let sent = crate::webhooks::enqueue::event(conn, "budget.low", data).await;
    crate::db::enter_schema(conn, &back).await?;
    sent
}

#[allow(clippy::too_many_arguments)]
async fn insert_entry(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    amount_fen: i64,
    kind: &str,
    issue: Option<(i64, EntryId)>,
    balance_after: i64,
    actor: &str,
    memo: &str,
) -> Result<BudgetEntry> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO budget_entries (tenant_id, amount_fen, kind, points, ledger_entry_id, balance_after_fen, actor, memo) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {ENTRY_COLUMNS}"
    )))
    .bind(tenant_id)
    .bind(amount_fen)
    .bind(kind)
    .bind(issue.map(|i| i.0))
    .bind(issue.map(|i| i.1))
    .bind(balance_after)
    .bind(actor)
    .bind(memo)
    .fetch_one(conn)
    .await?)
}

/// The mall's budget without creating it (for read-only transactions): a mall that never
/// funded one shows an empty budget at the default rate.
pub async fn peek(conn: &mut PgConnection, tenant_id: TenantId) -> Result<Budget> {
    let found: Option<Budget> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM budgets WHERE tenant_id = $1")))
            .bind(tenant_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match found {
        Some(b) => b,
        None => Budget {
            tenant_id,
            balance_fen: 0,
            rate_bp: DEFAULT_RATE_BP,
            low_threshold_fen: 0,
            updated_at: Utc::now(),
            closed_at: None,
        },
    })
}

/// The issuing rate of a budget nobody set (the column's default).
const DEFAULT_RATE_BP: i32 = 1500;

#[cfg(test)]
mod tests {
    use super::cost_fen;

    #[test]
    fn cost_is_points_at_the_clearing_value_times_the_rate_rounded_up() {
        // 1,000 points at 100 points = ¥1 is ¥10; 15% of it is ¥1.50.
        assert_eq!(cost_fen(1_000, 100, 1_500), 150);
        assert_eq!(cost_fen(1, 100, 1_500), 1, "a fraction of a fen rounds up");
        assert_eq!(cost_fen(100, 100, 10_000), 100, "at 100% the clearing value itself");
        assert_eq!(cost_fen(100, 100, 0), 0);
        assert_eq!(cost_fen(i64::MAX, 1, 100_000), i64::MAX, "saturates");
    }
}
