//! Webhook endpoints of the mall (SPEC P3): create (the secret shown once), list, read,
//! change, delete, rotate the secret, the delivery log, replay, and a test event. Every
//! route needs `webhooks_manage` (the owner).

use axum::http::StatusCode;
use platform::rbac::Permission;
use platform::webhooks::deliveries::{self, Delivery};
use platform::webhooks::endpoints::{self, CreatedEndpoint, Endpoint, EndpointPatch, NewEndpoint, RotatedSecret};
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, PathId, Query, StaffAuth};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list_webhooks, create_webhook;
        get_webhook, update_webhook, delete_webhook;
        rotate_webhook_secret;
        list_webhook_deliveries;
        send_webhook_test;
        replay_webhook_delivery;
    ]
}

/// The mall's webhook endpoints (never their secrets). Needs `webhooks_manage`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/webhooks", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<Endpoint>), Forbidden))]
async fn list_webhooks(auth: StaffAuth) -> ApiResult<Json<Vec<Endpoint>>> {
    Ok(Json(auth.read(Permission::WebhooksManage, async |tx| endpoints::list(tx).await).await?))
}

/// Creates an endpoint subscribed to event types; the response is the only time its
/// secret (`whsec_…`) is shown. At most 20 per mall (409 `too_many_webhooks`). A URL
/// naming a private, loopback or link-local address is refused (422) unless the operator
/// allows them. Needs `webhooks_manage`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/webhooks", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = NewEndpoint,
    responses((status = 201, body = CreatedEndpoint), Forbidden, Conflict, Invalid))]
async fn create_webhook(
    auth: StaffAuth,
    Json(body): Json<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let (vault, policy) = (&auth.state.vault, auth.state.webhook_addresses);
    let created =
        auth.write(Permission::WebhooksManage, async |tx| endpoints::create(tx, vault, policy, &body).await).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One endpoint. Needs `webhooks_manage`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/webhooks/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 200, body = Endpoint), Forbidden, NotFound))]
async fn get_webhook(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Endpoint>> {
    Ok(Json(auth.read(Permission::WebhooksManage, async |tx| endpoints::get(tx, id).await).await?))
}

/// Changes an endpoint's URL, description, event types, or turns it on or off (on again
/// resets its failure run; off fails its pending deliveries, which a replay can send
/// later). Needs `webhooks_manage`.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/webhooks/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "endpoint id")), request_body = EndpointPatch,
    responses((status = 200, body = Endpoint), Forbidden, NotFound, Invalid))]
async fn update_webhook(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Json(body): Json<EndpointPatch>,
) -> ApiResult<Json<Endpoint>> {
    let policy = auth.state.webhook_addresses;
    Ok(Json(auth.write(Permission::WebhooksManage, async |tx| endpoints::update(tx, policy, id, &body).await).await?))
}

/// Deletes an endpoint with its delivery log. Needs `webhooks_manage`.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/staff/webhooks/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 200, body = Endpoint), Forbidden, NotFound))]
async fn delete_webhook(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Endpoint>> {
    Ok(Json(auth.write(Permission::WebhooksManage, async |tx| endpoints::delete(tx, id).await).await?))
}

/// Replaces the endpoint's secret; the response is the only time the new one is shown.
/// Needs `webhooks_manage`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/webhooks/{id}/rotate-secret", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 200, body = RotatedSecret), Forbidden, NotFound))]
async fn rotate_webhook_secret(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<RotatedSecret>> {
    let vault = &auth.state.vault;
    Ok(Json(auth.write(Permission::WebhooksManage, async |tx| endpoints::rotate(tx, vault, id).await).await?))
}

/// The endpoint's deliveries with their last attempt (status, latency, the first 1 KB
/// of the answer), newest first. Needs `webhooks_manage`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/webhooks/{id}/deliveries", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "endpoint id"), PageQuery),
    responses((status = 200, body = Page<Delivery>), Forbidden, NotFound))]
async fn list_webhook_deliveries(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Delivery>>> {
    auth.require(Permission::WebhooksManage)?;
    let (before, limit) = q.bounds()?;
    let items = auth
        .state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| deliveries::list(tx, id, before, limit).await)
        .await?;
    Ok(Json(Page::new(items, limit, |d| d.id)))
}

/// Queues a `webhook.test` event to the endpoint (delivered by the worker like any
/// other). 409 `webhook_disabled` when it is turned off. Needs `webhooks_manage`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/webhooks/{id}/test", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 202, body = Delivery), Forbidden, NotFound, Conflict))]
async fn send_webhook_test(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let d = auth.write(Permission::WebhooksManage, async |tx| deliveries::send_test(tx, id).await).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// Sends a delivery again, as a new delivery of the same event (same `webhook-id`).
/// 409 `webhook_disabled` when its endpoint is turned off. Needs `webhooks_manage`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/webhook-deliveries/{id}/replay", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "delivery id")),
    responses((status = 202, body = Delivery), Forbidden, NotFound, Conflict))]
async fn replay_webhook_delivery(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let d = auth.write(Permission::WebhooksManage, async |tx| deliveries::replay(tx, id).await).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}
