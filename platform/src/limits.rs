//! Every bound of the platform crate in one place (documented in the README): the
//! general ones here, then those of the ledger (`ledger::bounds` is `limits::ledger`),
//! the rules engine (`rules::bounds` is `limits::rules`) and the mall.

/// Access tokens (JWT) live this long.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// Refresh tokens live this long; each refresh rotates the token.
pub const REFRESH_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
/// Allowed clock skew when checking `exp`.
pub const JWT_LEEWAY_SECS: u64 = 5;
/// Minimum length of the JWT signing secret.
pub const JWT_SECRET_MIN_BYTES: usize = 32;

/// Password length bounds (characters).
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

/// One-time codes: digits, lifetime, wrong guesses allowed, minimum gap between sends.
pub const OTP_DIGITS: u32 = 6;
pub const OTP_TTL_SECS: i64 = 5 * 60;
pub const OTP_MAX_ATTEMPTS: i32 = 5;
pub const OTP_RESEND_GAP_SECS: i64 = 60;

/// Login attempts per identifier (tenant + account) and per client address, per window.
pub const LOGIN_ATTEMPTS_PER_ACCOUNT: u32 = 10;
pub const LOGIN_ATTEMPTS_PER_ADDRESS: u32 = 50;
pub const LOGIN_WINDOW_SECS: u64 = 5 * 60;

/// Tenant directory cache: entries, and the age after which an entry is re-read even
/// without a change notification (a backstop; notifications normally evict at once).
pub const DIRECTORY_CACHE_ENTRIES: u64 = 100_000;
pub const DIRECTORY_CACHE_TTL_SECS: u64 = 60;

/// `migrate`: tenants migrated at the same time, by default and at most.
pub const MIGRATE_CONCURRENCY_DEFAULT: usize = 8;
pub const MIGRATE_CONCURRENCY_MAX: usize = 64;

/// Lists: default and maximum page size.
pub const PAGE_LIMIT_DEFAULT: i64 = 50;
pub const PAGE_LIMIT_MAX: i64 = 200;

/// API keys: scopes per key, live keys per tenant (the trigger of control migration
/// 0004 enforces the same number).
pub const API_KEY_SCOPES_MAX: usize = 16;
pub const API_KEYS_PER_TENANT_MAX: i64 = 100;

/// Live sign-ins remembered per instance after a database check, and the age after which
/// one is checked again even without a revocation notice (a backstop).
pub const SESSION_CACHE_ENTRIES: u64 = 1_000_000;
pub const SESSION_CACHE_TTL_SECS: u64 = 60;

/// Longest a request waits for a database connection before it is answered 503.
pub const DB_ACQUIRE_TIMEOUT_MS: u64 = 3_000;

/// Connections of a cluster's side pool: short statements that a request runs while it
/// holds a connection of the main pool (a redemption's stock take). Never waiting on the
/// main pool, they cannot deadlock on it however busy it is.
pub const SIDE_POOL_MAX_CONNS: u32 = 4;

/// Password hashes (argon2id, 19 MiB each) computed at the same time, per instance: one
/// per core. More wait for a slot, at most this long, then are answered 429.
pub const PASSWORD_HASH_WAIT_MS: u64 = 10_000;

/// Old throttle counters are swept by the jobs after this long.
pub const THROTTLE_SWEEP_AFTER_SECS: i64 = 24 * 3600;

/// JSON bodies: numbers other than i64 integers must be finite and within ± this (they
/// are stored in `jsonb` and read back as f64; larger ones do not survive the trip).
pub const JSON_NUMBER_ABS_MAX: f64 = 1e15;
/// Field problems reported in one 422 at most.
pub const JSON_FIELD_ERRORS_MAX: usize = 20;
/// Default largest manual points adjustment by customer service (a tenant setting).
pub const ADJUSTMENT_CUSTOMER_SERVICE_DEFAULT: i64 = 1_000;

/// Uploaded images: pixels a side, pixels in all, memory a decoder may use, GIF frames.
pub const IMAGE_SIDE_MAX: u32 = 4096;
pub const IMAGE_PIXELS_MAX: u64 = 4096 * 4096;
pub const IMAGE_DECODE_BYTES_MAX: u64 = 80 * 1024 * 1024;
pub const IMAGE_FRAMES_MAX: u32 = 200;
/// Rules engine, per tenant and server instance (tenant settings `limits`, set by the
/// platform operator): event batches processed at once, and how many of them may run
/// rules at the same moment; both at most `TENANT_CONCURRENCY_MAX`.
pub const EVENT_BATCHES_PER_TENANT_DEFAULT: u32 = 4;
pub const RULE_EVALUATIONS_PER_TENANT_DEFAULT: u32 = 1;
pub const TENANT_CONCURRENCY_MAX: u32 = 64;

