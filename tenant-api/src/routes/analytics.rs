//! The mall's analytics for its staff (issue 13 point 8, SPEC B7): retention of new
//! members by registration week, redemption conversion per product, points velocity,
//! search terms, and a member's browse record. All need `reports_read`; every period is
//! bounded (a longer one is a 422 `period_too_long`).

use axum::extract::State;
use chrono::Utc;
use platform::analytics::browsing::{self, BrowseRecord};
use platform::analytics::conversion::{self, Conversion};
use platform::analytics::retention::{self, Retention};
use platform::analytics::searches::{self, SearchReport};
use platform::analytics::velocity::{self, Velocity};
use platform::rbac::Permission;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::reports::{DayLabel, parse_day};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query, StaffAuth};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_retention))
        .routes(routes!(get_conversion))
        .routes(routes!(get_velocity))
        .routes(routes!(get_searches))
        .routes(routes!(get_browse_record))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RetentionParams {
    /// How many registration weeks (Monday to Sunday), ending with the week of `to`:
    /// 1 to 26 (default 8); more is a 422 `period_too_long`.
    #[param(minimum = 1, maximum = 26)]
    weeks: Option<i64>,
    /// A day of the last week (default: today in the mall's time zone).
    #[param(value_type = Option<DayLabel>, inline)]
    to: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct PeriodParams {
    /// How many local days, ending with `to`: 1 to 92 (default 30); more is a 422
    /// `period_too_long`.
    #[param(minimum = 1, maximum = 92)]
    days: Option<i64>,
    /// The last day (default: today in the mall's time zone).
    #[param(value_type = Option<DayLabel>, inline)]
    to: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ConversionParams {
    /// How many local days, ending with `to`: 1 to 92 (default 30); more is a 422
    /// `period_too_long`.
    #[param(minimum = 1, maximum = 92)]
    days: Option<i64>,
    /// The last day (default: today in the mall's time zone).
    #[param(value_type = Option<DayLabel>, inline)]
    to: Option<String>,
    /// Products listed, the most viewed first: 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// How many local days, ending with `to`: 1 to 92 (default 30); more is a 422
    /// `period_too_long`.
    #[param(minimum = 1, maximum = 92)]
    days: Option<i64>,
    /// The last day (default: today in the mall's time zone).
    #[param(value_type = Option<DayLabel>, inline)]
    to: Option<String>,
    /// Terms in each list: 1 to 200 (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Retention of new members: per registration week of the mall's zone, the members who
/// registered and how many of them were active on the 1st, 7th and 30th local day
/// after registering (counted once that day has ended). Needs `reports_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/analytics/retention", tag = "reports",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), RetentionParams),
    responses((status = 200, body = Retention), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_retention(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(q): Query<RetentionParams>,
) -> ApiResult<Json<Retention>> {
    auth.require(Permission::ReportsRead)?;
    let to = q.to.as_deref().map(parse_day).transpose()?;
    let r = state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| retention::get(tx, to, q.weeks, Utc::now()).await)
        .await?;
    Ok(Json(r))
}

/// Redemption conversion per product over a period: views, signed-in viewers, viewers
/// who then redeemed it, orders and units. Needs `reports_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/analytics/conversion", tag = "reports",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ConversionParams),
    responses((status = 200, body = Conversion), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_conversion(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(q): Query<ConversionParams>,
) -> ApiResult<Json<Conversion>> {
    auth.require(Permission::ReportsRead)?;
    let to = q.to.as_deref().map(parse_day).transpose()?;
    let c = state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| conversion::get(tx, to, q.days, q.limit, Utc::now()).await)
        .await?;
    Ok(Json(c))
}

/// Points velocity of the points spent in a period: the points-weighted median,
/// quartiles and mean of the local days between earning and spending, per currency,
/// with the points per age band. Needs `reports_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/analytics/velocity", tag = "reports",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), PeriodParams),
    responses((status = 200, body = Velocity), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_velocity(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(q): Query<PeriodParams>,
) -> ApiResult<Json<Velocity>> {
    auth.require(Permission::ReportsRead)?;
    let to = q.to.as_deref().map(parse_day).transpose()?;
    let v =
        state.db.read(&auth.tenant, &auth.actor(), async |tx| velocity::get(tx, to, q.days, Utc::now()).await).await?;
    Ok(Json(v))
}

/// Search terms of a period: the most searched (normalised) terms and those that most
/// often found nothing. Needs `reports_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/analytics/searches", tag = "reports",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), SearchParams),
    responses((status = 200, body = SearchReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_searches(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(q): Query<SearchParams>,
) -> ApiResult<Json<SearchReport>> {
    auth.require(Permission::ReportsRead)?;
    let to = q.to.as_deref().map(parse_day).transpose()?;
    let s = state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| searches::get(tx, to, q.days, q.limit, Utc::now()).await)
        .await?;
    Ok(Json(s))
}

/// A member's browse record: the products they viewed while signed in, most recent
/// first (the last 200 products, views of the last 90 days). Needs `reports_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members/{id}/browse-record", tag = "reports",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "member id")),
    responses((status = 200, body = BrowseRecord), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_browse_record(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
) -> ApiResult<Json<BrowseRecord>> {
    auth.require(Permission::ReportsRead)?;
    let r = state.db.read(&auth.tenant, &auth.actor(), async |tx| browsing::get(tx, id, Utc::now()).await).await?;
    Ok(Json(r))
}
