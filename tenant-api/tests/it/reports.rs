//! Issue 13 points 6-7: the dashboard and finance, read from rollups, against the tables.
//! A month's finance with entries on both sides of Beijing's midnight (16:00 UTC) equals
//! sums over the ledger's entries; the dashboard's series equal counts made directly
//! from members, orders and entries; CSV, cost prices and who may read what.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use platform::audit::Actor;
use platform::directory::Tenant;
use platform::ledger::transfers::{self, TransferRequest};
use platform::points::{self, Adjustment, Credit, Debit};
use platform::rbac::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, unique};

const ZONE: &str = "Asia/Shanghai";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Members made directly (no sign-up work); returns their ids.
async fn members(app: &TestApp, t: &Tenant, n: i64) -> Vec<i64> {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let prefix = format!("138{:04}", rand::random_range(0..10_000));
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO members (phone, invite_code) SELECT $1 || lpad(g::text, 4, '0'), $1 || 'R' || g \
         FROM generate_series(1, $2) g RETURNING id",
    )
    .bind(&prefix)
    .bind(n)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    ids
}

async fn credit_at(app: &TestApp, t: &Tenant, member: i64, amount: i64, currency: &str, at: DateTime<Utc>) {
    credit_expiring(app, t, member, amount, currency, None, at).await;
}

async fn credit_expiring(
    app: &TestApp,
    t: &Tenant,
    member_id: i64,
    amount: i64,
    currency: &str,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) {
    let c = Credit {
        member_id,
        amount,
        currency: currency.into(),
        memo: String::new(),
        reference: String::new(),
        expires_at,
    };
    app.db.write(t, &Actor::system("test"), async |tx| points::credit_batch(tx, vec![c], at).await).await.unwrap();
}

async fn debit_at(app: &TestApp, t: &Tenant, member_id: i64, amount: i64, at: DateTime<Utc>) {
    let d = Debit { member_id, amount, currency: "points".into(), memo: String::new(), reference: String::new() };
    app.db.write(t, &Actor::system("test"), async |tx| points::debit(tx, d, at).await).await.unwrap();
}

