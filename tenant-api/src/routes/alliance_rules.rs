//! Alliance-wide rules (issue 12 point 6): the alliance admins' routes over the same rule
//! store as a mall's (`store::RuleHome`), with the tables in the alliance schema. Every
//! mall of the alliance runs them after its own rules, for the same events; they award
//! only the shared currency (422 at save otherwise), charged to the issuing budget of
//! the mall where the event happened. A change reaches every instance (`AllianceRules`).

use axum::http::StatusCode;
use platform::directory;
use platform::ids::RuleId;
use platform::rules::dry_run::{self, AllianceDryRun, AllianceDryRunRequest, AllianceDryRunResult};
use platform::rules::store::{self, CompileCheck, NewRule, Rule, RulePatch};
use platform::tx::AllianceTx;
use utoipa_axum::router::OpenApiRouter;

use super::rules_staff::{ParamsBody, RollbackBody, RuleDetail, RuleListQuery, ScriptBody, rule_move_route};
use crate::doc::{AllianceSlug, Conflict, Forbidden, Invalid, NotFound};
use crate::error::ApiResult;
use crate::extract::{AllianceAuth, Json, PathId, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        alliance_rule_list, alliance_rule_create;
        alliance_rule_get, alliance_rule_patch;
        alliance_rule_new_version;
        alliance_rule_set_params;
        alliance_rule_rollback;
        alliance_rule_rollback_params;
        alliance_rule_archive;
        alliance_rule_restore;
        alliance_rule_compile;
        alliance_rule_dry_run;
    ]
}

/// A write to one of the alliance's rules; every server instance then drops the
/// compiled alliance rules.
async fn write_rule(
    auth: &AllianceAuth,
    work: impl AsyncFnOnce(&mut AllianceTx) -> platform::Result<Rule>,
) -> ApiResult<Json<Rule>> {
    let rule = auth.write(work).await?;
    auth.state.rules.evict_all();
    Ok(Json(rule))
}

/// The alliance's active rules in evaluation order, or its archived ones.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/rules", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug, RuleListQuery), responses((status = 200, body = Vec<Rule>), Forbidden))]
async fn alliance_rule_list(auth: AllianceAuth, Query(q): Query<RuleListQuery>) -> ApiResult<Json<Vec<Rule>>> {
    Ok(Json(auth.read(async |tx| store::list(tx, q.archived).await).await?))
}

/// Creates a rule (its script is compiled first: a 422 names line and column). Takes
/// effect on every server instance for the next event.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/rules", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), request_body = NewRule, responses((status = 201, body = Rule), Forbidden, Conflict, Invalid))]
async fn alliance_rule_create(auth: AllianceAuth, Json(body): Json<NewRule>) -> ApiResult<(StatusCode, Json<Rule>)> {
    let sandbox = auth.state.rules.sandbox.clone();
    Ok((StatusCode::CREATED, write_rule(&auth, async |tx| store::create(tx, &sandbox, &body).await).await?))
}

/// One rule with every version of its script and of its parameters.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/rules/{id}", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug, ("id" = i64, Path, description = "rule id")),
    responses((status = 200, body = RuleDetail), NotFound))]
async fn alliance_rule_get(auth: AllianceAuth, PathId(id): PathId<RuleId>) -> ApiResult<Json<RuleDetail>> {
    let (rule, versions, param_versions) = auth
        .read(async |tx| {
            Ok((store::get(tx, id).await?, store::versions(tx, id).await?, store::param_versions(tx, id).await?))
        })
        .await?;
    Ok(Json(RuleDetail { rule, versions, param_versions }))
}

/// Enables, disables or reorders a rule (409 `rule_archived` for an archived one).
#[utoipa::path(patch, path = "/v1/alliances/{alliance}/rules/{id}", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug, ("id" = i64, Path, description = "rule id")), request_body = RulePatch,
    responses((status = 200, body = Rule), NotFound, Conflict, Invalid))]
async fn alliance_rule_patch(
    auth: AllianceAuth,
    PathId(id): PathId<RuleId>,
    Json(body): Json<RulePatch>,
) -> ApiResult<Json<Rule>> {
    write_rule(&auth, async |tx| store::patch(tx, id, &body).await).await
}

