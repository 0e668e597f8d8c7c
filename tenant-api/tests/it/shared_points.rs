//! Issue 12, point 4: the alliance's shared points work wherever the mall's own points
//! do — holds (capture, void, refund, expiry), points + cash checkout — written in the
//! alliance's ledger; every ledger verifies (balances equal the sum of entries).

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, assert_alliance_ledger_sound, mall_in, my_balance};
use crate::common::{TestApp, auth_headers, phone, unique};

pub(crate) async fn shared_credit(app: &TestApp, t: &platform::directory::Tenant, key: &str, member_id: i64, n: i64) {
    let items = json!({"items": [{"member_id": member_id, "amount": n, "currency": SHARED}]});
    let (s, b) = app.partner_post(t, key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn holds_and_points_plus_cash_take_shared_points() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let t = mall_in(&app, &al.slug).await;
    let key = app.partner_key(&t).await;
    let (m, tokens) = app.proven_member(&t, &phone()).await;
    let (id, token) = (m["id"].as_i64().unwrap(), tokens["access_token"].as_str().unwrap().to_string());
    shared_credit(&app, &t, &key, id, 1_000).await;

    // Hold 300, capture 200: the rest comes back; refund 50 of the captured.
    let (s, h) = app
        .partner_post(&t, &key, "/holds", &unique("h"), json!({"member_id": id, "amount": 300, "currency": SHARED}))
        .await;
    assert_eq!((s, h["currency"].as_str(), h["status"].as_str()), (StatusCode::CREATED, Some(SHARED), Some("held")));
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 700);
    let hold = h["id"].as_i64().unwrap();
    let (s, h) =
        app.partner_post(&t, &key, &format!("/holds/{hold}/capture"), &unique("k"), json!({"amount": 200})).await;
    assert_eq!((s, h["captured"].as_i64()), (StatusCode::OK, Some(200)), "{h}");
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 800);
    let (s, h) =
        app.partner_post(&t, &key, &format!("/holds/{hold}/refund"), &unique("f"), json!({"amount": 50})).await;
    assert_eq!((s, h["refunded"].as_i64()), (StatusCode::OK, Some(50)), "{h}");
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 850);
    // More than the balance is refused as with the mall's own points.
    let (s, b) = app
        .partner_post(&t, &key, "/holds", &unique("h"), json!({"member_id": id, "amount": 5_000, "currency": SHARED}))
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("insufficient_points")), "{b}");
    // A hold nobody captures expires with the jobs and gives its points back.
    let (s, _) = app
        .partner_post(
            &t,
            &key,
            "/holds",
            &unique("h"),
            json!({"member_id": id, "amount": 100, "currency": SHARED, "ttl_secs": 60}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 750);
    let report = app.jobs(&t, Utc::now() + Duration::seconds(120)).await;
    assert_eq!(report.expired_holds, 1);
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 850);

    // Points + cash priced in shared points: the points are held until the cash is paid.
    let (_, owner) = app.staff(&t, "owner").await;
    let (s, p) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", t.slug),
            Some(&owner),
            Some(json!({"name": "Shared earbuds", "kind": "coupon", "points_price": 200, "cash_price_fen": 990,
                "currency": SHARED, "stock": 5, "status": "listed", "review_state": "approved"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let mut headers = auth_headers(Some(&token));
    headers.push(("idempotency-key", unique("r")));
    let (s, _, order) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/me/redemptions", t.slug),
            &headers,
            Some(json!({"product_id": p["id"]})),
        )
        .await;
    assert_eq!((s, order["status"].as_str()), (StatusCode::CREATED, Some("pending_payment")), "{order}");
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 650, "the points are on hold");
    let (_, sec) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/payment-secret", t.slug), Some(&owner), None).await;
    let secret = sec["secret"].as_str().unwrap().to_string();
    let raw = json!({"order_no": order["order_no"], "amount_fen": 990, "payment_ref": "PAY-S"}).to_string();
    let ts = Utc::now().timestamp();
    let sig = platform::mall::payments::sign(&secret, ts, raw.as_bytes());
    let r = app
        .client
        .post(format!("{}/v1/tenants/{}/payments/callback", app.base, t.slug))
        .header("content-type", "application/json")
        .header("x-timestamp", ts.to_string())
        .header("x-signature", format!("sha256={sig}"))
        .body(raw)
        .send()
        .await
        .unwrap();
    let (s, paid) = (r.status(), r.json::<Value>().await.unwrap());
    assert_eq!((s, paid["status"].as_str()), (StatusCode::OK, Some("completed")), "{paid}");
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 650, "the held points were captured");
    // Staff refund the order: the points come back to the member.
    let (s, r) = app
        .call(Method::POST, &format!("/v1/tenants/{}/staff/orders/{}/refund", t.slug, order["id"]), Some(&owner), None)
        .await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("refunded")), "{r}");
    assert_eq!(my_balance(&app, &t, &token, SHARED).await, 850);

    // The mall's ledger holds no shared account; the alliance's verifies.
    app.assert_ledger_sound(&t).await;
    assert_alliance_ledger_sound(&app, &al).await;
}
