//! The mall end to end: a flash sale that never oversells, orders through their states,
//! points + cash with a signed payment callback and timeouts, virtual codes, browsing.

use std::sync::Arc;

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone, unique};

async fn product(app: &TestApp, t: &platform::directory::Tenant, owner: &str, body: Value) -> Value {
    let (s, p) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/products", t.slug), Some(owner), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    p
}

/// A mall whose owner has one coupon on sale: "Mug", 10 points, stock 5.
async fn mug_on_sale() -> (TestApp, platform::directory::Tenant, String, Value) {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let body = json!({"name": "Mug", "kind": "coupon", "points_price": 10, "stock": 5,
        "status": "listed", "review_state": "approved"});
    let p = product(&app, &t, &owner, body).await;
    (app, t, owner, p)
}

/// A member access token minted with the app's key, with a session opened in the
/// database (what a login would return, without the argon2 work).
pub(crate) async fn member_token(app: &TestApp, t: &platform::directory::Tenant, member_id: i64) -> String {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let session =
        platform::auth::sessions::open(&mut tx, platform::auth::sessions::Store::Member, member_id).await.unwrap();
    tx.commit().await.unwrap();
    let now = Utc::now().timestamp();
    let claims = json!({"iss": "pointsmall", "sub": member_id.to_string(), "aud": "pointsmall:member", "exp": now + 600,
        "iat": now, "jti": unique("j"), "tid": t.id, "sid": session.family});
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&app.secret)).unwrap()
}