type DirectRow = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// Every column of a period's report as sums over `entries` (not the rollups), by currency:
/// [opening, issued, spent, returned, expired, adjusted, transferred, closing, closing_locked, entries].
async fn direct(app: &TestApp, t: &Tenant, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(String, [i64; 10])> {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let rows: Vec<DirectRow> = sqlx::query_as(
        "SELECT currency, \
           COALESCE(sum(amount + locked_delta) FILTER (WHERE created_at < $1), 0)::bigint, \
           COALESCE(sum(amount + locked_delta) FILTER (WHERE created_at >= $1 AND reason IN ('earn', 'lock', 'release')), 0)::bigint, \
           COALESCE(-sum(amount + locked_delta) FILTER (WHERE created_at >= $1 AND reason IN ('spend', 'hold')), 0)::bigint, \
           COALESCE(sum(amount + locked_delta) FILTER (WHERE created_at >= $1 AND reason IN ('refund', 'hold_return')), 0)::bigint, \
           COALESCE(-sum(amount + locked_delta) FILTER (WHERE created_at >= $1 AND reason = 'expire'), 0)::bigint, \
           COALESCE(sum(amount + locked_delta) FILTER (WHERE created_at >= $1 AND reason = 'adjust'), 0)::bigint, \
           COALESCE(sum(amount + locked_delta) FILTER (WHERE created_at >= $1 AND reason IN ('transfer_in', 'transfer_out')), 0)::bigint, \
           COALESCE(sum(amount + locked_delta), 0)::bigint, COALESCE(sum(locked_delta), 0)::bigint, \
           count(*) FILTER (WHERE created_at >= $1) \
         FROM entries WHERE created_at < $2 GROUP BY currency ORDER BY currency",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    rows.into_iter().map(|r| (r.0, [r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10])).collect()
}

/// The report's columns in the order `direct` gives them, per currency that moved.
fn columns(report: &Value) -> Vec<(String, [i64; 10])> {
    let keys = [
        "opening",
        "issued",
        "spent",
        "returned",
        "expired",
        "adjusted",
        "transferred",
        "closing",
        "closing_locked",
        "entries",
    ];
    let mut out: Vec<(String, [i64; 10])> = report["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["currency"].as_str().unwrap().to_string(), keys.map(|k| c[k].as_i64().unwrap())))
        .filter(|(_, v)| v.iter().any(|n| *n != 0))
        .collect();
    out.sort();
    out
}

/// Reads `period` and checks it against sums over the entries and its own equation.
async fn assert_matches_ledger(app: &TestApp, t: &Tenant, token: &str, period: &str, from: &str, to: &str) -> Value {
    let (s, r) = app
        .call(Method::GET, &format!("/v1/tenants/{}/staff/reports/finance/{period}", t.slug), Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["starts_at"].as_str().map(utc), r["ends_at"].as_str().map(utc)), (Some(utc(from)), Some(utc(to))));
    assert_eq!(columns(&r), direct(app, t, utc(from), utc(to)).await, "{period}: {r:#}");
    for c in r["currencies"].as_array().unwrap() {
        let n = |k: &str| c[k].as_i64().unwrap();
        let sum =
            n("opening") + n("issued") - n("spent") + n("returned") - n("expired") + n("adjusted") + n("transferred");
        assert_eq!(sum, n("closing"), "{c}");
    }
    r
}

#[tokio::test]
async fn a_months_finance_equals_sums_over_the_ledger_across_local_midnight() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, finance) = app.staff(&t, "finance").await;
    let ids = members(&app, &t, 3).await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    // 23:59:59 on 30 September in Beijing: before October.
    credit_at(&app, &t, a, 1000, "points", utc("2026-09-30T15:59:59Z")).await;
    credit_at(&app, &t, a, 300, "exp", utc("2026-09-30T15:59:59Z")).await;
    // Midnight of 1 October in Beijing: inside.
    let first = utc("2026-09-30T16:00:00Z");
    credit_expiring(&app, &t, b, 500, "points", Some(utc("2026-10-20T00:00:00Z")), first).await;
    debit_at(&app, &t, a, 200, first).await;
    let mid = utc("2026-10-10T12:00:00Z");
    let adj: Adjustment = serde_json::from_value(json!({"amount": -50, "reason": "correction"})).unwrap();
    app.db
        .write(&t, &Actor::system("test"), async |tx| points::adjust(tx, Role::Owner, a, adj, mid).await)
        .await
        .unwrap();
    let phone_c: String = {
        let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
        sqlx::query_scalar("SELECT phone FROM members WHERE id = $1").bind(c).fetch_one(&mut *tx).await.unwrap()
    };
    let req: TransferRequest = serde_json::from_value(json!({"to": phone_c, "amount": 100})).unwrap();
    app.db
        .write(&t, &Actor::system("test"), async |tx| {
            let tenant = tx.tenant().clone();
            transfers::transfer(tx, &tenant, &transfers::Parties::in_mall(a, c), &req, mid).await
        })
        .await
        .unwrap();
    // b's 500 lapse on 21 October (the jobs also fold the rollups).
    let report = app.jobs(&t, utc("2026-10-21T00:00:00Z")).await;
    assert_eq!(report.expired_amount, 500);
    // The last second of October in Beijing, then the first of November.
    debit_at(&app, &t, c, 30, utc("2026-10-31T15:59:59Z")).await;
    credit_at(&app, &t, a, 77, "points", utc("2026-10-31T16:00:00Z")).await;

    let oct =
        assert_matches_ledger(&app, &t, &finance, "2026-10", "2026-09-30T16:00:00Z", "2026-10-31T16:00:00Z").await;
    let points = oct["currencies"].as_array().unwrap().iter().find(|c| c["currency"] == "points").unwrap().clone();
    let figures = ["opening", "issued", "spent", "expired", "adjusted", "transferred", "closing"]
        .map(|k| points[k].as_i64().unwrap());
    assert_eq!(figures, [1000, 500, 230, 500, -50, 0, 720], "{points}");
    // 100 points are one yuan (the default): 720 points owe 7.20 yuan; experience owes nothing.
    assert_eq!((points["liability_fen"].as_i64(), oct["liability_fen"].as_i64()), (Some(720), Some(720)));
    assert_eq!(oct["time_zone"], ZONE);
    let nov =
        assert_matches_ledger(&app, &t, &finance, "2026-11", "2026-10-31T16:00:00Z", "2026-11-30T16:00:00Z").await;
    let points = nov["currencies"].as_array().unwrap().iter().find(|c| c["currency"] == "points").unwrap().clone();
    assert_eq!((points["opening"].as_i64(), points["closing"].as_i64()), (Some(720), Some(797)));
    // Days are periods too: 1 October holds the midnight entries, 30 September the one before.
    assert_matches_ledger(&app, &t, &finance, "2026-10-01", "2026-09-30T16:00:00Z", "2026-10-01T16:00:00Z").await;
    assert_matches_ledger(&app, &t, &finance, "2026-09-30", "2026-09-29T16:00:00Z", "2026-09-30T16:00:00Z").await;

    // Folding October's and November's quarter hours into local days keeps every figure.
    let folded = platform::reports::compact::tenant(&app.db, &t, utc("2026-12-15T00:00:00Z")).await.unwrap();
    assert!(folded > 0);
    let again =
        assert_matches_ledger(&app, &t, &finance, "2026-10", "2026-09-30T16:00:00Z", "2026-10-31T16:00:00Z").await;
    assert_eq!(again["currencies"], oct["currencies"]);
    assert_matches_ledger(&app, &t, &finance, "2026-10-01", "2026-09-30T16:00:00Z", "2026-10-01T16:00:00Z").await;
    assert_matches_ledger(&app, &t, &finance, "2026-11", "2026-10-31T16:00:00Z", "2026-11-30T16:00:00Z").await;

    // Bad periods are 422s with the field named.
    for bad in ["2026-13", "1999-12", "2026-11-31", "x"] {
        let (s, body) = app
            .call(Method::GET, &format!("/v1/tenants/{}/staff/reports/finance/{bad}", t.slug), Some(&finance), None)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    app.assert_ledger_sound(&t).await;
}

async fn product(app: &TestApp, t: &Tenant, owner: &str, body: Value) -> Value {
    let (s, p) =
        app.call(Method::POST, &format!("/v1/tenants/{}/staff/products", t.slug), Some(owner), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    p
}

async fn dashboard(app: &TestApp, t: &Tenant, token: &str, query: &str) -> (StatusCode, Value) {
    app.call(Method::GET, &format!("/v1/tenants/{}/staff/reports/dashboard{query}", t.slug), Some(token), None).await
}

/// Per local day, counted straight from the tables: (new members, orders, cancelled, units).
async fn day_counts(app: &TestApp, t: &Tenant) -> Vec<(NaiveDate, i64, i64, i64, i64)> {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    sqlx::query_as(
        "WITH m AS (SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date AS d, count(*) AS n FROM members GROUP BY 1), \
              o AS (SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date AS d, count(*) AS n, sum(quantity) AS q \
                    FROM orders GROUP BY 1), \
              c AS (SELECT (h.created_at AT TIME ZONE 'Asia/Shanghai')::date AS d, count(*) AS n, sum(o.quantity) AS q \
                    FROM order_history h JOIN orders o ON o.id = h.order_id \
                    WHERE h.to_status IN ('cancelled', 'refunded') GROUP BY 1), \
              days AS (SELECT d FROM m UNION SELECT d FROM o UNION SELECT d FROM c) \
         SELECT days.d, COALESCE(m.n, 0)::bigint, COALESCE(o.n, 0)::bigint, COALESCE(c.n, 0)::bigint, \
                (COALESCE(o.q, 0) - COALESCE(c.q, 0))::bigint \
         FROM days LEFT JOIN m ON m.d = days.d LEFT JOIN o ON o.d = days.d LEFT JOIN c ON c.d = days.d ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap()
}

/// Per local day and currency, from the entries: (issued, spent, expired), and the
/// members active by their entries.
async fn entry_days(app: &TestApp, t: &Tenant) -> (Vec<(NaiveDate, String, i64, i64, i64)>, Vec<(NaiveDate, i64)>) {
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    let flow = sqlx::query_as(
        "SELECT (created_at AT TIME ZONE 'Asia/Shanghai')::date, currency, \
           COALESCE(sum(amount + locked_delta) FILTER (WHERE reason IN ('earn', 'lock', 'release')), 0)::bigint, \
           COALESCE(-sum(amount + locked_delta) FILTER (WHERE reason IN ('spend', 'hold')), 0)::bigint, \
           COALESCE(-sum(amount + locked_delta) FILTER (WHERE reason = 'expire'), 0)::bigint \
         FROM entries GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let active = sqlx::query_as(
        "SELECT DISTINCT (created_at AT TIME ZONE 'Asia/Shanghai')::date, member_id FROM entries \
         WHERE reason IN ('earn', 'spend', 'transfer_out', 'hold') ORDER BY 1, 2",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    (flow, active)
}

fn day_of(d: &Value) -> NaiveDate {
    d["day"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_dashboards_series_equal_counts_from_the_tables() {
    let app = TestApp::spawn().await;
    let t = app.tenant().await;
    let (_, owner) = app.staff(&t, "owner").await;
    let key = app.partner_key(&t).await;
    let ids = members(&app, &t, 4).await;
    for id in &ids {
        app.credit(&t, &key, *id, 1000, None).await;
    }
    let mug = product(
        &app,
        &t,
        &owner,
        json!({"name": "Mug", "kind": "coupon", "points_price": 100, "stock": 50, "status": "listed",
               "review_state": "approved", "cost_price_fen": 1234}),
    )
    .await;
    assert_eq!(mug["cost_price_fen"], 1234);
    let tea = product(
        &app,
        &t,
        &owner,
        json!({"name": "=Tea", "kind": "coupon", "points_price": 30, "stock": 50, "status": "listed",
               "review_state": "approved"}),
    )
    .await;
    let tokens: Vec<String> = {
        let mut v = vec![];
        for id in &ids[..3] {
            v.push(crate::mall::member_token(&app, &t, *id).await);
        }
        v
    };
    let redeem = |token: String, product: Value, quantity: i64| {
        let app = &app;
        let slug = t.slug.clone();
        async move {
            let headers = vec![("authorization", format!("Bearer {token}")), ("idempotency-key", unique("r"))];
            let body = json!({"product_id": product, "quantity": quantity});
            let (s, _, b) =
                app.call_full(Method::POST, &format!("/v1/tenants/{slug}/me/redemptions"), &headers, Some(body)).await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            b
        }
    };
    redeem(tokens[0].clone(), mug["id"].clone(), 2).await;
    redeem(tokens[1].clone(), mug["id"].clone(), 1).await;
    let gone = redeem(tokens[2].clone(), tea["id"].clone(), 1).await;
    // A coupon is completed at once: the staff refund it (the points go back).
    let (s, b) = app
        .call(
            Method::POST,
            &format!("/v1/tenants/{}/staff/orders/{}/refund", t.slug, gone["id"]),
            Some(&owner),
            Some(json!({"note": "report test"})),
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("refunded")), "{b}");
    // Views: two by member 0 (one visitor), one by member 3's token… anonymous ones count as
    // views only; one search.
    let view = |token: Option<String>, id: Value| {
        let app = &app;
        let slug = t.slug.clone();
        async move {
            let (s, b) =
                app.call(Method::GET, &format!("/v1/tenants/{slug}/products/{id}"), token.as_deref(), None).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            assert!(b.get("cost_price_fen").is_none(), "members never see the cost: {b}");
        }
    };
    view(Some(tokens[0].clone()), mug["id"].clone()).await;
    view(Some(tokens[0].clone()), mug["id"].clone()).await;
    view(None, mug["id"].clone()).await;
    view(Some("not-a-token".into()), tea["id"].clone()).await;
    let (s, _) = app.call(Method::GET, &format!("/v1/tenants/{}/products?q=mug", t.slug), Some(&tokens[1]), None).await;
    assert_eq!(s, StatusCode::OK);

    // The views are written within about a second.
    let mut d = Value::Null;
    for _ in 0..50 {
        let (s, body) = dashboard(&app, &t, &owner, "?days=3").await;
        assert_eq!(s, StatusCode::OK, "{body}");
        d = body;
        if d["totals"]["page_views"] == 4 && d["totals"]["searches"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!((d["totals"]["page_views"].as_i64(), d["totals"]["searches"].as_i64()), (Some(4), Some(1)), "{d:#}");
    check_against_tables(&app, &t, &d, &ids).await;
    assert_eq!(d["totals"]["unique_visitors"], 2, "member 0 viewed, member 1 searched");
    let hot = &d["hot_products"][0];
    assert_eq!(
        (hot["product_id"].clone(), hot["units"].as_i64(), hot["views"].as_i64()),
        (mug["id"].clone(), Some(3), Some(3))
    );

    // Folding the rollups changes no figure.
    app.jobs(&t, Utc::now()).await;
    let (_, again) = dashboard(&app, &t, &owner, "?days=3").await;
    assert_eq!((&again["days"], &again["points"], &again["totals"]), (&d["days"], &d["points"], &d["totals"]));

    finance_costs_and_csv(&app, &t, &owner, &mug).await;
    backfill_gives_the_same_figures(&app, &t, &owner, &again).await;
    who_reads_what(&app, &t).await;
}

/// What migration 0015 does for a mall that existed before it: its rollups, rebuilt from
/// the tables alone, give the same series and the same finance (views and cost prices
/// cannot be rebuilt: no log of views was kept, and no product had a cost then).
async fn backfill_gives_the_same_figures(app: &TestApp, t: &Tenant, owner: &str, before: &Value) {
    let period = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m").to_string();
    let path = format!("/v1/tenants/{}/staff/reports/finance/{period}", t.slug);
    let (_, finance_before) = app.call(Method::GET, &path, Some(owner), None).await;
    let migration = migrations::TENANT.iter().find(|m| m.name.ends_with("_reports")).unwrap().sql;
    let backfill = &migration[migration.find("-- What the mall already holds").unwrap()..];
    let mut tx = app.db.tenant_tx(&t.cluster, &t.schema_name).await.unwrap();
    sqlx::raw_sql("TRUNCATE ledger_rollup, order_rollup, traffic_rollup, active_days, daily_counts")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(backfill)).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let (_, after) = dashboard(app, t, owner, "?days=3").await;
    let keep = ["day", "new_members", "active_members", "orders", "cancelled", "units"];
    let pick = |d: &Value| -> Vec<Vec<Value>> {
        d["days"].as_array().unwrap().iter().map(|day| keep.iter().map(|k| day[*k].clone()).collect()).collect()
    };
    assert_eq!(pick(&after), pick(before));
    assert_eq!((&after["points"], &after["members_total"]), (&before["points"], &before["members_total"]));
    let (_, finance_after) = app.call(Method::GET, &path, Some(owner), None).await;
    assert_eq!(finance_after["currencies"], finance_before["currencies"]);
}

async fn check_against_tables(app: &TestApp, t: &Tenant, d: &Value, ids: &[i64]) {
    let days = d["days"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    let counts = day_counts(app, t).await;
    for day in days {
        let at = day_of(day);
        let want = counts.iter().find(|c| c.0 == at).map(|c| (c.1, c.2, c.3, c.4)).unwrap_or_default();
        let got = (
            day["new_members"].as_i64().unwrap(),
            day["orders"].as_i64().unwrap(),
            day["cancelled"].as_i64().unwrap(),
            day["units"].as_i64().unwrap(),
        );
        assert_eq!(got, want, "{at}");
    }
    let (flow, active) = entry_days(app, t).await;
    let from = day_of(&days[0]);
    let in_range: Vec<_> = flow.into_iter().filter(|f| f.0 >= from).collect();
    let got: Vec<(NaiveDate, String, i64, i64, i64)> = d["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_i64().unwrap();
            (day_of(p), p["currency"].as_str().unwrap().to_string(), n("issued"), n("spent"), n("expired"))
        })
        .collect();
    assert_eq!(got, in_range);
    // Active: by their entries, and member 0 and 1 by visiting (already active by spending).
    let today = day_of(days.last().unwrap());
    let mut want: Vec<i64> = active.iter().filter(|a| a.0 == today).map(|a| a.1).collect();
    want.extend(&ids[..2]);
    want.sort();
    want.dedup();
    assert_eq!(days.last().unwrap()["active_members"].as_i64(), Some(want.len() as i64), "{d:#}");
    assert_eq!(d["members_total"].as_i64(), Some(ids.len() as i64));
}

async fn finance_costs_and_csv(app: &TestApp, t: &Tenant, owner: &str, mug: &Value) {
    let period = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m").to_string();
    let start = chrono_tz::Asia::Shanghai
        .from_local_datetime(&format!("{period}-01T00:00:00").parse().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let r = assert_matches_ledger(app, t, owner, &period, &start.to_rfc3339(), &r_end(start).to_rfc3339()).await;
    let row = r["products"].as_array().unwrap().iter().find(|p| p["product_id"] == mug["id"]).unwrap().clone();
    let n = |k: &str| row[k].as_i64().unwrap();
    // 3 mugs at 100 points (¥1 each at 100 points per yuan) that cost ¥12.34 each.
    assert_eq!(
        [n("orders"), n("units"), n("points"), n("points_value_fen"), n("cost_fen"), n("margin_fen")],
        [2, 3, 300, 300, 3702, -3402]
    );
    let tea = r["products"].as_array().unwrap().iter().find(|p| p["name"] == "=Tea").unwrap().clone();
    assert_eq!((tea["orders"].as_i64(), tea["returned"].as_i64(), tea["units"].as_i64()), (Some(1), Some(1), Some(0)));
    assert_eq!(tea["uncosted_orders"], 0, "made and given back: no order left without a cost");
    let resp = app
        .client
        .get(format!("{}/v1/tenants/{}/staff/reports/finance/{period}/csv", app.base, t.slug))
        .bearer_auth(owner)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-disposition"].to_str().unwrap().contains(&format!("finance-{period}.csv")));
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "a byte order mark first");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.starts_with("\"period\",\"currency\",\"opening\""), "{text}");
    assert!(text.contains("\"'=Tea\""), "a name that looks like a formula is made inert: {text}");
    assert!(text.contains(&format!("\"{period}\",\"points\",")), "{text}");
}

fn r_end(start: DateTime<Utc>) -> DateTime<Utc> {
    let local = start.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let next = local.checked_add_months(chrono::Months::new(1)).unwrap();
    chrono_tz::Asia::Shanghai.from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap()).unwrap().with_timezone(&Utc)
}

async fn who_reads_what(app: &TestApp, t: &Tenant) {
    let period = "2026-10";
    for (role, dash, fin) in [
        ("finance", StatusCode::OK, StatusCode::OK),
        ("auditor", StatusCode::OK, StatusCode::OK),
        ("operator", StatusCode::OK, StatusCode::FORBIDDEN),
        ("customer_service", StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
    ] {
        let (_, token) = app.staff(t, role).await;
        let (s, b) = dashboard(app, t, &token, "").await;
        assert_eq!(s, dash, "{role}: {b}");
        let (s, b) = app
            .call(Method::GET, &format!("/v1/tenants/{}/staff/reports/finance/{period}", t.slug), Some(&token), None)
            .await;
        assert_eq!(s, fin, "{role}: {b}");
    }
    let (_, owner) = app.staff(t, "owner").await;
    for bad in ["?days=0", "?days=93", "?to=2026-02-30", "?to=1999-01-01", "?other=1"] {
        let (s, b) = dashboard(app, t, &owner, bad).await;
        assert!(s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST, "{bad}: {s} {b}");
    }
    let (s, b) = dashboard(app, t, &owner, "?days=1&to=2026-10-01").await;
    assert_eq!(
        (s, b["from"].as_str(), b["days"].as_array().map(Vec::len)),
        (StatusCode::OK, Some("2026-10-01"), Some(1))
    );
}
