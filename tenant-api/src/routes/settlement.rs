//! Settlement of the shared points between an alliance's malls (SPEC A4): alliance admins
//! read a period's statement (a preview until it is closed), close it, drill any figure
//! down to its ledger entries and export it as CSV; a mall's staff read its statements.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::alliance::budgets;
use platform::alliance::settlement::drill::{Figure, FigureEntry};
use platform::alliance::settlement::{self, Closed, DrillQuery, Statement, period};
use platform::rbac::Permission;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{AllianceSlug, Conflict, Forbidden, Invalid, NotFound, TenantSlug, Unauthorized};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{AllianceAuth, Json, PathId, Query, StaffAuth};
use crate::pagination::{Cursor, Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        statement;
        close;
        figure_entries;
        export;
        closed;
        own_statement;
    ]
}

/// A settlement period in the OpenAPI document: a month or a day from the year 2000 on
/// (a day that the month has: `Period::parse` refuses 2026-02-30 with 422).
pub(crate) struct PeriodLabel;

impl utoipa::PartialSchema for PeriodLabel {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[2-9][0-9]{3}-(0[1-9]|1[0-2])(-(0[1-9]|1[0-9]|2[0-8]))?$"))
            .description(Some(period::FORMAT))
            .into()
    }
}
impl utoipa::ToSchema for PeriodLabel {}

/// Which figure of which mall, and for `redeemed` or `returned` optionally only the
/// points one mall issued (a cell of the pairwise matrix).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct DrillParams {
    /// The mall's slug.
    mall: String,
    #[param(inline)]
    figure: Figure,
    /// The issuing mall's slug.
    issuer: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<Cursor>, inline)]
    cursor: Option<String>,
}

/// A period's statement: the frozen one once closed, else a preview of closing it now.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/settlement/{period}", tag = "alliance",
    security(("alliance_jwt" = [])),
    params(AllianceSlug,
        ("period" = inline(PeriodLabel), Path, description = "a month (YYYY-MM) or a day (YYYY-MM-DD) of the alliance's time zone")),
    responses((status = 200, body = Statement), Unauthorized, Conflict, Invalid))]
async fn statement(auth: AllianceAuth, PathId(period): PathId<String>) -> ApiResult<Json<Statement>> {
    Ok(Json(settlement::get(&auth.state.db, &auth.alliance, &period).await?))
}

/// Closes a period that is over: its statement is frozen; entries written later go to the
/// next period. Periods close in order.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/settlement/{period}/close", tag = "alliance",
    security(("alliance_jwt" = [])),
    params(AllianceSlug,
        ("period" = inline(PeriodLabel), Path, description = "a month (YYYY-MM) or a day (YYYY-MM-DD) of the alliance's time zone")),
    responses((status = 201, body = Statement), Unauthorized,
        (status = 409, description = "`period_not_over`, `period_closed` or `period_order`", body = ErrorBody), Invalid))]
async fn close(auth: AllianceAuth, PathId(period): PathId<String>) -> ApiResult<(StatusCode, Json<Statement>)> {
    let s = settlement::close(&auth.state.db, &auth.alliance, &period, chrono::Utc::now(), &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// The ledger entries behind one figure of a period's statement, newest first.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/settlement/{period}/entries", tag = "alliance",
    security(("alliance_jwt" = [])),
    params(AllianceSlug,
        ("period" = inline(PeriodLabel), Path, description = "a month (YYYY-MM) or a day (YYYY-MM-DD)"), DrillParams),
    responses((status = 200, body = Page<FigureEntry>), Unauthorized, NotFound, Invalid))]
async fn figure_entries(
    auth: AllianceAuth,
    PathId(period): PathId<String>,
    Query(q): Query<DrillParams>,
) -> ApiResult<Json<Page<FigureEntry>>> {
    let (before, limit) = PageQuery { limit: q.limit, cursor: q.cursor.clone() }.bounds()?;
    let drill = DrillQuery { mall: &q.mall, figure: q.figure, issuer: q.issuer.as_deref(), before, limit };
    let items = settlement::entries(&auth.state.db, &auth.alliance, &period, &drill).await?;
    Ok(Json(Page::new(items, limit, |e| e.entry_id.get())))
}

/// A period's statement as CSV: a row per mall, then a row per pair of malls.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/settlement/{period}/csv", tag = "alliance",
    security(("alliance_jwt" = [])),
    params(AllianceSlug,
        ("period" = inline(PeriodLabel), Path, description = "a month (YYYY-MM) or a day (YYYY-MM-DD)")),
    responses((status = 200, content_type = "text/csv"), Unauthorized, Invalid))]
async fn export(auth: AllianceAuth, PathId(period): PathId<String>) -> ApiResult<Response> {
    let s = settlement::get(&auth.state.db, &auth.alliance, &period).await?;
    let name = format!("attachment; filename=\"settlement-{}.csv\"", s.period);
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, name)],
        settlement::csv(&s)?,
    )
        .into_response())
}

/// The closed statements, newest first.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/settlement", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug, PageQuery), responses((status = 200, body = Page<Closed>), Unauthorized))]
async fn closed(auth: AllianceAuth, Query(q): Query<PageQuery>) -> ApiResult<Json<Page<Closed>>> {
    let (before, limit) = q.bounds()?;
    let items = settlement::list(&auth.state.db, &auth.alliance, before, limit).await?;
    Ok(Json(Page::new(items, limit, |c| c.id)))
}

/// The alliance's statement of a period as the mall sees it: its own line and the pairs
/// it is part of. Needs `settings_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/alliance-settlement/{period}", tag = "staff",
    security(("staff_jwt" = [])),
    params(TenantSlug,
        ("period" = inline(PeriodLabel), Path, description = "a month (YYYY-MM) or a day (YYYY-MM-DD) of the alliance's time zone")),
    responses((status = 200, body = Statement), Forbidden, NotFound, Conflict, Invalid))]
async fn own_statement(auth: StaffAuth, PathId(period): PathId<String>) -> ApiResult<Json<Statement>> {
    auth.require(Permission::SettingsRead)?;
    let alliance = budgets::alliance_of(&auth.state.db, &auth.tenant).await?;
    let mut s = settlement::get(&auth.state.db, &alliance, &period).await?;
    let me = Some(auth.tenant.slug.clone());
    s.lines.retain(|l| l.mall == me);
    s.pairs.retain(|p| p.issuer == me || Some(&p.redeemer) == me.as_ref());
    Ok(Json(s))
}
