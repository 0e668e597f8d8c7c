//! For the rule developer (issue 13 point 12): parameters versioned like scripts with
//! their own rollback, entries and the event log naming both versions, archived rules
//! never evaluated, the member's profile and lock grants in the rule context, and dry runs
//! filled in like live events (`occurred_at` now in the mall's zone).

use chrono::{DateTime, Datelike, Offset, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Mall, phone};

const REGISTER_BONUS: &str = include_str!("../../../examples/rules/register_bonus.rhai");

impl Mall {
    fn rules(&self, rest: &str) -> String {
        format!("/v1/tenants/{}/staff/rules{rest}", self.t.slug)
    }

    async fn create(&self, body: Value) -> Value {
        let (s, b) = self.staff(Method::POST, &self.rules(""), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    /// The member's newest points entry, as staff read it.
    async fn last_entry(&self, member: i64) -> Value {
        let path = format!("/v1/tenants/{}/staff/members/{member}/points/entries?currency=points", self.t.slug);
        let (s, b) = self.staff(Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["items"][0].clone()
    }

    async fn audit_actions(&self, target: &str) -> Vec<String> {
        let path = format!("/v1/tenants/{}/staff/audit-log?limit=200", self.t.slug);
        let (_, log) = self.staff(Method::GET, &path, None).await;
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["target"] == target)
            .map(|e| e["action"].as_str().unwrap().to_string())
            .rev()
            .collect()
    }
}

#[tokio::test]
async fn parameters_are_versioned_roll_back_and_every_entry_names_both_versions() {
    let m = Mall::new().await;
    let rule = m
        .create(json!({"name": "welcome", "event_type": "registered", "script": REGISTER_BONUS,
            "params": {"points": 100, "exp": 10}}))
        .await;
    assert_eq!((rule["current_version"].as_i64(), rule["params_version"].as_i64()), (Some(1), Some(1)), "{rule}");
    let rid = rule["id"].as_i64().unwrap();

    let (m1, _) = m.app.member(&m.t, &phone()).await;
    let m1 = m1["id"].as_i64().unwrap();
    let e = m.last_entry(m1).await;
    assert_eq!((e["amount"].as_i64(), e["rule_id"].as_i64()), (Some(100), Some(rid)), "{e}");
    assert_eq!((e["rule_version"].as_i64(), e["params_version"].as_i64()), (Some(1), Some(1)), "{e}");

    // New parameters are a new parameter version; the script version stays.
    let params = m.rules(&format!("/{rid}/params"));
    let (s, b) = m.staff(Method::PUT, &params, Some(json!({"params": {"points": 30, "exp": 1}}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["current_version"].as_i64(), b["params_version"].as_i64()), (Some(1), Some(2)), "{b}");
    assert_eq!(b["params"], json!({"points": 30, "exp": 1}));
    // The same parameters again change nothing.
    let (s, b) = m.staff(Method::PUT, &params, Some(json!({"params": {"exp": 1, "points": 30}}))).await;
    assert_eq!((s, b["params_version"].as_i64()), (StatusCode::OK, Some(2)), "{b}");

    // Script version 2 doubles the points: 2 × 30, named script v2 and parameters v2.
    let v2 = REGISTER_BONUS.replace("params.points,", "params.points * 2,");
    let (s, b) = m.staff(Method::PUT, &m.rules(&format!("/{rid}/script")), Some(json!({"script": v2}))).await;
    assert_eq!((s, b["current_version"].as_i64(), b["params_version"].as_i64()), (StatusCode::OK, Some(2), Some(2)));
    let (m2, _) = m.app.member(&m.t, &phone()).await;
    let m2 = m2["id"].as_i64().unwrap();
    let e = m.last_entry(m2).await;
    assert_eq!(e["amount"].as_i64(), Some(60), "{e}");
    assert_eq!((e["rule_version"].as_i64(), e["params_version"].as_i64()), (Some(2), Some(2)), "{e}");
    // The event log names both versions too.
    let (_, log) = m.staff(Method::GET, &format!("/v1/tenants/{}/staff/events?member_id={m2}", m.t.slug), None).await;
    let run = &log["items"][0]["effects"][0];
    assert_eq!(
        (run["rule_id"].as_i64(), run["version"].as_i64(), run["params_version"].as_i64()),
        (Some(rid), Some(2), Some(2)),
        "{log}"
    );

    // Parameter rollback is one action; the script stays at v2: 2 × 100.
    let (s, b) = m.staff(Method::POST, &m.rules(&format!("/{rid}/params/rollback")), Some(json!({"version": 1}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["current_version"].as_i64(), b["params_version"].as_i64()), (Some(2), Some(1)), "{b}");
    assert_eq!(b["params"], json!({"points": 100, "exp": 10}));
    let (m3, _) = m.app.member(&m.t, &phone()).await;
    let m3 = m3["id"].as_i64().unwrap();
    let e = m.last_entry(m3).await;
    assert_eq!(e["amount"].as_i64(), Some(200), "{e}");
    assert_eq!((e["rule_version"].as_i64(), e["params_version"].as_i64()), (Some(2), Some(1)), "{e}");
    // Entries written before stay as they were.
    assert_eq!(m.last_entry(m1).await["params_version"].as_i64(), Some(1));

    // Every parameter version is kept, newest first, with who made it.
    let (_, detail) = m.staff(Method::GET, &m.rules(&format!("/{rid}")), None).await;
    let versions = detail["param_versions"].as_array().unwrap();
    let listed: Vec<(i64, Value)> =
        versions.iter().map(|v| (v["version"].as_i64().unwrap(), v["params"].clone())).collect();
    assert_eq!(listed, vec![(2, json!({"points": 30, "exp": 1})), (1, json!({"points": 100, "exp": 10}))]);
    assert!(versions.iter().all(|v| !v["created_by"].as_str().unwrap().is_empty()), "{detail}");
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);

    let (s, b) = m.staff(Method::POST, &m.rules(&format!("/{rid}/params/rollback")), Some(json!({"version": 9}))).await;
    assert_eq!(
        (s, b["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("version"))
    );
    assert_eq!(
        m.audit_actions(&rid.to_string()).await,
        ["rule.create", "rule.params", "rule.version", "rule.params_rollback"],
        "every change audited once (the unchanged parameters not at all)"
    );
    // The hash chain covers the parameter version.
    m.app.assert_ledger_sound(&m.t).await;
}

#[tokio::test]
async fn an_archived_rule_is_never_evaluated_kept_for_history_and_restorable() {
    let m = Mall::new().await;
    let rule = m
        .create(
            json!({"name": "visit", "event_type": "visited", "script": r#"award("points", params.points, "visit")"#,
            "params": {"points": 5}}),
        )
        .await;
    let rid = rule["id"].as_i64().unwrap();
    let (mm, _) = m.app.member(&m.t, &phone()).await;
    let member = mm["id"].as_i64().unwrap();
    let r = m.events(json!([{"id": "v1", "type": "visited", "member_id": member}])).await;
    assert_eq!(r[0]["effects"][0]["rule_id"].as_i64(), Some(rid), "{r}");
    assert_eq!(m.app.balance(&m.t, &m.key, member, "points").await, 5);

    // Staff who may read rules but not write them cannot archive.
    let (_, auditor) = m.app.staff(&m.t, "auditor").await;
    let (s, _) = m.app.call(Method::POST, &m.rules(&format!("/{rid}/archive")), Some(&auditor), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, b) = m.staff(Method::POST, &m.rules(&format!("/{rid}/archive")), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["archived_at"].is_string(), "{b}");
    assert_eq!(b["enabled"], true, "archiving leaves the switch as it was");
    // Gone from the active list, listed with the archived ones, still readable.
    let ids = |list: &Value| list.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>();
    let (_, active) = m.staff(Method::GET, &m.rules(""), None).await;
    assert!(!ids(&active).contains(&rid), "{active}");
    let (_, archived) = m.staff(Method::GET, &m.rules("?archived=true"), None).await;
    assert_eq!(ids(&archived), vec![rid]);
    let (s, detail) = m.staff(Method::GET, &m.rules(&format!("/{rid}")), None).await;
    assert_eq!((s, detail["versions"].as_array().unwrap().len()), (StatusCode::OK, 1));

    // Never evaluated: the next event runs no rule.
    let r = m.events(json!([{"id": "v2", "type": "visited", "member_id": member}])).await;
    assert_eq!((r[0]["status"].as_str(), r[0]["effects"].clone()), (Some("applied"), json!([])), "{r}");
    assert_eq!(m.app.balance(&m.t, &m.key, member, "points").await, 5);
    // Changes wait for a restore.
    for (method, path, body) in [
        (Method::PUT, format!("/{rid}/script"), json!({"script": "[]"})),
        (Method::PUT, format!("/{rid}/params"), json!({"params": {"points": 9}})),
        (Method::PATCH, format!("/{rid}"), json!({"enabled": false})),
        (Method::POST, format!("/{rid}/rollback"), json!({"version": 1})),
    ] {
        let (s, b) = m.staff(method, &m.rules(&path), Some(body)).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("rule_archived")), "{path}: {b}");
    }
    // The entries it wrote still name it.
    assert_eq!(m.last_entry(member).await["rule_id"].as_i64(), Some(rid));

    let (s, b) = m.staff(Method::POST, &m.rules(&format!("/{rid}/restore")), None).await;
    assert_eq!((s, b["archived_at"].is_null()), (StatusCode::OK, true), "{b}");
    let (_, active) = m.staff(Method::GET, &m.rules(""), None).await;
    assert!(ids(&active).contains(&rid));
    m.events(json!([{"id": "v3", "type": "visited", "member_id": member}])).await;
    assert_eq!(m.app.balance(&m.t, &m.key, member, "points").await, 10, "restored, it runs again");
    assert_eq!(m.audit_actions(&rid.to_string()).await, ["rule.create", "rule.archive", "rule.restore"]);

    let (s, _) = m.staff(Method::POST, &m.rules("/999999/archive"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A rule that tells what it saw of the member as effects.
const PROBE: &str = r#"
let p = member.profile;
let out = [tag("gender:" + p.gender), tag("city:" + p.city), tag("registered:" + p.registered_on),
           set_counter("locks", member.locks.len())];
if member.locks.len() > 0 {
    out.push(set_counter("lock_remaining", member.locks[0].remaining));
    out.push(set_counter("lock_per_day", member.locks[0].per_day));
}
if p.birthday != "" && p.birthday.sub_string(5) == event.day.sub_string(5) {
    out.push(award("points", 88, "birthday"));
}
out
"#;

#[tokio::test]
async fn rules_see_the_members_profile_and_lock_grants() {
    let m = Mall::new().await;
    let (mm, tokens) = m.app.member(&m.t, &phone()).await;
    let member = mm["id"].as_i64().unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let today = chrono_tz::Asia::Shanghai.from_utc_datetime(&Utc::now().naive_utc()).date_naive();
    // Born on this day (in a leap year, so 29 February exists too).
    let birthday = format!("2000-{:02}-{:02}", today.month(), today.day());
    let (s, b) = m
        .app
        .call(
            Method::PATCH,
            &format!("/v1/tenants/{}/me", m.t.slug),
            Some(token),
            Some(json!({"birthday": birthday, "gender": "female", "city": " 上海 "})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["birthday"].as_str(), b["gender"].as_str(), b["city"].as_str()),
        (Some(birthday.as_str()), Some("female"), Some("上海"))
    );
    for (bad, field) in [
        (json!({"gender": "x"}), None),
        (json!({"birthday": "1899-12-31"}), Some("birthday")),
        (json!({"city": " "}), Some("city")),
    ] {
        let (s, b) = m.app.call(Method::PATCH, &format!("/v1/tenants/{}/me", m.t.slug), Some(token), Some(bad)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        if let Some(f) = field {
            assert_eq!(b["error"]["details"]["fields"][0]["field"], f, "{b}");
        }
    }

    m.create(json!({"name": "gift", "event_type": "gifted", "script": r#"lock("points", 100, 10, "gift")"#})).await;
    m.create(json!({"name": "probe", "event_type": "probe", "script": PROBE})).await;
    let r = m.events(json!([{"id": "g1", "type": "gifted", "member_id": member}])).await;
    assert_eq!(r[0]["status"], "applied", "{r}");
    let r = m.events(json!([{"id": "p1", "type": "probe", "member_id": member}])).await;
    let seen = &r[0]["effects"][0]["effects"];
    let registered = format!("registered:{today}");
    assert_eq!(
        seen,
        &json!([
            {"kind": "tag", "name": "gender:female"},
            {"kind": "tag", "name": "city:上海"},
            {"kind": "tag", "name": registered},
            {"kind": "set_counter", "name": "locks", "value": 1},
            {"kind": "set_counter", "name": "lock_remaining", "value": 100},
            {"kind": "set_counter", "name": "lock_per_day", "value": 10},
            {"kind": "award", "currency": "points", "amount": 88, "memo": "birthday", "expires_in_days": null}
        ]),
        "{r}"
    );

    // A dry run of a real member shows the same context.
    let (s, d) = m
        .staff(
            Method::POST,
            &m.rules("/dry-run"),
            Some(json!({"script": PROBE, "event": {"type": "probe"}, "member_id": member})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(&d["effects"], seen);
    assert_eq!(
        d["member"]["profile"],
        json!({"nickname": mm["nickname"], "birthday": birthday, "gender": "female", "city": "上海", "registered_on": today.to_string()})
    );
    let lock = &d["member"]["locks"][0];
    assert_eq!(
        (lock["currency"].as_str(), lock["total"].as_i64(), lock["released"].as_i64(), lock["memo"].as_str()),
        (Some("points"), Some(100), Some(0), Some("gift")),
        "{d}"
    );
    assert!(lock["next_release_at"].as_str().unwrap().ends_with("+08:00"), "{lock}");
}

#[tokio::test]
async fn a_dry_run_fills_every_field_a_live_event_has_in_the_malls_zone() {
    let m = Mall::new().await;
    let show = r#"[tag("id:" + event.id), tag("day:" + event.day), tag("at:" + event.occurred_at), set_counter("data", event.data.len())]"#;
    let dry = |body: Value| {
        let m = &m;
        async move {
            let (s, r) = m.staff(Method::POST, &m.rules("/dry-run"), Some(body)).await;
            assert_eq!(s, StatusCode::OK, "{r}");
            r
        }
    };
    // Nothing but the type: the event is filled in, occurred_at now in Beijing time.
    let before = Utc::now();
    let r = dry(json!({"script": show, "event": {"type": "checked_in"}})).await;
    let ev = &r["event"];
    let at = DateTime::parse_from_rfc3339(ev["occurred_at"].as_str().unwrap()).unwrap();
    assert_eq!(at.offset().local_minus_utc(), 8 * 3600, "{ev}");
    assert!(at >= before - chrono::Duration::seconds(1) && at <= Utc::now(), "{ev}");
    let local_day = at.date_naive().to_string();
    assert_eq!(
        (ev["id"].as_str(), ev["day"].as_str(), ev["data"].clone()),
        (Some("dry-run"), Some(local_day.as_str()), json!({})),
        "{ev}"
    );
    assert_eq!(r["effects"][1]["name"], format!("day:{local_day}"));
    assert_eq!(r["effects"][2]["name"], format!("at:{}", ev["occurred_at"].as_str().unwrap()));

    // A given time is shown in the mall's zone and counts on its local day.
    let r = dry(json!({"script": show, "event": {"type": "checked_in", "occurred_at": "2026-11-29T16:30:00Z", "data": {"a": 1}}})).await;
    assert_eq!(
        (r["event"]["occurred_at"].as_str(), r["event"]["day"].as_str()),
        (Some("2026-11-30T00:30:00+08:00"), Some("2026-11-30")),
        "{r}"
    );
    assert_eq!(r["effects"][3]["value"], 1);
    let (s, b) = m
        .staff(
            Method::POST,
            &m.rules("/dry-run"),
            Some(json!({"script": show, "event": {"type": "checked_in", "occurred_at": "yesterday"}})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("event.occurred_at")),
        "{b}"
    );

    // In another zone, the mall's own offset.
    let settings = format!("/v1/tenants/{}/staff/settings", m.t.slug);
    let (s, b) = m.staff(Method::PATCH, &settings, Some(json!({"time_zone": "America/New_York"}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r = dry(json!({"script": show, "event": {"type": "checked_in"}})).await;
    let at = DateTime::parse_from_rfc3339(r["event"]["occurred_at"].as_str().unwrap()).unwrap();
    let expected = chrono_tz::America::New_York.from_utc_datetime(&at.naive_utc());
    assert_eq!(at.offset().local_minus_utc(), expected.offset().fix().local_minus_utc(), "{r}");
    assert_eq!(r["event"]["day"].as_str(), Some(expected.date_naive().to_string().as_str()));

    // With a real member and a saved rule, the dry run sees what the live event then sees:
    // its counts with the event itself included, the rule's versions named.
    let counts = m
        .create(json!({"name": "counts", "event_type": "checked_in", "script":
            r#"[set_counter("today", member.today), set_counter("lifetime", member.lifetime), set_counter("streak", member.streak), set_counter("p", params.n)]"#,
            "params": {"n": 3}}))
        .await;
    let (mm, _) = m.app.member(&m.t, &phone()).await;
    let member = mm["id"].as_i64().unwrap();
    m.events(json!([{"id": "c1", "type": "checked_in", "member_id": member}])).await;
    let d = dry(json!({"rule_id": counts["id"], "event": {"type": "checked_in"}, "member_id": member})).await;
    assert_eq!(
        (d["rule_version"].as_i64(), d["params_version"].as_i64(), d["params"].clone()),
        (Some(1), Some(1), json!({"n": 3})),
        "{d}"
    );
    let live = m.events(json!([{"id": "c2", "type": "checked_in", "member_id": member}])).await;
    assert_eq!(d["effects"], live[0]["effects"][0]["effects"], "dry {d}\nlive {live}");
    assert_eq!(d["effects"][0]["value"], 2, "the second check-in of the day, itself counted");
}

#[tokio::test]
async fn the_editor_compiles_as_you_type() {
    let m = Mall::new().await;
    let (s, b) = m.staff(Method::POST, &m.rules("/compile"), Some(json!({"script": "award(\"points\", 1)"}))).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"ok": true, "error": null})));
    let (s, b) = m.staff(Method::POST, &m.rules("/compile"), Some(json!({"script": "// two\nlet x = ;\n"}))).await;
    assert_eq!((s, b["ok"].as_bool(), b["error"]["line"].as_i64()), (StatusCode::OK, Some(false), Some(2)), "{b}");
    assert!(b["error"]["column"].as_i64().unwrap() >= 1 && !b["error"]["message"].as_str().unwrap().is_empty());
    let (_, auditor) = m.app.staff(&m.t, "auditor").await;
    let (s, _) = m.app.call(Method::POST, &m.rules("/compile"), Some(&auditor), Some(json!({"script": "1"}))).await;
    assert_eq!(s, StatusCode::OK, "reading rules is enough");
}

#[tokio::test]
async fn archived_rules_leave_room_in_the_active_list_of_two_hundred() {
    let m = Mall::new().await;
    // 199 disabled rules written directly, then the 200th through the API.
    let mut tx = m.app.db.tenant_tx(&m.t.cluster, &m.t.schema_name).await.unwrap();
    sqlx::query(
        "INSERT INTO rules (name, event_type, enabled, current_version) \
         SELECT 'filler-' || n, 'never_sent', false, 1 FROM generate_series(1, 199) n",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let rule = |name: &str| json!({"name": name, "event_type": "visited", "script": "[]"});
    let last = m.create(rule("the 200th")).await;
    let (s, b) = m.staff(Method::POST, &m.rules(""), Some(rule("one too many"))).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("too_many_rules")), "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("200"), "{b}");

    // Archiving one makes room; restoring it while the list is full again is refused.
    let id = last["id"].as_i64().unwrap();
    let (s, b) = m.staff(Method::POST, &m.rules(&format!("/{id}/archive")), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    m.create(rule("one too many")).await;
    let (s, b) = m.staff(Method::POST, &m.rules(&format!("/{id}/restore")), None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("too_many_rules")), "{b}");
}
