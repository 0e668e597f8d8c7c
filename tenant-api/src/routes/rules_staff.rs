//! Staff routes for earn rules (R4, R5, R7): create, new versions, rollback, parameters
//! (versioned, with their own rollback), enable/disable and order, archive and restore,
//! compile as you type, dry run, backtests over recorded events, and the event log.

use axum::http::StatusCode;
use platform::ids::RuleId;
use platform::rbac::Permission;
use platform::rules::backtest::{self, Backtest, BacktestRequest};
use platform::rules::dry_run::{self, DryRun, DryRunRequest, DryRunResult};
use platform::rules::log::{self, EventRow};
use platform::rules::store::{self, CompileCheck, NewRule, Rule, RuleParamsVersion, RulePatch, RuleVersion};
use platform::tx::TenantTx;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query, StaffAuth};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list, create;
        get, patch;
        new_version;
        set_params;
        rollback;
        rollback_params;
        archive;
        restore;
        compile;
        dry_run;
        backtests, start_backtest;
        get_backtest;
        events;
    ]
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct RuleListQuery {
    /// true: the archived rules instead of the active ones.
    #[serde(default)]
    pub(crate) archived: bool,
}

/// A write to one of the mall's rules, by staff with `rules_write`; every server
/// instance then drops the mall's compiled rules.
async fn write_rule(
    auth: &StaffAuth,
    work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<Rule>,
) -> ApiResult<Json<Rule>> {
    let rule = auth.write(Permission::RulesWrite, work).await?;
    auth.state.rules.evict(auth.tenant.id).await;
    Ok(Json(rule))
}

/// The mall's active rules in evaluation order, or its archived ones. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/rules", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug, RuleListQuery), responses((status = 200, body = Vec<Rule>), Forbidden))]
async fn list(auth: StaffAuth, Query(q): Query<RuleListQuery>) -> ApiResult<Json<Vec<Rule>>> {
    Ok(Json(auth.read(Permission::RulesRead, async |tx| store::list(tx, q.archived).await).await?))
}

/// Creates a rule (its script is compiled first: a 422 names line and column). Takes
/// effect on every server instance for the next event. Needs `rules_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = NewRule, responses((status = 201, body = Rule), Forbidden, Conflict, Invalid))]
async fn create(auth: StaffAuth, Json(body): Json<NewRule>) -> ApiResult<(StatusCode, Json<Rule>)> {
    let sandbox = auth.state.rules.sandbox.clone();
    Ok((StatusCode::CREATED, write_rule(&auth, async |tx| store::create(tx, &sandbox, &body).await).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RuleDetail {
    pub(crate) rule: Rule,
    /// Every version of the script, newest first.
    pub(crate) versions: Vec<RuleVersion>,
    /// Every version of the parameters, newest first.
    pub(crate) param_versions: Vec<RuleParamsVersion>,
}

/// One rule with every version of its script and of its parameters. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/rules/{id}", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "rule id")),
    responses((status = 200, body = RuleDetail), NotFound))]
async fn get(auth: StaffAuth, PathId(id): PathId<RuleId>) -> ApiResult<Json<RuleDetail>> {
    let (rule, versions, param_versions) = auth
        .read(Permission::RulesRead, async |tx| {
            Ok((store::get(tx, id).await?, store::versions(tx, id).await?, store::param_versions(tx, id).await?))
        })
        .await?;
    Ok(Json(RuleDetail { rule, versions, param_versions }))
}

/// Enables, disables or reorders a rule (409 `rule_archived` for an archived one). Needs
/// `rules_write`.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/rules/{id}", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "rule id")), request_body = RulePatch,
    responses((status = 200, body = Rule), NotFound, Conflict, Invalid))]
async fn patch(auth: StaffAuth, PathId(id): PathId<RuleId>, Json(body): Json<RulePatch>) -> ApiResult<Json<Rule>> {
    write_rule(&auth, async |tx| store::patch(tx, id, &body).await).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScriptBody {
    /// A Rhai script that compiles (a 422 names line and column).
    pub(crate) script: String,
}

/// Saves a new version of the script and makes it current (compiled first; a 422 names
/// line and column; 409 `rule_archived` for an archived rule). Needs `rules_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/rules/{id}/script", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "rule id")), request_body = ScriptBody,
    responses((status = 200, body = Rule), NotFound, Conflict, Invalid))]
