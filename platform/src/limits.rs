//! Every bound of the platform crate in one place (documented in the README).

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
