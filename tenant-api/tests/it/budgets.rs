//! Issue 12, point 3 (with point 1's admin accounts): every shared point a mall issues
//! draws on its issuing budget in the same transaction; an exhausted budget refuses with
//! 409 `budget_exhausted` and writes nothing; 50 racing issues against a budget that
//! covers 20 let exactly 20 through; the budget's balance is the sum of its entries.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, assert_alliance_ledger_sound, my_balance};
use crate::common::{TestApp, phone, unique};

/// A mall of `alliance` whose budget nobody funded.
pub(crate) async fn unfunded_mall(app: &TestApp, alliance: &str) -> platform::directory::Tenant {
    let slug = unique("m");
    let body = json!({"slug": slug, "name": "Unfunded mall", "alliance": alliance});
    let (s, b) = app.call(Method::POST, "/v1/platform/tenants", Some(&app.platform_token), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    platform::directory::find_by_slug(app.db.control(), &slug).await.unwrap().unwrap()
}

/// The platform operator makes an alliance admin; returns the admin's access token.
pub(crate) async fn alliance_admin(app: &TestApp, alliance: &str) -> String {
    let email = format!("{}@alliance.test", unique("adm"));
    let new = json!({"email": email, "password": "alliance-admin-pass", "display_name": "A"});
    let path = format!("/v1/platform/alliances/{alliance}/admins");
    let (s, b) = app.call(Method::POST, &path, Some(&app.platform_token), Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let login = json!({"email": email, "password": "alliance-admin-pass"});
    let (s, b) = app.call(Method::POST, &format!("/v1/alliances/{alliance}/auth/login"), None, Some(login)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["access_token"].as_str().unwrap().to_string()
}

async fn issue(
    app: &TestApp,
    t: &platform::directory::Tenant,
    key: &str,
    member: &Value,
    amount: i64,
) -> (StatusCode, Value) {
    let items = json!({"items": [{"member_id": member["id"], "amount": amount, "currency": SHARED}]});
    app.partner_post(t, key, "/points/credits", &unique("c"), items).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issuing_draws_on_the_malls_budget_and_stops_exactly_when_it_runs_out() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let t = unfunded_mall(&app, &a.slug).await;
    let key = app.partner_key(&t).await;
    let (m, tokens) = app.proven_member(&t, &phone()).await;
    let token = tokens["access_token"].as_str().unwrap();

    // Nothing funded: refused, nothing written.
    let (s, b) = issue(&app, &t, &key, &m, 1_000).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("budget_exhausted")), "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("0 fen left"), "{b}");
    assert_eq!(my_balance(&app, &t, token, SHARED).await, 0);

    // The alliance admin sets the terms (100 points = ¥1, the mall bears 15%) and funds
    // exactly twenty issues of 1,000 points: 20 × ¥1.50.
    let admin = alliance_admin(&app, &a.slug).await;
    let base = format!("/v1/alliances/{}", a.slug);
    let (s, c) =
        app.call(Method::PUT, &format!("{base}/clearing"), Some(&admin), Some(json!({"points_per_yuan": 100}))).await;
    assert_eq!((s, c["points_per_yuan"].as_i64()), (StatusCode::OK, Some(100)), "{c}");
    let terms = json!({"rate_bp": 1500, "low_threshold_fen": 500});
    let (s, b) = app.call(Method::PUT, &format!("{base}/malls/{}/budget", t.slug), Some(&admin), Some(terms)).await;
    assert_eq!((s, b["rate_bp"].as_i64()), (StatusCode::OK, Some(1500)), "{b}");
    let top = json!({"amount_fen": 3_000, "memo": "November"});
    let (s, e) =
        app.call(Method::POST, &format!("{base}/malls/{}/budget/top-ups", t.slug), Some(&admin), Some(top)).await;
    assert_eq!((s, e["balance_after_fen"].as_i64()), (StatusCode::CREATED, Some(3_000)), "{e}");

    // Fifty issues race for the budget: exactly twenty go through.
    let mut members = Vec::new();
    for _ in 0..5 {
        members.push(app.proven_member(&t, &phone()).await.0);
    }
    let racing = (0..50).map(|i| {
        let (app, t, key, m) = (&app, &t, &key, &members[i % members.len()]);
        async move { issue(app, t, key, m, 1_000).await }
    });
    let answers = futures::future::join_all(racing).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let exhausted =
        answers.iter().filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "budget_exhausted").count();
    assert_eq!((ok, exhausted), (20, 30), "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    let (s, all) = app.call(Method::GET, &format!("{base}/budgets"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let mine = all["malls"].as_array().unwrap().iter().find(|x| x["slug"] == t.slug.as_str()).unwrap();
    assert_eq!(mine["balance_fen"], 0, "{all}");
    let (_, entries) =
        app.call(Method::GET, &format!("{base}/malls/{}/budget/entries?limit=200", t.slug), Some(&admin), None).await;
    let items = entries["items"].as_array().unwrap();
    assert_eq!(items.len(), 21, "one top-up and twenty issues");
    assert!(items.iter().filter(|e| e["kind"] == "issue").all(|e| e["amount_fen"] == -150 && e["points"] == 1000));
    let mut shared = 0;
    for m in &members {
        shared += app.balance(&t, &key, m["id"].as_i64().unwrap(), SHARED).await;
    }
    assert_eq!(shared, 20_000, "exactly the points the budget paid for");

    // The mall's owner sees its budget and funds it; issuing works again.
    let (_, owner) = app.staff(&t, "owner").await;
    let own = format!("/v1/tenants/{}/staff/alliance-budget", t.slug);
    let (s, b) = app.call(Method::GET, &own, Some(&owner), None).await;
    assert_eq!((s, b["balance_fen"].as_i64()), (StatusCode::OK, Some(0)), "{b}");
    // Crossing the alert threshold (500 fen) told the mall's staff once, in its audit log
    // (the portal labels `alliance.budget.low` in zh-CN and en), besides `budget.low`.
    let (s, log) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/audit-log", t.slug), Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let lows: Vec<&Value> =
        log["items"].as_array().unwrap().iter().filter(|e| e["action"] == "alliance.budget.low").collect();
    assert_eq!(lows.len(), 1, "{log}");
    assert_eq!(lows[0]["details"]["low_threshold_fen"].as_i64(), Some(500), "{log}");
    assert!(lows[0]["details"]["balance_fen"].as_i64().unwrap() < 500, "{log}");
    let (s, b) = app
        .call(Method::POST, &format!("{own}/top-ups"), Some(&owner), Some(json!({"amount_fen": 150, "memo": ""})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = issue(&app, &t, &key, &m, 1_000).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = issue(&app, &t, &key, &m, 1).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("budget_exhausted")), "{b}");
    assert_eq!(my_balance(&app, &t, token, SHARED).await, 1_000);

    // Bad input is named; the budget stays the sum of its entries.
    let (s, b) = app
        .call(Method::POST, &format!("{own}/top-ups"), Some(&owner), Some(json!({"amount_fen": 0, "memo": ""})))
        .await;
    assert_eq!(
        (s, b["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount_fen")),
        "{b}"
    );
    assert_alliance_ledger_sound(&app, &a).await;
}

#[tokio::test]
async fn budgets_are_seen_only_by_their_alliance_and_their_mall() {
    let app = TestApp::spawn().await;
    let (a, b) = (alliance(&app).await, alliance(&app).await);
    let (ta, tb) = (unfunded_mall(&app, &a.slug).await, unfunded_mall(&app, &b.slug).await);
    let (admin_a, admin_b) = (alliance_admin(&app, &a.slug).await, alliance_admin(&app, &b.slug).await);
    // Another alliance's admin: 403 on this alliance's routes.
    let (s, x) = app.call(Method::GET, &format!("/v1/alliances/{}/budgets", a.slug), Some(&admin_b), None).await;
    assert_eq!((s, x["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("wrong_alliance")), "{x}");
    // A mall of another alliance is not found through this one.
    let top = json!({"amount_fen": 100, "memo": ""});
    let path = format!("/v1/alliances/{}/malls/{}/budget/top-ups", a.slug, tb.slug);
    let (s, x) = app.call(Method::POST, &path, Some(&admin_a), Some(top.clone())).await;
    assert_eq!((s, x["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("tenant_not_found")), "{x}");
    // A mall's staff token is not an alliance credential, and a mall's customer service
    // may not fund the budget.
    let (_, owner_a) = app.staff(&ta, "owner").await;
    let (s, _) = app.call(Method::GET, &format!("/v1/alliances/{}/budgets", a.slug), Some(&owner_a), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, cs) = app.staff(&ta, "customer_service").await;
    let own = format!("/v1/tenants/{}/staff/alliance-budget/top-ups", ta.slug);
    let (s, _) = app.call(Method::POST, &own, Some(&cs), Some(top.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // An alliance admin invites another, who signs in to the same alliance only.
    let email = format!("{}@alliance.test", unique("inv"));
    let new = json!({"email": email, "password": "second-admin-pass", "display_name": "B"});
    let (s, x) = app.call(Method::POST, &format!("/v1/alliances/{}/admins", a.slug), Some(&admin_a), Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{x}");
    let login = json!({"email": email, "password": "second-admin-pass"});
    let (s, _) =
        app.call(Method::POST, &format!("/v1/alliances/{}/auth/login", a.slug), None, Some(login.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.call(Method::POST, &format!("/v1/alliances/{}/auth/login", b.slug), None, Some(login)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_merchants_rule_awards_shared_points_charged_to_its_budget() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let t = crate::alliance::mall_in(&app, &a.slug).await; // funded with 100,000,000 fen
    let key = app.partner_key(&t).await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (m, tokens) = app.proven_member(&t, &phone()).await;
    let script = format!("[award(\"{SHARED}\", 500, \"first review\")]");
    let rule = json!({"name": "shared review bonus", "event_type": "review_posted", "script": script, "params": {}});
    let (s, b) = app.call(Method::POST, &format!("/v1/tenants/{}/staff/rules", t.slug), Some(&owner), Some(rule)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let events = json!({"events": [{"id": unique("e"), "type": "review_posted", "member_id": m["id"], "data": {}}]});
    let headers = [("x-api-key", key.clone())];
    let path = format!("/v1/tenants/{}/partner/events", t.slug);
    let (s, _, r) = app.call_full(Method::POST, &path, &headers, Some(events)).await;
    assert_eq!((s, r["results"][0]["status"].as_str()), (StatusCode::OK, Some("applied")), "{r}");
    assert_eq!(my_balance(&app, &t, tokens["access_token"].as_str().unwrap(), SHARED).await, 500);
    // 500 points at 100 points = ¥1 and 15%: 75 fen.
    let (_, b) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/alliance-budget", t.slug), Some(&owner), None).await;
    assert_eq!(b["balance_fen"], 100_000_000 - 75, "{b}");
    assert_alliance_ledger_sound(&app, &a).await;
}

#[tokio::test]
async fn an_existing_mall_joins_an_alliance_and_issues_once_it_funds_its_budget() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (m, tokens) = app.proven_member(&t, &phone()).await;
    let join = format!("/v1/platform/tenants/{}/alliance", t.slug);
    let (s, b) = app.call(Method::POST, &join, Some(&app.platform_token), Some(json!({"alliance": a.slug}))).await;
    assert_eq!((s, b["alliance_id"].as_i64()), (StatusCode::OK, Some(a.id)), "{b}");
    let (_, cur) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/currencies", t.slug), Some(&owner), None).await;
    assert!(cur.as_array().unwrap().iter().any(|c| c["code"] == SHARED && c["shared"] == true), "{cur}");
    let t = platform::directory::find_by_slug(app.db.control(), &t.slug).await.unwrap().unwrap();
    let (s, b) = issue(&app, &t, &key, &m, 1_000).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("budget_exhausted")), "{b}");
    let own = format!("/v1/tenants/{}/staff/alliance-budget/top-ups", t.slug);
    let (s, b) = app.call(Method::POST, &own, Some(&owner), Some(json!({"amount_fen": 150, "memo": "first"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = issue(&app, &t, &key, &m, 1_000).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(my_balance(&app, &t, tokens["access_token"].as_str().unwrap(), SHARED).await, 1_000);
    // One alliance per mall; an unknown alliance is named.
    let (s, b) = app.call(Method::POST, &join, Some(&app.platform_token), Some(json!({"alliance": a.slug}))).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_in_alliance")), "{b}");
    let other = app.tenant().await;
    let path = format!("/v1/platform/tenants/{}/alliance", other.slug);
    let (s, b) = app.call(Method::POST, &path, Some(&app.platform_token), Some(json!({"alliance": "no-such"}))).await;
    assert_eq!(
        (s, b["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("alliance")),
        "{b}"
    );
    assert_alliance_ledger_sound(&app, &a).await;
}

/// Issue 12, point 3: a top-up with an `Idempotency-Key` is made once: the same key and
/// body again answer the first entry and add nothing; another body is 422
/// `idempotency_key_reused`. Both routes (the alliance admin's and the mall owner's).
#[tokio::test]
async fn top_ups_with_an_idempotency_key_are_made_once() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let t = unfunded_mall(&app, &a.slug).await;
    let admin = alliance_admin(&app, &a.slug).await;
    let (_, owner) = app.staff(&t, "owner").await;
    let paths = [
        (format!("/v1/alliances/{}/malls/{}/budget/top-ups", a.slug, t.slug), admin.clone()),
        (format!("/v1/tenants/{}/staff/alliance-budget/top-ups", t.slug), owner.clone()),
    ];
    let mut balance = 0;
    for (path, token) in &paths {
        let key = unique("topup");
        let post = |body: Value, key: String| {
            let (app, path, token) = (&app, path.clone(), token.clone());
            async move {
                let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", key)];
                app.call_full(Method::POST, &path, &headers, Some(body)).await
            }
        };
        let body = json!({"amount_fen": 700, "memo": "December"});
        let (s, h, first) = post(body.clone(), key.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{first}");
        assert!(h.get("idempotent-replayed").is_none());
        balance += 700;
        assert_eq!(first["balance_after_fen"].as_i64(), Some(balance), "{first}");
        let (s, h, again) = post(body.clone(), key.clone()).await;
        assert_eq!((s, &again), (StatusCode::CREATED, &first), "the first answer, again");
        assert_eq!(h.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
        let (s, _, other) = post(json!({"amount_fen": 900, "memo": "December"}), key.clone()).await;
        assert_eq!(
            (s, other["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")),
            "{other}"
        );
        // Without a key each request is a top-up of its own, as before.
        let (s, _, b) =
            app.call_full(Method::POST, path, &[("authorization", format!("Bearer {token}"))], Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        balance += 700;
    }
    let (s, b) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/alliance-budget", t.slug), Some(&owner), None).await;
    assert_eq!((s, b["balance_fen"].as_i64()), (StatusCode::OK, Some(balance)), "{b}");
    let (s, page) = app
        .call(Method::GET, &format!("/v1/alliances/{}/malls/{}/budget/entries", a.slug, t.slug), Some(&admin), None)
        .await;
    assert_eq!((s, page["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(4)), "{page}");
}
