//! The marketing screens' API (issue 14; SPEC K1, K3, K4) and the operator's health
//! view: a lottery changed by staff (window, status, prize table with what was won),
//! its draws and winners; the check-in reward table and its figures; products by their
//! special price window; clusters and migration versions.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone, unique};

fn field(e: &Value) -> Option<&str> {
    e["error"]["details"]["fields"][0]["field"].as_str()
}

async fn draw(app: &TestApp, t: &platform::directory::Tenant, token: &str, lid: i64) -> (StatusCode, Value) {
    let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("d"))];
    let (s, _, d) =
        app.call_full(Method::POST, &format!("/v1/tenants/{}/me/lotteries/{lid}/draws", t.slug), &headers, None).await;
    (s, d)
}

#[tokio::test]
async fn staff_change_a_lottery_its_window_and_prizes_and_read_its_winners() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, service) = app.staff(&t, "customer_service").await;
    let key = app.partner_key(&t).await;
    let base = format!("/v1/tenants/{}/staff/lotteries", t.slug);
    let tomorrow = Utc::now() + Duration::days(1);
    let (s, l) = app
        .call(
            Method::POST,
            &base,
            Some(&owner),
            Some(json!({"name": "周末大转盘", "cost": 10, "daily_limit": 5, "starts_at": tomorrow,
                "prizes": [{"name": "杯子", "kind": "item", "weight": 10000, "stock": 3},
                           {"name": "Nothing much", "kind": "points", "points": 1, "weight": 0}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let lid = l["id"].as_i64().unwrap();
    assert_eq!(l["status"], "active");
    let (m, tokens) = app.member(&t, &phone()).await;
    let member_id = m["id"].as_i64().unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_string();
    app.credit(&t, &key, member_id, 100, None).await;

    // Before its window it is neither listed for members nor drawn.
    let (_, running) = app.call(Method::GET, &format!("/v1/tenants/{}/lotteries", t.slug), None, None).await;
    assert!(running.as_array().unwrap().iter().all(|x| x["id"] != lid), "{running}");
    let (s, e) = draw(&app, &t, &token, lid).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("lottery_closed")), "{e}");
    assert_eq!(app.balance(&t, &key, member_id, "points").await, 100, "a refused draw costs nothing");

    // Staff list every lottery, the future one included.
    let (s, list) = app.call(Method::GET, &base, Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], lid);
    assert_eq!(list["items"][0]["starts_at"].as_str().map(|x| x.is_empty()), Some(false));

    // Open it now, until tomorrow; the second prize goes (never won: deleted), a new one
    // comes in.
    let cup = l["prizes"][0]["id"].as_i64().unwrap();
    let body = |prizes: Value, status: &str| {
        json!({"name": "大转盘", "cost": 20, "daily_limit": 5, "status": status,
               "starts_at": Utc::now() - Duration::minutes(1), "ends_at": tomorrow, "prizes": prizes})
    };
    let (s, u) = app
        .call(
            Method::PUT,
            &format!("{base}/{lid}"),
            Some(&owner),
            Some(body(
                json!([{"id": cup, "name": "马克杯", "kind": "item", "weight": 10000, "stock": 3},
                       {"name": "5 积分", "kind": "points", "points": 5, "weight": 0}]),
                "active",
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!((u["name"].as_str(), u["cost"].as_i64()), (Some("大转盘"), Some(20)));
    let names: Vec<&str> = u["prizes"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["马克杯", "5 积分"]);
    assert_eq!(u["prizes"][0]["id"], cup, "the kept prize keeps its id");
    let (_, running) = app.call(Method::GET, &format!("/v1/tenants/{}/lotteries", t.slug), None, None).await;
    assert!(running.as_array().unwrap().iter().any(|x| x["id"] == lid), "{running}");

    // Five draws: the cup every time until its stock of 3 is gone, then nothing.
    let mut prizes = vec![];
    for _ in 0..5 {
        let (s, d) = draw(&app, &t, &token, lid).await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        prizes.push(d["prize"]["name"].as_str().unwrap_or("-").to_string());
    }
    assert_eq!(prizes, ["马克杯", "马克杯", "马克杯", "-", "-"]);
    assert_eq!(app.balance(&t, &key, member_id, "points").await, 0, "five draws at 20");
    let (s, all) = app.call(Method::GET, &format!("{base}/{lid}/draws"), Some(&service), None).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    let first = &all["items"][0];
    assert_eq!((first["member_id"].as_i64(), first["cost"].as_i64()), (Some(member_id), Some(20)), "{first}");
    assert_eq!((first["prize_id"].clone(), first["member_phone"].clone()), (Value::Null, m["phone"].clone()));
    let (_, winners) =
        app.call(Method::GET, &format!("{base}/{lid}/draws?winners=true&limit=2"), Some(&owner), None).await;
    assert_eq!(winners["items"].as_array().unwrap().len(), 2);
    assert_eq!(winners["items"][0]["prize_name"], "马克杯");
    let cursor = winners["next_cursor"].as_str().expect("three winners, two a page");
    let (_, rest) = app
        .call(Method::GET, &format!("{base}/{lid}/draws?winners=true&limit=2&cursor={cursor}"), Some(&owner), None)
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");

    // A won prize's stock cannot go below what was won; a prize of another lottery is
    // refused; a won prize left out is retired, and its draws still name it.
    let (s, e) = app
        .call(
            Method::PUT,
            &format!("{base}/{lid}"),
            Some(&owner),
            Some(body(json!([{"id": cup, "name": "马克杯", "kind": "item", "weight": 9000, "stock": 2}]), "active")),
        )
        .await;
    assert_eq!((s, field(&e)), (StatusCode::UNPROCESSABLE_ENTITY, Some("prizes.stock")), "{e}");
    let (s, e) = app
        .call(
            Method::PUT,
            &format!("{base}/{lid}"),
            Some(&owner),
            Some(body(json!([{"id": cup + 1000, "name": "x", "kind": "item", "weight": 1}]), "active")),
        )
        .await;
    assert_eq!((s, field(&e)), (StatusCode::UNPROCESSABLE_ENTITY, Some("prizes.id")), "{e}");
    let (s, u) = app
        .call(
            Method::PUT,
            &format!("{base}/{lid}"),
            Some(&owner),
            Some(body(json!([{"name": "10 积分", "kind": "points", "points": 10, "weight": 10000}]), "inactive")),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["prizes"].as_array().unwrap().len(), 1);
    assert_eq!(u["status"], "inactive");
    let (_, all) = app.call(Method::GET, &format!("{base}/{lid}/draws?winners=true"), Some(&owner), None).await;
    let won: Vec<&str> = all["items"].as_array().unwrap().iter().map(|d| d["prize_name"].as_str().unwrap()).collect();
    assert_eq!(won, ["马克杯", "马克杯", "马克杯"], "a retired prize keeps its name in the draws");
    // Inactive: closed to members.
    let (s, e) = draw(&app, &t, &token, lid).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("lottery_closed")), "{e}");

    // Bounds and permissions.
    let (s, e) = app
        .call(
            Method::PUT,
            &format!("{base}/{lid}"),
            Some(&owner),
            Some(json!({"name": "x", "cost": 1, "starts_at": tomorrow, "ends_at": Utc::now(),
                        "prizes": [{"name": "a", "kind": "item", "weight": 1}]})),
        )
        .await;
    assert_eq!((s, field(&e)), (StatusCode::UNPROCESSABLE_ENTITY, Some("ends_at")), "{e}");
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("{base}/{}", lid + 1000),
            Some(&owner),
            Some(body(json!([{"name": "a", "kind": "item", "weight": 1}]), "active")),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::GET, &format!("{base}/{}/draws", lid + 1000), Some(&owner), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .call(
            Method::PUT,
            &format!("{base}/{lid}"),
            Some(&service),
            Some(body(json!([{"name": "a", "kind": "item", "weight": 1}]), "active")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "customer service reads lotteries but does not change them");
    let (_, audit) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/audit-log?limit=200", t.slug), Some(&owner), None).await;
    let updates = audit["items"].as_array().unwrap().iter().filter(|a| a["action"] == "lottery.update").count();
    assert_eq!(updates, 2, "each change is audited once");
    app.assert_ledger_sound(&t).await;
}

#[tokio::test]
async fn the_check_in_table_set_by_staff_pays_the_next_check_in_and_is_counted() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, operator) = app.staff(&t, "operator").await;
    let (_, finance) = app.staff(&t, "finance").await;
    let key = app.partner_key(&t).await;
    let path = format!("/v1/tenants/{}/staff/checkin", t.slug);

    let (s, o) = app.call(Method::GET, &path, Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["rewards"], json!({"table": [5, 8, 12, 15, 18, 20, 25], "day7_bonus": 50}));
    assert_eq!((o["customised"].as_bool(), o["table_in_effect"].as_bool()), (Some(false), Some(true)));
    let days = o["days"].as_array().unwrap();
    assert_eq!(days.len(), 14);
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    assert_eq!(days[13], json!({"day": today.to_string(), "members": 0}), "the mall's day, last");

    // The operator (rules_write) sets a table; the next check-in pays from it.
    let (s, o) = app.call(Method::PUT, &path, Some(&operator), Some(json!({"table": [3, 4], "day7_bonus": 0}))).await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!((o["rewards"]["table"].clone(), o["customised"].as_bool()), (json!([3, 4]), Some(true)));
    let mut members = vec![];
    for _ in 0..2 {
        let (m, tokens) = app.member(&t, &phone()).await;
        let (s, out) = app
            .call(Method::POST, &format!("/v1/tenants/{}/me/checkins", t.slug), tokens["access_token"].as_str(), None)
            .await;
        assert_eq!((s, out["status"].as_str()), (StatusCode::OK, Some("applied")), "{out}");
        members.push(m["id"].as_i64().unwrap());
    }
    for id in &members {
        assert_eq!(app.balance(&t, &key, *id, "points").await, 3, "day 1 of the mall's table");
    }
    let (_, o) = app.call(Method::GET, &path, Some(&owner), None).await;
    assert_eq!(o["days"][13]["members"], 2, "{o}");

    // A rule of the mall's own on check-ins decides instead (the table stays as set).
    let script = "[award(\"points\", 1, \"rule\")]";
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/rules", t.slug),
            Some(&owner),
            Some(json!({"name": "签到 1 分", "event_type": "checked_in", "script": script})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (_, o) = app.call(Method::GET, &path, Some(&owner), None).await;
    assert_eq!(o["table_in_effect"], false);
    assert_eq!(o["rules"], json!([{"id": r["id"], "name": "签到 1 分", "enabled": true}]));

    // Bounds, permissions, audit.
    for (bad, f) in [
        (json!({"table": [], "day7_bonus": 0}), "table"),
        (json!({"table": [0], "day7_bonus": 0}), "table"),
        (json!({"table": vec![1; 32], "day7_bonus": 0}), "table"),
        (json!({"table": [1], "day7_bonus": 1_000_001}), "day7_bonus"),
    ] {
        let (s, e) = app.call(Method::PUT, &path, Some(&owner), Some(bad.clone())).await;
        assert_eq!((s, field(&e)), (StatusCode::UNPROCESSABLE_ENTITY, Some(f)), "{bad}: {e}");
    }
    let (s, _) = app.call(Method::GET, &path, Some(&finance), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "finance does not read rules");
    let (_, audit) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/audit-log?limit=200", t.slug), Some(&owner), None).await;
    assert!(audit["items"].as_array().unwrap().iter().any(|a| a["action"] == "checkin.rewards"), "{audit}");
}

#[tokio::test]
async fn products_are_listed_by_their_special_price_window() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let now = Utc::now();
    let windows = [
        ("now", Some((now - Duration::hours(1), now + Duration::hours(1)))),
        ("later", Some((now + Duration::days(1), now + Duration::days(2)))),
        ("over", Some((now - Duration::days(2), now - Duration::days(1)))),
        ("none", None),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, window) in windows {
        let mut body = json!({"name": name, "kind": "coupon", "points_price": 500, "stock": 10});
        if let Some((from, to)) = window {
            body["special_points_price"] = json!(300);
            body["special_starts_at"] = json!(from);
            body["special_ends_at"] = json!(to);
        }
        let (s, p) =
            app.call(Method::POST, &format!("/v1/tenants/{}/staff/products", t.slug), Some(&owner), Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        ids.insert(name, p["id"].as_i64().unwrap());
    }
    let listed = |q: &'static str| {
        let app = &app;
        let t = &t;
        let owner = &owner;
        async move {
            let (s, page) =
                app.call(Method::GET, &format!("/v1/tenants/{}/staff/products{q}", t.slug), Some(owner), None).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            let mut names: Vec<String> =
                page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
            names.sort();
            names
        }
    };
    assert_eq!(listed("?special=current").await, ["now"]);
    assert_eq!(listed("?special=upcoming").await, ["later"]);
    assert_eq!(listed("?special=current_or_upcoming").await, ["later", "now"]);
    assert_eq!(listed("").await, ["later", "none", "now", "over"]);
    let (s, _) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/products?special=past", t.slug), Some(&owner), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_operator_reads_clusters_and_each_tenants_migrations() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (s, h) = app.call(Method::GET, "/v1/platform/health", Some(&app.platform_token), None).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let latest = migrations::TENANT.last().unwrap();
    assert_eq!(h["tenant_latest"], json!({"version": latest.version, "name": latest.name}));
    assert_eq!(h["control"]["pending"], json!([]));
    assert_eq!(h["control"]["version"], h["control"]["latest"]);
    let main =
        h["clusters"].as_array().unwrap().iter().find(|c| c["name"] == "main").expect("the main cluster").clone();
    assert_eq!(main["reachable"], true, "{main}");
    assert!(main["server_version"].as_str().is_some_and(|v| !v.is_empty()), "{main}");
    assert!(main["tenants"].as_i64().unwrap() >= 1);
    let ours = h["tenants"].as_array().unwrap().iter().find(|x| x["slug"] == t.slug.as_str());
    // At most 1000 tenants are listed (behind first): a shared test database may hold
    // more, so ours is checked when listed.
    if let Some(ours) = ours {
        assert_eq!((ours["version"].as_i64(), ours["pending"].clone()), (Some(latest.version), json!([])), "{ours}");
        assert_eq!(ours["directory_version"].as_i64(), Some(latest.version));
    } else {
        assert_eq!(h["tenants_truncated"], true, "{h}");
    }
    assert!(h["tenants_total"].as_i64().unwrap() >= 1);

    // Against a binary with one more migration, every tenant has it pending.
    let mut list = migrations::TENANT.to_vec();
    list.push(migrations::Migration { version: 900, name: "0900_next", sql: "" });
    let view = platform::health::check_against(&app.db, migrations::CONTROL, &list).await.unwrap();
    assert_eq!(view.tenant_latest.version, 900);
    assert_eq!(view.tenants_behind, view.tenants_total);
    if let Some(ours) = view.tenants.iter().find(|x| x.slug == t.slug) {
        assert_eq!(ours.pending.iter().map(|m| (m.version, m.name.as_str())).collect::<Vec<_>>(), [(900, "0900_next")]);
    } else {
        assert!(view.tenants_truncated);
    }
    assert!(view.tenants.iter().all(|x| x.pending.last().is_some_and(|m| m.version == 900)));
    assert_eq!(view.clusters.iter().map(|c| c.tenants_behind).sum::<i64>(), view.tenants_total);

    // Only the platform operator reads it.
    let (s, _) = app.call(Method::GET, "/v1/platform/health", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, owner) = app.staff(&t, "owner").await;
    let (s, _) = app.call(Method::GET, "/v1/platform/health", Some(&owner), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
