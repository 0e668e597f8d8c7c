//! What would this rule have cost? (issue 13 point 11). A backtest replays the mall's
//! recorded events of a period through one rule version — a saved rule at any of its
//! script and parameter versions, or a draft script — and writes nothing but its own
//! progress and result.
//!
//! The replay reads the events in the order they happened, a page at a time, and runs
//! them through the live evaluation path (`evaluate`: the same sandbox limits, the same
//! per-tenant share of the evaluation threads, counts and balances carried from event to
//! event). Members start as they were when the period began for what the ledger and the
//! event counts keep (balances, today/week/streak/lifetime counts); their level, profile,
//! tags, counters and lock grants are as they are now, because their past is not kept.
//!
//! The result: points and experience per currency in total, per local day and per level,
//! the members reached, the value at the mall's point value (and the issuing budget's
//! cost for the alliance's shared points), and — for a saved rule — what the versions that
//! actually ran recorded for the same events, and the difference.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use scripting::{Effect, EventInput, Sandbox};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::cache::{LoadedRule, RuleCache, RuleSet};
use super::context::Contexts;
use super::evaluate::{self, Evaluated, Job, Verdict};
use super::store;
use crate::audit::Actor;
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, FieldError, Result, Validator};
use crate::ids::RuleId;
use crate::ledger::currencies::{self, Currency};
use crate::localtime;

pub use crate::limits::backtests as bounds;

/// What to replay.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// A saved rule, or …
    #[serde(default)]
    pub rule_id: Option<RuleId>,
    /// … its script version (default: the current one) …
    #[serde(default)]
    #[schema(minimum = 1)]
    pub version: Option<i32>,
    /// … and parameter version (default: the current one).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub params_version: Option<i32>,
    /// A draft script instead of a saved rule (then `event_type` is needed).
    #[serde(default)]
    pub script: Option<String>,
    /// The event type a draft runs on (`*`: every type).
    #[serde(default)]
    pub event_type: Option<String>,
    /// Parameters to run with (instead of a parameter version).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Value>,
    /// First local day of the period (the mall's time zone).
    pub from: NaiveDate,
    /// Last local day of the period, at most today.
    pub to: NaiveDate,
}

/// A backtest as stored: its progress while it runs, its result when done.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Backtest {
    pub id: i64,
    pub rule_id: Option<i64>,
    pub rule_version: Option<i32>,
    pub params_version: Option<i32>,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub from_day: NaiveDate,
    pub to_day: NaiveDate,
    /// running, done or failed (a run the server stopped during is failed, "interrupted").
    pub status: String,
    pub events_total: i64,
    pub events_done: i64,
    #[schema(value_type = Option<BacktestResult>)]
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run that has not touched its row for this long was stopped with its server.
const STALE: &str = "interval '2 minutes'";

fn columns() -> String {
    format!(
        "id, rule_id, rule_version, params_version, event_type, params, from_day, to_day, \
         CASE WHEN status = 'running' AND updated_at < now() - {STALE} THEN 'failed' ELSE status END AS status, \
         events_total, events_done, result, \
         CASE WHEN status = 'running' AND updated_at < now() - {STALE} \
              THEN 'interrupted: the server stopped during the run; start it again' ELSE error END AS error, \
         created_by, created_at, finished_at"
    )
}

