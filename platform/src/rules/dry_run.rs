//! A dry run (R7): a script, or a saved rule, against a sample event and a sample or
//! real member; returns the effects and writes nothing.
//!
//! The event is filled in as a live one would be: `id` (default `dry-run`),
//! `occurred_at` (default now, always shown in the mall's zone), `day` (the mall's local
//! day of `occurred_at`) and `data` (`{}` by default). A real member's context is read
//! for that day, the event itself counted, as a live event sees it.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use scripting::{Effect, EventInput, Input, MemberInput, Sandbox};
use serde::{Deserialize, Serialize};

use super::{context, store};
use crate::audit::Actor;
use crate::db::Db;
use crate::directory::{Alliance, Tenant};
use crate::error::{Error, Result, Validator};
use crate::ids::RuleId;

/// Declares a dry-run request: its own leading fields, then the fields every dry run
/// takes, with the texts that differ given (`serde(flatten)` would lose
/// `deny_unknown_fields`, so each request states them all and stays strict).
macro_rules! dry_run_request {
    ($(#[doc = $doc:tt])* $name:ident { $($lead:tt)* }
        rule_id: $rule_doc:tt, event: $event_doc:tt, member_id: $member_doc:tt) => {
        $(#[doc = $doc])*
        #[derive(Debug, Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($lead)*
            /// A script to try, or …
            #[serde(default)]
            pub script: Option<String>,
            #[doc = $rule_doc]
            #[serde(default)]
            pub rule_id: Option<RuleId>,
            #[doc = $event_doc]
            #[schema(value_type = SampleEvent)]
            pub event: EventInput,
            /// Sample member (any field may be left out), or …
            #[serde(default)]
            #[schema(value_type = Option<SampleMember>)]
            pub member: Option<MemberInput>,
            #[doc = $member_doc]
            #[serde(default)]
            pub member_id: Option<i64>,
            /// Parameters (default: the saved rule's).
            #[serde(default)]
            pub params: Option<serde_json::Value>,
        }
    };
}

dry_run_request! {
    DryRun {}
    rule_id: " … a saved rule (its current version and parameters).",
    event: " Sample event: {\"type\": \"checked_in\", \"data\": {…}}.",
    member_id: " … a real member whose context is read (nothing is written)."
}

/// A dry run in the OpenAPI document: a `DryRun` with a script or a rule id, not both.
pub struct DryRunRequest;

impl utoipa::PartialSchema for DryRunRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::doc::{integer, requiring, text};
        requiring("DryRun", [("script", text()), ("rule_id", integer())], true, "A script or a saved rule, not both")
    }
}
impl utoipa::ToSchema for DryRunRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::{PartialSchema, ToSchema};
        schemas.push((DryRun::name().into(), DryRun::schema()));
        <DryRun as ToSchema>::schemas(schemas);
    }
}

/// A sample event in the OpenAPI document (the sandbox's `EventInput`).
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SampleEvent {
    /// Event type, e.g. "checked_in", "order_completed".
    #[serde(rename = "type")]
    #[schema(value_type = super::EventType)]
    kind: String,
    /// The sender's id of the event (default "dry-run").
    #[serde(default)]
    #[schema(max_length = 150)]
    id: String,
    /// RFC 3339 (default: now); shown to the script in the mall's time zone.
    #[serde(default)]
    occurred_at: String,
    /// Ignored: the mall's local day of `occurred_at` is filled in.
    #[serde(default)]
    day: String,
    /// Free data sent with the event, e.g. {"amount_fen": 12800}.
    #[serde(default)]
    #[schema(value_type = crate::doc::JsonObject)]
    data: serde_json::Value,
}

