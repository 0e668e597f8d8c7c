//! The write step of an event batch, in its transaction: record the fresh events (an id
//! recorded meanwhile means the batch must be evaluated again), read the first outcome
//! of replays, apply the verdicts in order — runs of events with only awards, counters
//! and tags in bulk (`bulk`), any other event alone in a savepoint (`apply`), so an
//! effect that fails there (e.g. not enough points) fails that event only — then store
//! every event's final state and the day counts, and mark the outbox rows the events
//! came from.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use scripting::MemberInput;
use sqlx::{Acquire, PgConnection};

use super::apply;
use super::batch::{Batch, EventStatus, IncomingEvent, Outcome, Plan};
use super::bulk::{self, Applying};
use super::context;
use super::evaluate::{Evaluated, RuleRun, SkippedEffect, Verdict};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ledger::currencies::Currency;

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

/// Writes an evaluated batch; `None` when one of its fresh event ids was recorded by
/// someone else since it was read (nothing is kept: the caller rolls back).
pub(super) async fn write(
    tx: &mut PgConnection,
    tenant: &Tenant,
    batch: &Batch<'_>,
    plan: &Plan,
    currencies: &HashMap<String, Currency>,
    mut evaluated: Vec<Evaluated>,
) -> Result<Option<Vec<Outcome>>> {
    let (events, keys) = (batch.events, batch.keys.as_slice());
    let rows = record(tx, events, keys, &plan.fresh, batch.source, batch.depth, batch.now).await?;
    let mut fresh = Vec::with_capacity(plan.fresh.len());
    for &i in &plan.fresh {
        match rows.get(&keys[i]) {
            Some(&row) => fresh.push((i, row)),
            None => return Ok(None),
        }
    }
    let mut outcomes = plan.decided.clone();
    for (i, outcome) in stored(tx, events, keys, &plan.replays).await? {
        outcomes[i] = Some(outcome);
    }

    // Each event's state is stored before the effects take any contended lock; an event
    // that fails while its effects are applied is stored again.
    let all: Vec<usize> = (0..fresh.len()).collect();
    store_states(tx, events, keys, &fresh, &evaluated, &all, &mut outcomes).await?;
    let failed = apply_all(tx, tenant, currencies, &fresh, keys, &mut evaluated, batch.now).await?;
    store_states(tx, events, keys, &fresh, &evaluated, &failed, &mut outcomes).await?;

    // Day counts of the events that did not fail.
    let mut counted: BTreeMap<(i64, &str, chrono::NaiveDate), i32> = BTreeMap::new();
    for (&(i, _), e) in fresh.iter().zip(&evaluated) {
        if !matches!(e.verdict, Verdict::Fail(_)) {
            *counted.entry((events[i].member_id, events[i].kind.as_str(), batch.day_of(i))).or_default() += 1;
        }
    }
    let counted: Vec<(i64, &str, chrono::NaiveDate, i32)> =
        counted.into_iter().map(|((m, k, d), n)| (m, k, d, n)).collect();
    context::store_counts(tx, &counted).await?;
    crate::tasks::progress::record(tx, tenant, &task_events(batch, &fresh, &evaluated), batch.now).await?;

    if !batch.outbox.is_empty() {
        sqlx::query("UPDATE events_outbox SET processed_at = now() WHERE id = ANY($1) AND processed_at IS NULL")
            .bind(batch.outbox)
            .execute(&mut *tx)
            .await?;
    }

    // A repeat within the batch replays its first occurrence.
    for &(i, j) in &plan.repeat_of {
        let mut o = outcomes[j].clone().ok_or_else(|| Error::Internal(anyhow::anyhow!("event {j} undecided")))?;
        o.id = events[i].id.clone();
        o.replayed = o.status != EventStatus::Rejected;
        outcomes[i] = Some(o);
    }
    let out = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.ok_or_else(|| Error::Internal(anyhow::anyhow!("event {i} undecided"))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(out))
}

