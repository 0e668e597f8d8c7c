//! B5/B6: roles are enforced on every staff endpoint; every staff write is audited with
//! its request id.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{PASSWORD, TestApp, unique};

#[tokio::test]
async fn roles_limit_what_staff_can_do() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let base = format!("/v1/tenants/{}/staff", t.slug);

    // The owner adds an operator and an auditor through the API.
    let mut tokens = std::collections::HashMap::new();
    for role in ["operator", "auditor", "finance", "customer_service"] {
        let email = format!("{}@staff.test", unique(role));
        let (status, body) = app
            .call(
                Method::POST,
                &format!("{base}/users"),
                Some(&owner),
                Some(json!({"email": email, "password": PASSWORD, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        tokens.insert(role, app.staff_login(&t, &email).await["access_token"].as_str().unwrap().to_string());
    }
    tokens.insert("owner", owner.clone());
    let cases = [
        ("operator", Method::GET, "/members", true),
        ("operator", Method::GET, "/users", true),
        ("operator", Method::GET, "/api-keys", true),
        ("operator", Method::PUT, "/settings", false),
        ("auditor", Method::GET, "/audit-log", true),
        ("auditor", Method::GET, "/settings", true),
        ("auditor", Method::PUT, "/settings", false),
        ("customer_service", Method::GET, "/members", true),
        ("customer_service", Method::GET, "/audit-log", false),
        ("finance", Method::GET, "/api-keys", false),
        ("owner", Method::PUT, "/settings", true),
    ];
    for (role, method, path, allowed) in cases {
        let path = format!("{base}{path}");
        let body = matches!(method, Method::PUT).then(|| json!({"points_per_yuan": 50}));
        let (status, resp) = app.call(method.clone(), &path, Some(&tokens[role]), body).await;
        if allowed {
            assert!(status.is_success(), "{role} {method} {path}: {status} {resp}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method} {path}: {resp}");
            assert_eq!(resp["error"]["code"], "permission_denied");
        }
    }

    for role in ["operator", "auditor", "finance", "customer_service"] {
        let (status, body) = app
            .call(
                Method::POST,
                &format!("{base}/users"),
                Some(&tokens[role]),
                Some(json!({"email": "x@y.cn", "password": PASSWORD, "role": "owner"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role} created staff: {body}");
        let (status, _) = app
            .call(
                Method::POST,
                &format!("{base}/api-keys"),
                Some(&tokens[role]),
                Some(json!({"name": "k", "scopes": ["members:read"]})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role} created a key");
    }
    // Roles that do not exist at the merchant level are refused.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("{base}/users"),
            Some(&owner),
            Some(json!({"email": "p@y.cn", "password": PASSWORD, "role": "platform_admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn staff_writes_are_audited_with_their_request_id() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let base = format!("/v1/tenants/{}/staff", t.slug);
    let auth = vec![("authorization", format!("Bearer {owner}"))];

    let settings = json!({"points_name": "金币", "points_per_yuan": 10, "expiry": {"kind": "rolling", "days": 365}, "locale": "zh-CN"});
    let (status, headers, body) =
        app.call_full(Method::PUT, &format!("{base}/settings"), &auth, Some(settings.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let settings_request = headers["x-request-id"].to_str().unwrap().to_string();
    let (_, stored) = app.call(Method::GET, &format!("{base}/settings"), Some(&owner), None).await;
    assert_eq!(stored["points_name"], "金币");
    assert_eq!(stored["expiry"], json!({"kind": "rolling", "days": 365}));

    let email = format!("{}@staff.test", unique("op"));
    let (status, headers, created) = app
        .call_full(
            Method::POST,
            &format!("{base}/users"),
            &auth,
            Some(json!({"email": email, "password": PASSWORD, "role": "operator"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let create_request = headers["x-request-id"].to_str().unwrap().to_string();
    let (status, _) = app
        .call(Method::PATCH, &format!("{base}/users/{}", created["id"]), Some(&owner), Some(json!({"disabled": true})))
        .await;
    assert_eq!(status, StatusCode::OK);
    // A disabled account can no longer log in.
    let (status, body) = app
        .call(Method::POST, &format!("{base}/auth/login"), None, Some(json!({"email": email, "password": PASSWORD})))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("account_disabled")));

    let (status, log) = app.call(Method::GET, &format!("{base}/audit-log?limit=2"), Some(&owner), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log["items"].as_array().unwrap().len(), 2);
    assert_eq!(log["items"][0]["action"], "staff.update");
    let (_, rest) = app
        .call(
            Method::GET,
            &format!("{base}/audit-log?limit=50&cursor={}", log["next_cursor"].as_str().unwrap()),
            Some(&owner),
            None,
        )
        .await;
    let all: Vec<_> = log["items"].as_array().unwrap().iter().chain(rest["items"].as_array().unwrap()).collect();
    let find =
        |action: &str| all.iter().find(|e| e["action"] == action).unwrap_or_else(|| panic!("{action} not audited"));
    assert_eq!(find("tenant.settings.update")["request_id"], settings_request.as_str());
    assert_eq!(find("staff.create")["request_id"], create_request.as_str());
    assert!(find("staff.create")["actor_label"].as_str().unwrap().starts_with("staff:"));
    // Invalid settings are refused field by field and not audited.
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("{base}/settings"),
            Some(&owner),
            Some(json!({"points_per_yuan": -1, "locale": "!!"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["details"]["fields"].as_array().unwrap().len(), 2);
    // A staff member cannot change their own role.
    let (_, me) = app.call(Method::GET, &format!("{base}/me"), Some(&owner), None).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("{base}/users/{}", me["staff"]["id"]),
            Some(&owner),
            Some(json!({"role": "auditor"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
