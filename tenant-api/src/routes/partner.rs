//! Partner (server-to-server) routes, authenticated by an API key of the tenant.

use platform::members::{self, Member};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::doc::{Forbidden, NotFound, TenantSlug, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{Json, PartnerAuth, PathId};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whoami)).routes(routes!(get_member))
}

#[derive(Serialize, utoipa::ToSchema)]
struct KeyInfo {
    tenant: String,
    key_id: i64,
    scopes: Vec<String>,
}

/// Which tenant and scopes this API key has. Any scope.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/partner/whoami", tag = "partner", security(("api_key" = [])),
    params(TenantSlug), responses((status = 200, body = KeyInfo), Unauthorized, Forbidden))]
async fn whoami(auth: PartnerAuth) -> Json<KeyInfo> {
    Json(KeyInfo { tenant: auth.tenant.slug.clone(), key_id: auth.key.key_id, scopes: auth.key.scopes.clone() })
}

/// One member. Needs scope `members:read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/partner/members/{id}", tag = "partner", security(("api_key" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "member id")),
    responses((status = 200, body = Member), Unauthorized, Forbidden, NotFound))]
async fn get_member(auth: PartnerAuth, PathId(id): PathId<i64>) -> ApiResult<Json<Member>> {
    auth.key.require("members:read")?;
    Ok(Json(members::get(&auth.state.db, &auth.tenant, id).await?))
}