/// A sample member in the OpenAPI document (the sandbox's `MemberInput`; every field may
/// be left out).
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SampleMember {
    #[serde(default)]
    id: i64,
    #[serde(default)]
    level: SampleLevel,
    #[serde(default)]
    tags: Vec<String>,
    /// Spendable balance per currency, e.g. {"points": 120, "exp": 900}.
    #[serde(default)]
    balances: std::collections::BTreeMap<String, i64>,
    /// Counters set by rules with set_counter.
    #[serde(default)]
    counters: std::collections::BTreeMap<String, i64>,
    /// Events of this type today (UTC), this week (from Monday) and ever.
    #[serde(default)]
    today: i64,
    #[serde(default)]
    week: i64,
    #[serde(default)]
    lifetime: i64,
    /// Consecutive days, ending today, with an event of this type.
    #[serde(default)]
    streak: i64,
    /// Who invited this member, then who invited them… (ids).
    #[serde(default)]
    referrers: Vec<i64>,
    /// RFC 3339.
    #[serde(default)]
    joined_at: String,
    #[serde(default)]
    profile: SampleProfile,
    /// Lock grants still releasing, oldest first.
    #[serde(default)]
    locks: Vec<SampleLock>,
}

/// A sample member's profile in the OpenAPI document (the sandbox's `ProfileInput`).
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SampleProfile {
    #[serde(default)]
    nickname: String,
    /// "YYYY-MM-DD", or "" when unknown.
    #[serde(default)]
    birthday: String,
    /// "female", "male", "other", or "" when unknown.
    #[serde(default)]
    gender: String,
    #[serde(default)]
    city: String,
    /// The mall's local day the member registered, "YYYY-MM-DD".
    #[serde(default)]
    registered_on: String,
}

/// A sample lock grant in the OpenAPI document (the sandbox's `LockInput`).
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SampleLock {
    #[serde(default)]
    id: i64,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    total: i64,
    #[serde(default)]
    released: i64,
    #[serde(default)]
    remaining: i64,
    #[serde(default)]
    per_day: i64,
    #[serde(default)]
    next_release_at: String,
    #[serde(default)]
    memo: String,
    #[serde(default)]
    created_at: String,
}

/// A sample member's level in the OpenAPI document (the sandbox's `LevelInput`).
#[derive(utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SampleLevel {
    #[serde(default)]
    name: String,
    #[serde(default)]
    threshold: i64,
    /// E.g. {"earn_multiplier": 1.5}.
    #[serde(default)]
    benefits: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DryRunResult {
    #[schema(value_type = Vec<Object>)]
    pub effects: Vec<Effect>,
    pub error: Option<String>,
    /// The event the script saw, filled in as a live event is.
    #[schema(value_type = Object)]
    pub event: EventInput,
    /// The member context the script saw.
    #[schema(value_type = Object)]
    pub member: MemberInput,
    /// The parameters the script saw.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// For a saved rule: the script version and parameter version that ran (the
    /// parameter version is absent when the request gave its own parameters).
    pub rule_version: Option<i32>,
    pub params_version: Option<i32>,
    /// Effects a live event would leave out for this real member (an issue of the
    /// alliance's shared points to a member with nothing proven), and why.
    pub skipped: Vec<super::evaluate::SkippedEffect>,
}

