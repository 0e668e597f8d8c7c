//! Every bound of the HTTP layer in one place (documented in the README; the domain's
//! are in `platform::limits`, the sandbox's in `scripting::limits`).

/// Largest request body accepted.
pub const BODY_LIMIT_BYTES: usize = 3 * 1024 * 1024;
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Retry-After of a 503 while the database cannot be reached.
/// `Retry-After` of a 503 while PostgreSQL cannot be reached.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;
