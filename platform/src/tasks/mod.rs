//! The task centre (SPEC K2): tasks the merchant defines over any event type — "first
//! redemption", "share 3 times", "check in 7 days in a row", "invite 3 friends" — once,
//! per day or per week, within an optional window, each rewarded once per period with
//! points or experience. Progress moves with the events the rules pipeline records
//! (`progress`), in their transaction; members read theirs (`view`).

pub mod progress;
pub mod view;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Validator};
use crate::tx::TenantTx;

/// How often a task can be completed: once ever, once per local day, or per ISO week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskPeriod {
    Once,
    Daily,
    Weekly,
}

/// Whether members see and progress a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Active,
    Paused,
    /// Gone from the lists; kept with its progress for history.
    Archived,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, v: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(v.to_string()))
        .map_err(|_| Error::Internal(anyhow::anyhow!("unknown task {what} {v:?}")))
}

impl TaskPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Archived => "archived",
        }
    }
}

/// A task as staff define it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
    /// The event that moves it: built-in (`checked_in`, `first_redemption`,
    /// `invited_registered`, `profile_completed`, `order_completed`, …) or custom.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub event_type: String,
    /// Events to count, or days in a row (1 to 1000).
    #[schema(minimum = 1, maximum = 1000)]
    pub target: i32,
    /// Count consecutive local days with at least one event instead of events (with
    /// `once`, or `weekly` up to 7 days).
    #[serde(default)]
    pub consecutive_days: bool,
    pub period: TaskPeriod,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// A currency of the mall (not an alliance's shared one), e.g. "points" or "exp".
    #[schema(pattern = "^[a-z][a-z0-9_]{1,31}$")]
    pub reward_currency: String,
    #[schema(minimum = 1, maximum = 100000000)]
    pub reward_amount: i64,
    /// Default active.
    #[serde(default)]
    pub status: Option<TaskStatus>,
}

/// A task (what staff defined, its status and how many completed it).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Task {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub event_type: String,
    pub target: i32,
    pub consecutive_days: bool,
    pub period: TaskPeriod,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub reward_currency: String,
    pub reward_amount: i64,
    pub status: TaskStatus,
    /// Members who completed it (all periods).
    pub completions: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) type Row = (
    i64,
    String,
    String,
    String,
    i32,
    bool,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    String,
    i64,
    String,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

pub(crate) const SELECT: &str = "SELECT t.id, t.name, t.description, t.event_type, t.target, t.consecutive_days, \
         t.period, t.starts_at, t.ends_at, t.reward_currency, t.reward_amount, t.status, \
         (SELECT count(*) FROM task_progress p WHERE p.task_id = t.id AND p.completed_at IS NOT NULL), \
         t.created_at, t.updated_at FROM tasks t";

pub(crate) fn from_row(r: Row) -> Result<Task> {
    let (
        id,
        name,
        description,
        event_type,
        target,
        consecutive_days,
        period,
        starts_at,
        ends_at,
        cur,
        amount,
        status,
        n,
        c,
        u,
    ) = r;
    Ok(Task {
        id,
        name,
        description,
        event_type,
        target,
        consecutive_days,
        period: parse("period", &period)?,
        starts_at,
        ends_at,
        reward_currency: cur,
        reward_amount: amount,
        status: parse("status", &status)?,
        completions: n,
        created_at: c,
        updated_at: u,
    })
}

fn event_type_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || *x == b'_')
}

