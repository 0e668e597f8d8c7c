//! Issue 12, point 6: alliance-wide rules. Defined once by an alliance admin, they run in
//! every mall of the alliance after the mall's own rules, for the same events; they award
//! only the shared currency, paid from the issuing budget of the mall where the event
//! happened; an archived one does not run; an exhausted budget leaves out just that award.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::alliance::{SHARED, alliance, assert_alliance_ledger_sound, mall_in, my_balance};
use crate::budgets::{alliance_admin, unfunded_mall};
use crate::common::{TestApp, phone};

const FUNDED_FEN: i64 = 100_000_000;

async fn budget_fen(app: &TestApp, t: &platform::directory::Tenant, owner: &str) -> i64 {
    let (s, b) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/alliance-budget", t.slug), Some(owner), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["balance_fen"].as_i64().unwrap()
}

/// Registers a proven member in `t`; returns (member id, access token).
async fn register(app: &TestApp, t: &platform::directory::Tenant) -> (i64, String) {
    let (m, tokens) = app.proven_member(t, &phone()).await;
    (m["id"].as_i64().unwrap(), tokens["access_token"].as_str().unwrap().to_string())
}

async fn mall_rule(app: &TestApp, t: &platform::directory::Tenant, owner: &str) {
    let rule = json!({"name": "own welcome", "event_type": "registered", "script": "[award(\"points\", 10, \"mall welcome\")]"});
    let (s, b) = app.call(Method::POST, &format!("/v1/tenants/{}/staff/rules", t.slug), Some(owner), Some(rule)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

async fn last_event(app: &TestApp, t: &platform::directory::Tenant, owner: &str, member: i64) -> Value {
    let path = format!("/v1/tenants/{}/staff/events?member_id={member}", t.slug);
    let (s, b) = app.call(Method::GET, &path, Some(owner), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"].as_array().unwrap().iter().find(|e| e["type"] == "registered").cloned().unwrap_or_else(|| panic!("{b}"))
}

#[tokio::test]
async fn a_registration_bonus_defined_once_pays_in_every_mall_from_its_own_budget() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let (ma, mb) = (mall_in(&app, &a.slug).await, mall_in(&app, &a.slug).await);
    let admin = alliance_admin(&app, &a.slug).await;
    let base = format!("/v1/alliances/{}/rules", a.slug);
    let (_, owner_a) = app.staff(&ma, "owner").await;
    let (_, owner_b) = app.staff(&mb, "owner").await;
    mall_rule(&app, &ma, &owner_a).await;

    // Only the shared currency, named as such: a mall's private one is refused at save.
    for script in ["[award(\"points\", 5)]", "[award(params.currency, 5)]", &format!("[deduct(\"{SHARED}\", 5)]")] {
        let bad = json!({"name": "bad", "event_type": "registered", "script": script});
        let (s, b) = app.call(Method::POST, &base, Some(&admin), Some(bad)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{script}: {b}");
    }
    let script = format!("[award(\"{SHARED}\", params.bonus, \"alliance welcome\")]");
    let new =
        json!({"name": "alliance welcome", "event_type": "registered", "script": script, "params": {"bonus": 200}});
    let (s, rule) = app.call(Method::POST, &base, Some(&admin), Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let rid = rule["id"].as_i64().unwrap();
    // A new version awarding a private currency is refused too; the rule stays as it was.
    let (s, b) = app
        .call(
            Method::PUT,
            &format!("{base}/{rid}/script"),
            Some(&admin),
            Some(json!({"script": "[award(\"points\", 1)]"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // The mall's staff do not see it among the mall's rules.
    let (_, own) = app.call(Method::GET, &format!("/v1/tenants/{}/staff/rules", ma.slug), Some(&owner_a), None).await;
    assert_eq!(own.as_array().unwrap().len(), 1, "{own}");

    // Mall A: its own rule and the alliance rule both run on one sign-up.
    let (m1, t1) = register(&app, &ma).await;
    assert_eq!(my_balance(&app, &ma, &t1, "points").await, 10);
    assert_eq!(my_balance(&app, &ma, &t1, SHARED).await, 200);
    let ev = last_event(&app, &ma, &owner_a, m1).await;
    assert_eq!(ev["status"], "applied", "{ev}");
    let runs = ev["effects"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{ev}");
    assert!(runs[0].get("alliance").is_none(), "the mall's rule first: {ev}");
    assert_eq!((&runs[1]["rule_id"], &runs[1]["alliance"]), (&json!(rid), &json!(true)), "{ev}");
    // Mall B, with no rule of its own: the alliance rule runs there too.
    let (_, t2) = register(&app, &mb).await;
    assert_eq!(my_balance(&app, &mb, &t2, SHARED).await, 200);
    // 200 points at 100 points = ¥1 and 15%: 30 fen, from each mall's own budget.
    assert_eq!(budget_fen(&app, &ma, &owner_a).await, FUNDED_FEN - 30);
    assert_eq!(budget_fen(&app, &mb, &owner_b).await, FUNDED_FEN - 30);

    // New parameters take effect at once (hot reload).
    let (s, b) = app
        .call(Method::PUT, &format!("{base}/{rid}/params"), Some(&admin), Some(json!({"params": {"bonus": 300}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, t3) = register(&app, &mb).await;
    assert_eq!(my_balance(&app, &mb, &t3, SHARED).await, 300);
    let (s, detail) = app.call(Method::GET, &format!("{base}/{rid}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (detail["param_versions"].as_array().unwrap().len(), detail["rule"]["params_version"].as_i64()),
        (2, Some(2))
    );

    // Archived: it no longer runs; the mall's own rule still does.
    let (s, b) = app.call(Method::POST, &format!("{base}/{rid}/archive"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, t4) = register(&app, &ma).await;
    assert_eq!(my_balance(&app, &ma, &t4, "points").await, 10);
    assert_eq!(my_balance(&app, &ma, &t4, SHARED).await, 0);
    let (_, archived) = app.call(Method::GET, &format!("{base}?archived=true"), Some(&admin), None).await;
    assert_eq!(archived.as_array().unwrap().len(), 1, "{archived}");
    assert_eq!(budget_fen(&app, &ma, &owner_a).await, FUNDED_FEN - 30);
    assert_alliance_ledger_sound(&app, &a).await;
    for t in [&ma, &mb] {
        app.assert_ledger_sound(t).await;
    }
}

#[tokio::test]
async fn an_exhausted_budget_leaves_out_only_the_alliance_award() {
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let poor = unfunded_mall(&app, &a.slug).await;
    let admin = alliance_admin(&app, &a.slug).await;
    let (_, owner) = app.staff(&poor, "owner").await;
    mall_rule(&app, &poor, &owner).await;
    let script = format!("[award(\"{SHARED}\", 200, \"alliance welcome\")]");
    let new = json!({"name": "alliance welcome", "event_type": "registered", "script": script});
    let (s, b) = app.call(Method::POST, &format!("/v1/alliances/{}/rules", a.slug), Some(&admin), Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (m, t) = register(&app, &poor).await;
    assert_eq!(my_balance(&app, &poor, &t, "points").await, 10, "the mall's own award stands");
    assert_eq!(my_balance(&app, &poor, &t, SHARED).await, 0, "the budget covers no shared points");
    assert_eq!(last_event(&app, &poor, &owner, m).await["status"], "applied");
    assert_eq!(budget_fen(&app, &poor, &owner).await, 0);
}

#[tokio::test]
async fn a_change_of_an_alliance_rule_reaches_another_instance_within_a_second() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn().await;
    let al = alliance(&a).await;
    let t = mall_in(&a, &al.slug).await;
    let admin = alliance_admin(&a, &al.slug).await;
    let script = format!("[award(\"{SHARED}\", 1, \"read\")]");
    let new = json!({"name": "read", "event_type": "read", "script": script});
    let base = format!("/v1/alliances/{}/rules", al.slug);
    let (s, rule) = a.call(Method::POST, &base, Some(&admin), Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let key = a.partner_key(&t).await;
    let (m, _) = a.proven_member(&t, &phone()).await;
    let post = |n: usize| {
        let (b, key, slug, id) = (&b, key.clone(), t.slug.clone(), m["id"].clone());
        async move {
            let events = json!({"events": [{"id": format!("r{n}"), "type": "read", "member_id": id}]});
            let path = format!("/v1/tenants/{slug}/partner/events");
            let (s, _, r) = b.call_full(Method::POST, &path, &[("x-api-key", key)], Some(events)).await;
            assert_eq!(s, StatusCode::OK, "{r}");
            r["results"][0]["effects"].clone()
        }
    };
    // Instance b loads (and caches) version 1, run after the mall's (no) rules.
    let runs = post(0).await;
    assert_eq!((&runs[0]["version"], &runs[0]["alliance"]), (&json!(1), &json!(true)), "{runs}");
    let path = format!("{base}/{}/script", rule["id"]);
    let v2 = json!({"script": format!("[award(\"{SHARED}\", 2, \"read\")]")});
    let (s, b2) = a.call(Method::PUT, &path, Some(&admin), Some(v2)).await;
    assert_eq!(s, StatusCode::OK, "{b2}");
    let saved = std::time::Instant::now();
    let mut n = 1;
    loop {
        let runs = post(n).await;
        n += 1;
        if runs[0]["version"] == 2 {
            break;
        }
        assert!(saved.elapsed() < std::time::Duration::from_secs(1), "b still runs v1 after {:?}", saved.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Issue 14 point 2: the alliance admin's editor checks as you type (line and column, and
/// the shared-currency limit a save would enforce), tries a rule in a chosen mall of the
/// alliance with its budget charge and writes nothing, and keeps every version with
/// rollback. Another alliance's admin and a mall's staff are refused; a mall outside the
/// alliance is not found.
#[tokio::test]
async fn an_alliance_rule_is_checked_and_dry_run_in_a_chosen_mall_with_its_budget_charge() {
    let app = TestApp::spawn().await;
    let (a, other) = (alliance(&app).await, alliance(&app).await);
    let (ma, poor) = (mall_in(&app, &a.slug).await, unfunded_mall(&app, &a.slug).await);
    let elsewhere = mall_in(&app, &other.slug).await;
    let admin = alliance_admin(&app, &a.slug).await;
    let other_admin = alliance_admin(&app, &other.slug).await;
    let (_, owner) = app.staff(&ma, "owner").await;
    let base = format!("/v1/alliances/{}/rules", a.slug);

    // Compile as you type: a syntax error at its line and column; a private currency at
    // line 0 (the whole script), as a save would refuse it; a good script is ok.
    let compile = |script: String| {
        let (app, admin, path) = (&app, admin.clone(), format!("{base}/compile"));
        async move {
            let (s, b) = app.call(Method::POST, &path, Some(&admin), Some(json!({ "script": script }))).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b
        }
    };
    let bad = compile(format!("let x = ;\n[award(\"{SHARED}\", 1)]")).await;
    assert_eq!((&bad["ok"], &bad["error"]["line"]), (&json!(false), &json!(1)), "{bad}");
    assert!(bad["error"]["column"].as_i64().unwrap() > 0, "{bad}");
    let private = compile("[award(\"points\", 1)]".into()).await;
    assert_eq!((&private["ok"], &private["error"]["line"]), (&json!(false), &json!(0)), "{private}");
    assert!(private["error"]["message"].as_str().unwrap().contains(SHARED), "{private}");
    let script =
        format!("[award(\"{SHARED}\", params.bonus, \"welcome\"), award_referrer(1, \"{SHARED}\", 50, \"referrer\")]");
    assert_eq!(compile(script.clone()).await["ok"], json!(true));

    // A draft in mall A, with a sample member: both effects, the award charged at
    // 200 points × ¥0.01 × 15% = 30 fen, the referrer's left out (there is none).
    let dry = format!("{base}/dry-run");
    let run = |body: Value| {
        let (app, admin, dry) = (&app, admin.clone(), dry.clone());
        async move { app.call(Method::POST, &dry, Some(&admin), Some(body)).await }
    };
    let event = json!({"type": "registered"});
    let (s, r) =
        run(json!({"mall": ma.slug, "script": script, "params": {"bonus": 200}, "event": event, "member": {"id": 7}}))
            .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["effects"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["effects"][0]["amount"], json!(200), "{r}");
    let b = &r["budget"];
    assert_eq!(
        (&b["mall"], &b["balance_fen"], &b["rate_bp"], &b["points_per_yuan"]),
        (&json!(ma.slug), &json!(FUNDED_FEN), &json!(1500), &json!(100)),
        "{r}"
    );
    assert_eq!(
        (&b["awards"][0]["status"], &b["awards"][0]["cost_fen"], &b["awards"][0]["member_id"]),
        (&json!("charged"), &json!(30), &json!(7)),
        "{r}"
    );
    assert_eq!(b["awards"][1]["status"], "no_referrer", "{r}");
    assert_eq!(
        (&b["points"], &b["cost_fen"], &b["balance_after_fen"]),
        (&json!(200), &json!(30), &json!(FUNDED_FEN - 30)),
        "{r}"
    );

    // A real member of the mall: their context is read, nothing is written.
    let (m, t) = register(&app, &ma).await;
    let (s, r) =
        run(json!({"mall": ma.slug, "script": script, "params": {"bonus": 200}, "event": event, "member_id": m})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((&r["member"]["id"], &r["budget"]["awards"][0]["member_id"]), (&json!(m), &json!(m)), "{r}");
    assert_eq!(my_balance(&app, &ma, &t, SHARED).await, 0, "a dry run awards nothing");
    assert_eq!(budget_fen(&app, &ma, &owner).await, FUNDED_FEN, "a dry run charges nothing");
    // Another mall's member is not found in this mall.
    let (s, r) = run(json!({"mall": poor.slug, "script": script, "event": event, "member_id": m + 100_000})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");

    // The unfunded mall: the award would be left out, nothing charged.
    let (s, r) = run(json!({"mall": poor.slug, "script": script, "params": {"bonus": 200}, "event": event})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (&r["budget"]["awards"][0]["status"], &r["budget"]["cost_fen"]),
        (&json!("budget_exhausted"), &json!(0)),
        "{r}"
    );

    // A saved rule runs at its current versions; a private currency in a draft is 422.
    let new = json!({"name": "welcome", "event_type": "registered", "script": script, "params": {"bonus": 100}});
    let (s, rule) = app.call(Method::POST, &base, Some(&admin), Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let rid = rule["id"].as_i64().unwrap();
    let (s, r) = run(json!({"mall": ma.slug, "rule_id": rid, "event": event})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (&r["rule_version"], &r["params_version"], &r["budget"]["cost_fen"]),
        (&json!(1), &json!(1), &json!(15)),
        "{r}"
    );
    let (s, r) = run(json!({"mall": ma.slug, "script": "[award(\"points\", 1)]", "event": event})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, r) = run(json!({"mall": ma.slug, "script": "let x = ;", "event": event})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");

    // A mall of another alliance, or none at all: not found; other credentials: refused.
    for mall in [elsewhere.slug.as_str(), "no-such-mall"] {
        let (s, r) = run(json!({"mall": mall, "script": script, "event": event})).await;
        assert_eq!((s, &r["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_in_alliance")), "{r}");
    }
    let body = json!({"mall": ma.slug, "script": script, "event": event});
    for token in [&other_admin, &owner] {
        let (s, r) = app.call(Method::POST, &dry, Some(token), Some(body.clone())).await;
        assert!(matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{s}: {r}");
        let (s, r) =
            app.call(Method::POST, &format!("{base}/compile"), Some(token), Some(json!({"script": script}))).await;
        assert!(matches!(s, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{s}: {r}");
    }

    // History: a second version, then a rollback to the first; both kept.
    let v2 = json!({"script": format!("[award(\"{SHARED}\", 1, \"v2\")]")});
    let (s, r) = app.call(Method::PUT, &format!("{base}/{rid}/script"), Some(&admin), Some(v2)).await;
    assert_eq!((s, &r["current_version"]), (StatusCode::OK, &json!(2)), "{r}");
    let (s, r) =
        app.call(Method::POST, &format!("{base}/{rid}/rollback"), Some(&admin), Some(json!({"version": 1}))).await;
    assert_eq!((s, &r["current_version"]), (StatusCode::OK, &json!(1)), "{r}");
    let (_, detail) = app.call(Method::GET, &format!("{base}/{rid}"), Some(&admin), None).await;
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2, "{detail}");
    let (s, r) = run(json!({"mall": ma.slug, "rule_id": rid, "event": event})).await;
    assert_eq!((s, &r["rule_version"]), (StatusCode::OK, &json!(1)), "{r}");
}
