//! Linking accounts (issue 12, A2): a member with accounts in two malls of an alliance
//! links them by proving both (signed in at one; a code sent to the other's proven phone
//! or e-mail, or its password). Balances stay where they are: when both accounts already
//! had shared points, the two identities merge, every point keeping the mall that issued
//! it (the settlement statement is the one computed by hand), a refund of an order paid
//! before the link reaches the one balance, and the ledgers verify. The refusals, the
//! audit in both malls, the hand-off's 409 naming the link route, two links racing, and
//! credits racing a merge.

use std::sync::Arc;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, assert_alliance_ledger_sound, handoff, mall_in, my_balance, product, redeem};
use crate::budgets::alliance_admin;
use crate::common::{PASSWORD, TestApp, phone, unique};

type Tenant = platform::directory::Tenant;

/// Asks for a link code from `from` (signed in with `token`) to the account of `mall`
/// holding `identifier`.
pub(crate) async fn send_link_code(app: &TestApp, from: &Tenant, token: &str, mall: &str, identifier: &str) {
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/me/alliance-links/codes", from.slug),
            Some(token),
            Some(json!({"mall": mall, "identifier": identifier})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
}

/// Links, from `from` (signed in with `token`), with `body` (mall, identifier, code or password).
pub(crate) async fn link(app: &TestApp, from: &Tenant, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, &format!("/v1/tenants/{}/me/alliance-links", from.slug), Some(token), Some(body)).await
}

