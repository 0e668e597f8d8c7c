//! Posting events (R1, P2): partners post any event type in batches; a member's app posts
//! the member-side types. The event id makes each event idempotent.

use platform::rules::pipeline::{self, IncomingEvent, Outcome};
use platform::rules::{MEMBER_EVENTS, MemberEventType, bounds};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::doc::{Forbidden, Invalid, TenantSlug, TooMany, Unauthorized, Unavailable};
use crate::error::ApiResult;
use crate::extract::{EventSlot, Json, MemberAuth, PartnerAuth};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(partner_events)).routes(routes!(member_event))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EventBatch {
    /// 1 to 100 events, processed in order in one transaction (each on its own).
    #[schema(min_items = 1, max_items = 100)]
    events: Vec<IncomingEvent>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Results {
    results: Vec<Outcome>,
}

/// Posts events for members (single or batched, at most 100). Each runs through the
/// mall's rules; an event id already seen returns its first result. Needs scope
/// `events:write`. A mall runs a bounded number of batches at once (its `limits`);
/// beyond them a batch waits up to a second, then is answered 429 `tenant_busy` with
/// `Retry-After`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/partner/events", tag = "partner", security(("api_key" = [])),
    params(TenantSlug), request_body = EventBatch,
    responses((status = 200, body = Results), Forbidden, Invalid, TooMany, Unavailable))]
async fn partner_events(
    EventSlot(slot): EventSlot,
    auth: PartnerAuth,
    Json(body): Json<EventBatch>,
) -> ApiResult<Json<Results>> {
    auth.key.require("events:write")?;
    if body.events.len() > bounds::BATCH_EVENTS_MAX {
        return Err(platform::Error::invalid_field("events", format!("at most {}", bounds::BATCH_EVENTS_MAX)).into());
    }
    let results =
        pipeline::process_admitted(&auth.state.db, &auth.state.rules, &auth.tenant, "partner", &body.events, slot)
            .await?;
    Ok(Json(Results { results }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MemberEvent {
    /// Unique per event from this member's app.
    #[schema(min_length = 1, max_length = 150)]
    id: String,
    /// One of: logged_in, checked_in, read, favorited, commented, liked, shared, ad_viewed, survey_completed.
    #[serde(rename = "type")]
    #[schema(value_type = MemberEventType)]
    kind: String,
    /// A JSON object of at most 8 KiB.
    #[serde(default)]
    #[schema(value_type = Option<platform::doc::JsonObject>)]
    data: serde_json::Value,
}

/// Posts an event from the member's own app (check-in, read, share…).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/me/events", tag = "members", security(("member_jwt" = [])),
    params(TenantSlug), request_body = MemberEvent,
    responses((status = 200, body = Outcome), Unauthorized, Invalid, TooMany, Unavailable))]
async fn member_event(auth: MemberAuth, Json(body): Json<MemberEvent>) -> ApiResult<Json<Outcome>> {
    if !MEMBER_EVENTS.contains(&body.kind.as_str()) {
        return Err(platform::Error::invalid_field(
            "type",
            format!("a member's app may post: {}", MEMBER_EVENTS.join(", ")),
        )
        .into());
    }
    let ev =
        IncomingEvent { id: body.id, kind: body.kind, member_id: auth.member_id, occurred_at: None, data: body.data };
    let source = format!("member:{}", auth.member_id);
    let mut results = pipeline::process(&auth.state.db, &auth.state.rules, &auth.tenant, &source, &[ev]).await?;
    Ok(Json(results.remove(0)))
}
