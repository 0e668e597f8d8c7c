//! CRM sync for partner servers (SPEC P4): members upserted in bulk by the partner's own
//! ids (a field not sent is left alone), and their balances and levels read in bulk.

use platform::crm::{self, BulkBalances, MemberPatch};
use platform::members::Member;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::doc::{Invalid, TenantSlug};
use crate::error::{ApiResult, ErrorDetail, detail_of};
use crate::extract::{Json, PartnerAuth};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(bulk_upsert)).routes(routes!(bulk_balances))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkMembers {
    /// 1 to 1000 members.
    #[schema(min_items = 1, max_items = 1000)]
    members: Vec<MemberPatch>,
}

/// What became of one member of a bulk upsert.
#[derive(Serialize, utoipa::ToSchema)]
struct Synced {
    external_id: String,
    /// `created`, `updated` or `failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<Member>,
    /// Why it failed (the same code and message the single upsert would answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BulkSynced {
    /// In the order sent.
    results: Vec<Synced>,
}

/// Creates or updates up to 1000 members by the partner's ids (P4), each on its own: one
/// refused (e.g. a phone another member holds) does not stop the others. Fields not
/// sent are left alone. Needs scope `members:write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/members/bulk", tag = "partner", security(("api_key" = [])),
    params(TenantSlug), request_body = BulkMembers, responses((status = 200, body = BulkSynced), Invalid))]
async fn bulk_upsert(auth: PartnerAuth, Json(body): Json<BulkMembers>) -> ApiResult<Json<BulkSynced>> {
    auth.key.require("members:write")?;
    let done = crm::upsert_many(&auth.state.db, &auth.tenant, &body.members).await?;
    let results = body
        .members
        .into_iter()
        .zip(done)
        .map(|(p, r)| match r {
            Ok((m, created)) => Synced {
                external_id: p.external_id,
                status: if created { "created" } else { "updated" },
                member: Some(m),
                error: None,
            },
            Err(e) => Synced { external_id: p.external_id, status: "failed", member: None, error: Some(detail_of(e)) },
        })
        .collect();
    Ok(Json(BulkSynced { results }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ExternalIds {
    /// 1 to 1000 of the partner's member ids.
    #[schema(min_items = 1, max_items = 1000)]
    external_ids: Vec<String>,
}

/// Balances (every currency, the alliance's shared one included; lapsed points excluded)
/// and levels of up to 1000 members by the partner's ids. Needs scope `points:read`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/members/balances", tag = "partner",
    security(("api_key" = [])), params(TenantSlug), request_body = ExternalIds,
    responses((status = 200, body = BulkBalances), Invalid))]
async fn bulk_balances(auth: PartnerAuth, Json(body): Json<ExternalIds>) -> ApiResult<Json<BulkBalances>> {
    auth.key.require("points:read")?;
    Ok(Json(crm::balances(&auth.state.db, &auth.tenant, &body.external_ids).await?))
}
