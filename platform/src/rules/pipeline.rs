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
use sqlx::PgConnection;

use super::admission::{BatchSlot, Went};
use super::batch::{Batch, Plan};
pub use super::batch::{EventStatus, IncomingEvent, Outcome};
use super::cache::{RuleCache, RuleSet};
use super::context::{self, Contexts};
use super::evaluate::{Evaluated, evaluate};
use super::{bounds, write};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ledger::currencies::{self, Currency};

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
        let set = cache.get(conn, tenant).await?;
        let ctx = Contexts::load(conn, &batch.pairs(), batch.tz, batch.today()).await?;
        let seen: Vec<String> = sqlx::query_scalar("SELECT event_key FROM events WHERE event_key = ANY($1)")
            .bind(&batch.keys)
            .fetch_all(&mut *conn)
            .await?;
        let currencies = currencies::list(conn).await?.into_iter().map(|c| (c.code.clone(), c)).collect();
        Ok(Self { set, ctx, currencies: Arc::new(currencies), seen: seen.into_iter().collect() })
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
    let out = run(db, cache, tenant, &Batch::new(source, events, 0, now, &[], tenant.settings.tz())).await?;
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
    let plan = Plan::new(batch, &read.ctx, &read.seen);
    let seen = read.ctx.clone();
    let evaluated = run_rules(cache, tenant, batch, &plan, read.set.clone(), read.ctx, read.currencies.clone()).await?;
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    context::lock_members(&mut tx, tenant.id, &batch.members()).await?;
    let now_seen = Contexts::load(&mut tx, &batch.pairs(), batch.tz, batch.today()).await?;
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
    let plan = Plan::new(batch, &read.ctx, &read.seen);
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

/// Runs pending internal events (level_changed, points_released) and the mall's own
/// events (`outbox::MALL_EVENTS`) through the rules,
/// in passes, each pass one level deeper, up to the cascade bound. The rows are read
/// without a lock; their events are idempotent by outbox id, so two instances draining
/// at once apply each one once. On one instance, a mall's drains run one after another
/// (`admission::Drains`).
pub async fn drain_outbox(db: &Db, cache: &RuleCache, tenant: &Tenant) -> Result<u64> {
    let _turn = cache.drains.turn(tenant.id).await;
    drain_passes(db, cache, tenant).await
}

/// `drain_outbox` for a drain nobody waits for (after a request that emitted a mall
/// event): none when another drain is already waiting for its turn, which will read
/// this request's events.
pub async fn drain_outbox_soon(db: &Db, cache: &RuleCache, tenant: &Tenant) -> Result<u64> {
    match cache.drains.turn_unless_waiting(tenant.id).await {
        Some(_turn) => drain_passes(db, cache, tenant).await,
        None => Ok(0),
    }
}

async fn drain_passes(db: &Db, cache: &RuleCache, tenant: &Tenant) -> Result<u64> {
    let mut handled = 0;
    for depth in 1..=bounds::CASCADE_DEPTH_MAX {
        let rows: Vec<(i64, String, Option<i64>, serde_json::Value)> = {
            let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
            let rows = sqlx::query_as(
                "SELECT id, kind, member_id, payload FROM events_outbox \
                 WHERE processed_at IS NULL AND kind = ANY($2) AND member_id IS NOT NULL \
                 ORDER BY id LIMIT $1",
            )
            .bind(bounds::BATCH_EVENTS_MAX as i64)
            .bind(crate::outbox::drained_kinds())
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
        run(db, cache, tenant, &Batch::new("system", &events, depth, Utc::now(), &ids, tenant.settings.tz())).await?;
        handled += ids.len() as u64;
    }
    Ok(handled)
}
