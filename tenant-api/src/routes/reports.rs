//! The mall's reports for its staff (issue 13 points 6-7): the dashboard (SPEC B1) and
//! finance (B4), both read from rollups the writes keep up to date.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate, Utc};
use platform::error::Error;
use platform::rbac::Permission;
use platform::reports::dashboard::{self, Dashboard};
use platform::reports::finance::{self, FinanceReport};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::settlement::PeriodLabel;
use crate::doc::{Forbidden, Invalid, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query, StaffAuth};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_dashboard)).routes(routes!(get_finance)).routes(routes!(finance_csv))
}

/// A local day from the year 2000 on (a day that every month has, like the periods; a
/// later day of a month is accepted too).
pub(crate) struct DayLabel;

impl utoipa::PartialSchema for DayLabel {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[2-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"))
            .description(Some("a day (YYYY-MM-DD) of the mall's time zone"))
            .into()
    }
}
impl utoipa::ToSchema for DayLabel {}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct DashboardParams {
    /// How many local days, ending with `to`: 1 to 92 (default 14).
    #[param(minimum = 1, maximum = 92)]
    days: Option<i64>,
    /// The last day (default: today in the mall's time zone).
    #[param(value_type = Option<DayLabel>, inline)]
    to: Option<String>,
}

pub(crate) fn parse_day(s: &str) -> Result<NaiveDate, Error> {
    let bad = || Error::invalid_field("to", "a day YYYY-MM-DD from 2000 on");
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
    if s.len() != 10 || !(2000..=9999).contains(&d.year()) {
        return Err(bad());
    }
    Ok(d)
}

/// The dashboard: per local day new and active members, points issued, spent and
/// expired per currency, orders and units, page views, searches and unique visitors;
/// the hot products. Needs `reports_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/reports/dashboard", tag = "reports",
    security(("staff_jwt" = [])), params(TenantSlug, DashboardParams),
    responses((status = 200, body = Dashboard), Forbidden, Invalid))]
async fn get_dashboard(auth: StaffAuth, Query(q): Query<DashboardParams>) -> ApiResult<Json<Dashboard>> {
    auth.require(Permission::ReportsRead)?;
    let to = q.to.as_deref().map(parse_day).transpose()?;
    let days = q.days.unwrap_or(platform::reports::bounds::DASHBOARD_DAYS_DEFAULT);
    let d = auth
        .state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| dashboard::get(tx, to, days, Utc::now()).await)
        .await?;
    Ok(Json(d))
}

/// The finance report of a period: per currency opening + issued − spent + returned −
/// expired + adjusted + transferred = closing (exactly the ledger's entries), the points
/// liability at the mall's point value, and per product what redemptions cost against
/// the value of the points taken. Needs `finance_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/reports/finance/{period}", tag = "reports",
    security(("staff_jwt" = [])),
    params(TenantSlug,
        ("period" = inline(PeriodLabel), Path, description = "a month (YYYY-MM) or a day (YYYY-MM-DD) of the mall's time zone")),
    responses((status = 200, body = FinanceReport), Forbidden, Invalid))]
async fn get_finance(auth: StaffAuth, PathId(period): PathId<String>) -> ApiResult<Json<FinanceReport>> {
    Ok(Json(auth.read(Permission::FinanceRead, async |tx| finance::report(tx, &period).await).await?))
}

/// The finance report of a period as CSV (UTF-8 with a byte order mark): a row per
/// currency, then a row per product. Needs `finance_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/reports/finance/{period}/csv", tag = "reports",
    security(("staff_jwt" = [])),
    params(TenantSlug,
        ("period" = inline(PeriodLabel), Path, description = "a month (YYYY-MM) or a day (YYYY-MM-DD) of the mall's time zone")),
    responses((status = 200, content_type = "text/csv"), Forbidden, Invalid))]
async fn finance_csv(auth: StaffAuth, PathId(period): PathId<String>) -> ApiResult<Response> {
    let r = auth.read(Permission::FinanceRead, async |tx| finance::report(tx, &period).await).await?;
    let name = format!("attachment; filename=\"finance-{}.csv\"", r.period);
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, name)],
        finance::csv(&r)?,
    )
        .into_response())
}