/// Segments, member exports and the merchant's messages to members (M5, K6).
pub mod members {
    /// Counting a segment's members stops here (the count says it was capped).
    pub const SEGMENT_COUNT_CAP: i64 = 1_000_000;
    /// Members in one CSV export (the response says when more matched).
    pub const EXPORT_ROWS_MAX: i64 = 100_000;
    /// How far ahead a message to members may be scheduled, in days.
    pub const BROADCAST_AHEAD_DAYS_MAX: i64 = 365;
    /// A message's title and body, in characters.
    pub const BROADCAST_TITLE_MAX_CHARS: usize = 100;
    pub const BROADCAST_BODY_MAX_CHARS: usize = 2_000;
    /// Saved segments per mall.
    pub const SEGMENTS_PER_TENANT_MAX: i64 = 200;
}

/// The task centre (K2).
pub mod tasks {
    /// Tasks per mall that are not archived.
    pub const TASKS_PER_TENANT_MAX: i64 = 100;
}

/// Content (K5): banners, announcements, themed zones, rule pages.
pub mod content {
    /// Items per mall that are not archived.
    pub const ITEMS_PER_TENANT_MAX: i64 = 1_000;
    /// Items one staff list returns at most (newest first).
    pub const STAFF_LIST_MAX: i64 = 1_000;
    /// Items of one kind members read at most.
    pub const MEMBER_LIST_MAX: i64 = 100;
    /// An item's title, in characters.
    pub const TITLE_MAX_CHARS: usize = 100;
    /// A banner's subtitle, an announcement's text, a zone's description and a rule
    /// page's Markdown, in characters.
    pub const BANNER_SUBTITLE_MAX_CHARS: usize = 200;
    pub const ANNOUNCEMENT_BODY_MAX_CHARS: usize = 5_000;
    pub const ZONE_DESCRIPTION_MAX_CHARS: usize = 500;
    pub const PAGE_MARKDOWN_MAX_CHARS: usize = 20_000;
    /// Products of one zone.
    pub const ZONE_PRODUCTS_MAX: usize = 100;
    /// A reviewer's note, in characters.
    pub const REVIEW_NOTE_MAX_CHARS: usize = 500;
    /// `sort_order` lies within ± this.
    pub const SORT_ORDER_ABS_MAX: i32 = 1_000_000;
    /// Cached answers of what members read, per instance, and how long one is served
    /// (windows open and close within this; staff changes evict at once).
    pub const CACHE_ENTRIES: u64 = 20_000;
    pub const CACHE_TTL_SECS: u64 = super::mall::CATALOG_CACHE_TTL_SECS;
}

/// Webhooks (SPEC P3; `webhooks::bounds` is `limits::webhooks`).
pub mod webhooks {
    /// Endpoints per mall.
    pub const ENDPOINTS_PER_TENANT_MAX: i64 = 20;
    /// Event types one endpoint subscribes to.
    pub const EVENT_TYPES_MAX: usize = 16;
    /// An endpoint's description (characters).
    pub const DESCRIPTION_MAX_CHARS: usize = 200;
    /// An endpoint's URL (bytes).
    pub const URL_MAX_BYTES: usize = 2048;
    /// Attempts per delivery (the first and its retries), and the wait after each failed
    /// attempt before the next (±10% jitter): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
    /// about 27.6 hours in all.
    pub const ATTEMPTS_MAX: i32 = 8;
    pub const RETRY_DELAYS_SECS: [i64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
    /// Failed attempts in a row (over all its deliveries) after which an endpoint is
    /// turned off, with an audit entry for the merchant.
    pub const FAILURE_RUN_MAX: i32 = 15;
    /// One HTTP attempt: whole request, and connecting.
    pub const REQUEST_TIMEOUT_SECS: u64 = 10;
    pub const CONNECT_TIMEOUT_SECS: u64 = 5;
    /// How long a claimed delivery stays with its worker (longer than one attempt), after
    /// which another instance may take it (the first one crashed).
    pub const LEASE_SECS: i64 = 60;
    /// Deliveries claimed per tenant per pass, and sent at once per instance.
    pub const CLAIM_BATCH: i64 = 50;
    pub const SENDS_IN_FLIGHT_MAX: usize = 32;
    /// Bytes of the receiver's answer kept in the delivery log.
    pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
    /// Default pause between the worker's passes over the tenants.
    pub const WORKER_INTERVAL_MS_DEFAULT: u64 = 1_000;
}

/// Bounds of the ledger.
pub mod ledger {
    /// Largest amount of one entry (keeps sums far from i64 overflow).
    pub const AMOUNT_MAX: i64 = 1_000_000_000_000;
    /// Entries in one partner batch.
    pub const BATCH_MAX: usize = 500;
    /// Accounts handled per transaction by the expiry, release and hold jobs.
    pub const JOB_BATCH: i64 = 500;
    /// Open lots read per page while a debit draws on them.
    pub const LOTS_PAGE: i64 = 10_000;
    /// Open lots a single debit may draw from (beyond: a 409 naming the limit).
    pub const LOTS_PER_DEBIT_MAX: i64 = 1_000_000;

