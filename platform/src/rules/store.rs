//! The rule store: create, new version (compiled and validated first), rollback,
//! parameters (versioned like scripts, with their own rollback), enable/disable, order,
//! archive and restore. Every change is audited in its own transaction and announced to
//! all instances.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::bounds;
use crate::error::{Error, Result, Validator};
use crate::ids::RuleId;
use crate::notify::{self, Change};
use crate::tx::{AllianceTx, TenantTx};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Rule {
    pub id: RuleId,
    pub name: String,
    pub event_type: String,
    pub enabled: bool,
    pub position: i32,
    pub current_version: i32,
    /// The current parameters (parameter version `params_version`).
    pub params: serde_json::Value,
    pub params_version: i32,
    /// Set while the rule is archived: left out of the active list and never evaluated.
    pub archived_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RuleVersion {
    pub version: i32,
    pub script: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One version of a rule's parameters (R4, R5): every change is kept.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RuleParamsVersion {
    pub version: i32,
    #[schema(value_type = crate::doc::JsonObject)]
    pub params: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Event type, or "*" for every event.
    #[schema(value_type = super::RuleEventType)]
    pub event_type: String,
    /// A Rhai script that compiles (a 422 names line and column).
    pub script: String,
    /// A JSON object of at most 16 KiB.
    #[serde(default = "empty_object")]
    #[schema(value_type = crate::doc::JsonObject)]
    pub params: serde_json::Value,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "hundred")]
    #[schema(minimum = 0, maximum = 10000)]
    pub position: i32,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}
fn yes() -> bool {
    true
}
fn hundred() -> i32 {
    100
}

const COLUMNS: &str =
    "id, name, event_type, enabled, position, current_version, params, params_version, archived_at, updated_at";

/// Compiles a script, turning a compile error into a 422 naming line and column.
pub fn check_script(sandbox: &scripting::Sandbox, script: &str) -> Result<()> {
    sandbox.compile(script).map(|_| ()).map_err(|e| Error::Invalid {
        code: "script_invalid",
        message: format!("the script does not compile: {e}"),
        fields: vec![crate::error::FieldError {
            field: "script".into(),
            message: format!("line {}, column {}: {}", e.line, e.column, e.message),
        }],
    })
}

/// A compile check as the editor shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CompileCheck {
    pub ok: bool,
    /// The first error, when the script does not compile.
    pub error: Option<CompileProblem>,
}

/// Where a script stops compiling: 1-based line and column (0 when the whole script is
/// at fault, e.g. too large).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CompileProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub fn compile_check(sandbox: &scripting::Sandbox, script: &str) -> CompileCheck {
    match sandbox.compile(script) {
        Ok(_) => CompileCheck { ok: true, error: None },
        Err(e) => CompileCheck {
            ok: false,
            error: Some(CompileProblem { line: e.line, column: e.column, message: e.message }),
        },
    }
}

/// `compile_check` for a rule home limited to `only` currency (an alliance's): a script
/// that compiles but would be refused at save (`check_currency`) is not ok either, its
/// problem at line and column 0 (the whole script).
pub fn compile_check_only(sandbox: &scripting::Sandbox, only: Option<&str>, script: &str) -> CompileCheck {
    let check = compile_check(sandbox, script);
    if !check.ok {
        return check;
    }
    match check_currency(only, script) {
        Ok(()) => check,
        Err(e) => {
            CompileCheck { ok: false, error: Some(CompileProblem { line: 0, column: 0, message: field_message(&e) }) }
        }
    }
}

fn field_message(e: &Error) -> String {
    match e {
        Error::Invalid { fields, message, .. } => fields.first().map(|f| f.message.clone()).unwrap_or(message.clone()),
        other => other.to_string(),
    }
}

pub(crate) fn check_params(params: &serde_json::Value) -> Result<()> {
    Validator::new()
        .check(params.is_object(), "params", "a JSON object")
        .check(params.to_string().len() <= bounds::PARAMS_BYTES_MAX, "params", "at most 16 KiB")
        .finish()
}

