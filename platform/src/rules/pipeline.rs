//! The event pipeline (R1, R2, P2): record the event (its id makes it idempotent), count
//! it, build the member context, run the tenant's rules for its type on blocking
//! threads, and apply their effects — all in one transaction (a savepoint per event of
//! a batch). A rule that fails fails its event cleanly: nothing of it is written except
//! the failure itself. Internal events (level_changed, points_released) then run
//! through the same pipeline, up to a bounded cascade depth.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scripting::{Effect, EventInput, Input};
use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection};

use super::cache::{RuleCache, RuleSet};
use super::{apply, bounds, context};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingEvent {
    /// The sender's unique id of this event; sending it again returns the first result.
    pub id: String,
    /// Built-in (registered, checked_in, order_completed, …) or custom type.
    #[serde(rename = "type")]
    pub kind: String,
    pub member_id: i64,
    /// When it happened (default: now).
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Free JSON object read by rules as `event.data`, e.g. {"amount_fen": 12800}.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// What became of one event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub id: String,
    /// applied, denied, failed or rejected (not recorded: e.g. no such member).
    pub status: String,
    /// Per rule: {"rule_id", "name", "version", "effects"}.
    pub effects: serde_json::Value,
    pub error: Option<String>,
    /// True when this event id had been processed before and this is its first result.
    pub replayed: bool,
}

impl IncomingEvent {
    fn check(&self, now: DateTime<Utc>) -> Result<()> {
        let mut v = crate::error::Validator::new();
        v.check(!self.id.is_empty() && self.id.len() <= 150, "id", "1 to 150 characters");
        v.check(super::event_type_is_valid(&self.kind), "type", "a-z, 0-9 and _, starting with a letter, at most 64");
        v.check(self.data.is_object() || self.data.is_null(), "data", "a JSON object");
        v.check(self.data.to_string().len() <= bounds::EVENT_DATA_BYTES_MAX, "data", "at most 8 KiB");
        v.check(
            self.occurred_at.is_none_or(|t| t <= now + chrono::Duration::minutes(5)),
            "occurred_at",
            "not in the future",
        );
        v.finish()
    }
}

