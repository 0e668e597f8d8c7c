//! The event pipeline (R1, R2, P2). Rules first run with no transaction open, so a
//! tenant's slow rules hold no database connection while they run; a batch goes through
//! three steps:
//!
//! 1. **read**, in one short transaction: the tenant's rules, the context of every member
//!    of the batch (`context`), the currencies, and which event ids were seen before (a
//!    replay returns its first outcome);
//! 2. **evaluate**, holding no connection: the rules of every event in order
//!    (`evaluate`), each event seeing the effects of the events before it;
//! 3. **write**, in one transaction: lock the batch's members (`context::lock_members`),
//!    read their context again, and if anything the rules read changed (balances,
//!    counters, tags, level, day counts), evaluate again on what is stored now (the
//!    locks make that final); then record the events and apply the verdicts (`write`).
//!    When the batch's members themselves changed, or one of its event ids was recorded
//!    meanwhile, roll back and start again from 1. After
//!    `bounds::OPTIMISTIC_ATTEMPTS` such attempts the batch reads and evaluates with its
//!    members locked, inside the write transaction, so it always ends. A tenant whose
//!    concurrent batches keep sharing members locks first for a while
//!    (`Admission::lock_first`): the same work, done once. Either way a tenant holds at
//!    most one connection per batch slot.
//!
//! A rule that fails fails its event cleanly: nothing of it is written except the
//! failure itself. Internal events (level_changed, points_released) then run through the
//! same pipeline, up to a bounded cascade depth. How many batches of a tenant run at
//! once, and how much rule-evaluation time they get, is bounded (`admission`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scripting::EventInput;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::admission::{BatchSlot, Went};
use super::cache::{RuleCache, RuleSet};
use super::context::{self, Contexts};
use super::evaluate::{Evaluated, Job, RuleRun, Verdict, evaluate};
use super::{bounds, write};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ledger::currencies::{self, Currency};

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
    /// `data` as scripts and the event log see it: an object (`{}` when absent).
    pub(super) fn data_object(&self) -> serde_json::Value {
        if self.data.is_null() { serde_json::json!({}) } else { self.data.clone() }
    }

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

/// A batch on its way through the pipeline.
pub(super) struct Batch<'a> {
    /// "partner", "member:<id>" or "system".
    pub source: &'a str,
    pub events: &'a [IncomingEvent],
    /// Cascade depth (0 for events from outside).
    pub depth: i32,
    pub now: DateTime<Utc>,
    /// Outbox rows these events come from, marked processed with them.
    pub outbox: &'a [i64],
    /// Each event's idempotency key: `source:id`.
    pub keys: Vec<String>,
}

impl<'a> Batch<'a> {
    fn new(source: &'a str, events: &'a [IncomingEvent], depth: i32, now: DateTime<Utc>, outbox: &'a [i64]) -> Self {
        let keys = events.iter().map(|e| format!("{source}:{}", e.id)).collect();
        Self { source, events, depth, now, outbox, keys }
    }

    fn pairs(&self) -> Vec<(i64, &str)> {
        self.events.iter().map(|e| (e.member_id, e.kind.as_str())).collect()
    }