/// The recorded events that were applied (not denied by a rule, not failed), in order,
/// for the task centre.
fn task_events<'b>(
    batch: &'b Batch<'_>,
    fresh: &[(usize, i64)],
    evaluated: &[Evaluated],
) -> Vec<crate::tasks::progress::Counted<'b>> {
    fresh
        .iter()
        .zip(evaluated)
        .filter(|(_, e)| matches!(e.verdict, Verdict::Apply(_)))
        .map(|(&(i, _), _)| crate::tasks::progress::Counted {
            member_id: batch.events[i].member_id,
            kind: batch.events[i].kind.as_str(),
            at: batch.events[i].occurred_at.unwrap_or(batch.now),
            day: batch.day_of(i),
        })
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
        statuses.push(outcome.status.as_str());
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
/// the positions of the events whose state changed so: failed, or applied with effects
/// left out (`RuleRun::skipped`).
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
            .find(|&k| matches!(&evaluated[k].verdict, Verdict::Apply(runs) if !bulk::is_simple(runs, currencies)))
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
        let (failure, skipped) = apply_alone(tx, tenant, currencies, &keys[fresh[end].0], &evaluated[end], now).await?;
        if !skipped.is_empty()
            && let Verdict::Apply(runs) = &mut evaluated[end].verdict
        {
            for (n, s) in skipped {
                runs[n].skipped.push(s);
            }
            // Stored again with what was left out.
            failed.push(end);
        }
        if let Some(message) = failure {
            evaluated[end].verdict = Verdict::Fail(message);
            failed.push(end);
        }
        start = end + 1;
    }
    Ok(failed)
}

/// Applies one event's rule runs (its verdict is `Apply`) alone in a savepoint. Returns
/// the message of an effect that failed there (the savepoint is rolled back: the event
/// fails, the batch goes on), else the effects left out, with the index of their run.
/// Database trouble fails the batch.
async fn apply_alone(
    tx: &mut PgConnection,
    tenant: &Tenant,
    currencies: &HashMap<String, Currency>,
    key: &str,
    event: &Evaluated,
    now: DateTime<Utc>,
) -> Result<(Option<String>, Vec<(usize, SkippedEffect)>)> {
    let Verdict::Apply(runs) = &event.verdict else { unreachable!("found as Apply above") };
    let mut sp = tx.begin().await?;
    let mut result = Ok(());
    let mut skipped = Vec::new();
    for (n, r) in runs.iter().enumerate() {
        match apply_rule(&mut sp, tenant, currencies, key, &event.member, r, now).await {
            Ok(left_out) => skipped.extend(left_out.into_iter().map(|s| (n, s))),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    match result.map_err(Fail::from) {
        Ok(()) => {
            sp.commit().await?;
            Ok((None, skipped))
        }
        Err(Fail::Batch(e)) => Err(e),
        Err(Fail::Event(message)) => {
            sp.rollback().await?;
            Ok((Some(message), Vec::new()))
        }
    }
}

/// Applies one rule run's effects for the event `key`: a mall's own rule (`apply`) or an
/// alliance-wide one (`apply_alliance`). Returns the effects left out.
async fn apply_rule(
    conn: &mut PgConnection,
    tenant: &Tenant,
    currencies: &HashMap<String, Currency>,
    key: &str,
    member: &MemberInput,
    r: &RuleRun,
    now: DateTime<Utc>,
) -> Result<Vec<SkippedEffect>> {
    let producer = apply::Producer {
        rule_id: r.rule_id,
        alliance: r.alliance,
        version: r.version,
        params_version: r.params_version,
        event_key: key,
    };
    if r.alliance {
        apply::apply_alliance(conn, tenant, currencies, member, &producer, &r.effects, now).await
    } else {
        apply::apply(conn, tenant, currencies, member, &producer, &r.effects, now).await
    }
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
    type Row = (String, EventStatus, serde_json::Value, Option<String>);
    let rows: Vec<Row> =
        sqlx::query_as("SELECT event_key, status, effects, error FROM events WHERE event_key = ANY($1)")
            .bind(&wanted)
            .fetch_all(conn)
            .await?;
    let mut by_key: HashMap<String, (EventStatus, serde_json::Value, Option<String>)> =
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
