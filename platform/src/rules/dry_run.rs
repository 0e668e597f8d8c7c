//! A dry run (R7): a script, or a saved rule, against a sample event and a sample or
//! real member; returns the effects and writes nothing.

use std::sync::Arc;

use chrono::Utc;
use scripting::{Effect, EventInput, Input, MemberInput, Sandbox};
use serde::{Deserialize, Serialize};

use super::{context, store};
use crate::audit::Actor;
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
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
    kind: String,
    /// The sender's id of the event.
    #[serde(default)]
    id: String,
    /// RFC 3339.
    #[serde(default)]
    occurred_at: String,
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
    /// The member context the script saw.
    #[schema(value_type = Object)]
    pub member: MemberInput,
}

/// Reads what the run needs (read-only), then runs the script on a blocking thread.
pub async fn run(db: &Db, tenant: &Tenant, actor: &Actor, sandbox: Arc<Sandbox>, req: DryRun) -> Result<DryRunResult> {
    let DryRun { script, rule_id, event, member, member_id, params } = req;
    let kind = event.kind.clone();
    let checker = sandbox.clone();
    let (script, saved_params, member) = db
        .read(tenant, actor, async |tx| {
            let (script, saved_params) = match (script, rule_id) {
                (Some(s), None) => (s, serde_json::json!({})),
                (None, Some(id)) => {
                    let rule = store::get(tx, id).await?;
                    let versions = store::versions(tx, id).await?;
                    let current = versions.into_iter().find(|v| v.version == rule.current_version);
                    (current.map(|v| v.script).unwrap_or_default(), rule.params)
                }
                _ => return Err(Error::invalid_field("script", "give either script or rule_id")),
            };
            store::check_script(&checker, &script)?;
            let member = match (member, member_id) {
                (_, Some(id)) => {
                    let day = crate::localtime::day(tx.tenant().settings.tz(), Utc::now());
                    context::member(tx, id, &kind, day).await?
                }
                (Some(m), None) => m,
                (None, None) => MemberInput::default(),
            };
            Ok((script, saved_params, member))
        })
        .await?;
    let input = Input { event, member: member.clone(), params: params.unwrap_or(saved_params) };
    let result = tokio::task::spawn_blocking(move || {
        let ast = sandbox.compile(&script).map_err(|e| e.to_string())?;
        sandbox.run(&ast, &input).map_err(|e| format!("{} ({})", e.message, e.kind))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    Ok(match result {
        Ok(effects) => DryRunResult { effects, error: None, member },
        Err(e) => DryRunResult { effects: vec![], error: Some(e), member },
    })
}