async fn new_version(
    auth: StaffAuth,
    PathId(id): PathId<RuleId>,
    Json(body): Json<ScriptBody>,
) -> ApiResult<Json<Rule>> {
    let sandbox = auth.state.rules.sandbox.clone();
    write_rule(&auth, async |tx| store::new_version(tx, &sandbox, id, &body.script).await).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParamsBody {
    /// A JSON object of at most 16 KiB.
    #[schema(value_type = platform::doc::JsonObject)]
    pub(crate) params: serde_json::Value,
}

/// Replaces the rule's parameters (R4) without touching its script: a new parameter
/// version, made current (every version is kept; parameters equal to the current ones
/// change nothing). Needs `rules_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/rules/{id}/params", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "rule id")), request_body = ParamsBody,
    responses((status = 200, body = Rule), NotFound, Conflict, Invalid))]
async fn set_params(
    auth: StaffAuth,
    PathId(id): PathId<RuleId>,
    Json(body): Json<ParamsBody>,
) -> ApiResult<Json<Rule>> {
    write_rule(&auth, async |tx| store::set_params(tx, id, &body.params).await).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackBody {
    /// A version of this rule (1 is its first).
    #[schema(minimum = 1)]
    pub(crate) version: i32,
}

/// A route that moves one rule with `store::$op`: `POST $path`, with a version to go
/// back to (`version`) or none, answering the rule (`write_rule` of the caller's module:
/// staff need `rules_write`). `staff` routes are a mall's, `alliance` ones an alliance's.
macro_rules! rule_move_route {
    (staff $($route:tt)*) => {
        $crate::routes::rules_staff::rule_move_route!(@ "rules", "staff_jwt", "tenant", "tenant slug", StaffAuth; $($route)*);
    };
    (alliance $($route:tt)*) => {
        $crate::routes::rules_staff::rule_move_route!(@ "alliance", "alliance_jwt", "alliance", "alliance slug", AllianceAuth; $($route)*);
    };
    (@ $tag:tt, $sec:tt, $scope:tt, $scope_doc:tt, $auth:ident;
        $(#[doc = $doc:tt])* $name:ident, $path:tt, store::$op:ident(version)) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = $tag, security(($sec = [])),
    params(($scope = String, Path, description = $scope_doc), ("id" = i64, Path, description = "rule id")),
    request_body = RollbackBody, responses((status = 200, body = Rule), NotFound, Conflict, Invalid))]
        async fn $name(
            auth: $auth,
            PathId(id): PathId<RuleId>,
            Json(body): Json<RollbackBody>,
        ) -> ApiResult<Json<Rule>> {
            let version = body.version;
            write_rule(&auth, async |tx| store::$op(tx, id, version).await).await
        }
    };
    (@ $tag:tt, $sec:tt, $scope:tt, $scope_doc:tt, $auth:ident;
        $(#[doc = $doc:tt])* $name:ident, $path:tt, store::$op:ident) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = $tag, security(($sec = [])),
    params(($scope = String, Path, description = $scope_doc), ("id" = i64, Path, description = "rule id")),
    responses((status = 200, body = Rule), NotFound))]
        async fn $name(
            auth: $auth,
            PathId(id): PathId<RuleId>,
        ) -> ApiResult<Json<Rule>> {
            write_rule(&auth, async |tx| store::$op(tx, id).await).await
        }
    };
}
pub(crate) use rule_move_route;

rule_move_route! {
    staff
    /// Makes an earlier version of the script current again. Needs `rules_write`.
    rollback, "/v1/tenants/{tenant}/staff/rules/{id}/rollback", store::rollback(version)
}

rule_move_route! {
    staff
    /// Makes an earlier version of the parameters current again (the script stays). Needs
    /// `rules_write`.
    rollback_params, "/v1/tenants/{tenant}/staff/rules/{id}/params/rollback", store::rollback_params(version)
}

rule_move_route! {
    staff
    /// Archives a rule: it leaves the active list and is never evaluated again (enabled or
    /// not); its versions and the entries naming it stay. Audited. Needs `rules_write`.
    archive, "/v1/tenants/{tenant}/staff/rules/{id}/archive", store::archive
}

rule_move_route! {
    staff
    /// Brings an archived rule back to the active list, enabled or not as it was. Audited.
    /// Needs `rules_write`.
    restore, "/v1/tenants/{tenant}/staff/rules/{id}/restore", store::restore
}

