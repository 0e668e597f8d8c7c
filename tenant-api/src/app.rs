//! Builds the axum application: routes, OpenAPI, request ids, tracing, metrics,
//! JSON fallbacks, panic catching.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::json_error;
use crate::openapi::{ApiDoc, CommonErrors, TextRules, UniqueOperationIds};
use crate::routes;
use crate::security_headers;
use crate::state::AppState;

pub use crate::limits::{ARCHIVE_BODY_LIMIT_BYTES, BODY_LIMIT_BYTES, REQUEST_TIMEOUT_SECS};

/// The OpenAPI document and the router, from the same list of handlers.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::platform_admin::router())
        .merge(routes::alliance::router())
        .merge(routes::alliance_webhooks::router())
        .merge(routes::alliance_rules::router())
        .merge(routes::staff::router())
        .merge(routes::member::router())
        .merge(routes::partner::router())
        .merge(routes::points_member::router())
        .merge(routes::points_staff::router())
        .merge(routes::points_partner::router())
        .merge(routes::rules_staff::router())
        .merge(routes::events::router())
        .merge(routes::mall_member::router())
        .merge(routes::mall_staff::router())
        .merge(routes::mall_partner::router())
        .merge(routes::marketing::router())
        .merge(routes::files::router())
        .merge(routes::budgets::router())
        .merge(routes::settlement::router())
        .merge(routes::reports::router())
        .merge(routes::analytics::router())
        .merge(routes::crm::router())
        .merge(routes::webhooks::router())
        .merge(routes::segments::router())
        .merge(routes::tasks::router())
        .merge(routes::content::router())
        .split_for_parts();
    CommonErrors.modify(&mut doc);
    TextRules.modify(&mut doc);
    UniqueOperationIds.modify(&mut doc);
    (router, doc)
}

pub fn build(state: AppState) -> Router {
    let (router, openapi) = api();
    let spec = serde_json::to_string(&openapi).unwrap_or_else(|_| "{}".into());
    let request_id = HeaderName::from_static("x-request-id");
    router
        .route_layer(middleware::from_fn(record_metrics))
        .route(
            "/openapi.json",
            get(move || async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], spec) }),
        )
        .route("/docs", get(|| async { Html(admin_portal::DOCS_HTML) }))
        .merge(admin_portal::router())
        .fallback(|| async { json_error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            json_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take this method")
        })
        .with_state(state)
        .layer(middleware::from_fn(body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(REQUEST_TIMEOUT_SECS)))
        // Outside the layers above, so their plain-text errors become JSON.
        .layer(middleware::from_fn(json_for_layer_errors))
        .layer(middleware::from_fn(request_language))
        .layer(CatchPanicLayer::custom(|_| {
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on our side; it has been logged",
            )
        }))
        .layer(middleware::from_fn(security_headers::add))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Errors produced by layers and extractors outside our handlers (body too large,
/// timeout) come as plain text; clients get the same JSON error shape as everywhere.
async fn json_for_layer_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    match resp.status() {
        StatusCode::REQUEST_TIMEOUT if !is_json => json_error(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the request took longer than {REQUEST_TIMEOUT_SECS} s"),
        ),
        _ => resp,
    }
}

/// Bounds the request body: [`BODY_LIMIT_BYTES`], or [`ARCHIVE_BODY_LIMIT_BYTES`] for the
/// archive import. A declared length over it is refused at once, a longer body as it is
/// read; both as JSON `body_too_large`.
async fn body_limit(req: Request, next: Next) -> Response {
    let limit = crate::limits::body_limit(req.method(), req.uri().path());
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    let resp = next.run(Request::from_parts(parts, body)).await;
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json { too_large() } else { resp }
}

/// Runs the request in its language (`Accept-Language`, else its mall's locale, else
/// zh-CN) for the messages of its errors.
async fn request_language(req: Request, next: Next) -> Response {
    let accept =
        req.headers().get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    platform::i18n::RequestLang::scope(accept.as_deref(), next.run(req)).await
}

/// Counts requests and their latency per route template and status.
async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp.into_response()
}
