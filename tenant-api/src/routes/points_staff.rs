//! Staff views and changes of members' points, levels and currencies.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use platform::alliance::book;
use platform::ledger::Entry;
use platform::ledger::currencies::{self, Currency, NewCurrency};
use platform::ledger::history::{EntryFilter, PointsSummary};
use platform::levels::{self, Level, LevelTable};
use platform::points::{self, Adjustment};
use platform::rbac::Permission;
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query, StaffAuth};
use crate::idempotent::{self, IdempotencyKey, IdempotentJson};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        member_points;
        member_entries;
        adjust;
        get_levels, put_levels;
        list_currencies, create_currency;
    ]
}

/// A member's balances, lots, grants and level. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members/{id}/points", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "member id")),
    responses((status = 200, body = PointsSummary), Forbidden, NotFound))]
async fn member_points(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<PointsSummary>> {
    let s = auth.read(Permission::MembersRead, async |tx| book::summary(tx, &auth.tenant, id).await).await?;
    Ok(Json(s))
}

/// A member's ledger entries, newest first. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members/{id}/points/entries", tag = "staff",
    security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "member id"), EntryFilter, PageQuery),
    responses((status = 200, body = Page<Entry>), Forbidden, NotFound))]
async fn member_entries(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Query(filter): Query<EntryFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Entry>>> {
    auth.require(Permission::MembersRead)?;
    let (before, limit) = page.bounds()?;
    let tenant = &auth.tenant;
    let items = auth
        .state
        .db
        .read(tenant, &auth.actor(), async |tx| {
            platform::found::member(tx, id).await?;
            book::entries(tx, tenant, id, &filter, before, limit).await
        })
        .await?;
    Ok(Json(Page::new(items, limit, |e| e.id.get())))
}

/// Adjusts a member's balance by hand with a reason (L7); audited. Needs
/// `points_adjust` and an `Idempotency-Key` header. The amount is bounded per role by
/// the setting `adjustment_limits` (customer service: 1,000 by default).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/members/{id}/points/adjustments", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "member id"), IdempotencyKey),
    request_body = Adjustment, responses((status = 201, body = Entry), Forbidden, Conflict, Invalid))]
async fn adjust(auth: StaffAuth, PathId(id): PathId<i64>, req: IdempotentJson) -> ApiResult<Response> {
    auth.require(Permission::PointsAdjust)?;
    let (idem, adj) = req.open::<Adjustment>()?;
    let role = auth.role;
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        points::adjust(tx, role, id, adj, Utc::now()).await
    })
    .await
}

/// The level table (V1). Needs `settings_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/levels", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<Level>), Forbidden))]
async fn get_levels(auth: StaffAuth) -> ApiResult<Json<Vec<Level>>> {
    let l = auth.read(Permission::SettingsRead, async |tx| levels::list(tx).await).await?;
    Ok(Json(l))
}

/// Replaces the level table; members are re-levelled at once (changes recorded).
/// Needs `settings_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/levels", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = LevelTable, responses((status = 200, body = Vec<Level>), Forbidden, Invalid))]
async fn put_levels(auth: StaffAuth, Json(body): Json<Vec<Level>>) -> ApiResult<Json<Vec<Level>>> {
    let l = auth.write(Permission::SettingsWrite, async |tx| levels::replace(tx, &body).await).await?;
    Ok(Json(l))
}

/// The mall's currencies (L1). Needs `settings_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/currencies", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<Currency>), Forbidden))]
async fn list_currencies(auth: StaffAuth) -> ApiResult<Json<Vec<Currency>>> {
    let c = auth.read(Permission::SettingsRead, async |tx| currencies::list(tx).await).await?;
    Ok(Json(c))
}

/// Adds a merchant-defined currency. Needs `settings_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/currencies", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = NewCurrency,
    responses((status = 201, body = Currency), Forbidden, Conflict, Invalid))]
async fn create_currency(auth: StaffAuth, Json(body): Json<Currency>) -> ApiResult<(StatusCode, Json<Currency>)> {
    let c = auth.write(Permission::SettingsWrite, async |tx| currencies::create(tx, &body).await).await?;
    Ok((StatusCode::CREATED, Json(c)))
}
