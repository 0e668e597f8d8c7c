//! Issue 12, point 5: settlement of the shared points between an alliance's malls. Three
//! malls issue and redeem each other's points; the day's statement is checked cell by
//! cell against figures computed by hand, every figure drills down to its entries, the
//! nets sum to zero; closing freezes it (an entry written later goes to the next
//! period), periods close in order, and a mall's staff see only their part.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, assert_alliance_ledger_sound, handoff, mall_in, my_balance, product, redeem};
use crate::budgets::alliance_admin;
use crate::common::{TestApp, phone, unique};

async fn credit(app: &TestApp, t: &platform::directory::Tenant, member_id: i64, amount: i64) {
    let key = app.partner_key(t).await;
    let items = json!({"items": [{"member_id": member_id, "amount": amount, "currency": SHARED}]});
    let (s, b) = app.partner_post(t, &key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

async fn member_id(app: &TestApp, t: &platform::directory::Tenant, token: &str) -> i64 {
    let (s, me) = app.call(Method::GET, &format!("/v1/tenants/{}/me", t.slug), Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    me["id"].as_i64().unwrap()
}

/// The line of `mall` as (issued, revoked, redeemed, returned, expired, receivable, payable, net).
fn line(s: &Value, mall: &str) -> [i64; 8] {
    let l = s["lines"].as_array().unwrap().iter().find(|l| l["mall"] == mall).unwrap_or_else(|| panic!("{mall}: {s}"));
    ["issued", "revoked", "redeemed", "returned", "expired", "receivable_fen", "payable_fen", "net_fen"]
        .map(|k| l[k].as_i64().unwrap())
}

fn pairs(s: &Value) -> Vec<(String, String, i64, i64)> {
    let mut out: Vec<_> = s["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["issuer"].as_str().unwrap().to_string(),
                p["redeemer"].as_str().unwrap().to_string(),
                p["points"].as_i64().unwrap(),
                p["value_fen"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn three_malls_settle_to_the_hand_computed_statement() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let (a, b, c) = (mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await);
    let admin = alliance_admin(&app, &al.slug).await;
    let base = format!("/v1/alliances/{}", al.slug);
    // 50 points are worth one yuan: a point is 2 fen.
    let (s, body) = app
        .call(
            Method::PUT,
            &format!("{base}/clearing"),
            Some(&admin),
            Some(json!({"points_per_yuan": 50, "time_zone": "Asia/Shanghai"})),
        )
        .await;
    assert_eq!((s, &body["time_zone"]), (StatusCode::OK, &json!("Asia/Shanghai")), "{body}");
    let (s, body) = app
        .call(
            Method::PUT,
            &format!("{base}/clearing"),
            Some(&admin),
            Some(json!({"points_per_yuan": 50, "time_zone": "Mars/Base"})),
        )
        .await;
    assert_eq!(
        (s, &body["error"]["details"]["fields"][0]["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("time_zone"))
    );

    // Member 1 of A: 1,000 points from A, then 400 from B (as B's member).
    let (m1, t1) = app.proven_member(&a, &phone()).await;
    let t1a = t1["access_token"].as_str().unwrap().to_string();
    credit(&app, &a, m1["id"].as_i64().unwrap(), 1_000).await;
    let (s, pair) = handoff(&app, &b, &t1a).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let t1b = pair["access_token"].as_str().unwrap().to_string();
    credit(&app, &b, member_id(&app, &b, &t1b).await, 400).await;
    let (s, pair) = handoff(&app, &c, &t1a).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let t1c = pair["access_token"].as_str().unwrap().to_string();
    // Member 2 of C: 500 points from C.
    let (m2, t2) = app.proven_member(&c, &phone()).await;
    let t2c = t2["access_token"].as_str().unwrap().to_string();
    credit(&app, &c, m2["id"].as_i64().unwrap(), 500).await;
    let (s, pair) = handoff(&app, &a, &t2c).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let t2a = pair["access_token"].as_str().unwrap().to_string();

    let mut owners = Vec::new();
    for t in [&a, &b, &c] {
        owners.push(app.staff(t, "owner").await.1);
    }
    // Spends draw the oldest lots first (none of them expires): member 1 spends 300 at B
    // (A's points), 900 at C (A's remaining 700 and 200 of B's), 100 at C (B's) which C
    // refunds; member 2 spends 200 of C's points at A.
    let order = async |t: &platform::directory::Tenant, owner: &str, token: &str, price: i64| {
        let p = product(&app, t, owner, SHARED, price).await;
        let (s, o) = redeem(&app, t, token, p).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        o
    };
    order(&b, &owners[1], &t1b, 300).await;
    order(&c, &owners[2], &t1c, 900).await;
    let refunded = order(&c, &owners[2], &t1c, 100).await;
    order(&a, &owners[0], &t2a, 200).await;
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/{}/refund", c.slug, refunded["id"]),
            Some(&owners[2]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");

    // By hand: A issued 1000, redeemed 200; B issued 400, redeemed 300; C issued 500,
    // redeemed 1000 and had 100 returned. Pairs (issuer → redeemer): A→B 300 (600 fen),
    // A→C 700 (1400), B→C 200 (400: 300 less the 100 returned), C→A 200 (400).
    // Receivable / payable / net in fen: A 400 / 2000 / −1600; B 600 / 400 / +200;
    // C 1800 / 400 / +1400.
    let tz = platform::localtime::parse("Asia/Shanghai").unwrap();
    let today = platform::localtime::day(tz, Utc::now());
    let period = today.format("%Y-%m-%d").to_string();
    let expected = |s: &Value| {
        assert_eq!(line(s, &a.slug), [1000, 0, 200, 0, 0, 400, 2000, -1600], "{s}");
        assert_eq!(line(s, &b.slug), [400, 0, 300, 0, 0, 600, 400, 200], "{s}");
        assert_eq!(line(s, &c.slug), [500, 0, 1000, 100, 0, 1800, 400, 1400], "{s}");
        let net: i64 = s["lines"].as_array().unwrap().iter().map(|l| l["net_fen"].as_i64().unwrap()).sum();
        assert_eq!(net, 0, "net positions sum to zero");
        let (sa, sb, sc) = (a.slug.clone(), b.slug.clone(), c.slug.clone());
        let mut want = vec![
            (sa.clone(), sb.clone(), 300, 600),
            (sa.clone(), sc.clone(), 700, 1400),
            (sb, sc.clone(), 200, 400),
            (sc, sa, 200, 400),
        ];
        want.sort();
        assert_eq!(pairs(s), want, "{s}");
    };
    let (s, preview) = app.call(Method::GET, &format!("{base}/settlement/{period}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    assert_eq!((&preview["closed"], &preview["points_per_yuan"]), (&json!(false), &json!(50)), "{preview}");
    expected(&preview);

    // Figures drill down to their entries.
    let drill = async |mall: &str, figure: &str, issuer: Option<&str>| {
        let mut q = format!("{base}/settlement/{period}/entries?mall={mall}&figure={figure}");
        if let Some(i) = issuer {
            q.push_str(&format!("&issuer={i}"));
        }
        let (s, page) = app.call(Method::GET, &q, Some(&admin), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["reason"].as_str().unwrap().to_string(), e["points"].as_i64().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(drill(&a.slug, "issued", None).await, [("earn".to_string(), 1000)]);
    assert_eq!(drill(&c.slug, "redeemed", None).await, [("spend".to_string(), 100), ("spend".to_string(), 900)]);
    assert_eq!(
        drill(&c.slug, "redeemed", Some(&b.slug)).await,
        [("spend".to_string(), 100), ("spend".to_string(), 200)]
    );
    assert_eq!(drill(&c.slug, "returned", Some(&b.slug)).await, [("refund".to_string(), 100)]);
    assert!(drill(&b.slug, "expired", None).await.is_empty());
    let (s, _) = app
        .call(Method::GET, &format!("{base}/settlement/{period}/entries?mall=nope&figure=issued"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The day is not over: closing is refused; the platform closes it as if at its end.
    let (s, body) = app.call(Method::POST, &format!("{base}/settlement/{period}/close"), Some(&admin), None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("period_not_over")), "{body}");
    // B's systems hear of the close: its line and pairs, by webhook.
    let (s, hook) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/webhooks", b.slug),
            Some(&owners[1]),
            Some(json!({"url": "http://127.0.0.1:9/settlement", "event_types": ["settlement.closed"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let found = platform::tenancy::find_alliance(app.db.control(), &al.slug).await.unwrap();
    let end = platform::localtime::start_of(tz, today.succ_opt().unwrap());
    let actor = platform::audit::Actor::system("test");
    let closed = platform::alliance::settlement::close(&app.db, &found, &period, end + Duration::seconds(1), &actor)
        .await
        .unwrap();
    assert!(closed.closed);
    let mut tx = app.db.tenant_tx(&b.cluster, &b.schema_name).await.unwrap();
    let sent: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT payload FROM webhook_deliveries WHERE event_type = 'settlement.closed'")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let data = &sent[0]["data"];
    assert_eq!(
        (&data["period"], &data["line"]["mall"], &data["line"]["net_fen"]),
        (&json!(period), &json!(b.slug), &json!(200))
    );
    assert_eq!(data["pairs"].as_array().unwrap().len(), 2, "{data}");

    // Written after the close but within the day: not in the frozen statement; in the next.
    credit(&app, &a, m1["id"].as_i64().unwrap(), 50).await;
    let (s, frozen) = app.call(Method::GET, &format!("{base}/settlement/{period}"), Some(&admin), None).await;
    assert_eq!((s, &frozen["closed"]), (StatusCode::OK, &json!(true)), "{frozen}");
    expected(&frozen);
    let next = today.succ_opt().unwrap().format("%Y-%m-%d").to_string();
    let (s, later) = app.call(Method::GET, &format!("{base}/settlement/{next}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{later}");
    assert_eq!(line(&later, &a.slug), [50, 0, 0, 0, 0, 0, 0, 0], "{later}");
    // Closed once; earlier periods can no longer close.
    let again =
        platform::alliance::settlement::close(&app.db, &found, &period, end + Duration::seconds(2), &actor).await;
    assert_eq!(again.err().map(|e| e.code()), Some("period_closed"));
    let yesterday = today.pred_opt().unwrap().format("%Y-%m-%d").to_string();
    let (s, body) = app.call(Method::GET, &format!("{base}/settlement/{yesterday}"), Some(&admin), None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("period_order")), "{body}");
    for bad in ["2026-13", "2026-02-30", "yesterday"] {
        let (s, _) = app.call(Method::GET, &format!("{base}/settlement/{bad}"), Some(&admin), None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // The list, the CSV, and the mall's own view (its line and its pairs only).
    let (s, list) = app.call(Method::GET, &format!("{base}/settlement"), Some(&admin), None).await;
    assert_eq!((s, &list["items"][0]["period"]), (StatusCode::OK, &json!(period)), "{list}");
    let (s, _, csv) = app
        .call_full(
            Method::GET,
            &format!("{base}/settlement/{period}/csv"),
            &crate::common::auth_headers(Some(&admin)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let csv = csv.as_str().map(str::to_string).unwrap_or_else(|| csv.to_string());
    assert!(csv.contains(&format!("mall,{period},{},1000,0,200,0,0,400,2000,-1600", a.slug)), "{csv}");
    assert!(csv.contains(&format!("pair,{period},{},{},700,1400", a.slug, c.slug)), "{csv}");
    let (s, own) = app
        .call(
            Method::GET,
            &format!("/v1/tenants/{}/staff/alliance-settlement/{period}", b.slug),
            Some(&owners[1]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{own}");
    assert_eq!(own["lines"].as_array().unwrap().len(), 1, "{own}");
    assert_eq!(line(&own, &b.slug), [400, 0, 300, 0, 0, 600, 400, 200]);
    assert_eq!(own["pairs"].as_array().unwrap().len(), 2, "A→B and B→C: {own}");

    // Another alliance's admin sees nothing of it.
    let other = alliance(&app).await;
    let stranger = alliance_admin(&app, &other.slug).await;
    let (s, _) = app.call(Method::GET, &format!("{base}/settlement/{period}"), Some(&stranger), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    for t in [&a, &b, &c] {
        app.assert_ledger_sound(t).await;
    }
    assert_alliance_ledger_sound(&app, &al).await;
}

/// A hold counts as redeemed when it is captured (and a refund of it as returned); a
/// released hold counts as nothing; transferred points keep the mall that issued them.
/// Computed by hand below.
#[tokio::test]
async fn holds_and_transfers_settle_by_hand() {
    let app = TestApp::spawn().await;
    let al = alliance(&app).await;
    let (a, b) = (mall_in(&app, &al.slug).await, mall_in(&app, &al.slug).await);
    let admin = alliance_admin(&app, &al.slug).await;
    let base = format!("/v1/alliances/{}", al.slug);
    let (s, body) =
        app.call(Method::PUT, &format!("{base}/clearing"), Some(&admin), Some(json!({"points_per_yuan": 50}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // The member earns 1,000 at A, then 200 at B (as B's member): lots A 1000, B 200.
    let (m, t) = app.proven_member(&a, &phone()).await;
    let ta = t["access_token"].as_str().unwrap().to_string();
    let ma = m["id"].as_i64().unwrap();
    credit(&app, &a, ma, 1_000).await;
    let (s, pair) = handoff(&app, &b, &ta).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let mb = member_id(&app, &b, pair["access_token"].as_str().unwrap()).await;
    credit(&app, &b, mb, 200).await;
    let (ka, kb) = (app.partner_key(&a).await, app.partner_key(&b).await);
    let hold = async |t: &platform::directory::Tenant, key: &str, member: i64, amount: i64| {
        let body = json!({"member_id": member, "amount": amount, "currency": SHARED});
        let (s, h) = app.partner_post(t, key, "/holds", &unique("h"), body).await;
        assert_eq!(s, StatusCode::CREATED, "{h}");
        h["id"].as_i64().unwrap()
    };
    let act = async |t: &platform::directory::Tenant, key: &str, path: String, body: Value| {
        let (s, h) = app.partner_post(t, key, &path, &unique("x"), body).await;
        assert_eq!(s, StatusCode::OK, "{h}");
    };
    // B: hold 300, capture 250 (A's lot). A: hold 100, void. B: hold 50, capture all,
    // refund 20. A: hold 40, left to expire.
    let h1 = hold(&b, &kb, mb, 300).await;
    act(&b, &kb, format!("/holds/{h1}/capture"), json!({"amount": 250})).await;
    let h2 = hold(&a, &ka, ma, 100).await;
    act(&a, &ka, format!("/holds/{h2}/void"), json!({})).await;
    let h3 = hold(&b, &kb, mb, 50).await;
    act(&b, &kb, format!("/holds/{h3}/capture"), json!({"amount": 50})).await;
    act(&b, &kb, format!("/holds/{h3}/refund"), json!({"amount": 20})).await;
    let _h4 = hold(&a, &ka, ma, 40).await;
    assert_eq!(app.jobs(&a, Utc::now() + Duration::days(8)).await.expired_holds, 1);
    // A transfer from A to a member of B only: 100 of A's lot move, and keep A as their
    // issuer; the receiver spends 80 of them at B.
    let p2 = phone();
    let (m2, t2) = app.proven_member(&b, &p2).await;
    let t2 = t2["access_token"].as_str().unwrap().to_string();
    // The hand-off gives the receiver an identity (and no points).
    let (s, pair) = handoff(&app, &a, &t2).await;
    assert_eq!((s, m2["id"].is_number()), (StatusCode::OK, true), "{pair}");
    let (s, tr) = crate::shared_points::send(&app, &a, &ta, &p2, 100).await;
    assert_eq!(s, StatusCode::CREATED, "{tr}");
    let (_, owner_b) = app.staff(&b, "owner").await;
    let p = product(&app, &b, &owner_b, SHARED, 80).await;
    let (s, o) = redeem(&app, &b, &t2, p).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");

    // By hand: A issued 1000, redeemed nothing; B issued 200, redeemed 380 (250 + 50 by
    // holds, 80 by the receiver of the transfer, from the transferred lot), returned 20. Every redeemed point came from A's lots: A→B
    // 250 + 50 − 20 + 80 = 360 points = 720 fen. The transfer itself counts nowhere.
    let tz = platform::localtime::parse("Asia/Shanghai").unwrap();
    let period = platform::localtime::day(tz, Utc::now()).format("%Y-%m-%d").to_string();
    let (s, st) = app.call(Method::GET, &format!("{base}/settlement/{period}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(line(&st, &a.slug), [1000, 0, 0, 0, 0, 0, 720, -720], "{st}");
    assert_eq!(line(&st, &b.slug), [200, 0, 380, 20, 0, 720, 0, 720], "{st}");
    assert_eq!(pairs(&st), [(a.slug.clone(), b.slug.clone(), 360, 720)], "{st}");
    assert_eq!(my_balance(&app, &a, &ta, SHARED).await, 1_200 - 250 - 50 + 20 - 100);
    assert_eq!(my_balance(&app, &b, &t2, SHARED).await, 100 - 80);
    app.assert_ledger_sound(&a).await;
    app.assert_ledger_sound(&b).await;
    assert_alliance_ledger_sound(&app, &al).await;
}