async fn redeem(app: &TestApp, t: &platform::directory::Tenant, token: &str, body: Value) -> (StatusCode, Value) {
    let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("r"))];
    let (s, _, b) =
        app.call_full(Method::POST, &format!("/v1/tenants/{}/me/redemptions", t.slug), &headers, Some(body)).await;
    (s, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_of_2000_attempts_sells_exactly_the_stock() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let p = product(
        &app,
        &t,
        &owner,
        json!({"name": "秒杀 Flash mug", "kind": "coupon", "points_price": 500, "stock": 100,
        "status": "listed", "review_state": "approved", "per_member_limit": 1, "low_stock_threshold": 10}),
    )
    .await;
    // 500 members with 1,000 points each (created directly: argon2 for 500 sign-ups would
    // only slow the test down).
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO members (phone, invite_code) SELECT '1' || lpad(g::text, 10, '0'), 'F' || g FROM generate_series(1, 500) g RETURNING id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let items: Vec<Value> = ids.iter().map(|id| json!({"member_id": id, "amount": 1000})).collect();
    let (s, b) = app.partner_post(&t, &key, "/points/credits", &unique("k"), json!({"items": items})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // 2,000 attempts at once: four per member.
    let mut tasks = vec![];
    for _ in 0..4 {
        for id in &ids {
            let (app, t, token) = (app.clone(), t.clone(), member_token(&app, &t, *id).await);
            let body = json!({"product_id": p["id"]});
            let id = *id;
            tasks.push(tokio::spawn(async move {
                let idem = unique("r");
                let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", idem.clone())];
                let path = format!("/v1/tenants/{}/me/redemptions", t.slug);
                let (s, _, b) = app.call_full(Method::POST, &path, &headers, Some(body)).await;
                (id, idem, s, b)
            }));
        }
    }
    let mut won = std::collections::HashMap::new();
    let (mut sold_out, mut limit) = (0, 0);
    let mut a_winner = None;
    for task in tasks {
        let (id, idem, s, b) = task.await.unwrap();
        match s {
            StatusCode::CREATED => {
                *won.entry(id).or_insert(0) += 1;
                a_winner.get_or_insert((id, idem, b));
            }
            StatusCode::CONFLICT if b["error"]["code"] == "sold_out" => sold_out += 1,
            StatusCode::CONFLICT if b["error"]["code"] == "limit_reached" => limit += 1,
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(won.len(), 100, "exactly the stock is sold");
    assert!(won.values().all(|n| *n == 1), "nobody wins twice");
    assert_eq!(sold_out + limit, 1900);
    let (_, prod) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/products/{}", t.slug, p["id"]), Some(&owner), None).await;
    assert_eq!((prod["stock"].as_i64(), prod["redeemed_count"].as_i64()), (Some(0), Some(100)));
    // Winners paid exactly once; everyone else is untouched.
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let balances: Vec<(i64, i64)> =
        sqlx::query_as("SELECT member_id, balance FROM accounts WHERE currency = 'points' AND member_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE product_id = $1")
        .bind(p["id"].as_i64())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_alerts WHERE product_id = $1")
        .bind(p["id"].as_i64())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let reservations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stock_reservations").fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(orders, 100);
    assert_eq!(alerts, 1, "one low-stock alert when stock fell to the threshold");
    assert_eq!(reservations, 0, "every sale consumed the stock it reserved");
    for (id, balance) in balances {
        let want = if won.contains_key(&id) { 500 } else { 1000 };
        assert_eq!(balance, want, "member {id}");
    }
    app.assert_ledger_sound(&t).await;

    // Sold out, and known to be: a winner replaying its key still gets its order back.
    let (winner, idem, order) = a_winner.unwrap();
    let path = format!("/v1/tenants/{}/me/redemptions", t.slug);
    let token = member_token(&app, &t, winner).await;
    let headers = |idem: String| vec![("authorization", format!("Bearer {token}")), ("idempotency-key", idem)];
    let body = json!({"product_id": p["id"]});
    let (s, h, b) = app.call_full(Method::POST, &path, &headers(idem.clone()), Some(body.clone())).await;
    assert_eq!((s, b["order_no"].as_str()), (StatusCode::CREATED, order["order_no"].as_str()), "{b}");
    assert_eq!(h.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    let other = json!({"product_id": p["id"], "quantity": 1});
    let (s, _, b) = app.call_full(Method::POST, &path, &headers(idem.clone()), Some(other)).await;
    assert_eq!(b["error"]["code"], "idempotency_key_reused", "{s}: the key's first request was another body");
    let (s, _, b) = app.call_full(Method::POST, &path, &headers(unique("r")), Some(body)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("sold_out")), "a new key is refused");
    // …and a restock is redeemable at once (the memo of the sell-out is dropped).
    let loser = *ids.iter().find(|id| !won.contains_key(id)).unwrap();
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/staff/products/{}", t.slug, p["id"]),
            Some(&owner),
            Some(json!({"stock": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = redeem(&app, &t, &member_token(&app, &t, loser).await, json!({"product_id": p["id"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// A server that dies between reserving a sale's stock and committing its order leaves
/// a reservation behind: the mall's jobs give it back once it is stale, and only then.
#[tokio::test]
async fn stock_reserved_by_an_order_that_never_committed_comes_back_when_stale() {
    let (app, t, owner, p) = mug_on_sale().await;
    // Two reservations as `stock::take` leaves them (stock taken, no order): one made
    // 11 minutes ago, one just now.
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    for (quantity, age_secs) in [(2, 660), (1, 0)] {
        sqlx::query("UPDATE products SET stock = stock - $2, redeemed_count = redeemed_count + $2 WHERE id = $1")
            .bind(p["id"].as_i64())
            .bind(quantity)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO stock_reservations (product_id, quantity, created_at) \
             VALUES ($1, $2, now() - make_interval(secs => $3))",
        )
        .bind(p["id"].as_i64())
        .bind(quantity)
        .bind(f64::from(age_secs))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let stock = async || {
        let path = format!("/v1/tenants/{}/staff/products/{}", t.slug, p["id"]);
        let (_, prod) = app.call(Method::GET, &path, Some(&owner), None).await;
        (prod["stock"].as_i64().unwrap(), prod["redeemed_count"].as_i64().unwrap())
    };
    assert_eq!(stock().await, (2, 3));
    let report = app.jobs(&t, Utc::now()).await;
    assert_eq!(report.stale_reservations, 1, "only the stale one");
    assert_eq!(stock().await, (4, 1));
    let report = app.jobs(&t, Utc::now() + Duration::seconds(601)).await;
    assert_eq!(report.stale_reservations, 1);
    assert_eq!(stock().await, (5, 0), "all of the stock is back");
    let report = app.jobs(&t, Utc::now() + Duration::seconds(601)).await;
    assert_eq!(report.stale_reservations, 0, "given back once");
}

/// Orders name their product without a foreign key (whose locks piled up on a flash
/// sale's product row); the reference still holds: the product must exist and is never
/// deleted.
#[tokio::test]
async fn orders_name_products_that_exist_without_locking_them() {
    let (app, t, _, p) = mug_on_sale().await;
    let (m, _) = app.member(&t, "13900000077").await;
    let member = m["id"].as_i64().unwrap();
    let insert = "INSERT INTO orders (order_no, member_id, product_id, product_name, kind, quantity, currency, \
         points_amount, cash_fen, status) VALUES ($1, $2, $3, 'Mug', 'coupon', 1, 'points', 10, 0, 'completed')";
    // An order in flight (not committed) leaves its product free: a flash sale's orders
    // do not pile up locks on the one row they all name.
    let mut order_tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    sqlx::query(insert).bind("PM-T-1").bind(member).bind(p["id"].as_i64()).execute(&mut *order_tx).await.unwrap();
    let mut other = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    sqlx::query("SELECT 1 FROM products WHERE id = $1 FOR UPDATE NOWAIT")
        .bind(p["id"].as_i64())
        .execute(&mut *other)
        .await
        .expect("the product is not locked by the order in flight");
    other.rollback().await.unwrap();
    order_tx.rollback().await.unwrap();
    // Yet an order must name a product that exists, and a product is never deleted.
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let e = sqlx::query(insert).bind("PM-T-2").bind(member).bind(999_999_i64).execute(&mut *tx).await.unwrap_err();
    assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("23503"), "{e}");
    tx.rollback().await.unwrap();
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let e =
        sqlx::query("DELETE FROM products WHERE id = $1").bind(p["id"].as_i64()).execute(&mut *tx).await.unwrap_err();
    assert_eq!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("23001"), "{e}");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn a_physical_order_ships_is_tracked_received_reviewed_and_refunded() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let p = product(
        &app,
        &t,
        &owner,
        json!({"name": "保温杯 Flask", "kind": "physical", "points_price": 300, "stock": 5,
        "status": "listed", "review_state": "approved"}),
    )
    .await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    app.credit(&t, &key, id, 1000, Some((Utc::now() + Duration::days(30)).to_rfc3339())).await;
    // Physical goods need an address.
    let (s, b) = redeem(&app, &t, &token, json!({"product_id": p["id"]})).await;
    assert_eq!(
        (s, b["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("address_id"))
    );
    let (s, addr) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/me/addresses", t.slug),
            Some(&token),
            Some(json!({"name": "王五", "phone": "13800001111", "region": "上海市", "detail": "南京路 1 号"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{addr}");
    let (s, order) =
        redeem(&app, &t, &token, json!({"product_id": p["id"], "quantity": 2, "address_id": addr["id"]})).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!((order["status"].as_str(), order["points_amount"].as_i64()), (Some("pending_shipment"), Some(600)));
    assert_eq!(order["address"]["detail"], "南京路 1 号");
    assert_eq!(app.balance(&t, &key, id, "points").await, 400);
    let oid = order["id"].as_i64().unwrap();
    let staff_action = |action: &str, body: Value| {
        let app = &app;
        let owner = owner.clone();
        let path = format!("/v1/tenants/{}/staff/orders/{oid}/{action}", t.slug);
        async move { app.call(Method::POST, &path, Some(&owner), Some(body)).await }
    };
    // Receiving before shipment is illegal; shipping needs a tracking number.
    let (s, b) =
        app.call(Method::POST, &format!("/v1/tenants/{}/me/orders/{oid}/receive", t.slug), Some(&token), None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("illegal_transition")));
    let (s, _) = staff_action("ship", json!({"carrier": "顺丰"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, o) = staff_action("ship", json!({"carrier": "顺丰", "tracking_no": "SF123"})).await;
    assert_eq!((s, o["status"].as_str()), (StatusCode::OK, Some("shipped")));
    // A shipped order cannot be cancelled.
    let (s, _) =
        app.call(Method::POST, &format!("/v1/tenants/{}/me/orders/{oid}/cancel", t.slug), Some(&token), None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // The logistics system pushes tracking; the member sees it.
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/orders/{}/tracking", t.slug, order["order_no"].as_str().unwrap()),
            &[("x-api-key", key.clone())],
            Some(json!({"status": "in_transit", "description": "上海分拨中心"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, mine) = app.call(Method::GET, &format!("/v1/tenants/{}/me/orders/{oid}", t.slug), Some(&token), None).await;
    assert_eq!(mine["tracking"][0]["status"], "in_transit");
    assert_eq!(mine["tracking_no"], "SF123");
    let (s, o) =
        app.call(Method::POST, &format!("/v1/tenants/{}/me/orders/{oid}/receive", t.slug), Some(&token), None).await;
    assert_eq!((s, o["status"].as_str()), (StatusCode::OK, Some("completed")));
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/me/orders/{oid}/review", t.slug),
            Some(&token),
            Some(json!({"rating": 5, "body": "好用"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/me/orders/{oid}/review", t.slug),
            Some(&token),
            Some(json!({"rating": 4})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "one review per order");
    // After-sales refund: points back to their lots, stock back.
    let (s, o) = staff_action("refund", json!({"note": "damaged"})).await;
    assert_eq!((s, o["status"].as_str()), (StatusCode::OK, Some("refunded")));
    assert_eq!(app.balance(&t, &key, id, "points").await, 1000);
    let (_, prod) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/products/{}", t.slug, p["id"]), Some(&owner), None).await;
    assert_eq!(prod["stock"], 5);
    let (s, _) = staff_action("refund", json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "refunded is final");
    // The member got in-app order updates; the order's moves are audited.
    let (_, msgs) = app.call(Method::GET, &format!("/v1/tenants/{}/me/messages", t.slug), Some(&token), None).await;
    assert!(msgs["items"].as_array().unwrap().iter().filter(|m| m["kind"] == "order_update").count() >= 3);
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.audit_log WHERE tenant_id = $1 AND action LIKE 'order.%'")
            .bind(t.id)
            .fetch_one(app.db.control())
            .await
            .unwrap();
    assert_eq!(n, 2);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn points_plus_cash_waits_for_a_signed_payment_and_times_out_unpaid() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let p = product(
        &app,
        &t,
        &owner,
        json!({"name": "耳机 Earbuds", "kind": "coupon", "points_price": 200, "cash_price_fen": 1990,
        "stock": 3, "status": "listed", "review_state": "approved"}),
    )
    .await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    app.credit(&t, &key, id, 500, None).await;
    let (s, order) = redeem(&app, &t, &token, json!({"product_id": p["id"]})).await;
    assert_eq!((s, order["status"].as_str()), (StatusCode::CREATED, Some("pending_payment")), "{order}");
    assert_eq!(app.balance(&t, &key, id, "points").await, 300, "the points are on hold");
    let (_, sec) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/payment-secret", t.slug), Some(&owner), None).await;
    let secret = sec["secret"].as_str().unwrap().to_string();
    let callback = |body: Value, secret: &str, ts: i64| {
        let (app, t, secret) = (&app, &t, secret.to_string());
        async move { app.payment_notice(t, &secret, &body, ts).await }
    };
    let notice = json!({"order_no": order["order_no"], "amount_fen": 1990, "payment_ref": "PAY-1"});
    let now = Utc::now().timestamp();
    let (s, b) = callback(notice.clone(), "not-the-secret", now).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_signature")));
    let (s, _) = callback(notice.clone(), &secret, now - 3600).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "stale timestamps are refused");
    let (s, b) =
        callback(json!({"order_no": order["order_no"], "amount_fen": 1, "payment_ref": "PAY-1"}), &secret, now).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, paid) = callback(notice.clone(), &secret, now).await;
    assert_eq!((s, paid["status"].as_str()), (StatusCode::OK, Some("completed")), "{paid}");
    let (s, again) = callback(notice, &secret, now).await;
    assert_eq!(
        (s, again["status"].as_str()),
        (StatusCode::OK, Some("completed")),
        "a repeated callback is answered the same"
    );
    assert_eq!(app.balance(&t, &key, id, "points").await, 300, "the held points were captured");

    // An order nobody pays is cancelled at its deadline: points and stock come back.
    let (_, unpaid) = redeem(&app, &t, &token, json!({"product_id": p["id"]})).await;
    assert_eq!(app.balance(&t, &key, id, "points").await, 100);
    let report = app.jobs(&t, Utc::now() + Duration::seconds(t.settings.hold_ttl_secs + 1)).await;
    assert_eq!(report.timed_out_orders, 1);
    assert_eq!(report.expired_holds, 0, "the order released its own hold");
    let (_, o) =
        app.call(Method::GET, &format!("/v1/tenants/{}/me/orders/{}", t.slug, unpaid["id"]), Some(&token), None).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(app.balance(&t, &key, id, "points").await, 300);
    let (_, prod) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/products/{}", t.slug, p["id"]), Some(&owner), None).await;
    assert_eq!(prod["stock"], 2);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn virtual_goods_issue_codes_and_limits_windows_and_levels_hold() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let v = product(
        &app,
        &t,
        &owner,
        json!({"name": "话费 10元 Phone credit", "kind": "virtual", "points_price": 100,
        "status": "listed", "review_state": "approved"}),
    )
    .await;
    let (s, v) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products/{}/codes", t.slug, v["id"]),
            Some(&owner),
            Some(json!({"codes": ["CODE-A", "CODE-B", "CODE-A"]})),
        )
        .await;
    assert_eq!((s, v["stock"].as_i64()), (StatusCode::OK, Some(2)), "duplicates are added once");
    let (m, tokens) = app.member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap().to_string();
    app.credit(&t, &key, m["id"].as_i64().unwrap(), 1000, None).await;
    let (s, o1) = redeem(&app, &t, &token, json!({"product_id": v["id"]})).await;
    assert_eq!(
        (s, o1["status"].as_str(), o1["code"].as_str()),
        (StatusCode::CREATED, Some("completed"), Some("CODE-A"))
    );
    let (_, o2) = redeem(&app, &t, &token, json!({"product_id": v["id"]})).await;
    assert_eq!(o2["code"], "CODE-B");
    let (s, b) = redeem(&app, &t, &token, json!({"product_id": v["id"]})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("sold_out")));
    // Members-only and windowed products.
    let gold = product(
        &app,
        &t,
        &owner,
        json!({"name": "Gold only", "kind": "coupon", "points_price": 1, "stock": 5,
        "status": "listed", "review_state": "approved", "min_level_threshold": 5000}),
    )
    .await;
    let (s, b) = redeem(&app, &t, &token, json!({"product_id": gold["id"]})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("level_required")));
    let later = product(
        &app,
        &t,
        &owner,
        json!({"name": "Next week", "kind": "coupon", "points_price": 1, "stock": 5,
        "status": "listed", "review_state": "approved", "starts_at": (Utc::now() + Duration::days(7)).to_rfc3339()}),
    )
    .await;
    let (s, b) = redeem(&app, &t, &token, json!({"product_id": later["id"]})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("product_unavailable")));
    let unreviewed = product(
        &app,
        &t,
        &owner,
        json!({"name": "Pending", "kind": "coupon", "points_price": 1, "stock": 5, "status": "listed"}),
    )
    .await;
    let (s, _) = redeem(&app, &t, &token, json!({"product_id": unreviewed["id"]})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Not enough points: nothing happens.
    let dear = product(&app, &t, &owner, json!({"name": "Dear", "kind": "coupon", "points_price": 100000, "stock": 5, "status": "listed", "review_state": "approved"})).await;
    let (s, b) = redeem(&app, &t, &token, json!({"product_id": dear["id"]})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("insufficient_points")));
    let (_, d) = app
        .call(Method::GET, &format!("/v1/tenants/{}/staff/products/{}", t.slug, dear["id"]), Some(&owner), None)
        .await;
    assert_eq!(d["stock"], 5);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn members_browse_filter_sort_search_and_see_changes() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (s, cat) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/categories", t.slug),
            Some(&owner),
            Some(json!({"name": "数码"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for (name, price, tags) in
        [("Alpha 耳机", 300, vec!["hot"]), ("Beta 充电宝", 100, vec![]), ("Gamma 音箱", 200, vec!["hot"])]
    {
        product(
            &app,
            &t,
            &owner,
            json!({"name": name, "kind": "physical", "points_price": price, "stock": 5, "category_id": cat["id"],
            "tags": tags, "status": "listed", "review_state": "approved"}),
        )
        .await;
    }
    product(&app, &t, &owner, json!({"name": "Hidden", "kind": "physical", "points_price": 1, "stock": 5})).await;
    let list = |query: &str| {
        let app = &app;
        let path = format!("/v1/tenants/{}/products?{query}", t.slug);
        async move {
            let (s, b) = app.call(Method::GET, &path, None, None).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(list("sort=points_asc").await, ["Beta 充电宝", "Gamma 音箱", "Alpha 耳机"]);
    assert_eq!(list("sort=points_desc&tag=hot").await, ["Alpha 耳机", "Gamma 音箱"]);
    assert_eq!(list("q=音箱").await, ["Gamma 音箱"]);
    assert_eq!(list("max_points=200&min_points=150").await, ["Gamma 音箱"]);
    assert_eq!(list(&format!("category_id={}&limit=2", cat["id"])).await.len(), 2);
    assert_eq!(list("q=%25").await.len(), 0, "LIKE wildcards are literal");
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/products?sort=random", t.slug), None, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Paging walks everything once.
    let (_, first) =
        app.call(Method::GET, &format!("/v1/tenants/{}/products?limit=2&sort=points_asc", t.slug), None, None).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .call(
            Method::GET,
            &format!("/v1/tenants/{}/products?limit=2&sort=points_asc&cursor={cursor}", t.slug),
            None,
            None,
        )
        .await;
    assert_eq!(second["items"][0]["name"], "Alpha 耳机");
    assert!(second["next_cursor"].is_null());
    // A staff change is visible at once (the cache is evicted), on another instance too.
    let other = TestApp::spawn().await;
    let (_, before) =
        other.call(Method::GET, &format!("/v1/tenants/{}/products?sort=points_asc", t.slug), None, None).await;
    assert_eq!(before["items"][0]["name"], "Beta 充电宝");
    let beta = before["items"][0]["id"].as_i64().unwrap();
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/staff/products/{beta}", t.slug),
            Some(&owner),
            Some(json!({"status": "delisted"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let (_, after) =
            other.call(Method::GET, &format!("/v1/tenants/{}/products?sort=points_asc", t.slug), None, None).await;
        if after["items"][0]["name"] == "Gamma 音箱" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the other instance still serves the delisted product");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/products/{beta}", t.slug), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a delisted product is not shown");
}

#[tokio::test]
async fn orders_export_as_csv_and_ship_from_a_csv_import() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let p = product(&app, &t, &owner, json!({"name": "=cmd|' /C calc'!A0", "kind": "physical", "points_price": 10, "stock": 10, "status": "listed", "review_state": "approved"})).await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap().to_string();
    app.credit(&t, &key, m["id"].as_i64().unwrap(), 100, None).await;
    let (_, addr) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/me/addresses", t.slug),
            Some(&token),
            Some(json!({"name": "A", "phone": "13800002222", "region": "北京", "detail": "一号"})),
        )
        .await;
    let mut nos = vec![];
    for _ in 0..2 {
        let (s, o) = redeem(&app, &t, &token, json!({"product_id": p["id"], "address_id": addr["id"]})).await;
        assert_eq!(s, StatusCode::CREATED);
        nos.push(o["order_no"].as_str().unwrap().to_string());
    }
    let resp = app
        .client
        .get(format!("{}/v1/tenants/{}/staff/orders/export?status=pending_shipment", app.base, t.slug))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("\"'=cmd"), "formulas are neutralized: {csv}");
    assert!(csv.starts_with('\u{feff}'), "a byte order mark, so Excel reads UTF-8");
    // Quoted fields (a comma inside), a line that names no order and a line that is not
    // three fields: the good lines are applied, each bad one reported.
    let import = format!(
        "order_no,carrier,tracking_no\n{},\"顺丰, 速运\",SF1\n{},EMS,E2\nNOPE,EMS,E3\nnot a shipping line\n",
        nos[0], nos[1]
    );
    let (s, report) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/shipping-import", t.slug),
            Some(&owner),
            Some(json!({"csv": import})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["shipped"], 2);
    assert_eq!(report["problems"][0]["line"], 4);
    assert_eq!(report["problems"][1]["line"], 5, "{report}");
    let (_, shipped) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/orders?status=shipped", t.slug), Some(&owner), None).await;
    assert_eq!(shipped["items"].as_array().unwrap().len(), 2);
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/shipping-import", t.slug),
            Some(&owner),
            Some(json!({"csv": "only,two"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn racing_address_saves_keep_twenty_and_one_default() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, tokens) = app.member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap().to_string();
    let url = format!("{}/v1/tenants/{}/me/addresses", app.base, t.slug);
    let tries = (0..30).map(|i| {
        let (client, url, token) = (app.client.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            let body = json!({"name": format!("收件人{i}"), "phone": "138-0000-2222", "region": "上海", "detail": "一号",
                "is_default": i % 2 == 0});
            let r = client.post(&url).bearer_auth(token).json(&body).send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (status, body["error"]["code"].as_str().map(str::to_string))
        })
    });
    let answers: Vec<_> = futures::future::join_all(tries).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(answers.iter().filter(|a| a.0 == StatusCode::CREATED).count(), 20, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|a| a.0 != StatusCode::CREATED)
            .all(|a| *a == (StatusCode::CONFLICT, Some("too_many_addresses".to_string()))),
        "{answers:?}"
    );
    let (s, list) = app.call(Method::GET, &format!("/v1/tenants/{}/me/addresses", t.slug), Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(list.iter().filter(|a| a["is_default"] == true).count(), 1, "{list:?}");
    assert_eq!(list[0]["phone"], "+8613800002222");
}

#[tokio::test]
async fn a_member_edits_an_address_and_moves_the_default() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, tokens) = app.member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap();
    let base = format!("/v1/tenants/{}/me/addresses", t.slug);
    let home = json!({"name": "王五", "phone": "13800001111", "region": "上海市", "detail": "南京路 1 号"});
    let (s, first) = app.call(Method::POST, &base, Some(token), Some(home)).await;
    assert_eq!((s, first["is_default"].as_bool()), (StatusCode::CREATED, Some(true)), "{first}");
    let work = json!({"name": "王五", "phone": "13800001111", "region": "上海市", "detail": "淮海路 2 号"});
    let (_, second) = app.call(Method::POST, &base, Some(token), Some(work)).await;
    // Edit the second: a new detail, made the default.
    let edit = json!({"name": "王五", "phone": "+86 138 0000 2222", "region": "上海市", "detail": "淮海路 200 号", "is_default": true});
    let (s, b) = app.call(Method::PUT, &format!("{base}/{}", second["id"]), Some(token), Some(edit.clone())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["detail"].as_str(), b["phone"].as_str(), b["is_default"].as_bool()),
        (Some("淮海路 200 号"), Some("+8613800002222"), Some(true)),
        "{b}"
    );
    let (_, all) = app.call(Method::GET, &base, Some(token), None).await;
    let defaults: Vec<_> =
        all.as_array().unwrap().iter().filter(|a| a["is_default"] == true).map(|a| a["id"].clone()).collect();
    assert_eq!(defaults, [second["id"].clone()], "one default: {all}");
    // Bad input is named; someone else's or an unknown address is 404.
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("{base}/{}", first["id"]),
            Some(token),
            Some(json!({"name": "", "phone": "1", "region": "x", "detail": "y"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (_, other) = app.member(&t, &phone()).await;
    let (s, _) =
        app.call(Method::PUT, &format!("{base}/{}", first["id"]), other["access_token"].as_str(), Some(edit)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