    fn amount_schema(min: i64, description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(min))
            .maximum(Some(AMOUNT_MAX))
            .description(Some(description))
            .into()
    }

    /// An amount of points in the OpenAPI document: 1 to `AMOUNT_MAX` (`ledger::post::check_amount`).
    pub struct Amount;

    impl utoipa::PartialSchema for Amount {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            amount_schema(1, "An amount of points: 1 to 10^12")
        }
    }
    impl utoipa::ToSchema for Amount {}

    /// A price, threshold or limit in points (or fen) in the OpenAPI document: 0 to
    /// `AMOUNT_MAX`.
    pub struct AmountOrZero;

    impl utoipa::PartialSchema for AmountOrZero {
        fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
            amount_schema(0, "0 to 10^12")
        }
    }
    impl utoipa::ToSchema for AmountOrZero {}
}

/// Bounds of the rules engine around the sandbox (whose own bounds are in
/// `scripting::limits`).
pub mod rules {
    /// Active rules per tenant (archived ones do not count).
    pub const RULES_PER_TENANT_MAX: i64 = 200;
    /// Rules a tenant keeps, archived ones included.
    pub const RULES_KEPT_MAX: i64 = 1_000;
    /// Bytes of a rule's parameters (JSON).
    pub const PARAMS_BYTES_MAX: usize = 16 * 1024;
    /// Bytes of an event's data (JSON).
    pub const EVENT_DATA_BYTES_MAX: usize = 8 * 1024;
    /// Lock grants still releasing that a script sees of a member (`member.locks`, the
    /// oldest first).
    pub const LOCKS_SEEN_MAX: i64 = 50;
    /// Events in one batch request.
    pub const BATCH_EVENTS_MAX: usize = 100;
    /// Internal events (level_changed, points_released) a chain of events may trigger.
    pub const CASCADE_DEPTH_MAX: i32 = 3;
    /// Safety net below the sandbox's own deadline (`scripting::limits::MAX_WALL_MS`): an
    /// evaluation still running this long per rule after its thread started is abandoned
    /// (503 `server_busy`: the machine did not give it CPU). Counted from the moment the
    /// evaluation thread starts, never while waiting.
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
    /// OS priority (nice) of the heavy lane's evaluation threads: the lowest, below
    /// request handling, the database and the light lane, which run at 0 (a nice-19
    /// thread gets about 1.5% of a CPU that a nice-0 thread wants).
    pub const EVAL_HEAVY_NICE: i32 = 19;
    /// A tenant whose rules ran this many seconds lately (decaying by half every
    /// `BUSY_HALF_LIFE_MS`) evaluates in the heavy lane: about 14% of one thread, kept up.
    pub const HEAVY_BUSY_SECS: f64 = 0.2;
    pub const BUSY_HALF_LIFE_MS: u64 = 1_000;
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

/// The mall and marketing (catalog, orders, addresses, CSV, lottery, favorites).
pub mod mall {
    /// How far a callback's timestamp may be from now.
    pub const CALLBACK_SKEW_SECS: i64 = 300;

    /// Most items of one product in one order.
    pub const QUANTITY_MAX: i32 = 10;

    /// Extra life of a points hold beyond the payment deadline, so the order timeout (which
    /// releases it) always comes first.
    pub const HOLD_MARGIN_SECS: i64 = 300;

