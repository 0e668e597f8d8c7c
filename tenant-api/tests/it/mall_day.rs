//! Issue 13, points 1 and 2: a Chinese merchant's mall speaks its language and lives on
//! its own day. A zh-CN mall (the default) sends Chinese code texts and reminders with
//! its own points name, answers errors in Chinese unless the request asks for English,
//! and counts check-ins, streaks and day limits in Beijing days (midnight is 16:00 UTC).

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone, unique};

/// Today in Beijing, and the instants `hh:mm` Beijing time on `day`.
fn beijing_today() -> NaiveDate {
    Utc::now().with_timezone(&Shanghai).date_naive()
}
fn beijing(day: NaiveDate, h: u32, m: u32) -> chrono::DateTime<Utc> {
    Shanghai.from_local_datetime(&day.and_hms_opt(h, m, 0).unwrap()).unwrap().with_timezone(&Utc)
}

async fn post_events(app: &TestApp, slug: &str, key: &str, events: Value) -> Value {
    let (s, _, r) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{slug}/partner/events"),
            &[("x-api-key", key.to_string())],
            Some(json!({ "events": events })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

fn awarded(result: &Value) -> i64 {
    result["effects"][0]["effects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["currency"] == "points")
        .map(|e| e["amount"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_zh_cn_mall_speaks_chinese_with_its_own_names_unless_asked_for_english() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let settings = format!("/v1/tenants/{}/staff/settings", t.slug);

    // The mall renames itself and its points; a field not sent keeps its value.
    let patch = json!({"name": "茶香商城", "points_name": "茶豆", "expiry_reminder_days": 10});
    let (s, b) = app.call(Method::PATCH, &settings, Some(&owner), Some(patch)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["name"].as_str(), b["points_name"].as_str()), (Some("茶香商城"), Some("茶豆")), "{b}");
    assert_eq!((b["locale"].as_str(), b["time_zone"].as_str()), (Some("zh-CN"), Some("Asia/Shanghai")), "{b}");
    let (_, got) = app.call(Method::GET, &settings, Some(&owner), None).await;
    assert_eq!((got["name"].as_str(), got["expiry_reminder_days"].as_i64()), (Some("茶香商城"), Some(10)), "{got}");
    for (bad, field) in [
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"name": ""}), "name"),
        (json!({"limits": {"event_batches": 99, "rule_evaluations": 1}}), "limits"),
        (json!({"nonsense": 1}), "nonsense"),
        (json!({"transfers": [true, 1]}), "transfers"),
    ] {
        let (s, b) = app.call(Method::PATCH, &settings, Some(&owner), Some(bad.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
        assert_eq!(b["error"]["details"]["fields"][0]["field"], field, "{bad}: {b}");
    }

    // A Chinese verification code text, under the mall's new name.
    let who = phone();
    let (member, tokens) = app.proven_member(&t, &who).await;
    let text = app.last_message(&who).await.unwrap();
    assert!(text.starts_with("【茶香商城】您的验证码是 "), "{text}");
    assert!(text.contains("分钟内有效"), "{text}");

    // A Chinese expiry reminder with the mall's points name and Beijing time.
    let key = app.partner_key(&t).await;
    let id = member["id"].as_i64().unwrap();
    let expires = beijing(beijing_today() + Duration::days(5), 23, 30);
    app.credit(&t, &key, id, 120, Some(expires.to_rfc3339())).await;
    app.jobs(&t, Utc::now()).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (s, msgs) = app.call(Method::GET, &format!("/v1/tenants/{}/me/messages", t.slug), Some(token), None).await;
    assert_eq!(s, StatusCode::OK, "{msgs}");
    let reminder = msgs["items"].as_array().unwrap().iter().find(|m| m["kind"] == "expiry_reminder").unwrap();
    assert_eq!(reminder["title"], "茶豆即将过期", "{reminder}");
    let local = expires.with_timezone(&Shanghai).format("%Y/%m/%d %H:%M").to_string();
    assert_eq!(reminder["body"], format!("您有 120 茶豆将于 {local} 过期，请尽快使用。"), "{reminder}");

    // Errors: Chinese by the mall's locale, English when the request asks for it; the
    // code is the same either way.
    let login = format!("/v1/tenants/{}/auth/login", t.slug);
    let wrong = json!({"identifier": who, "password": "not-the-password"});
    for (lang, message) in [("zh-CN,zh;q=0.9", "账号或密码错误。"), ("en-US,en;q=0.9", "wrong account or password")]
    {
        let headers = [("accept-language", lang.to_string())];
        let (s, _, b) = app.call_full(Method::POST, &login, &headers, Some(wrong.clone())).await;
        assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
        assert_eq!(b["error"]["message"], message, "{lang}: {b}");
    }
    // A 422 names its fields in Chinese too.
    let headers = [("accept-language", "zh-CN".to_string()), ("authorization", format!("Bearer {owner}"))];
    let (s, _, b) = app.call_full(Method::PATCH, &settings, &headers, Some(json!({"points_name": ""}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["details"]["fields"][0]["message"], "1 到 16 个字符", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().starts_with("部分字段不符合要求"), "{b}");
    // A request the server cannot read keeps the parser's words, which name what to fix.
    let dashboard = format!("/v1/tenants/{}/staff/reports/dashboard?from=2026-11-20", t.slug);
    let (s, _, b) = app.call_full(Method::GET, &dashboard, &headers, None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{b}");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("查询参数无效") && message.contains("unknown field `from`"), "{b}");
}

#[tokio::test]
async fn check_ins_count_on_beijing_days_and_a_back_dated_one_never_blocks_today() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let today = beijing_today();

    // 23:59 yesterday and 00:01 today, Beijing time: two days, so day 2 of a streak
    // (the built-in table pays 5, then 8). In UTC both are the same day.
    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let (late, early) = (beijing(today - Duration::days(1), 23, 59), beijing(today, 0, 1));
    assert_eq!(late.date_naive(), early.date_naive(), "the same UTC day");
    let r = post_events(
        &app,
        &t.slug,
        &key,
        json!([
            {"id": unique("c"), "type": "checked_in", "member_id": id, "occurred_at": late},
            {"id": unique("c"), "type": "checked_in", "member_id": id, "occurred_at": early},
        ]),
    )
    .await;
    assert_eq!(
        (r["results"][0]["status"].as_str(), r["results"][1]["status"].as_str()),
        (Some("applied"), Some("applied")),
        "{r}"
    );
    assert_eq!((awarded(&r["results"][0]), awarded(&r["results"][1])), (5, 8), "day 1 and day 2: {r}");
    let token = tokens["access_token"].as_str().unwrap();
    let path = format!("/v1/tenants/{}/me/checkins", t.slug);
    let (_, c) = app.call(Method::GET, &path, Some(token), None).await;
    assert_eq!((c["streak"].as_i64(), c["checked_in_today"].as_bool()), (Some(2), Some(true)), "{c}");
    // The member's own check-in today is the second of the day: refused by the rule.
    let (_, o) = app.call(Method::POST, &path, Some(token), None).await;
    assert_eq!(o["status"], "denied", "{o}");

    // A partner back-dates a check-in to five days ago: it counts on that day, so the
    // member's real check-in today is still paid (day 1 of a new streak).
    let (n, tokens) = app.member(&t, &phone()).await;
    let nid = n["id"].as_i64().unwrap();
    let old = beijing(today - Duration::days(5), 12, 0);
    let r = post_events(
        &app,
        &t.slug,
        &key,
        json!([{"id": unique("c"), "type": "checked_in", "member_id": nid, "occurred_at": old}]),
    )
    .await;
    assert_eq!((r["results"][0]["status"].as_str(), awarded(&r["results"][0])), (Some("applied"), 5), "{r}");
    let token = tokens["access_token"].as_str().unwrap();
    let (_, o) = app.call(Method::POST, &path, Some(token), None).await;
    assert_eq!((o["status"].as_str(), awarded(&o)), (Some("applied"), 5), "{o}");
    let month = (today - Duration::days(5)).format("%Y-%m");
    let (_, c) = app.call(Method::GET, &format!("{path}?month={month}"), Some(token), None).await;
    assert!(c["days"].as_array().unwrap().contains(&json!((today - Duration::days(5)).to_string())), "{c}");
}

#[tokio::test]
async fn a_mall_in_another_zone_turns_its_day_at_its_own_midnight() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let settings = format!("/v1/tenants/{}/staff/settings", t.slug);
    let (s, b) =
        app.call(Method::PATCH, &settings, Some(&owner), Some(json!({"time_zone": "UTC", "locale": "en"}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    // 15:59 and 16:01 UTC yesterday: one day in UTC (the second check-in is denied),
    // though they would be two in Beijing.
    let yesterday = Utc::now().date_naive() - Duration::days(1);
    let at = |h, m| Utc.from_utc_datetime(&yesterday.and_hms_opt(h, m, 0).unwrap());
    let r = post_events(
        &app,
        &t.slug,
        &key,
        json!([
            {"id": unique("c"), "type": "checked_in", "member_id": id, "occurred_at": at(15, 59)},
            {"id": unique("c"), "type": "checked_in", "member_id": id, "occurred_at": at(16, 1)},
        ]),
    )
    .await;
    assert_eq!(
        (r["results"][0]["status"].as_str(), r["results"][1]["status"].as_str()),
        (Some("applied"), Some("denied")),
        "{r}"
    );
    // The mall now writes English: no Accept-Language, its locale decides.
    let (s, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/auth/login", t.slug),
            &[("accept-language", "".to_string())],
            Some(json!({"identifier": phone(), "password": "not-the-password"})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("wrong account or password")),
        "{b}"
    );
}