/// Saves a new version of the script and makes it current (compiled first; a 422 names
/// line and column; 409 `rule_archived` for an archived rule).
#[utoipa::path(put, path = "/v1/alliances/{alliance}/rules/{id}/script", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "rule id")),
    request_body = ScriptBody, responses((status = 200, body = Rule), NotFound, Conflict, Invalid))]
async fn alliance_rule_new_version(
    auth: AllianceAuth,
    PathId(id): PathId<RuleId>,
    Json(body): Json<ScriptBody>,
) -> ApiResult<Json<Rule>> {
    let sandbox = auth.state.rules.sandbox.clone();
    write_rule(&auth, async |tx| store::new_version(tx, &sandbox, id, &body.script).await).await
}

/// Replaces the rule's parameters (R4) without touching its script: a new parameter
/// version, made current (every version is kept; parameters equal to the current ones
/// change nothing).
#[utoipa::path(put, path = "/v1/alliances/{alliance}/rules/{id}/params", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "rule id")),
    request_body = ParamsBody, responses((status = 200, body = Rule), NotFound, Conflict, Invalid))]
async fn alliance_rule_set_params(
    auth: AllianceAuth,
    PathId(id): PathId<RuleId>,
    Json(body): Json<ParamsBody>,
) -> ApiResult<Json<Rule>> {
    write_rule(&auth, async |tx| store::set_params(tx, id, &body.params).await).await
}

rule_move_route! {
    alliance
    /// Makes an earlier version of the script current again.
    alliance_rule_rollback, "/v1/alliances/{alliance}/rules/{id}/rollback", store::rollback(version)
}

rule_move_route! {
    alliance
    /// Makes an earlier version of the parameters current again (the script stays).
    alliance_rule_rollback_params, "/v1/alliances/{alliance}/rules/{id}/params/rollback", store::rollback_params(version)
}

rule_move_route! {
    alliance
    /// Archives a rule: it leaves the active list and is never evaluated again (enabled or
    /// not); its versions and the entries naming it stay. Audited.
    alliance_rule_archive, "/v1/alliances/{alliance}/rules/{id}/archive", store::archive
}

rule_move_route! {
    alliance
    /// Brings an archived rule back to the active list, enabled or not as it was. Audited.
    ///
    alliance_rule_restore, "/v1/alliances/{alliance}/rules/{id}/restore", store::restore
}

/// Compiles a script without saving it (the editor's check as you type): 200 with `ok`,
/// or the first error's line and column; a script that compiles but awards another
/// currency than the shared one (or deducts, locks, accelerates) is not `ok` either,
/// with line and column 0 (the whole script), as saving it would answer 422.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/rules/compile", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), request_body = ScriptBody,
    responses((status = 200, body = CompileCheck), Forbidden, Invalid))]
async fn alliance_rule_compile(auth: AllianceAuth, Json(body): Json<ScriptBody>) -> ApiResult<Json<CompileCheck>> {
    let sandbox = auth.state.rules.sandbox.clone();
    let only = auth.alliance.currency_code.clone();
    let check = tokio::task::spawn_blocking(move || store::compile_check_only(&sandbox, Some(&only), &body.script))
        .await
        .map_err(|e| platform::error::Error::Internal(e.into()))?;
    Ok(Json(check))
}

/// Runs an alliance rule, or a draft of one, against a sample event in one mall of the
/// alliance (`mall`, its slug) and a sample or real member of that mall, writing nothing:
/// the effects, and what they would draw on that mall's issuing budget (`budget`: each
/// shared award's cost in order, left out as the live event would leave it out when the
/// budget no longer covers it or is closed). 404 `not_in_alliance` for a mall outside
/// the alliance.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/rules/dry-run", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), request_body = AllianceDryRunRequest,
    responses((status = 200, body = AllianceDryRunResult), Forbidden, NotFound, Invalid))]
async fn alliance_rule_dry_run(
    auth: AllianceAuth,
    Json(body): Json<AllianceDryRun>,
) -> ApiResult<Json<AllianceDryRunResult>> {
    let mall = directory::find_by_slug(auth.state.db.control(), &body.mall)
        .await?
        .filter(|t| t.alliance_id == Some(auth.alliance.id))
        .ok_or_else(|| platform::Error::not_found("not_in_alliance", "this mall is not in this alliance"))?;
    let sandbox = auth.state.rules.sandbox.clone();
    Ok(Json(dry_run::run_alliance(&auth.state.db, &auth.alliance, &mall, &auth.actor(), sandbox, body).await?))
}
