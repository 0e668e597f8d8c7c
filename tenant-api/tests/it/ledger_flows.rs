//! Ledger behaviour a merchant and member see: FIFO spending, expiry with a controlled
//! clock, reminders, holds, lock grants, transfers, staff adjustments, levels.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone, unique};

fn lot_remaining(points: &Value) -> Vec<(i64, Option<String>)> {
    points["lots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["currency"] == "points")
        .map(|l| (l["remaining"].as_i64().unwrap(), l["expires_at"].as_str().map(str::to_string)))
        .collect()
}

#[tokio::test]
async fn spending_draws_soonest_expiring_lots_first_and_expiry_lapses_exactly_the_rest() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let now = Utc::now();
    // Credited out of expiry order: never, +40 days, +10 days.
    app.credit(&t, &key, id, 100, None).await;
    app.credit(&t, &key, id, 100, Some((now + Duration::days(40)).to_rfc3339())).await;
    app.credit(&t, &key, id, 100, Some((now + Duration::days(10)).to_rfc3339())).await;
    let (s, debit) =
        app.partner_post(&t, &key, "/points/debits", &unique("k"), json!({"member_id": id, "amount": 150})).await;
    assert_eq!(s, StatusCode::CREATED, "{debit}");
    assert_eq!(debit["balance_after"], 150);
    // The +10 lot is used up, the +40 lot has 50 left, the never-expiring lot is untouched.
    let lots = lot_remaining(&app.points(&t, &key, id).await);
    assert_eq!(lots.len(), 2, "{lots:?}");
    assert_eq!(lots[0].0, 50);
    assert!(lots[0].1.is_some());
    assert_eq!(lots[1], (100, None));

    // Nothing is due at +20 days; a reminder is due at +35 (within 7 days of +40).
    let r = app.jobs(&t, now + Duration::days(20)).await;
    assert_eq!((r.expired_amount, r.reminders), (0, 0));
    let r = app.jobs(&t, now + Duration::days(35)).await;
    assert_eq!((r.expired_amount, r.reminders), (0, 1));
    let r = app.jobs(&t, now + Duration::days(36)).await;
    assert_eq!(r.reminders, 0, "one reminder per lapse");
    let (status, msgs) = app
        .call(Method::GET, &format!("/v1/tenants/{}/me/messages", t.slug), tokens["access_token"].as_str(), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(msgs["items"][0]["kind"], "expiry_reminder");
    // In the mall's language (zh-CN by default) with its points name.
    assert!(msgs["items"][0]["body"].as_str().unwrap().starts_with("您有 50 积分将于 "), "{msgs}");

    // At +41 days exactly the 50 left in that lot lapse.
    let r = app.jobs(&t, now + Duration::days(41)).await;
    assert_eq!((r.expired_accounts, r.expired_amount), (1, 50));
    assert_eq!(app.balance(&t, &key, id, "points").await, 100);
    let r = app.jobs(&t, now + Duration::days(42)).await;
    assert_eq!(r.expired_amount, 0, "expiry is idempotent");
    // The history shows the expiry with its reason, filterable.
    let (_, e) = app
        .call(
            Method::GET,
            &format!("/v1/tenants/{}/me/points/entries?reason=expire", t.slug),
            tokens["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(e["items"].as_array().unwrap().len(), 1);
    assert_eq!(e["items"][0]["amount"], -50);
    let (status, e) = app
        .call(
            Method::GET,
            &format!("/v1/tenants/{}/me/points/entries?reason=bogus", t.slug),
            tokens["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn the_tenant_policy_sets_expiry_and_paging_walks_the_history() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/settings", t.slug),
            Some(&owner),
            Some(json!({"expiry": {"kind": "rolling", "days": 30}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let key = app.partner_key(&t).await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    for _ in 0..5 {
        app.credit(&t, &key, id, 10, None).await;
    }
    let lots = lot_remaining(&app.points(&t, &key, id).await);
    let expires = chrono::DateTime::parse_from_rfc3339(lots[0].1.as_deref().unwrap()).unwrap();
    let days = (expires.with_timezone(&Utc) - Utc::now()).num_hours();
    assert!((29 * 24..=30 * 24).contains(&days), "rolling 30 days, got {days} h");
    // Cursor paging returns every entry once.
    let mut seen = vec![];
    let mut url = format!("/v1/tenants/{}/me/points/entries?limit=2", t.slug);
    loop {
        let (_, page) = app.call(Method::GET, &url, tokens["access_token"].as_str(), None).await;
        for e in page["items"].as_array().unwrap() {
            seen.push(e["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/tenants/{}/me/points/entries?limit=2&cursor={c}", t.slug),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn holds_capture_partly_refund_to_original_lots_and_expire() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    app.credit(&t, &key, id, 100, Some((Utc::now() + Duration::days(5)).to_rfc3339())).await;
    app.credit(&t, &key, id, 100, None).await;

    let (s, hold) = app
        .partner_post(&t, &key, "/holds", &unique("k"), json!({"member_id": id, "amount": 150, "reference": "order-9"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hold}");
    assert_eq!(app.balance(&t, &key, id, "points").await, 50);
    let hid = hold["id"].as_i64().unwrap();
    let (s, h) =
        app.partner_post(&t, &key, &format!("/holds/{hid}/capture"), &unique("k"), json!({"amount": 120})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!((h["status"].as_str(), h["captured"].as_i64()), (Some("captured"), Some(120)));
    assert_eq!(app.balance(&t, &key, id, "points").await, 80, "the uncaptured 30 came back");
    // A second capture is refused.
    let (s, b) = app.partner_post(&t, &key, &format!("/holds/{hid}/capture"), &unique("k"), json!({"amount": 1})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("hold_state")));
    // Refund 100 of the 120 captured: back into the lots it came from.
    let (s, h) =
        app.partner_post(&t, &key, &format!("/holds/{hid}/refund"), &unique("k"), json!({"amount": 100})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h["refunded"], 100);
    let p = app.points(&t, &key, id).await;
    assert_eq!(p["balances"][0]["balance"], 180);
    let lots = lot_remaining(&p);
    assert_eq!(lots.iter().map(|l| l.0).sum::<i64>(), 180);
    assert_eq!(lots.len(), 2, "no new lots: the original ones were refilled");
    let (s, b) = app.partner_post(&t, &key, &format!("/holds/{hid}/refund"), &unique("k"), json!({"amount": 21})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");

    // A hold that is never captured expires after its TTL and gives its points back.
    let (_, h2) = app
        .partner_post(&t, &key, "/holds", &unique("k"), json!({"member_id": id, "amount": 80, "ttl_secs": 60}))
        .await;
    assert_eq!(app.balance(&t, &key, id, "points").await, 100);
    let r = app.jobs(&t, Utc::now() + Duration::seconds(61)).await;
    assert_eq!(r.expired_holds, 1);
    assert_eq!(app.balance(&t, &key, id, "points").await, 180);
    let (_, _, h2) = app
        .call_full(
            Method::GET,
            &format!("/v1/tenants/{}/partner/holds/{}", t.slug, h2["id"]),
            &[("x-api-key", key.clone())],
            None,
        )
        .await;
    assert_eq!(h2["status"], "expired");
    // Voiding an expired hold is refused.
    let (s, _) = app.partner_post(&t, &key, &format!("/holds/{}/void", h2["id"]), &unique("k"), json!(null)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn a_refund_to_an_expired_lot_is_forfeited() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    app.credit(&t, &key, id, 40, Some((Utc::now() + Duration::seconds(2)).to_rfc3339())).await;
    app.credit(&t, &key, id, 60, None).await;
    let (_, hold) = app.partner_post(&t, &key, "/holds", &unique("k"), json!({"member_id": id, "amount": 100})).await;
    let hid = hold["id"].as_i64().unwrap();
    let (s, _) =
        app.partner_post(&t, &key, &format!("/holds/{hid}/capture"), &unique("k"), json!({"amount": 100})).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (s, h) =
        app.partner_post(&t, &key, &format!("/holds/{hid}/refund"), &unique("k"), json!({"amount": 100})).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    // Only the 60 from the unexpired lot come back.
    assert_eq!(app.balance(&t, &key, id, "points").await, 60);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn locked_points_release_daily_catch_up_and_accelerate() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let (s, g) = app
        .partner_post(
            &t,
            &key,
            "/lock-grants",
            &unique("k"),
            json!({"member_id": id, "total": 100, "per_day": 30, "memo": "gift"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let p = app.points(&t, &key, id).await;
    assert_eq!((p["balances"][0]["balance"].as_i64(), p["balances"][0]["locked"].as_i64()), (Some(0), Some(100)));
    // Releases fall at the mall's local midnights (Asia/Shanghai: 16:00 UTC), the first
    // one after the grant.
    let first: chrono::DateTime<Utc> = g["next_release_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(first.format("%H:%M:%S").to_string(), "16:00:00", "{g}");
    assert!(first > Utc::now() && first <= Utc::now() + Duration::days(1), "{g}");
    let now = first - Duration::days(1);
    assert_eq!(app.jobs(&t, first - Duration::minutes(1)).await.released_amount, 0, "nothing before the first day");
    assert_eq!(app.jobs(&t, now + Duration::days(1) + Duration::minutes(1)).await.released_amount, 30);
    assert_eq!(app.jobs(&t, now + Duration::days(1) + Duration::minutes(2)).await.released_amount, 0, "once a day");
    // Two days missed: both are caught up.
    assert_eq!(app.jobs(&t, now + Duration::days(3) + Duration::minutes(1)).await.released_amount, 60);
    let (s, a) = app
        .partner_post(&t, &key, &format!("/lock-grants/{}/accelerate", g["id"]), &unique("k"), json!({"amount": 50}))
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["released"], 10, "only what is still locked");
    let p = app.points(&t, &key, id).await;
    assert_eq!((p["balances"][0]["balance"].as_i64(), p["balances"][0]["locked"].as_i64()), (Some(100), Some(0)));
    let events: i64 = {
        let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM events_outbox WHERE kind = 'points_released' AND member_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .unwrap()
    };
    assert_eq!(events, 3);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn transfers_respect_limits_and_keep_the_senders_expiry() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/settings", t.slug),
            Some(&owner),
            Some(json!({"transfers": {"enabled": true, "min": 10, "max": 100, "per_day": 150}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let key = app.partner_key(&t).await;
    let (a, ta) = app.member(&t, &phone()).await;
    let b_phone = phone();
    let (b, _) = app.member(&t, &b_phone).await;
    let expiry = (Utc::now() + Duration::days(9)).to_rfc3339();
    app.credit(&t, &key, a["id"].as_i64().unwrap(), 500, Some(expiry)).await;
    let send = |amount: i64, to: String| {
        let app = &app;
        let path = format!("/v1/tenants/{}/me/points/transfers", t.slug);
        let headers = vec![
            ("authorization", format!("Bearer {}", ta["access_token"].as_str().unwrap())),
            ("idempotency-key", unique("k")),
        ];
        async move { app.call_full(Method::POST, &path, &headers, Some(json!({"to": to, "amount": amount}))).await }
    };
    let (s, _, body) = send(5, b_phone.clone()).await;
    assert_eq!(
        (s, body["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount"))
    );
    let (s, _, body) = send(101, b_phone.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, _, body) = send(100, b_phone.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _, body) = send(60, b_phone.clone()).await;
    assert_eq!((s, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("transfer_limit")));
    let (s, _, body) = send(50, a["phone"].as_str().unwrap().to_string()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "to yourself: {body}");
    let (s, _, body) = send(50, phone()).await;
    assert_eq!(
        (s, body["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to"))
    );
    let pb = app.points(&t, &key, b["id"].as_i64().unwrap()).await;
    assert_eq!(pb["balances"][0]["balance"], 100);
    let pa = app.points(&t, &key, a["id"].as_i64().unwrap()).await;
    assert_eq!(
        pb["lots"][0]["expires_at"], pa["lots"][0]["expires_at"],
        "the receiver's lot keeps the sender's expiry"
    );
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn staff_adjustments_are_audited_and_levels_follow_experience() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, operator) = app.staff(&t, "operator").await;
    let (_, auditor) = app.staff(&t, "auditor").await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let path = format!("/v1/tenants/{}/staff/members/{id}/points/adjustments", t.slug);
    let adjust = |token: &str, body: Value| {
        let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("k"))];
        let app = &app;
        let path = path.clone();
        async move { app.call_full(Method::POST, &path, &headers, Some(body)).await }
    };
    let (s, _, b) = adjust(&auditor, json!({"amount": 10, "reason": "x"})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("permission_denied")));
    let (s, _, b) = adjust(&operator, json!({"amount": 10, "reason": "  "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, _, b) = adjust(&operator, json!({"amount": 10, "reason": "goodwill"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _, b) = adjust(&operator, json!({"amount": -11, "reason": "too much"})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("insufficient_points")));
    let (s, _, b) = adjust(&operator, json!({"amount": -4, "reason": "correction"})).await;
    assert_eq!((s, b["balance_after"].as_i64()), (StatusCode::CREATED, Some(6)));
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM control.audit_log WHERE tenant_id = $1 AND action = 'points.adjust'")
            .bind(t.id)
            .fetch_one(app.db.control())
            .await
            .unwrap();
    assert_eq!(audited, 2);

    // Experience drives the level; the change is recorded and emitted.
    let (s, _, b) =
        adjust(&operator, json!({"currency": "exp", "amount": 1200, "reason": "migration from old CRM"})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, p) = app
        .call(Method::GET, &format!("/v1/tenants/{}/me/points", t.slug), tokens["access_token"].as_str(), None)
        .await;
    assert_eq!(p["level"]["name"], "银卡");
    assert_eq!(p["next_level"]["name"], "金卡");
    assert_eq!(p["next_level"]["missing"], 3800);
    let (_, exp_debit) = {
        let (s, _, b) = adjust(&operator, json!({"currency": "exp", "amount": -300, "reason": "clawback"})).await;
        (s, b)
    };
    assert_eq!(exp_debit["balance_after"], 900);
    let (_, p) = app
        .call(Method::GET, &format!("/v1/tenants/{}/me/points", t.slug), tokens["access_token"].as_str(), None)
        .await;
    assert_eq!(p["level"]["name"], "普通");
    let kinds: Vec<String> = {
        let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
        sqlx::query_scalar("SELECT kind FROM events_outbox WHERE member_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .unwrap()
    };
    assert_eq!(kinds, ["level_changed", "level_changed"], "普通 → 银卡 → 普通 (members start at the 0 level)");

    // The merchant re-draws the level table; members are re-levelled.
    let (_, owner) = app.staff(&t, "owner").await;
    let (s, levels) = app
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/levels", t.slug),
            Some(&owner),
            Some(json!([{"name": "新人", "threshold": 0}, {"name": "达人", "threshold": 500, "benefits": {"earn_multiplier": 1.1}}])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{levels}");
    let (_, p) = app
        .call(Method::GET, &format!("/v1/tenants/{}/me/points", t.slug), tokens["access_token"].as_str(), None)
        .await;
    assert_eq!(p["level"]["name"], "达人");
    assert_eq!(p["level"]["benefits"]["earn_multiplier"], 1.1);
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/levels", t.slug),
            Some(&owner),
            Some(json!([{"name": "x", "threshold": 5}])),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a level must start at 0");
    // Experience cannot be spent by a partner.
    let key = app.partner_key(&t).await;
    let (s, _) = app
        .partner_post(
            &t,
            &key,
            "/points/debits",
            &unique("k"),
            json!({"member_id": id, "currency": "exp", "amount": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn points_expire_at_their_time_without_waiting_for_the_jobs() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let credits = json!({"items": [
        {"member_id": id, "amount": 100, "expires_at": soon},
        {"member_id": id, "amount": 50, "expires_at": chrono::Utc::now() + chrono::Duration::days(30)},
    ]});
    let (s, b) = app.partner_post(&t, &key, "/points/credits", &unique("c"), credits).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(app.balance(&t, &key, id, "points").await, 150);
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;

    // No jobs have run: the balance the member sees already excludes the lapsed lot.
    let p = app.points(&t, &key, id).await;
    let points = p["balances"].as_array().unwrap().iter().find(|b| b["currency"] == "points").unwrap().clone();
    assert_eq!(points["balance"], 50, "{p}");
    assert!(p["lots"].as_array().unwrap().iter().all(|l| l["remaining"] != 100), "{p}");
    // A debit cannot draw on it.
    let debit = |n: i64| json!({"member_id": id, "amount": n});
    let (s, b) = app.partner_post(&t, &key, "/points/debits", &unique("d"), debit(60)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("insufficient_points")), "{b}");
    let (s, b) = app.partner_post(&t, &key, "/points/debits", &unique("d"), debit(50)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(app.balance(&t, &key, id, "points").await, 0);
    // The lapse was written as its own entry, and every balance is the sum of its entries.
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let expired: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(amount), 0)::bigint FROM entries WHERE member_id = $1 AND reason = 'expire'",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(expired, -100);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn a_debit_draws_on_more_lots_than_one_page() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    // 12,000 lots of one point (more than one page of 10,000).
    for _ in 0..24 {
        let items: Vec<Value> = (0..500).map(|_| json!({"member_id": id, "amount": 1})).collect();
        let (s, b) = app.partner_post(&t, &key, "/points/credits", &unique("c"), json!({"items": items})).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) =
        app.partner_post(&t, &key, "/points/debits", &unique("d"), json!({"member_id": id, "amount": 11_500})).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(app.balance(&t, &key, id, "points").await, 500);
    app.assert_ledger_sound(&t).await;
}