/// Fills in the event as a live one is: id, occurred_at (now by default) in the mall's
/// zone, its local day, and data `{}` by default.
pub fn fill_event(mut event: EventInput, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Result<EventInput> {
    let at = if event.occurred_at.trim().is_empty() {
        now
    } else {
        DateTime::parse_from_rfc3339(event.occurred_at.trim())
            .map_err(|_| Error::invalid_field("event.occurred_at", "an RFC 3339 time, e.g. 2026-11-30T23:59:00+08:00"))?
            .with_timezone(&Utc)
    };
    Validator::new()
        .check(
            super::event_type_is_valid(&event.kind),
            "event.type",
            "a-z, 0-9 and _, starting with a letter, at most 64",
        )
        .check(event.id.chars().count() <= 150, "event.id", "at most 150 characters")
        .check(event.data.is_object() || event.data.is_null(), "event.data", "a JSON object")
        .check(event.data.to_string().len() <= super::bounds::EVENT_DATA_BYTES_MAX, "event.data", "at most 8 KiB")
        .finish()?;
    if event.id.is_empty() {
        event.id = "dry-run".into();
    }
    if event.data.is_null() {
        event.data = serde_json::json!({});
    }
    event.occurred_at = crate::localtime::rfc3339(tz, at);
    event.day = crate::localtime::day(tz, at).to_string();
    Ok(event)
}

/// Reads what the run needs (read-only), then runs the script on a blocking thread.
pub async fn run(db: &Db, tenant: &Tenant, actor: &Actor, sandbox: Arc<Sandbox>, req: DryRun) -> Result<DryRunResult> {
    let DryRun { script, rule_id, event, member, member_id, params } = req;
    let tz = tenant.settings.tz();
    let event = fill_event(event, tz, Utc::now())?;
    let day = NaiveDate::parse_from_str(&event.day, "%Y-%m-%d").map_err(|e| Error::Internal(e.into()))?;
    let kind = event.kind.clone();
    let checker = sandbox.clone();
    let (script, saved, member) = db
        .read(tenant, actor, async |tx| {
            let (script, saved) = resolve(tx, &checker, script, rule_id, None).await?;
            let member = member_input(tx, member, member_id, &kind, tz, day).await?;
            Ok((script, saved, member))
        })
        .await?;
    let mut run = execute(sandbox, script, saved, event, member, params).await?;
    note_left_out(db, tenant, actor, member_id, &mut run).await?;
    Ok(run)
}

/// The script to run: the one given, or a saved rule's current version (compiled first;
/// with `only` an alliance's currency, held to what an alliance rule may do).
async fn resolve(
    conn: &mut sqlx::PgConnection,
    checker: &Sandbox,
    script: Option<String>,
    rule_id: Option<RuleId>,
    only: Option<&str>,
) -> Result<(String, Option<store::Rule>)> {
    let (script, saved) = match (script, rule_id) {
        (Some(s), None) => (s, None),
        (None, Some(id)) => {
            let rule = store::get(conn, id).await?;
            let versions = store::versions(conn, id).await?;
            let current = versions.into_iter().find(|v| v.version == rule.current_version);
            (current.map(|v| v.script).unwrap_or_default(), Some(rule))
        }
        _ => return Err(Error::invalid_field("script", "give either script or rule_id")),
    };
    store::check_script(checker, &script)?;
    if saved.is_none() {
        store::check_currency(only, &script)?;
    }
    Ok((script, saved))
}

/// The member the script sees: a real one's context (read-only), the sample, or an
/// empty one.
async fn member_input(
    conn: &mut sqlx::PgConnection,
    member: Option<MemberInput>,
    member_id: Option<i64>,
    kind: &str,
    tz: chrono_tz::Tz,
    day: NaiveDate,
) -> Result<MemberInput> {
    Ok(match (member, member_id) {
        (_, Some(id)) => context::member(conn, id, kind, tz, day).await?,
        (Some(m), None) => m,
        (None, None) => MemberInput::default(),
    })
}

/// Runs the script on a blocking thread; a failing script is a result, not an error.
async fn execute(
    sandbox: Arc<Sandbox>,
    script: String,
    saved: Option<store::Rule>,
    event: EventInput,
    member: MemberInput,
    params: Option<serde_json::Value>,
) -> Result<DryRunResult> {
    let rule_version = saved.as_ref().map(|r| r.current_version);
    let (params, params_version) = match (params, saved) {
        (Some(p), _) => (p, None),
        (None, Some(rule)) => (rule.params, Some(rule.params_version)),
        (None, None) => (serde_json::json!({}), None),
    };
    let input = Input { event: event.clone(), member: member.clone(), params: params.clone() };
    let result = tokio::task::spawn_blocking(move || {
        let ast = sandbox.compile(&script).map_err(|e| e.to_string())?;
        sandbox.run(&ast, &input).map_err(|e| format!("{} ({})", e.message, e.kind))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    let (effects, error) = match result {
        Ok(effects) => (effects, None),
        Err(e) => (vec![], Some(e)),
    };
    Ok(DryRunResult { effects, error, event, member, params, rule_version, params_version, skipped: Vec::new() })
}

/// For a real member of a mall in an alliance: the issues of shared points a live event
/// would leave out (the member cannot hold them yet), noted in the run's `skipped`.
async fn note_left_out(
    db: &Db,
    tenant: &Tenant,
    actor: &Actor,
    member_id: Option<i64>,
    run: &mut DryRunResult,
) -> Result<()> {
    if member_id.is_none() || tenant.alliance_id.is_none() || run.effects.is_empty() {
        return Ok(());
    }
    let (member, effects) = (&run.member, &run.effects);
    let skipped = db.read(tenant, actor, async |tx| super::apply::left_out(tx, member, effects).await).await?;
    run.skipped = skipped;
    Ok(())
}

dry_run_request! {
    /// A dry run of an alliance rule: a `DryRun` in one mall of the alliance (its time zone,
    /// its members, its issuing budget).
    AllianceDryRun {
        /// The mall of the alliance the event happens in (its slug).
        #[schema(min_length = 1, max_length = 63)]
        pub mall: String,
    }
    rule_id: " … a saved alliance rule (its current version and parameters).",
    event: " Sample event: {\"type\": \"registered\", \"data\": {…}}.",
    member_id: " … a real member of that mall whose context is read (nothing is written)."
}

/// An alliance dry run in the OpenAPI document: a script or a rule id, not both.
pub struct AllianceDryRunRequest;

impl utoipa::PartialSchema for AllianceDryRunRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::doc::{integer, requiring, text};
        requiring(
            "AllianceDryRun",
            [("script", text()), ("rule_id", integer())],
            true,
            "A script or a saved alliance rule, not both",
        )
    }
}
impl utoipa::ToSchema for AllianceDryRunRequest {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::{PartialSchema, ToSchema};
        schemas.push((AllianceDryRun::name().into(), AllianceDryRun::schema()));
        <AllianceDryRun as ToSchema>::schemas(schemas);
    }
}

