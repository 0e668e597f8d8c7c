//! Issue 13 point 8: analytics (SPEC B7). Every expected figure is computed here from
//! what the test did (who registered on which local day, who was active when, who viewed,
//! searched and redeemed what, which lots a spend drew on), not read back from the
//! tables the server keeps: retention by registration week across Beijing's midnight
//! (16:00 UTC), conversion per product, points velocity (with a refund), search terms
//! with one that found nothing, a member's browse record (order and bounds), tenant
//! isolation and who may read it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use platform::audit::Actor;
use platform::directory::Tenant;
use platform::points::{self, Credit, Debit};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, unique};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The local day of `at` in Beijing (UTC+8, no daylight saving): computed by hand.
fn beijing_day(at: DateTime<Utc>) -> NaiveDate {
    (at + Duration::hours(8)).date_naive()
}

/// Members made directly, registered at the given instants; returns their ids.
async fn members_at(app: &TestApp, t: &Tenant, at: &[DateTime<Utc>]) -> Vec<i64> {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let mut ids = vec![];
    for when in at {
        let tag = unique("m");
        let id: i64 =
            sqlx::query_scalar("INSERT INTO members (email, invite_code, created_at) VALUES ($1, $2, $3) RETURNING id")
                .bind(format!("{tag}@analytics.test"))
                .bind(tag)
                .bind(when)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn credit_at(app: &TestApp, t: &Tenant, member_id: i64, amount: i64, at: DateTime<Utc>) {
    let c = Credit {
        member_id,
        amount,
        currency: "points".into(),
        memo: String::new(),
        reference: String::new(),
        expires_at: None,
    };
    app.db.write(t, &Actor::system("test"), async |tx| points::credit_batch(tx, vec![c], at).await).await.unwrap();
}

async fn spend_at(app: &TestApp, t: &Tenant, member_id: i64, amount: i64, at: DateTime<Utc>) {
    let d = Debit { member_id, amount, currency: "points".into(), memo: String::new(), reference: String::new() };
    app.db.write(t, &Actor::system("test"), async |tx| points::debit(tx, d, at).await).await.unwrap();
}

async fn get(app: &TestApp, t: &Tenant, token: &str, path: &str) -> (StatusCode, Value) {
    app.call(Method::GET, &format!("/v1/tenants/{}/staff/{path}", t.slug), Some(token), None).await
}

async fn ok(app: &TestApp, t: &Tenant, token: &str, path: &str) -> Value {
    let (s, b) = get(app, t, token, path).await;
    assert_eq!(s, StatusCode::OK, "{path}: {b}");
    b
}

/// Retention as the spec defines it, from the registrations and activity the test made:
/// per Monday, (members, [(measured, retained) for day 1, 7, 30]).
fn expected_retention(
    joined: &[(i64, NaiveDate)],
    active: &BTreeSet<(i64, NaiveDate)>,
    today: NaiveDate,
) -> BTreeMap<NaiveDate, (i64, Vec<(i64, i64)>)> {
    let mut out: BTreeMap<NaiveDate, (i64, Vec<(i64, i64)>)> = BTreeMap::new();
    for (member, d) in joined {
        let monday = *d - Duration::days(i64::from(chrono::Datelike::weekday(d).num_days_from_monday()));
        let e = out.entry(monday).or_insert((0, vec![(0, 0); 3]));
        e.0 += 1;
        for (i, n) in [1, 7, 30].iter().enumerate() {
            let on = *d + Duration::days(*n);
            if on < today {
                e.1[i].0 += 1;
                e.1[i].1 += i64::from(active.contains(&(*member, on)));
            }
        }
    }
    out
}

fn cohorts_of(r: &Value) -> BTreeMap<NaiveDate, (i64, Vec<(i64, i64)>)> {
    r["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["members"].as_i64().unwrap() > 0)
        .map(|c| {
            let days = c["retained"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (d["measured"].as_i64().unwrap(), d["retained"].as_i64().unwrap()))
                .collect();
            (day(c["week"].as_str().unwrap()), (c["members"].as_i64().unwrap(), days))
        })
        .collect()
}

#[tokio::test]
async fn retention_counts_registration_weeks_and_active_days_of_beijing() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    // Sunday 9 August 2026, 23:59:59 in Beijing (15:59:59 UTC) and Monday 00:00:00 one
    // second later: two weeks. A third member registers on Wednesday the 12th.
    let joins = [utc("2026-08-09T15:59:59Z"), utc("2026-08-09T16:00:00Z"), utc("2026-08-12T03:00:00Z")];
    let ids = members_at(&app, &t, &joins).await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    // What each does (earning and spending make a member active; the instants are chosen
    // around local midnights).
    let acts: Vec<(i64, DateTime<Utc>, i64)> = vec![
        (a, utc("2026-08-09T16:00:30Z"), 100),  // a: Monday 10th, 00:00:30 local: its day 1
        (a, utc("2026-08-16T16:00:00Z"), 100),  // a: 17th: day 8 (not 7)
        (b, utc("2026-08-16T16:00:00Z"), 100),  // b: 17th: its day 7
        (a, utc("2026-09-08T15:59:00Z"), 100),  // a: 8 September 23:59 local: day 30
        (c, utc("2026-08-12T03:30:00Z"), 500),  // c: its day 0
        (c, utc("2026-08-13T02:00:00Z"), -200), // c: spends on the 13th: day 1
        (b, utc("2026-09-09T16:10:00Z"), 100),  // b: 10 September local: day 31 (not 30)
    ];
    let mut active = BTreeSet::new();
    for (m, at, amount) in &acts {
        if *amount > 0 {
            credit_at(&app, &t, *m, *amount, *at).await;
        } else {
            spend_at(&app, &t, *m, -amount, *at).await;
        }
        active.insert((*m, beijing_day(*at)));
    }
    let joined: Vec<(i64, NaiveDate)> = ids.iter().zip(joins).map(|(m, at)| (*m, beijing_day(at))).collect();
    let today = beijing_day(Utc::now());
    let want = expected_retention(&joined, &active, today);
    assert_eq!(want.len(), 2, "Sunday 23:59:59 and Monday 00:00 are two cohorts");

    let r = ok(&app, &t, &owner, "analytics/retention?weeks=2&to=2026-08-16").await;
    assert_eq!((r["from"].as_str(), r["to"].as_str()), (Some("2026-08-03"), Some("2026-08-16")), "{r}");
    assert_eq!(r["time_zone"], "Asia/Shanghai");
    assert_eq!(r["cohorts"].as_array().unwrap().len(), 2);
    assert_eq!(cohorts_of(&r), want, "{r:#}");
    // Spelled out: the first week's one member was back on day 1 and day 30; of the
    // second's two, one on day 1 (c) and one on day 7 (b).
    let first = &r["cohorts"][0]["retained"];
    assert_eq!((first[0]["retained"].as_i64(), first[0]["rate_per_mille"].as_i64()), (Some(1), Some(1000)));
    assert_eq!((first[1]["retained"].as_i64(), first[2]["retained"].as_i64()), (Some(0), Some(1)));
    let second = &r["cohorts"][1]["retained"];
    assert_eq!((second[0]["retained"].as_i64(), second[0]["rate_per_mille"].as_i64()), (Some(1), Some(500)));

    // A member who registers now (through the API) joins this week's cohort, with no day
    // ended yet: counted as a member, measured on no day.
    let (m, _) = app.member(&t, &crate::common::phone()).await;
    assert!(m["id"].as_i64().is_some());
    let now = ok(&app, &t, &owner, "analytics/retention").await;
    let cohorts = now["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len() as i64, platform::analytics::bounds::COHORT_WEEKS_DEFAULT);
    let this_week = cohorts.last().unwrap();
    assert_eq!(this_week["members"], 1, "{this_week}");
    assert!(this_week["retained"].as_array().unwrap().iter().all(|d| d["measured"] == 0), "{this_week}");

    // Bounded: 27 weeks is too long, in both languages; 0 is not a number of weeks.
    let path = format!("/v1/tenants/{}/staff/analytics/retention?weeks=27", t.slug);
    for (lang, start) in [("en", "weeks: 1 to 26"), ("zh-CN", "时间段过长")] {
        let headers = [("accept-language", lang.to_string()), ("authorization", format!("Bearer {owner}"))];
        let (s, _, b) = app.call_full(Method::GET, &path, &headers, None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("period_too_long")),
            "{b}"
        );
        assert!(b["error"]["message"].as_str().unwrap().starts_with(start), "{lang}: {b}");
        assert_eq!(b["error"]["details"]["fields"][0]["field"], "weeks", "{b}");
    }
    let (s, b) = get(&app, &t, &owner, "analytics/retention?weeks=0").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
}

/// FIFO lots as the ledger draws them (no expiry: the oldest first), the ages in local
/// days of every point spent: (age, points).
fn fifo_ages(moves: &[(DateTime<Utc>, i64)]) -> Vec<(i64, i64)> {
    let mut lots: Vec<(NaiveDate, i64)> = vec![];
    let mut ages = vec![];
    for (at, amount) in moves {
        if *amount > 0 {
            lots.push((beijing_day(*at), *amount));
            continue;
        }
        let mut left = -amount;
        for lot in lots.iter_mut() {
            let take = lot.1.min(left);
            if take > 0 {
                ages.push(((beijing_day(*at) - lot.0).num_days(), take));
                lot.1 -= take;
                left -= take;
            }
        }
    }
    ages
}

/// The points-weighted quantile `num/den` of (age, points), as a merchant would count it:
/// sort every point by age and take the one at that rank.
fn quantile(ages: &[(i64, i64)], num: i64, den: i64) -> i64 {
    let mut points: Vec<i64> = ages.iter().flat_map(|(a, p)| std::iter::repeat_n(*a, *p as usize)).collect();
    points.sort();
    let rank = ((points.len() as i64 * num + den - 1) / den).max(1);
    points[(rank - 1) as usize]
}

#[tokio::test]
async fn velocity_is_the_points_weighted_age_of_what_was_spent() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let ids = members_at(&app, &t, &[utc("2026-07-01T00:00:00Z"); 3]).await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    // a earns three lots, the second at 23:59:59 local on the 5th, the third a second
    // later (the 6th), and spends twice; b earns and spends on one day.
    let a_moves = [
        (utc("2026-08-01T10:00:00Z"), 100),
        (utc("2026-08-05T15:59:59Z"), 300),
        (utc("2026-08-05T16:00:00Z"), 50),
        (utc("2026-08-10T04:00:00Z"), -150),
        (utc("2026-08-20T04:00:00Z"), -300),
    ];
    let b_moves = [(utc("2026-08-21T01:00:00Z"), 80), (utc("2026-08-21T15:00:00Z"), -60)];
    for (m, moves) in [(a, &a_moves[..]), (b, &b_moves[..])] {
        for (at, amount) in moves {
            if *amount > 0 {
                credit_at(&app, &t, m, *amount, *at).await;
            } else {
                spend_at(&app, &t, m, -amount, *at).await;
            }
        }
    }
    let mut ages = fifo_ages(&a_moves);
    ages.extend(fifo_ages(&b_moves));
    let total: i64 = ages.iter().map(|a| a.1).sum();
    let mean = ages.iter().map(|(a, p)| a * p).sum::<i64>() as f64 / total as f64;

    let check = |v: &Value| {
        let cur = v["currencies"].as_array().unwrap();
        assert_eq!(cur.len(), 1, "{v}");
        let p = &cur[0];
        assert_eq!(p["currency"], "points");
        assert_eq!(p["points_spent"].as_i64(), Some(total), "{v}");
        let got = ["median_days", "p25_days", "p75_days"].map(|k| p[k].as_i64().unwrap());
        assert_eq!(got, [quantile(&ages, 1, 2), quantile(&ages, 1, 4), quantile(&ages, 3, 4)], "{v}");
        assert!((p["mean_days"].as_f64().unwrap() - mean).abs() < 0.051, "{v} vs {mean}");
        let bands: i64 = p["bands"].as_array().unwrap().iter().map(|b| b["points"].as_i64().unwrap()).sum();
        assert_eq!(bands, total);
    };
    let v = ok(&app, &t, &owner, "analytics/velocity?days=31&to=2026-08-31").await;
    check(&v);
    // Spelled out: 510 points; by age 0 (60), 5 (50), 9 (100), 14 (50), 15 (250).
    assert_eq!((total, v["currencies"][0]["median_days"].as_i64()), (510, Some(14)), "{v}");
    // Only the period's spending: the 20th alone is 250 points at 15 days and 50 at 14.
    let one = ok(&app, &t, &owner, "analytics/velocity?days=1&to=2026-08-20").await;
    assert_eq!(one["currencies"][0]["points_spent"], 300);
    assert_eq!(one["currencies"][0]["median_days"], 15);

    // Folding the rows (the jobs) changes nothing; neither does rebuilding them from the
    // allocations as the migration does for a mall that existed before it.
    app.jobs(&t, Utc::now()).await;
    check(&ok(&app, &t, &owner, "analytics/velocity?days=31&to=2026-08-31").await);
    let migration = migrations::TENANT.iter().find(|m| m.name.ends_with("_analytics")).unwrap().sql;
    let backfill = &migration[migration.find("-- What the mall already spent").unwrap()..];
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    sqlx::raw_sql("TRUNCATE spend_ages").execute(&mut *tx).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(backfill)).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    check(&ok(&app, &t, &owner, "analytics/velocity?days=31&to=2026-08-31").await);

    // Today: a redemption refunded gives its points back, so only the kept one counts.
    let key = app.partner_key(&t).await;
    app.credit(&t, &key, c, 1000, None).await;
    let mug = product(&app, &t, &owner, "Mug", 100).await;
    let token = crate::mall::member_token(&app, &t, c).await;
    redeem(&app, &t, &token, &mug).await;
    let gone = redeem(&app, &t, &token, &mug).await;
    let (s, r) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/{}/refund", t.slug, gone["id"]),
            Some(&owner),
            Some(json!({"note": "velocity test"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let today = ok(&app, &t, &owner, "analytics/velocity?days=1").await;
    let p = &today["currencies"][0];
    assert_eq!((p["points_spent"].as_i64(), p["median_days"].as_i64()), (Some(100), Some(0)), "{today}");
    let (s, b) = get(&app, &t, &owner, "analytics/velocity?days=93").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("period_too_long")), "{b}");
    app.assert_ledger_sound(&t).await;
}

async fn product(app: &TestApp, t: &Tenant, owner: &str, name: &str, price: i64) -> Value {
    let body = json!({"name": name, "kind": "coupon", "points_price": price, "stock": 100, "status": "listed",
                      "review_state": "approved"});
    let (s, p) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/products", t.slug), Some(owner), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    p["id"].clone()
}

async fn redeem(app: &TestApp, t: &Tenant, token: &str, product: &Value) -> Value {
    let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("r"))];
    let body = json!({"product_id": product, "quantity": 1});
    let (s, _, b) =
        app.call_full(Method::POST, &format!("/v1/tenants/{}/me/redemptions", t.slug), &headers, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

async fn view(app: &TestApp, t: &Tenant, token: Option<&str>, product: &Value) {
    let (s, b) = app.call(Method::GET, &format!("/v1/tenants/{}/products/{product}", t.slug), token, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn search(app: &TestApp, t: &Tenant, token: Option<&str>, query: &str) -> usize {
    let (s, b) = app.call(Method::GET, &format!("/v1/tenants/{}/products?{query}", t.slug), token, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"].as_array().unwrap().len()
}

/// Reads `path` until `done` holds (the views are written about once a second).
async fn eventually(app: &TestApp, t: &Tenant, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..60 {
        last = ok(app, t, token, path).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{path} never settled: {last:#}");
}

#[tokio::test]
async fn conversion_searches_and_browse_records_come_from_the_member_api() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let ids = members_at(&app, &t, &[Utc::now(); 3]).await;
    let mut tokens = vec![];
    for id in &ids {
        app.credit(&t, &key, *id, 1000, None).await;
        tokens.push(crate::mall::member_token(&app, &t, *id).await);
    }
    let names = ["Mug", "Tea", "Pen"];
    let mut products = vec![];
    for (i, n) in names.iter().enumerate() {
        products.push(product(&app, &t, &owner, n, 10 * (i as i64 + 1)).await);
    }
    // (member index or anonymous, product index, redeem?) in order.
    let script: [(Option<usize>, usize, bool); 9] = [
        (Some(0), 0, false),
        (Some(0), 0, false),
        (Some(0), 1, false),
        (Some(1), 0, false),
        (None, 2, false),
        (Some(2), 1, false),
        (Some(0), 0, true), // viewed it first: converted
        (Some(2), 0, true), // never viewed the mug: an order, not a conversion
        (Some(2), 1, true), // viewed the tea: converted
    ];
    // Expected per product: views, viewers, converted, orders.
    let mut want: HashMap<usize, (i64, BTreeSet<usize>, BTreeSet<usize>, i64)> = HashMap::new();
    for (who, p, redeems) in script {
        let e = want.entry(p).or_default();
        if redeems {
            let m = who.unwrap();
            redeem(&app, &t, &tokens[m], &products[p]).await;
            e.3 += 1;
            if e.1.contains(&m) {
                e.2.insert(m);
            }
        } else {
            view(&app, &t, who.map(|m| tokens[m].as_str()), &products[p]).await;
            e.0 += 1;
            if let Some(m) = who {
                e.1.insert(m);
            }
        }
    }
    // Searches: the same term spelled two ways, one that finds nothing (twice: its
    // second page is a search too, but says nothing about results).
    let searches: [(Option<usize>, &str, bool); 4] = [
        (Some(0), "q=mug", true),
        (None, "q=MUG", true),
        (Some(1), "q=unicorn", false),
        (None, "q=unicorn&limit=1&cursor=b2Zmc2V0OjE", false),
    ];
    let mut terms: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (who, query, finds) in searches {
        let n = search(&app, &t, who.map(|m| tokens[m].as_str()), query).await;
        assert_eq!(n > 0, finds, "{query}");
        let term = if query.contains("unicorn") { "unicorn" } else { "mug" };
        let first_page = !query.contains("cursor");
        let e = terms.entry(term).or_default();
        e.0 += 1;
        e.1 += i64::from(first_page && n == 0);
    }

    let total_views: i64 = want.values().map(|w| w.0).sum();
    let c = eventually(&app, &t, &owner, "analytics/conversion?days=1", |c| {
        c["products"].as_array().unwrap().iter().map(|p| p["views"].as_i64().unwrap()).sum::<i64>() == total_views
            && c["products"].as_array().unwrap().iter().map(|p| p["viewers"].as_i64().unwrap()).sum::<i64>() == 4
    })
    .await;
    assert_eq!(c["products_total"], 3);
    for (i, p) in products.iter().enumerate() {
        let row = c["products"].as_array().unwrap().iter().find(|r| r["product_id"] == *p).unwrap();
        let w = &want[&i];
        let got = ["views", "viewers", "converted", "orders", "units"].map(|k| row[k].as_i64().unwrap());
        assert_eq!(got, [w.0, w.1.len() as i64, w.2.len() as i64, w.3, w.3], "{}: {row}", names[i]);
        let rate = if w.1.is_empty() { 0 } else { (w.2.len() as i64 * 1000 + w.1.len() as i64 / 2) / w.1.len() as i64 };
        assert_eq!(row["conversion_per_mille"].as_i64(), Some(rate), "{row}");
        assert_eq!(row["name"], names[i]);
    }
    // Most viewed first.
    assert_eq!(c["products"][0]["product_id"], products[0]);

    let s = eventually(&app, &t, &owner, "analytics/searches?days=1", |s| s["searches"] == 4).await;
    let top: Vec<(String, i64, i64)> = s["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["term"].as_str().unwrap().to_string(),
                r["searches"].as_i64().unwrap(),
                r["without_result"].as_i64().unwrap(),
            )
        })
        .collect();
    let want_top: Vec<(String, i64, i64)> = terms.iter().map(|(k, v)| (k.to_string(), v.0, v.1)).collect();
    assert_eq!(top, want_top, "{s:#}");
    let none: Vec<&str> = s["no_result"].as_array().unwrap().iter().map(|r| r["term"].as_str().unwrap()).collect();
    assert_eq!(none, ["unicorn"]);
    assert_eq!((s["without_result"].as_i64(), s["terms"].as_i64()), (Some(1), Some(2)));

    // Member 0's browse record: the tea (viewed last), then the mug (twice).
    let rec = ok(&app, &t, &owner, &format!("members/{}/browse-record", ids[0])).await;
    let seen: Vec<(Value, i64)> = rec["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["product_id"].clone(), p["views"].as_i64().unwrap()))
        .collect();
    assert_eq!(seen, [(products[1].clone(), 1), (products[0].clone(), 2)], "{rec}");
    assert_eq!(rec["products"][0]["name"], "Tea");
    browse_record_bounds(&app, &t, &owner, ids[1], &tokens[1]).await;
    isolation_and_permissions(&app, &t, &owner, ids[0]).await;
}

/// The record keeps the 200 most recent products and nothing older than 90 days.
async fn browse_record_bounds(app: &TestApp, t: &Tenant, owner: &str, member: i64, token: &str) {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let extra: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO products (name, kind, points_price, stock, status, review_state) \
         SELECT 'Item ' || g, 'coupon', 1, 1, 'listed', 'approved' FROM generate_series(1, 205) g RETURNING id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    // A view 91 days ago (as if written then) of a product viewed nowhere else.
    sqlx::query("INSERT INTO browse_records (member_id, product_id, viewed_at, views) VALUES ($1, $2, $3, 1)")
        .bind(member)
        .bind(extra[204])
        .bind(Utc::now() - Duration::days(91))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for id in &extra[..204] {
        view(app, t, Some(token), &json!(id)).await;
    }
    let path = format!("members/{member}/browse-record");
    let rec = eventually(app, t, owner, &path, |r| r["products"][0]["product_id"] == json!(extra[203])).await;
    let got: Vec<i64> = rec["products"].as_array().unwrap().iter().map(|p| p["product_id"].as_i64().unwrap()).collect();
    // The newest 200 of the 204 just viewed, newest first; the mug seen before them and
    // the 91-day-old view are not shown.
    let want: Vec<i64> = extra[4..204].iter().rev().copied().collect();
    assert_eq!(got, want);
    assert_eq!((rec["kept_products"].as_i64(), rec["kept_days"].as_i64()), (Some(200), Some(90)));
    // The jobs forget the old view; the trim already dropped the rows past 200.
    app.jobs(t, Utc::now()).await;
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM browse_records WHERE member_id = $1")
        .bind(member)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(kept, 200);
    let (s, b) = get(app, t, owner, "members/999999999/browse-record").await;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("member_not_found")));
}

async fn isolation_and_permissions(app: &TestApp, t: &Tenant, owner: &str, member: i64) {
    let paths = [
        "analytics/retention".to_string(),
        "analytics/conversion".to_string(),
        "analytics/velocity".to_string(),
        "analytics/searches".to_string(),
        format!("members/{member}/browse-record"),
    ];
    for (role, want) in [
        ("finance", StatusCode::OK),
        ("auditor", StatusCode::OK),
        ("operator", StatusCode::OK),
        ("customer_service", StatusCode::FORBIDDEN),
    ] {
        let (_, token) = app.staff(t, role).await;
        for p in &paths {
            let (s, b) = get(app, t, &token, p).await;
            assert_eq!(s, want, "{role} {p}: {b}");
        }
    }
    // Another mall sees none of this one's figures, and its staff cannot read this one's.
    let other = app.tenant().await;
    let (_, theirs) = app.staff(&other, "owner").await;
    let c = ok(app, &other, &theirs, "analytics/conversion").await;
    assert_eq!(c["products_total"], 0, "{c}");
    let s = ok(app, &other, &theirs, "analytics/searches").await;
    assert_eq!((s["searches"].as_i64(), s["top"].as_array().map(Vec::len)), (Some(0), Some(0)));
    let (st, _) = get(app, &other, &theirs, &format!("members/{member}/browse-record")).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "member ids are the mall's own");
    let (st, _) = get(app, t, &theirs, "analytics/conversion").await;
    assert!(st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN, "{st}");
    // Every period is bounded, with the same code.
    for p in ["analytics/conversion?days=93", "analytics/searches?days=100", "analytics/velocity?days=93"] {
        let (s, b) = get(app, t, owner, p).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("period_too_long")),
            "{p}"
        );
    }
    for p in ["analytics/conversion?limit=0", "analytics/searches?limit=201", "analytics/retention?to=2026-02-30"] {
        let (s, b) = get(app, t, owner, p).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
            "{p}"
        );
    }
}