/// The result of a finished backtest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BacktestResult {
    /// Events replayed, and how they came out for this rule.
    pub events: EventTally,
    /// Members who would have received points (referrers included).
    pub members_reached: i64,
    pub currencies: Vec<CurrencyFigures>,
    /// Points awarded per local day and currency.
    pub per_day: Vec<DayFigure>,
    /// Points awarded per member level (as the members are now) and currency.
    pub per_level: Vec<LevelFigure>,
    /// Whether `actual` figures compare the recorded runs of the same saved rule.
    pub compared: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventTally {
    pub replayed: i64,
    /// Events for which the rule returned at least one effect.
    pub with_effects: i64,
    pub denied: i64,
    /// Events the rule failed on (a script error, or an effect that cannot apply).
    pub failed: i64,
    /// The first few failures, as the live log would show them.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CurrencyFigures {
    pub currency: String,
    pub name: String,
    /// Awarded to members and their referrers.
    pub awarded: i64,
    pub deducted: i64,
    pub locked: i64,
    /// The awarded points' value in fen at the mall's point value (its points only).
    pub value_fen: Option<i64>,
    /// What issuing them would have cost the mall's alliance budget (shared points only).
    pub budget_fen: Option<i64>,
    /// What the versions that actually ran recorded for the same events (a saved rule).
    pub actual: Option<Moved>,
    /// awarded − actual awarded.
    pub difference: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Moved {
    pub awarded: i64,
    pub deducted: i64,
    pub locked: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayFigure {
    pub day: NaiveDate,
    pub currency: String,
    pub awarded: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LevelFigure {
    pub level: String,
    pub currency: String,
    pub awarded: i64,
    pub members: i64,
}

/// What one backtest replays, as resolved when it was started.
struct Plan {
    script: String,
    params: serde_json::Value,
    event_type: String,
    rule_id: Option<i64>,
    rule_version: Option<i32>,
    params_version: Option<i32>,
}

/// Checks the request, resolves what it replays, counts the period's events and records
/// the backtest (audited). The caller runs it (`run`) in the background.
pub async fn start(
    db: &Db,
    sandbox: &Sandbox,
    tenant: &Tenant,
    actor: &Actor,
    req: &BacktestRequest,
) -> Result<Backtest> {
    let (from, to) = period(tenant.settings.tz(), req)?;
    let who = actor.label.clone();
    db.write(tenant, actor, async |tx| {
        let plan = resolve(tx, sandbox, req).await?;
        refuse_a_second_run(tx).await?;
        let total = events_in(tx, from, to, &plan.event_type).await?;
        let id = insert(tx, &plan, req, total, &who).await?;
        let details = serde_json::json!({"rule_id": plan.rule_id, "version": plan.rule_version,
            "params_version": plan.params_version, "from": req.from, "to": req.to, "events": total});
        tx.audit("rule.backtest", &format!("backtest:{id}"), details).await?;
        get_in(tx, id).await
    })
    .await
}

/// The request's local days as an instant range, checked against the bounds.
fn period(tz: chrono_tz::Tz, req: &BacktestRequest) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let today = localtime::day(tz, Utc::now());
    Validator::new()
        .check(req.from <= req.to, "to", "on or after from")
        .check(req.to <= today, "to", "today at the latest")
        .finish()?;
    let days = (req.to - req.from).num_days() + 1;
    if days > bounds::DAYS_MAX {
        return Err(Error::Invalid {
            code: "period_too_long",
            message: format!("a backtest covers at most {} days", bounds::DAYS_MAX),
            fields: vec![FieldError {
                field: "to".into(),
                message: format!("at most {} days after from", bounds::DAYS_MAX - 1),
            }],
        });
    }
    Ok((localtime::start_of(tz, req.from), localtime::start_of(tz, req.to + chrono::Duration::days(1))))
}

/// One backtest per mall at a time (a stale one, whose server died, does not count).
async fn refuse_a_second_run(conn: &mut PgConnection) -> Result<()> {
    let running: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM rule_backtests WHERE status = 'running' AND updated_at >= now() - {STALE})"
    )))
    .fetch_one(conn)
    .await?;
    if running {
        return Err(Error::conflict("backtest_running", "a backtest of this mall is running: wait for it to finish"));
    }
    Ok(())
}