/// What a run of an alliance rule would draw on the mall's issuing budget.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetCharge {
    /// The mall whose budget pays.
    pub mall: String,
    /// The budget before the event, in fen.
    pub balance_fen: i64,
    /// The mall's issuing rate in basis points (1500 = 15%).
    pub rate_bp: i32,
    /// The alliance's clearing value: this many points are worth one yuan.
    pub points_per_yuan: i32,
    /// Set when the mall's budget is closed (it left the alliance).
    pub closed: bool,
    /// Each effect in order, with what it would cost.
    pub awards: Vec<ChargedEffect>,
    /// Shared points that would be issued (the charged awards).
    pub points: i64,
    /// What they cost, in fen.
    pub cost_fen: i64,
    /// The budget after the event, in fen.
    pub balance_after_fen: i64,
}

/// One effect of an alliance rule as the budget sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChargedEffect {
    /// The effect's position in `effects` (0-based).
    pub index: usize,
    /// Who would receive the points (the member, or the referrer the effect names).
    pub member_id: Option<i64>,
    pub points: i64,
    pub cost_fen: i64,
    /// `charged`; `budget_exhausted` or `budget_closed` (the award is left out, the event
    /// and the mall's own awards stand); `identifier_unproven` (the member cannot hold
    /// shared points yet: nothing proven, see `skipped`); `no_referrer` (no referrer that far up);
    /// `not_an_award` (an effect that draws nothing on the budget).
    pub status: String,
}

/// The result of an alliance dry run: a dry run's result and the budget charge.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AllianceDryRunResult {
    #[serde(flatten)]
    pub run: DryRunResult,
    pub budget: BudgetCharge,
}