async fn credit(app: &TestApp, t: &Tenant, member_id: &Value, amount: i64) {
    let key = app.partner_key(t).await;
    let items = json!({"items": [{"member_id": member_id, "amount": amount, "currency": SHARED}]});
    let (s, b) = app.partner_post(t, &key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

fn token(pair: &Value) -> String {
    pair["access_token"].as_str().unwrap().to_string()
}

fn code_of(b: &Value) -> Option<&str> {
    b["error"]["code"].as_str()
}

async fn me_id(app: &TestApp, t: &Tenant, token: &str) -> Value {
    let (s, me) = app.call(Method::GET, &format!("/v1/tenants/{}/me", t.slug), Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    me["id"].clone()
}

/// The shared-currency entries of `identity` in the alliance ledger, as (reason, amount).
async fn alliance_entries(app: &TestApp, alliance_id: i64, identity: i64) -> Vec<(String, i64)> {
    let mut tx = app.db.tenant_tx("main", &format!("a_{alliance_id}")).await.unwrap();
    let rows = sqlx::query_as("SELECT reason, amount FROM entries WHERE member_id = $1 ORDER BY id")
        .bind(identity)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

#[tokio::test]
async fn two_accounts_with_shared_points_link_into_one_balance_and_settle_as_before() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let (a, b) = (mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await);
    let admin = alliance_admin(&app, &al.slug).await;
    let base = format!("/v1/alliances/{}", al.slug);
    let clearing = json!({"points_per_yuan": 50, "time_zone": "Asia/Shanghai"});
    let (s, body) = app.call(Method::PUT, &format!("{base}/clearing"), Some(&admin), Some(clearing)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, owner_a) = app.staff(&a, "owner").await;
    let (_, owner_b) = app.staff(&b, "owner").await;

    // The same person: at A by phone, at B by e-mail (both proven), two identities.
    let email = format!("{}@link.test", unique("m"));
    let (ma, pair_a) = app.proven_member(&a, &phone()).await;
    let (mb, pair_b) = app.proven_member(&b, &email).await;
    let (ta, tb) = (token(&pair_a), token(&pair_b));
    // 1,000 shared points from A; 400 from B, 100 of them spent at B.
    credit(&app, &a, &ma["id"], 1000).await;
    credit(&app, &b, &mb["id"], 400).await;
    let coupon_b = product(&app, &b, &owner_b, SHARED, 100).await;
    let (s, order_b) = redeem(&app, &b, &tb, coupon_b).await;
    assert_eq!(s, StatusCode::CREATED, "{order_b}");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1000);
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 300);

    // Signed in at A, the member links B's account with a code sent to its e-mail.
    send_link_code(&app, &a, &ta, &b.slug, &email).await;
    let code = app.last_code(&email).await;
    let (s, done) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "code": code})).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!((&done["mall"], &done["member_id"]), (&json!(b.slug), &mb["id"]), "{done}");
    assert_eq!((done["moved_points"].as_i64(), done["shared_balance"].as_i64()), (Some(300), Some(1300)), "{done}");
    let (kept, merged) = (done["identity_id"].as_i64().unwrap(), done["merged_identity_id"].as_i64().unwrap());
    assert_ne!(kept, merged);
    // One balance, seen from both accounts; the hand-off from A now lands on B's account.
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1300);
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 1300);
    let (s, pair) = handoff(&app, &b, &ta).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    assert_eq!(me_id(&app, &b, &token(&pair)).await, mb["id"]);
    // The alliance counts one identity now.
    let (s, counts) = app.call(Method::GET, &format!("{base}/member-counts"), Some(&admin), None).await;
    assert_eq!((s, counts["identities"].as_i64()), (StatusCode::OK, Some(1)), "{counts}");
    // The merged identity's history stays; its 300 moved by one transfer.
    let history = alliance_entries(&app, al.id, merged).await;
    assert_eq!(
        history,
        [("earn".to_string(), 400), ("spend".to_string(), -100), ("transfer_out".to_string(), -300)],
        "{history:?}"
    );
    // The same code does not link twice; linking again is refused as already done.
    let (s, body) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "code": code})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::UNAUTHORIZED, Some("code_invalid")), "{body}");
    let (s, body) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "password": PASSWORD})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::CONFLICT, Some("already_linked")), "{body}");

    // B refunds the order paid before the link: the 100 come back to the one balance.
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/{}/refund", b.slug, order_b["id"]),
            Some(&owner_b),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1400);

    // 1,200 spent at A: A's own 1,000 first (the oldest lots), then 200 of B's points.
    let coupon_a = product(&app, &a, &owner_a, SHARED, 1200).await;
    let (s, o) = redeem(&app, &a, &ta, coupon_a).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 200);

    // By hand (50 points a yuan: 2 fen a point): A issued 1000 and redeemed 1200, B
    // issued 400, redeemed 100 and had 100 returned; the link moved nothing across
    // malls. Pairs: A's own 1000 at A (nothing owed), B's 200 at A (400 fen B owes A);
    // B's 100 at B were returned (no pair).
    let tz = platform::localtime::parse("Asia/Shanghai").unwrap();
    let period = platform::localtime::day(tz, Utc::now()).format("%Y-%m-%d").to_string();
    let (s, st) = app.call(Method::GET, &format!("{base}/settlement/{period}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    let line = |mall: &str| {
        let l = st["lines"].as_array().unwrap().iter().find(|l| l["mall"] == mall).unwrap();
        ["issued", "revoked", "redeemed", "returned", "expired", "receivable_fen", "payable_fen", "net_fen"]
            .map(|k| l[k].as_i64().unwrap())
    };
    assert_eq!(line(&a.slug), [1000, 0, 1200, 0, 0, 400, 0, 400], "{st}");
    assert_eq!(line(&b.slug), [400, 0, 100, 100, 0, 0, 400, -400], "{st}");
    let mut pairs = st["pairs"].as_array().unwrap().clone();
    pairs.sort_by_key(|p| p["points"].as_i64());
    assert_eq!(
        pairs,
        [
            json!({"issuer": b.slug, "redeemer": a.slug, "points": 200, "value_fen": 400}),
            json!({"issuer": a.slug, "redeemer": a.slug, "points": 1000, "value_fen": 2000}),
        ],
        "{st}"
    );

    // Both malls' audit logs record the link, the member as actor.
    for (t, owner, member, other) in [(&a, &owner_a, &ma, &b), (&b, &owner_b, &mb, &a)] {
        let (s, log) =
            app.call(Method::GET, &format!("/v1/tenants/{}/staff/audit-log", t.slug), Some(owner), None).await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let e =
            log["items"].as_array().unwrap().iter().find(|e| e["action"] == "member.alliance_link").expect("audited");
        assert_eq!((&e["actor_kind"], &e["actor_id"]), (&json!("member"), &member["id"]), "{e}");
        assert_eq!(
            (&e["details"]["linked_mall"], e["details"]["moved_points"].as_i64()),
            (&json!(other.slug), Some(300))
        );
    }

    // Every ledger verifies: both malls' and the alliance's.
    app.assert_ledger_sound(&a).await;
    app.assert_ledger_sound(&b).await;
    assert_alliance_ledger_sound(&app, &al).await;
}

