//! P3: webhooks reach a real HTTP receiver started here, signed (Standard Webhooks),
//! retried after a failure even across a restart, claimed once by two workers, and an
//! endpoint that keeps failing is turned off with a notice in the audit log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxStatus};
use platform::webhooks::address::AddressPolicy;
use platform::webhooks::deliver::Deliverer;
use platform::webhooks::sign;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, phone, unique};

/// What the receiver saw: the webhook headers and the body of each request.
#[derive(Clone, Debug)]
struct Seen {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A receiver on 127.0.0.1: answers 500 to the first `fail_first` requests, then 200.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let mut log = log.lock().unwrap();
                log.push(Seen {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signature: h("webhook-signature"),
                    body,
                });
                if log.len() <= fail_first {
                    (AxStatus::INTERNAL_SERVER_ERROR, "boom")
                } else {
                    (AxStatus::OK, "thanks")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn deliverer(app: &TestApp) -> Deliverer {
    let vault = platform::vault::Vault::from_config(None, &app.secret).unwrap();
    Deliverer::new(app.db.clone(), vault, AddressPolicy { allow_private: true }).unwrap()
}

async fn wait_for(seen: &Arc<Mutex<Vec<Seen>>>, n: usize, secs: u64) -> Vec<Seen> {
    for _ in 0..secs * 20 {
        let now = seen.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the receiver saw {} requests, expected {n}", seen.lock().unwrap().len());
}

fn verify(secret: &str, s: &Seen) {
    let key = sign::key_of(secret).unwrap();
    // Recomputed here from the spec's recipe, not with the server's function.
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", s.id, s.timestamp, s.body).as_bytes());
    use base64::Engine;
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(s.signature, expected, "signature of {}", s.body);
    let ts: i64 = s.timestamp.parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60, "timestamp {ts}");
}

async fn create_endpoint(app: &TestApp, slug: &str, owner: &str, url: &str, types: Value) -> Value {
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{slug}/staff/webhooks"),
            Some(owner),
            Some(json!({"url": url, "event_types": types, "description": "ERP"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

async fn deliveries(app: &TestApp, slug: &str, owner: &str, endpoint: i64) -> Vec<Value> {
    let (s, b) = app
        .call(Method::GET, &format!("/v1/tenants/{slug}/staff/webhooks/{endpoint}/deliveries"), Some(owner), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"].as_array().unwrap().clone()
}

/// The endpoint's delivery log once its newest delivery satisfies `done` (the worker
/// records an answer just after the receiver has it), waiting at most 10 s.
async fn logged(app: &TestApp, slug: &str, owner: &str, endpoint: i64, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let log = deliveries(app, slug, owner, endpoint).await;
        if log.first().is_some_and(&done) || started.elapsed() > Duration::from_secs(10) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failed_delivery_is_retried_after_a_restart_and_arrives_signed() {
    let (url, seen) = receiver(1).await;
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let endpoint = create_endpoint(&app, &t.slug, &owner, &url, json!(["points.changed"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    let id = endpoint["id"].as_i64().unwrap();
    let (s, b) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/webhooks/{id}", t.slug), Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.get("secret").is_none(), "the secret is shown once: {b}");
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let stored: String = sqlx::query_scalar("SELECT secret_sealed FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(stored.starts_with("v1:") && !stored.contains(&secret[6..]), "sealed at rest: {stored}");
    drop(tx);

    let worker = tokio::spawn(deliverer(&app).run_forever(Duration::from_millis(100), Some(t.slug.clone())));
    let (member, _) = app.member(&t, &phone()).await;
    let h = vec![("authorization", format!("Bearer {owner}")), ("idempotency-key", unique("adj"))];
    let path = format!("/v1/tenants/{}/staff/members/{}/points/adjustments", t.slug, member["id"]);
    let (s, _, b) = app.call_full(Method::POST, &path, &h, Some(json!({"amount": 37, "reason": "goodwill"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // The first attempt gets a 500 and is logged with it (the worker records the answer
    // after the receiver has it: wait for the log before stopping the worker).
    let first = wait_for(&seen, 1, 10).await;
    let log = logged(&app, &t.slug, &owner, id, |d| d["attempts"] == 1).await;
    worker.abort();
    let _ = worker.await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "pending", "{log:?}");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status_code"], 500);
    assert_eq!(log[0]["response_excerpt"], "boom");

    // "Restart": a fresh server and worker on the same database pick the retry up.
    let app2 = TestApp::spawn_like(&app).await;
    drop(app);
    let worker = tokio::spawn(deliverer(&app2).run_forever(Duration::from_millis(100), Some(t.slug.clone())));
    let both = wait_for(&seen, 2, 20).await;
    logged(&app2, &t.slug, &owner, id, |d| d["status"] == "delivered").await;
    worker.abort();
    let (first, retry) = (&first[0], &both[1]);
    assert_eq!(first.id, retry.id, "a retry keeps its webhook-id");
    assert!(retry.id.starts_with("msg_"), "{}", retry.id);
    verify(&secret, first);
    verify(&secret, retry);
    let body: Value = serde_json::from_str(&retry.body).unwrap();
    assert_eq!(body["type"], "points.changed", "{body}");
    assert_eq!(body["data"]["amount"], 37, "{body}");
    assert_eq!(body["data"]["member_id"], member["id"], "{body}");
    assert_eq!(body["data"]["reason"], "adjust", "{body}");
    let log = deliveries(&app2, &t.slug, &owner, id).await;
    assert_eq!(log[0]["status"], "delivered", "{log:?}");
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["last_status_code"], 200);
    assert_eq!(log[0]["response_excerpt"], "thanks");
    assert!(log[0]["last_latency_ms"].as_i64().is_some(), "{log:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), 2, "delivered once after the retry");
}

#[tokio::test]
async fn two_workers_claim_each_delivery_once() {
    let (url, seen) = receiver(0).await;
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let id = create_endpoint(&app, &t.slug, &owner, &url, json!(["member.registered"])).await["id"].as_i64().unwrap();
    for _ in 0..30 {
        app.member(&t, &phone()).await;
    }
    let (a, b) = (deliverer(&app), deliverer(&app));
    let slug = t.slug.clone();
    let (ra, rb) = tokio::join!(a.pass(Some(&slug)), b.pass(Some(&slug)));
    assert_eq!(ra.unwrap() + rb.unwrap(), 30, "30 attempts between the two workers");
    let got = seen.lock().unwrap().clone();
    let mut ids: Vec<&str> = got.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (30, 30), "each event exactly once");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "member.registered");
    assert_eq!(body["data"]["source"], "sign_up", "{body}");
    let log = deliveries(&app, &t.slug, &owner, id).await;
    assert!(log.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{log:?}");
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_turned_off_and_the_owner_is_told() {
    let (url, seen) = receiver(usize::MAX).await;
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let id = create_endpoint(&app, &t.slug, &owner, &url, json!(["order.state_changed"])).await["id"].as_i64().unwrap();
    let base = format!("/v1/tenants/{}/staff", t.slug);
    let run = platform::limits::webhooks::FAILURE_RUN_MAX as usize;
    for _ in 0..run {
        let (s, b) = app.call(Method::POST, &format!("{base}/webhooks/{id}/test"), Some(&owner), None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        assert_eq!(b["event_type"], "webhook.test");
    }
    deliverer(&app).pass(Some(&t.slug)).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), run);
    let (_, e) = app.call(Method::GET, &format!("{base}/webhooks/{id}"), Some(&owner), None).await;
    assert_eq!(e["enabled"], false, "{e}");
    assert!(e["disabled_reason"].as_str().unwrap().contains("failed attempts"), "{e}");
    let (_, audit) = app.call(Method::GET, &format!("{base}/audit-log"), Some(&owner), None).await;
    assert!(audit.to_string().contains("webhook.disabled"), "{audit}");
    // Off: no test event, no replay, until the owner turns it on again.
    let log = deliveries(&app, &t.slug, &owner, id).await;
    let did = log[0]["id"].as_i64().unwrap();
    let (s, b) = app.call(Method::POST, &format!("{base}/webhook-deliveries/{did}/replay"), Some(&owner), None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("webhook_disabled")), "{b}");
    let (s, e) =
        app.call(Method::PATCH, &format!("{base}/webhooks/{id}"), Some(&owner), Some(json!({"enabled": true}))).await;
    assert_eq!((s, &e["enabled"], &e["failure_run"]), (StatusCode::OK, &json!(true), &json!(0)), "{e}");
    let (s, r) = app.call(Method::POST, &format!("{base}/webhook-deliveries/{did}/replay"), Some(&owner), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["replay_of"], did);
    assert_eq!(r["event_id"], log[0]["event_id"], "a replay keeps the event id");
}

#[tokio::test]
async fn endpoints_are_checked_bounded_and_for_the_owner() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let (_, operator) = app.staff(&t, "operator").await;
    let path = format!("/v1/tenants/{}/staff/webhooks", t.slug);
    let (s, _) = app.call(Method::GET, &path, Some(&operator), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({"url": "ftp://example.com/x", "event_types": ["points.changed"]}), "url"),
        (json!({"url": "https://user:pw@example.com/", "event_types": ["points.changed"]}), "url"),
        (json!({"url": "https://example.com/", "event_types": ["points.spent"]}), "event_types"),
        (json!({"url": "https://example.com/", "event_types": []}), "event_types"),
    ] {
        let (s, b) = app.call(Method::POST, &path, Some(&owner), Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["error"]["details"]["fields"][0]["field"], field, "{b}");
    }
    let max = platform::limits::webhooks::ENDPOINTS_PER_TENANT_MAX;
    for i in 0..max {
        let url = format!("https://hooks{i}.example.com/in");
        create_endpoint(&app, &t.slug, &owner, &url, json!(["settlement.closed", "budget.low"])).await;
    }
    let body = json!({"url": "https://one-more.example.com/", "event_types": ["points.changed"]});
    let (s, b) = app.call(Method::POST, &path, Some(&owner), Some(body)).await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("too_many_webhooks")), "{b}");
    let (_, list) = app.call(Method::GET, &path, Some(&owner), None).await;
    assert_eq!(list.as_array().unwrap().len() as i64, max);
    let first = list[0]["id"].as_i64().unwrap();
    let (s, r) = app.call(Method::POST, &format!("{path}/{first}/rotate-secret"), Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["secret"].as_str().unwrap().starts_with("whsec_"));
    let (s, _) = app.call(Method::DELETE, &format!("{path}/{first}"), Some(&owner), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.call(Method::GET, &format!("{path}/{first}"), Some(&owner), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_malls_own_changes_reach_its_endpoint() {
    let (url, seen) = receiver(0).await;
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let types = json!(["member.registered", "points.changed", "order.state_changed", "level.changed"]);
    create_endpoint(&app, &t.slug, &owner, &url, types).await;
    let base = format!("/v1/tenants/{}", t.slug);
    let levels = json!([{"name": "新人", "threshold": 0}, {"name": "达人", "threshold": 500}]);
    let (s, b) = app.call(Method::PUT, &format!("{base}/staff/levels"), Some(&owner), Some(levels)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let product = json!({"name": "咖啡券", "kind": "coupon", "points_price": 300, "stock": 10,
        "status": "listed", "review_state": "approved"});
    let (s, p) = app.call(Method::POST, &format!("{base}/staff/products"), Some(&owner), Some(product)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");

    let (m, tokens) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    app.credit(&t, &key, id, 1_000, None).await;
    let h = vec![("authorization", format!("Bearer {owner}")), ("idempotency-key", unique("adj"))];
    let adjust = json!({"currency": "exp", "amount": 600, "reason": "migration"});
    let (s, _, b) =
        app.call_full(Method::POST, &format!("{base}/staff/members/{id}/points/adjustments"), &h, Some(adjust)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let token = tokens["access_token"].as_str().unwrap();
    let h = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("r"))];
    let (s, _, order) =
        app.call_full(Method::POST, &format!("{base}/me/redemptions"), &h, Some(json!({"product_id": p["id"]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{order}");

    deliverer(&app).pass(Some(&t.slug)).await.unwrap();
    let bodies: Vec<Value> = seen.lock().unwrap().iter().map(|s| serde_json::from_str(&s.body).unwrap()).collect();
    let of = |ty: &str| bodies.iter().filter(|b| b["type"] == ty).map(|b| b["data"].clone()).collect::<Vec<_>>();
    let registered = of("member.registered");
    assert_eq!(registered.len(), 1, "{bodies:?}");
    assert_eq!((registered[0]["member_id"].as_i64(), registered[0]["source"].as_str()), (Some(id), Some("sign_up")));
    let amounts: Vec<(i64, String)> = of("points.changed")
        .iter()
        .filter(|d| d["currency"] == "points")
        .map(|d| (d["amount"].as_i64().unwrap(), d["reason"].as_str().unwrap().to_string()))
        .collect();
    assert!(amounts.contains(&(1_000, "earn".into())) && amounts.contains(&(-300, "spend".into())), "{amounts:?}");
    let level = of("level.changed");
    assert_eq!((level.len(), level[0]["to_name"].as_str()), (1, Some("达人")), "{level:?}");
    let orders = of("order.state_changed");
    assert!(!orders.is_empty(), "{bodies:?}");
    assert!(orders.iter().all(|o| o["order_no"] == order["order_no"]), "{orders:?}");
    assert!(orders[0]["from_status"].is_null(), "a new order's first state: {orders:?}");
}

#[tokio::test]
async fn an_expiry_reminder_fires_points_expiring_once() {
    let (url, seen) = receiver(0).await;
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    create_endpoint(&app, &t.slug, &owner, &url, json!(["points.expiring"])).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let soon = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    app.credit(&t, &key, id, 70, Some(soon)).await;
    let now = chrono::Utc::now();
    assert_eq!(platform::ledger::expiry::remind(&app.db, &t, now).await.unwrap(), 1);
    assert_eq!(platform::ledger::expiry::remind(&app.db, &t, now).await.unwrap(), 0, "a reminder once");
    deliverer(&app).pass(Some(&t.slug)).await.unwrap();
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "points.expiring");
    assert_eq!((body["data"]["member_id"].as_i64(), body["data"]["amount"].as_i64()), (Some(id), Some(70)), "{body}");
}

#[tokio::test]
async fn closing_a_settlement_period_sends_the_alliance_endpoint_a_signed_statement() {
    use crate::alliance::{SHARED, alliance, mall_in};
    let app = TestApp::spawn().await;
    let a = alliance(&app).await;
    let mall = mall_in(&app, &a.slug).await;
    let admin = crate::budgets::alliance_admin(&app, &a.slug).await;
    let base = format!("/v1/alliances/{}", a.slug);
    let (url, seen) = receiver(0).await;

    // An alliance's endpoint takes the alliance's events only.
    let bad = json!({"url": url, "event_types": ["order.state_changed"]});
    let (s, b) = app.call(Method::POST, &format!("{base}/webhooks"), Some(&admin), Some(bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let new = json!({"url": url, "event_types": ["settlement.closed", "points.changed"], "description": "treasury"});
    let (s, hook) = app.call(Method::POST, &format!("{base}/webhooks"), Some(&admin), Some(new.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let (id, secret) = (hook["id"].as_i64().unwrap(), hook["secret"].as_str().unwrap().to_string());
    let (s, list) = app.call(Method::GET, &format!("{base}/webhooks"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(!list.to_string().contains(&secret), "the secret is shown once");
    // Not the mall's endpoint: the mall's staff do not see it and cannot reach the alliance's.
    let (_, owner) = app.staff(&mall, "owner").await;
    let (s, mall_hooks) =
        app.call(Method::GET, &format!("/v1/tenants/{}/staff/webhooks", mall.slug), Some(&owner), None).await;
    assert_eq!((s, mall_hooks.as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{mall_hooks}");
    let (s, _) = app.call(Method::GET, &format!("{base}/webhooks/{id}"), Some(&owner), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let other = alliance(&app).await;
    let stranger = crate::budgets::alliance_admin(&app, &other.slug).await;
    let (s, _) = app.call(Method::GET, &format!("{base}/webhooks/{id}"), Some(&stranger), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) =
        app.call(Method::GET, &format!("/v1/alliances/{}/webhooks/{id}", other.slug), Some(&stranger), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another alliance's endpoint ids are not this one's");

    // Shared points issued today (a later period), then yesterday's period is closed.
    let (m, _) = app.proven_member(&mall, &phone()).await;
    let key = app.partner_key(&mall).await;
    let items = json!({"items": [{"member_id": m["id"], "amount": 30, "currency": SHARED}]});
    let (s, b) = app.partner_post(&mall, &key, "/points/credits", &unique("c"), items).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let tz = platform::localtime::parse("Asia/Shanghai").unwrap();
    let yesterday = platform::localtime::day(tz, chrono::Utc::now()).pred_opt().unwrap();
    let period = yesterday.format("%Y-%m-%d").to_string();
    let (s, st) = app.call(Method::POST, &format!("{base}/settlement/{period}/close"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::CREATED, "{st}");

    assert!(deliverer(&app).pass(Some(&a.slug)).await.unwrap() >= 2);
    let got = wait_for(&seen, 2, 10).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let bodies: Vec<Value> = got.iter().map(|g| serde_json::from_str(&g.body).unwrap()).collect();
    for g in &got {
        verify(&secret, g);
    }
    // The shared credit, as an entry of the alliance's ledger (no personal data).
    let changed = bodies.iter().find(|b| b["type"] == "points.changed").expect("points.changed");
    assert_eq!((&changed["data"]["currency"], &changed["data"]["amount"]), (&json!(SHARED), &json!(30)), "{changed}");
    let body = bodies.iter().find(|b| b["type"] == "settlement.closed").expect("settlement.closed");
    assert_eq!(body["data"]["period"], period.as_str());
    assert!(body["data"]["lines"].as_array().unwrap().iter().any(|l| l["mall"] == mall.slug.as_str()), "{body}");
    // The delivery log shows it delivered; a replay sends the same event again.
    let started = std::time::Instant::now();
    let log = loop {
        let (s, page) = app.call(Method::GET, &format!("{base}/webhooks/{id}/deliveries"), Some(&admin), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        if items.iter().all(|d| d["status"] == "delivered") || started.elapsed() > Duration::from_secs(10) {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Newest first: the settlement, then the credit.
    assert_eq!(
        (log.len(), &log[0]["status"], &log[0]["event_type"]),
        (2, &json!("delivered"), &json!("settlement.closed"))
    );
    let did = log[0]["id"].as_i64().unwrap();
    let (s, r) = app.call(Method::POST, &format!("{base}/webhook-deliveries/{did}/replay"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    deliverer(&app).pass(Some(&a.slug)).await.unwrap();
    let again = wait_for(&seen, 3, 10).await;
    let first = got.iter().zip(&bodies).find(|(_, b)| b["type"] == "settlement.closed").unwrap().0;
    assert_eq!(again[2].id, first.id, "a replay keeps the webhook-id");
    verify(&secret, &again[2]);
}