/// Runs an alliance rule (or a draft of one) for an event in `mall`, a mall of alliance
/// `a`, writing nothing: the script comes from the alliance's schema, the member from
/// the mall's, and the budget charge is worked out as the live event would draw it
/// (each shared award in order, left out when the budget no longer covers it).
pub async fn run_alliance(
    db: &Db,
    a: &Alliance,
    mall: &Tenant,
    actor: &Actor,
    sandbox: Arc<Sandbox>,
    req: AllianceDryRun,
) -> Result<AllianceDryRunResult> {
    let AllianceDryRun { mall: _, script, rule_id, event, member, member_id, params } = req;
    let tz = mall.settings.tz();
    let event = fill_event(event, tz, Utc::now())?;
    let day = NaiveDate::parse_from_str(&event.day, "%Y-%m-%d").map_err(|e| Error::Internal(e.into()))?;
    let kind = event.kind.clone();
    let checker = sandbox.clone();
    let (script, saved, budget, points_per_yuan) = db
        .alliance_read(a, actor, async |tx| {
            let (script, saved) = resolve(tx, &checker, script, rule_id, Some(&a.currency_code)).await?;
            let budget = crate::alliance::budget::peek(tx, mall.id).await?;
            let ppy = crate::alliance::budget::points_per_yuan(tx).await?;
            Ok((script, saved, budget, ppy))
        })
        .await?;
    let member = db.read(mall, actor, async |tx| member_input(tx, member, member_id, &kind, tz, day).await).await?;
    let mut run = execute(sandbox, script, saved, event, member, params).await?;
    note_left_out(db, mall, actor, member_id, &mut run).await?;
    let budget = charge(&run, &a.currency_code, mall, &budget, points_per_yuan);
    Ok(AllianceDryRunResult { run, budget })
}

/// What the effects would draw on the budget, as `apply::apply_alliance` and
/// `budget::charge` would: one charge per award, in order.
fn charge(
    run: &DryRunResult,
    shared: &str,
    mall: &Tenant,
    budget: &crate::alliance::budget::Budget,
    ppy: i32,
) -> BudgetCharge {
    use crate::alliance::budget::cost_fen;
    let closed = budget.closed_at.is_some();
    let mut left = budget.balance_fen;
    let (mut points, mut cost) = (0i64, 0i64);
    let mut awards = Vec::new();
    for (index, effect) in run.effects.iter().enumerate() {
        let award = match effect {
            Effect::Award { currency, amount, .. } if currency == shared => Some((Some(run.member.id), *amount)),
            Effect::AwardReferrer { depth, currency, amount, .. } if currency == shared => {
                Some((super::apply::target(&run.member, *depth), *amount))
            }
            _ => None,
        };
        let Some((to, amount)) = award else {
            awards.push(ChargedEffect {
                index,
                member_id: None,
                points: 0,
                cost_fen: 0,
                status: "not_an_award".into(),
            });
            continue;
        };
        let c = cost_fen(amount, ppy, budget.rate_bp);
        let status = if to.is_none() {
            "no_referrer"
        } else if let Some(s) = run.skipped.iter().find(|s| s.effect == index) {
            // Left out before the budget is drawn: the member cannot hold shared points yet.
            if s.code == "identifier_unproven" { "identifier_unproven" } else { "left_out" }
        } else if closed {
            "budget_closed"
        } else if c > left {
            "budget_exhausted"
        } else {
            left -= c;
            points += amount;
            cost += c;
            "charged"
        };
        awards.push(ChargedEffect { index, member_id: to, points: amount, cost_fen: c, status: status.into() });
    }
    BudgetCharge {
        mall: mall.slug.clone(),
        balance_fen: budget.balance_fen,
        rate_bp: budget.rate_bp,
        points_per_yuan: ppy,
        closed,
        awards,
        points,
        cost_fen: cost,
        balance_after_fen: left,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dry_run_requests_refuse_unknown_fields() {
        let event = serde_json::json!({"type": "checked_in"});
        let run = serde_json::json!({"script": "1", "event": event});
        assert!(serde_json::from_value::<DryRun>(run.clone()).is_ok());
        let mut extra = run.clone();
        extra["mall"] = "m".into();
        assert!(serde_json::from_value::<DryRun>(extra).is_err());
        let mut alliance = run;
        alliance["mall"] = "m".into();
        assert!(serde_json::from_value::<AllianceDryRun>(alliance.clone()).is_ok());
        alliance["tenant"] = "t".into();
        assert!(serde_json::from_value::<AllianceDryRun>(alliance).is_err());
    }
}
