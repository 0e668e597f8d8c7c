//! A member's points: summary, history, transfers, messages.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use platform::alliance::{self, book};
use platform::ledger::Entry;
use platform::ledger::history::{EntryFilter, PointsSummary};
use platform::ledger::transfers::{self, Transfer, TransferRequest};
use platform::levels::{self, LevelChange};
use platform::members::{self, Identifier};
use platform::messages::{self, Message};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, MemberAuth, Path, Query};
use crate::idempotent::{self, IdempotencyKey, IdempotentJson};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(summary))
        .routes(routes!(entries))
        .routes(routes!(transfer))
        .routes(routes!(messages))
        .routes(routes!(unread_messages))
        .routes(routes!(read_message))
        .routes(routes!(read_all_messages))
        .routes(routes!(level_changes))
}

/// Balances per currency, open lots with their expiry, lock grants and level (L11, V1).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/points", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = PointsSummary), (status = 401, body = ErrorBody)))]
async fn summary(State(state): State<AppState>, auth: MemberAuth) -> ApiResult<Json<PointsSummary>> {
    let s = state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| book::summary(tx, &auth.tenant, auth.member_id).await)
        .await?;
    Ok(Json(s))
}

/// The member's ledger entries, newest first, filtered and paged (L11).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/points/entries", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug"), EntryFilter, PageQuery),
    responses((status = 200, body = Page<Entry>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn entries(
    State(state): State<AppState>,
    auth: MemberAuth,
    Query(filter): Query<EntryFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Entry>>> {
    let (before, limit) = page.bounds()?;
    let items = state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| {
            book::entries(tx, &auth.tenant, auth.member_id, &filter, before, limit).await
        })
        .await?;
    Ok(Json(Page::new(items, limit, |e| e.id.get())))
}

/// Sends points to another member of this mall (L6), within the mall's limits; the
/// alliance's shared points to a member of any mall of the alliance.
/// Needs an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/points/transfers", tag = "members",
    security(("member_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), IdempotencyKey),
    request_body = TransferRequest,
    responses((status = 201, body = Transfer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn transfer(State(state): State<AppState>, auth: MemberAuth, req: IdempotentJson) -> ApiResult<Response> {
    let (idem, req) = req.open::<TransferRequest>()?;
    transfers::check_request(&auth.tenant, &req)?;
    let to = Identifier::parse(&req.to).ok();
    let to_local = match &to {
        Some(id) => members::find_id(&state.db, &auth.tenant, id).await?,
        None => None,
    };
    let tenant = auth.tenant.clone();
    let from = auth.member_id;
    idempotent::write(&state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        let parties = alliance::transfers::parties(tx, &tenant, from, to_local, to.as_ref(), &req.currency).await?;
        transfers::transfer(tx, &tenant, &parties, &req, Utc::now()).await
    })
    .await
}

/// The member's level history (V3): each change with the levels' names, newest first
/// (the latest 50).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/level-changes", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = Vec<LevelChange>), (status = 401, body = ErrorBody)))]
async fn level_changes(State(state): State<AppState>, auth: MemberAuth) -> ApiResult<Json<Vec<LevelChange>>> {
    let member = auth.member_id;
    Ok(Json(state.db.read(&auth.tenant, &auth.actor(), async |tx| levels::changes(tx, member, 50).await).await?))
}

/// In-app messages (expiry reminders, order updates, level changes, the merchant's
/// messages), newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/messages", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug"), PageQuery),
    responses((status = 200, body = Page<Message>), (status = 401, body = ErrorBody)))]
async fn messages(
    State(state): State<AppState>,
    auth: MemberAuth,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Message>>> {
    let (before, limit) = page.bounds()?;
    let member = auth.member_id;
    let items =
        state.db.read(&auth.tenant, &auth.actor(), async |tx| messages::page(tx, member, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |m| m.id)))
}

/// How many unread messages the member has (for a badge).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Unread {
    unread: i64,
}

/// The member's unread message count.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/messages/unread", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = Unread), (status = 401, body = ErrorBody)))]
async fn unread_messages(State(state): State<AppState>, auth: MemberAuth) -> ApiResult<Json<Unread>> {
    let member = auth.member_id;
    let unread = state.db.read(&auth.tenant, &auth.actor(), async |tx| messages::unread(tx, member).await).await?;
    Ok(Json(Unread { unread }))
}

/// Marks one message read (again is fine).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/messages/{id}/read", tag = "members",
    security(("member_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "message id")),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn read_message(
    State(state): State<AppState>,
    auth: MemberAuth,
    Path((_t, id)): Path<(String, i64)>,
) -> ApiResult<Json<Message>> {
    let member = auth.member_id;
    Ok(Json(state.db.write(&auth.tenant, &auth.actor(), async |tx| messages::mark_read(tx, member, id).await).await?))
}

/// How many messages marking all read changed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct MarkedRead {
    marked: u64,
}

/// Marks every message read.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/messages/read-all", tag = "members",
    security(("member_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = MarkedRead), (status = 401, body = ErrorBody)))]
async fn read_all_messages(State(state): State<AppState>, auth: MemberAuth) -> ApiResult<Json<MarkedRead>> {
    let member = auth.member_id;
    let marked =
        state.db.write(&auth.tenant, &auth.actor(), async |tx| messages::mark_all_read(tx, member).await).await?;
    Ok(Json(MarkedRead { marked }))
}