    /// Images per product.
    pub const IMAGES_PER_PRODUCT_MAX: usize = 10;

    /// Addresses one member may keep (the trigger of tenant migration 0008 holds the same
    /// number).
    pub const ADDRESSES_PER_MEMBER_MAX: i64 = 20;

    /// Seconds a cached page or product is served before being read again.
    pub const CATALOG_CACHE_TTL_SECS: u64 = 5;

    /// How long a product seen sold out is answered `sold_out` without reading it again. Stock
    /// given back by a cancellation or refund can take this long to be redeemable.
    pub const SOLD_OUT_MEMO_SECS: u64 = 1;

    /// Age at which the mall's jobs give back a stock reservation whose order never
    /// committed (its commit failed, or the server died between the two).
    pub const STALE_RESERVATION_SECS: i64 = 600;

    /// Longest search keyword.
    pub const QUERY_MAX_CHARS: usize = 50;

    /// Lines of one shipping import at most.
    pub const IMPORT_LINES_MAX: usize = 5_000;

    /// Characters of one imported field at most.
    pub const IMPORT_FIELD_CHARS_MAX: usize = 100;

    /// The chance unit: weights are out of this many.
    pub const WEIGHT_TOTAL: i32 = 10_000;

    /// Prizes of one lottery.
    pub const PRIZES_MAX: usize = 20;

    /// The most favorites listed.
    pub const FAVORITES_LISTED_MAX: i64 = 500;
}

/// Reports (issue 13 points 6-7: dashboard and finance).
pub mod reports {
    /// Days a dashboard covers at most (one quarter and a day).
    pub const DASHBOARD_DAYS_MAX: i64 = 92;
    /// Days a dashboard covers when the request names none.
    pub const DASHBOARD_DAYS_DEFAULT: i64 = 14;
    /// Products in the dashboard's hot list.
    pub const HOT_PRODUCTS: i64 = 10;
    /// Products in the finance report's redemption cost table (the most points first).
    pub const COST_ROWS_MAX: i64 = 1000;
    /// Page views waiting in memory to be written, per server instance (a view past it is
    /// counted once the next write made room).
    pub const PENDING_VISITS_MAX: usize = 100_000;
    /// How often an instance writes the page views it counted.
    pub const VISITS_FLUSH_SECS: u64 = 1;
}

/// Analytics (issue 13 point 8, SPEC B7).
/// Bounds of a rule backtest (issue 13 point 11); each evaluation keeps the sandbox's.
pub mod backtests {
    /// Local days one backtest replays at most.
    pub const DAYS_MAX: i64 = 92;
    /// Recorded events one backtest replays at most.
    pub const EVENTS_MAX: i64 = 2_000_000;
    /// Events read and evaluated per page (progress is recorded after each).
    pub const PAGE: i64 = 5_000;
    /// Failures quoted in the result.
    pub const ERRORS_KEPT: usize = 5;
    /// Backtests listed.
    pub const LISTED: i64 = 20;
}

pub mod analytics {
    /// Local days one analytics query covers at most (conversion, searches, velocity).
    pub const PERIOD_DAYS_MAX: i64 = 92;
    /// Local days when the request names none.
    pub const PERIOD_DAYS_DEFAULT: i64 = 30;
    /// Registration weeks one retention table covers at most, and by default.
    pub const COHORT_WEEKS_MAX: i64 = 26;
    pub const COHORT_WEEKS_DEFAULT: i64 = 8;
    /// The days after registration retention is measured on.
    pub const RETENTION_DAYS: [i64; 3] = [1, 7, 30];
    /// Products in the conversion table at most (the page `limit` every list shares), and
    /// by default (the most viewed first).
    pub const CONVERSION_ROWS_MAX: i64 = 200;
    pub const CONVERSION_ROWS_DEFAULT: i64 = 50;
    /// Terms in each search list at most (the page `limit` every list shares), and by default.
    pub const SEARCH_TERMS_MAX: i64 = 200;
    pub const SEARCH_TERMS_DEFAULT: i64 = 20;
    /// A search term is kept to this many characters (the catalog takes no longer `q`).
    pub const SEARCH_TERM_CHARS: usize = 50;
    /// A member's browse record: products kept per member, and days a view is kept.
    pub const BROWSE_RECORD_ENTRIES: i64 = 200;
    pub const BROWSE_RECORD_DAYS: i64 = 90;
}