#[tokio::test]
async fn a_link_is_refused_without_proof_or_across_alliances() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let (a, b) = (mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await);
    let other_alliance = alliance(&app).await;
    let elsewhere = mall_in(&app, &other_alliance.slug).await;
    let lone = app.tenant().await;
    let p = phone();
    let (_, pair_a) = app.proven_member(&a, &p).await;
    let ta = token(&pair_a);

    // A phone alone never links: B's account holds the same phone unproven (a password
    // sign-up). No code goes to it, and a guessed one is refused.
    let (squatter, _) = app.member(&b, &p).await;
    assert!(squatter["phone_proven_at"].is_null());
    let registration = app.last_message(&p).await;
    send_link_code(&app, &a, &ta, &b.slug, &p).await;
    assert_eq!(app.last_message(&p).await, registration, "no code for an account holding the phone unproven");
    let before = app.last_code(&p).await;
    let guess = if before == "123456" { "654321" } else { "123456" };
    let (s, body) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": p, "code": guess})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::UNAUTHORIZED, Some("code_invalid")), "{body}");
    // Nor does the registration code sent to A's phone link anything at B.
    let (s, body) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": p, "code": before})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::UNAUTHORIZED, Some("code_invalid")), "{body}");

    // An account at B proven by e-mail: a wrong code is refused; five wrong guesses use
    // the code up, so even the right one no longer links.
    let email = format!("{}@link.test", unique("m"));
    app.proven_member(&b, &email).await;
    send_link_code(&app, &a, &ta, &b.slug, &email).await;
    let code = app.last_code(&email).await;
    let wrong = if code == "111111" { "222222" } else { "111111" };
    for _ in 0..5 {
        let (s, body) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "code": wrong})).await;
        assert_eq!((s, code_of(&body)), (StatusCode::UNAUTHORIZED, Some("code_invalid")), "{body}");
    }
    let (s, body) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "code": code})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::UNAUTHORIZED, Some("code_invalid")), "{body}");
    // Another code within the minute is refused by the send limit.
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/me/alliance-links/codes", a.slug),
            Some(&ta),
            Some(json!({"mall": b.slug, "identifier": email})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // A wrong password is refused like a wrong sign-in at B.
    let (s, body) =
        link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "password": "not-it-at-all"})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")), "{body}");
    // Neither a code nor a password, or both: 422.
    let (s, _) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) =
        link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "code": code, "password": PASSWORD})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Malls of another alliance, or of none, are out of reach; so is the mall itself.
    for (mall, code) in [(&elsewhere, "not_in_alliance"), (&lone, "not_in_alliance")] {
        app.proven_member(mall, &email).await;
        let (s, body) =
            link(&app, &a, &ta, json!({"mall": mall.slug, "identifier": email, "password": PASSWORD})).await;
        assert_eq!((s, code_of(&body)), (StatusCode::FORBIDDEN, Some(code)), "{body}");
        let (s, body) = app
            .call(
                Method::POST,
                &format!("/v1/tenants/{}/me/alliance-links/codes", a.slug),
                Some(&ta),
                Some(json!({"mall": mall.slug, "identifier": email})),
            )
            .await;
        assert_eq!((s, code_of(&body)), (StatusCode::FORBIDDEN, Some(code)), "{body}");
    }
    let (_, lone_pair) = app.proven_member(&lone, &phone()).await;
    let (s, body) =
        link(&app, &lone, &token(&lone_pair), json!({"mall": a.slug, "identifier": p, "password": PASSWORD})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::FORBIDDEN, Some("not_in_alliance")), "{body}");
    let (s, _) = link(&app, &a, &ta, json!({"mall": a.slug, "identifier": p, "password": PASSWORD})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, body) = link(&app, &a, &ta, json!({"mall": "no-such-mall", "identifier": p, "password": PASSWORD})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");

    // With B's password, the e-mail account links (neither had shared points yet), once.
    let (s, done) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert!(done["merged_identity_id"].is_null(), "{done}");
    let (s, body) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": email, "password": PASSWORD})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::CONFLICT, Some("already_linked")), "{body}");
    // The squatter's account at B was not touched.
    let mut tx = app.db.tenant_tx(&b.cluster, &b.schema_name).await.unwrap();
    let linked: Option<i64> = sqlx::query_scalar("SELECT alliance_member_id FROM members WHERE id = $1")
        .bind(squatter["id"].as_i64().unwrap())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(linked, None);
}

