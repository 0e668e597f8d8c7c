//! The member's mall: browse (cached), redeem, orders, reviews, addresses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use platform::audit::Actor;
use platform::ids::{OrderId, ProductId};
use platform::mall::addresses::{self, Address};
use platform::mall::browse::{self, BrowseQuery, CatalogCache, ProductCard};
use platform::mall::catalog::{self, Category, Product};
use platform::mall::order_state::Action;
use platform::mall::orders::{self, NewReview, Order, Review};
use platform::mall::redeem::{self, RedeemRequest};
use platform::reports::visits::Visit;
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, MaybeMember, MemberAuth, PathId, Query, TenantPath};
use crate::idempotent::{self, IdempotencyKey, IdempotentJson};
use crate::pagination::{OffsetPageQuery, Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        products;
        product;
        categories;
        redeem_product;
        my_orders;
        my_order;
        cancel;
        receive;
        review;
        list_addresses, add_address;
        update_address, delete_address;
    ]
}

/// Products members can redeem now, filtered, sorted and paged (C3). Served from a
/// short-lived cache. No credential needed; a search (`q`) is counted for the dashboard,
/// by the member when a member token is sent.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/products", tag = "mall",
    params(TenantSlug, BrowseQuery, OffsetPageQuery), responses((status = 200, body = Page<ProductCard>), Invalid))]
async fn products(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    MaybeMember(member): MaybeMember,
    Query(q): Query<BrowseQuery>,
    Query(page): Query<OffsetPageQuery>,
) -> ApiResult<Response> {
    let (offset, limit) = page.bounds()?;
    let (tid, key) = CatalogCache::page_key(tenant.id, &q, offset, limit);
    let body = match state.catalog.get(tid, &key).await {
        Some(hit) => hit,
        None => {
            let items = state
                .db
                .read(&tenant, &Actor::public(), async |tx| browse::list(tx, &q, offset, limit, Utc::now()).await)
                .await?;
            state.catalog.put(tid, key, &Page::at_offset(items, offset, limit)).await?
        }
    };
    if let Some(k) = q.q.as_deref().filter(|k| !k.trim().is_empty()) {
        let empty = offset == 0 && page_is_empty(&body);
        state.visits.record(&tenant, Visit::Search { q: k, empty }, member, Utc::now());
    }
    Ok(json_bytes(body))
}

/// Whether a serialized `Page` holds no item (its fields are written in order, `items` first).
fn page_is_empty(body: &[u8]) -> bool {
    body.starts_with(br#"{"items":[]"#)
}

/// One product (cached briefly). No credential needed; the view is counted for the
/// dashboard, by the member when a member token is sent.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/products/{id}", tag = "mall",
    params(TenantSlug, ("id" = i64, Path, description = "product id")),
    responses((status = 200, body = Product), NotFound))]
async fn product(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    MaybeMember(member): MaybeMember,
    PathId(id): PathId<ProductId>,
) -> ApiResult<Response> {
    let key = format!("product:{id}");
    if let Some(hit) = state.catalog.get(tenant.id, &key).await {
        state.visits.record(&tenant, Visit::Product(id.get()), member, Utc::now());
        return Ok(json_bytes(hit));
    }
    let p = state.db.read(&tenant, &Actor::public(), async |tx| browse::detail(tx, id, Utc::now()).await).await?;
    state.visits.record(&tenant, Visit::Product(id.get()), member, Utc::now());
    Ok(json_bytes(state.catalog.put(tenant.id, key, &p).await?))
}

/// A cached, already serialized JSON answer.
fn json_bytes(body: axum::body::Bytes) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The mall's categories. No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/categories", tag = "mall", params(TenantSlug),
    responses((status = 200, body = Vec<Category>)))]
async fn categories(State(state): State<AppState>, TenantPath(tenant): TenantPath) -> ApiResult<Json<Vec<Category>>> {
    let c = state.db.read(&tenant, &Actor::public(), async |tx| catalog::categories(tx).await).await?;
    Ok(Json(c))
}

/// Redeems a product (O1): points (and stock) are taken in one transaction; for points
/// + cash the points are held until the cash part is paid. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/redemptions", tag = "mall", security(("member_jwt" = [])),
    params(TenantSlug, IdempotencyKey), request_body = RedeemRequest,
    responses((status = 201, body = Order), Forbidden, Conflict, Invalid))]
async fn redeem_product(auth: MemberAuth, req: IdempotentJson) -> ApiResult<Response> {
    let (idem, req) = req.open::<RedeemRequest>()?;
    if let Some(refusal) = redeem::known_sold_out(&auth.state.catalog, &auth.tenant, &req) {
        return idempotent::refuse_unless_replayed(&auth.state.db, &auth.tenant, &auth.actor(), idem, refusal).await;
    }
    let (tenant, member, catalog) = (auth.tenant.clone(), auth.member_id, auth.state.catalog.clone());
    let answer = idempotent::write_then_last(
        &auth.state.db,
        &auth.tenant,
        &auth.actor(),
        idem,
        StatusCode::CREATED,
        async move |tx| redeem::redeem(tx, &catalog, &tenant, member, &req, Utc::now()).await,
    )
    .await;
    // Only a redemption that went through emitted mall events (a refused one rolled
    // back): a sold-out sale's refusals start no drains.
    if answer.is_ok() {
        auth.state.drain_soon(&auth.tenant);
    }
    answer
}

