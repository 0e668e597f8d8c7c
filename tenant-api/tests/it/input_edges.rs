//! Issue 10, point 6: inputs PostgreSQL cannot store are refused at the edge with a 4xx
//! that names the field (NUL characters, numbers beyond i64 or f64's round trip,
//! negation overflow), bodies of the wrong JSON type are 4xx, stored event data cannot
//! break a read, and manual adjustments are bounded per role by a tenant setting.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, phone, unique};

const HUGE: f64 = 1.797_693_134_862_315_7e308;

fn field(body: &Value) -> String {
    body["error"]["details"]["fields"][0]["field"].as_str().unwrap_or_default().to_string()
}

/// Sends a raw body (exact bytes, e.g. numbers serde_json would not write).
async fn raw(app: &TestApp, method: Method, path: &str, headers: &[(&str, String)], body: &str) -> (StatusCode, Value) {
    let mut req = app.client.request(method, format!("{}{path}", app.base)).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

#[tokio::test]
async fn nul_characters_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let base = format!("/v1/tenants/{}", t.slug);

    // No login needed: registration's nickname.
    let (s, b) = app
        .call(
            Method::POST,
            &format!("{base}/auth/register"),
            None,
            Some(json!({"identifier": phone(), "password": PASSWORD, "nickname": "a\u{0}b"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "nickname");
    assert_eq!(b["error"]["code"], "validation_failed");

    // Search text: the NUL is dropped, the search answers.
    let (s, b) = app.call(Method::GET, &format!("{base}/products?q=caf%00e"), None, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Any other query parameter: refused, named.
    let (s, b) = app.call(Method::GET, &format!("{base}/staff/events?status=ap%00plied"), Some(&owner), None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "status");

    // Staff bodies, at depth, and in keys.
    let (s, b) = app
        .call(
            Method::POST,
            &format!("{base}/staff/products"),
            Some(&owner),
            Some(json!({"name": "cup\u{0}", "kind": "coupon", "points_price": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "name");
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("{base}/staff/levels"),
            Some(&owner),
            Some(json!([{"name": "Gold", "threshold": 0, "benefits": {"no\u{0}te": 1}}])),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "[0].benefits.no\\u0000te");

    // Partner bodies read after the idempotency hash, and events.
    let (s, b) = app
        .partner_post(
            &t,
            &key,
            "/points/credits",
            &unique("c"),
            json!({"items": [{"member_id": 1, "amount": 5, "memo": "x\u{0}"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "items[0].memo");
    let (s, b) = app
        .partner_post(
            &t,
            &key,
            "/events",
            &unique("e"),
            json!({"events": [{"id": "e\u{0}1", "type": "purchase", "member_id": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "events[0].id");

    // A path segment with a NUL names nothing.
    let (s, b) =
        app.partner_post(&t, &key, "/orders/ab%00c/tracking", &unique("t"), json!({"status": "in_transit"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
}

#[tokio::test]
async fn numbers_that_cannot_be_stored_are_refused() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (member, tokens) = app.member(&t, &phone()).await;
    let member_token = tokens["access_token"].as_str().unwrap();
    let id = member["id"].as_i64().unwrap();
    let base = format!("/v1/tenants/{}", t.slug);
    let mut h = bearer(&owner);

    // −2^63 has no i64 opposite (it panicked in a debug build); 2^63 is no i64 at all.
    h.push(("idempotency-key", unique("adj")));
    let adjust = format!("{base}/staff/members/{id}/points/adjustments");
    for amount in ["-9223372036854775808", "9223372036854775808", "-9223372036854775809", "1e400"] {
        let (s, b) = raw(&app, Method::POST, &adjust, &h, &format!(r#"{{"amount": {amount}, "reason": "x"}}"#)).await;
        assert!(s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST, "{amount}: {s} {b}");
        assert!(b["error"]["code"].is_string(), "{b}");
    }

    // Floats beyond the round trip, in rule params, level benefits and event data.
    let (s, b) = app
        .call(
            Method::POST,
            &format!("{base}/staff/rules"),
            Some(&owner),
            Some(json!({"name": "r", "event_type": "read", "script": "[]", "params": {"x": HUGE}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "params.x");
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("{base}/staff/levels"),
            Some(&owner),
            Some(json!([{"name": "Gold", "threshold": 0, "benefits": {"earn_multiplier": -HUGE}}])),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "[0].benefits.earn_multiplier");
    let (s, b) = app
        .call(
            Method::POST,
            &format!("{base}/me/events"),
            Some(member_token),
            Some(json!({"id": "big-1", "type": "read", "data": {"n": HUGE}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "data.n");
    // Ordinary numbers still pass.
    let (s, b) = app
        .call(
            Method::POST,
            &format!("{base}/me/events"),
            Some(member_token),
            Some(json!({"id": "ok-1", "type": "read", "data": {"n": 1.5, "m": -7, "big": 1e15}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.call(Method::GET, &format!("{base}/staff/events"), Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn stored_event_data_that_does_not_read_back_does_not_break_the_page() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (member, _) = app.member(&t, &phone()).await;
    // As written before the edge refused it (or by any other path).
    let sql = format!(
        "INSERT INTO {}.events (event_key, type, member_id, data, occurred_at, source, status) \
         VALUES ('old-1', 'read', $1, '{{\"n\": 1.7976931348623157e308}}'::jsonb, now(), 'member', 'applied')",
        t.schema_name
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(member["id"].as_i64().unwrap()).execute(app.db.control()).await.unwrap();
    let (s, b) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/events", t.slug), Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let row = b["items"].as_array().unwrap().iter().find(|e| e["event_key"] == "old-1").expect("the row is listed");
    assert!(row["data"].is_string() || row["data"].is_object(), "{row}");
}

#[tokio::test]
async fn bodies_of_the_wrong_json_type_are_refused() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let base = format!("/v1/tenants/{}", t.slug);
    let (s, rule) = app
        .call(
            Method::POST,
            &format!("{base}/staff/rules"),
            Some(&owner),
            Some(json!({"name": "r", "event_type": "read", "script": "[]"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let patch = format!("{base}/staff/rules/{}", rule["id"]);
    for body in [json!([null, null]), json!([true, 5]), json!("enabled"), json!(7), json!(null)] {
        let (s, b) = app.call(Method::PATCH, &patch, Some(&owner), Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["error"]["code"], "validation_failed");
    }
    // Nested: a struct from an array, at depth.
    let (s, b) = app
        .call(Method::PUT, &format!("{base}/staff/settings"), Some(&owner), Some(json!({"transfers": [true, 1, 2, 3]})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "transfers");
    // Not JSON at all: 400; not declared as JSON: 415.
    let (s, b) = raw(&app, Method::PATCH, &patch, &bearer(&owner), "{enabled: true}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let resp = app.client.patch(format!("{}{patch}", app.base)).bearer_auth(&owner).body("{}").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The right shape still works.
    let (s, b) = app.call(Method::PATCH, &patch, Some(&owner), Some(json!({"enabled": false}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn manual_adjustments_are_bounded_per_role_by_a_setting() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, cs) = app.staff(&t, "customer_service").await;
    let (member, _) = app.member(&t, &phone()).await;
    let path = format!("/v1/tenants/{}/staff/members/{}/points/adjustments", t.slug, member["id"]);
    let adjust = |token: String, amount: i64| {
        let app = &app;
        let path = path.clone();
        async move {
            let mut h = bearer(&token);
            h.push(("idempotency-key", unique("adj")));
            let (s, _, b) =
                app.call_full(Method::POST, &path, &h, Some(json!({"amount": amount, "reason": "goodwill"}))).await;
            (s, b)
        }
    };
    // Customer service: 1,000 by default, either way.
    let (s, b) = adjust(cs.clone(), 1_000_000_000_000).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "amount");
    assert!(b["error"]["message"].as_str().unwrap().contains("customer_service"), "{b}");
    let (s, b) = adjust(cs.clone(), 1_001).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = adjust(cs.clone(), 1_000).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = adjust(cs.clone(), -1_001).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // The owner: up to the ledger's bound.
    let (s, b) = adjust(owner.clone(), 1_000_000).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = adjust(owner.clone(), 1_000_000_000_001).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");

    // The owner raises customer service's bound; out-of-range settings are refused.
    let settings = format!("/v1/tenants/{}/staff/settings", t.slug);
    let (_, mut current) = app.call(Method::GET, &settings, Some(&owner), None).await;
    assert_eq!(current["adjustment_limits"]["customer_service"], 1_000, "{current}");
    current["adjustment_limits"]["customer_service"] = json!(-1);
    let (s, b) = app.call(Method::PUT, &settings, Some(&owner), Some(current.clone())).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(field(&b), "adjustment_limits.customer_service");
    current["adjustment_limits"]["customer_service"] = json!(5_000);
    let (s, b) = app.call(Method::PUT, &settings, Some(&owner), Some(current)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let started = Instant::now();
    loop {
        let (s, b) = adjust(cs.clone(), 4_000).await;
        if s == StatusCode::CREATED {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the new bound never applied: {s} {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
