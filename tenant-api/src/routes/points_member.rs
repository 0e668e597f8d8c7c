//! A member's points: summary, history, transfers, messages.

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

use crate::doc::{Conflict, Invalid, NotFound, TenantSlug, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{Json, MemberAuth, PathId, Query};
use crate::idempotent::{self, IdempotencyKey, IdempotentJson};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        summary;
        entries;
        transfer;
        messages;
        unread_messages;
        read_message;
        read_all_messages;
        level_changes;
    ]
}

/// Balances per currency, open lots with their expiry, lock grants and level (L11, V1).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/points", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = PointsSummary), Unauthorized))]
async fn summary(auth: MemberAuth) -> ApiResult<Json<PointsSummary>> {
    let s = auth.read(async |tx| book::summary(tx, &auth.tenant, auth.member_id).await).await?;
    Ok(Json(s))
}

/// The member's ledger entries, newest first, filtered and paged (L11).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/points/entries", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, EntryFilter, PageQuery), responses((status = 200, body = Page<Entry>), Unauthorized, Invalid))]
async fn entries(
    auth: MemberAuth,
    Query(filter): Query<EntryFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Entry>>> {
    let (before, limit) = page.bounds()?;
    let items =
        auth.read(async |tx| book::entries(tx, &auth.tenant, auth.member_id, &filter, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |e| e.id.get())))
}

/// Sends points to another member of this mall (L6), within the mall's limits; the
/// alliance's shared points to a member of any mall of the alliance.
/// Needs an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/points/transfers", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, IdempotencyKey), request_body = TransferRequest,
    responses((status = 201, body = Transfer), Conflict, Invalid))]
async fn transfer(auth: MemberAuth, req: IdempotentJson) -> ApiResult<Response> {
    let (idem, req) = req.open::<TransferRequest>()?;
    transfers::check_request(&auth.tenant, &req)?;
    let to = Identifier::parse(&req.to).ok();
    let to_local = match &to {
        Some(id) => members::find_id(&auth.state.db, &auth.tenant, id).await?,
        None => None,
    };
    let tenant = auth.tenant.clone();
    let from = auth.member_id;
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        let parties = alliance::transfers::parties(tx, &tenant, from, to_local, to.as_ref(), &req.currency).await?;
        transfers::transfer(tx, &tenant, &parties, &req, Utc::now()).await
    })
    .await
}

/// The member's level history (V3): each change with the levels' names, newest first
/// (the latest 50).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/level-changes", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<LevelChange>), Unauthorized))]
async fn level_changes(auth: MemberAuth) -> ApiResult<Json<Vec<LevelChange>>> {
    let member = auth.member_id;
    Ok(Json(auth.read(async |tx| levels::changes(tx, member, 50).await).await?))
}

/// In-app messages (expiry reminders, order updates, level changes, the merchant's
/// messages), newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/messages", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, PageQuery), responses((status = 200, body = Page<Message>), Unauthorized))]
async fn messages(auth: MemberAuth, Query(page): Query<PageQuery>) -> ApiResult<Json<Page<Message>>> {
    let (before, limit) = page.bounds()?;
    let member = auth.member_id;
    let items = auth.read(async |tx| messages::page(tx, member, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |m| m.id)))
}

/// How many unread messages the member has (for a badge).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Unread {
    unread: i64,
}

/// The member's unread message count.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/messages/unread", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Unread), Unauthorized))]
async fn unread_messages(auth: MemberAuth) -> ApiResult<Json<Unread>> {
    let member = auth.member_id;
    let unread = auth.read(async |tx| messages::unread(tx, member).await).await?;
    Ok(Json(Unread { unread }))
}

/// Marks one message read (again is fine).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/messages/{id}/read", tag = "members",
    security(("member_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "message id")),
    responses((status = 200, body = Message), Unauthorized, NotFound))]
async fn read_message(auth: MemberAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Message>> {
    let member = auth.member_id;
    Ok(Json(auth.write(async |tx| messages::mark_read(tx, member, id).await).await?))
}

/// How many messages marking all read changed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct MarkedRead {
    marked: u64,
}

/// Marks every message read.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/messages/read-all", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = MarkedRead), Unauthorized))]
async fn read_all_messages(auth: MemberAuth) -> ApiResult<Json<MarkedRead>> {
    let member = auth.member_id;
    let marked = auth.write(async |tx| messages::mark_all_read(tx, member).await).await?;
    Ok(Json(MarkedRead { marked }))
}
