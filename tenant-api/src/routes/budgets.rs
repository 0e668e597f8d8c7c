//! Issuing budgets of an alliance's malls (SPEC A3, A5): alliance admins see every
//! mall's budget, top them up, set each mall's issuing rate and the clearing value; a
//! mall's staff see their own budget and its owner tops it up.

use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::alliance::budget::{Budget, BudgetEntry, BudgetTerms, TopUp};
use platform::alliance::budgets::{self, Budgets, Clearing};
use platform::rbac::Permission;
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{AllianceSlug, Forbidden, Invalid, NotFound, TenantSlug, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{AllianceAuth, Json, PathId, Query, StaffAuth};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list;
        set_clearing;
        set_terms;
        top_up;
        mall_entries;
        own;
        own_top_up;
    ]
}

/// Every mall's issuing budget and the clearing value (alliance admins).
#[utoipa::path(get, path = "/v1/alliances/{alliance}/budgets", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), responses((status = 200, body = Budgets), Unauthorized, Forbidden))]
async fn list(auth: AllianceAuth) -> ApiResult<Json<Budgets>> {
    Ok(Json(budgets::overview(&auth.state.db, &auth.alliance).await?))
}

/// Sets the clearing value of the shared currency: how many points are worth one yuan.
#[utoipa::path(put, path = "/v1/alliances/{alliance}/clearing", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), request_body = Clearing, responses((status = 200, body = Clearing), Unauthorized, Invalid))]
async fn set_clearing(auth: AllianceAuth, Json(body): Json<Clearing>) -> ApiResult<Json<Clearing>> {
    Ok(Json(budgets::set_clearing(&auth.state.db, &auth.alliance, body, &auth.actor()).await?))
}

/// Sets a mall's issuing rate (basis points of the clearing value it bears) and the
/// balance below which it is alerted.
#[utoipa::path(put, path = "/v1/alliances/{alliance}/malls/{tenant}/budget", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("tenant" = String, Path, description = "mall slug")),
    request_body = BudgetTerms, responses((status = 200, body = Budget), NotFound, Invalid))]
async fn set_terms(
    auth: AllianceAuth,
    PathId(slug): PathId<String>,
    Json(body): Json<BudgetTerms>,
) -> ApiResult<Json<Budget>> {
    let mall = budgets::mall_of(&auth.state.db, &auth.alliance, &slug).await?;
    Ok(Json(budgets::set_terms(&auth.state.db, &auth.alliance, &mall, &body, &auth.actor()).await?))
}

/// Tops up a mall's issuing budget (alliance admins). An optional `Idempotency-Key`
/// header makes a repeated request answer the first top-up and add nothing.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/malls/{tenant}/budget/top-ups", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("tenant" = String, Path, description = "mall slug")),
    request_body = TopUp, responses((status = 201, body = BudgetEntry), NotFound, Invalid))]
async fn top_up(
    auth: AllianceAuth,
    PathId(slug): PathId<String>,
    headers: HeaderMap,
    uri: OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    let mall = budgets::mall_of(&auth.state.db, &auth.alliance, &slug).await?;
    top_up_answer(&auth.state, &auth.alliance, &mall, &headers, &uri, body, &auth.actor()).await
}

/// A top-up, once per `Idempotency-Key` when the request carries one (L8): the same key
/// again answers the first entry (`Idempotent-Replayed: true`) and adds nothing.
async fn top_up_answer(
    state: &AppState,
    alliance: &platform::directory::Alliance,
    mall: &platform::directory::Tenant,
    headers: &HeaderMap,
    uri: &OriginalUri,
    body: serde_json::Value,
    actor: &platform::audit::Actor,
) -> ApiResult<Response> {
    let key = headers.get("idempotency-key").map(|v| v.to_str().unwrap_or("\u{0}"));
    let hash = platform::idempotency::request_hash("POST", uri.0.path(), &body);
    let top: TopUp = crate::input::from_value(body)?;
    let Some(key) = key else {
        let entry = budgets::top_up(&state.db, alliance, mall, &top, actor).await?;
        return Ok((StatusCode::CREATED, axum::Json(entry)).into_response());
    };
    let key = platform::idempotency::check_key(Some(key))?;
    let once = budgets::OnceKey { scope: format!("{} POST {}", actor.label, uri.0.path()), key, hash };
    let (body, replayed) = budgets::top_up_once(&state.db, alliance, mall, &top, actor, &once).await?;
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    if replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// A mall's budget entries (top-ups and issues), newest first.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/malls/{tenant}/budget/entries", tag = "alliance",
    security(("alliance_jwt" = [])),
    params(AllianceSlug, ("tenant" = String, Path, description = "mall slug"), PageQuery),
    responses((status = 200, body = Page<BudgetEntry>), NotFound))]
async fn mall_entries(
    auth: AllianceAuth,
    PathId(slug): PathId<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<BudgetEntry>>> {
    let (before, limit) = q.bounds()?;
    let mall = budgets::mall_of(&auth.state.db, &auth.alliance, &slug).await?;
    let items = budgets::entries(&auth.state.db, &auth.alliance, &mall, before, limit).await?;
    Ok(Json(Page::new(items, limit, |e| e.id)))
}

/// The mall's own issuing budget in its alliance. Needs `settings_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/alliance-budget", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Budget), Forbidden, NotFound))]
async fn own(auth: StaffAuth) -> ApiResult<Json<Budget>> {
    auth.require(Permission::SettingsRead)?;
    let alliance = budgets::alliance_of(&auth.state.db, &auth.tenant).await?;
    Ok(Json(budgets::of_mall(&auth.state.db, &alliance, &auth.tenant).await?))
}

/// The mall's owner tops up its issuing budget. Needs `settings_write`. An optional
/// `Idempotency-Key` header makes a repeated request answer the first top-up.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/alliance-budget/top-ups", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug), request_body = TopUp,
    responses((status = 201, body = BudgetEntry), Forbidden, NotFound, Invalid))]
async fn own_top_up(
    auth: StaffAuth,
    headers: HeaderMap,
    uri: OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.require(Permission::SettingsWrite)?;
    let alliance = budgets::alliance_of(&auth.state.db, &auth.tenant).await?;
    top_up_answer(&auth.state, &alliance, &auth.tenant, &headers, &uri, body, &auth.actor()).await
}
