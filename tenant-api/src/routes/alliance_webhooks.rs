//! Webhook endpoints of the alliance (issue 12 point 7): the mall endpoints' routes for
//! alliance admins, on the alliance's own endpoints (`budget.low` of any of its malls and
//! `settlement.closed` with the whole statement), kept in the alliance schema and sent by
//! the same worker.

use axum::http::StatusCode;
use platform::webhooks::deliveries::{self, Delivery};
use platform::webhooks::endpoints::{self, CreatedEndpoint, Endpoint, EndpointPatch, NewEndpoint, RotatedSecret};
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{AllianceSlug, Conflict, Forbidden, Invalid, NotFound};
use crate::error::ApiResult;
use crate::extract::{AllianceAuth, Json, PathId, Query};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list_alliance_webhooks, create_alliance_webhook;
        get_alliance_webhook, update_alliance_webhook, delete_alliance_webhook;
        rotate_alliance_webhook_secret;
        list_alliance_webhook_deliveries;
        send_alliance_webhook_test;
        replay_alliance_webhook_delivery;
    ]
}

/// The alliance's webhook endpoints (never their secrets).
#[utoipa::path(get, path = "/v1/alliances/{alliance}/webhooks", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), responses((status = 200, body = Vec<Endpoint>), Forbidden))]
async fn list_alliance_webhooks(auth: AllianceAuth) -> ApiResult<Json<Vec<Endpoint>>> {
    Ok(Json(auth.read(async |tx| endpoints::list(tx).await).await?))
}

/// Creates an endpoint subscribed to `budget.low` and/or `settlement.closed` (other types 422); the response is the only time its
/// secret (`whsec_…`) is shown. At most 20 per alliance (409 `too_many_webhooks`). A URL
/// naming a private, loopback or link-local address is refused (422) unless the operator
/// allows them.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/webhooks", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug), request_body = NewEndpoint,
    responses((status = 201, body = CreatedEndpoint), Forbidden, Conflict, Invalid))]
async fn create_alliance_webhook(
    auth: AllianceAuth,
    Json(body): Json<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let (vault, policy) = (&auth.state.vault, auth.state.webhook_addresses);
    let created = auth.write(async |tx| endpoints::create(tx, vault, policy, &body).await).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/webhooks/{id}", tag = "alliance", security(("alliance_jwt" = [])),
    params(AllianceSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 200, body = Endpoint), Forbidden, NotFound))]
async fn get_alliance_webhook(auth: AllianceAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Endpoint>> {
    Ok(Json(auth.read(async |tx| endpoints::get(tx, id).await).await?))
}

/// Changes an endpoint's URL, description, event types, or turns it on or off (on again
/// resets its failure run; off fails its pending deliveries, which a replay can send
/// later).
#[utoipa::path(patch, path = "/v1/alliances/{alliance}/webhooks/{id}", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "endpoint id")),
    request_body = EndpointPatch, responses((status = 200, body = Endpoint), Forbidden, NotFound, Invalid))]
async fn update_alliance_webhook(
    auth: AllianceAuth,
    PathId(id): PathId<i64>,
    Json(body): Json<EndpointPatch>,
) -> ApiResult<Json<Endpoint>> {
    let policy = auth.state.webhook_addresses;
    Ok(Json(auth.write(async |tx| endpoints::update(tx, policy, id, &body).await).await?))
}

/// Deletes an endpoint with its delivery log.
#[utoipa::path(delete, path = "/v1/alliances/{alliance}/webhooks/{id}", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 200, body = Endpoint), Forbidden, NotFound))]
async fn delete_alliance_webhook(auth: AllianceAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Endpoint>> {
    Ok(Json(auth.write(async |tx| endpoints::delete(tx, id).await).await?))
}

/// Replaces the endpoint's secret; the response is the only time the new one is shown.
///
#[utoipa::path(post, path = "/v1/alliances/{alliance}/webhooks/{id}/rotate-secret", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 200, body = RotatedSecret), Forbidden, NotFound))]
async fn rotate_alliance_webhook_secret(auth: AllianceAuth, PathId(id): PathId<i64>) -> ApiResult<Json<RotatedSecret>> {
    let vault = &auth.state.vault;
    Ok(Json(auth.write(async |tx| endpoints::rotate(tx, vault, id).await).await?))
}

/// The endpoint's deliveries with their last attempt (status, latency, the first 1 KB
/// of the answer), newest first.
#[utoipa::path(get, path = "/v1/alliances/{alliance}/webhooks/{id}/deliveries", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "endpoint id"), PageQuery),
    responses((status = 200, body = Page<Delivery>), Forbidden, NotFound))]
async fn list_alliance_webhook_deliveries(
    auth: AllianceAuth,
    PathId(id): PathId<i64>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Delivery>>> {
    let (before, limit) = q.bounds()?;
    let items = auth.read(async |tx| deliveries::list(tx, id, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |d| d.id)))
}

/// Queues a `webhook.test` event to the endpoint (delivered by the worker like any
/// other). 409 `webhook_disabled` when it is turned off.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/webhooks/{id}/test", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "endpoint id")),
    responses((status = 202, body = Delivery), Forbidden, NotFound, Conflict))]
async fn send_alliance_webhook_test(
    auth: AllianceAuth,
    PathId(id): PathId<i64>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let d = auth.write(async |tx| deliveries::send_test(tx, id).await).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}

/// Sends a delivery again, as a new delivery of the same event (same `webhook-id`).
/// 409 `webhook_disabled` when its endpoint is turned off.
#[utoipa::path(post, path = "/v1/alliances/{alliance}/webhook-deliveries/{id}/replay", tag = "alliance",
    security(("alliance_jwt" = [])), params(AllianceSlug, ("id" = i64, Path, description = "delivery id")),
    responses((status = 202, body = Delivery), Forbidden, NotFound, Conflict))]
async fn replay_alliance_webhook_delivery(
    auth: AllianceAuth,
    PathId(id): PathId<i64>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let d = auth.write(async |tx| deliveries::replay(tx, id).await).await?;
    Ok((StatusCode::ACCEPTED, Json(d)))
}
