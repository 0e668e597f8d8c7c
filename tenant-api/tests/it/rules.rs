//! R1-R7 end to end: rules saved through the API run on events, name their version on
//! every entry, roll back, hot-reload across instances, fail cleanly when hostile, and
//! the rule library's seed-004 model works through the jobs.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, phone};

const REGISTER_BONUS: &str = include_str!("../../../examples/rules/register_bonus.rhai");
const CHECKIN: &str = include_str!("../../../examples/rules/checkin_streak.rhai");
const GIFT: &str = include_str!("../../../examples/rules/gift_release_acceleration.rhai");

async fn create_rule(app: &TestApp, t: &platform::directory::Tenant, token: &str, body: Value) -> Value {
    let (s, b) = app.call(Method::POST, &format!("/v1/tenants/{}/staff/rules", t.slug), Some(token), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

async fn events(app: &TestApp, t: &platform::directory::Tenant, key: &str, events: Value) -> Value {
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/events", t.slug),
            &[("x-api-key", key.to_string())],
            Some(json!({"events": events})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["results"].clone()
}

#[tokio::test]
async fn a_saved_rule_runs_on_events_and_versions_roll_back() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let rule = create_rule(&app, &t, &owner, json!({"name": "welcome", "event_type": "registered", "script": REGISTER_BONUS, "params": {"points": 100, "exp": 10}})).await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    assert_eq!(app.balance(&t, &key, id, "points").await, 100, "the registered event ran the rule");
    let staff_entries = |member: i64| {
        let app = &app;
        let owner = owner.clone();
        let slug = t.slug.clone();
        async move {
            app.call(
                Method::GET,
                &format!("/v1/tenants/{slug}/staff/members/{member}/points/entries?currency=points"),
                Some(&owner),
                None,
            )
            .await
            .1
        }
    };
    let e = staff_entries(id).await;
    assert_eq!(e["items"][0]["rule_id"], rule["id"]);
    assert_eq!(e["items"][0]["rule_version"], 1);
    assert_eq!(e["items"][0]["source_kind"], "rule");

    // A script that does not compile is refused with line and column; nothing changes.
    let rid = rule["id"].as_i64().unwrap();
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/rules/{rid}/script", t.slug),
            Some(&owner),
            Some(json!({"script": "let x = ;\naward(\"points\", 1)"})),
        )
        .await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("script_invalid")));
    assert!(b["error"]["details"]["fields"][0]["message"].as_str().unwrap().starts_with("line 1, column"), "{b}");

    // Version 2 doubles the bonus; the next sign-up gets 200, named v2.
    let v2 = REGISTER_BONUS.replace("params.points,", "params.points * 2,");
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/rules/{rid}/script", t.slug),
            Some(&owner),
            Some(json!({"script": v2})),
        )
        .await;
    assert_eq!((s, b["current_version"].as_i64()), (StatusCode::OK, Some(2)), "{b}");
    let (m2, _) = app.member(&t, &phone()).await;
    let id2 = m2["id"].as_i64().unwrap();
    assert_eq!(app.balance(&t, &key, id2, "points").await, 200);
    assert_eq!(staff_entries(id2).await["items"][0]["rule_version"], 2);

    // Parameters change without a new version.
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/rules/{rid}/params", t.slug),
            Some(&owner),
            Some(json!({"params": {"points": 7, "exp": 1}})),
        )
        .await;
    assert_eq!((s, b["current_version"].as_i64()), (StatusCode::OK, Some(2)));
    let (m3, _) = app.member(&t, &phone()).await;
    assert_eq!(app.balance(&t, &key, m3["id"].as_i64().unwrap(), "points").await, 14);

    // Rollback is one action; every version is kept.
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/rules/{rid}/rollback", t.slug),
            Some(&owner),
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!((s, b["current_version"].as_i64()), (StatusCode::OK, Some(1)));
    let (m4, _) = app.member(&t, &phone()).await;
    assert_eq!(app.balance(&t, &key, m4["id"].as_i64().unwrap(), "points").await, 7);
    let (_, detail) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/rules/{rid}", t.slug), Some(&owner), None).await;
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/rules/{rid}/rollback", t.slug),
            Some(&owner),
            Some(json!({"version": 9})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Disabled rules do not run.
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/staff/rules/{rid}", t.slug),
            Some(&owner),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (m5, _) = app.member(&t, &phone()).await;
    assert_eq!(app.balance(&t, &key, m5["id"].as_i64().unwrap(), "points").await, 0);
    // Rule changes are audited; an auditor may read rules but not write them.
    let (_, auditor) = app.staff(&t, "auditor").await;
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/rules", t.slug), Some(&auditor), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/staff/rules/{rid}", t.slug),
            Some(&auditor),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn events_are_idempotent_counted_and_denied_by_rules() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    create_rule(&app, &t, &owner, json!({"name": "check-in", "event_type": "checked_in", "script": CHECKIN, "params": {"table": [5, 8, 12], "day7_bonus": 50}})).await;
    let key = app.partner_key(&t).await;
    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let me_event = |eid: &str| {
        let app = &app;
        let token = tokens["access_token"].as_str().unwrap().to_string();
        let path = format!("/v1/tenants/{}/me/events", t.slug);
        let body = json!({"id": eid, "type": "checked_in"});
        async move { app.call(Method::POST, &path, Some(&token), Some(body)).await }
    };
    let (s, o) = me_event("c1").await;
    assert_eq!((s, o["status"].as_str()), (StatusCode::OK, Some("applied")), "{o}");
    assert_eq!(app.balance(&t, &key, id, "points").await, 5);
    // The same id again: the first result, not a second award.
    let (_, o) = me_event("c1").await;
    assert_eq!((o["status"].as_str(), o["replayed"].as_bool()), (Some("applied"), Some(true)));
    assert_eq!(app.balance(&t, &key, id, "points").await, 5);
    // A second check-in the same day is denied by the rule; nothing is applied.
    let (_, o) = me_event("c2").await;
    assert_eq!((o["status"].as_str(), o["error"].as_str()), (Some("denied"), Some("already checked in today")));
    assert_eq!(app.balance(&t, &key, id, "points").await, 5);
    // Members may not post server-side event types.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/me/events", t.slug),
            tokens["access_token"].as_str(),
            Some(json!({"id": "o1", "type": "order_completed"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // A partner batch: an unknown member is rejected, the others go through.
    let r = events(
        &app,
        &t,
        &key,
        json!([
            {"id": "p1", "type": "shared", "member_id": id},
            {"id": "p2", "type": "custom_thing", "member_id": 999999, "data": {"x": 1}},
        ]),
    )
    .await;
    assert_eq!(r[0]["status"], "applied");
    assert_eq!(r[1]["status"], "rejected");
    // Bad events are refused as a whole with field details.
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/events", t.slug),
            &[("x-api-key", key.clone())],
            Some(json!({"events": [{"id": "x", "type": "Bad Type", "member_id": id}]})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("type"))
    );
    // The event log shows what happened.
    let (_, log) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/events?status=denied", t.slug), Some(&owner), None).await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn events_of_one_batch_see_the_events_before_them() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let caps = json!({"points": {"shared": 5}, "daily_cap": {"shared": 3}});
    create_rule(&app, &t, &owner, json!({"name": "caps", "event_type": "*", "script": include_str!("../../../examples/rules/engagement_caps.rhai"), "params": caps})).await;
    let visit = r#"let n = if "visits" in member.counters { member.counters.visits } else { 0 };
        [set_counter("visits", n + 1), award("points", n + 1, "visit"), tag("visitor")]"#;
    create_rule(&app, &t, &owner, json!({"name": "visits", "event_type": "visit", "script": visit})).await;
    let spend = r#"[deduct("points", event.data.amount, "spent")]"#;
    create_rule(&app, &t, &owner, json!({"name": "spend", "event_type": "spend", "script": spend})).await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let ev = |eid: &str, kind: &str, data: Value| json!({"id": eid, "type": kind, "member_id": id, "data": data});
    let r = events(
        &app,
        &t,
        &key,
        json!([
            ev("v1", "visit", json!({})),
            ev("v2", "visit", json!({})),
            ev("v3", "visit", json!({})),
            ev("s1", "shared", json!({})),
            ev("s2", "shared", json!({})),
            ev("s3", "shared", json!({})),
            ev("s4", "shared", json!({})),
            ev("x1", "spend", json!({"amount": 20})),
            ev("x2", "spend", json!({"amount": 20})),
            ev("v4", "visit", json!({})),
            ev("s1", "shared", json!({})),
        ]),
    )
    .await;
    let status: Vec<&str> = r.as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(
        status,
        ["applied"; 11].iter().enumerate().map(|(i, s)| if i == 8 { "failed" } else { s }).collect::<Vec<_>>(),
        "{r}"
    );
    // Counters set by earlier events of the batch are read by later ones: 1 + 2 + 3 (+ 4).
    let award = |o: &Value, rule: usize| {
        let effects = o["effects"][rule]["effects"].as_array().cloned().unwrap_or_default();
        effects.iter().find(|e| e["currency"] == "points").and_then(|e| e["amount"].as_i64())
    };
    assert_eq!(
        [award(&r[0], 1), award(&r[1], 1), award(&r[2], 1), award(&r[9], 1)],
        [Some(1), Some(2), Some(3), Some(4)]
    );
    // Daily counts include the events before: the fourth share is over the cap of 3.
    assert_eq!([award(&r[5], 0), award(&r[6], 0)], [Some(5), None], "{r}");
    // The first spend sees the 21 points earned before it; the second has too little.
    assert!(r[8]["error"].as_str().unwrap().contains("insufficient points: the balance is 1; 20 needed"), "{r}");
    // An id repeated within the batch is a replay of its first outcome.
    assert_eq!((r[10]["replayed"].as_bool(), &r[10]["effects"]), (Some(true), &r[3]["effects"]));
    assert_eq!(app.balance(&t, &key, id, "points").await, 6 + 15 - 20 + 4);
    // The next batch starts from what this one stored.
    let r = events(&app, &t, &key, json!([ev("v5", "visit", json!({})), ev("s5", "shared", json!({}))])).await;
    assert_eq!((award(&r[0], 1), award(&r[1], 0)), (Some(5), None), "{r}");
    let (_, log) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/events?status=failed", t.slug), Some(&owner), None).await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
    app.assert_ledger_sound(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_rule_fails_its_event_cleanly_and_other_tenants_carry_on() {
    let app = TestApp::spawn().await;
    let evil = app.tenant().await;
    let good = app.tenant().await;
    let (_, evil_owner) = app.staff(&evil, "owner").await;
    let (_, good_owner) = app.staff(&good, "owner").await;
    // The hostile rule awards first, then loops forever: nothing may be written.
    create_rule(
        &app,
        &evil,
        &evil_owner,
        json!({"name": "spin", "event_type": "*", "script": "let a = award(\"points\", 5); loop { } a"}),
    )
    .await;
    create_rule(
        &app,
        &good,
        &good_owner,
        json!({"name": "share", "event_type": "shared", "script": "award(\"points\", 3)"}),
    )
    .await;
    let ek = app.partner_key(&evil).await;
    let gk = app.partner_key(&good).await;
    let (em, _) = app.member(&evil, &phone()).await;
    let (gm, _) = app.member(&good, &phone()).await;
    let eid = em["id"].as_i64().unwrap();
    let gid = gm["id"].as_i64().unwrap();
    let started = Instant::now();
    let evil_batch = events(
        &app,
        &evil,
        &ek,
        json!((0..5).map(|i| json!({"id": format!("e{i}"), "type": "shared", "member_id": eid})).collect::<Vec<_>>()),
    );
    let good_calls = async {
        let mut served = 0;
        for i in 0..20 {
            let r =
                events(&app, &good, &gk, json!([{"id": format!("g{i}"), "type": "shared", "member_id": gid}])).await;
            assert_eq!(r[0]["status"], "applied");
            served += 1;
        }
        served
    };
    let (evil_results, served) = tokio::join!(evil_batch, good_calls);
    assert_eq!(served, 20);
    for r in evil_results.as_array().unwrap() {
        assert_eq!(r["status"], "failed", "{r}");
        let err = r["error"].as_str().unwrap();
        assert!(err.contains("spin") && (err.contains("operations") || err.contains("longer than")), "{err}");
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(app.balance(&evil, &ek, eid, "points").await, 0, "nothing of a failed rule is written");
    assert_eq!(app.balance(&good, &gk, gid, "points").await, 60);
    let (_, log) = app
        .call(Method::GET, &format!("/v1/tenants/{}/staff/events?status=failed", evil.slug), Some(&evil_owner), None)
        .await;
    // The registered event failed too (the rule runs on every type).
    assert!(log["items"].as_array().unwrap().len() >= 5);
    app.assert_ledger_sound(&evil).await;
}

#[tokio::test]
async fn a_new_version_reaches_another_instance_within_a_second() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn().await;
    let t = a.tenant().await;
    let (_, owner) = a.staff(&t, "owner").await;
    let rule =
        create_rule(&a, &t, &owner, json!({"name": "read", "event_type": "read", "script": "award(\"points\", 1)"}))
            .await;
    let key = a.partner_key(&t).await;
    let (m, _) = a.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    // Instance b loads (and caches) version 1.
    let r = events(&b, &t, &key, json!([{"id": "r0", "type": "read", "member_id": id}])).await;
    assert_eq!(r[0]["effects"][0]["version"], 1);
    let (s, _) = a
        .call(
            Method::PUT,
            &format!("/v1/tenants/{}/staff/rules/{}/script", t.slug, rule["id"]),
            Some(&owner),
            Some(json!({"script": "award(\"points\", 2)"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let saved = Instant::now();
    let mut n = 1;
    loop {
        let r = events(&b, &t, &key, json!([{"id": format!("r{n}"), "type": "read", "member_id": id}])).await;
        n += 1;
        if r[0]["effects"][0]["version"] == 2 {
            break;
        }
        assert!(
            saved.elapsed() < Duration::from_secs(1),
            "instance b still runs version 1 after {:?}",
            saved.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn dry_run_shows_effects_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let path = format!("/v1/tenants/{}/staff/rules/dry-run", t.slug);
    let (s, r) = app
        .call(Method::POST, &path, Some(&owner), Some(json!({"script": CHECKIN, "event": {"type": "checked_in"}, "member_id": id, "params": {"table": [5, 8], "day7_bonus": 50}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // The real member's context as a live check-in would see it (this one counted).
    assert_eq!(r["member"]["id"], id);
    assert!(r["error"].is_null() || r["effects"].as_array().is_some(), "{r}");
    let (s, r) = app
        .call(Method::POST, &path, Some(&owner), Some(json!({"script": CHECKIN, "event": {"type": "checked_in"}, "member": {"streak": 7, "today": 1}, "params": {"table": [5, 8], "day7_bonus": 50}})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["effects"][0]["amount"], 8);
    assert_eq!(r["effects"][2]["amount"], 50);
    let (_, r) =
        app.call(Method::POST, &path, Some(&owner), Some(json!({"script": "loop {}", "event": {"type": "x"}}))).await;
    assert!(
        r["error"].as_str().unwrap().contains("operations") || r["error"].as_str().unwrap().contains("longer"),
        "{r}"
    );
    assert_eq!(app.balance(&t, &key, id, "points").await, 0, "a dry run writes nothing");
}

#[tokio::test]
async fn seed_004_gift_release_accelerates_two_generations_of_referrers() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    create_rule(&app, &t, &owner, json!({"name": "gift", "event_type": "*", "script": GIFT, "params": {"gift_per_yuan": 1, "daily_rate_permille": 12, "accelerate_percent": [50, 30]}})).await;
    let key = app.partner_key(&t).await;
    // A invites B, B invites C.
    let register = |invite: Option<String>| {
        let app = &app;
        let path = format!("/v1/tenants/{}/auth/register", t.slug);
        async move {
            let mut body = json!({"identifier": phone(), "password": PASSWORD});
            if let Some(c) = invite {
                body["invite_code"] = json!(c);
            }
            let (s, b) = app.call(Method::POST, &path, None, Some(body)).await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            b["member"].clone()
        }
    };
    let a = register(None).await;
    let b = register(a["invite_code"].as_str().map(str::to_string)).await;
    let c = register(b["invite_code"].as_str().map(str::to_string)).await;
    let ids: Vec<i64> = [&a, &b, &c].iter().map(|m| m["id"].as_i64().unwrap()).collect();
    // Each completes a 1000-yuan order: 1000 points locked, 12 released a day.
    let orders: Vec<Value> = ids.iter().enumerate().map(|(i, id)| json!({"id": format!("o{i}"), "type": "order_completed", "member_id": id, "data": {"amount_fen": 100000, "order_id": format!("O{i}")}})).collect();
    let r = events(&app, &t, &key, json!(orders)).await;
    assert!(r.as_array().unwrap().iter().all(|o| o["status"] == "applied"), "{r}");
    for id in &ids {
        let p = app.points(&t, &key, *id).await;
        assert_eq!(p["balances"][0]["locked"], 1000);
    }
    // One day later the daily release runs: each member releases 12; C's release
    // accelerates B by 6 and A by 3; B's release accelerates A by 6.
    let report = app.jobs(&t, chrono::Utc::now() + chrono::Duration::days(1) + chrono::Duration::minutes(1)).await;
    assert_eq!(report.released_amount, 36);
    let rules = platform::rules::cache::RuleCache::new(std::sync::Arc::new(scripting::Sandbox::new()));
    let tenant = platform::directory::find_by_slug(app.db.control(), &t.slug).await.unwrap().unwrap();
    platform::rules::pipeline::drain_outbox(&app.db, &rules, &tenant).await.unwrap();
    let bal = |i: usize| {
        let app = &app;
        let key = key.clone();
        let t = t.clone();
        let id = ids[i];
        async move { app.balance(&t, &key, id, "points").await }
    };
    assert_eq!(bal(2).await, 12, "C: own release only");
    assert_eq!(bal(1).await, 12 + 6, "B: own release + 50% of C's");
    assert_eq!(bal(0).await, 12 + 6 + 3, "A: own + 50% of B's + 30% of C's");
    app.assert_ledger_sound(&t).await;
}
