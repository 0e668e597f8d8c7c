//! The event pipeline (R1, R2, P2), a whole batch in one transaction:
//!
//! 1. load the context of every member of the batch (`context`), record the events (an
//!    event id seen before is a replay and returns its first outcome);
//! 2. run the rules of every event in order on one blocking thread (`evaluate`): each
//!    event sees the effects of the events before it;
//! 3. apply the verdicts in order: runs of events with only awards, counters and tags in
//!    bulk (`bulk`), any other event alone in a savepoint (`apply`), so an effect that
//!    fails there (e.g. not enough points) fails that event only;
//! 4. store the day counts and every event's final state.
//!
//! A rule that fails fails its event cleanly: nothing of it is written except the
//! failure itself. Internal events (level_changed, points_released) then run through the
//! same pipeline, up to a bounded cascade depth.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scripting::EventInput;
use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection};

use super::bulk::{self, Applying};
use super::cache::RuleCache;
use super::context::{self, Contexts};
use super::evaluate::{Evaluated, Job, RuleRun, Verdict, evaluate};
use super::{apply, bounds};
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
    fn data_object(&self) -> serde_json::Value {
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
    let pairs: Vec<(i64, &str)> = events.iter().map(|e| (e.member_id, e.kind.as_str())).collect();
    let ctx = Contexts::load(tx, &pairs, now).await?;
    let keys: Vec<String> = events.iter().map(|e| format!("{source}:{}", e.id)).collect();

    // Decided before any rule runs: repeats within the batch, unknown members.
    let mut outcomes: Vec<Option<Outcome>> = vec![None; events.len()];
    let mut repeat_of: HashMap<usize, usize> = HashMap::new();
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut candidates = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        if let Some(&j) = first.get(keys[i].as_str()) {
            repeat_of.insert(i, j);
        } else if !ctx.knows(ev.member_id) {
            first.insert(&keys[i], i);
            outcomes[i] = Some(Outcome::rejected(ev, "no such member"));
        } else {
            first.insert(&keys[i], i);
            candidates.push(i);
        }
    }
    let rows = record(tx, events, &keys, &candidates, source, depth, now).await?;
    let mut fresh = Vec::new();
    let mut replays = Vec::new();
    for i in candidates {
        match rows.get(&keys[i]) {
            Some(&row) => fresh.push((i, row)),
            None => replays.push(i),
        }
    }
    for (i, outcome) in stored(tx, events, &keys, &replays).await? {
        outcomes[i] = Some(outcome);
    }

    let currencies: HashMap<String, Currency> =
        currencies::list(tx).await?.into_iter().map(|c| (c.code.clone(), c)).collect();
    let currencies = Arc::new(currencies);
    let jobs = fresh
        .iter()
        .map(|&(i, _)| {
            let ev = &events[i];
            let data = ev.data_object();
            let occurred_at = ev.occurred_at.unwrap_or(now).to_rfc3339();
            let event = EventInput { kind: ev.kind.clone(), id: ev.id.clone(), occurred_at, data };
            Job { member_id: ev.member_id, event }
        })
        .collect();
    let (_, mut evaluated) = evaluate(cache.sandbox.clone(), set, ctx, currencies.clone(), jobs).await?;

    // Each event's state is stored before the effects take any contended lock; an event
    // that fails while its effects are applied is stored again.
    let all: Vec<usize> = (0..fresh.len()).collect();
    store_states(tx, events, &keys, &fresh, &evaluated, &all, &mut outcomes).await?;
    let failed = apply_all(tx, tenant, &currencies, &fresh, &keys, &mut evaluated, now).await?;
    store_states(tx, events, &keys, &fresh, &evaluated, &failed, &mut outcomes).await?;

    // Day counts of the events that did not fail.
    let mut counted: BTreeMap<(i64, &str), i32> = BTreeMap::new();
    for (&(i, _), e) in fresh.iter().zip(&evaluated) {
        if !matches!(e.verdict, Verdict::Fail(_)) {
            *counted.entry((events[i].member_id, events[i].kind.as_str())).or_default() += 1;
        }
    }
    let counted: Vec<(i64, &str, i32)> = counted.into_iter().map(|((m, k), n)| (m, k, n)).collect();
    context::store_counts(tx, &counted, now).await?;

    // A repeat within the batch replays its first occurrence.
    for (&i, &j) in &repeat_of {
        let mut o = outcomes[j].clone().ok_or_else(|| Error::Internal(anyhow::anyhow!("event {j} undecided")))?;
        o.id = events[i].id.clone();
        o.replayed = o.status != "rejected";
        outcomes[i] = Some(o);
    }
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.ok_or_else(|| Error::Internal(anyhow::anyhow!("event {i} undecided"))))
        .collect()
}