/// Where the rule tables live: a mall's schema (its staff's rules) or an alliance's (the
/// alliance-wide rules its admins write, run in every mall of it after the mall's own).
/// The store's code is the same for both.
pub trait RuleHome: DerefMut<Target = PgConnection> + Send {
    /// Who is acting, as versions record it.
    fn by(&self) -> String;
    /// The change every instance hears about.
    fn change(&self) -> Change;
    /// The one currency its rules may award (an alliance's shared currency), if limited.
    fn only_currency(&self) -> Option<&str>;
    /// Records `action` in the audit log, in this transaction.
    fn record(
        &mut self,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send;
}

impl RuleHome for TenantTx {
    fn by(&self) -> String {
        self.actor().label.clone()
    }
    fn change(&self) -> Change {
        Change::Rules { tenant_id: self.tenant().id }
    }
    fn only_currency(&self) -> Option<&str> {
        None
    }
    fn record(
        &mut self,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send {
        self.audit(action, target, details)
    }
}

impl RuleHome for AllianceTx {
    fn by(&self) -> String {
        self.actor().label.clone()
    }
    fn change(&self) -> Change {
        Change::AllianceRules { alliance_id: self.alliance().id }
    }
    fn only_currency(&self) -> Option<&str> {
        Some(&self.alliance().currency_code)
    }
    fn record(
        &mut self,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send {
        self.audit(action, target, details)
    }
}

/// An alliance rule's script may only award the shared currency, named as a literal
/// (`award("alliance_points", 10)`), and may not deduct, lock or accelerate (422).
pub fn check_currency(only: Option<&str>, script: &str) -> Result<()> {
    static AWARD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"\b(?:award|award_expiring)\s*\(\s*([^,)]*)|\baward_referrer\s*\(\s*[^,)]*,\s*([^,)]*)"#)
            .expect("a valid pattern")
    });
    static OTHER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\b(?:deduct|lock|accelerate)\s*\(").expect("a valid pattern"));
    let Some(code) = only else { return Ok(()) };
    let wanted = format!("\"{code}\"");
    for c in AWARD.captures_iter(script) {
        let arg = c.get(1).or_else(|| c.get(2)).map(|m| m.as_str().trim()).unwrap_or_default();
        if arg != wanted {
            return Err(Error::invalid_field(
                "script",
                format!("an alliance rule awards only the shared currency, named as \"{code}\" (found {arg})"),
            ));
        }
    }
    if OTHER.is_match(script) {
        return Err(Error::invalid_field(
            "script",
            "an alliance rule may only award points (no deduct, lock or accelerate)",
        ));
    }
    Ok(())
}

/// Audits a change of rule `id` and announces it to every instance.
async fn changed(tx: &mut impl RuleHome, action: &str, id: RuleId, details: serde_json::Value) -> Result<()> {
    tx.record(action, &id.to_string(), details).await?;
    let change = tx.change();
    notify::publish(tx, &change).await
}

pub async fn create(tx: &mut impl RuleHome, sandbox: &scripting::Sandbox, new: &NewRule) -> Result<Rule> {
    Validator::new()
        .check(!new.name.trim().is_empty() && new.name.chars().count() <= 100, "name", "1 to 100 characters")
        .check(
            new.event_type == "*" || super::event_type_is_valid(&new.event_type),
            "event_type",
            "a-z, 0-9 and _, or *",
        )
        .check((0..=10_000).contains(&new.position), "position", "0 to 10000")
        .finish()?;
    check_params(&new.params)?;
    check_script(sandbox, &new.script)?;
    check_currency(tx.only_currency(), &new.script)?;
    room_for_an_active_rule(tx).await?;
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM rules").fetch_one(&mut **tx).await?;
    if kept >= bounds::RULES_KEPT_MAX {
        return Err(Error::conflict(
            "too_many_rules",
            format!("a mall keeps at most {} rules, archived ones included: reuse a rule", bounds::RULES_KEPT_MAX),
        ));
    }
    let rule: Rule = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rules (name, event_type, enabled, position, current_version, params) VALUES ($1, $2, $3, $4, 1, $5) \
         RETURNING {COLUMNS}"
    )))
    .bind(new.name.trim())
    .bind(&new.event_type)
    .bind(new.enabled)
    .bind(new.position)
    .bind(&new.params)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| crate::error::on_unique(e, "rules_name_key", Error::conflict("rule_exists", "a rule with this name exists")))?;
    let by = tx.by();
    sqlx::query("INSERT INTO rule_versions (rule_id, version, script, created_by) VALUES ($1, 1, $2, $3)")
        .bind(rule.id)
        .bind(&new.script)
        .bind(&by)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO rule_param_versions (rule_id, version, params, created_by) VALUES ($1, 1, $2, $3)")
        .bind(rule.id)
        .bind(&new.params)
        .bind(&by)
        .execute(&mut **tx)
        .await?;
    let details = serde_json::json!({"name": rule.name, "event_type": rule.event_type});
    changed(tx, "rule.create", rule.id, details).await?;
    Ok(rule)
}