#[tokio::test]
async fn the_hand_offs_dead_end_names_the_link_route_and_linking_opens_it() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let (a, b) = (mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await);
    let p = phone();
    // At A by phone, with 100 shared points.
    let (ma, pair_a) = app.proven_member(&a, &p).await;
    let ta = token(&pair_a);
    credit(&app, &a, &ma["id"], 100).await;
    // At B, the same person by e-mail, with 50 shared points (their own identity). The
    // account also holds the phone, proven: as accounts vouched for by a merchant's
    // systems before identities were keyed on proven identifiers (no route makes this
    // today; the state is written directly).
    let email = format!("{}@link.test", unique("m"));
    let (mb, _) = app.proven_member(&b, &email).await;
    credit(&app, &b, &mb["id"], 50).await;
    let mut tx = app.db.tenant_tx(&b.cluster, &b.schema_name).await.unwrap();
    sqlx::query("UPDATE members SET phone = $2, phone_proven_at = now() WHERE id = $1")
        .bind(mb["id"].as_i64().unwrap())
        .bind(platform::members::Identifier::parse(&p).unwrap().as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The hand-off finds B's account with the phone, on another alliance account: 409,
    // and the answer says how to link it.
    let (s, body) = handoff(&app, &b, &ta).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("/me/alliance-links"), "{msg}");
    let routes = body["error"]["details"]["link_routes"].as_array().expect("details name the link routes");
    assert!(routes.iter().any(|r| r == "POST /v1/tenants/{tenant}/me/alliance-links"), "{body}");

    // The member links it with a code sent to the phone, and the hand-off goes through.
    send_link_code(&app, &a, &ta, &b.slug, &p).await;
    let code = app.last_code(&p).await;
    let (s, done) = link(&app, &a, &ta, json!({"mall": b.slug, "identifier": p, "code": code})).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!((done["moved_points"].as_i64(), done["shared_balance"].as_i64()), (Some(50), Some(150)), "{done}");
    let (s, pair) = handoff(&app, &b, &ta).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    assert_eq!(me_id(&app, &b, &token(&pair)).await, mb["id"]);
    assert_eq!(my_balance(&app, &b, &token(&pair), SHARED).await, 150);
    // A mall joining later finds the kept identity by the merged one's e-mail.
    let c = mall_in(&app, &al.slug).await;
    let (_, pair_c) = app.proven_member(&c, &email).await;
    let (s, pair) = handoff(&app, &a, &token(&pair_c)).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    assert_eq!(me_id(&app, &a, &token(&pair)).await, ma["id"]);
    assert_eq!(my_balance(&app, &c, &token(&pair_c), SHARED).await, 150);
    // A second account at C cannot join: the alliance account has one there already.
    let other = format!("{}@link.test", unique("m"));
    app.proven_member(&c, &other).await;
    send_link_code(&app, &a, &ta, &c.slug, &other).await;
    let code = app.last_code(&other).await;
    let (s, body) = link(&app, &a, &ta, json!({"mall": c.slug, "identifier": other, "code": code})).await;
    assert_eq!((s, code_of(&body)), (StatusCode::CONFLICT, Some("identity_has_account_there")), "{body}");
    assert_alliance_ledger_sound(&app, &al).await;
}

/// Two malls of a new alliance, each with a proven member (a phone at A, an e-mail at
/// B) holding shared points: the two accounts a link joins.
struct Pair {
    al: crate::alliance::Alliance,
    a: Tenant,
    b: Tenant,
    pa: String,
    pb: String,
    mb: Value,
    ta: String,
    tb: String,
}

