//! Staff routes for earn rules (R4, R5, R7): create, new versions, rollback, parameters,
//! enable/disable and order, dry run, and the event log.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use platform::audit;
use platform::rbac::Permission;
use platform::rules::store::{NewRule, Rule, RulePatch, RuleVersion};
use platform::rules::{context, store};
use scripting::{Effect, EventInput, Input, MemberInput};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query, StaffAuth};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, patch))
        .routes(routes!(new_version))
        .routes(routes!(set_params))
        .routes(routes!(rollback))
        .routes(routes!(dry_run))
        .routes(routes!(events))
}

fn who(auth: &StaffAuth) -> String {
    format!("staff:{}", auth.staff_id)
}

/// The mall's rules in evaluation order. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/rules", tag = "rules",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = Vec<Rule>), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>, auth: StaffAuth) -> ApiResult<Json<Vec<Rule>>> {
    auth.require(Permission::RulesRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let rules = store::list(&mut tx).await?;
    tx.commit().await.map_err(platform::Error::from)?;
    Ok(Json(rules))
}

/// Creates a rule (its script is compiled first: a 422 names line and column). Takes
/// effect on every server instance for the next event. Needs `rules_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules", tag = "rules",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    request_body = NewRule,
    responses((status = 201, body = Rule), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    auth: StaffAuth,
    Json(body): Json<NewRule>,
) -> ApiResult<(StatusCode, Json<Rule>)> {
    auth.require(Permission::RulesWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let rule = store::create(&mut tx, &state.rules.sandbox, auth.tenant.id, &body, &who(&auth)).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        "rule.create",
        &rule.id.to_string(),
        serde_json::json!({"name": rule.name, "event_type": rule.event_type}),
    )
    .await?;
    tx.commit().await.map_err(platform::Error::from)?;
    state.rules.evict(auth.tenant.id).await;
    Ok((StatusCode::CREATED, Json(rule)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct RuleDetail {
    rule: Rule,
    /// Every version, newest first.
    versions: Vec<RuleVersion>,
}

/// One rule with every version of its script. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/rules/{id}", tag = "rules",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "rule id")),
    responses((status = 200, body = RuleDetail), (status = 404, body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
) -> ApiResult<Json<RuleDetail>> {
    auth.require(Permission::RulesRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let rule = store::get(&mut tx, id).await?;
    let versions = store::versions(&mut tx, id).await?;
    tx.commit().await.map_err(platform::Error::from)?;
    Ok(Json(RuleDetail { rule, versions }))
}

/// Enables, disables or reorders a rule. Needs `rules_write`.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/rules/{id}", tag = "rules",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "rule id")),
    request_body = RulePatch,
    responses((status = 200, body = Rule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn patch(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
    Json(body): Json<RulePatch>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let rule = store::patch(&mut tx, auth.tenant.id, id, &body).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        "rule.update",
        &id.to_string(),
        serde_json::json!({"enabled": body.enabled, "position": body.position}),
    )
    .await?;
    tx.commit().await.map_err(platform::Error::from)?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ScriptBody {
    script: String,
}

/// Saves a new version of the script and makes it current (compiled first; a 422 names
/// line and column). Needs `rules_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/rules/{id}/script", tag = "rules",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "rule id")),
    request_body = ScriptBody,
    responses((status = 200, body = Rule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn new_version(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
    Json(body): Json<ScriptBody>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let rule = store::new_version(&mut tx, &state.rules.sandbox, auth.tenant.id, id, &body.script, &who(&auth)).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        "rule.version",
        &id.to_string(),
        serde_json::json!({"version": rule.current_version}),
    )
    .await?;
    tx.commit().await.map_err(platform::Error::from)?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ParamsBody {
    params: serde_json::Value,
}

/// Replaces the rule's parameters (R4) without touching its script. Needs `rules_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/rules/{id}/params", tag = "rules",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "rule id")),
    request_body = ParamsBody,
    responses((status = 200, body = Rule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_params(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
    Json(body): Json<ParamsBody>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let rule = store::set_params(&mut tx, auth.tenant.id, id, &body.params).await?;
    audit::record(&mut tx, &auth.actor(), Some(auth.tenant.id), "rule.params", &id.to_string(), body.params.clone())
        .await?;
    tx.commit().await.map_err(platform::Error::from)?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: i32,
}

/// Makes an earlier version current again. Needs `rules_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules/{id}/rollback", tag = "rules",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "rule id")),
    request_body = RollbackBody,
    responses((status = 200, body = Rule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
    Json(body): Json<RollbackBody>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let rule = store::rollback(&mut tx, auth.tenant.id, id, body.version).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        "rule.rollback",
        &id.to_string(),
        serde_json::json!({"version": body.version}),
    )
    .await?;
    tx.commit().await.map_err(platform::Error::from)?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DryRun {
    /// A script to try, or …
    #[serde(default)]
    script: Option<String>,
    /// … a saved rule (its current version and parameters).
    #[serde(default)]
    rule_id: Option<i64>,
    /// Sample event: {"type": "checked_in", "data": {…}}.
    #[schema(value_type = Object)]
    event: EventInput,
    /// Sample member (any field may be left out), or …
    #[serde(default)]
    #[schema(value_type = Object)]
    member: Option<MemberInput>,
    /// … a real member whose context is read (nothing is written).
    #[serde(default)]
    member_id: Option<i64>,
    /// Parameters (default: the saved rule's).
    #[serde(default)]
    params: Option<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DryRunResult {
    #[schema(value_type = Vec<Object>)]
    effects: Vec<Effect>,
    error: Option<String>,
    /// The member context the script saw.
    #[schema(value_type = Object)]
    member: MemberInput,
}

/// Runs a script against a sample event and member and returns its effects, writing
/// nothing (R7). Needs `rules_read`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules/dry-run", tag = "rules",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    request_body = DryRun,
    responses((status = 200, body = DryRunResult), (status = 422, body = ErrorBody)))]
async fn dry_run(
    State(state): State<AppState>,
    auth: StaffAuth,
    Json(body): Json<DryRun>,
) -> ApiResult<Json<DryRunResult>> {
    auth.require(Permission::RulesRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let (script, saved_params) = match (&body.script, body.rule_id) {
        (Some(s), None) => (s.clone(), serde_json::json!({})),
        (None, Some(id)) => {
            let rule = store::get(&mut tx, id).await?;
            let v = store::versions(&mut tx, id).await?;
            let current =
                v.into_iter().find(|v| v.version == rule.current_version).map(|v| v.script).unwrap_or_default();
            (current, rule.params)
        }
        _ => return Err(platform::Error::invalid_field("script", "give either script or rule_id").into()),
    };
    store::check_script(&state.rules.sandbox, &script)?;
    let member = match (body.member, body.member_id) {
        (_, Some(id)) => context::member(&mut tx, id, &body.event.kind, Utc::now()).await?,
        (Some(m), None) => m,
        (None, None) => MemberInput::default(),
    };
    // Read-only: the transaction is rolled back.
    tx.rollback().await.map_err(platform::Error::from)?;
    let input = Input { event: body.event, member: member.clone(), params: body.params.unwrap_or(saved_params) };
    let sandbox = state.rules.sandbox.clone();
    let result = tokio::task::spawn_blocking(move || {
        let ast = sandbox.compile(&script).map_err(|e| e.to_string())?;
        sandbox.run(&ast, &input).map_err(|e| format!("{} ({})", e.message, e.kind))
    })
    .await
    .map_err(|e| platform::Error::Internal(e.into()))?;
    Ok(Json(match result {
        Ok(effects) => DryRunResult { effects, error: None, member },
        Err(e) => DryRunResult { effects: vec![], error: Some(e), member },
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct EventFilter {
    /// applied, denied or failed.
    status: Option<String>,
    member_id: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventRow {
    id: i64,
    event_key: String,
    #[serde(rename = "type")]
    kind: String,
    member_id: i64,
    /// The event's data as posted (as a JSON string of its text in the rare case that
    /// stored data cannot be read back as JSON numbers, e.g. one beyond f64).
    data: serde_json::Value,
    occurred_at: chrono::DateTime<Utc>,
    source: String,
    status: String,
    effects: serde_json::Value,
    error: Option<String>,
}

/// A row as stored; JSON columns are read as text so that no stored value can fail
/// the page (see `input::stored_json`).
#[derive(sqlx::FromRow)]
struct StoredEvent {
    id: i64,
    event_key: String,
    #[sqlx(rename = "type")]
    kind: String,
    member_id: i64,
    data: String,
    occurred_at: chrono::DateTime<Utc>,
    source: String,
    status: String,
    effects: String,
    error: Option<String>,
}

impl From<StoredEvent> for EventRow {
    fn from(r: StoredEvent) -> Self {
        Self {
            id: r.id,
            event_key: r.event_key,
            kind: r.kind,
            member_id: r.member_id,
            data: crate::input::stored_json(r.data),
            occurred_at: r.occurred_at,
            source: r.source,
            status: r.status,
            effects: crate::input::stored_json(r.effects),
            error: r.error,
        }
    }
}

/// Events received and what the rules made of them, newest first. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/events", tag = "rules",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug"), EventFilter, PageQuery),
    responses((status = 200, body = Page<EventRow>), (status = 403, body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(f): Query<EventFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<EventRow>>> {
    auth.require(Permission::RulesRead)?;
    let (before, limit) = page.bounds()?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let items: Vec<StoredEvent> = sqlx::query_as(
        "SELECT id, event_key, type, member_id, data::text AS data, occurred_at, source, status, \
         effects::text AS effects, error FROM events \
         WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR member_id = $2) AND ($3::bigint IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(&f.status)
    .bind(f.member_id)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(platform::Error::from)?;
    tx.commit().await.map_err(platform::Error::from)?;
    let items = items.into_iter().map(EventRow::from).collect();
    Ok(Json(Page::new(items, limit, |e: &EventRow| e.id)))
}
