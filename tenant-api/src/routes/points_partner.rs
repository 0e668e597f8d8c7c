//! Partner points API (P2, L8, L9): credits in batches, debits, holds for checkout,
//! lock grants. Every write takes an `Idempotency-Key`.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use platform::alliance::book;
use platform::directory::Tenant;
use platform::ids::HoldId;
use platform::ledger::history::PointsSummary;
use platform::ledger::holds::{self, Hold, NewHold};
use platform::ledger::locks::{self, LockGrant, NewLockGrant};
use platform::ledger::{Entry, Source, SourceKind};
use platform::points::{self, Credit, Debit};
use platform::tx::TenantTx;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, PartnerAuth, PathId};
use crate::idempotent::{self, Idem, IdempotencyKey, IdempotentEmpty, IdempotentJson};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        member_points;
        credits;
        debit;
        create_hold;
        get_hold;
        capture;
        void;
        refund;
        create_grant;
        accelerate;
    ]
}

/// A member's balances, lots, grants and level. Needs scope `points:read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/partner/members/{id}/points", tag = "partner",
    security(("api_key" = [])), params(TenantSlug, ("id" = i64, Path, description = "member id")),
    responses((status = 200, body = PointsSummary), Forbidden, NotFound))]
async fn member_points(auth: PartnerAuth, PathId(id): PathId<i64>) -> ApiResult<Json<PointsSummary>> {
    let tenant = auth.tenant.clone();
    Ok(Json(auth.read("points:read", async |tx| book::summary(tx, &tenant, id).await).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreditBatch {
    /// 1 to 500 credits, applied in one transaction: all or none.
    #[schema(min_items = 1, max_items = 500)]
    items: Vec<Credit>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Credited {
    entries: Vec<Entry>,
}

/// Credits points or experience to members, in a batch of up to 500 applied
/// atomically (P2), in member order. Needs scope `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/points/credits", tag = "partner", security(("api_key" = [])),
    params(TenantSlug, IdempotencyKey), request_body = CreditBatch,
    responses((status = 201, body = Credited), Forbidden, NotFound, Invalid))]
async fn credits(auth: PartnerAuth, req: IdempotentJson) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let (idem, batch) = req.open::<CreditBatch>()?;
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        Ok(Credited { entries: points::credit_batch(tx, batch.items, Utc::now()).await? })
    })
    .await
}

/// Spends a member's points at once, soonest-expiring first. Needs scope
/// `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/points/debits", tag = "partner", security(("api_key" = [])),
    params(TenantSlug, IdempotencyKey), request_body = Debit,
    responses((status = 201, body = Entry), Conflict, Invalid))]
async fn debit(auth: PartnerAuth, req: IdempotentJson) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let (idem, d) = req.open::<Debit>()?;
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        points::debit(tx, d, Utc::now()).await
    })
    .await
}

/// Holds points for the partner's checkout (L9); they are taken from the member at
/// once and come back if the hold is voided or expires. Needs scope `points:write`
/// and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/holds", tag = "partner", security(("api_key" = [])),
    params(TenantSlug, IdempotencyKey), request_body = NewHold,
    responses((status = 201, body = Hold), Conflict, Invalid))]
async fn create_hold(auth: PartnerAuth, req: IdempotentJson) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let (idem, h) = req.open::<NewHold>()?;
    let (tenant, who) = (auth.tenant.clone(), auth.actor().label);
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        holds::create(tx, &tenant, &h, &who, Utc::now()).await
    })
    .await
}