async fn pair_with_shared_points(app: &TestApp, at_a: i64, at_b: i64) -> Pair {
    let al = alliance(app).await;
    let (a, b) = (mall_in(app, &al.slug).await, mall_in(app, &al.slug).await);
    let (pa, pb) = (phone(), format!("{}@link.test", unique("m")));
    let (ma, pair_a) = app.proven_member(&a, &pa).await;
    let (mb, pair_b) = app.proven_member(&b, &pb).await;
    credit(app, &a, &ma["id"], at_a).await;
    credit(app, &b, &mb["id"], at_b).await;
    let (ta, tb) = (token(&pair_a), token(&pair_b));
    Pair { al, a, b, pa, pb, mb, ta, tb }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_racing_each_other_merge_once() {
    let app = Arc::new(TestApp::spawn().await);
    let Pair { al, a, b, pa, pb, ta, tb, .. } = pair_with_shared_points(&app, 700, 300).await;

    // Eight links at once, from both ends, each proven by the other account's password.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let app = app.clone();
        let (from, tok, body) = if i % 2 == 0 {
            (a.clone(), ta.clone(), json!({"mall": b.slug, "identifier": pb, "password": PASSWORD}))
        } else {
            (b.clone(), tb.clone(), json!({"mall": a.slug, "identifier": pa, "password": PASSWORD}))
        };
        tasks.push(tokio::spawn(async move { link(&app, &from, &tok, body).await }));
    }
    let mut ok = 0;
    for t in tasks {
        let (s, body) = t.await.unwrap();
        match s {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => assert_eq!(code_of(&body), Some("already_linked"), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one link merges");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1000);
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 1000);
    let mut tx = app.db.tenant_tx("main", &format!("a_{}", al.id)).await.unwrap();
    let moves: i64 = sqlx::query_scalar("SELECT count(*) FROM entries WHERE reason = 'transfer_in'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(moves, 1, "one merge, one move");
    assert_alliance_ledger_sound(&app, &al).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credits_in_flight_during_a_merge_all_reach_the_one_balance() {
    let app = Arc::new(TestApp::spawn().await);
    let Pair { al, a, b, pb, mb, ta, tb, .. } = pair_with_shared_points(&app, 100, 100).await;

    // Twenty partner credits of 10 to B's account race the link that merges B's identity
    // into A's: each lands before the merge (and moves with it) or after (on the kept
    // identity); none is left on the merged one.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (app, b, id) = (app.clone(), b.clone(), mb["id"].clone());
        tasks.push(tokio::spawn(async move { credit(&app, &b, &id, 10).await }));
    }
    let body = json!({"mall": b.slug, "identifier": pb, "password": PASSWORD});
    let (s, linked) = link(&app, &a, &ta, body).await;
    assert_eq!(s, StatusCode::OK, "{linked}");
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 400, "100 + 100 + 20 × 10, one balance");
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 400);
    let merged = linked["merged_identity_id"].as_i64().expect("both had an identity: a merge");
    let mut tx = app.db.tenant_tx("main", &format!("a_{}", al.id)).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT coalesce(sum(balance), 0)::bigint FROM accounts WHERE member_id = $1")
        .bind(merged)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(left, 0, "nothing stays on the merged identity");
    assert_alliance_ledger_sound(&app, &al).await;
}

#[tokio::test]
async fn a_checkout_captured_before_a_merge_refunds_to_the_one_balance() {
    let app = TestApp::spawn().await;
    let Pair { al, a, b, pb, mb, ta, tb, .. } = pair_with_shared_points(&app, 100, 500).await;
    // B's partner holds 300 of B's shared points and captures them: B's checkout is paid.
    let key = app.partner_key(&b).await;
    let body = json!({"member_id": mb["id"], "amount": 300, "currency": SHARED});
    let (s, h) = app.partner_post(&b, &key, "/holds", &unique("h"), body).await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let hold = h["id"].as_i64().unwrap();
    let (s, h) =
        app.partner_post(&b, &key, &format!("/holds/{hold}/capture"), &unique("k"), json!({"amount": 300})).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("captured")), "{h}");

    let body = json!({"mall": b.slug, "identifier": pb, "password": PASSWORD});
    let (s, linked) = link(&app, &a, &ta, body).await;
    assert_eq!((s, linked["shared_balance"].as_i64()), (StatusCode::OK, Some(300)), "{linked}");
    // The refund comes back to the lots of B's merged identity and moves on to the one
    // balance both malls show.
    let (s, h) =
        app.partner_post(&b, &key, &format!("/holds/{hold}/refund"), &unique("f"), json!({"amount": 120})).await;
    assert_eq!((s, h["refunded"].as_i64()), (StatusCode::OK, Some(120)), "{h}");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 420);
    assert_eq!(my_balance(&app, &b, &tb, SHARED).await, 420);
    assert_alliance_ledger_sound(&app, &al).await;
}
