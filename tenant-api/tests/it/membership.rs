//! Issue 12, point 1 (A1, A5): a mall leaves its alliance. Its members keep their shared
//! balance and spend it in the other malls; its shared products are delisted; its budget
//! is closed (what is left stays visible); refunds of its old orders still reach the
//! alliance ledger and settlement still names it; every ledger verifies after the leave
//! (as `ledger verify --all` does); the mall can join again; every step is audited.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, handoff, mall_in, my_balance, product, redeem};
use crate::budgets::alliance_admin;
use crate::common::{TestApp, phone, unique};
use platform::directory::Tenant;

async fn issue(app: &TestApp, t: &platform::directory::Tenant, member_id: i64, amount: i64) -> (StatusCode, Value) {
    let key = app.partner_key(t).await;
    let items = json!({"items": [{"member_id": member_id, "amount": amount, "currency": SHARED}]});
    app.partner_post(t, &key, "/points/credits", &unique("c"), items).await
}

/// What `pointsmall ledger verify --tenant` checks for each of these malls: its ledger and
/// its alliance's (not `--all`: other tests share the database, some tamper on purpose).
async fn verify_all(app: &TestApp, malls: &[&Tenant]) {
    let mut ledgers = Vec::new();
    for t in malls {
        ledgers.extend(platform::fleet::ledgers(&app.db, Some(&t.slug)).await.unwrap());
    }
    assert!(ledgers.len() > malls.len(), "the alliance's ledger is among them");
    for l in &ledgers {
        let r = platform::fleet::verify(&app.db, l).await.unwrap();
        assert!(r.problems.is_empty(), "{}: {:#?}", l.label, r.problems);
    }
}

