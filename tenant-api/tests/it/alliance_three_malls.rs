//! Issue 12's first proof: an alliance of three malls from nothing, through the HTTP API.
//! The operator creates the alliance and its admin; two existing malls join and a new
//! one is created in it; the admin sets the clearing value and tops the budgets up. A
//! member earns shared points at A (a partner credit and a merchant rule), links their
//! existing account at B and redeems there, pays points + cash at C; B's budget runs
//! out and its issuing stops; the month's statement is the one computed by hand and
//! sums to zero; B leaves and the member keeps their balance; every ledger this test
//! made verifies.
//!
//! Not through the API: `ledger verify` is the operator's CLI; the test runs the same
//! check (`platform::ledger::verify`) on the schemas it created only (other tests in the
//! same database tamper with ledgers on purpose).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, assert_alliance_ledger_sound, handoff, my_balance, product, redeem};
use crate::alliance_links::{link, send_link_code};
use crate::budgets::alliance_admin;
use crate::common::{TestApp, auth_headers, phone, unique};

type Tenant = platform::directory::Tenant;

async fn fetch(app: &TestApp, slug: &str) -> Tenant {
    platform::directory::find_by_slug(app.db.control(), slug).await.unwrap().unwrap()
}

fn token(pair: &Value) -> String {
    pair["access_token"].as_str().unwrap().to_string()
}

/// A partner credit of shared points at `t`.
async fn issue(app: &TestApp, t: &Tenant, key: &str, member: &Value, amount: i64) -> (StatusCode, Value) {
    let items = json!({"items": [{"member_id": member, "amount": amount, "currency": SHARED}]});
    app.partner_post(t, key, "/points/credits", &unique("c"), items).await
}

