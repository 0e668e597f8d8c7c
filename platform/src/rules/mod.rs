//! Earn rules (SPEC R1-R7): the rule store (versions, parameters, order), the cache of
//! compiled rules with hot reload, member context for scripts, and the event pipeline
//! that runs the rules and applies their effects in one transaction.

pub mod admission;
pub mod apply;
pub mod bulk;
pub mod cache;
pub mod context;
pub mod dry_run;
pub mod evaluate;
pub mod log;
pub mod pipeline;
pub mod store;
pub mod write;

/// Bounds of the rules engine around the sandbox (whose own bounds are in
/// `scripting::limits`).
pub mod bounds {
    /// Rules per tenant.
    pub const RULES_PER_TENANT_MAX: i64 = 200;
    /// Bytes of a rule's parameters (JSON).
    pub const PARAMS_BYTES_MAX: usize = 16 * 1024;
    /// Bytes of an event's data (JSON).
    pub const EVENT_DATA_BYTES_MAX: usize = 8 * 1024;
    /// Events in one batch request.
    pub const BATCH_EVENTS_MAX: usize = 100;
    /// Internal events (level_changed, points_released) a chain of events may trigger.
    pub const CASCADE_DEPTH_MAX: i32 = 3;
    /// Safety net below the sandbox's own deadline (`scripting::limits::MAX_WALL_MS`): an
    /// evaluation still running this long per rule after its thread started is abandoned
    /// (500). Counted from the moment the evaluation thread starts, never while waiting.
    pub const RULE_TIMEOUT_MS: u64 = 500;
    /// An evaluation thread runs a batch's events for about this long (at least one
    /// event), then is given back, so batches of every tenant take turns (FIFO).
    pub const EVAL_SLICE_MS: u64 = 20;
    /// Longest a batch waits for one of its tenant's batch slots before a 429
    /// `tenant_busy` (requests), and for internal events (sign-up bonuses).
    pub const BATCH_WAIT_MS: u64 = 1_000;
    pub const SYSTEM_BATCH_WAIT_MS: u64 = 10_000;
    /// Longest a slice waits for a rule evaluation permit: its tenant's (429
    /// `tenant_busy`), then the server's evaluation threads (503 `server_busy`).
    pub const EVAL_WAIT_MS: u64 = 5_000;
    /// `Retry-After` of those answers.
    pub const BUSY_RETRY_AFTER_SECS: u64 = 1;
    /// OS priority (nice) of the evaluation threads: below request handling and the
    /// database, which run at 0 (each step is about 1.25x less CPU when they contend).
    pub const EVAL_THREAD_NICE: i32 = 10;
    /// Contention score of a tenant's batches (`Admission::lock_first`): a batch whose
    /// members changed while it evaluated adds the step, any other takes one off; above
    /// the threshold the tenant's batches lock their members first.
    pub const CONTENDED_STEP: u32 = 4;
    pub const LOCK_FIRST_ABOVE: u32 = 8;
    pub const CONTENTION_MAX: u32 = 12;
    /// Attempts outside any transaction before a batch whose members keep changing (or
    /// whose event ids get recorded by another batch) reads and evaluates with its
    /// members locked from the start.
    pub const OPTIMISTIC_ATTEMPTS: u32 = 2;
    /// Attempts of a batch in all (the rest after deadlocks).
    pub const BATCH_ATTEMPTS_MAX: u32 = 5;
}

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
];

/// Event types a member's own app may post (the rest come from partners' servers or
/// from the platform itself).
pub const MEMBER_EVENTS: &[&str] =
    &["logged_in", "checked_in", "read", "favorited", "commented", "liked", "shared", "ad_viewed", "survey_completed"];

pub fn event_type_is_valid(t: &str) -> bool {
    crate::ident::is_lowercase_ident(t, 1..=64, b'_')
}