/// The active rules (`archived` false) or the archived ones, in evaluation order.
pub async fn list(conn: &mut PgConnection, archived: bool) -> Result<Vec<Rule>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM rules WHERE (archived_at IS NOT NULL) = $1 ORDER BY position, id"
    )))
    .bind(archived)
    .fetch_all(conn)
    .await?)
}

pub async fn get(conn: &mut PgConnection, id: RuleId) -> Result<Rule> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM rules WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("rule_not_found", "no such rule"))
}

pub async fn versions(conn: &mut PgConnection, id: RuleId) -> Result<Vec<RuleVersion>> {
    Ok(sqlx::query_as(
        "SELECT version, script, created_by, created_at FROM rule_versions WHERE rule_id = $1 ORDER BY version DESC",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

pub async fn param_versions(conn: &mut PgConnection, id: RuleId) -> Result<Vec<RuleParamsVersion>> {
    Ok(sqlx::query_as(
        "SELECT version, params, created_by, created_at FROM rule_param_versions WHERE rule_id = $1 \
         ORDER BY version DESC",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

/// Locks the rule for a change and returns its current script version; an archived
/// rule is refused (restore it first).
async fn lock_active(conn: &mut PgConnection, id: RuleId) -> Result<i32> {
    let row: Option<(i32, bool)> =
        sqlx::query_as("SELECT current_version, archived_at IS NOT NULL FROM rules WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    match row {
        None => Err(Error::not_found("rule_not_found", "no such rule")),
        Some((_, true)) => Err(Error::conflict("rule_archived", "the rule is archived: restore it first")),
        Some((version, false)) => Ok(version),
    }
}

/// Saves a new version of the script (compiled first) and makes it current.
pub async fn new_version(
    tx: &mut impl RuleHome,
    sandbox: &scripting::Sandbox,
    id: RuleId,
    script: &str,
) -> Result<Rule> {
    check_script(sandbox, script)?;
    check_currency(tx.only_currency(), script)?;
    let version = lock_active(tx, id).await?;
    let next: i32 = sqlx::query_scalar("SELECT max(version) + 1 FROM rule_versions WHERE rule_id = $1")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .unwrap_or(version + 1);
    let by = tx.by();
    sqlx::query("INSERT INTO rule_versions (rule_id, version, script, created_by) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(next)
        .bind(script)
        .bind(by)
        .execute(&mut **tx)
        .await?;
    let rule = set_version(tx, id, next).await?;
    changed(tx, "rule.version", id, serde_json::json!({"version": rule.current_version})).await?;
    Ok(rule)
}

/// Makes an earlier version current again (one action).
pub async fn rollback(tx: &mut impl RuleHome, id: RuleId, version: i32) -> Result<Rule> {
    lock_active(tx, id).await?;
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT version FROM rule_versions WHERE rule_id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_none() {
        get(tx, id).await?;
        return Err(Error::invalid_field("version", "this rule has no such version"));
    }
    let rule = set_version(tx, id, version).await?;
    changed(tx, "rule.rollback", id, serde_json::json!({"version": version})).await?;
    Ok(rule)
}

async fn set_version(conn: &mut PgConnection, id: RuleId, version: i32) -> Result<Rule> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE rules SET current_version = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(version)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::not_found("rule_not_found", "no such rule"))
}

/// Replaces the rule's parameters: a new parameter version, made current. Parameters
/// equal to the current ones change nothing.
pub async fn set_params(tx: &mut impl RuleHome, id: RuleId, params: &serde_json::Value) -> Result<Rule> {
    check_params(params)?;
    lock_active(tx, id).await?;
    let current = get(tx, id).await?;
    if current.params == *params {
        return Ok(current);
    }
    let next: i32 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) + 1 FROM rule_param_versions WHERE rule_id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
    let by = tx.by();
    sqlx::query("INSERT INTO rule_param_versions (rule_id, version, params, created_by) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(next)
        .bind(params)
        .bind(by)
        .execute(&mut **tx)
        .await?;
    let rule = set_params_version(tx, id, next).await?;
    changed(tx, "rule.params", id, serde_json::json!({"params_version": next, "params": params})).await?;
    Ok(rule)
}

/// Makes an earlier parameter version current again (one action).
pub async fn rollback_params(tx: &mut impl RuleHome, id: RuleId, version: i32) -> Result<Rule> {
    lock_active(tx, id).await?;
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT version FROM rule_param_versions WHERE rule_id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_none() {
        return Err(Error::invalid_field("version", "this rule has no such parameter version"));
    }
    let rule = set_params_version(tx, id, version).await?;
    changed(tx, "rule.params_rollback", id, serde_json::json!({"params_version": version})).await?;
    Ok(rule)
}

/// Makes parameter version `version` (which exists) current.
async fn set_params_version(conn: &mut PgConnection, id: RuleId, version: i32) -> Result<Rule> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE rules SET params_version = $2, updated_at = now(), \
             params = (SELECT p.params FROM rule_param_versions p WHERE p.rule_id = $1 AND p.version = $2) \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(version)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::not_found("rule_not_found", "no such rule"))
}

/// Archives a rule: it leaves the active list and is never evaluated, and everything it
/// did stays (versions, the entries naming it). Archiving an archived rule changes nothing.
pub async fn archive(tx: &mut impl RuleHome, id: RuleId) -> Result<Rule> {
    let rule = get(tx, id).await?;
    if rule.archived_at.is_some() {
        return Ok(rule);
    }
    let rule: Rule = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE rules SET archived_at = now(), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    changed(tx, "rule.archive", id, serde_json::json!({"name": rule.name})).await?;
    Ok(rule)
}

/// Refuses when the active list is full (archived rules do not count).
async fn room_for_an_active_rule(tx: &mut impl RuleHome) -> Result<()> {
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rules WHERE archived_at IS NULL").fetch_one(&mut **tx).await?;
    if active >= bounds::RULES_PER_TENANT_MAX {
        return Err(Error::conflict(
            "too_many_rules",
            format!("at most {} active rules: archive or reuse a rule first", bounds::RULES_PER_TENANT_MAX),
        ));
    }
    Ok(())
}

/// Brings an archived rule back to the active list, as it was (enabled or not).
pub async fn restore(tx: &mut impl RuleHome, id: RuleId) -> Result<Rule> {
    let rule = get(tx, id).await?;
    if rule.archived_at.is_none() {
        return Ok(rule);
    }
    room_for_an_active_rule(tx).await?;
    let rule: Rule = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE rules SET archived_at = NULL, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    changed(tx, "rule.restore", id, serde_json::json!({"name": rule.name})).await?;
    Ok(rule)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    pub enabled: Option<bool>,
    #[schema(minimum = 0, maximum = 10000)]
    pub position: Option<i32>,
}

/// Enables, disables or moves a rule.
pub async fn patch(tx: &mut impl RuleHome, id: RuleId, p: &RulePatch) -> Result<Rule> {
    if let Some(pos) = p.position
        && !(0..=10_000).contains(&pos)
    {
        return Err(Error::invalid_field("position", "0 to 10000"));
    }
    lock_active(tx, id).await?;
    let rule: Rule = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE rules SET enabled = coalesce($2, enabled), position = coalesce($3, position), updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(p.enabled)
    .bind(p.position)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::not_found("rule_not_found", "no such rule"))?;
    changed(tx, "rule.update", id, serde_json::json!({"enabled": p.enabled, "position": p.position})).await?;
    Ok(rule)
}
