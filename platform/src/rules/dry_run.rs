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
    #[schema(value_type = Object)]
    pub event: EventInput,
    /// Sample member (any field may be left out), or …
    #[serde(default)]
    #[schema(value_type = Object)]
    pub member: Option<MemberInput>,
    /// … a real member whose context is read (nothing is written).
    #[serde(default)]
    pub member_id: Option<i64>,
    /// Parameters (default: the saved rule's).
    #[serde(default)]
    pub params: Option<serde_json::Value>,
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