async fn audited(app: &TestApp, tenant_id: i64, action: &str) -> Vec<(Option<i64>, String)> {
    sqlx::query_as(
        "SELECT alliance_id, actor_label FROM control.audit_log WHERE tenant_id = $1 AND action = $2 ORDER BY id",
    )
    .bind(tenant_id)
    .bind(action)
    .fetch_all(app.db.control())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_mall_leaves_its_alliance_and_joins_again() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let (a, b) = (mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await);
    let admin = alliance_admin(&app, &al.slug).await;
    let (owner_a, owner_b) = (app.staff(&a, "owner").await.1, app.staff(&b, "owner").await.1);

    // A member of A earns 1,000 shared points there and spends 200 at A (an order A will
    // refund after it left); the member also has an account at B (hand-off).
    let (m, tokens) = app.proven_member(&a, &phone()).await;
    let token_a = tokens["access_token"].as_str().unwrap().to_string();
    let (s, body) = issue(&app, &a, m["id"].as_i64().unwrap(), 1_000).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let old = product(&app, &a, &owner_a, SHARED, 200).await;
    let (s, order) = redeem(&app, &a, &token_a, old).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let own = product(&app, &a, &owner_a, "points", 10).await;
    let (s, pair) = handoff(&app, &b, &token_a).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let token_b = pair["access_token"].as_str().unwrap().to_string();
    assert_eq!(my_balance(&app, &b, &token_b, SHARED).await, 800);

    // Only the alliance's admins (or the operator) remove a mall; the mall's owner cannot.
    let remove = format!("/v1/alliances/{}/malls/{}", al.slug, a.slug);
    let (s, _) = app.call(Method::DELETE, &remove, Some(&owner_a), None).await;
    assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN, "{s}");
    let other = alliance(&app).await;
    let other_admin = alliance_admin(&app, &other.slug).await;
    let (s, body) = app
        .call(Method::DELETE, &format!("/v1/alliances/{}/malls/{}", al.slug, a.slug), Some(&other_admin), None)
        .await;
    assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN, "{s} {body}");

    let budget_before: i64 = app
        .call(Method::GET, &format!("/v1/tenants/{}/staff/alliance-budget", a.slug), Some(&owner_a), None)
        .await
        .1["balance_fen"]
        .as_i64()
        .unwrap();
    let (s, left) = app.call(Method::DELETE, &remove, Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{left}");
    assert_eq!(left["mall"], a.slug.as_str());
    assert_eq!(left["delisted_products"], 1, "the shared product only: {left}");
    assert_eq!(left["budget_left_fen"], budget_before);
    let (s, again) = app.call(Method::DELETE, &remove, Some(&admin), None).await;
    assert_eq!((s, &again["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_in_alliance")), "{again}");

    // The alliance lists it as departed, no longer among its malls.
    let (_, overview) = app.call(Method::GET, &format!("/v1/alliances/{}", al.slug), Some(&admin), None).await;
    let merchants: Vec<&str> =
        overview["merchants"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(merchants, [b.slug.as_str()], "{overview}");
    assert_eq!(overview["departed"][0]["slug"], a.slug.as_str(), "{overview}");
    let (_, public) = app.call(Method::GET, &format!("/v1/alliances/{}/malls", al.slug), None, None).await;
    assert_eq!(public["malls"].as_array().unwrap().len(), 1, "{public}");

    // A's shared product is delisted, its own-points product is not.
    let (_, listed) = app.call(Method::GET, &format!("/v1/tenants/{}/products", a.slug), None, None).await;
    let ids: Vec<i64> =
        listed["items"].as_array().unwrap_or(&vec![]).iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [own], "{listed}");

    // A issues no more shared points; its closed budget stays visible, takes no top-up.
    let (s, body) = issue(&app, &a, m["id"].as_i64().unwrap(), 10).await;
    assert_eq!((s, &body["error"]["code"]), (StatusCode::CONFLICT, &json!("alliance_left")), "{body}");
    let (s, budget) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/alliance-budget", a.slug), Some(&owner_a), None).await;
    assert_eq!(s, StatusCode::OK, "{budget}");
    assert_eq!(budget["balance_fen"], budget_before);
    assert!(budget["closed_at"].is_string(), "{budget}");
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/alliance-budget/top-ups", a.slug),
            Some(&owner_a),
            Some(json!({"amount_fen": 100})),
        )
        .await;
    assert_eq!((s, &body["error"]["code"]), (StatusCode::CONFLICT, &json!("budget_closed")), "{body}");
    let (_, all) = app.call(Method::GET, &format!("/v1/alliances/{}/budgets", al.slug), Some(&admin), None).await;
    assert!(all.to_string().contains(&format!("{}", a.id)), "{all}");

    // The member keeps the shared balance and spends it at B.
    assert_eq!(my_balance(&app, &b, &token_b, SHARED).await, 800);
    let at_b = product(&app, &b, &owner_b, SHARED, 300).await;
    let (s, o) = redeem(&app, &b, &token_b, at_b).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(my_balance(&app, &b, &token_b, SHARED).await, 500);

    // A refunds its old order: the points go back to the member's lots in the alliance.
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/{}/refund", a.slug, order["id"]),
            Some(&owner_a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(my_balance(&app, &b, &token_b, SHARED).await, 700);

    // Settlement still names A, with its figures (issued 1000, redeemed 200, returned 200).
    let tz = platform::localtime::parse("Asia/Shanghai").unwrap();
    let period = platform::localtime::day(tz, chrono::Utc::now()).format("%Y-%m-%d").to_string();
    let (s, st) =
        app.call(Method::GET, &format!("/v1/alliances/{}/settlement/{period}", al.slug), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    let line = st["lines"].as_array().unwrap().iter().find(|l| l["mall"] == a.slug.as_str()).expect("A's line");
    assert_eq!((&line["issued"], &line["redeemed"], &line["returned"]), (&json!(1000), &json!(200), &json!(200)));

    verify_all(&app, &[&a, &b]).await;
    let leaves = audited(&app, a.id.get(), "tenant.alliance.leave").await;
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].0, Some(al.id), "the alliance's log shows it too");

    // A joins again: its budget reopens and it issues again.
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/v1/platform/tenants/{}/alliance", a.slug),
            Some(&app.platform_token),
            Some(json!({"alliance": al.slug})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = issue(&app, &a, m["id"].as_i64().unwrap(), 10).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // The operator removes it again; a mall in no alliance answers 404.
    let path = format!("/v1/platform/tenants/{}/alliance", a.slug);
    let (s, body) = app.call(Method::DELETE, &path, Some(&app.platform_token), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = app.call(Method::DELETE, &path, Some(&app.platform_token), None).await;
    assert_eq!((s, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_in_alliance")), "{body}");
    assert_eq!(audited(&app, a.id.get(), "tenant.alliance.leave").await.len(), 2);

    // Its members' identities and old orders are in this alliance: it joins no other.
    let join = format!("/v1/platform/tenants/{}/alliance", a.slug);
    let (s, body) =
        app.call(Method::POST, &join, Some(&app.platform_token), Some(json!({"alliance": other.slug}))).await;
    assert_eq!((s, &body["error"]["code"]), (StatusCode::CONFLICT, &json!("left_another_alliance")), "{body}");
    verify_all(&app, &[&a, &b]).await;
}
