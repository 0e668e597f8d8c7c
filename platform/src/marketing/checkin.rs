//! The check-in calendar (SPEC K1): which days of a month the member checked in, the
//! current streak and whether today is done. Check-ins are `checked_in` events; their
//! rewards come from the mall's rules, else from the built-in check-in rule.

use chrono::{Datelike, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::localtime;
use crate::rules::cache::RuleCache;
use crate::rules::pipeline::{self, IncomingEvent, Outcome};
use crate::tx::TenantTx;

/// The built-in rule used when a mall has no enabled `checked_in` rule: the library's
/// streak table, with the mall's table as its parameters.
pub const DEFAULT_RULE: &str = include_str!("../../../examples/rules/checkin_streak.rhai");

/// Parameters of the built-in rule: 5, 8, 12, 15, 18, 20, 25 and +50 on day 7.
pub fn default_params() -> serde_json::Value {
    serde_json::json!({"table": [5, 8, 12, 15, 18, 20, 25], "day7_bonus": 50})
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Calendar {
    /// YYYY-MM.
    pub month: String,
    /// Days of the month with a check-in (YYYY-MM-DD).
    pub days: Vec<String>,
    pub checked_in_today: bool,
    /// Consecutive days ending today (or yesterday, if not yet today).
    pub streak: i64,
}

/// The member's calendar of `month` (default: this month), in the mall's days.
pub async fn calendar(tx: &mut TenantTx, member_id: i64, month: Option<&str>) -> Result<Calendar> {
    let today = localtime::day(tx.tenant().settings.tz(), Utc::now());
    let conn: &mut PgConnection = tx;
    let first = match month {
        None => NaiveDate::from_ymd_opt(today.year(), today.month(), 1),
        Some(m) => NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok(),
    }
    .ok_or_else(|| Error::invalid_field("month", "YYYY-MM"))?;
    let next =
        first.checked_add_months(chrono::Months::new(1)).ok_or_else(|| Error::invalid_field("month", "YYYY-MM"))?;
    let days: Vec<NaiveDate> = sqlx::query_scalar(
        "SELECT day FROM event_days WHERE member_id = $1 AND type = 'checked_in' AND day >= $2 AND day < $3 ORDER BY day",
    )
    .bind(member_id)
    .bind(first)
    .bind(next)
    .fetch_all(&mut *conn)
    .await?;
    let recent: Vec<NaiveDate> = sqlx::query_scalar(
        "SELECT day FROM event_days WHERE member_id = $1 AND type = 'checked_in' ORDER BY day DESC LIMIT 400",
    )
    .bind(member_id)
    .fetch_all(&mut *conn)
    .await?;
    let checked_in_today = recent.first() == Some(&today);
    let mut expected = if checked_in_today { today } else { today - chrono::Duration::days(1) };
    let mut streak = 0;
    for d in &recent {
        if *d == expected {
            streak += 1;
            expected -= chrono::Duration::days(1);
        } else if *d < expected {
            break;
        }
    }
    Ok(Calendar {
        month: first.format("%Y-%m").to_string(),
        days: days.iter().map(|d| d.to_string()).collect(),
        checked_in_today,
        streak,
    })
}

/// Checks the member in for today, the mall's local day (once a day: a second check-in
/// that day returns the first result). The reward comes from the mall's check-in rule,
/// or the built-in streak table.
pub async fn check_in(db: &Db, rules: &RuleCache, tenant: &Tenant, member_id: i64) -> Result<Outcome> {
    let today = localtime::day(tenant.settings.tz(), Utc::now());
    let ev = IncomingEvent {
        id: format!("checkin-{today}"),
        kind: "checked_in".into(),
        member_id,
        occurred_at: None,
        data: serde_json::json!({}),
    };
    let source = format!("member:{member_id}");
    let mut out = pipeline::process(db, rules, tenant, &source, &[ev]).await?;
    out.pop().ok_or_else(|| Error::Internal(anyhow::anyhow!("a check-in without an outcome")))
}
