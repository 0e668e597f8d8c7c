//! Issue 13, points 5 and 10: saved member segments (level, tag, inactivity, balance
//! range, registration days in the mall's time zone), the staff member record with tags
//! and level, the members of a segment as CSV, and the merchant's messages to all
//! members or a segment — sent now or scheduled, once per member, read counts, and the
//! member's read / mark-all-read.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone, unique};

struct Mall {
    app: TestApp,
    t: platform::directory::Tenant,
    owner: String,
    key: String,
}

impl Mall {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let t = app.tenant().await;
        let (_, owner) = app.staff(&t, "owner").await;
        let key = app.partner_key(&t).await;
        Mall { app, t, owner, key }
    }

    async fn staff(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.staff_as(&self.owner, method, path, body).await
    }

    async fn staff_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.app.call(method, &format!("/v1/tenants/{}/staff{path}", self.t.slug), Some(token), body).await
    }

    async fn member(&self, tokens: &Value, method: Method, path: &str) -> (StatusCode, Value) {
        let path = format!("/v1/tenants/{}/me{path}", self.t.slug);
        self.app.call(method, &path, tokens["access_token"].as_str(), None).await
    }

    async fn credit(&self, member: i64, currency: &str, amount: i64) {
        let body = json!({"items": [{"member_id": member, "amount": amount, "currency": currency}]});
        let (s, b) = self.app.partner_post(&self.t, &self.key, "/points/credits", &unique("c"), body).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    async fn ids(&self, query: &str) -> Vec<i64> {
        let (s, b) = self.staff(Method::GET, &format!("/members?{query}"), None).await;
        assert_eq!(s, StatusCode::OK, "{query}: {b}");
        let mut ids: Vec<i64> = b["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
        ids.sort();
        ids
    }

    async fn set_registered(&self, member: i64, at: &str) {
        let mut tx = self.app.db.tenant_tx(&self.t.cluster, &self.t.schema_name).await.unwrap();
        sqlx::query("UPDATE members SET created_at = $2::timestamptz WHERE id = $1")
            .bind(member)
            .bind(at)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn segments_select_members_and_are_saved_counted_and_exported() {
    let m = Mall::new().await;
    let mut ids = vec![];
    for _ in 0..4 {
        ids.push(m.app.member(&m.t, &phone()).await.0["id"].as_i64().unwrap());
    }
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    m.credit(a, "points", 300).await;
    m.credit(b, "points", 50).await;
    m.credit(c, "points", 1000).await;
    m.credit(c, "exp", 1200).await; // 银卡 from 1000 experience
    for id in [a, c] {
        let (s, r) = m.staff(Method::POST, &format!("/members/{id}/tags"), Some(json!({"tag": "vip"}))).await;
        assert!(s.is_success(), "{r}");
    }
    // Registration days are Beijing days: 15:59:59 UTC is 23:59:59 of 1 March there,
    // 16:00 UTC is the first moment of 2 March.
    m.set_registered(d, "2026-03-01T15:59:59Z").await;
    m.set_registered(b, "2026-03-01T16:00:00Z").await;

    assert_eq!(m.ids("tag=vip").await, [a, c]);
    assert_eq!(m.ids("tag=vip&balance_min=100&balance_max=500").await, [a]);
    assert_eq!(m.ids("balance_max=60").await, [b, d], "no account counts as a balance of 0");
    assert_eq!(m.ids("registered_from=2026-03-02&registered_to=2026-03-02").await, [b]);
    assert_eq!(m.ids("registered_to=2026-03-01").await, [d]);
    let (_, levels) = m.staff(Method::GET, &format!("/members/{c}"), None).await;
    let silver = levels["level"]["id"].as_i64().unwrap();
    assert_eq!(levels["level"]["name"], "银卡", "{levels}");
    assert_eq!(levels["tags"], json!(["vip"]), "the staff member record shows tags");
    assert_eq!(m.ids(&format!("level_id={silver}")).await, [c]);
    let (s, r) = m.staff(Method::GET, "/members?balance_min=9&balance_max=3", None).await;
    assert_eq!(
        (s, r["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("balance_max"))
    );

    // Saved: a misspelt field is refused (it must not quietly mean everyone), names are
    // unique, and a saved segment lists, counts and exports its members.
    let seg = |name: &str, filter: Value| json!({"name": name, "filter": filter});
    let (s, r) = m.staff(Method::POST, "/segments", Some(seg("typo", json!({"balance_mn": 100})))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, saved) =
        m.staff(Method::POST, "/segments", Some(seg("VIP 100+", json!({"tag": "vip", "balance_min": 100})))).await;
    assert_eq!(s, StatusCode::CREATED, "{saved}");
    let (s, r) = m.staff(Method::POST, "/segments", Some(seg("VIP 100+", json!({})))).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("segment_exists")));
    let id = saved["id"].as_i64().unwrap();
    assert_eq!(m.ids(&format!("segment={id}")).await, [a, c]);
    assert_eq!(m.ids(&format!("segment={id}&balance_max=500")).await, [a], "given fields narrow the segment");
    let (s, n) = m.staff(Method::GET, &format!("/members/count?segment={id}"), None).await;
    assert_eq!((s, n["members"].as_i64(), n["capped"].as_bool()), (StatusCode::OK, Some(2), Some(false)), "{n}");
    let (_, n) = m.staff(Method::GET, "/members/count?balance_max=60", None).await;
    assert_eq!(n["members"], 2);
    let (s, list) = m.staff(Method::GET, "/segments", None).await;
    assert_eq!((s, list[0]["filter"].clone()), (StatusCode::OK, json!({"tag": "vip", "balance_min": 100})));

    let url = format!("{}/v1/tenants/{}/staff/members/export?segment={id}", m.app.base, m.t.slug);
    let resp = reqwest::Client::new().get(url).bearer_auth(&m.owner).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-truncated"], "false");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with('\u{feff}'), "a byte order mark for Excel");
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("\"member_id\",\"phone\""), "{text}");
    assert!(
        lines[1].starts_with(&format!("\"{a}\"")) && lines[1].contains("\"vip\"") && lines[1].contains("points=300")
    );
    assert!(lines[2].contains("\"银卡\"") && lines[2].contains("exp=1200 points=1000"), "{text}");

    // Changing and deleting are audited; an auditor reads but cannot save.
    let (s, _) = m.staff(Method::PUT, &format!("/segments/{id}"), Some(seg("VIP", json!({"tag": "vip"})))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m.ids(&format!("segment={id}")).await, [a, c]);
    let (_, auditor) = m.app.staff(&m.t, "auditor").await;
    let (s, _) = m.staff_as(&auditor, Method::GET, "/segments", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = m.staff_as(&auditor, Method::POST, "/segments", Some(seg("x", json!({})))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = m.staff(Method::DELETE, &format!("/segments/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, r) = m.staff(Method::GET, &format!("/members?segment={id}"), None).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("segment_not_found")));
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM control.audit_log WHERE tenant_id = $1 AND action LIKE 'segment.%' ORDER BY id",
    )
    .bind(m.t.id)
    .fetch_all(m.app.db.control())
    .await
    .unwrap();
    assert_eq!(actions, ["segment.create", "segment.update", "segment.delete"]);
}

#[tokio::test]
async fn messages_reach_a_segment_once_now_or_when_scheduled_and_count_reads() {
    let m = Mall::new().await;
    let mut members = vec![];
    for _ in 0..3 {
        let (member, tokens) = m.app.member(&m.t, &phone()).await;
        members.push((member["id"].as_i64().unwrap(), tokens));
    }
    let [(a, ta), (b, tb), (_, tc)] = [members[0].clone(), members[1].clone(), members[2].clone()];
    for id in [a, b] {
        m.staff(Method::POST, &format!("/members/{id}/tags"), Some(json!({"tag": "tea"}))).await;
    }
    let (_, seg) = m.staff(Method::POST, "/segments", Some(json!({"name": "tea", "filter": {"tag": "tea"}}))).await;
    let seg = seg["id"].as_i64().unwrap();

    // Now, to the segment: a and b get it, c (not tagged) does not.
    let (s, sent) = m
        .staff(
            Method::POST,
            "/broadcasts",
            Some(json!({"title": "新茶上市", "body": "本周新茶 8 折", "segment_id": seg})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sent}");
    assert_eq!(
        (sent["status"].as_str(), sent["recipients"].as_i64(), sent["read"].as_i64()),
        (Some("sent"), Some(2), Some(0))
    );
    assert_eq!(sent["segment_name"], "tea");
    let (_, unread) = m.member(&ta, Method::GET, "/messages/unread").await;
    assert_eq!(unread["unread"], 1);
    let (_, inbox) = m.member(&ta, Method::GET, "/messages").await;
    let msg = &inbox["items"][0];
    assert_eq!((msg["kind"].as_str(), msg["title"].as_str()), (Some("broadcast"), Some("新茶上市")));
    let (_, u) = m.member(&tb, Method::GET, "/messages/unread").await;
    assert_eq!(u["unread"], 1);
    let (_, u) = m.member(&tc, Method::GET, "/messages/unread").await;
    assert_eq!(u["unread"], 0);
    // Reading counts once, however often; another member cannot read a's message.
    let msg_id = msg["id"].as_i64().unwrap();
    let (s, _) = m.member(&tc, Method::POST, &format!("/messages/{msg_id}/read")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for _ in 0..2 {
        let (s, r) = m.member(&ta, Method::POST, &format!("/messages/{msg_id}/read")).await;
        assert!(s == StatusCode::OK && !r["read_at"].is_null(), "{r}");
    }
    let (_, again) = m.staff(Method::GET, &format!("/broadcasts/{}", sent["id"]), None).await;
    assert_eq!((again["recipients"].as_i64(), again["read"].as_i64()), (Some(2), Some(1)));

    // Scheduled, to everyone: nothing until the jobs run after send_at; then once.
    let at = Utc::now() + Duration::hours(1);
    let (s, later) = m
        .staff(Method::POST, "/broadcasts", Some(json!({"title": "Notice", "body": "Closed on Monday", "send_at": at})))
        .await;
    assert_eq!((s, later["status"].as_str()), (StatusCode::CREATED, Some("scheduled")), "{later}");
    let (_, cancelled) =
        m.staff(Method::POST, "/broadcasts", Some(json!({"title": "Oops", "body": "Wrong", "send_at": at}))).await;
    let (s, r) = m.staff(Method::POST, &format!("/broadcasts/{}/cancel", cancelled["id"]), None).await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    let (s, r) = m.staff(Method::POST, &format!("/broadcasts/{}/cancel", cancelled["id"]), None).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("broadcast_not_scheduled")));
    assert_eq!(m.app.jobs(&m.t, Utc::now()).await.broadcasts, 0);
    assert_eq!(m.app.jobs(&m.t, at + Duration::minutes(1)).await.broadcasts, 1);
    assert_eq!(m.app.jobs(&m.t, at + Duration::minutes(2)).await.broadcasts, 0);
    let (_, later) = m.staff(Method::GET, &format!("/broadcasts/{}", later["id"]), None).await;
    assert_eq!((later["status"].as_str(), later["recipients"].as_i64()), (Some("sent"), Some(3)), "{later}");
    let (_, u) = m.member(&tc, Method::GET, "/messages/unread").await;
    assert_eq!(u["unread"], 1, "c got the notice, not the cancelled one");
    let (_, u) = m.member(&ta, Method::GET, "/messages/unread").await;
    assert_eq!(u["unread"], 1);
    let (s, r) = m.member(&ta, Method::POST, "/messages/read-all").await;
    assert_eq!((s, r["marked"].as_i64()), (StatusCode::OK, Some(1)));
    let (_, u) = m.member(&ta, Method::GET, "/messages/unread").await;
    assert_eq!(u["unread"], 0);

    // Bad input is named; a customer-service agent may not write to members.
    let (s, r) = m
        .staff(
            Method::POST,
            "/broadcasts",
            Some(json!({"title": "x", "body": "y", "send_at": Utc::now() + Duration::days(400)})),
        )
        .await;
    assert_eq!(
        (s, r["error"]["details"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("send_at"))
    );
    let (s, r) =
        m.staff(Method::POST, "/broadcasts", Some(json!({"title": " ", "body": "y", "segment_id": 999999}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, r) =
        m.staff(Method::POST, "/broadcasts", Some(json!({"title": "t", "body": "y", "segment_id": 999999}))).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("segment_not_found")));
    let (_, cs) = m.app.staff(&m.t, "customer_service").await;
    let (s, _) = m.staff_as(&cs, Method::POST, "/broadcasts", Some(json!({"title": "t", "body": "y"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, page) = m.staff(Method::GET, "/broadcasts", None).await;
    assert_eq!((s, page["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)));
}