/// Stores the verdicts of the fresh events at positions `which` and sets their outcomes.
#[allow(clippy::too_many_arguments)]
async fn store_states(
    tx: &mut PgConnection,
    events: &[IncomingEvent],
    keys: &[String],
    fresh: &[(usize, i64)],
    evaluated: &[Evaluated],
    which: &[usize],
    outcomes: &mut [Option<Outcome>],
) -> Result<()> {
    if which.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(which.len());
    let (mut statuses, mut summaries, mut errors) = (vec![], vec![], vec![]);
    for &k in which {
        let (i, row) = fresh[k];
        let outcome = Outcome::of(&events[i], &evaluated[k].verdict);
        ids.push(row);
        statuses.push(outcome.status.clone());
        summaries.push(outcome.effects.clone());
        errors.push(outcome.error.clone());
        if let Verdict::Fail(message) = &evaluated[k].verdict {
            tracing::warn!(event = keys[i], error = message, "event failed");
        }
        outcomes[i] = Some(outcome);
    }
    sqlx::query(
        "UPDATE events e SET status = t.s, effects = t.x, error = t.r \
         FROM unnest($1::bigint[], $2::text[], $3::jsonb[], $4::text[]) AS t(id, s, x, r) WHERE e.id = t.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&summaries)
    .bind(&errors)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Applies the verdicts in event order: runs of simple events in bulk, the others one by
/// one in a savepoint each (an effect that fails there fails its event only). Returns
/// the positions of the events that failed so.
async fn apply_all(
    tx: &mut PgConnection,
    tenant: &Tenant,
    currencies: &HashMap<String, Currency>,
    fresh: &[(usize, i64)],
    keys: &[String],
    evaluated: &mut [Evaluated],
    now: DateTime<Utc>,
) -> Result<Vec<usize>> {
    let mut failed = Vec::new();
    let mut start = 0;
    while start < evaluated.len() {
        let end = (start..evaluated.len())
            .find(|&k| matches!(&evaluated[k].verdict, Verdict::Apply(runs) if !bulk::is_simple(runs)))
            .unwrap_or(evaluated.len());
        let run: Vec<Applying> = (start..end)
            .filter_map(|k| match &evaluated[k].verdict {
                Verdict::Apply(runs) => Some(Applying { key: &keys[fresh[k].0], member: &evaluated[k].member, runs }),
                _ => None,
            })
            .collect();
        if !run.is_empty() {
            bulk::apply_run(tx, tenant, currencies, &run, now).await?;
        }
        if end == evaluated.len() {
            break;
        }
        let failure = {
            let Verdict::Apply(runs) = &evaluated[end].verdict else { unreachable!("found as Apply above") };
            let key = &keys[fresh[end].0];
            let mut sp = tx.begin().await?;
            let mut result = Ok(());
            for r in runs {
                let producer = apply::Producer { rule_id: r.rule_id, version: r.version, event_key: key };
                result = apply::apply(&mut sp, tenant, &evaluated[end].member, &producer, &r.effects, now).await;
                if result.is_err() {
                    break;
                }
            }
            match result.map_err(Fail::from) {
                Ok(()) => {
                    sp.commit().await?;
                    None
                }
                Err(Fail::Batch(e)) => return Err(e),
                Err(Fail::Event(message)) => {
                    sp.rollback().await?;
                    Some(message)
                }
            }
        };
        if let Some(message) = failure {
            evaluated[end].verdict = Verdict::Fail(message);
            failed.push(end);
        }
        start = end + 1;
    }
    Ok(failed)
}

/// Records the candidates as applied (their final state comes at the end of the batch);
/// returns the row id of each one recorded now, by key. Keys already known are replays.
async fn record(
    conn: &mut PgConnection,
    events: &[IncomingEvent],
    keys: &[String],
    candidates: &[usize],
    source: &str,
    depth: i32,
    now: DateTime<Utc>,
) -> Result<HashMap<String, i64>> {
    if candidates.is_empty() {
        return Ok(HashMap::new());
    }
    let mut k = Vec::with_capacity(candidates.len());
    let (mut kinds, mut members, mut data, mut at) = (vec![], vec![], vec![], vec![]);
    for &i in candidates {
        let ev = &events[i];
        k.push(keys[i].as_str());
        kinds.push(ev.kind.as_str());
        members.push(ev.member_id);
        data.push(ev.data_object());
        at.push(ev.occurred_at.unwrap_or(now));
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO events (event_key, type, member_id, data, occurred_at, source, status, depth) \
         SELECT k, t, m, d, o, $6, 'applied', $7 \
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::jsonb[], $5::timestamptz[]) WITH ORDINALITY AS x(k, t, m, d, o, i) \
         ORDER BY i ON CONFLICT (event_key) DO NOTHING RETURNING event_key, id",
    )
    .bind(&k)
    .bind(&kinds)
    .bind(&members)
    .bind(&data)
    .bind(&at)
    .bind(source)
    .bind(depth)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The first outcome of events processed before.
async fn stored(
    conn: &mut PgConnection,
    events: &[IncomingEvent],
    keys: &[String],
    replays: &[usize],
) -> Result<Vec<(usize, Outcome)>> {
    if replays.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<&str> = replays.iter().map(|&i| keys[i].as_str()).collect();
    type Row = (String, String, serde_json::Value, Option<String>);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT event_key, status, effects, error FROM events WHERE event_key = ANY($1)")
            .bind(&wanted)
            .fetch_all(conn)
            .await?;
    let mut by_key: HashMap<String, (String, serde_json::Value, Option<String>)> =
        rows.into_iter().map(|(k, s, x, e)| (k, (s, x, e))).collect();
    replays
        .iter()
        .map(|&i| {
            let (status, effects, error) = by_key
                .remove(&keys[i])
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("event {} vanished", keys[i])))?;
            Ok((i, Outcome { id: events[i].id.clone(), status, effects, error, replayed: true }))
        })
        .collect()
}

impl Outcome {
    fn rejected(ev: &IncomingEvent, message: &str) -> Self {
        Self {
            id: ev.id.clone(),
            status: "rejected".into(),
            effects: serde_json::json!([]),
            error: Some(message.to_string()),
            replayed: false,
        }
    }

    fn of(ev: &IncomingEvent, verdict: &Verdict) -> Self {
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