    fn members(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.events.iter().map(|e| e.member_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// What a batch's rules need, read in one go.
struct Read {
    set: Arc<RuleSet>,
    ctx: Contexts,
    currencies: Arc<HashMap<String, Currency>>,
    /// Keys of the batch recorded before: replays.
    seen: HashSet<String>,
}

impl Read {
    async fn load(conn: &mut PgConnection, cache: &RuleCache, tenant: &Tenant, batch: &Batch<'_>) -> Result<Self> {
        let set = cache.get(conn, tenant.id).await?;
        let ctx = Contexts::load(conn, &batch.pairs(), batch.now).await?;
        let seen: Vec<String> = sqlx::query_scalar("SELECT event_key FROM events WHERE event_key = ANY($1)")
            .bind(&batch.keys)
            .fetch_all(&mut *conn)
            .await?;
        let currencies = currencies::list(conn).await?.into_iter().map(|c| (c.code.clone(), c)).collect();
        Ok(Self { set, ctx, currencies: Arc::new(currencies), seen: seen.into_iter().collect() })
    }
}

/// What becomes of each event before any rule runs.
pub(super) struct Plan {
    /// Outcomes decided already (unknown members); the rest come from the write.
    pub decided: Vec<Option<Outcome>>,
    /// (repeat, first occurrence) of ids repeated within the batch.
    pub repeat_of: Vec<(usize, usize)>,
    /// Events to evaluate and record, in order.
    pub fresh: Vec<usize>,
    /// Events recorded before.
    pub replays: Vec<usize>,
}

impl Plan {
    fn new(batch: &Batch<'_>, read: &Read) -> Self {
        let events = batch.events;
        let mut plan = Plan { decided: vec![None; events.len()], repeat_of: vec![], fresh: vec![], replays: vec![] };
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            let key = batch.keys[i].as_str();
            if let Some(&j) = first.get(key) {
                plan.repeat_of.push((i, j));
                continue;
            }
            first.insert(key, i);
            if !read.ctx.knows(ev.member_id) {
                plan.decided[i] = Some(Outcome::rejected(ev, "no such member"));
            } else if read.seen.contains(key) {
                plan.replays.push(i);
            } else {
                plan.fresh.push(i);
            }
        }
        plan
    }

    fn jobs(&self, batch: &Batch<'_>) -> Vec<Job> {
        self.fresh
            .iter()
            .map(|&i| {
                let ev = &batch.events[i];
                let data = ev.data_object();
                let occurred_at = ev.occurred_at.unwrap_or(batch.now).to_rfc3339();
                let event = EventInput { kind: ev.kind.clone(), id: ev.id.clone(), occurred_at, data };
                Job { member_id: ev.member_id, event }
            })
            .collect()
    }
}

/// Processes a batch from `source` ("partner", "member:<id>", "system"), then any
/// internal events it caused. The batch first takes one of its tenant's batch slots
/// (429 `tenant_busy` when none frees up in time).
pub async fn process(
    db: &Db,
    cache: &RuleCache,
    tenant: &Tenant,
    source: &str,
    events: &[IncomingEvent],
) -> Result<Vec<Outcome>> {
    check_batch(events, Utc::now())?;
    // Sign-up bonuses (source "system") wait longer than a partner would.
    let wait = if source == "system" { bounds::SYSTEM_BATCH_WAIT_MS } else { bounds::BATCH_WAIT_MS };
    let slot = cache.admission.batch(tenant, Duration::from_millis(wait)).await?;
    process_admitted(db, cache, tenant, source, events, slot).await
}

/// `process` for a caller holding one of the tenant's batch slots already (taken before
/// the request's credential was checked).
pub async fn process_admitted(
    db: &Db,
    cache: &RuleCache,
    tenant: &Tenant,
    source: &str,
    events: &[IncomingEvent],
    _slot: BatchSlot,
) -> Result<Vec<Outcome>> {
    let now = Utc::now();
    check_batch(events, now)?;
    let out = run(db, cache, tenant, &Batch::new(source, events, 0, now, &[])).await?;
    // The batch is committed; internal events it caused that cannot run now stay in the
    // outbox and run with the next batch or the jobs.
    if let Err(e) = drain_outbox(db, cache, tenant).await {
        tracing::warn!(error = %e, "internal events postponed");
    }
    Ok(out)
}

fn check_batch(events: &[IncomingEvent], now: DateTime<Utc>) -> Result<()> {
    if events.is_empty() || events.len() > bounds::BATCH_EVENTS_MAX {
        return Err(Error::invalid_field("events", format!("1 to {} events", bounds::BATCH_EVENTS_MAX)));
    }
    for e in events {
        e.check(now)?;
    }
    Ok(())
}

/// Runs a batch to its end: optimistic attempts first, then with its members locked.
/// Concurrent batches may also lock accounts in different orders; the loser of a
/// deadlock is rolled back whole and runs again.
async fn run(db: &Db, cache: &RuleCache, tenant: &Tenant, batch: &Batch<'_>) -> Result<Vec<Outcome>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let admission = &cache.admission;
        let result = if attempt <= bounds::OPTIMISTIC_ATTEMPTS && !admission.lock_first(tenant) {
            optimistic(db, cache, tenant, batch).await
        } else {
            admission.record(tenant, Went::Locked);
            locked(db, cache, tenant, batch).await
        };
        match result {
            Ok(Some(out)) => return Ok(out),
            Ok(None) if attempt < bounds::BATCH_ATTEMPTS_MAX => {
                tracing::debug!(attempt, "what the rules read changed; evaluating the batch again");
            }
            Ok(None) => {
                return Err(Error::Internal(anyhow::anyhow!("the batch's members kept changing under it")));
            }
            Err(e) if attempt < bounds::BATCH_ATTEMPTS_MAX && is_deadlock(&e) => {
                tracing::warn!(attempt, "event batch deadlocked; retrying");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads, evaluates holding no connection, then writes if what the rules read is
/// unchanged; `None` if it changed.
async fn optimistic(db: &Db, cache: &RuleCache, tenant: &Tenant, batch: &Batch<'_>) -> Result<Option<Vec<Outcome>>> {
    let read = {
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        let read = Read::load(&mut tx, cache, tenant, batch).await?;
        tx.commit().await?;
        read
    };
    let plan = Plan::new(batch, &read);
    let seen = read.ctx.clone();
    let evaluated = run_rules(cache, tenant, batch, &plan, read.set.clone(), read.ctx, read.currencies.clone()).await?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    context::lock_members(&mut tx, tenant.id, &batch.members()).await?;
    let now_seen = Contexts::load(&mut tx, &batch.pairs(), batch.now).await?;
    let unchanged = now_seen == seen;
    cache.admission.record(tenant, if unchanged { Went::Clean } else { Went::Contended });
    let evaluated = if unchanged {
        evaluated
    } else if now_seen.same_members(&seen) {
        // Another batch of these members committed in between. Their locks are held now,
        // so evaluating again on what is stored is final: no second round of reads and
        // lock waits (concurrent batches of one tenant share members all the time).
        run_rules(cache, tenant, batch, &plan, read.set, now_seen, read.currencies.clone()).await?
    } else {
        return Ok(None);
    };
    let Some(out) = write::write(&mut tx, tenant, batch, &plan, &read.currencies, evaluated).await? else {
        return Ok(None);
    };
    tx.commit().await?;
    Ok(Some(out))
}

/// Locks the batch's members, then reads, evaluates and writes in one transaction.
async fn locked(db: &Db, cache: &RuleCache, tenant: &Tenant, batch: &Batch<'_>) -> Result<Option<Vec<Outcome>>> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    context::lock_members(&mut tx, tenant.id, &batch.members()).await?;
    let read = Read::load(&mut tx, cache, tenant, batch).await?;
    let plan = Plan::new(batch, &read);
    let evaluated = run_rules(cache, tenant, batch, &plan, read.set, read.ctx, read.currencies.clone()).await?;
    let Some(out) = write::write(&mut tx, tenant, batch, &plan, &read.currencies, evaluated).await? else {
        return Ok(None);
    };
    tx.commit().await?;
    Ok(Some(out))
}

async fn run_rules(
    cache: &RuleCache,
    tenant: &Tenant,
    batch: &Batch<'_>,
    plan: &Plan,
    set: Arc<RuleSet>,
    ctx: Contexts,
    currencies: Arc<HashMap<String, Currency>>,
) -> Result<Vec<Evaluated>> {
    let jobs = plan.jobs(batch);
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let (_, evaluated) = evaluate(&cache.admission, tenant, cache.sandbox.clone(), set, ctx, currencies, jobs).await?;
    Ok(evaluated)
}

fn is_deadlock(e: &Error) -> bool {
    matches!(e, Error::Database(sqlx::Error::Database(d)) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

impl Outcome {
    pub(super) fn rejected(ev: &IncomingEvent, message: &str) -> Self {
        Self {
            id: ev.id.clone(),
            status: "rejected".into(),
            effects: serde_json::json!([]),
            error: Some(message.to_string()),
            replayed: false,
        }
    }

    pub(super) fn of(ev: &IncomingEvent, verdict: &Verdict) -> Self {
        let summary = |runs: &[RuleRun]| {
            serde_json::Value::Array(
                runs.iter()
                    .map(|r| serde_json::json!({"rule_id": r.rule_id, "name": r.name, "version": r.version, "effects": r.effects}))
                    .collect(),
            )
        };
        let (status, effects, error) = match verdict {
            Verdict::Apply(runs) => ("applied", summary(runs), None),
            Verdict::Deny(reason, runs) => ("denied", summary(runs), Some(reason.clone())),
            Verdict::Fail(message) => ("failed", serde_json::json!([]), Some(message.clone())),
        };
        Self { id: ev.id.clone(), status: status.into(), effects, error, replayed: false }
    }
}

/// Runs pending internal events (level_changed, points_released) through the rules,
/// in passes, each pass one level deeper, up to the cascade bound. The rows are read
/// without a lock; their events are idempotent by outbox id, so two instances draining
/// at once apply each one once.
pub async fn drain_outbox(db: &Db, cache: &RuleCache, tenant: &Tenant) -> Result<u64> {
    let mut handled = 0;
    for depth in 1..=bounds::CASCADE_DEPTH_MAX {
        let rows: Vec<(i64, String, Option<i64>, serde_json::Value)> = {
            let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
            let rows = sqlx::query_as(
                "SELECT id, kind, member_id, payload FROM events_outbox \
                 WHERE processed_at IS NULL AND kind IN ('level_changed', 'points_released') AND member_id IS NOT NULL \
                 ORDER BY id LIMIT $1",
            )
            .bind(bounds::BATCH_EVENTS_MAX as i64)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows
        };
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
        run(db, cache, tenant, &Batch::new("system", &events, depth, Utc::now(), &ids)).await?;
        handled += ids.len() as u64;
    }
    Ok(handled)
}
