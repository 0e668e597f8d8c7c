//! Errors as JSON: `{"error": {"code", "message", "details"}}` with a stable code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::Error;
use platform::error::FieldError;
use platform::i18n::{self, Lang, RequestLang};
use serde::Serialize;

/// A domain error on its way out.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        // The trigger of tenant migration 0006 (`accounts_not_shared`) still refuses an
        // account of the shared currency in a mall's schema, but no write asks for one
        // any more: every posting of it goes through `ledger::keeper` to the alliance's
        // ledger. Should one ever reach it, it is the server's fault (500).
        Self(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub use crate::limits::UNAVAILABLE_RETRY_AFTER_SECS;

/// The error body (documented in the OpenAPI document).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `validation_failed`, `token_expired`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Per-field problems (422) or other structured details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
        Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::RateLimited { .. } | Error::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds a JSON error response by hand (for rejections outside the domain).
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message = localised(RequestLang::current(), code, message.into());
    let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message, details: None } };
    (status, axum::Json(body)).into_response()
}

/// An error about the request's own shape (malformed JSON, an unknown query field):
/// other languages get the catalogue's text for `code` followed by the parser's English
/// words in brackets, because those name the field or position a developer must fix.
pub fn json_error_with_cause(status: StatusCode, code: &str, cause: impl Into<String>) -> Response {
    let cause = cause.into();
    let lang = RequestLang::current();
    let message = match i18n::error_message(lang, code) {
        Some(head) if lang != Lang::En => format!("{head}（{cause}）"),
        _ => cause,
    };
    let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message, details: None } };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(&e);
        let body = ErrorBody { error: detail(&e) };
        let mut resp = (status, axum::Json(body)).into_response();
        let retry_after = e.retry_after_secs().or_else(|| e.is_unavailable().then_some(UNAVAILABLE_RETRY_AFTER_SECS));
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The code and message of `e` as an error body would carry them (also for answers
/// that hold one error per item, such as a bulk upsert); server faults are logged, not
/// shown.
pub fn detail_of(e: Error) -> ErrorDetail {
    detail(&e)
}

fn detail(e: &Error) -> ErrorDetail {
    let lang = RequestLang::current();
    let (message, details) = match e {
        Error::Database(err) if e.is_unavailable() => {
            tracing::warn!(error = %err, "database unavailable");
            (
                "the service is briefly unavailable; retry in a few seconds".to_string(),
                Some(serde_json::json!({ "retry_after_secs": UNAVAILABLE_RETRY_AFTER_SECS })),
            )
        }
        Error::Database(err) => {
            tracing::error!(error = %err, "database error");
            ("something went wrong on our side; it has been logged".to_string(), None)
        }
        Error::Internal(err) => {
            tracing::error!(error = %format!("{err:#}"), "internal error");
            ("something went wrong on our side; it has been logged".to_string(), None)
        }
        Error::Invalid { code, message, fields } => invalid(lang, code, message, fields),
        Error::RateLimited { retry_after_secs }
        | Error::Busy { retry_after_secs, .. }
        | Error::Unavailable { retry_after_secs, .. } => {
            (e.to_string(), Some(serde_json::json!({ "retry_after_secs": retry_after_secs })))
        }
        // The hand-off's dead end tells how to link the account it found (`alliance::link`).
        Error::Conflict { code: "account_exists_unlinked" | "account_linked_elsewhere", .. } => (
            e.to_string(),
            Some(serde_json::json!({
                "link_routes": [
                    "POST /v1/tenants/{tenant}/me/alliance-links/codes",
                    "POST /v1/tenants/{tenant}/me/alliance-links",
                ],
                "tenant": "the mall you are signed in at (the hand-off's token)",
            })),
        ),
        other => (other.to_string(), None),
    };
    let message = if matches!(e, Error::Invalid { .. }) { message } else { localised(lang, e.code(), message) };
    ErrorDetail { code: e.code().to_string(), message, details }
}

/// The message of an error with `code` in `lang`: English keeps the server's own
/// message (it names the numbers involved); other languages take the catalogue's text
/// for the code (the English message where the catalogue has none).
fn localised(lang: Lang, code: &str, english: String) -> String {
    if lang == Lang::En {
        return english;
    }
    i18n::error_message(lang, code).unwrap_or(english)
}

/// A 422's message and field details in `lang` (headed by the catalogue's text for its
/// code, e.g. `content_link_unsafe`, else for `validation_failed`).
fn invalid(lang: Lang, code: &str, english: &str, fields: &[FieldError]) -> (String, Option<serde_json::Value>) {
    if lang == Lang::En {
        return (english.to_string(), Some(serde_json::json!({ "fields": fields })));
    }
    let fields: Vec<FieldError> = fields
        .iter()
        .map(|f| FieldError { field: f.field.clone(), message: i18n::field_message(lang, &f.message) })
        .collect();
    let head =
        i18n::error_message(lang, code).or_else(|| i18n::error_message(lang, "validation_failed")).unwrap_or_default();
    let list = fields.iter().map(|f| format!("{}：{}", f.field, f.message)).collect::<Vec<_>>().join("；");
    (format!("{head}{list}"), Some(serde_json::json!({ "fields": fields })))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// The string literal right after `at` (skipping whitespace and, for `json_error`,
    /// the status argument), if it is a snake_case code.
    fn code_after(text: &str, at: usize, skip_arg: bool) -> Option<String> {
        let mut rest = &text[at..];
        if skip_arg {
            rest = &rest[rest.find(',')? + 1..];
        }
        let rest = rest.trim_start().strip_prefix('"')?;
        let code = &rest[..rest.find('"')?];
        (!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then(|| code.to_string())
    }

    /// Every error code the server can answer has a message in both catalogues, so a
    /// zh-CN mall never answers an English message by accident.
    #[test]
    fn every_error_code_has_a_message_in_both_languages() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["platform/src", "tenant-api/src"] {
            rust_files(&root.join(dir), &mut files);
        }
        let mut codes = std::collections::BTreeSet::from(["rate_limited".to_string(), "database_unavailable".into()]);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (pattern, skip_arg) in [
                ("Error::not_found(", false),
                ("Error::conflict(", false),
                ("Error::unauthenticated(", false),
                ("Error::forbidden(", false),
                ("Error::bad_request(", false),
                ("code: ", false),
                ("json_error(", true),
                ("json_error_with_cause(", true),
            ] {
                for (at, _) in text.match_indices(pattern) {
                    codes.extend(code_after(&text, at + pattern.len(), skip_arg));
                }
            }
        }
        assert!(codes.len() > 60, "{codes:?}");
        for lang in [super::Lang::ZhCn, super::Lang::En] {
            let missing: Vec<_> = codes.iter().filter(|c| super::i18n::error_message(lang, c).is_none()).collect();
            assert!(missing.is_empty(), "{lang:?} lacks messages for {missing:?}");
        }
    }
}
