//! Member segments and the merchant's messages to members (SPEC M5, K6): saved segments
//! (list, save, change, delete), how many members a filter or segment reaches, the
//! members of a segment as CSV, and messages to every member or a segment, sent now or
//! scheduled, with their read counts. Reading needs `members_read`; saving segments
//! `members_write`; writing or cancelling messages `messages_send` (owner, operator).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use platform::broadcasts::{self, Broadcast, BroadcastInput};
use platform::limits::members::EXPORT_ROWS_MAX;
use platform::member_csv;
use platform::rbac::Permission;
use platform::segments::{self, MemberFilter, Segment, SegmentCount, SegmentInput, SegmentParam};
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query, StaffAuth};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list_segments, create_segment;
        update_segment, delete_segment;
        count_members;
        export_members;
        list_broadcasts, create_broadcast;
        get_broadcast;
        cancel_broadcast;
    ]
}

/// The mall's saved segments, by name. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/segments", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<Segment>), Forbidden))]
async fn list_segments(auth: StaffAuth) -> ApiResult<Json<Vec<Segment>>> {
    Ok(Json(auth.read(Permission::MembersRead, async |tx| segments::list(tx).await).await?))
}

/// Saves a segment: a name and a member filter (at most 200 per mall, names unique:
/// 409). Needs `members_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/segments", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = SegmentInput,
    responses((status = 201, body = Segment), Forbidden, Conflict, Invalid))]
async fn create_segment(auth: StaffAuth, Json(body): Json<SegmentInput>) -> ApiResult<(StatusCode, Json<Segment>)> {
    let saved = auth.write(Permission::MembersWrite, async |tx| segments::create(tx, &body).await).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Replaces a segment's name and filter. Needs `members_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/segments/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "segment id")), request_body = SegmentInput,
    responses((status = 200, body = Segment), Forbidden, NotFound, Conflict, Invalid))]
async fn update_segment(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Json(body): Json<SegmentInput>,
) -> ApiResult<Json<Segment>> {
    Ok(Json(auth.write(Permission::MembersWrite, async |tx| segments::update(tx, id, &body).await).await?))
}

/// Deletes a segment; messages already written for it keep their recipients. Needs
/// `members_write`.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/staff/segments/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "segment id")), responses((status = 204), Forbidden, NotFound))]
async fn delete_segment(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<StatusCode> {
    auth.write(Permission::MembersWrite, async |tx| segments::delete(tx, id).await).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many members a filter (or a saved segment, narrowed by any filter given) reaches
/// now, counted up to 1,000,000. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members/count", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, SegmentParam, MemberFilter),
    responses((status = 200, body = SegmentCount), Forbidden, NotFound, Invalid))]
async fn count_members(
    auth: StaffAuth,
    Query(seg): Query<SegmentParam>,
    Query(f): Query<MemberFilter>,
) -> ApiResult<Json<SegmentCount>> {
    Ok(Json(
        auth.read(Permission::MembersRead, async |tx| {
            let filter = segments::resolve(tx, &seg, &f).await?;
            segments::count(tx, &filter).await
        })
        .await?,
    ))
}

/// The members of a filter or saved segment as CSV (UTF-8 with a byte order mark for
/// Excel), oldest first, at most 100,000; the header `X-Truncated: true` says more
/// matched. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members/export", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, SegmentParam, MemberFilter),
    responses((status = 200, content_type = "text/csv"), Forbidden, NotFound, Invalid))]
async fn export_members(
    auth: StaffAuth,
    Query(seg): Query<SegmentParam>,
    Query(f): Query<MemberFilter>,
) -> ApiResult<Response> {
    let (csv, more) = auth
        .read(Permission::MembersRead, async |tx| {
            let filter = segments::resolve(tx, &seg, &f).await?;
            member_csv::export(tx, &filter, EXPORT_ROWS_MAX).await
        })
        .await?;
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"members.csv\""),
        (header::HeaderName::from_static("x-truncated"), if more { "true" } else { "false" }),
    ];
    Ok((headers, csv).into_response())
}

/// The mall's messages to members, newest first, with recipients and read counts.
/// Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/broadcasts", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, PageQuery), responses((status = 200, body = Page<Broadcast>), Forbidden))]
async fn list_broadcasts(auth: StaffAuth, Query(q): Query<PageQuery>) -> ApiResult<Json<Page<Broadcast>>> {
    auth.require(Permission::MembersRead)?;
    let (before, limit) = q.bounds()?;
    let items =
        auth.state.db.read(&auth.tenant, &auth.actor(), async |tx| broadcasts::page(tx, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |b| b.id)))
}

/// Writes a message to every member or a saved segment: sent now (the response has
/// its recipients), or at `send_at` up to a year ahead. It goes to active members'
/// in-app inbox only (no SMS or push). Needs `messages_send`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/broadcasts", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = BroadcastInput,
    responses((status = 201, body = Broadcast), Forbidden, NotFound, Invalid))]
async fn create_broadcast(
    auth: StaffAuth,
    Json(body): Json<BroadcastInput>,
) -> ApiResult<(StatusCode, Json<Broadcast>)> {
    let now = Utc::now();
    let b = auth.write(Permission::MessagesSend, async |tx| broadcasts::create(tx, &body, now).await).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

/// One message to members with its reach. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/broadcasts/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "broadcast id")),
    responses((status = 200, body = Broadcast), Forbidden, NotFound))]
async fn get_broadcast(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Broadcast>> {
    Ok(Json(auth.read(Permission::MembersRead, async |tx| broadcasts::get(tx, id).await).await?))
}

/// Cancels a scheduled message (409 once sent or cancelled). Needs `messages_send`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/broadcasts/{id}/cancel", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "broadcast id")),
    responses((status = 200, body = Broadcast), Forbidden, NotFound, Conflict))]
async fn cancel_broadcast(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Broadcast>> {
    Ok(Json(auth.write(Permission::MessagesSend, async |tx| broadcasts::cancel(tx, id).await).await?))
}