/// One hold. Needs scope `points:read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/partner/holds/{id}", tag = "partner", security(("api_key" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "hold id")), responses((status = 200, body = Hold), NotFound))]
async fn get_hold(auth: PartnerAuth, PathId(id): PathId<HoldId>) -> ApiResult<Json<Hold>> {
    Ok(Json(auth.read("points:read", async |tx| holds::get(tx, id).await).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AmountBody {
    #[schema(value_type = platform::limits::ledger::Amount)]
    amount: i64,
}

/// A move of a hold under its `Idempotency-Key`, by the key's holder, answered 200.
async fn hold_move(
    auth: &PartnerAuth,
    idem: Idem,
    op: impl AsyncFnOnce(&mut TenantTx, &Tenant, &str) -> platform::Result<Hold>,
) -> ApiResult<Response> {
    let who = auth.actor().label;
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::OK, async move |tx| {
        let tenant = tx.tenant().clone();
        op(tx, &tenant, &who).await
    })
    .await
}

/// A route that moves an amount of a hold with `holds::$name`: `POST $path`, answered 200.
/// Needs scope `points:write` and an `Idempotency-Key` header.
macro_rules! hold_amount_route {
    ($(#[doc = $doc:tt])* $name:ident, $path:tt) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "partner", security(("api_key" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "hold id"), IdempotencyKey), request_body = AmountBody,
    responses((status = 200, body = Hold), Conflict, Invalid))]
        async fn $name(
            auth: PartnerAuth,
            PathId(id): PathId<HoldId>,
            req: IdempotentJson,
        ) -> ApiResult<Response> {
            auth.key.require("points:write")?;
            let (idem, a) = req.open::<AmountBody>()?;
            hold_move(&auth, idem, async |tx, tenant, who| {
                holds::$name(tx, tenant, id, a.amount, who, Utc::now()).await
            })
            .await
        }
    };
}

hold_amount_route! {
    /// Captures a hold, fully or partly; the uncaptured rest returns to the member.
    /// Needs scope `points:write` and an `Idempotency-Key` header.
    capture, "/v1/tenants/{tenant}/partner/holds/{id}/capture"
}

/// Voids a hold: its points return to the member's original lots. Needs scope
/// `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/holds/{id}/void", tag = "partner", security(("api_key" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "hold id"), IdempotencyKey),
    responses((status = 200, body = Hold), Conflict))]
async fn void(auth: PartnerAuth, PathId(id): PathId<HoldId>, req: IdempotentEmpty) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = req.open()?;
    hold_move(&auth, idem, async |tx, tenant, who| holds::void(tx, tenant, id, who, Utc::now()).await).await
}

hold_amount_route! {
    /// Refunds part or all of a captured hold to the original lots (those not expired).
    /// Needs scope `points:write` and an `Idempotency-Key` header.
    refund, "/v1/tenants/{tenant}/partner/holds/{id}/refund"
}

/// Locks points for release `per_day` at each of the mall's local midnights (L5). Needs scope `points:write`
/// and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/lock-grants", tag = "partner", security(("api_key" = [])),
    params(TenantSlug, IdempotencyKey), request_body = NewLockGrant,
    responses((status = 201, body = LockGrant), NotFound, Invalid))]
async fn create_grant(auth: PartnerAuth, req: IdempotentJson) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let (idem, g) = req.open::<NewLockGrant>()?;
    let who = auth.actor().label;
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::CREATED, async move |tx| {
        let source = Source::new(SourceKind::Partner, who).memo(g.memo.clone());
        let tenant = tx.tenant().clone();
        platform::alliance::locks::grant(tx, &tenant, &g, &source, Utc::now()).await
    })
    .await
}

#[derive(Serialize, utoipa::ToSchema)]
struct Accelerated {
    grant: LockGrant,
    released: i64,
}

/// Releases part of a lock grant now, ahead of schedule. Needs scope `points:write`
/// and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/lock-grants/{id}/accelerate", tag = "partner",
    security(("api_key" = [])), params(TenantSlug, ("id" = i64, Path, description = "grant id"), IdempotencyKey),
    request_body = AmountBody, responses((status = 200, body = Accelerated), NotFound))]
async fn accelerate(auth: PartnerAuth, PathId(id): PathId<i64>, req: IdempotentJson) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let (idem, a) = req.open::<AmountBody>()?;
    let (tenant, who) = (auth.tenant.clone(), auth.actor().label);
    idempotent::write(&auth.state.db, &auth.tenant, &auth.actor(), idem, StatusCode::OK, async move |tx| {
        let source = Source::new(SourceKind::Partner, who).reference(format!("grant:{id}")).memo("accelerated release");
        let (grant, released) = locks::accelerate(tx, &tenant, id, a.amount, &source, Utc::now()).await?;
        Ok(Accelerated { grant, released })
    })
    .await
}