async fn validate(tx: &mut TenantTx, t: &TaskInput) -> Result<()> {
    let mut v = Validator::new();
    v.check(!t.name.trim().is_empty() && t.name.chars().count() <= 64, "name", "1 to 64 characters");
    v.check(t.description.chars().count() <= 500, "description", "at most 500 characters");
    v.check(event_type_ok(&t.event_type), "event_type", "an event type such as checked_in");
    v.check((1..=1000).contains(&t.target), "target", "1 to 1000");
    v.check(
        !t.consecutive_days || t.period == TaskPeriod::Once || (t.period == TaskPeriod::Weekly && t.target <= 7),
        "consecutive_days",
        "days in a row go with `once`, or `weekly` up to 7 days",
    );
    v.check(!matches!((t.starts_at, t.ends_at), (Some(a), Some(b)) if b <= a), "ends_at", "after starts_at");
    v.check((1..=100_000_000).contains(&t.reward_amount), "reward_amount", "1 to 100000000");
    v.finish()?;
    let cur: Option<(bool,)> = sqlx::query_as("SELECT shared FROM currencies WHERE code = $1")
        .bind(&t.reward_currency)
        .fetch_optional(&mut **tx)
        .await?;
    match cur {
        None => Err(Error::invalid_field("reward_currency", "a currency of the mall")),
        Some((true,)) => Err(Error::invalid_field("reward_currency", "a currency of the mall, not a shared one")),
        Some((false,)) => Ok(()),
    }
}

/// The mall's tasks, newest first; archived ones only when asked.
pub async fn list(tx: &mut TenantTx, archived: bool) -> Result<Vec<Task>> {
    let sql = format!("{SELECT} WHERE ($1 OR t.status <> 'archived') ORDER BY t.id DESC");
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(archived).fetch_all(&mut **tx).await?;
    rows.into_iter().map(from_row).collect()
}

/// One task (404 when there is none).
pub async fn get(tx: &mut TenantTx, id: i64) -> Result<Task> {
    let sql = format!("{SELECT} WHERE t.id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&mut **tx).await?;
    from_row(row.ok_or_else(|| Error::not_found("task_not_found", "no such task"))?)
}

/// Defines a task (at most `TASKS_PER_TENANT_MAX` that are not archived); audited.
pub async fn create(tx: &mut TenantTx, t: &TaskInput) -> Result<Task> {
    validate(tx, t).await?;
    sqlx::query("LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status <> 'archived'").fetch_one(&mut **tx).await?;
    if live >= crate::limits::tasks::TASKS_PER_TENANT_MAX {
        return Err(Error::conflict("too_many_tasks", "a mall has at most 100 tasks that are not archived"));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tasks (name, description, event_type, target, consecutive_days, period, starts_at, ends_at, \
             reward_currency, reward_amount, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(t.name.trim())
    .bind(t.description.trim())
    .bind(&t.event_type)
    .bind(t.target)
    .bind(t.consecutive_days)
    .bind(t.period.as_str())
    .bind(t.starts_at)
    .bind(t.ends_at)
    .bind(&t.reward_currency)
    .bind(t.reward_amount)
    .bind(t.status.unwrap_or(TaskStatus::Active).as_str())
    .fetch_one(&mut **tx)
    .await?;
    tx.audit("task.create", &format!("task:{id}"), serde_json::to_value(t).unwrap_or_default()).await?;
    get(tx, id).await
}

/// Replaces a task's definition and status; progress made so far is kept (a new target
/// applies to the next event). Audited.
pub async fn update(tx: &mut TenantTx, id: i64, t: &TaskInput) -> Result<Task> {
    validate(tx, t).await?;
    let done = sqlx::query(
        "UPDATE tasks SET name = $2, description = $3, event_type = $4, target = $5, consecutive_days = $6, period = $7, \
             starts_at = $8, ends_at = $9, reward_currency = $10, reward_amount = $11, status = coalesce($12, status), \
             updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(t.name.trim())
    .bind(t.description.trim())
    .bind(&t.event_type)
    .bind(t.target)
    .bind(t.consecutive_days)
    .bind(t.period.as_str())
    .bind(t.starts_at)
    .bind(t.ends_at)
    .bind(&t.reward_currency)
    .bind(t.reward_amount)
    .bind(t.status.map(TaskStatus::as_str))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(Error::not_found("task_not_found", "no such task"));
    }
    tx.audit("task.update", &format!("task:{id}"), serde_json::to_value(t).unwrap_or_default()).await?;
    get(tx, id).await
}
