//! Every bound of the HTTP layer in one place (documented in the README; the domain's
//! are in `platform::limits`, the sandbox's in `scripting::limits`).

/// Largest request body accepted.
pub const BODY_LIMIT_BYTES: usize = 3 * 1024 * 1024;
/// Largest mall archive the operator's import route accepts (larger ones: the CLI).
pub const ARCHIVE_BODY_LIMIT_BYTES: usize = 512 * 1024 * 1024;
/// The route that takes an archive as its body.
pub const ARCHIVE_IMPORT_PATH: &str = "/v1/platform/tenants/import";

/// The largest body of a request to `path`.
pub fn body_limit(method: &axum::http::Method, path: &str) -> usize {
    if method == axum::http::Method::POST && path == ARCHIVE_IMPORT_PATH {
        ARCHIVE_BODY_LIMIT_BYTES
    } else {
        BODY_LIMIT_BYTES
    }
}
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Retry-After of a 503 while the database cannot be reached.
/// `Retry-After` of a 503 while PostgreSQL cannot be reached.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;
