//! Moves members' task progress with the events the rules pipeline records, in the
//! same transaction (so a replayed event, which the pipeline does not record again,
//! moves nothing). An event counts on its own local day (`occurred_at` in the mall's
//! time zone), in the period that day falls in, if it lies within the task's window.
//! Reaching the target completes the task for that period once: the reward is credited
//! and `task_completed` {task_id, name, period} is emitted for the rules.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sqlx::PgConnection;

use super::TaskPeriod;
use crate::directory::Tenant;
use crate::error::Result;
use crate::ledger::batch;
use crate::ledger::post::LotPart;
use crate::ledger::{Reason, Source, SourceKind};

/// An event the pipeline recorded, as tasks see it.
pub struct Counted<'a> {
    pub member_id: i64,
    pub kind: &'a str,
    pub at: DateTime<Utc>,
    pub day: NaiveDate,
}

struct Live {
    id: i64,
    name: String,
    event_type: String,
    target: i32,
    consecutive: bool,
    period: TaskPeriod,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    currency: String,
    amount: i64,
}

type LiveRow = (i64, String, String, i32, bool, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>, String, i64);

/// The period key of `day`: "once", the day, or its ISO week ("2026-W49").
pub fn period_key(period: TaskPeriod, day: NaiveDate) -> String {
    match period {
        TaskPeriod::Once => "once".into(),
        TaskPeriod::Daily => day.format("%Y-%m-%d").to_string(),
        TaskPeriod::Weekly => {
            let w = day.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
    }
}

/// Applies `events` (in order) to the active tasks they match.
pub async fn record(
    conn: &mut PgConnection,
    tenant: &Tenant,
    events: &[Counted<'_>],
    now: DateTime<Utc>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let rows: Vec<LiveRow> = sqlx::query_as(
        "SELECT id, name, event_type, target, consecutive_days, period, starts_at, ends_at, reward_currency, reward_amount \
         FROM tasks WHERE status = 'active' AND event_type = ANY($1) ORDER BY id",
    )
    .bind(&kinds)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut tasks = Vec::with_capacity(rows.len());
    for (id, name, event_type, target, consecutive, period, starts_at, ends_at, currency, amount) in rows {
        let period = super::parse("period", &period)?;
        tasks.push(Live { id, name, event_type, target, consecutive, period, starts_at, ends_at, currency, amount });
    }
    for e in events {
        for t in tasks.iter().filter(|t| t.event_type == e.kind) {
            let inside = t.starts_at.is_none_or(|s| e.at >= s) && t.ends_at.is_none_or(|end| e.at < end);
            if inside {
                step(conn, tenant, t, e, now).await?;
            }
        }
    }
    Ok(())
}

/// One event on one task: count it, and complete the task when it reaches the target.
async fn step(conn: &mut PgConnection, tenant: &Tenant, t: &Live, e: &Counted<'_>, now: DateTime<Utc>) -> Result<()> {
    let key = period_key(t.period, e.day);
    let row: Option<(i32, NaiveDate, bool)> = sqlx::query_as(
        "SELECT count, last_day, completed_at IS NOT NULL FROM task_progress \
         WHERE task_id = $1 AND member_id = $2 AND period_key = $3 FOR UPDATE",
    )
    .bind(t.id)
    .bind(e.member_id)
    .bind(&key)
    .fetch_optional(&mut *conn)
    .await?;
    let (count, last_day) = match row {
        Some((_, _, true)) => return Ok(()),
        Some((n, last, false)) if t.consecutive => match (e.day - last).num_days() {
            0 => return Ok(()),
            1 => (n + 1, e.day),
            // A back-dated day before the run: the run stays as it is.
            d if d < 0 => return Ok(()),
            _ => (1, e.day),
        },
        Some((n, last, false)) => (n + 1, last.max(e.day)),
        None => (1, e.day),
    };
    let done = count >= t.target;
    sqlx::query(
        "INSERT INTO task_progress (task_id, member_id, period_key, count, last_day, completed_at) \
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN $7::timestamptz END) \
         ON CONFLICT (task_id, member_id, period_key) DO UPDATE SET count = $4, last_day = $5, \
             completed_at = CASE WHEN $6 THEN $7::timestamptz END, updated_at = now()",
    )
    .bind(t.id)
    .bind(e.member_id)
    .bind(&key)
    .bind(count)
    .bind(last_day)
    .bind(done)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if done {
        reward(conn, tenant, t, e, &key, now).await?;
    }
    Ok(())
}

async fn reward(
    conn: &mut PgConnection,
    tenant: &Tenant,
    t: &Live,
    e: &Counted<'_>,
    key: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let cur = crate::ledger::currencies::get(conn, &t.currency).await?;
    let parts = [LotPart { amount: t.amount, expires_at: tenant.settings.default_expiry(cur.expires, now) }];
    let source = Source::new(SourceKind::System, format!("task:{}", t.id))
        .reference(format!("task:{}:{key}", t.id))
        .memo(crate::i18n::Voice::of(tenant).text("memo-task", &[("name", crate::i18n::Arg::Str(&t.name))]));
    let entry = batch::credit(conn, e.member_id, &t.currency, &parts, Reason::Earn, &source, now).await?;
    sqlx::query("UPDATE task_progress SET entry_id = $4 WHERE task_id = $1 AND member_id = $2 AND period_key = $3")
        .bind(t.id)
        .bind(e.member_id)
        .bind(key)
        .bind(entry.id)
        .execute(&mut *conn)
        .await?;
    let payload = serde_json::json!({"task_id": t.id, "name": t.name, "period": key});
    crate::outbox::emit(conn, "task_completed", e.member_id, payload).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_the_day_or_its_iso_week() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(period_key(TaskPeriod::Once, d), "once");
        assert_eq!(period_key(TaskPeriod::Daily, d), "2026-11-30");
        assert_eq!(period_key(TaskPeriod::Weekly, d), "2026-W49");
        // 2027-01-01 is a Friday of ISO week 53 of 2026.
        assert_eq!(period_key(TaskPeriod::Weekly, NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()), "2026-W53");
    }
}
