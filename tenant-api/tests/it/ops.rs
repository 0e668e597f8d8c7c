//! P5 and operations: health, readiness, metrics, OpenAPI, docs, JSON 404s, request ids.

use reqwest::{Method, StatusCode};

use crate::common::TestApp;

#[tokio::test]
async fn health_docs_and_errors_are_served() {
    let app = TestApp::spawn().await;
    let (status, body) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, body) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));

    let (status, headers, body) = app.call_full(Method::GET, "/no/such/route", &[], None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    assert!(headers.contains_key("x-request-id"));
    let (status, _, body) = app.call_full(Method::DELETE, "/healthz", &[], None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    // A client's request id is kept.
    let (_, headers, _) = app.call_full(Method::GET, "/healthz", &[("x-request-id", "abc-123".into())], None).await;
    assert_eq!(headers["x-request-id"], "abc-123");

    // A body over the limit gets a JSON error too.
    let resp = app
        .client
        .post(format!("{}/v1/platform/auth/login", app.base))
        .header("content-type", "application/json")
        .body(vec![b' '; 4 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large");

    let resp = app.client.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("/openapi.json"));
    let resp = app.client.get(format!("{}/docs/swagger-ui-bundle.js", app.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().len() > 100_000);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_with_its_credential() {
    let app = TestApp::spawn().await;
    let (status, spec) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    for s in ["member_jwt", "staff_jwt", "alliance_jwt", "platform_jwt", "api_key"] {
        assert!(schemes.contains_key(s), "{s} missing");
    }
    let paths = spec["paths"].as_object().unwrap();
    let public_suffixes = [
        "/auth/login",
        "/auth/register",
        "/auth/codes",
        "/auth/login-with-code",
        "/auth/reset-password",
        "/auth/refresh",
        "/auth/logout",
        // The catalog is public; the payment callback is signed instead.
        "/products",
        "/products/{id}",
        "/categories",
        "/payments/callback",
        "/lotteries",
        "/auth/webview",
        "/files/products/{id}/{name}",
        // The list of an alliance's malls.
        "/malls",
        // Published content, read like the catalog.
        "/content/banners",
        "/content/announcements",
        "/content/zones",
        "/content/zones/{key}",
        "/content/pages",
        "/content/pages/{key}",
        "/files/content/{id}/{name}",
    ];
    for (path, item) in paths {
        assert!(path.starts_with("/v1/") || ["/healthz", "/readyz", "/metrics"].contains(&path.as_str()), "{path}");
        for (method, op) in item.as_object().unwrap() {
            let secured = op.get("security").is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()));
            let public = !path.starts_with("/v1/") || public_suffixes.iter().any(|s| path.ends_with(s));
            assert!(secured || public, "{method} {path} has no credential in the document");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
            if path.contains("/staff/") && secured && !path.ends_with("/staff/me") {
                let desc = op["description"].as_str().or(op["summary"].as_str()).unwrap_or("");
                assert!(desc.contains("Needs"), "{method} {path} does not name its permission: {desc:?}");
            }
        }
    }
    assert!(paths.len() >= 25, "{} paths", paths.len());
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    // The recorder is process-wide: install one for this test binary.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap();
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.call(Method::GET, "/healthz", None, None).await;
    }
    let text = handle.render();
    assert!(text.contains("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"), "{text}");
}
