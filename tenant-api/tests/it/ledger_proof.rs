//! The ledger under fire: concurrent earn/spend/transfer, concurrent duplicates of one
//! Idempotency-Key, and tamper detection.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, phone, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_clients_keep_every_balance_exact() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let mut members = vec![];
    for _ in 0..4 {
        let p = phone();
        let (m, tokens) = app.member(&t, &p).await;
        members.push((m["id"].as_i64().unwrap(), p, tokens["access_token"].as_str().unwrap().to_string()));
    }
    for (id, _, _) in &members {
        // Mixed expiries, so debits draw on several lots.
        app.credit(&t, &key, *id, 500, Some((chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339())).await;
        app.credit(&t, &key, *id, 500, None).await;
    }
    let credited = Arc::new(AtomicI64::new(4 * 1000));
    let debited = Arc::new(AtomicI64::new(0));
    let ops = Arc::new(AtomicI64::new(0));
    let refused = Arc::new(AtomicI64::new(0));
    // At least 4 s and at least 250 operations: a busy machine runs longer rather than
    // racing less (the race is the point, not the rate; the benchmarks measure rates).
    let started = Instant::now();
    let (least, most) = (started + Duration::from_secs(4), started + Duration::from_secs(90));
    let members = Arc::new(members);
    let mut tasks = vec![];
    for _ in 0..50 {
        let (app, t, key, members) = (app.clone(), t.clone(), key.clone(), members.clone());
        let (credited, debited, ops, refused) = (credited.clone(), debited.clone(), ops.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < most && (Instant::now() < least || ops.load(Ordering::Relaxed) < 250) {
                let (i, j, amount, op) = {
                    let mut r = rand::rng();
                    (
                        r.random_range(0..4usize),
                        r.random_range(0..4usize),
                        r.random_range(1..=120i64),
                        r.random_range(0..3u8),
                    )
                };
                let (id, _, token) = &members[i];
                match op {
                    0 => {
                        // A batch of 1-6 credits to members in any order, some twice:
                        // concurrent batches lock accounts in one order and never deadlock.
                        let items: Vec<(i64, i64)> = {
                            let mut r = rand::rng();
                            (0..r.random_range(1..=6))
                                .map(|_| (members[r.random_range(0..4usize)].0, r.random_range(1..=120i64)))
                                .collect()
                        };
                        let body: Vec<_> = items.iter().map(|(m, a)| json!({"member_id": m, "amount": a})).collect();
                        let (s, b) =
                            app.partner_post(&t, &key, "/points/credits", &unique("k"), json!({ "items": body })).await;
                        assert_eq!(s, StatusCode::CREATED, "{b}");
                        assert_eq!(b["entries"].as_array().map(Vec::len), Some(items.len()), "{b}");
                        credited.fetch_add(items.iter().map(|i| i.1).sum::<i64>(), Ordering::Relaxed);
                    }
                    1 => {
                        let (s, b) = app
                            .partner_post(
                                &t,
                                &key,
                                "/points/debits",
                                &unique("k"),
                                json!({"member_id": id, "amount": amount}),
                            )
                            .await;
                        match s {
                            StatusCode::CREATED => {
                                debited.fetch_add(amount, Ordering::Relaxed);
                            }
                            StatusCode::CONFLICT => {
                                assert_eq!(b["error"]["code"], "insufficient_points", "{b}");
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("debit: {other} {b}"),
                        }
                    }
                    _ => {
                        if i == j {
                            continue;
                        }
                        let to = &members[j].1;
                        let headers =
                            vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("k"))];
                        let (s, _, b) = app
                            .call_full(
                                Method::POST,
                                &format!("/v1/tenants/{}/me/points/transfers", t.slug),
                                &headers,
                                Some(json!({"to": to, "amount": amount})),
                            )
                            .await;
                        match s {
                            StatusCode::CREATED => {}
                            StatusCode::CONFLICT => {
                                assert_eq!(b["error"]["code"], "insufficient_points", "{b}");
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("transfer: {other} {b}"),
                        }
                    }
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let n = ops.load(Ordering::Relaxed);
    eprintln!(
        "{n} operations in {:.1} s, {} refused for lack of points",
        started.elapsed().as_secs_f64(),
        refused.load(Ordering::Relaxed)
    );
    assert!(n >= 250, "only {n} operations ran in 90 s");
    assert!(refused.load(Ordering::Relaxed) > 0 || debited.load(Ordering::Relaxed) > 0);
    let mut total = 0;
    for (id, _, _) in members.iter() {
        let b = app.balance(&t, &key, *id, "points").await;
        assert!(b >= 0);
        total += b;
    }
    // Nothing created or lost: transfers move points, credits and debits are exact.
    assert_eq!(total, credited.load(Ordering::Relaxed) - debited.load(Ordering::Relaxed));
    let report = app.assert_ledger_sound(&t).await;
    assert!(report.entries as i64 >= ops.load(Ordering::Relaxed) - refused.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_of_one_key_credit_once() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    let idem = unique("dup");
    let body = json!({"items": [{"member_id": id, "amount": 77, "reference": "receipt-1"}]});
    let mut tasks = vec![];
    for _ in 0..20 {
        let (app, t, key, idem, body) = (app.clone(), t.clone(), key.clone(), idem.clone(), body.clone());
        tasks.push(tokio::spawn(async move { app.partner_post(&t, &key, "/points/credits", &idem, body).await }));
    }
    let mut ids = vec![];
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["entries"][0]["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every replay returns the first result");
    assert_eq!(app.balance(&t, &key, id, "points").await, 77);
    let (status, _, entries) = app
        .call_full(
            Method::GET,
            &format!("/v1/tenants/{}/staff/members/{id}/points/entries", t.slug),
            &[("authorization", format!("Bearer {}", app.staff(&t, "auditor").await.1))],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entries["items"].as_array().unwrap().len(), 1, "exactly one entry");

    // The same key with another body is refused; no key at all is refused.
    let (status, b) =
        app.partner_post(&t, &key, "/points/credits", &idem, json!({"items": [{"member_id": id, "amount": 78}]})).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused"))
    );
    let (status, _, b) = app
        .call_full(
            Method::POST,
            &format!("/v1/tenants/{}/partner/points/credits", t.slug),
            &[("x-api-key", key.clone())],
            Some(json!({"items": [{"member_id": id, "amount": 1}]})),
        )
        .await;
    assert_eq!((status, b["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("idempotency_key_required")));
    // A batch naming an unknown member writes nothing and says which member.
    let (status, b) = app
        .partner_post(
            &t,
            &key,
            "/points/credits",
            &unique("k"),
            json!({"items": [{"member_id": id, "amount": 5}, {"member_id": 987654321, "amount": 5}]}),
        )
        .await;
    assert_eq!((status, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("member_not_found")), "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("987654321"), "{b}");
    assert_eq!(app.balance(&t, &key, id, "points").await, 77);
    // A failed request does not burn its key: after fixing the cause it goes through.
    let fresh = unique("k");
    let (status, _) =
        app.partner_post(&t, &key, "/points/debits", &fresh, json!({"member_id": id, "amount": 1000})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    app.credit(&t, &key, id, 1000, None).await;
    let (status, b) =
        app.partner_post(&t, &key, "/points/debits", &fresh, json!({"member_id": id, "amount": 1000})).await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn verify_catches_an_edited_row_and_the_cli_exits_non_zero() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    let id = m["id"].as_i64().unwrap();
    for n in [100, 200, 300] {
        app.credit(&t, &key, id, n, None).await;
    }
    let (s, _) =
        app.partner_post(&t, &key, "/points/debits", &unique("k"), json!({"member_id": id, "amount": 250})).await;
    assert_eq!(s, StatusCode::CREATED);
    app.assert_ledger_sound(&t).await;
    let cli = |slug: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pointsmall"))
            .args(["ledger", "verify", "--tenant", slug])
            .env("DATABASE_URL", crate::common::database_url())
            .output()
            .unwrap()
    };
    let ok = cli(&t.slug);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("; 0 with problems"));

    // Someone edits an entry's amount (and the account to match) directly in SQL.
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    sqlx::query("UPDATE entries SET amount = 1100, balance_after = 1100 WHERE member_id = $1 AND seq = 1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let t2 = platform::directory::find_by_slug(app.db.control(), &t.slug).await.unwrap().unwrap();
    let report = platform::ledger::verify::verify_tenant(&app.db, &t2).await.unwrap();
    assert!(report.problems.iter().any(|p| p.contains("hash does not match")), "{:#?}", report.problems);
    let bad = cli(&t.slug);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hash does not match"));

    // Deleting the newest entry is caught too (the chain head no longer matches).
    let t3 = app.tenant().await;
    let key3 = app.partner_key(&t3).await;
    let (m3, _) = app.member(&t3, &phone()).await;
    let id3 = m3["id"].as_i64().unwrap();
    app.credit(&t3, &key3, id3, 10, None).await;
    let e = app.credit(&t3, &key3, id3, 20, None).await;
    let mut tx = app.db.tenant_tx(&t3.cluster, &t3.schema_name).await.unwrap();
    sqlx::query("DELETE FROM lots WHERE entry_id = $1")
        .bind(e["id"].as_i64().unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM entries WHERE id = $1").bind(e["id"].as_i64().unwrap()).execute(&mut *tx).await.unwrap();
    sqlx::query("UPDATE accounts SET balance = 10 WHERE member_id = $1").bind(id3).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let t3 = platform::directory::find_by_slug(app.db.control(), &t3.slug).await.unwrap().unwrap();
    let report = platform::ledger::verify::verify_tenant(&app.db, &t3).await.unwrap();
    assert!(report.problems.iter().any(|p| p.contains("chain head")), "{:#?}", report.problems);
}

#[tokio::test]
async fn balances_can_never_go_negative_even_in_sql() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let (m, _) = app.member(&t, &phone()).await;
    app.credit(&t, &key, m["id"].as_i64().unwrap(), 5, None).await;
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let err = sqlx::query("UPDATE accounts SET balance = balance - 6").execute(&mut *tx).await.unwrap_err();
    assert!(err.to_string().contains("check constraint"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_in_any_member_order_never_deadlock() {
    let app = Arc::new(TestApp::spawn().await);
    let t = app.tenant().await;
    let key = app.partner_key(&t).await;
    let mut ids = vec![];
    for _ in 0..12 {
        ids.push(app.member(&t, &phone()).await.0["id"].as_i64().unwrap());
    }
    // Batches in any order over both currencies, while first credits create accounts:
    // creating and locking accounts must not deadlock either.
    let expected = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<(i64, &str), i64>::new()));
    let mut tasks = vec![];
    for _ in 0..8 {
        let (app, t, key, ids, expected) = (app.clone(), t.clone(), key.clone(), ids.clone(), expected.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let picks: Vec<(i64, &str, i64)> = {
                    let mut r = rand::rng();
                    (0..6)
                        .map(|_| {
                            let currency = if r.random_bool(0.5) { "points" } else { "exp" };
                            (ids[r.random_range(0..ids.len())], currency, r.random_range(1..=9i64))
                        })
                        .collect()
                };
                let items: Vec<_> =
                    picks.iter().map(|(m, c, a)| json!({"member_id": m, "currency": c, "amount": a})).collect();
                let (s, b) = app.partner_post(&t, &key, "/points/credits", &unique("k"), json!({"items": items})).await;
                assert_eq!(s, StatusCode::CREATED, "{b}");
                let mut e = expected.lock().unwrap();
                for (m, c, a) in picks {
                    *e.entry((m, c)).or_default() += a;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let expected = expected.lock().unwrap().clone();
    for id in &ids {
        for currency in ["points", "exp"] {
            let Some(&want) = expected.get(&(*id, currency)) else { continue };
            assert_eq!(app.balance(&t, &key, *id, currency).await, want, "member {id} {currency}");
        }
    }
    app.assert_ledger_sound(&t).await;
}
