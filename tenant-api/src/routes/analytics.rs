//! The mall's analytics for its staff (issue 13 point 8, SPEC B7): retention of new
//! members by registration week, redemption conversion per product, points velocity,
//! search terms, and a member's browse record. All need `reports_read`; every period is
//! bounded (a longer one is a 422 `period_too_long`).

use chrono::{NaiveDate, Utc};
use platform::analytics::browsing::{self, BrowseRecord};
use platform::analytics::conversion::{self, Conversion};
use platform::analytics::retention::{self, Retention};
use platform::analytics::searches::{self, SearchReport};
use platform::analytics::velocity::{self, Velocity};
use platform::rbac::Permission;
use platform::tx::TenantTx;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;

use super::reports::{DayLabel, parse_day};
use crate::doc::{Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query, StaffAuth};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        get_retention;
        get_conversion;
        get_velocity;
        get_searches;
        get_browse_record;
    ]
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

/// One report of a period ending `to` (a local day, checked here; none: today). Needs
/// `reports_read`.
async fn report<T>(
    auth: &StaffAuth,
    to: Option<&str>,
    read: impl AsyncFnOnce(&mut TenantTx, Option<NaiveDate>) -> platform::Result<T>,
) -> ApiResult<Json<T>> {
    auth.require(Permission::ReportsRead)?;
    let to = to.map(parse_day).transpose()?;
    Ok(Json(auth.state.db.read(&auth.tenant, &auth.actor(), async |tx| read(tx, to).await).await?))
}

/// A report route of `report`: `GET $path` with query `$params`, answering `$out` from
/// `|tx, to, q| read`. Needs `reports_read`.
macro_rules! report_route {
    ($(#[doc = $doc:tt])* $name:ident, $path:tt, $params:ident, $out:ident, |$tx:ident, $to:ident, $q:ident| $read:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = "reports", security(("staff_jwt" = [])), params(TenantSlug, $params),
    responses((status = 200, body = $out), Forbidden, Invalid))]
        async fn $name(
            auth: StaffAuth,
            Query($q): Query<$params>,
        ) -> ApiResult<Json<$out>> {
            report(&auth, $q.to.as_deref(), async |$tx, $to| $read).await
        }
    };
}

report_route! {
    /// Retention of new members: per registration week of the mall's zone, the members who
    /// registered and how many of them were active on the 1st, 7th and 30th local day
    /// after registering (counted once that day has ended). Needs `reports_read`.
    get_retention, "/v1/tenants/{tenant}/staff/analytics/retention", RetentionParams, Retention,
    |tx, to, q| retention::get(tx, to, q.weeks, Utc::now()).await
}

report_route! {
    /// Redemption conversion per product over a period: views, signed-in viewers, viewers
    /// who then redeemed it, orders and units. Needs `reports_read`.
    get_conversion, "/v1/tenants/{tenant}/staff/analytics/conversion", ConversionParams, Conversion,
    |tx, to, q| conversion::get(tx, to, q.days, q.limit, Utc::now()).await
}

report_route! {
    /// Points velocity of the points spent in a period: the points-weighted median,
    /// quartiles and mean of the local days between earning and spending, per currency,
    /// with the points per age band. Needs `reports_read`.
    get_velocity, "/v1/tenants/{tenant}/staff/analytics/velocity", PeriodParams, Velocity,
    |tx, to, q| velocity::get(tx, to, q.days, Utc::now()).await
}

report_route! {
    /// Search terms of a period: the most searched (normalised) terms and those that most
    /// often found nothing. Needs `reports_read`.
    get_searches, "/v1/tenants/{tenant}/staff/analytics/searches", SearchParams, SearchReport,
    |tx, to, q| searches::get(tx, to, q.days, q.limit, Utc::now()).await
}

/// A member's browse record: the products they viewed while signed in, most recent
/// first (the last 200 products, views of the last 90 days). Needs `reports_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members/{id}/browse-record", tag = "reports",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "member id")),
    responses((status = 200, body = BrowseRecord), Forbidden, NotFound))]
async fn get_browse_record(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<BrowseRecord>> {
    let r = auth.read(Permission::ReportsRead, async |tx| browsing::get(tx, id, Utc::now()).await).await?;
    Ok(Json(r))
}
