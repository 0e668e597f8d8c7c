//! Earn rules (SPEC R1-R7): the rule store (versions, parameters, order), the cache of
//! compiled rules with hot reload, member context for scripts, and the event pipeline
//! that runs the rules and applies their effects in one transaction.

pub mod admission;
pub mod apply;
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
    crate::ident::is_lowercase_ident(t, 1..=64, b'_')
}