/// The member's orders, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/orders", tag = "mall", security(("member_jwt" = [])),
    params(TenantSlug, PageQuery), responses((status = 200, body = Page<Order>)))]
async fn my_orders(auth: MemberAuth, Query(page): Query<PageQuery>) -> ApiResult<Json<Page<Order>>> {
    let (before, limit) = page.bounds()?;
    let f = orders::OrderFilter { member_id: Some(auth.member_id), ..Default::default() };
    let items = auth.read(async |tx| orders::list(tx, &f, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |o| o.id.get())))
}

/// One of the member's orders, with shipping and tracking.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/orders/{id}", tag = "mall", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "order id")),
    responses((status = 200, body = Order), NotFound))]
async fn my_order(auth: MemberAuth, PathId(id): PathId<OrderId>) -> ApiResult<Json<Order>> {
    let o = auth.read(async |tx| orders::get_for_member(tx, id, auth.member_id).await).await?;
    Ok(Json(o))
}

async fn member_transition(auth: &MemberAuth, id: OrderId, action: Action) -> ApiResult<Json<Order>> {
    let member = auth.member_id;
    let order = auth.write(async |tx| orders::member_act(tx, id, member, action).await).await?;
    auth.state.drain_soon(&auth.tenant);
    Ok(Json(order))
}

/// Cancels an order before shipment (O6): points go back to their lots, stock returns.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/orders/{id}/cancel", tag = "mall", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "order id")),
    responses((status = 200, body = Order), NotFound, Conflict))]
async fn cancel(auth: MemberAuth, PathId(id): PathId<OrderId>) -> ApiResult<Json<Order>> {
    member_transition(&auth, id, Action::Cancel).await
}

/// Confirms receipt of a shipped order.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/orders/{id}/receive", tag = "mall", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "order id")),
    responses((status = 200, body = Order), NotFound, Conflict))]
async fn receive(auth: MemberAuth, PathId(id): PathId<OrderId>) -> ApiResult<Json<Order>> {
    member_transition(&auth, id, Action::Receive).await
}

/// Reviews a completed order (O8); once per order.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/orders/{id}/review", tag = "mall", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "order id")), request_body = NewReview,
    responses((status = 201, body = Review), Conflict, Invalid))]
async fn review(
    auth: MemberAuth,
    PathId(id): PathId<OrderId>,
    Json(body): Json<NewReview>,
) -> ApiResult<(StatusCode, Json<Review>)> {
    let r = auth.write(async |tx| orders::review(tx, id, auth.member_id, &body).await).await?;
    auth.state.drain_soon(&auth.tenant);
    Ok((StatusCode::CREATED, Json(r)))
}

/// The member's shipping addresses (M3).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/me/addresses", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<Address>)))]
async fn list_addresses(auth: MemberAuth) -> ApiResult<Json<Vec<Address>>> {
    Ok(Json(addresses::list(&auth.state.db, &auth.tenant, auth.member_id).await?))
}

/// Adds a shipping address (at most 20; the first, or one marked default, is the default).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/addresses", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), request_body = Address, responses((status = 201, body = Address), Conflict, Invalid))]
async fn add_address(auth: MemberAuth, Json(a): Json<Address>) -> ApiResult<(StatusCode, Json<Address>)> {
    Ok((StatusCode::CREATED, Json(addresses::add(&auth.state.db, &auth.tenant, auth.member_id, &a).await?)))
}

/// Changes one of the member's addresses (M3): every field as sent; `is_default: true`
/// makes it the default (the default stays so until another one is marked).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/me/addresses/{id}", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "address id")), request_body = Address,
    responses((status = 200, body = Address), NotFound, Conflict, Invalid))]
async fn update_address(auth: MemberAuth, PathId(id): PathId<i64>, Json(a): Json<Address>) -> ApiResult<Json<Address>> {
    Ok(Json(addresses::update(&auth.state.db, &auth.tenant, auth.member_id, id, &a).await?))
}

/// Deletes one of the member's addresses.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/me/addresses/{id}", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "address id")), responses((status = 204), NotFound))]
async fn delete_address(auth: MemberAuth, PathId(id): PathId<i64>) -> ApiResult<StatusCode> {
    addresses::delete(&auth.state.db, &auth.tenant, auth.member_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_page_is_told_from_its_bytes() {
        let empty = serde_json::to_vec(&Page::<i64>::at_offset(vec![], 0, 20)).unwrap();
        assert!(page_is_empty(&empty));
        let one = serde_json::to_vec(&Page::at_offset(vec![1i64], 0, 20)).unwrap();
        assert!(!page_is_empty(&one));
    }
}
