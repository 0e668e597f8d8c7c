//! One error type for the domain. Every variant carries a stable machine `code`; the
//! HTTP layer maps variants to status codes. Database errors are logged, never shown.

use serde::Serialize;

/// A problem with one input field (422 details).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request cannot be read.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 422: the request was read but a value is not acceptable.
    #[error("{message}")]
    Invalid { code: &'static str, message: String, fields: Vec<FieldError> },
    /// 401: no valid credential.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// 403: a valid credential that may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: not found (also for another tenant's resource).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 409: state conflict or a unique value already taken.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 429: too many attempts.
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// 429: the tenant already uses all it may of the server (its concurrency limits).
    #[error("{message}")]
    Busy { code: &'static str, message: String, retry_after_secs: u64 },
    /// 503: the server as a whole has no capacity left right now.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String, retry_after_secs: u64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated { code, message: message.into() }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { code, message: message.into() }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }
    /// A 422 about one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Invalid {
            code: "validation_failed",
            message: format!("{field}: {message}"),
            fields: vec![FieldError { field: field.to_string(), message }],
        }
    }

    /// Seconds a client should wait before trying again (429 and 503 answers).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::Busy { retry_after_secs, .. }
            | Self::Unavailable { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The stable machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Invalid { code, .. }
            | Self::Unauthenticated { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Busy { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::RateLimited { .. } => "rate_limited",
            Self::Database(_) if self.is_unavailable() => "database_unavailable",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    /// The database cannot be reached right now (down, restarting, refusing
    /// connections, or no pooled connection within the acquire timeout): worth a retry,
    /// answered 503 with Retry-After rather than 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                // 08: connection exception; 57P01-03: shutdown, crash, cannot connect now.
                sqlx::Error::Database(d) => d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Collects field problems so a request gets all of them in one 422.
#[derive(Debug, Default)]
pub struct Validator {
    fields: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn check(&mut self, ok: bool, field: &str, message: &str) -> &mut Self {
        if !ok {
            self.fields.push(FieldError { field: field.to_string(), message: message.to_string() });
        }
        self
    }
    pub fn finish(&mut self) -> Result<()> {
        if self.fields.is_empty() {
            return Ok(());
        }
        let fields = std::mem::take(&mut self.fields);
        let message = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ");
        Err(Error::Invalid { code: "validation_failed", message, fields })
    }
}

/// Turns a unique-key violation on `constraint` into `then`, leaving other errors alone,
/// so handlers never pre-check with a racy SELECT.
pub fn on_unique(err: sqlx::Error, constraint: &str, then: Error) -> Error {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
        && db.constraint() == Some(constraint)
    {
        return then;
    }
    Error::Database(err)
}
