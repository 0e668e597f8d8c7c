//! Provider-facing mall routes: the signed payment callback of the merchant's checkout
//! and tracking updates pushed by its logistics system.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use platform::audit::Actor;
use platform::mall::orders::{self, Order};
use platform::mall::payments::{self, PaymentNotice};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::doc::{Conflict, Invalid, NotFound, TenantSlug, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{Json, PartnerAuth, PathId, TenantPath};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(payment_callback)).routes(routes!(tracking))
}

/// The merchant's checkout reports a paid cash part (O4). Signed: `X-Timestamp` (Unix
/// seconds) and `X-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">` with the
/// mall's payment secret. Repeats are answered the same.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/payments/callback", tag = "partner",
    params(TenantSlug, ("X-Timestamp" = String, Header, description = "Unix seconds"),
        ("X-Signature" = String, Header, description = "sha256=<hex>")), request_body = PaymentNotice,
    responses((status = 200, body = Order), Unauthorized, Conflict, Invalid))]
async fn payment_callback(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Order>> {
    let now = Utc::now();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let with = payments::Verifier { vault: &state.vault, tenant_id: tenant.id, now };
    let provider = Actor::system("provider:payment");
    let order = state
        .db
        .write(&tenant, &provider, async |tx| {
            // The signature first: an unsigned body is not even read.
            payments::verify(tx, &with, header("x-timestamp"), header("x-signature"), &body).await?;
            let notice: PaymentNotice = crate::input::parse_bytes(&body)?;
            payments::apply(tx, &notice, now).await
        })
        .await?;
    Ok(Json(order))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Tracking {
    /// E.g. "in_transit", "delivered".
    #[schema(min_length = 1, max_length = 50)]
    status: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    description: String,
}

/// The merchant's logistics system pushes a tracking update of a shipped order (O5);
/// the member sees it on the order. Needs scope `orders:write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/orders/{order_no}/tracking", tag = "partner",
    security(("api_key" = [])), params(TenantSlug, ("order_no" = String, Path, description = "order number")),
    request_body = Tracking, responses((status = 200, body = Order), NotFound, Conflict))]
async fn tracking(
    auth: PartnerAuth,
    PathId(order_no): PathId<String>,
    Json(body): Json<Tracking>,
) -> ApiResult<Json<Order>> {
    let o = auth
        .write("orders:write", async |tx| {
            orders::push_tracking(tx, &order_no, &body.status, &body.description, Utc::now()).await
        })
        .await?;
    Ok(Json(o))
}