/// Compiles a script without saving it (the editor's check as you type): 200 with `ok`,
/// or the first error's line and column. Needs `rules_read`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules/compile", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = ScriptBody, responses((status = 200, body = CompileCheck), Forbidden, Invalid))]
async fn compile(auth: StaffAuth, Json(body): Json<ScriptBody>) -> ApiResult<Json<CompileCheck>> {
    auth.require(Permission::RulesRead)?;
    let sandbox = auth.state.rules.sandbox.clone();
    let check = tokio::task::spawn_blocking(move || store::compile_check(&sandbox, &body.script))
        .await
        .map_err(|e| platform::error::Error::Internal(e.into()))?;
    Ok(Json(check))
}

/// Runs a script against a sample event and member and returns its effects, writing
/// nothing (R7). The event is filled in as a live one is (`occurred_at` now in the mall's
/// time zone by default, its local `day`); a real member's context is read as a live
/// event of that day would see it. Needs `rules_read`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules/dry-run", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = DryRunRequest, responses((status = 200, body = DryRunResult), Invalid))]
async fn dry_run(auth: StaffAuth, Json(body): Json<DryRun>) -> ApiResult<Json<DryRunResult>> {
    auth.require(Permission::RulesRead)?;
    let sandbox = auth.state.rules.sandbox.clone();
    Ok(Json(dry_run::run(&auth.state.db, &auth.tenant, &auth.actor(), sandbox, body).await?))
}

/// Starts a backtest: the mall's recorded events of a period (at most 92 local days)
/// replayed through a saved rule at any script and parameter version, or a draft
/// script, writing nothing to the ledger. Answers 202 at once; the run goes on in the
/// background (`GET …/backtests/{id}` shows its progress, then its result). One runs at
/// a time per mall (409 `backtest_running`). Needs `rules_read`; audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/rules/backtests", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = BacktestRequest,
    responses((status = 202, body = Backtest), NotFound, Conflict, Invalid))]
async fn start_backtest(auth: StaffAuth, Json(body): Json<BacktestRequest>) -> ApiResult<(StatusCode, Json<Backtest>)> {
    auth.require(Permission::RulesRead)?;
    let bt = backtest::start(&auth.state.db, &auth.state.rules.sandbox, &auth.tenant, &auth.actor(), &body).await?;
    tokio::spawn(backtest::run(auth.state.db.clone(), auth.state.rules.clone(), auth.tenant.clone(), bt.id));
    Ok((StatusCode::ACCEPTED, Json(bt)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct BacktestFilter {
    /// Only the backtests of this rule.
    rule_id: Option<i64>,
}

/// The newest 20 backtests (of one rule, when given). Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/rules/backtests", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug, BacktestFilter), responses((status = 200, body = Vec<Backtest>), Forbidden))]
async fn backtests(auth: StaffAuth, Query(q): Query<BacktestFilter>) -> ApiResult<Json<Vec<Backtest>>> {
    auth.require(Permission::RulesRead)?;
    Ok(Json(backtest::list(&auth.state.db, &auth.tenant, &auth.actor(), q.rule_id).await?))
}

/// One backtest: its progress while it runs (`events_done` of `events_total`), its
/// result when done. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/rules/backtests/{id}", tag = "rules",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "backtest id")),
    responses((status = 200, body = Backtest), NotFound))]
async fn get_backtest(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Backtest>> {
    auth.require(Permission::RulesRead)?;
    Ok(Json(backtest::get(&auth.state.db, &auth.tenant, &auth.actor(), id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct EventFilter {
    /// applied, denied or failed.
    status: Option<String>,
    member_id: Option<i64>,
}

/// Events received and what the rules made of them, newest first. Needs `rules_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/events", tag = "rules", security(("staff_jwt" = [])),
    params(TenantSlug, EventFilter, PageQuery), responses((status = 200, body = Page<EventRow>), Forbidden))]
async fn events(
    auth: StaffAuth,
    Query(f): Query<EventFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<EventRow>>> {
    auth.require(Permission::RulesRead)?;
    let (before, limit) = page.bounds()?;
    let filter = log::Filter { status: f.status, member_id: f.member_id, before, limit };
    let items = auth.state.db.read(&auth.tenant, &auth.actor(), async |tx| log::page(tx, &filter).await).await?;
    Ok(Json(Page::new(items, limit, |e: &EventRow| e.id)))
}
