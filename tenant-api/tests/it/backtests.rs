//! Issue 13 point 11: what would this rule have cost? A backtest replays the mall's
//! recorded events of a period through a saved rule version or a draft, in the
//! background, writing nothing to the ledger; its result compares the versions that ran.

use chrono::{Duration, NaiveDate};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Mall, beijing_noon, beijing_today as today, phone};

/// Noon of a local day, as RFC 3339.
fn noon(day: NaiveDate) -> String {
    beijing_noon(day).to_rfc3339()
}

impl Mall {
    fn path(&self, rest: &str) -> String {
        format!("/v1/tenants/{}/staff/rules{rest}", self.t.slug)
    }

    /// Starts a backtest and waits for its end; the finished backtest.
    async fn backtest(&self, body: Value) -> Value {
        let (s, started) = self.staff(Method::POST, &self.path("/backtests"), Some(body)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{started}");
        let id = started["id"].as_i64().unwrap();
        for _ in 0..300 {
            let (s, bt) = self.staff(Method::GET, &self.path(&format!("/backtests/{id}")), None).await;
            assert_eq!(s, StatusCode::OK, "{bt}");
            if bt["status"] != "running" {
                return bt;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("backtest {id} did not finish");
    }

    /// (entries, sum of amounts) in the mall's ledger.
    async fn ledger(&self) -> (i64, i64) {
        let mut tx = self.app.db.tenant_tx(&self.t.cluster, &self.t.schema_name).await.unwrap();
        let r: (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), sum(amount)::bigint FROM entries").fetch_one(&mut *tx).await.unwrap();
        (r.0, r.1.unwrap_or(0))
    }
}

fn figures<'a>(bt: &'a Value, currency: &str) -> &'a Value {
    bt["result"]["currencies"].as_array().unwrap().iter().find(|c| c["currency"] == currency).unwrap()
}

#[tokio::test]
async fn a_new_version_replayed_over_recorded_events_shows_its_cost_and_the_difference_and_writes_nothing() {
    let m = Mall::new().await;
    let (s, rule) = m
        .staff(
            Method::POST,
            &m.path(""),
            Some(json!({"name": "visit", "event_type": "visited",
                "script": r#"[award("points", params.points, "visit")]"#,
                "params": {"points": 5}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let rid = rule["id"].as_i64().unwrap();
    let (a, _) = m.app.member(&m.t, &phone()).await;
    let (b, _) = m.app.member(&m.t, &phone()).await;
    let (a, b) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let d = today();
    let (d1, d2, d3) = (d - Duration::days(3), d - Duration::days(2), d - Duration::days(1));
    // Five visits over three days (A twice on d2), each paid 5 by version 1, and one the
    // day before the period (not replayed, but counted: A's lifetime).
    m.events(json!([
        {"id": "before", "type": "visited", "member_id": a, "occurred_at": noon(d - Duration::days(4))},
        {"id": "v1", "type": "visited", "member_id": a, "occurred_at": noon(d1)},
        {"id": "v2", "type": "visited", "member_id": b, "occurred_at": noon(d1)},
        {"id": "v3", "type": "visited", "member_id": a, "occurred_at": noon(d2)},
        {"id": "v4", "type": "visited", "member_id": a, "occurred_at": noon(d2)},
        {"id": "v5", "type": "visited", "member_id": b, "occurred_at": noon(d3)},
    ]))
    .await;
    assert_eq!(m.app.balance(&m.t, &m.key, a, "points").await, 20);

    // Version 2 pays 10 only on the member's first visit of the day; parameters v2: 10.
    let (s, v2) = m
        .staff(
            Method::PUT,
            &m.path(&format!("/{rid}/script")),
            Some(json!({"script": r#"if member.today == 1 { [award("points", params.points, "first visit")] } else { [] }"#})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    let (s, p) =
        m.staff(Method::PUT, &m.path(&format!("/{rid}/params")), Some(json!({"params": {"points": 10}}))).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let before = m.ledger().await;

    let bt = m.backtest(json!({"rule_id": rid, "from": d1, "to": d3})).await;
    assert_eq!(bt["status"], "done", "{bt}");
    assert_eq!((bt["rule_version"].as_i64(), bt["params_version"].as_i64()), (Some(2), Some(2)), "{bt}");
    assert_eq!((bt["events_total"].as_i64(), bt["events_done"].as_i64()), (Some(5), Some(5)), "{bt}");
    let r = &bt["result"];
    assert_eq!(r["events"]["replayed"], 5, "{bt}");
    assert_eq!(r["events"]["with_effects"], 4, "A's second visit of d2 pays nothing: {bt}");
    assert_eq!(r["members_reached"], 2);
    let points = figures(&bt, "points");
    assert_eq!(points["awarded"], 40, "{bt}");
    assert_eq!(points["actual"]["awarded"], 25, "version 1 paid 5 for each of the five: {bt}");
    assert_eq!(points["difference"], 15);
    let (_, settings) =
        m.app.call(Method::GET, &format!("/v1/tenants/{}/staff/settings", m.t.slug), Some(&m.owner), None).await;
    let ppy = settings["points_per_yuan"].as_i64().unwrap();
    assert_eq!(points["value_fen"].as_i64(), Some((40 * 100 + ppy / 2) / ppy), "{settings}");
    let per_day: Vec<(String, i64)> = r["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["day"].as_str().unwrap().to_string(), x["awarded"].as_i64().unwrap()))
        .collect();
    assert_eq!(per_day, [(d1.to_string(), 20), (d2.to_string(), 10), (d3.to_string(), 10)]);
    let by_level: i64 = r["per_level"].as_array().unwrap().iter().map(|x| x["awarded"].as_i64().unwrap()).sum();
    assert_eq!(by_level, 40);

    // The saved version 1 with parameters v1 replays what actually ran: no difference.
    let bt = m.backtest(json!({"rule_id": rid, "version": 1, "params_version": 1, "from": d1, "to": d3})).await;
    assert_eq!(
        (figures(&bt, "points")["awarded"].as_i64(), figures(&bt, "points")["difference"].as_i64()),
        (Some(25), Some(0)),
        "{bt}"
    );

    // A draft that spends more than members have fails on each event, quoted.
    let bt = m
        .backtest(json!({"script": r#"[deduct("points", 1000000, "x")]"#,
            "event_type": "visited", "from": d1, "to": d3}))
        .await;
    assert_eq!(
        (bt["result"]["events"]["failed"].as_i64(), bt["result"]["compared"].as_bool()),
        (Some(5), Some(false)),
        "{bt}"
    );
    assert!(bt["result"]["events"]["errors"][0].as_str().unwrap().contains("insufficient"), "{bt}");

    // Nothing was written to the ledger; the start was audited; the list shows them.
    assert_eq!(m.ledger().await, before);
    let (_, audit) =
        m.app.call(Method::GET, &format!("/v1/tenants/{}/staff/audit-log", m.t.slug), Some(&m.owner), None).await;
    assert!(audit.to_string().contains("rule.backtest"), "{audit}");
    let (_, list) = m.staff(Method::GET, &m.path(&format!("/backtests?rule_id={rid}")), None).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    m.app.assert_ledger_sound(&m.t).await;
}

#[tokio::test]
async fn a_backtest_request_is_checked_and_one_runs_at_a_time() {
    let m = Mall::new().await;
    let d = today();
    let draft =
        |from: NaiveDate, to: NaiveDate| json!({"script": "[]", "event_type": "visited", "from": from, "to": to});
    for (body, code) in [
        (draft(d, d - Duration::days(1)), "validation_failed"),
        (draft(d, d + Duration::days(1)), "validation_failed"),
        (draft(d - Duration::days(92), d), "period_too_long"),
        (json!({"script": "[]", "from": d, "to": d}), "validation_failed"),
        (json!({"script": "[", "event_type": "visited", "from": d, "to": d}), "script_invalid"),
        (json!({"script": "[]", "rule_id": 1, "event_type": "visited", "from": d, "to": d}), "validation_failed"),
    ] {
        let (s, b) = m.staff(Method::POST, &m.path("/backtests"), Some(body.clone())).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(code)), "{body}: {b}");
    }
    let (s, b) =
        m.staff(Method::POST, &m.path("/backtests"), Some(json!({"rule_id": 999999, "from": d, "to": d}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = m.staff(Method::GET, &m.path("/backtests/999999"), None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("backtest_not_found")), "{b}");

    // A run in progress refuses a second; a run whose server stopped shows as interrupted.
    let mut tx = m.app.db.tenant_tx(&m.t.cluster, &m.t.schema_name).await.unwrap();
    let (running, stale): (i64, i64) = sqlx::query_as(
        "WITH r AS (INSERT INTO rule_backtests (script, params, event_type, from_day, to_day) \
             VALUES ('[]', '{}', 'visited', current_date, current_date) RETURNING id), \
         s AS (INSERT INTO rule_backtests (script, params, event_type, from_day, to_day, updated_at) \
             VALUES ('[]', '{}', 'visited', current_date, current_date, now() - interval '1 hour') RETURNING id) \
         SELECT r.id, s.id FROM r, s",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (s, b) = m.staff(Method::POST, &m.path("/backtests"), Some(draft(d, d))).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("backtest_running")), "{b}");
    let (_, b) = m.staff(Method::GET, &m.path(&format!("/backtests/{stale}")), None).await;
    assert_eq!(b["status"], "failed", "{b}");
    assert!(b["error"].as_str().unwrap().starts_with("interrupted"), "{b}");
    let (_, b) = m.staff(Method::GET, &m.path(&format!("/backtests/{running}")), None).await;
    assert_eq!(b["status"], "running", "{b}");

    // Staff without rules_read cannot start one.
    let (_, service) = m.app.staff(&m.t, "customer_service").await;
    let (s, _) = m.app.call(Method::POST, &m.path("/backtests"), Some(&service), Some(draft(d, d))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// The demo's two weeks of purchases, recorded before its "points per yuan" rule existed,
/// backtest to what that rule would have paid, and seeding twice records nothing twice.
#[tokio::test]
async fn the_demo_rule_backtests_over_the_demo_purchases() {
    use tenant_api::cli::demo;
    let app = crate::common::TestApp::spawn().await;
    demo::seed(&app.db).await.unwrap();
    demo::seed(&app.db).await.unwrap();
    let (slug, _, owner, _) = demo::MERCHANTS[0];
    let (s, login) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{slug}/staff/auth/login"),
            None,
            Some(json!({"email": owner, "password": demo::STAFF_PASSWORD})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let (_, rules) = app.call(Method::GET, &format!("/v1/tenants/{slug}/staff/rules"), Some(token), None).await;
    let rule = rules.as_array().unwrap().iter().find(|r| r["event_type"] == "purchase").expect("the demo rule");
    let rid = rule["id"].as_i64().unwrap();
    let d = today();
    let body = json!({"rule_id": rid, "from": d - Duration::days(14), "to": d - Duration::days(1)});
    let (s, started) =
        app.call(Method::POST, &format!("/v1/tenants/{slug}/staff/rules/backtests"), Some(token), Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_i64().unwrap();
    let mut bt = Value::Null;
    for _ in 0..300 {
        let path = format!("/v1/tenants/{slug}/staff/rules/backtests/{id}");
        bt = app.call(Method::GET, &path, Some(token), None).await.1;
        if bt["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(bt["status"], "done", "{bt}");
    let members = demo::MEMBERS.len() as i64;
    assert_eq!(bt["result"]["events"]["replayed"].as_i64(), Some(members * 14), "{bt}");
    assert_eq!(bt["result"]["members_reached"].as_i64(), Some(members), "{bt}");
    let points = figures(&bt, "points");
    // At least one point per yuan of the smallest basket (¥38) for each purchase.
    assert!(points["awarded"].as_i64().unwrap() >= members * 14 * 38, "{bt}");
    assert_eq!(points["actual"]["awarded"], 0, "the purchases were recorded before the rule: {bt}");
    assert_eq!(points["difference"], points["awarded"], "{bt}");
}
