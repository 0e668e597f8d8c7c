//! Issue 12, point 9: the mall's own actions reach the rules. A member's first
//! redemption, a completed order, a review, a favorite and a sign-in are emitted into the
//! pipeline in the same transaction as the action, and rules written for them pay once.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, phone, unique};

async fn rule(app: &TestApp, slug: &str, owner: &str, file: &str, event: &str, params: serde_json::Value) {
    let script = std::fs::read_to_string(format!("{}/../examples/rules/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body = json!({"name": file, "event_type": event, "script": script, "params": params});
    let (s, b) = app.call(Method::POST, &format!("/v1/tenants/{slug}/staff/rules"), Some(owner), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// Waits (the rules run right after the request, in the background) until the member's
/// points reach `want`, and a little longer to see they stay there.
async fn points_become(app: &TestApp, t: &platform::directory::Tenant, key: &str, id: i64, want: i64) {
    let mut seen = 0;
    for _ in 0..100 {
        seen = app.balance(t, key, id, "points").await;
        if seen == want {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(app.balance(t, key, id, "points").await, want, "paid once");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("points stayed at {seen}, expected {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_redemption_reviews_favorites_and_sign_ins_reach_the_rules() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    rule(&app, &t.slug, &owner, "first_order_bonus.rhai", "first_redemption", json!({"points": 100})).await;
    rule(&app, &t.slug, &owner, "review_reward.rhai", "review_posted", json!({"points": 20, "text_bonus": 10})).await;
    let once_a_day =
        "if member.today > 1 { return deny(\"once a day\"); } [award(\"points\", params.points, event.type)]";
    for (event, points) in [("favorited", 2), ("logged_in", 1)] {
        let body = json!({"name": event, "event_type": event, "script": once_a_day, "params": {"points": points}});
        let (s, b) =
            app.call(Method::POST, &format!("/v1/tenants/{}/staff/rules", t.slug), Some(&owner), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let product = json!({"name": "咖啡券 Coffee", "kind": "coupon", "points_price": 300, "stock": 10,
        "status": "listed", "review_state": "approved"});
    let (s, p) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/products", t.slug), Some(&owner), Some(product)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");

    let who = phone();
    let (m, tokens) = app.member(&t, &who).await;
    let id = m["id"].as_i64().unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    app.credit(&t, &key, id, 1_000, None).await;

    // First redemption: +100, once; a second redemption pays nothing more.
    let redeem = |n: u8| {
        let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique(&format!("r{n}")))];
        let path = format!("/v1/tenants/{}/me/redemptions", t.slug);
        let app = &app;
        let body = json!({"product_id": p["id"]});
        async move { app.call_full(Method::POST, &path, &headers, Some(body)).await }
    };
    let (s, _, order) = redeem(1).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    points_become(&app, &t, &key, id, 1_000 - 300 + 100).await;
    let (s, _, _) = redeem(2).await;
    assert_eq!(s, StatusCode::CREATED);
    points_become(&app, &t, &key, id, 800 - 300).await;

    // A completed order's review with text: +30.
    let oid = order["id"].as_i64().unwrap();
    if order["status"] != "completed" {
        for action in ["ship", "receive"] {
            let (path, token) = if action == "ship" {
                (format!("/v1/tenants/{}/staff/orders/{oid}/ship", t.slug), owner.clone())
            } else {
                (format!("/v1/tenants/{}/me/orders/{oid}/receive", t.slug), token.clone())
            };
            let (s, b) = app
                .call(Method::POST, &path, Some(&token), Some(json!({"carrier": "顺丰", "tracking_no": "SF1"})))
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
    }
    let review = json!({"rating": 5, "body": "很好喝"});
    let path = format!("/v1/tenants/{}/me/orders/{oid}/review", t.slug);
    let (s, b) = app.call(Method::POST, &path, Some(&token), Some(review)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    points_become(&app, &t, &key, id, 500 + 30).await;

    // A favorite: +2 once (adding it again is no new favorite).
    let fav = format!("/v1/tenants/{}/me/favorites/{}", t.slug, p["id"]);
    for _ in 0..2 {
        let (s, _) = app.call(Method::PUT, &fav, Some(&token), None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    points_become(&app, &t, &key, id, 532).await;

    // Signing in: +1 the first time today; the second sign-in is denied by the rule.
    let login = json!({"identifier": who, "password": crate::common::PASSWORD});
    for _ in 0..2 {
        let (s, b) =
            app.call(Method::POST, &format!("/v1/tenants/{}/auth/login", t.slug), None, Some(login.clone())).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    points_become(&app, &t, &key, id, 533).await;

    // A member's app may no longer post the mall's own events itself.
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/me/events", t.slug),
            &[("authorization", format!("Bearer {token}"))],
            Some(json!({"id": unique("e"), "type": "favorited", "data": {}})),
        )
        .await;
    assert!(s.is_client_error(), "{s}: {b}");
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn a_level_change_is_told_to_the_member_and_kept_in_their_history() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap();
    // The default level table: 普通 from 0, 银卡 from 1,000 experience.
    let credit = json!({"items": [{"member_id": m["id"], "amount": 1_200, "currency": "exp"}]});
    let (s, b) = app.partner_post(&t, &key, "/points/credits", &unique("c"), credit).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, msgs) = app.call(Method::GET, &format!("/v1/tenants/{}/me/messages", t.slug), Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{msgs}");
    let told = msgs["items"].as_array().unwrap().iter().find(|m| m["kind"] == "level_changed").cloned();
    let told = told.unwrap_or_else(|| panic!("no level message: {msgs}"));
    assert_eq!(told["body"], "您的会员等级已变为「银卡」。", "{told}");
    let (s, h) = app.call(Method::GET, &format!("/v1/tenants/{}/me/level-changes", t.slug), Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!((h[0]["from_level"].as_str(), h[0]["to_level"].as_str()), (Some("普通"), Some("银卡")), "{h}");
}
