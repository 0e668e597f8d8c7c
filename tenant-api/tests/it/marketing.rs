//! Marketing and members' own data: lottery odds and stock over 10,000 draws, the
//! built-in check-in rule and calendar, webview hand-off, favorites, profile, tags.

use std::sync::Arc;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, phone, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_draws_respect_stock_and_odds() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let (s, l) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/lotteries", t.slug),
            Some(&owner),
            Some(json!({
            "name": "大转盘", "cost": 10,
            "prizes": [
                {"name": "iPad", "kind": "item", "weight": 100, "stock": 50},
                {"name": "50 points", "kind": "points", "points": 50, "weight": 1000},
                {"name": "5 points", "kind": "points", "points": 5, "weight": 3000}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let lid = l["id"].as_i64().unwrap();
    let (s, _) = app
        .call(Method::POST, &format!("/v1/tenants/{}/staff/lotteries", t.slug), Some(&owner), Some(json!({"name": "x", "cost": 1, "prizes": [{"name": "a", "kind": "item", "weight": 9000}, {"name": "b", "kind": "item", "weight": 2000}]})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "weights above 10000 are refused");
    let (s, e) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/lotteries", t.slug),
            Some(&owner),
            Some(json!({"name": "x", "cost": 1, "prizes": [{"name": "a", "kind": "item", "points": -1, "weight": 1}]})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("prizes.points")),
        "negative points, even on an item prize, are refused (they were a 500): {e}"
    );
    // Ten members with enough points for 1,000 draws each.
    let mut ids = vec![];
    for _ in 0..10 {
        let (m, _) = app.member(&t, &phone()).await;
        let id = m["id"].as_i64().unwrap();
        app.credit(&t, &key, id, 10_000, None).await;
        ids.push(id);
    }
    // One draw over HTTP (and its replay)…
    let (m, tokens) = app.member(&t, &phone()).await;
    app.credit(&t, &key, m["id"].as_i64().unwrap(), 100, None).await;
    let idem = unique("d");
    let headers = vec![
        ("authorization", format!("Bearer {}", tokens["access_token"].as_str().unwrap())),
        ("idempotency-key", idem),
    ];
    let (s, _, d1) =
        app.call_full(Method::POST, &format!("/v1/tenants/{}/me/lotteries/{lid}/draws", t.slug), &headers, None).await;
    assert_eq!(s, StatusCode::CREATED, "{d1}");
    let (_, _, d2) =
        app.call_full(Method::POST, &format!("/v1/tenants/{}/me/lotteries/{lid}/draws", t.slug), &headers, None).await;
    assert_eq!(d1["draw_id"], d2["draw_id"], "a replay does not draw again");
    // … and 10,000 through the domain, each in its own transaction as over HTTP, the
    // ten members at once.
    let tenant = platform::directory::find_by_slug(app.db.control(), &t.slug).await.unwrap().unwrap();
    let mut tasks = vec![];
    for chunk in ids.chunks(1) {
        let (app, tenant, chunk) = (app.clone(), tenant.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut won = std::collections::HashMap::<String, i64>::new();
            for member in chunk {
                for _ in 0..1000 {
                    let mut tx = app.db.tenant_tx(&tenant.cluster, &tenant.schema_name).await.unwrap();
                    let d =
                        platform::marketing::lottery::draw(&mut tx, &tenant, lid, member, Utc::now()).await.unwrap();
                    tx.commit().await.unwrap();
                    *won.entry(d.prize.map_or("none".into(), |p| p.name)).or_default() += 1;
                }
            }
            won
        }));
    }
    let mut won = std::collections::HashMap::<String, i64>::new();
    for task in tasks {
        for (k, v) in task.await.unwrap() {
            *won.entry(k).or_default() += v;
        }
    }
    assert_eq!(won.values().sum::<i64>(), 10_000);
    // ~100 draws hit the iPad's 1%, but only 50 exist (the draw over HTTP above may have
    // won one of them: 1 time in 100).
    let over_http = i64::from(d1["prize"]["name"] == "iPad");
    assert_eq!(won.get("iPad").copied().unwrap_or(0) + over_http, 50, "{won:?} and over HTTP {d1}");
    let fifty = won.get("50 points").copied().unwrap_or(0);
    let five = won.get("5 points").copied().unwrap_or(0);
    assert!((850..=1150).contains(&fifty), "10% ± 5σ: {won:?}");
    assert!((2770..=3230).contains(&five), "30% ± 5σ: {won:?}");
    let (_, l) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/lotteries/{lid}", t.slug), Some(&owner), None).await;
    assert_eq!(l["prizes"][0]["won"], 50);
    // Every draw cost 10 and every points prize was paid.
    let mut total = 0;
    for id in &ids {
        total += app.balance(&t, &key, *id, "points").await;
    }
    let (credited, spent) = (10 * 10_000, 10_000 * 10);
    assert_eq!(total, credited - spent + 50 * fifty + 5 * five);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn check_in_uses_the_built_in_streak_table_once_a_day() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap();
    let path = format!("/v1/tenants/{}/me/checkins", t.slug);
    let (s, o) = app.call(Method::POST, &path, Some(token), None).await;
    assert_eq!((s, o["status"].as_str()), (StatusCode::OK, Some("applied")), "{o}");
    assert_eq!(o["effects"][0]["name"], "built-in check-in");
    assert_eq!(app.balance(&t, &key, m["id"].as_i64().unwrap(), "points").await, 5);
    let (_, o) = app.call(Method::POST, &path, Some(token), None).await;
    assert_eq!(o["replayed"], true, "once a day");
    assert_eq!(app.balance(&t, &key, m["id"].as_i64().unwrap(), "points").await, 5);
    let (s, c) = app.call(Method::GET, &path, Some(token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["checked_in_today"], true);
    assert_eq!(c["streak"], 1);
    // The mall's day (Asia/Shanghai by default), not UTC's.
    let beijing_today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    assert_eq!(c["days"], json!([beijing_today.to_string()]));
    let (s, _) = app.call(Method::GET, &format!("{path}?month=2026-13"), Some(token), None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_partner_app_hands_a_member_over_to_the_webview() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let (s, _, m) = app
        .call_full(
            Method::PUT,
            &format!("/v1/tenants/{}/partner/members/by-external-id/crm-42", t.slug),
            &[("x-api-key", key.clone())],
            Some(json!({"phone": phone(), "nickname": "CRM user"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let (_, sec) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/webview-secret", t.slug), Some(&owner), None).await;
    let secret = sec["secret"].as_str().unwrap().to_string();
    let now = Utc::now().timestamp();
    let sign = |claims: serde_json::Value, secret: &str| {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap()
    };
    let good = sign(
        json!({"aud": "pointsmall:webview", "external_id": "crm-42", "jti": unique("j"), "iat": now, "exp": now + 120}),
        &secret,
    );
    let path = format!("/v1/tenants/{}/auth/webview", t.slug);
    let (s, pair) = app.call(Method::POST, &path, None, Some(json!({"token": good}))).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let (_, me) =
        app.call(Method::GET, &format!("/v1/tenants/{}/me", t.slug), pair["access_token"].as_str(), None).await;
    assert_eq!(me["id"], m["id"]);
    assert_eq!(me["external_id"], "crm-42");
    for (name, token) in [
        ("replayed", good.clone()),
        (
            "wrong secret",
            sign(
                json!({"aud": "pointsmall:webview", "external_id": "crm-42", "jti": unique("j"), "iat": now, "exp": now + 60}),
                "not-the-secret",
            ),
        ),
        (
            "expired",
            sign(
                json!({"aud": "pointsmall:webview", "external_id": "crm-42", "jti": unique("j"), "iat": now - 600, "exp": now - 300}),
                &secret,
            ),
        ),
        (
            "too long-lived",
            sign(
                json!({"aud": "pointsmall:webview", "external_id": "crm-42", "jti": unique("j"), "iat": now, "exp": now + 3600}),
                &secret,
            ),
        ),
        (
            "dated a year ahead",
            sign(
                json!({"aud": "pointsmall:webview", "external_id": "crm-42", "jti": unique("j"),
                    "iat": now + 365 * 86400, "exp": now + 365 * 86400 + 120}),
                &secret,
            ),
        ),
        (
            "unknown member",
            sign(
                json!({"aud": "pointsmall:webview", "external_id": "nobody", "jti": unique("j"), "iat": now, "exp": now + 60}),
                &secret,
            ),
        ),
        (
            "wrong audience",
            sign(
                json!({"aud": "pointsmall:member", "external_id": "crm-42", "jti": unique("j"), "iat": now, "exp": now + 60}),
                &secret,
            ),
        ),
    ] {
        let (s, b) = app.call(Method::POST, &path, None, Some(json!({"token": token}))).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("webview_token_invalid")),
            "{name}"
        );
    }
}

#[tokio::test]
async fn favorites_profile_tags_and_segments() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, p) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", t.slug),
            Some(&owner),
            Some(json!({"name": "Fav", "kind": "coupon", "points_price": 1})),
        )
        .await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap();
    let fav = format!("/v1/tenants/{}/me/favorites/{}", t.slug, p["id"]);
    assert_eq!(app.call(Method::PUT, &fav, Some(token), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::PUT, &fav, Some(token), None).await.0, StatusCode::NO_CONTENT, "idempotent");
    let (_, favs) = app.call(Method::GET, &format!("/v1/tenants/{}/me/favorites", t.slug), Some(token), None).await;
    assert_eq!(favs[0]["name"], "Fav");
    assert_eq!(
        app.call(Method::PUT, &format!("/v1/tenants/{}/me/favorites/999999", t.slug), Some(token), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.call(Method::DELETE, &fav, Some(token), None).await.0, StatusCode::NO_CONTENT);
    let (s, me) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/me", t.slug),
            Some(token),
            Some(json!({"avatar_url": "https://img.example/a.png", "notifications": {"marketing": true}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["notifications"], json!({"order_updates": true, "expiry_reminders": true, "marketing": true}));
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/me", t.slug),
            Some(token),
            Some(json!({"avatar_url": "javascript:alert(1)"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/me", t.slug),
            Some(token),
            Some(json!({"notifications": {"sms_spam": true}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Tags and segments.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/members/{}/tags", t.slug, m["id"]),
            Some(&owner),
            Some(json!({"tag": "vip"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.member(&t, &phone()).await;
    let (_, vips) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/members?tag=vip", t.slug), Some(&owner), None).await;
    assert_eq!(vips["items"].as_array().unwrap().len(), 1);
    assert_eq!(vips["items"][0]["id"], m["id"]);
    // Nobody has been inactive for 30 days yet; a member last active long ago is found.
    let (_, inactive) = app
        .call(Method::GET, &format!("/v1/tenants/{}/staff/members?inactive_days=30", t.slug), Some(&owner), None)
        .await;
    assert_eq!(inactive["items"].as_array().unwrap().len(), 0);
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    sqlx::query("UPDATE members SET last_active_at = now() - interval '40 days', created_at = now() - interval '90 days' WHERE id = $1")
        .bind(m["id"].as_i64())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (_, inactive) = app
        .call(Method::GET, &format!("/v1/tenants/{}/staff/members?inactive_days=30", t.slug), Some(&owner), None)
        .await;
    assert_eq!(inactive["items"][0]["id"], m["id"]);
}

#[tokio::test]
async fn won_lottery_goods_become_an_order_that_staff_ship() {
    use serde_json::Value;
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let base = format!("/v1/tenants/{}", t.slug);
    let (s, p) = app
        .call(
            Method::POST,
            &format!("{base}/staff/products"),
            Some(&owner),
            Some(json!({"name": "Tea set", "kind": "physical", "points_price": 5000, "stock": 2,
                "status": "listed", "review_state": "approved"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let pid = p["id"].as_i64().unwrap();
    // Goods prizes are items naming a product of this mall.
    let lottery = |prizes: Value| json!({"name": "Wheel", "cost": 10, "prizes": prizes});
    for (bad, field) in [
        (json!([{"name": "x", "kind": "points", "points": 5, "weight": 10, "product_id": pid}]), "prizes.product_id"),
        (json!([{"name": "x", "kind": "item", "weight": 10, "product_id": 999_999}]), "prizes.product_id"),
    ] {
        let (s, e) = app.call(Method::POST, &format!("{base}/staff/lotteries"), Some(&owner), Some(lottery(bad))).await;
        assert_eq!(
            (s, e["error"]["details"]["fields"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{e}"
        );
    }
    let prizes = json!([{"name": "Tea set", "kind": "item", "product_id": pid, "weight": 10000, "stock": 5}]);
    let (s, l) = app.call(Method::POST, &format!("{base}/staff/lotteries"), Some(&owner), Some(lottery(prizes))).await;
    assert_eq!((s, l["prizes"][0]["product_id"].as_i64()), (StatusCode::CREATED, Some(pid)), "{l}");
    let lid = l["id"].as_i64().unwrap();

    let (m, tokens) = app.member(&t, &phone()).await;
    let member = m["id"].as_i64().unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    app.credit(&t, &key, member, 100, None).await;
    let (s, _) = app
        .call(
            Method::POST,
            &format!("{base}/me/addresses"),
            Some(&token),
            Some(json!({"name": "王五", "phone": "13800001111", "region": "上海市", "detail": "南京路 1 号", "is_default": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let draw = async |idem: &str| {
        let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", idem.to_string())];
        let (s, _, d) = app.call_full(Method::POST, &format!("{base}/me/lotteries/{lid}/draws"), &headers, None).await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        d
    };
    let stock = async || {
        let (_, p) = app.call(Method::GET, &format!("{base}/staff/products/{pid}"), Some(&owner), None).await;
        p["stock"].as_i64().unwrap()
    };

    // The draw wins the tea set: an order for it, zero points, waiting for shipment to
    // the member's default address; one taken from the product's stock.
    let idem = unique("d");
    let d = draw(&idem).await;
    assert_eq!(d["prize"]["product_id"].as_i64(), Some(pid), "{d}");
    let order = d["order"].clone();
    assert_eq!(
        (order["status"].as_str(), order["points_amount"].as_i64(), order["product_id"].as_i64()),
        (Some("pending_shipment"), Some(0), Some(pid)),
        "{d}"
    );
    assert_eq!(order["address"]["detail"], "南京路 1 号");
    assert_eq!(stock().await, 1);
    assert_eq!(app.balance(&t, &key, member, "points").await, 90, "only the draw's cost is charged");
    // A replay of the draw answers the same order and takes nothing more.
    let again = draw(&idem).await;
    assert_eq!((again["draw_id"].clone(), again["order"]["id"].clone()), (d["draw_id"].clone(), order["id"].clone()));
    assert_eq!(stock().await, 1);

    // The member sees it among their orders, staff among the mall's and on the draw.
    let oid = order["id"].as_i64().unwrap();
    let (_, mine) = app.call(Method::GET, &format!("{base}/me/orders"), Some(&token), None).await;
    assert!(mine["items"].as_array().unwrap().iter().any(|o| o["id"] == oid), "{mine}");
    let (_, all) = app.call(Method::GET, &format!("{base}/staff/orders"), Some(&owner), None).await;
    assert!(all["items"].as_array().unwrap().iter().any(|o| o["id"] == oid), "{all}");
    let (_, draws) = app.call(Method::GET, &format!("{base}/staff/lotteries/{lid}/draws"), Some(&owner), None).await;
    assert_eq!(draws["items"][0]["order_id"].as_i64(), Some(oid), "{draws}");
    // Staff ship it like any other order.
    let (s, shipped) = app
        .call(
            Method::POST,
            &format!("{base}/staff/orders/{oid}/ship"),
            Some(&owner),
            Some(json!({"carrier": "顺丰", "tracking_no": "SF42"})),
        )
        .await;
    assert_eq!((s, shipped["status"].as_str()), (StatusCode::OK, Some("shipped")), "{shipped}");

    // The last one in stock is won; then the product has none left and a win of it is
    // "no prize" (the prize's count stays at what was delivered).
    let d = draw(&unique("d")).await;
    assert!(d["order"]["id"].is_i64(), "{d}");
    assert_eq!(stock().await, 0);
    let d = draw(&unique("d")).await;
    assert!(d["prize"].is_null() && d["order"].is_null(), "{d}");
    let (_, l) = app.call(Method::GET, &format!("{base}/staff/lotteries/{lid}"), Some(&owner), None).await;
    assert_eq!(l["prizes"][0]["won"].as_i64(), Some(2), "{l}");
    app.assert_ledger_sound(&t).await;
}
