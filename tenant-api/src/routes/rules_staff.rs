//! Staff routes for earn rules (R4, R5, R7): create, new versions, rollback, parameters,
//! enable/disable and order, dry run, and the event log.

use axum::extract::State;
use axum::http::StatusCode;
use platform::ids::RuleId;
use platform::rbac::Permission;
use platform::rules::dry_run::{self, DryRun, DryRunRequest, DryRunResult};
use platform::rules::log::{self, EventRow};
use platform::rules::store::{self, NewRule, Rule, RulePatch, RuleVersion};
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

/// The mall's rules in evaluation order. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/rules", tag = "rules",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = Vec<Rule>), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>, auth: StaffAuth) -> ApiResult<Json<Vec<Rule>>> {
    auth.require(Permission::RulesRead)?;
    Ok(Json(state.db.read(&auth.tenant, &auth.actor(), async |tx| store::list(tx).await).await?))
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
    let sandbox = state.rules.sandbox.clone();
    let rule = state.db.write(&auth.tenant, &auth.actor(), async |tx| store::create(tx, &sandbox, &body).await).await?;
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
    Path((_t, id)): Path<(String, RuleId)>,
) -> ApiResult<Json<RuleDetail>> {
    auth.require(Permission::RulesRead)?;
    let (rule, versions) = state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| Ok((store::get(tx, id).await?, store::versions(tx, id).await?)))
        .await?;
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
    Path((_t, id)): Path<(String, RuleId)>,
    Json(body): Json<RulePatch>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let rule = state.db.write(&auth.tenant, &auth.actor(), async |tx| store::patch(tx, id, &body).await).await?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ScriptBody {
    /// A Rhai script that compiles (a 422 names line and column).
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
    Path((_t, id)): Path<(String, RuleId)>,
    Json(body): Json<ScriptBody>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let sandbox = state.rules.sandbox.clone();
    let rule = state
        .db
        .write(&auth.tenant, &auth.actor(), async |tx| store::new_version(tx, &sandbox, id, &body.script).await)
        .await?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ParamsBody {
    /// A JSON object of at most 16 KiB.
    #[schema(value_type = platform::doc::JsonObject)]
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
    Path((_t, id)): Path<(String, RuleId)>,
    Json(body): Json<ParamsBody>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let rule =
        state.db.write(&auth.tenant, &auth.actor(), async |tx| store::set_params(tx, id, &body.params).await).await?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// A version of this rule (1 is its first).
    #[schema(minimum = 1)]
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
    Path((_t, id)): Path<(String, RuleId)>,
    Json(body): Json<RollbackBody>,
) -> ApiResult<Json<Rule>> {
    auth.require(Permission::RulesWrite)?;
    let version = body.version;
    let rule = state.db.write(&auth.tenant, &auth.actor(), async |tx| store::rollback(tx, id, version).await).await?;
    state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

/// Runs a script against a sample event and member and returns its effects, writing
/// nothing (R7). Needs `rules_read`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules/dry-run", tag = "rules",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    request_body = DryRunRequest,
    responses((status = 200, body = DryRunResult), (status = 422, body = ErrorBody)))]
async fn dry_run(
    State(state): State<AppState>,
    auth: StaffAuth,
    Json(body): Json<DryRun>,
) -> ApiResult<Json<DryRunResult>> {
    auth.require(Permission::RulesRead)?;
    let sandbox = state.rules.sandbox.clone();
    Ok(Json(dry_run::run(&state.db, &auth.tenant, &auth.actor(), sandbox, body).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct EventFilter {
    /// applied, denied or failed.
    status: Option<String>,
    member_id: Option<i64>,
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
    let filter = log::Filter { status: f.status, member_id: f.member_id, before, limit };
    let items = state.db.read(&auth.tenant, &auth.actor(), async |tx| log::page(tx, &filter).await).await?;
    Ok(Json(Page::new(items, limit, |e: &EventRow| e.id)))
}
