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
    let notice = json!({"order_no": order["order_no"], "amount_fen": 990, "payment_ref": "PAY-S"});
    let (s, paid) = app.payment_notice(&t, &secret, &notice, Utc::now().timestamp()).await;
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

/// The member's shared (balance, locked) as the partner sees them.
async fn shared_balance_and_locked(app: &TestApp, t: &platform::directory::Tenant, key: &str, id: i64) -> (i64, i64) {
    let p = app.points(t, key, id).await;
    let b = p["balances"].as_array().unwrap().iter().find(|b| b["currency"] == SHARED).unwrap().clone();
    (b["balance"].as_i64().unwrap(), b["locked"].as_i64().unwrap())
}

/// The `issued` figure of a mall's line in a settlement statement.
fn issued_in(statement: &Value, mall: &str) -> i64 {
    let lines = statement["lines"].as_array().unwrap();
    lines.iter().find(|l| l["mall"] == mall).map_or(0, |l| l["issued"].as_i64().unwrap())
}

#[tokio::test]
async fn lock_grants_take_shared_points_charged_to_the_budget_and_released_in_the_alliance_ledger() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let t = crate::budgets::unfunded_mall(&app, &al.slug).await;
    let key = app.partner_key(&t).await;
    // 100 points = ¥1 and the mall bears 15%: 300 points cost 45 fen.
    let admin = crate::budgets::alliance_admin(&app, &al.slug).await;
    let base = format!("/v1/alliances/{}", al.slug);
    let (s, _) =
        app.call(Method::PUT, &format!("{base}/clearing"), Some(&admin), Some(json!({"points_per_yuan": 100}))).await;
    assert_eq!(s, StatusCode::OK);
    let terms = json!({"rate_bp": 1500, "low_threshold_fen": 0});
    let (s, _) = app.call(Method::PUT, &format!("{base}/malls/{}/budget", t.slug), Some(&admin), Some(terms)).await;
    assert_eq!(s, StatusCode::OK);
    let top = json!({"amount_fen": 100, "memo": "for locks"});
    let (s, _) =
        app.call(Method::POST, &format!("{base}/malls/{}/budget/top-ups", t.slug), Some(&admin), Some(top)).await;
    assert_eq!(s, StatusCode::CREATED);
    let budget = async || {
        let (s, b) = app.call(Method::GET, &format!("{base}/budgets"), Some(&admin), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let m = b["malls"].as_array().unwrap().iter().find(|m| m["slug"] == t.slug.as_str()).unwrap().clone();
        m["balance_fen"].as_i64().unwrap()
    };
    assert_eq!(budget().await, 100);

    // A member who never held shared points gets an identity on this first need.
    let (m, _) = app.proven_member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let grant = json!({"member_id": id, "currency": SHARED, "total": 300, "per_day": 100, "memo": "welcome"});
    let (s, g) = app.partner_post(&t, &key, "/lock-grants", &unique("g"), grant).await;
    assert_eq!((s, g["currency"].as_str(), g["total"].as_i64()), (StatusCode::CREATED, Some(SHARED), Some(300)), "{g}");
    assert_eq!(g["member_id"].as_i64(), Some(id), "the grant names the mall's member");
    assert_eq!(shared_balance_and_locked(&app, &t, &key, id).await, (0, 300));
    assert_eq!(budget().await, 55, "300 points at ¥0.01 × 15% = 45 fen, in the same transaction");

    // A grant the budget does not cover is refused and writes nothing.
    let big = json!({"member_id": id, "currency": SHARED, "total": 500, "per_day": 100});
    let (s, b) = app.partner_post(&t, &key, "/lock-grants", &unique("g"), big).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("budget_exhausted")), "{b}");
    assert_eq!(shared_balance_and_locked(&app, &t, &key, id).await, (0, 300));
    assert_eq!(budget().await, 55);
    let summary = app.points(&t, &key, id).await;
    assert_eq!(summary["lock_grants"].as_array().unwrap().len(), 1, "{summary}");

    // A member with nothing proven cannot hold shared points: refused, nothing charged.
    let (u, _) = app.member(&t, &phone()).await;
    let grant = json!({"member_id": u["id"], "currency": SHARED, "total": 10, "per_day": 10});
    let (s, b) = app.partner_post(&t, &key, "/lock-grants", &unique("g"), grant).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("identifier_unproven")), "{b}");
    assert_eq!(budget().await, 55);

    // The mall's jobs release 100 at its next local midnight, in the alliance's ledger.
    let day1 = Utc::now() + Duration::days(1);
    let report = app.jobs(&t, day1).await;
    assert_eq!((report.released_grants, report.released_amount), (1, 100));
    assert_eq!(shared_balance_and_locked(&app, &t, &key, id).await, (100, 200));
    // Accelerated by the partner, by the mall's grant id.
    let (s, a) = app
        .partner_post(&t, &key, &format!("/lock-grants/{}/accelerate", g["id"]), &unique("k"), json!({"amount": 50}))
        .await;
    assert_eq!(
        (s, a["released"].as_i64(), a["grant"]["released"].as_i64()),
        (StatusCode::OK, Some(50), Some(150)),
        "{a}"
    );
    assert_eq!(shared_balance_and_locked(&app, &t, &key, id).await, (150, 150));
    // Releases and accelerations cost nothing more: the grant was paid for when issued.
    assert_eq!(budget().await, 55);

    // Both ledgers verify: the alliance's lock grants hold exactly the locked balance.
    app.assert_ledger_sound(&t).await;
    assert_alliance_ledger_sound(&app, &al).await;
    let mut tx = app.db.cluster("main").unwrap().begin().await.unwrap();
    platform::db::select_schema(&mut tx, &format!("a_{}", al.id)).await.unwrap();
    let (mall_id, left): (Option<platform::ids::TenantId>, i64) =
        sqlx::query_as("SELECT mall_id, total - released FROM lock_grants").fetch_one(&mut *tx).await.unwrap();
    assert_eq!((mall_id, left), (Some(t.id), 150), "the alliance's grant names the granting mall");
    tx.rollback().await.unwrap();

    // Settlement counts the released points as issued by the granting mall, when released.
    let tz = platform::localtime::parse("Asia/Shanghai").unwrap();
    let period = platform::localtime::day(tz, day1 + Duration::minutes(5)).format("%Y-%m-%d").to_string();
    let (s, st) = app.call(Method::GET, &format!("{base}/settlement/{period}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(issued_in(&st, &t.slug), 150, "{st}");
}

async fn events(app: &TestApp, t: &platform::directory::Tenant, key: &str, list: Value) -> Value {
    let (s, _, r) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/events", t.slug),
            &[("x-api-key", key.to_string())],
            Some(json!({"events": list})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

async fn rule(app: &TestApp, t: &platform::directory::Tenant, owner: &str, event_type: &str, script: &str) -> i64 {
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/rules", t.slug),
            Some(owner),
            Some(json!({"name": event_type, "event_type": event_type, "script": script, "params": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_i64().unwrap()
}

#[tokio::test]
async fn merchant_rules_deduct_and_lock_shared_points_and_leave_out_issues_to_members_with_nothing_proven() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let t = mall_in(&app, &al.slug).await;
    let key = app.partner_key(&t).await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (m, _) = app.proven_member(&t, &phone()).await;
    let proven = m["id"].as_i64().unwrap();
    // Registered without a code: nothing proven, so no alliance identity can be made.
    let (u, _) = app.member(&t, &phone()).await;
    let unproven = u["id"].as_i64().unwrap();
    shared_credit(&app, &t, &key, proven, 100).await;

    let visit = rule(
        &app,
        &t,
        &owner,
        "visit",
        &format!(
            "[award(\"points\", 5, \"own\"), award(\"{SHARED}\", 20, \"shared\"), lock(\"{SHARED}\", 60, 20, \"locked\")]"
        ),
    )
    .await;
    rule(&app, &t, &owner, "fee", &format!("[deduct(\"{SHARED}\", 100, \"fee\")]")).await;

    let r = events(
        &app,
        &t,
        &key,
        json!([
            {"id": unique("e"), "type": "visit", "member_id": proven, "data": {}},
            {"id": unique("e"), "type": "visit", "member_id": unproven, "data": {}},
        ]),
    )
    .await;
    // The proven member gets all three: 100 + 20 shared, 60 shared locked, 5 own.
    assert_eq!(r["results"][0]["status"], "applied", "{r}");
    assert!(r["results"][0]["effects"][0].get("skipped").is_none(), "{r}");
    let p = app.points(&t, &key, proven).await;
    let of =
        |p: &Value, c: &str| p["balances"].as_array().unwrap().iter().find(|b| b["currency"] == c).unwrap().clone();
    assert_eq!((of(&p, SHARED)["balance"].as_i64(), of(&p, SHARED)["locked"].as_i64()), (Some(120), Some(60)), "{p}");
    assert_eq!(of(&p, "points")["balance"].as_i64(), Some(5));
    let grants = p["lock_grants"].as_array().unwrap();
    assert_eq!((grants.len(), grants[0]["currency"].as_str()), (1, Some(SHARED)), "{p}");
    // The member with nothing proven: the shared award and lock are left out, named in
    // the event's outcome; the mall's own award stands and the event applies.
    assert_eq!(r["results"][1]["status"], "applied", "{r}");
    let skipped = r["results"][1]["effects"][0]["skipped"].as_array().unwrap().clone();
    let why: Vec<(i64, &str)> =
        skipped.iter().map(|s| (s["effect"].as_i64().unwrap(), s["code"].as_str().unwrap())).collect();
    assert_eq!(why, [(1, "identifier_unproven"), (2, "identifier_unproven")], "{r}");
    assert_eq!(app.balance(&t, &key, unproven, "points").await, 5);
    assert_eq!(app.balance(&t, &key, unproven, SHARED).await, 0);
    // The event log keeps the same outcome.
    let (s, log) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/events", t.slug), Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let logged = log["items"].as_array().unwrap().iter().find(|e| e["member_id"] == unproven).unwrap().clone();
    assert_eq!(logged["effects"][0]["skipped"][0]["code"], "identifier_unproven", "{logged}");
    // A dry run for that member says so too.
    let dry = json!({"rule_id": visit, "event": {"type": "visit"}, "member_id": unproven});
    let (s, d) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/rules/dry-run", t.slug), Some(&owner), Some(dry)).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let codes: Vec<(i64, &str)> = d["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["effect"].as_i64().unwrap(), s["code"].as_str().unwrap()))
        .collect();
    assert_eq!(codes, [(1, "identifier_unproven"), (2, "identifier_unproven")], "{d}");
    let dry = json!({"rule_id": visit, "event": {"type": "visit"}, "member_id": proven});
    let (_, d) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/rules/dry-run", t.slug), Some(&owner), Some(dry)).await;
    assert_eq!(d["skipped"], json!([]), "{d}");

    // Deducting shared points: from the alliance's ledger; a second fee the balance does
    // not cover fails that event only, as with the mall's own points.
    let r = events(
        &app,
        &t,
        &key,
        json!([
            {"id": unique("e"), "type": "fee", "member_id": proven, "data": {}},
            {"id": unique("e"), "type": "fee", "member_id": proven, "data": {}},
        ]),
    )
    .await;
    assert_eq!(r["results"][0]["status"], "applied", "{r}");
    assert_eq!(r["results"][1]["status"], "failed", "{r}");
    assert!(r["results"][1]["error"].as_str().unwrap().contains("balance"), "{r}");
    assert_eq!(app.balance(&t, &key, proven, SHARED).await, 20);

    // The lock releases with the mall's jobs.
    let report = app.jobs(&t, Utc::now() + Duration::days(1)).await;
    assert_eq!(report.released_amount, 20);
    assert_eq!(app.balance(&t, &key, proven, SHARED).await, 40);

    app.assert_ledger_sound(&t).await;
    assert_alliance_ledger_sound(&app, &al).await;
}
