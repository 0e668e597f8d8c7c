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
use crate::directory::Tenant;
use crate::error::{Error, Result, Validator};
use crate::ids::RuleId;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// A script to try, or …
    #[serde(default)]
    pub script: Option<String>,
    /// … a saved rule (its current version and parameters).
    #[serde(default)]
    pub rule_id: Option<RuleId>,
    /// Sample event: {"type": "checked_in", "data": {…}}.
    #[schema(value_type = SampleEvent)]
    pub event: EventInput,
    /// Sample member (any field may be left out), or …
    #[serde(default)]
    #[schema(value_type = Option<SampleMember>)]
    pub member: Option<MemberInput>,
    /// … a real member whose context is read (nothing is written).
    #[serde(default)]
    pub member_id: Option<i64>,
    /// Parameters (default: the saved rule's).
    #[serde(default)]
    pub params: Option<serde_json::Value>,
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
            let (script, saved) = match (script, rule_id) {
                (Some(s), None) => (s, None),
                (None, Some(id)) => {
                    let rule = store::get(tx, id).await?;
                    let versions = store::versions(tx, id).await?;
                    let current = versions.into_iter().find(|v| v.version == rule.current_version);
                    (current.map(|v| v.script).unwrap_or_default(), Some(rule))
                }
                _ => return Err(Error::invalid_field("script", "give either script or rule_id")),
            };
            store::check_script(&checker, &script)?;
            let member = match (member, member_id) {
                (_, Some(id)) => context::member(tx, id, &kind, tz, day).await?,
                (Some(m), None) => m,
                (None, None) => MemberInput::default(),
            };
            Ok((script, saved, member))
        })
        .await?;
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
    let skipped = match member_id {
        Some(_) if tenant.alliance_id.is_some() && !effects.is_empty() => {
            db.read(tenant, actor, async |tx| super::apply::left_out(tx, &member, &effects).await).await?
        }
        _ => Vec::new(),
    };
    Ok(DryRunResult { effects, error, event, member, params, rule_version, params_version, skipped })
}
