//! A member's tasks: every active task within its window, with the member's progress in
//! the current period (today, this ISO week, or ever) in the mall's time zone.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::progress::period_key;
use super::{Row, SELECT, TaskPeriod, from_row};
use crate::error::Result;
use crate::tx::TenantTx;

/// One task as a member sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberTask {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub event_type: String,
    pub period: TaskPeriod,
    pub consecutive_days: bool,
    pub target: i32,
    /// Events counted, or days in a row, in the current period.
    pub progress: i32,
    pub completed: bool,
    pub reward_currency: String,
    pub reward_amount: i64,
    pub ends_at: Option<DateTime<Utc>>,
}

/// The member's tasks, in the order staff defined them.
pub async fn mine(tx: &mut TenantTx, member_id: i64, now: DateTime<Utc>) -> Result<Vec<MemberTask>> {
    let today = crate::localtime::day(tx.tenant().settings.tz(), now);
    let sql = format!(
        "{SELECT} WHERE t.status = 'active' AND (t.starts_at IS NULL OR t.starts_at <= $1) \
         AND (t.ends_at IS NULL OR t.ends_at > $1) ORDER BY t.id"
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(&mut **tx).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let t = from_row(row)?;
        let key = period_key(t.period, today);
        let p: Option<(i32, chrono::NaiveDate, bool)> = sqlx::query_as(
            "SELECT count, last_day, completed_at IS NOT NULL FROM task_progress \
             WHERE task_id = $1 AND member_id = $2 AND period_key = $3",
        )
        .bind(t.id)
        .bind(member_id)
        .bind(&key)
        .fetch_optional(&mut **tx)
        .await?;
        let (progress, completed) = match p {
            Some((n, _, true)) => (n, true),
            // A run of days that missed yesterday is over.
            Some((_, last, false)) if t.consecutive_days && (today - last).num_days() > 1 => (0, false),
            Some((n, _, false)) => (n, false),
            None => (0, false),
        };
        out.push(MemberTask {
            id: t.id,
            name: t.name,
            description: t.description,
            event_type: t.event_type,
            period: t.period,
            consecutive_days: t.consecutive_days,
            target: t.target,
            progress: progress.min(t.target),
            completed,
            reward_currency: t.reward_currency,
            reward_amount: t.reward_amount,
            ends_at: t.ends_at,
        });
    }
    Ok(out)
}
