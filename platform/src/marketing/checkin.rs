//! The check-in calendar (SPEC K1): which days of a month the member checked in, the
//! current streak and whether today is done. Check-ins are `checked_in` events; their
//! rewards come from the mall's rules, else from the built-in check-in rule with the
//! mall's reward table (staff set it; without one, the built-in defaults). Staff read
//! the table, which rules decide instead, and check-ins per local day.

use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result, Validator};
use crate::localtime;
use crate::notify::{self, Change};
use crate::rules::cache::RuleCache;
use crate::rules::pipeline::{self, IncomingEvent, Outcome};
use crate::tx::TenantTx;

/// The built-in rule used when a mall has no enabled `checked_in` rule: the library's
/// streak table, with the mall's table as its parameters.
pub const DEFAULT_RULE: &str = include_str!("../../../examples/rules/checkin_streak.rhai");

/// Parameters of the built-in rule: 5, 8, 12, 15, 18, 20, 25 and +50 on day 7.
pub fn default_params() -> serde_json::Value {
    CheckinRewards::default().params()
}

/// Days of a reward table at most (a month of streak).
pub const TABLE_DAYS_MAX: usize = 31;
/// Points one check-in reward may give at most.
pub const REWARD_MAX: i64 = 1_000_000;
/// Local days of check-in figures the staff overview shows.
pub const FIGURE_DAYS: i64 = 14;

/// The reward table of the built-in check-in rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinRewards {
    /// Points on day 1, 2, … of a streak; after the table's end its last entry repeats.
    #[schema(min_items = 1, max_items = 31, value_type = Vec<CheckinReward>)]
    pub table: Vec<i64>,
    /// Extra points on every 7th consecutive day (0: none).
    #[schema(minimum = 0, maximum = 1000000)]
    pub day7_bonus: i64,
}

/// Points of one day of the check-in table.
#[derive(utoipa::ToSchema)]
#[schema(as = CheckinReward, minimum = 1, maximum = 1000000)]
#[allow(dead_code)]
pub struct CheckinReward(i64);

impl Default for CheckinRewards {
    fn default() -> Self {
        Self { table: vec![5, 8, 12, 15, 18, 20, 25], day7_bonus: 50 }
    }
}

impl CheckinRewards {
    /// The built-in rule's parameters.
    pub fn params(&self) -> serde_json::Value {
        serde_json::json!({"table": self.table, "day7_bonus": self.day7_bonus})
    }

    fn validate(&self) -> Result<()> {
        Validator::new()
            .check((1..=TABLE_DAYS_MAX).contains(&self.table.len()), "table", "1 to 31 days")
            .check(self.table.iter().all(|p| (1..=REWARD_MAX).contains(p)), "table", "1 to 1000000 points a day")
            .check((0..=REWARD_MAX).contains(&self.day7_bonus), "day7_bonus", "0 to 1000000")
            .finish()
    }
}

/// The mall's reward table (the built-in defaults where it set none).
pub async fn rewards(conn: &mut PgConnection) -> Result<(CheckinRewards, bool)> {
    let row: Option<(Vec<i64>, i64)> =
        sqlx::query_as("SELECT streak_table, day7_bonus FROM checkin_rewards").fetch_optional(conn).await?;
    Ok(match row {
        Some((table, day7_bonus)) => (CheckinRewards { table, day7_bonus }, true),
        None => (CheckinRewards::default(), false),
    })
}

/// A rule of the mall's own that runs on check-ins.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CheckinRule {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
}

/// Check-ins of one local day.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CheckinDay {
    /// YYYY-MM-DD, the mall's local day.
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    /// Members who checked in that day.
    pub members: i64,
}

/// What staff see of check-ins: the reward table, whether it is in effect, and the
/// recent figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckinOverview {
    pub rewards: CheckinRewards,
    /// False: the table is the built-in default (the mall never set its own).
    pub customised: bool,
    /// The mall's own rules on `checked_in`; while one is enabled, the rules decide the
    /// rewards and the table is not used.
    pub rules: Vec<CheckinRule>,
    /// True when the table decides the rewards (no enabled rule of the mall's own).
    pub table_in_effect: bool,
    /// The last 14 local days, oldest first (days without check-ins count 0).
    pub days: Vec<CheckinDay>,
}

/// The staff overview of check-ins.
pub async fn overview(tx: &mut TenantTx) -> Result<CheckinOverview> {
    let today = localtime::day(tx.tenant().settings.tz(), Utc::now());
    let conn: &mut PgConnection = tx;
    let (rewards, customised) = rewards(conn).await?;
    let rules: Vec<CheckinRule> =
        sqlx::query_as("SELECT id, name, enabled FROM rules WHERE event_type = 'checked_in' ORDER BY position, id")
            .fetch_all(&mut *conn)
            .await?;
    let first = today - chrono::Duration::days(FIGURE_DAYS - 1);
    let counted: Vec<CheckinDay> = sqlx::query_as(
        "SELECT day, count(*) AS members FROM event_days WHERE type = 'checked_in' AND day >= $1 AND day <= $2 \
         GROUP BY day ORDER BY day",
    )
    .bind(first)
    .bind(today)
    .fetch_all(&mut *conn)
    .await?;
    let days = first
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|day| CheckinDay { day, members: counted.iter().find(|c| c.day == day).map_or(0, |c| c.members) })
        .collect();
    let table_in_effect = !rules.iter().any(|r| r.enabled);
    Ok(CheckinOverview { rewards, customised, rules, table_in_effect, days })
}

/// Sets the mall's reward table; audited, and announced so every instance's rules
/// pick it up for the next check-in.
pub async fn set_rewards(tx: &mut TenantTx, rewards: &CheckinRewards) -> Result<CheckinOverview> {
    rewards.validate()?;
    sqlx::query(
        "INSERT INTO checkin_rewards (singleton, streak_table, day7_bonus) VALUES (true, $1, $2) \
         ON CONFLICT (singleton) DO UPDATE SET streak_table = EXCLUDED.streak_table, \
         day7_bonus = EXCLUDED.day7_bonus, updated_at = now()",
    )
    .bind(&rewards.table)
    .bind(rewards.day7_bonus)
    .execute(&mut **tx)
    .await?;
    tx.audit("checkin.rewards", "", rewards.params()).await?;
    let tenant_id = tx.tenant().id;
    notify::publish(tx, &Change::Rules { tenant_id }).await?;
    overview(tx).await
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
