//! The merchant portal: a static web app embedded in the server binary, served at
//! `/portal/`. It talks to the same `/v1` API as everyone else.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

/// The interactive API docs page (served at `/docs` by the server).
pub const DOCS_HTML: &str = include_str!("../assets/docs.html");

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const DOCS_JS: &str = include_str!("../assets/docs.js");
const SWAGGER_JS: &str = include_str!("../assets/vendor/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &str = include_str!("../assets/vendor/swagger-ui/swagger-ui.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

/// Routes of the portal, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal/") }))
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/portal/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/portal/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/docs/docs.js", get(|| async { asset("text/javascript; charset=utf-8", DOCS_JS) }))
        .route("/docs/swagger-ui-bundle.js", get(|| async { asset("text/javascript; charset=utf-8", SWAGGER_JS) }))
        .route("/docs/swagger-ui.css", get(|| async { asset("text/css; charset=utf-8", SWAGGER_CSS) }))
}
