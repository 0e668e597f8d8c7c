//! Partner points API (P2, L8, L9): credits in batches, debits, holds for checkout,
//! lock grants. Every write takes an `Idempotency-Key`.

use std::collections::HashMap;

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use platform::Error;
use platform::alliance::book;
use platform::ledger::history::PointsSummary;
use platform::ledger::holds::{self, Hold, NewHold};
use platform::ledger::locks::{self, LockGrant, NewLockGrant};
use platform::ledger::post::{self, CreditItem, LotPart};
use platform::ledger::{Entry, Reason, Source, SourceKind, bounds, currencies};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, PartnerAuth, Path};
use crate::idempotent::{self, Idem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(member_points))
        .routes(routes!(credits))
        .routes(routes!(debit))
        .routes(routes!(create_hold))
        .routes(routes!(get_hold))
        .routes(routes!(capture))
        .routes(routes!(void))
        .routes(routes!(refund))
        .routes(routes!(create_grant))
        .routes(routes!(accelerate))
}

fn actor(auth: &PartnerAuth) -> String {
    format!("partner:{}", auth.key.key_id)
}

fn idem(auth: &PartnerAuth, headers: &HeaderMap, path: &str, body: &serde_json::Value) -> Result<Idem, Error> {
    Idem::new(headers, "POST", path, &actor(auth), body)
}

/// A member's balances, lots, grants and level. Needs scope `points:read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/partner/members/{id}/points", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "member id")),
    responses((status = 200, body = PointsSummary), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn member_points(
    State(state): State<AppState>,
    auth: PartnerAuth,
    Path((_t, id)): Path<(String, i64)>,
) -> ApiResult<Json<PointsSummary>> {
    auth.key.require("points:read")?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let s = book::summary(&mut tx, &auth.tenant, id).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(s))
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Credit {
    member_id: i64,
    amount: i64,
    #[serde(default = "points")]
    currency: String,
    #[serde(default)]
    memo: String,
    /// The partner's reference (order number, receipt…).
    #[serde(default)]
    reference: String,
    /// Overrides the mall's expiry policy for this credit.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

fn points() -> String {
    "points".into()
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreditBatch {
    /// 1 to 500 credits, applied in one transaction: all or none.
    items: Vec<Credit>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Credited {
    entries: Vec<Entry>,
}

/// Credits points or experience to members, in a batch of up to 500 applied
/// atomically (P2), in member order. Needs scope `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/points/credits", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("Idempotency-Key" = String, Header, description = "unique per batch")),
    request_body = CreditBatch,
    responses((status = 201, body = Credited), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn credits(
    State(state): State<AppState>,
    auth: PartnerAuth,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &body)?;
    let mut batch: CreditBatch = idempotent::parse(body)?;
    // Entries come back in (member, currency) order, the order accounts are locked in.
    batch.items.sort_by(|a, b| (a.member_id, &a.currency).cmp(&(b.member_id, &b.currency)));
    if batch.items.is_empty() || batch.items.len() > bounds::BATCH_MAX {
        return Err(Error::invalid_field("items", format!("1 to {} credits", bounds::BATCH_MAX)).into());
    }
    for c in &batch.items {
        post::check_amount("amount", c.amount)?;
        if c.memo.chars().count() > 500 || c.reference.chars().count() > 200 {
            return Err(Error::invalid_field("memo", "memo at most 500 characters, reference at most 200").into());
        }
    }
    let tenant = auth.tenant.clone();
    let who = actor(&auth);
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::CREATED, move |tx| {
        Box::pin(async move {
            let now = Utc::now();
            let mut expires: HashMap<String, bool> = HashMap::new();
            let mut items = Vec::with_capacity(batch.items.len());
            for c in batch.items {
                if !expires.contains_key(&c.currency) {
                    expires.insert(c.currency.clone(), currencies::get(tx, &c.currency).await?.expires);
                }
                let expires_at = match c.expires_at {
                    Some(at) if at <= now => return Err(Error::invalid_field("expires_at", "must be in the future")),
                    Some(at) => Some(at),
                    None if expires[&c.currency] => tenant.settings.expiry.expires_at(now),
                    None => None,
                };
                let source = Source::new(SourceKind::Partner, who.clone()).reference(c.reference).memo(c.memo);
                let parts = vec![LotPart { amount: c.amount, expires_at }];
                items.push(CreditItem { member_id: c.member_id, currency: c.currency, parts, source });
            }
            Ok(Credited { entries: book::credit_many(tx, &tenant, items, Reason::Earn, now).await? })
        })
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Debit {
    member_id: i64,
    amount: i64,
    #[serde(default = "points")]
    currency: String,
    #[serde(default)]
    memo: String,
    #[serde(default)]
    reference: String,
}

/// Spends a member's points at once, soonest-expiring first. Needs scope
/// `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/points/debits", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("Idempotency-Key" = String, Header, description = "unique per debit")),
    request_body = Debit,
    responses((status = 201, body = Entry), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn debit(
    State(state): State<AppState>,
    auth: PartnerAuth,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &body)?;
    let d: Debit = idempotent::parse(body)?;
    let who = actor(&auth);
    let tenant = auth.tenant.clone();
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::CREATED, move |tx| {
        Box::pin(async move {
            if !currencies::get(tx, &d.currency).await?.spendable {
                return Err(Error::invalid_field("currency", "this currency cannot be spent"));
            }
            let source = Source::new(SourceKind::Partner, who).reference(d.reference).memo(d.memo);
            book::debit(tx, &tenant, d.member_id, &d.currency, d.amount, Reason::Spend, &source, Utc::now()).await
        })
    })
    .await
}

/// Holds points for the partner's checkout (L9); they are taken from the member at
/// once and come back if the hold is voided or expires. Needs scope `points:write`
/// and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/holds", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("Idempotency-Key" = String, Header, description = "unique per hold")),
    request_body = NewHold,
    responses((status = 201, body = Hold), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_hold(
    State(state): State<AppState>,
    auth: PartnerAuth,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &body)?;
    let h: NewHold = idempotent::parse(body)?;
    let (tenant, who) = (auth.tenant.clone(), actor(&auth));
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::CREATED, move |tx| {
        Box::pin(async move { holds::create(tx, &tenant, &h, &who, Utc::now()).await })
    })
    .await
}

/// One hold. Needs scope `points:read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/partner/holds/{id}", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "hold id")),
    responses((status = 200, body = Hold), (status = 404, body = ErrorBody)))]
async fn get_hold(
    State(state): State<AppState>,
    auth: PartnerAuth,
    Path((_t, id)): Path<(String, i64)>,
) -> ApiResult<Json<Hold>> {
    auth.key.require("points:read")?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let h = holds::get(&mut tx, id).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(h))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AmountBody {
    amount: i64,
}

/// Captures a hold, fully or partly; the uncaptured rest returns to the member.
/// Needs scope `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/holds/{id}/capture", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "hold id"),
        ("Idempotency-Key" = String, Header, description = "unique per capture")),
    request_body = AmountBody,
    responses((status = 200, body = Hold), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn capture(
    State(state): State<AppState>,
    auth: PartnerAuth,
    Path((_t, id)): Path<(String, i64)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &body)?;
    let a: AmountBody = idempotent::parse(body)?;
    let who = actor(&auth);
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::OK, move |tx| {
        Box::pin(async move { holds::capture(tx, id, a.amount, &who, Utc::now()).await })
    })
    .await
}

