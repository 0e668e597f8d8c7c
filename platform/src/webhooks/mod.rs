//! Webhooks to the merchant's systems (SPEC P3, issue 12 point 7).
//!
//! - `endpoints`: the mall's endpoints (URL, event types, the `whsec_` secret sealed with
//!   the vault), managed by staff;
//! - `enqueue`: writes one delivery per subscribed endpoint into the outbox
//!   (`webhook_deliveries`) in the transaction of the change it reports;
//! - `deliver`: the worker: claims due deliveries (`FOR UPDATE SKIP LOCKED`, a lease),
//!   sends them signed without a transaction open, records the outcome, retries with
//!   back-off and turns off an endpoint after a run of failures;
//! - `deliveries`: the delivery log, manual replay and the test event;
//! - `owner`: whose endpoints (a mall's or an alliance's): schema, secret context, audit;
//! - `sign`: the Standard Webhooks signature; `address`: which hosts may be called.

pub mod address;
pub mod deliver;
pub mod deliveries;
pub mod endpoints;
pub mod enqueue;
pub mod owner;
pub mod sign;

pub use crate::limits::webhooks as bounds;

/// The event types an endpoint may subscribe to. `budget.low` and `settlement.closed`
/// (the mall's line and pairs of a closed statement) only in malls of an alliance.
pub const EVENT_TYPES: &[&str] = &[
    "points.changed",
    "points.expiring",
    "order.state_changed",
    "level.changed",
    "member.registered",
    "budget.low",
    "settlement.closed",
];

/// The event types an alliance's endpoint may subscribe to: `points.changed` there is
/// an entry of the shared currency (its `member_id` the alliance identity).
pub const ALLIANCE_EVENT_TYPES: &[&str] = &["points.changed", "budget.low", "settlement.closed"];

/// The event staff send to try an endpoint (never subscribed to).
pub const TEST_EVENT: &str = "webhook.test";

/// An event type in the OpenAPI document: one of `EVENT_TYPES`.
pub struct WebhookEventType;

impl utoipa::PartialSchema for WebhookEventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(EVENT_TYPES.iter().copied())).into()
    }
}
impl utoipa::ToSchema for WebhookEventType {}