/// The period's recorded events of the type (or of every type for `*`), within the bound.
async fn events_in(conn: &mut PgConnection, from: DateTime<Utc>, to: DateTime<Utc>, event_type: &str) -> Result<i64> {
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE occurred_at >= $1 AND occurred_at < $2 AND status <> 'failed' \
             AND ($3 = '*' OR type = $3)",
    )
    .bind(from)
    .bind(to)
    .bind(event_type)
    .fetch_one(conn)
    .await?;
    if total > bounds::EVENTS_MAX {
        return Err(Error::Invalid {
            code: "period_too_long",
            message: format!("the period holds {total} events; a backtest replays at most {}", bounds::EVENTS_MAX),
            fields: vec![FieldError { field: "to".into(), message: "a shorter period".into() }],
        });
    }
    Ok(total)
}

/// Records a backtest about to run; its id.
async fn insert(conn: &mut PgConnection, plan: &Plan, req: &BacktestRequest, total: i64, who: &str) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO rule_backtests (rule_id, rule_version, params_version, script, params, event_type, from_day, \
                 to_day, events_total, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(plan.rule_id)
    .bind(plan.rule_version)
    .bind(plan.params_version)
    .bind(&plan.script)
    .bind(&plan.params)
    .bind(&plan.event_type)
    .bind(req.from)
    .bind(req.to)
    .bind(total)
    .bind(who)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The script, parameters and event type a request names.
async fn resolve(conn: &mut PgConnection, sandbox: &Sandbox, req: &BacktestRequest) -> Result<Plan> {
    if let Some(p) = &req.params {
        store::check_params(p)?;
    }
    let plan = match (&req.script, req.rule_id) {
        (Some(script), None) => {
            let event_type = req.event_type.clone().unwrap_or_default();
            Validator::new()
                .check(
                    event_type == "*" || super::event_type_is_valid(&event_type),
                    "event_type",
                    "the event type the draft runs on (a-z, 0-9 and _, or *)",
                )
                .check(req.version.is_none() && req.params_version.is_none(), "version", "only with rule_id")
                .finish()?;
            Plan {
                script: script.clone(),
                params: req.params.clone().unwrap_or_else(|| serde_json::json!({})),
                event_type,
                rule_id: None,
                rule_version: None,
                params_version: None,
            }
        }
        (None, Some(id)) => {
            let rule = store::get(conn, id).await?;
            let version = req.version.unwrap_or(rule.current_version);
            let script = store::versions(conn, id)
                .await?
                .into_iter()
                .find(|v| v.version == version)
                .ok_or_else(|| Error::invalid_field("version", "this rule has no such version"))?
                .script;
            let (params, params_version) = match (&req.params, req.params_version) {
                (Some(p), None) => (p.clone(), None),
                (None, v) => {
                    let v = v.unwrap_or(rule.params_version);
                    let found = store::param_versions(conn, id).await?.into_iter().find(|p| p.version == v);
                    let p =
                        found.ok_or_else(|| Error::invalid_field("params_version", "this rule has no such version"))?;
                    (p.params, Some(v))
                }
                (Some(_), Some(_)) => {
                    return Err(Error::invalid_field("params", "give params or params_version, not both"));
                }
            };
            Plan {
                script,
                params,
                event_type: rule.event_type,
                rule_id: Some(id.get()),
                rule_version: Some(version),
                params_version,
            }
        }
        _ => return Err(Error::invalid_field("script", "give either script or rule_id")),
    };
    store::check_script(sandbox, &plan.script)?;
    Ok(plan)
}

/// One backtest.
pub async fn get(db: &Db, tenant: &Tenant, actor: &Actor, id: i64) -> Result<Backtest> {
    db.read(tenant, actor, async |tx| get_in(tx, id).await).await
}

async fn get_in(conn: &mut PgConnection, id: i64) -> Result<Backtest> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {} FROM rule_backtests WHERE id = $1", columns())))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("backtest_not_found", "no such backtest"))
}

