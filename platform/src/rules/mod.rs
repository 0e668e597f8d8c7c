//! Earn rules (SPEC R1-R7): the rule store (versions, parameters, order), the cache of
//! compiled rules with hot reload, member context for scripts, and the event pipeline
//! that runs the rules and applies their effects in one transaction.

pub mod admission;
pub mod apply;
pub mod backtest;
pub mod batch;
pub mod bulk;
pub mod cache;
pub mod context;
pub mod dry_run;
pub mod evaluate;
pub mod log;
pub mod pipeline;
pub mod store;
pub mod write;

pub use crate::limits::rules as bounds;

/// Built-in event types (SPEC R1); any other `^[a-z][a-z0-9_]{0,63}$` is a custom type.
pub const BUILT_IN_EVENTS: &[&str] = &[
    "registered",
    "logged_in",
    "checked_in",
    "read",
    "favorited",
    "commented",
    "liked",
    "shared",
    "invited_registered",
    "order_completed",
    "purchase",
    "profile_completed",
    "review_posted",
    "survey_completed",
    "ad_viewed",
    "points_released",
    "level_changed",
    "first_redemption",
];

/// Event types a member's own app may post (the rest come from partners' servers or
/// from the platform itself: `logged_in` and `favorited` are the mall's own now,
/// `outbox::MALL_EVENTS`, so a member cannot post them twice).
pub const MEMBER_EVENTS: &[&str] =
    &["checked_in", "read", "commented", "liked", "shared", "ad_viewed", "survey_completed"];

pub fn event_type_is_valid(t: &str) -> bool {
    crate::ident::is_lowercase_ident(t, EVENT_TYPE_LENGTHS, b'_')
}

const EVENT_TYPE_LENGTHS: std::ops::RangeInclusive<usize> = 1..=64;

/// An event type in the OpenAPI document (`event_type_is_valid`).
pub struct EventType;

impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::ident::schema(
            EVENT_TYPE_LENGTHS,
            b'_',
            "Built-in (registered, checked_in, order_completed, …) or custom: 1 to 64 characters, a-z, 0-9 and _, \
             starting with a letter",
        )
    }
}
impl utoipa::ToSchema for EventType {}

/// What a rule listens to in the OpenAPI document: an event type, or `*` for every event.
pub struct RuleEventType;

impl utoipa::PartialSchema for RuleEventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let types = crate::ident::pattern(EVENT_TYPE_LENGTHS, b'_');
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^(?:\\*|{})$", &types[1..types.len() - 1])))
            .description(Some("An event type, or `*` for every event"))
            .into()
    }
}
impl utoipa::ToSchema for RuleEventType {}

/// An event type a member's app may post, in the OpenAPI document: one of `MEMBER_EVENTS`.
pub struct MemberEventType;

impl utoipa::PartialSchema for MemberEventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(MEMBER_EVENTS.iter().copied())).into()
    }
}
impl utoipa::ToSchema for MemberEventType {}
