//! T4: nothing of tenant A is reachable with tenant B's credentials — checked on every
//! tenant route the OpenAPI document lists, so new routes are covered as they appear.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, phone};

struct Creds {
    staff_token: String,
    staff_email: String,
    staff_refresh: String,
    member_token: String,
    member_refresh: String,
    member_phone: String,
    api_key: String,
}

async fn creds(app: &TestApp, t: &platform::directory::Tenant) -> (Creds, Vec<i64>) {
    let (staff_email, staff_token) = app.staff(t, "owner").await;
    let staff_refresh = app.staff_login(t, &staff_email).await["refresh_token"].as_str().unwrap().to_string();
    let member_phone = phone();
    let (member, tokens) = app.member(t, &member_phone).await;
    let (status, key) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/api-keys", t.slug),
            Some(&staff_token),
            Some(json!({"name": "pos", "scopes": platform::auth::api_keys::SCOPES})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (status, me) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/me", t.slug), Some(&staff_token), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids = vec![me["staff"]["id"].as_i64().unwrap(), member["id"].as_i64().unwrap(), key["id"].as_i64().unwrap()];
    (
        Creds {
            staff_token,
            staff_email,
            staff_refresh,
            member_token: tokens["access_token"].as_str().unwrap().into(),
            member_refresh: tokens["refresh_token"].as_str().unwrap().into(),
            member_phone,
            api_key: key["secret"].as_str().unwrap().into(),
        },
        ids,
    )
}

fn method(m: &str) -> Method {
    m.to_uppercase().parse().unwrap()
}

#[tokio::test]
async fn tenant_b_credentials_never_reach_tenant_a_on_any_route() {
    let app = TestApp::spawn().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let (ca, a_ids) = creds(&app, &a).await;
    let (cb, _) = creds(&app, &b).await;

    // A's own credentials work (the check below is not vacuous).
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/me", a.slug), Some(&ca.member_token), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = app
        .call_full(
            Method::GET,
            &format!("/v1/tenants/{}/partner/whoami", a.slug),
            &[("x-api-key", ca.api_key.clone())],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let (_, spec) = app.call(Method::GET, "/openapi.json", None, None).await;
    let paths = spec["paths"].as_object().unwrap();
    let mut checked = 0;
    let mut public = vec![];
    for (template, item) in paths {
        if !template.contains("{tenant}") {
            continue;
        }
        for (m, op) in item.as_object().unwrap() {
            let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            if !secured {
                public.push(format!("{m} {template}"));
                continue;
            }
            let id_values: Vec<i64> = if template.contains("{id}") { a_ids.clone() } else { vec![0] };
            for id in id_values {
                let path = template.replace("{tenant}", &a.slug).replace("{id}", &id.to_string());
                let body = matches!(m.as_str(), "post" | "put" | "patch").then(|| json!({}));
                for headers in [
                    vec![("authorization", format!("Bearer {}", cb.staff_token))],
                    vec![("authorization", format!("Bearer {}", cb.member_token))],
                    vec![("x-api-key", cb.api_key.clone())],
                ] {
                    let (status, _, resp) = app.call_full(method(m), &path, &headers, body.clone()).await;
                    assert!(
                        matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                        "{m} {path} with B's {:?} gave {status}: {resp}",
                        headers[0].0
                    );
                    let text = resp.to_string();
                    assert!(
                        !text.contains(&ca.member_phone) && !text.contains(&ca.staff_email),
                        "A's data leaked: {text}"
                    );
                    assert!(resp["error"]["code"].is_string(), "JSON error expected: {resp}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} requests checked; is the OpenAPI document complete?");

    // Public routes of A refuse B's secrets too.
    let cases = [
        ("/staff/auth/login", json!({"email": cb.staff_email, "password": PASSWORD})),
        ("/staff/auth/refresh", json!({"refresh_token": cb.staff_refresh})),
        ("/auth/login", json!({"identifier": cb.member_phone, "password": PASSWORD})),
        ("/auth/refresh", json!({"refresh_token": cb.member_refresh})),
    ];
    for (suffix, body) in cases {
        let path = format!("/v1/tenants/{}{}", a.slug, suffix);
        let (status, resp) = app.call(Method::POST, &path, None, Some(body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {resp}");
    }
    // And B's tokens still work at B afterwards (refresh tokens were not used up at A).
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/auth/refresh", b.slug),
            None,
            Some(json!({"refresh_token": cb.member_refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/auth/refresh", b.slug),
            None,
            Some(json!({"refresh_token": cb.staff_refresh})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(public.iter().any(|p| p.contains("/auth/login")), "{public:?}");
}

#[tokio::test]
async fn tenant_credentials_do_not_open_platform_or_alliance_routes() {
    let app = TestApp::spawn().await;
    let a = app.tenant().await;
    let (ca, _) = creds(&app, &a).await;
    for token in [&ca.staff_token, &ca.member_token] {
        for path in ["/v1/platform/tenants", "/v1/platform/alliances", "/v1/platform/tombstones"] {
            let (status, body) = app.call(Method::GET, path, Some(token), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        }
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/platform/tenants",
            Some(&ca.staff_token),
            Some(json!({"slug": "evil-tenant", "name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A platform token does not open merchant staff routes either.
    let (status, _) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/me", a.slug), Some(&app.platform_token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Issue 12, point 6: the alliance audience. Every alliance route of the OpenAPI document
/// refuses another alliance's admin and the alliance's own malls' staff and members;
/// every mall route refuses the alliance's admin (alliance admins see alliance figures,
/// never a mall's ledgers or its members' data).
#[tokio::test]
async fn alliance_credentials_reach_only_their_own_alliance_routes() {
    let app = TestApp::spawn().await;
    let (x, y) = (crate::alliance::alliance(&app).await, crate::alliance::alliance(&app).await);
    let mall = crate::alliance::mall_in(&app, &x.slug).await;
    let (cm, mut ids) = creds(&app, &mall).await;
    let (admin_x, admin_y) =
        (crate::budgets::alliance_admin(&app, &x.slug).await, crate::budgets::alliance_admin(&app, &y.slug).await);
    // X's admin is not refused for nothing: its own figures answer.
    let (s, _) = app.call(Method::GET, &format!("/v1/alliances/{}/budgets", x.slug), Some(&admin_x), None).await;
    assert_eq!(s, StatusCode::OK);
    // X has a webhook endpoint; its id is tried on every `{id}` route.
    let hooks = format!("/v1/alliances/{}/webhooks", x.slug);
    let new = json!({"url": "http://127.0.0.1:9/x", "event_types": ["settlement.closed"]});
    let (s, hook) = app.call(Method::POST, &hooks, Some(&admin_x), Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    ids.push(hook["id"].as_i64().unwrap());

    let (_, spec) = app.call(Method::GET, "/openapi.json", None, None).await;
    let fill = |template: &str, id: i64| {
        template
            .replace("{alliance}", &x.slug)
            .replace("{tenant}", &mall.slug)
            .replace("{period}", "2026-11")
            .replace("{id}", &id.to_string())
    };
    let (mut alliance_routes, mut mall_routes) = (0, 0);
    for (template, item) in spec["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .map(|s| s.iter().filter_map(|r| r.as_object()).flat_map(|r| r.keys().map(String::as_str)).collect())
                .unwrap_or_default();
            let tokens: Vec<&str> = if schemes.contains(&"alliance_jwt") {
                alliance_routes += 1;
                vec![&admin_y, &cm.staff_token, &cm.member_token]
            } else if template.contains("{tenant}") && !schemes.is_empty() {
                mall_routes += 1;
                vec![&admin_x]
            } else {
                continue;
            };
            let body = matches!(m.as_str(), "post" | "put" | "patch").then(|| json!({}));
            for id in if template.contains("{id}") { ids.clone() } else { vec![0] } {
                let path = fill(template, id);
                for token in &tokens {
                    let (status, resp) = app.call(method(m), &path, Some(token), body.clone()).await;
                    assert!(
                        matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                        "{m} {path} gave {status}: {resp}"
                    );
                    let text = resp.to_string();
                    assert!(!text.contains(&cm.member_phone) && !text.contains(&cm.staff_email), "leaked: {text}");
                }
            }
        }
    }
    assert!(alliance_routes >= 20 && mall_routes >= 100, "{alliance_routes} alliance and {mall_routes} mall routes");
    // Nothing the others tried changed X's endpoint.
    let (s, list) = app.call(Method::GET, &hooks, Some(&admin_x), None).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!((&list[0]["url"], &list[0]["enabled"]), (&json!("http://127.0.0.1:9/x"), &json!(true)));
}