/// The newest backtests (of one rule, when given), at most `bounds::LISTED`.
pub async fn list(db: &Db, tenant: &Tenant, actor: &Actor, rule_id: Option<i64>) -> Result<Vec<Backtest>> {
    db.read(tenant, actor, async |tx| {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM rule_backtests WHERE $1::bigint IS NULL OR rule_id = $1 ORDER BY id DESC LIMIT $2",
            columns()
        )))
        .bind(rule_id)
        .bind(bounds::LISTED)
        .fetch_all(&mut **tx)
        .await?)
    })
    .await
}

/// Runs backtest `id` to its end, recording progress after each page; a failure is
/// recorded on the backtest rather than returned.
pub async fn run(db: Db, cache: RuleCache, tenant: Arc<Tenant>, id: i64) {
    let actor = Actor::system("backtest");
    let outcome = replay(&db, &cache, &tenant, &actor, id).await;
    let (status, result, error) = match outcome {
        Ok(r) => ("done", serde_json::to_value(r).ok(), None),
        Err(e) => {
            tracing::warn!(tenant = tenant.slug, backtest = id, error = %e, "backtest failed");
            ("failed", None, Some(e.to_string()))
        }
    };
    let saved = db
        .write(&tenant, &actor, async |tx| {
            sqlx::query(
                "UPDATE rule_backtests SET status = $2, result = $3, error = $4, finished_at = now(), updated_at = now() \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(result)
            .bind(error)
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
        .await;
    if let Err(e) = saved {
        tracing::error!(tenant = tenant.slug, backtest = id, error = %e, "a backtest's result was not saved");
    }
}

/// A recorded event, as the replay reads it.
#[derive(sqlx::FromRow)]
struct Recorded {
    id: i64,
    event_key: String,
    #[sqlx(rename = "type")]
    kind: String,
    member_id: i64,
    data: serde_json::Value,
    occurred_at: DateTime<Utc>,
    /// What the rules recorded, for an event that was applied (else `None`).
    effects: Option<serde_json::Value>,
}

/// What a replay runs: the backtest, its one-rule set, the mall's currencies and, in an
/// alliance, the budget terms of its shared currency.
struct Setup {
    bt: Backtest,
    set: Arc<RuleSet>,
    currencies: Arc<HashMap<String, Currency>>,
    shared_terms: Option<(i32, i32)>,
}

async fn setup(db: &Db, cache: &RuleCache, tenant: &Tenant, actor: &Actor, id: i64) -> Result<Setup> {
    let (bt, script, currencies, shared_terms) = db
        .read(tenant, actor, async |tx| {
            let bt = get_in(tx, id).await?;
            let script: String = sqlx::query_scalar("SELECT script FROM rule_backtests WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
            let currencies: HashMap<String, Currency> =
                currencies::list(tx).await?.into_iter().map(|c| (c.code.clone(), c)).collect();
            let terms = match tenant.alliance_id {
                Some(_) if currencies.values().any(|c| c.shared) => Some(budget_terms(tx, tenant).await?),
                _ => None,
            };
            Ok((bt, script, currencies, terms))
        })
        .await?;
    let ast = Arc::new(cache.sandbox.compile(&script).map_err(|e| Error::invalid_field("script", e.to_string()))?);
    let set = Arc::new(RuleSet {
        rules: vec![LoadedRule {
            alliance: false,
            id: bt.rule_id.unwrap_or(0),
            name: "backtest".into(),
            event_type: bt.event_type.clone(),
            version: bt.rule_version.unwrap_or(0),
            params: bt.params.clone(),
            params_version: bt.params_version.unwrap_or(0),
            ast,
        }],
    });
    Ok(Setup { bt, set, currencies: Arc::new(currencies), shared_terms })
}

/// The next page of recorded events after `after` (instant, id) and before `to`.
async fn next_page(
    db: &Db,
    tenant: &Tenant,
    actor: &Actor,
    event_type: &str,
    after: (DateTime<Utc>, i64),
    to: DateTime<Utc>,
) -> Result<Vec<Recorded>> {
    db.read(tenant, actor, async |tx| {
        Ok(sqlx::query_as(
            "SELECT id, event_key, type, member_id, data, occurred_at, \
                    CASE WHEN status = 'applied' THEN effects END AS effects FROM events \
             WHERE (occurred_at, id) > ($1, $2) AND occurred_at < $3 AND status <> 'failed' \
               AND ($4 = '*' OR type = $4) \
             ORDER BY occurred_at, id LIMIT $5",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(to)
        .bind(event_type)
        .bind(bounds::PAGE)
        .fetch_all(&mut **tx)
        .await?)
    })
    .await
}

/// A page of recorded events as evaluation jobs, in the mall's zone (taking the events'
/// data, which the tally does not read).
fn jobs(page: &mut [Recorded], tz: chrono_tz::Tz) -> Vec<Job> {
    page.iter_mut()
        .map(|e| {
            let day = localtime::day(tz, e.occurred_at);
            Job {
                member_id: e.member_id,
                day,
                event: EventInput {
                    kind: e.kind.clone(),
                    id: e.event_key.clone(),
                    occurred_at: localtime::rfc3339(tz, e.occurred_at),
                    day: day.to_string(),
                    data: std::mem::take(&mut e.data),
                },
            }
        })
        .collect()
}

async fn record_progress(db: &Db, tenant: &Tenant, actor: &Actor, id: i64, done: i64) -> Result<()> {
    db.write(tenant, actor, async |tx| {
        sqlx::query("UPDATE rule_backtests SET events_done = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(done)
            .execute(&mut **tx)
            .await?;
        Ok(())
    })
    .await
}

async fn replay(db: &Db, cache: &RuleCache, tenant: &Tenant, actor: &Actor, id: i64) -> Result<BacktestResult> {
    let tz = tenant.settings.tz();
    let Setup { bt, set, currencies, shared_terms } = setup(db, cache, tenant, actor, id).await?;
    let sandbox = cache.sandbox.clone();
    let (from, to) =
        (localtime::start_of(tz, bt.from_day), localtime::start_of(tz, bt.to_day + chrono::Duration::days(1)));
    let mut ctx: Option<Contexts> = None;
    // The members met so far, per event type.
    let mut loaded: HashMap<String, HashSet<i64>> = HashMap::new();
    let mut tally = Tally::default();
    let mut after: (DateTime<Utc>, i64) = (from - chrono::Duration::microseconds(1), 0);
    loop {
        let mut page = next_page(db, tenant, actor, &bt.event_type, after, to).await?;
        let Some(last) = page.last() else { break };
        after = (last.occurred_at, last.id);
        // Members (and event types) not met before start as they were when the period began.
        let new: Vec<(i64, &str)> = page
            .iter()
            .filter(|e| !loaded.get(&e.kind).is_some_and(|met| met.contains(&e.member_id)))
            .map(|e| (e.member_id, e.kind.as_str()))
            .collect();
        if !new.is_empty() {
            let more = db.read(tenant, actor, async |tx| Contexts::load_as_of(tx, &new, tz, from).await).await?;
            match ctx.as_mut() {
                Some(c) => c.merge(more),
                None => ctx = Some(more),
            }
            meet(&mut loaded, &new);
        }
        let jobs = jobs(&mut page, tz);
        let days: Vec<NaiveDate> = jobs.iter().map(|j| j.day).collect();
        let Some(c) = ctx.take() else { break };
        let (c, evaluated) =
            evaluate::evaluate(&cache.admission, tenant, sandbox.clone(), set.clone(), c, currencies.clone(), jobs)
                .await?;
        ctx = Some(c);
        for ((e, day), ev) in page.iter().zip(days).zip(&evaluated) {
            tally.take(e, day, ev);
            if let (Some(rule_id), Some(recorded)) = (bt.rule_id, &e.effects) {
                tally.take_actual(rule_id, recorded);
            }
        }
        record_progress(db, tenant, actor, id, tally.events.replayed).await?;
        if page.len() < usize::try_from(bounds::PAGE).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(tally.finish(&currencies, tenant.settings.points_per_yuan, shared_terms, bt.rule_id.is_some()))
}

/// Records the (member, event type) pairs met.
fn meet(loaded: &mut HashMap<String, HashSet<i64>>, pairs: &[(i64, &str)]) {
    for &(member, kind) in pairs {
        match loaded.get_mut(kind) {
            Some(met) => {
                met.insert(member);
            }
            None => {
                loaded.insert(kind.to_owned(), HashSet::from([member]));
            }
        }
    }
}

/// The entry of `key` in a map keyed by strings (the key is copied only when new).
fn slot<'a, V: Default>(map: &'a mut BTreeMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("present")
}

/// The alliance's clearing value and this mall's issuing rate: (points per yuan, rate in bp).
async fn budget_terms(conn: &mut PgConnection, tenant: &Tenant) -> Result<(i32, i32)> {
    let Some(alliance_id) = tenant.alliance_id else { return Ok((100, 0)) };
    crate::db::enter_schema(conn, &crate::alliance::schema_name(alliance_id)).await?;
    let read = async {
        let ppy = crate::alliance::budget::points_per_yuan(conn).await?;
        let rate: Option<i32> = sqlx::query_scalar("SELECT rate_bp FROM budgets WHERE tenant_id = $1")
            .bind(tenant.id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok((ppy, rate.unwrap_or(0)))
    }
    .await;
    crate::db::switch_back(conn, &tenant.schema_name, read).await
}

/// The running sums of a replay.
#[derive(Default)]
struct Tally {
    events: EventTally,
    moved: BTreeMap<String, Moved>,
    actual: BTreeMap<String, Moved>,
    /// Per local day, per currency.
    per_day: BTreeMap<NaiveDate, BTreeMap<String, i64>>,
    /// Per level, per currency: points and members.
    per_level: BTreeMap<String, BTreeMap<String, (i64, HashSet<i64>)>>,
    reached: HashSet<i64>,
}

impl Tally {
    fn take(&mut self, e: &Recorded, local_day: NaiveDate, ev: &Evaluated) {
        self.events.replayed += 1;
        let runs = match &ev.verdict {
            Verdict::Apply(runs) => runs,
            Verdict::Deny(_, _) => {
                self.events.denied += 1;
                return;
            }
            Verdict::Fail(message) => {
                self.events.failed += 1;
                if self.events.errors.len() < bounds::ERRORS_KEPT {
                    self.events.errors.push(format!("event {}: {message}", e.event_key));
                }
                return;
            }
        };
        if runs.iter().any(|r| !r.effects.is_empty()) {
            self.events.with_effects += 1;
        }
        let level_name = &ev.member.level.name;
        for effect in runs.iter().flat_map(|r| &r.effects) {
            let (currency, to) = match effect {
                Effect::Award { currency, amount, .. } => {
                    slot(&mut self.moved, currency).awarded += amount;
                    (currency, Some((e.member_id, *amount)))
                }
                Effect::AwardReferrer { currency, amount, depth, .. } => {
                    slot(&mut self.moved, currency).awarded += amount;
                    let referrer = usize::try_from(depth - 1).ok().and_then(|d| ev.member.referrers.get(d)).copied();
                    (currency, referrer.map(|r| (r, *amount)))
                }
                Effect::Deduct { currency, amount, .. } => {
                    slot(&mut self.moved, currency).deducted += amount;
                    (currency, None)
                }
                Effect::Lock { currency, total, .. } => {
                    slot(&mut self.moved, currency).locked += total;
                    (currency, None)
                }
                _ => continue,
            };
            if let Some((member, amount)) = to {
                self.reached.insert(member);
                *slot(self.per_day.entry(local_day).or_default(), currency) += amount;
                let level = slot(slot(&mut self.per_level, level_name), currency);
                level.0 += amount;
                level.1.insert(member);
            }
        }
    }

    /// What rule `rule_id` recorded for an applied event (its `effects` log).
    fn take_actual(&mut self, rule_id: i64, recorded: &serde_json::Value) {
        let runs = recorded.as_array().map(Vec::as_slice).unwrap_or_default();
        for run in runs.iter().filter(|r| r["rule_id"].as_i64() == Some(rule_id)) {
            let effects = Vec::<Effect>::deserialize(&run["effects"]).unwrap_or_default();
            for effect in effects {
                match effect {
                    Effect::Award { currency, amount, .. } | Effect::AwardReferrer { currency, amount, .. } => {
                        self.actual.entry(currency).or_default().awarded += amount;
                    }
                    Effect::Deduct { currency, amount, .. } => {
                        self.actual.entry(currency).or_default().deducted += amount
                    }
                    Effect::Lock { currency, total, .. } => self.actual.entry(currency).or_default().locked += total,
                    _ => {}
                }
            }
        }
    }

    fn finish(
        self,
        currencies: &HashMap<String, Currency>,
        points_per_yuan: i64,
        shared_terms: Option<(i32, i32)>,
        compared: bool,
    ) -> BacktestResult {
        let codes: std::collections::BTreeSet<&String> = self.moved.keys().chain(self.actual.keys()).collect();
        let figures = codes
            .into_iter()
            .map(|code| {
                let moved = self.moved.get(code).cloned().unwrap_or_default();
                let c = currencies.get(code);
                let value_fen = (code == "points").then(|| value_fen(moved.awarded, points_per_yuan));
                let budget_fen = match (c.is_some_and(|c| c.shared), shared_terms) {
                    (true, Some((ppy, rate))) => Some(crate::alliance::budget::cost_fen(moved.awarded, ppy, rate)),
                    _ => None,
                };
                let actual = compared.then(|| self.actual.get(code).cloned().unwrap_or_default());
                CurrencyFigures {
                    currency: code.clone(),
                    name: c.map(|c| c.name.clone()).unwrap_or_else(|| code.clone()),
                    awarded: moved.awarded,
                    deducted: moved.deducted,
                    locked: moved.locked,
                    value_fen,
                    budget_fen,
                    difference: actual.as_ref().map(|a| moved.awarded - a.awarded),
                    actual,
                }
            })
            .collect();
        BacktestResult {
            events: self.events,
            members_reached: i64::try_from(self.reached.len()).unwrap_or(i64::MAX),
            currencies: figures,
            per_day: self
                .per_day
                .into_iter()
                .flat_map(|(day, by)| {
                    by.into_iter().map(move |(currency, awarded)| DayFigure { day, currency, awarded })
                })
                .collect(),
            per_level: self
                .per_level
                .into_iter()
                .flat_map(|(level, by)| {
                    by.into_iter().map(move |(currency, (awarded, members))| LevelFigure {
                        level: level.clone(),
                        currency,
                        awarded,
                        members: i64::try_from(members.len()).unwrap_or(i64::MAX),
                    })
                })
                .collect(),
            compared,
        }
    }
}

/// Fen worth of `points` at `points_per_yuan` (rounded to the nearest fen).
fn value_fen(points: i64, points_per_yuan: i64) -> i64 {
    let ppy = i128::from(points_per_yuan.max(1));
    i64::try_from((i128::from(points) * 100 + ppy / 2).div_euclid(ppy)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::value_fen;

    #[test]
    fn the_value_of_points_is_rounded_to_the_fen() {
        assert_eq!(value_fen(1_000, 100), 1_000);
        assert_eq!(value_fen(1, 3), 33);
        assert_eq!(value_fen(2, 3), 67);
        assert_eq!(value_fen(0, 100), 0);
    }
}
