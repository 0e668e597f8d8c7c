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

pub(crate) async fn send(
    app: &TestApp,
    t: &platform::directory::Tenant,
    token: &str,
    to: &str,
    amount: i64,
) -> (StatusCode, Value) {
    let mut headers = auth_headers(Some(token));
    headers.push(("idempotency-key", unique("t")));
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/me/points/transfers", t.slug),
            &headers,
            Some(json!({"to": to, "amount": amount, "currency": SHARED})),
        )
        .await;
    (s, b)
}

#[tokio::test]
async fn shared_points_transfer_to_members_of_any_mall_of_the_alliance() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let (a, b) = (mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await);
    let key = app.partner_key(&a).await;
    let (m1, t1) = app.proven_member(&a, &phone()).await;
    let t1 = t1["access_token"].as_str().unwrap().to_string();
    shared_credit(&app, &a, &key, m1["id"].as_i64().unwrap(), 500).await;
    // A member of the same mall, who has never held shared points.
    let p3 = phone();
    let (m3, t3) = app.proven_member(&a, &p3).await;
    let (s, tr) = send(&app, &a, &t1, &p3, 50).await;
    assert_eq!((s, tr["to_member_id"].as_i64()), (StatusCode::CREATED, m3["id"].as_i64()), "{tr}");
    assert_eq!(my_balance(&app, &a, t3["access_token"].as_str().unwrap(), SHARED).await, 50);
    // A member of mall B only: found through the alliance (no member of A to name).
    let p2 = phone();
    let (_, t2) = app.proven_member(&b, &p2).await;
    let t2 = t2["access_token"].as_str().unwrap().to_string();
    // B's member is found through the alliance once they have an identity (made on first
    // need: here a point credited by B).
    let kb = app.partner_key(&b).await;
    let (_, me) = app.call(Method::GET, &format!("/v1/tenants/{}/me", b.slug), Some(&t2), None).await;
    shared_credit(&app, &b, &kb, me["id"].as_i64().unwrap(), 1).await;
    let (s, tr) = send(&app, &a, &t1, &p2, 200).await;
    assert_eq!((s, tr["to_member_id"].as_i64()), (StatusCode::CREATED, None), "{tr}");
    assert_eq!(my_balance(&app, &b, &t2, SHARED).await, 201);
    assert_eq!(my_balance(&app, &a, &t1, SHARED).await, 250);
    // Nobody in the alliance with that phone; more than the balance; to oneself.
    let (s, e) = send(&app, &a, &t1, &phone(), 10).await;
    assert_eq!(
        (s, e["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to"))
    );
    let (s, e) = send(&app, &a, &t1, &p3, 5_000).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("insufficient_points")), "{e}");
    // The history shows both sides in the alliance's ledger.
    let (_, page) = app
        .call(Method::GET, &format!("/v1/tenants/{}/me/points/entries?currency={SHARED}", b.slug), Some(&t2), None)
        .await;
    let reasons: Vec<&str> = page["items"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["transfer_in", "earn"], "{page}");
    app.assert_ledger_sound(&a).await;
    app.assert_ledger_sound(&b).await;
    assert_alliance_ledger_sound(&app, &al).await;
}