enum Fail {
    /// The event fails; the batch goes on.
    Event(String),
    /// The batch fails (database trouble).
    Batch(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        match e {
            Error::Database(_) | Error::Internal(_) => Fail::Batch(e),
            other => Fail::Event(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Batch(Error::Database(e))
    }
}

/// Processes a batch from `source` ("partner", "member:<id>", "system"), then any
/// internal events it caused.
pub async fn process(
    db: &Db,
    cache: &RuleCache,
    tenant: &Tenant,
    source: &str,
    events: &[IncomingEvent],
) -> Result<Vec<Outcome>> {
    let now = Utc::now();
    if events.is_empty() || events.len() > bounds::BATCH_EVENTS_MAX {
        return Err(Error::invalid_field("events", format!("1 to {} events", bounds::BATCH_EVENTS_MAX)));
    }
    for e in events {
        e.check(now)?;
    }
    // Events of concurrent batches may lock the same accounts in different orders; the
    // loser of a deadlock is rolled back whole and runs again.
    let mut attempt = 0;
    let out = loop {
        attempt += 1;
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        match process_in(&mut tx, cache, tenant, source, events, 0, now).await {
            Ok(out) => {
                tx.commit().await?;
                break out;
            }
            Err(e) if attempt < 3 && is_deadlock(&e) => {
                tracing::warn!(attempt, "event batch deadlocked; retrying");
                continue;
            }
            Err(e) => return Err(e),
        }
    };
    // The batch is committed; internal events it caused that cannot run now stay in the
    // outbox and run with the next batch or the jobs.
    if let Err(e) = drain_outbox(db, cache, tenant).await {
        tracing::warn!(error = %e, "internal events postponed");
    }
    Ok(out)
}

fn is_deadlock(e: &Error) -> bool {
    matches!(e, Error::Database(sqlx::Error::Database(d)) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

async fn process_in(
    tx: &mut PgConnection,
    cache: &RuleCache,
    tenant: &Tenant,
    source: &str,
    events: &[IncomingEvent],
    depth: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Outcome>> {
    let set = cache.get(tx, tenant.id).await?;
    let mut out = Vec::with_capacity(events.len());
    for ev in events {
        let key = format!("{source}:{}", ev.id);
        let mut sp = tx.begin().await?;
        match run_one(&mut sp, cache, &set, tenant, &key, ev, source, depth, now).await {
            Ok(o) => {
                sp.commit().await?;
                out.push(o);
            }
            Err(Fail::Batch(e)) => return Err(e),
            Err(Fail::Event(message)) => {
                sp.rollback().await?;
                out.push(record_failure(tx, &key, ev, source, depth, now, &message).await?);
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    conn: &mut PgConnection,
    cache: &RuleCache,
    set: &RuleSet,
    tenant: &Tenant,
    key: &str,
    ev: &IncomingEvent,
    source: &str,
    depth: i32,
    now: DateTime<Utc>,
) -> Result<Outcome, Fail> {
    let occurred_at = ev.occurred_at.unwrap_or(now);
    let data = if ev.data.is_null() { serde_json::json!({}) } else { ev.data.clone() };
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO events (event_key, type, member_id, data, occurred_at, source, status, depth) \
         VALUES ($1, $2, $3, $4, $5, $6, 'applied', $7) ON CONFLICT (event_key) DO NOTHING RETURNING id",
    )
    .bind(key)
    .bind(&ev.kind)
    .bind(ev.member_id)
    .bind(&data)
    .bind(occurred_at)
    .bind(source)
    .bind(depth)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Fail::Event("no such member".into()),
        _ => Fail::Batch(Error::Database(e)),
    })?;
    let Some(event_id) = inserted else {
        return stored(conn, key, &ev.id).await.map_err(Fail::Batch);
    };
    context::count_event(conn, ev.member_id, &ev.kind, now).await?;
    let member = context::member(conn, ev.member_id, &ev.kind, now).await?;
    let event = EventInput { kind: ev.kind.clone(), id: ev.id.clone(), occurred_at: occurred_at.to_rfc3339(), data };
    let mut results: Vec<(&super::cache::LoadedRule, Vec<Effect>)> = vec![];
    for rule in set.for_event(&ev.kind) {
        let input = Input { event: event.clone(), member: member.clone(), params: rule.params.clone() };
        let effects = run_rule(cache, rule.ast.clone(), input)
            .await
            .map_err(|e| Fail::Event(format!("rule {} ({:?}) v{}: {e}", rule.id, rule.name, rule.version)))?;
        results.push((rule, effects));
    }
    let summary = serde_json::Value::Array(
        results
            .iter()
            .map(|(r, e)| serde_json::json!({"rule_id": r.id, "name": r.name, "version": r.version, "effects": e}))
            .collect(),
    );
    let denial = results.iter().flat_map(|(_, e)| e).find_map(|e| match e {
        Effect::Deny { reason } => Some(reason.clone()),
        _ => None,
    });
    let status = if denial.is_some() { "denied" } else { "applied" };
    if denial.is_none() {
        for (rule, effects) in &results {
            let producer = apply::Producer { rule_id: rule.id, version: rule.version, event_key: key };
            apply::apply(conn, tenant, &member, &producer, effects, now).await?;
        }
    }
    sqlx::query("UPDATE events SET status = $2, effects = $3, error = $4 WHERE id = $1")
        .bind(event_id)
        .bind(status)
        .bind(&summary)
        .bind(&denial)
        .execute(&mut *conn)
        .await?;
    Ok(Outcome { id: ev.id.clone(), status: status.into(), effects: summary, error: denial, replayed: false })
}

/// Runs one rule on a blocking thread, bounded in time.
async fn run_rule(cache: &RuleCache, ast: Arc<scripting::AST>, input: Input) -> Result<Vec<Effect>, String> {
    let sandbox = cache.sandbox.clone();
    let job = tokio::task::spawn_blocking(move || sandbox.run(&ast, &input));
    match tokio::time::timeout(Duration::from_millis(bounds::RULE_TIMEOUT_MS), job).await {
        Ok(Ok(Ok(effects))) => Ok(effects),
        Ok(Ok(Err(e))) => Err(format!("{} ({})", e.message, e.kind)),
        Ok(Err(join)) => Err(format!("the rule crashed: {join}")),
        Err(_) => Err(format!("the rule did not finish within {} ms", bounds::RULE_TIMEOUT_MS)),
    }
}

async fn stored(conn: &mut PgConnection, key: &str, id: &str) -> Result<Outcome> {
    let (status, effects, error): (String, serde_json::Value, Option<String>) =
        sqlx::query_as("SELECT status, effects, error FROM events WHERE event_key = $1")
            .bind(key)
            .fetch_one(conn)
            .await?;
    Ok(Outcome { id: id.to_string(), status, effects, error, replayed: true })
}

async fn record_failure(
    conn: &mut PgConnection,
    key: &str,
    ev: &IncomingEvent,
    source: &str,
    depth: i32,
    now: DateTime<Utc>,
    message: &str,
) -> Result<Outcome> {
    let data = if ev.data.is_null() { serde_json::json!({}) } else { ev.data.clone() };
    let recorded: Option<i64> = sqlx::query_scalar(
        "INSERT INTO events (event_key, type, member_id, data, occurred_at, source, status, error, depth) \
         SELECT $1, $2, $3, $4, $5, $6, 'failed', $7, $8 WHERE EXISTS (SELECT 1 FROM members WHERE id = $3) \
         ON CONFLICT (event_key) DO NOTHING RETURNING id",
    )
    .bind(key)
    .bind(&ev.kind)
    .bind(ev.member_id)
    .bind(&data)
    .bind(ev.occurred_at.unwrap_or(now))
    .bind(source)
    .bind(message)
    .bind(depth)
    .fetch_optional(conn)
    .await?;
    let status = if recorded.is_some() { "failed" } else { "rejected" };
    tracing::warn!(event = key, error = message, status, "event failed");
    Ok(Outcome {
        id: ev.id.clone(),
        status: status.into(),
        effects: serde_json::json!([]),
        error: Some(message.to_string()),
        replayed: false,
    })
}

/// Runs pending internal events (level_changed, points_released) through the rules,
/// in passes, each pass one level deeper, up to the cascade bound.
pub async fn drain_outbox(db: &Db, cache: &RuleCache, tenant: &Tenant) -> Result<u64> {
    let mut handled = 0;
    for depth in 1..=bounds::CASCADE_DEPTH_MAX {
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        let rows: Vec<(i64, String, Option<i64>, serde_json::Value)> = sqlx::query_as(
            "SELECT id, kind, member_id, payload FROM events_outbox \
             WHERE processed_at IS NULL AND kind IN ('level_changed', 'points_released') AND member_id IS NOT NULL \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(bounds::BATCH_EVENTS_MAX as i64)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(handled);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let events: Vec<IncomingEvent> = rows
            .into_iter()
            .map(|(id, kind, member_id, payload)| IncomingEvent {
                id: format!("outbox:{id}"),
                kind,
                member_id: member_id.unwrap_or_default(),
                occurred_at: None,
                data: payload,
            })
            .collect();
        process_in(&mut tx, cache, tenant, "system", &events, depth, Utc::now()).await?;
        sqlx::query("UPDATE events_outbox SET processed_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        handled += ids.len() as u64;
    }
    Ok(handled)
}
