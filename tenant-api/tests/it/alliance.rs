//! Alliance malls (SPEC A1, A2, C6): a member earns the alliance's shared points in one
//! mall, moves to another mall of the alliance without a second login, sees the same
//! balance there and spends it on products priced in shared points; private points stay
//! in their own mall; a refund puts shared points back; races across two malls never
//! overspend; every ledger (both malls and the alliance's) verifies.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, auth_headers, phone, unique};

pub(crate) const SHARED: &str = "union_pts";

pub(crate) struct Alliance {
    pub(crate) slug: String,
    pub(crate) id: i64,
}

pub(crate) async fn alliance(app: &TestApp) -> Alliance {
    let slug = unique("al");
    let (s, a) = app
        .call(
            Method::POST,
            "/v1/platform/alliances",
            Some(&app.platform_token),
            Some(json!({"slug": slug, "name": "Test alliance", "currency_code": SHARED, "currency_name": "联盟分"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["currency_code"], SHARED);
    Alliance { slug, id: a["id"].as_i64().unwrap() }
}

pub(crate) async fn mall_in(app: &TestApp, alliance: &str) -> platform::directory::Tenant {
    let slug = unique("m");
    let (s, b) = app
        .call(
            Method::POST,
            "/v1/platform/tenants",
            Some(&app.platform_token),
            Some(json!({"slug": slug, "name": "Alliance mall", "alliance": alliance})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let t = platform::directory::find_by_slug(app.db.control(), &slug).await.unwrap().unwrap();
    // Every alliance mall of these tests funds its issuing budget (¥1,000,000), so tests
    // about other things never run out of it; `budgets.rs` tests the budget itself.
    let a = platform::tenancy::find_alliance(app.db.control(), alliance).await.unwrap();
    let top = platform::alliance::budget::TopUp { amount_fen: 100_000_000, memo: "test funding".into() };
    let system = platform::audit::Actor::system("test");
    platform::alliance::budgets::top_up(&app.db, &a, &t, &top, &system).await.unwrap();
    t
}

pub(crate) async fn product(
    app: &TestApp,
    t: &platform::directory::Tenant,
    owner: &str,
    currency: &str,
    price: i64,
) -> i64 {
    let (s, p) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/products", t.slug),
            Some(owner),
            Some(json!({"name": format!("{currency} coupon"), "kind": "coupon", "points_price": price, "stock": 50,
                "currency": currency, "status": "listed", "review_state": "approved"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["currency"], currency);
    p["id"].as_i64().unwrap()
}

pub(crate) async fn my_balance(app: &TestApp, t: &platform::directory::Tenant, token: &str, currency: &str) -> i64 {
    let (s, p) = app.call(Method::GET, &format!("/v1/tenants/{}/me/points", t.slug), Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    p["balances"].as_array().unwrap().iter().find(|b| b["currency"] == currency).unwrap()["balance"].as_i64().unwrap()
}

pub(crate) async fn redeem(
    app: &TestApp,
    t: &platform::directory::Tenant,
    token: &str,
    product_id: i64,
) -> (StatusCode, Value) {
    let mut headers = auth_headers(Some(token));
    headers.push(("idempotency-key", unique("r")));
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/me/redemptions", t.slug),
            &headers,
            Some(json!({"product_id": product_id})),
        )
        .await;
    (s, b)
}

pub(crate) async fn handoff(app: &TestApp, to: &platform::directory::Tenant, token: &str) -> (StatusCode, Value) {
    app.call(Method::POST, &format!("/v1/tenants/{}/auth/alliance-handoff", to.slug), Some(token), None).await
}

pub(crate) async fn assert_alliance_ledger_sound(app: &TestApp, a: &Alliance) {
    let r = platform::ledger::verify::verify_schema(&app.db, "main", &format!("a_{}", a.id)).await.unwrap();
    assert!(r.problems.is_empty(), "alliance ledger: {:#?}", r.problems);
    assert!(r.entries > 0, "the shared points were written in the alliance ledger");
}

#[tokio::test]
async fn shared_points_earned_in_one_mall_are_spent_in_another() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let (ma, mb) = (mall_in(&app, &a.slug).await, mall_in(&app, &a.slug).await);
    let outsider = app.tenant().await;

    // The alliance's malls are public, with the shared currency.
    let (s, list) = app.call(Method::GET, &format!("/v1/alliances/{}/malls", a.slug), None, None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["currency_code"], SHARED);
    let slugs: Vec<&str> = list["malls"].as_array().unwrap().iter().map(|m| m["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs.len(), 2);
    assert!(slugs.contains(&ma.slug.as_str()) && slugs.contains(&mb.slug.as_str()));

    // A member of mall A earns 1,000 shared points and 500 of A's own points.
    let (member, tokens) = app.proven_member(&ma, &phone()).await;
    let member_a = member["id"].as_i64().unwrap();
    let token_a = tokens["access_token"].as_str().unwrap().to_string();
    let key_a = app.partner_key(&ma).await;
    let items = json!({"items": [
        {"member_id": member_a, "amount": 1000, "currency": SHARED},
        {"member_id": member_a, "amount": 500},
    ]});
    let (s, credited) = app.partner_post(&ma, &key_a, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{credited}");
    assert!(credited["entries"].as_array().unwrap().iter().all(|e| e["member_id"] == member_a), "{credited}");
    assert_eq!(my_balance(&app, &ma, &token_a, SHARED).await, 1000);
    assert_eq!(my_balance(&app, &ma, &token_a, "points").await, 500);

    // Into mall B without a second login: same shared balance, B's own points empty.
    let (s, pair) = handoff(&app, &mb, &token_a).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let token_b = pair["access_token"].as_str().unwrap().to_string();
    assert_eq!(my_balance(&app, &mb, &token_b, SHARED).await, 1000);
    assert_eq!(my_balance(&app, &mb, &token_b, "points").await, 0);
    // A's token does not open B's mall directly, nor does a forged or staff token hand off.
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/me/points", mb.slug), Some(&token_a), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = handoff(&app, &mb, &format!("{token_a}x")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, staff_a) = app.staff(&ma, "operator").await;
    let (s, _) = handoff(&app, &mb, &staff_a).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A mall outside the alliance is not reachable this way, nor is an alliance mall
    // from outside.
    let (outsider_member, outsider_tokens) = app.proven_member(&outsider, &phone()).await;
    assert!(outsider_member["id"].is_number());
    let (s, b) = handoff(&app, &mb, outsider_tokens["access_token"].as_str().unwrap()).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_in_alliance")));
    let (s, b) = handoff(&app, &outsider, &token_a).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_in_alliance")));
    // A second hand-off lands on the same member of B.
    let (_, again) = handoff(&app, &mb, &token_a).await;
    let (_, me1) = app.call(Method::GET, &format!("/v1/tenants/{}/me", mb.slug), Some(&token_b), None).await;
    let (_, me2) = app
        .call(Method::GET, &format!("/v1/tenants/{}/me", mb.slug), Some(again["access_token"].as_str().unwrap()), None)
        .await;
    assert_eq!(me1["id"], me2["id"]);
    // A disabled account at either end stops the hand-off.
    let set_status = |status: &'static str| {
        let (db, mb) = (&app.db, &mb);
        async move {
            let mut tx = db.tenant_tx(&mb.cluster, &mb.schema_name).await.unwrap();
            sqlx::query("UPDATE members SET status = $1").bind(status).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
    };
    set_status("disabled").await;
    let (s, b) = handoff(&app, &mb, &token_a).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("account_disabled")), "{b}");
    set_status("active").await;

    // B sells a coupon for 300 shared points and one for 100 of its own points.
    let (_, owner_b) = app.staff(&mb, "owner").await;
    let shared_coupon = product(&app, &mb, &owner_b, SHARED, 300).await;
    let own_coupon = product(&app, &mb, &owner_b, "points", 100).await;
    // Members see what each product is priced in, and can list what shared points buy.
    let (s, cards) =
        app.call(Method::GET, &format!("/v1/tenants/{}/products?currency={SHARED}", mb.slug), None, None).await;
    assert_eq!(s, StatusCode::OK, "{cards}");
    let cards = cards["items"].as_array().unwrap();
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!((cards[0]["id"].as_i64(), cards[0]["currency"].as_str()), (Some(shared_coupon), Some(SHARED)));
    let (s, order) = redeem(&app, &mb, &token_b, shared_coupon).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    assert_eq!((order["currency"].as_str(), order["points_amount"].as_i64()), (Some(SHARED), Some(300)));
    // A's points do not pay at B.
    let (s, b) = redeem(&app, &mb, &token_b, own_coupon).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("insufficient_points")), "{b}");
    // One balance: 700 seen from both malls; A's own points untouched.
    assert_eq!(my_balance(&app, &ma, &token_a, SHARED).await, 700);
    assert_eq!(my_balance(&app, &mb, &token_b, SHARED).await, 700);
    assert_eq!(my_balance(&app, &ma, &token_a, "points").await, 500);

    // B's staff refunds the order: the 300 shared points come back.
    let (s, refunded) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/{}/refund", mb.slug, order["id"]),
            Some(&owner_b),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(my_balance(&app, &ma, &token_a, SHARED).await, 1000);
    // The shared history, seen from mall A, has the credit at A and the spend and
    // refund at B, newest first.
    let (s, page) = app
        .call(
            Method::GET,
            &format!("/v1/tenants/{}/me/points/entries?currency={SHARED}", ma.slug),
            Some(&token_a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let seen: Vec<(&str, i64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["reason"].as_str().unwrap(), e["amount"].as_i64().unwrap()))
        .collect();
    assert_eq!(seen, [("refund", 300), ("spend", -300), ("earn", 1000)], "{page}");
    assert!(page["items"].as_array().unwrap().iter().all(|e| e["member_id"] == member_a));

    // A hold takes shared points like the mall's own (tests/it/shared_points.rs has more).
    let hold = json!({"member_id": member_a, "amount": 10, "currency": SHARED});
    let (s, b) = app.partner_post(&ma, &key_a, "/holds", &unique("h"), hold).await;
    assert_eq!((s, b["currency"].as_str()), (StatusCode::CREATED, Some(SHARED)), "{b}");
    let (s, b) = app.partner_post(&ma, &key_a, &format!("/holds/{}/void", b["id"]), &unique("v"), json!({})).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("voided")), "{b}");

    // A merchant's rule may issue shared points (charged to the mall's budget) and deduct
    // them (from the alliance's ledger); a deduction the shared balance does not cover
    // fails that event, naming the shortfall, and the next event of the batch applies.
    let (_, owner_a) = app.staff(&ma, "owner").await;
    let script = format!(
        "if event.data.fee > 0 {{ [award(\"{SHARED}\", 50, \"visit\"), deduct(\"{SHARED}\", event.data.fee, \"fee\")] }} else {{ [] }}"
    );
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/rules", ma.slug),
            Some(&owner_a),
            Some(json!({"name": "shared visit", "event_type": "visit", "script": script, "params": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let events = json!({"events": [
        {"id": unique("e"), "type": "visit", "member_id": member_a, "data": {"fee": 10}},
        {"id": unique("e"), "type": "visit", "member_id": member_a, "data": {"fee": 5000}},
        {"id": unique("e"), "type": "other", "member_id": member_a, "data": {}},
    ]});
    let (s, _, r) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/events", ma.slug),
            &[("x-api-key", key_a.clone())],
            Some(events),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["results"][0]["status"], "applied", "{r}");
    assert_eq!(r["results"][1]["status"], "failed", "{r}");
    assert!(r["results"][1]["error"].as_str().unwrap().contains("balance"), "{r}");
    assert_eq!(r["results"][2]["status"], "applied", "{r}");
    assert_eq!(my_balance(&app, &ma, &token_a, SHARED).await, 1040, "1,000 + 50 − 10; the failed event wrote nothing");

    app.assert_ledger_sound(&ma).await;
    app.assert_ledger_sound(&mb).await;
    assert_alliance_ledger_sound(&app, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redemptions_racing_in_two_malls_never_overspend_shared_points() {
    let app = Arc::new(TestApp::spawn().await);
    let a = alliance(&app).await;
    let (ma, mb) = (mall_in(&app, &a.slug).await, mall_in(&app, &a.slug).await);
    let (member, tokens) = app.proven_member(&ma, &phone()).await;
    let token_a = tokens["access_token"].as_str().unwrap().to_string();
    let key_a = app.partner_key(&ma).await;
    let credit = json!({"items": [{"member_id": member["id"], "amount": 1000, "currency": SHARED}]});
    let (s, b) = app.partner_post(&ma, &key_a, "/points/credits", &unique("c"), credit).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, pair) = handoff(&app, &mb, &token_a).await;
    let token_b = pair["access_token"].as_str().unwrap().to_string();
    let (_, owner_a) = app.staff(&ma, "owner").await;
    let (_, owner_b) = app.staff(&mb, "owner").await;
    let coupon_a = product(&app, &ma, &owner_a, SHARED, 300).await;
    let coupon_b = product(&app, &mb, &owner_b, SHARED, 300).await;

    // 16 attempts at once, half in each mall: 1,000 points pay for exactly three.
    let attempts = (0..16).map(|i| {
        let app = app.clone();
        let (mall, token, coupon) =
            if i % 2 == 0 { (ma.clone(), token_a.clone(), coupon_a) } else { (mb.clone(), token_b.clone(), coupon_b) };
        tokio::spawn(async move { redeem(&app, &mall, &token, coupon).await })
    });
    let mut won = 0;
    for h in futures::future::join_all(attempts).await {
        let (s, b) = h.unwrap();
        match s {
            StatusCode::CREATED => won += 1,
            StatusCode::CONFLICT => assert_eq!(b["error"]["code"], "insufficient_points", "{b}"),
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!(won, 3);
    assert_eq!(my_balance(&app, &ma, &token_a, SHARED).await, 100);
    assert_eq!(my_balance(&app, &mb, &token_b, SHARED).await, 100);
    app.assert_ledger_sound(&ma).await;
    app.assert_ledger_sound(&mb).await;
    assert_alliance_ledger_sound(&app, &a).await;
}

#[tokio::test]
async fn one_phone_in_two_malls_is_not_merged_into_one_identity_without_proof() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let (ma, mb) = (mall_in(&app, &a.slug).await, mall_in(&app, &a.slug).await);
    let p = phone();
    let (at_a, tokens_a) = app.proven_member(&ma, &p).await;
    // B's account with the same phone was registered with a password only: the phone is
    // not proven there.
    let (at_b, _) = app.member(&mb, &p).await;
    assert!(at_b["phone_proven_at"].is_null());
    let (key_a, key_b) = (app.partner_key(&ma).await, app.partner_key(&mb).await);
    let credit = |id: &Value| json!({"items": [{"member_id": id, "amount": 100, "currency": SHARED}]});
    let (s, b) = app.partner_post(&ma, &key_a, "/points/credits", &unique("c"), credit(&at_a["id"])).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // The unproven account gets no alliance identity: neither A's nor one of its own.
    let (s, b) = app.partner_post(&mb, &key_b, "/points/credits", &unique("c"), credit(&at_b["id"])).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("identifier_unproven")), "{b}");
    // The hand-off brings A's proven member to B: the unproven claim on the phone does
    // not block them, and they get an account of their own there, not B's unproven one.
    let (s, pair) = handoff(&app, &mb, tokens_a["access_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let token_b = pair["access_token"].as_str().unwrap();
    let (_, me_b) = app.call(Method::GET, &format!("/v1/tenants/{}/me", mb.slug), Some(token_b), None).await;
    assert_ne!(me_b["id"], at_b["id"], "the unproven account is not the hand-off's");
    assert_eq!(me_b["phone"], at_a["phone"]);
    assert_eq!(my_balance(&app, &mb, token_b, SHARED).await, 100);
    let r = platform::ledger::verify::verify_schema(&app.db, "main", &format!("a_{}", a.id)).await.unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!(r.accounts, 1, "only A's member holds shared points");
}

#[tokio::test]
async fn a_phone_proven_in_two_malls_is_one_identity_after_the_hand_off() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let (ma, mb) = (mall_in(&app, &a.slug).await, mall_in(&app, &a.slug).await);
    let p = phone();
    let (at_a, tokens_a) = app.proven_member(&ma, &p).await;
    let (at_b, tokens_b) = app.proven_member(&mb, &p).await;
    let key_a = app.partner_key(&ma).await;
    let credit = json!({"items": [{"member_id": at_a["id"], "amount": 70, "currency": SHARED}]});
    let (s, b) = app.partner_post(&ma, &key_a, "/points/credits", &unique("c"), credit).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Both accounts proved the phone with a code: the hand-off links B's existing account.
    let (s, pair) = handoff(&app, &mb, tokens_a["access_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let (_, me_b) = app
        .call(Method::GET, &format!("/v1/tenants/{}/me", mb.slug), Some(pair["access_token"].as_str().unwrap()), None)
        .await;
    assert_eq!(me_b["id"], at_b["id"]);
    assert_eq!(my_balance(&app, &mb, tokens_b["access_token"].as_str().unwrap(), SHARED).await, 70);
    assert_alliance_ledger_sound(&app, &a).await;
}

#[tokio::test]
async fn a_failed_shared_points_write_leaves_the_transaction_in_the_malls_schema() {
    use platform::ledger::{Reason, Source, SourceKind};
    use sqlx::Connection;
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let mall = mall_in(&app, &a.slug).await;
    let (m, _) = app.proven_member(&mall, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let key = app.partner_key(&mall).await;
    let credit = json!({"items": [{"member_id": id, "amount": 10, "currency": SHARED}]});
    let (s, b) = app.partner_post(&mall, &key, "/points/credits", &unique("c"), credit).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let mut tx = app.db.tenant_tx(&mall.cluster, &mall.schema_name).await.unwrap();
    let where_am_i = "SELECT current_schema()::text";
    {
        let mut savepoint = tx.begin().await.unwrap();
        let source = Source::new(SourceKind::Partner, "test");
        let err = platform::alliance::book::debit(
            &mut savepoint,
            &mall,
            id,
            SHARED,
            1_000,
            Reason::Spend,
            &source,
            chrono::Utc::now(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "insufficient_points");
        // The write failed in the alliance schema; the next statement runs in the mall's.
        let here: String = sqlx::query_scalar(where_am_i).fetch_one(&mut *savepoint).await.unwrap();
        assert_eq!(here, mall.schema_name);
        savepoint.rollback().await.unwrap();
    }
    let here: String = sqlx::query_scalar(where_am_i).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(here, mall.schema_name);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn alliance_admins_see_how_many_members_each_mall_shares_and_nothing_personal() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let (ma, mb) = (mall_in(&app, &a.slug).await, mall_in(&app, &a.slug).await);
    let admin = crate::budgets::alliance_admin(&app, &a.slug).await;
    // Member 1 of A earns shared points and moves to B; member 2 of A moves to B without
    // any; member 3 of A never uses the alliance.
    let (p1, p2, p3) = (phone(), phone(), phone());
    let (m1, t1) = app.proven_member(&ma, &p1).await;
    let key = app.partner_key(&ma).await;
    let items = json!({"items": [{"member_id": m1["id"], "amount": 40, "currency": SHARED}]});
    let (s, b) = app.partner_post(&ma, &key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, x) = handoff(&app, &mb, t1["access_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{x}");
    let (_, t2) = app.proven_member(&ma, &p2).await;
    let (s, x) = handoff(&app, &mb, t2["access_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{x}");
    app.proven_member(&ma, &p3).await;

    let path = format!("/v1/alliances/{}/member-counts", a.slug);
    let (s, c) = app.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let mall = |slug: &str| {
        let m = c["malls"].as_array().unwrap().iter().find(|m| m["slug"] == slug).unwrap_or_else(|| panic!("{c}"));
        (m["with_identity"].as_i64().unwrap(), m["with_shared_balance"].as_i64().unwrap())
    };
    assert_eq!(mall(&ma.slug), (2, 1), "{c}");
    assert_eq!(mall(&mb.slug), (2, 1), "{c}");
    assert_eq!((c["identities"].as_i64(), c["identities_with_shared_balance"].as_i64()), (Some(2), Some(1)), "{c}");
    let text = c.to_string();
    for p in [&p1, &p2, &p3] {
        assert!(!text.contains(p.as_str()), "no phone in the counts: {text}");
    }
    assert!(!text.contains("member_id") && !text.contains("nickname"), "{text}");

    // Another alliance's admin is refused; a mall's staff token is no alliance credential.
    let other = alliance(&app).await;
    let stranger = crate::budgets::alliance_admin(&app, &other.slug).await;
    let (s, _) = app.call(Method::GET, &path, Some(&stranger), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, owner) = app.staff(&ma, "owner").await;
    let (s, _) = app.call(Method::GET, &path, Some(&owner), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