#[tokio::test]
async fn an_alliance_of_three_malls_from_nothing_through_the_api() {
    let app = TestApp::spawn().await;
    let op = Some(app.platform_token.as_str());

    // The operator creates the alliance and its admin; two existing malls join, a new
    // one is created in it.
    let al = alliance(&app).await;
    let admin = alliance_admin(&app, &al.slug).await;
    let (a, b) = (app.tenant().await, app.tenant().await);
    for t in [&a, &b] {
        let (s, body) = app
            .call(
                Method::POST,
                &format!("/v1/platform/tenants/{}/alliance", t.slug),
                op,
                Some(json!({"alliance": al.slug})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let c_slug = unique("m");
    let (s, body) = app
        .call(
            Method::POST,
            "/v1/platform/tenants",
            op,
            Some(json!({"slug": c_slug, "name": "Mall C", "alliance": al.slug})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (a, b, c) = (fetch(&app, &a.slug).await, fetch(&app, &b.slug).await, fetch(&app, &c_slug).await);
    assert!([&a, &b, &c].iter().all(|t| t.alliance_id.map(|x| x.get()) == Some(al.id)));
    let (s, list) = app.call(Method::GET, &format!("/v1/alliances/{}/malls", al.slug), None, None).await;
    assert_eq!((s, list["malls"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{list}");

    // The admin: 100 points a yuan (a point is worth 1 fen), each mall bears the full
    // value of what it issues (a point issued costs 1 fen of its budget). A and C are
    // funded ¥1,000; B ¥5.
    let base = format!("/v1/alliances/{}", al.slug);
    let clearing = json!({"points_per_yuan": 100, "time_zone": "Asia/Shanghai"});
    let (s, body) = app.call(Method::PUT, &format!("{base}/clearing"), Some(&admin), Some(clearing)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for (t, fen) in [(&a, 100_000), (&b, 500), (&c, 100_000)] {
        let terms = json!({"rate_bp": 10_000, "low_threshold_fen": 0});
        let (s, body) =
            app.call(Method::PUT, &format!("{base}/malls/{}/budget", t.slug), Some(&admin), Some(terms)).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let top = json!({"amount_fen": fen, "memo": "opening"});
        let (s, e) =
            app.call(Method::POST, &format!("{base}/malls/{}/budget/top-ups", t.slug), Some(&admin), Some(top)).await;
        assert_eq!((s, e["balance_after_fen"].as_i64()), (StatusCode::CREATED, Some(fen)), "{e}");
    }
    let (key_a, key_b) = (app.partner_key(&a).await, app.partner_key(&b).await);
    let (_, owner_a) = app.staff(&a, "owner").await;
    let (_, owner_b) = app.staff(&b, "owner").await;
    let (_, owner_c) = app.staff(&c, "owner").await;

    // The member: an account at A by phone, and one at B by e-mail from before, with
    // 300 shared points B issued to it.
    let email = format!("{}@three.test", unique("m"));
    let (ma, pair_a) = app.proven_member(&a, &phone()).await;
    let (mb, pair_b) = app.proven_member(&b, &email).await;
    let (ta, tb) = (token(&pair_a), token(&pair_b));
    let (s, body) = issue(&app, &b, &key_b, &mb["id"], 300).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // At A: 1,000 by a partner credit, 200 by A's rule for a visit.
    let (s, body) = issue(&app, &a, &key_a, &ma["id"], 1000).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let script = format!("[award(\"{SHARED}\", 200, \"visit\")]");
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/rules", a.slug),
            Some(&owner_a),
            Some(json!({"name": "visit bonus", "event_type": "visit", "script": script, "params": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let events = json!({"events": [{"id": unique("e"), "type": "visit", "member_id": ma["id"], "data": {}}]});
    let (s, _, r) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/events", a.slug),
            &[("x-api-key", key_a.clone())],
            Some(events),
        )
        .await;
    assert_eq!((s, &r["results"][0]["status"]), (StatusCode::OK, &json!("applied")), "{r}");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1200);

    // Signed in at A, the member links B's account with a code sent to its e-mail: one
    // balance of 1,500, seen at both.
    send_link_code(&app, &a, &ta, &b.slug, &email).await;
    let code = app.last_code(&email).await;
    let (s, done) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "code": code})).await;
    assert_eq!((s, done["shared_balance"].as_i64()), (StatusCode::OK, Some(1500)), "{done}");
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 1500);

    // At B, signed in to the linked account, a coupon for 400 shared points (drawn from
    // the oldest lot: A's 1,000).
    let coupon_b = product(&app, &b, &owner_b, SHARED, 400).await;
    let (s, order) = redeem(&app, &b, &tb, coupon_b).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1100);

    // At C (by the hand-off from A), earbuds for 300 shared points + ¥9.90: the points
    // are held until the provider's payment notice, then spent (A's points again).
    let (s, pair_c) = handoff(&app, &c, &ta).await;
    assert_eq!(s, StatusCode::OK, "{pair_c}");
    let tc = token(&pair_c);
    let (s, p) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", c.slug),
            Some(&owner_c),
            Some(json!({"name": "Earbuds", "kind": "coupon", "points_price": 300, "cash_price_fen": 990,
                "currency": SHARED, "stock": 5, "status": "listed", "review_state": "approved"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let mut headers = auth_headers(Some(&tc));
    headers.push(("idempotency-key", unique("r")));
    let (s, _, order) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/me/redemptions", c.slug),
            &headers,
            Some(json!({"product_id": p["id"]})),
        )
        .await;
    assert_eq!((s, order["status"].as_str()), (StatusCode::CREATED, Some("pending_payment")), "{order}");
    assert_eq!(my_balance(&app, &c, &tc, SHARED).await, 800, "the points are on hold");
    let (s, sec) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/payment-secret", c.slug), Some(&owner_c), None).await;
    assert!(s.is_success(), "{sec}");
    let (s, paid) = app.pay(&c, sec["secret"].as_str().unwrap(), &order["order_no"], 990).await;
    assert_eq!((s, paid["status"].as_str()), (StatusCode::OK, Some("completed")), "{paid}");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 800);

    // B's budget (¥5, 300 spent) covers 200 more points, then issuing stops: refused,
    // nothing written.
    let (s, body) = issue(&app, &b, &key_b, &mb["id"], 200).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = issue(&app, &b, &key_b, &mb["id"], 1).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("budget_exhausted")), "{body}");
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 1000);
    let (s, all) = app.call(Method::GET, &format!("{base}/budgets"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let left = |slug: &str| {
        all["malls"].as_array().unwrap().iter().find(|m| m["slug"] == slug).unwrap()["balance_fen"].as_i64().unwrap()
    };
    assert_eq!([left(&a.slug), left(&b.slug), left(&c.slug)], [100_000 - 1200, 0, 100_000], "{all}");

    // The month's statement, by hand (a point is 1 fen): A issued 1,200 (credit and
    // rule) and redeemed nothing; B issued 500, redeemed 400 (A's points); C redeemed
    // 300 (A's points). The link moved B's 300 within the alliance: in no figure. Pairs:
    // A→B 400 (400 fen), A→C 300 (300 fen). A owes 700; B is owed 400, C 300.
    let tz = platform::localtime::parse("Asia/Shanghai").unwrap();
    let month = platform::localtime::day(tz, chrono::Utc::now()).format("%Y-%m").to_string();
    let expected = |st: &Value| {
        let line = |mall: &str| {
            let l = st["lines"].as_array().unwrap().iter().find(|l| l["mall"] == mall).unwrap();
            ["issued", "revoked", "redeemed", "returned", "expired", "receivable_fen", "payable_fen", "net_fen"]
                .map(|k| l[k].as_i64().unwrap())
        };
        assert_eq!(line(&a.slug), [1200, 0, 0, 0, 0, 0, 700, -700], "{st}");
        assert_eq!(line(&b.slug), [500, 0, 400, 0, 0, 400, 0, 400], "{st}");
        assert_eq!(line(&c.slug), [0, 0, 300, 0, 0, 300, 0, 300], "{st}");
        let net: i64 = st["lines"].as_array().unwrap().iter().map(|l| l["net_fen"].as_i64().unwrap()).sum();
        assert_eq!(net, 0, "the net positions sum to zero: {st}");
        let mut pairs: Vec<(String, String, i64, i64)> = st["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap().to_string();
                (s("issuer"), s("redeemer"), p["points"].as_i64().unwrap(), p["value_fen"].as_i64().unwrap())
            })
            .collect();
        pairs.sort();
        let mut want = vec![(a.slug.clone(), b.slug.clone(), 400, 400), (a.slug.clone(), c.slug.clone(), 300, 300)];
        want.sort();
        assert_eq!(pairs, want, "{st}");
    };
    let (s, st) = app.call(Method::GET, &format!("{base}/settlement/{month}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["period"], json!(month));
    expected(&st);

    // B leaves. Its member keeps the balance: B no longer shows it (0 there), A and C
    // still do, and the month's statement still names B with the same figures.
    let (s, left) = app.call(Method::DELETE, &format!("{base}/malls/{}", b.slug), Some(&admin), None).await;
    assert_eq!((s, left["mall"].as_str()), (StatusCode::OK, Some(b.slug.as_str())), "{left}");
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 0, "B no longer reads the alliance's ledger");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1000);
    assert_eq!(my_balance(&app, &c, &tc, SHARED).await, 1000);
    let (s, st) = app.call(Method::GET, &format!("{base}/settlement/{month}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    expected(&st);

    // `ledger verify` on what this test made: the three malls and the alliance.
    for t in [&a, &b, &c] {
        app.assert_ledger_sound(t).await;
    }
    assert_alliance_ledger_sound(&app, &al).await;
}