/// Voids a hold: its points return to the member's original lots. Needs scope
/// `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/holds/{id}/void", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "hold id"),
        ("Idempotency-Key" = String, Header, description = "unique per void")),
    responses((status = 200, body = Hold), (status = 409, body = ErrorBody)))]
async fn void(
    State(state): State<AppState>,
    auth: PartnerAuth,
    Path((_t, id)): Path<(String, i64)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &serde_json::Value::Null)?;
    let who = actor(&auth);
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::OK, move |tx| {
        Box::pin(async move { holds::void(tx, id, &who, Utc::now()).await })
    })
    .await
}

/// Refunds part or all of a captured hold to the original lots (those not expired).
/// Needs scope `points:write` and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/holds/{id}/refund", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "hold id"),
        ("Idempotency-Key" = String, Header, description = "unique per refund")),
    request_body = AmountBody,
    responses((status = 200, body = Hold), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn refund(
    State(state): State<AppState>,
    auth: PartnerAuth,
    Path((_t, id)): Path<(String, i64)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &body)?;
    let a: AmountBody = idempotent::parse(body)?;
    let who = actor(&auth);
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::OK, move |tx| {
        Box::pin(async move { holds::refund(tx, id, a.amount, &who, Utc::now()).await })
    })
    .await
}

/// Locks points for release `per_day` from tomorrow (L5). Needs scope `points:write`
/// and an `Idempotency-Key` header.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/lock-grants", tag = "partner",
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("Idempotency-Key" = String, Header, description = "unique per grant")),
    request_body = NewLockGrant,
    responses((status = 201, body = LockGrant), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_grant(
    State(state): State<AppState>,
    auth: PartnerAuth,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &body)?;
    let g: NewLockGrant = idempotent::parse(body)?;
    let who = actor(&auth);
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::CREATED, move |tx| {
        Box::pin(async move {
            let source = Source::new(SourceKind::Partner, who).memo(g.memo.clone());
            locks::grant(tx, &g, &source, Utc::now()).await
        })
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
    security(("api_key" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "grant id"),
        ("Idempotency-Key" = String, Header, description = "unique per acceleration")),
    request_body = AmountBody,
    responses((status = 200, body = Accelerated), (status = 404, body = ErrorBody)))]
async fn accelerate(
    State(state): State<AppState>,
    auth: PartnerAuth,
    Path((_t, id)): Path<(String, i64)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Response> {
    auth.key.require("points:write")?;
    let idem = idem(&auth, &headers, uri.path(), &body)?;
    let a: AmountBody = idempotent::parse(body)?;
    let (tenant, who) = (auth.tenant.clone(), actor(&auth));
    idempotent::write(&state.db, &auth.tenant, idem, StatusCode::OK, move |tx| {
        Box::pin(async move {
            let source =
                Source::new(SourceKind::Partner, who).reference(format!("grant:{id}")).memo("accelerated release");
            let (grant, released) = locks::accelerate(tx, &tenant, id, a.amount, &source, Utc::now()).await?;
            Ok(Accelerated { grant, released })
        })
    })
    .await
}
