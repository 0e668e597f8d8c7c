//! `bench-reports`: the dashboard and the finance report of a big mall (prints figures;
//! not a test). In-process against DATABASE_URL: a mall gets, by bulk SQL, 100,000
//! members and 1,000,000 ledger entries spread over the last 90 days (earned, spent,
//! expired) and 50,000 orders, the rollups are folded as the jobs do, then the dashboard
//! of 30 days is read repeatedly (p50/p99 of the platform's own call, in a read-only
//! tenant transaction as the API runs it) and the last month's finance report is
//! timed. The anchor, measured in the same run, is the dashboard's points series
//! computed directly from the entries (one scan of the 30 days).
//!
//! The analytics (SPEC B7) are timed on the same mall, each at its longest period
//! (p50 and max of `--analytics-reads` reads): retention of 26 registration weeks,
//! conversion, searches and velocity of 92 days, and a browse record of 200 products.
//! For them the seed adds a lot per earning and the allocations of every spend (ages up
//! to ~45 days), 300,000 signed-in product views (viewers and browse records), and
//! 2,000 search terms a day.
//!
//!   DATABASE_URL=postgres://… cargo run --release -p bench --bin bench-reports
//!
//! The rollups' cost on the earn path is measured by `bench-events --no-rollups` against
//! a plain `bench-events` run.

use std::time::{Duration, Instant};

use bench::{build_kind, machine_load, verdict};
use chrono::{Datelike, Utc};
use clap::Parser;
use platform::analytics::{self, browsing, conversion, retention, searches, velocity};
use platform::audit::Actor;
use platform::db::{Db, select_schema};
use platform::reports::{compact, dashboard, finance};

const DASHBOARD_P99: Duration = Duration::from_millis(50);
const FINANCE: Duration = Duration::from_secs(1);
const ANALYTICS: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(
    name = "bench-reports",
    about = "Dashboard p99 and finance report time on a big mall (prints figures; not a test)"
)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    members: i64,
    #[arg(long, default_value_t = 1_000_000)]
    entries: i64,
    #[arg(long, default_value_t = 50_000)]
    orders: i64,
    /// Days of history the entries and orders are spread over, ending now.
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Dashboard reads to time.
    #[arg(long, default_value_t = 300)]
    reads: usize,
    /// Reads of each analytics query to time.
    #[arg(long, default_value_t = 5)]
    analytics_reads: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let db = Db::connect(&url, &[], 8).await?;
    platform::migrate::migrate_control(db.control()).await?;
    let system = Actor::system("bench");
    let new = platform::tenancy::NewTenant {
        slug: format!("bench-reports-{}", bench::random_runid()),
        name: "bench".into(),
        alliance: None,
        cluster: None,
    };
    let tenant = platform::tenancy::create_tenant(&db, &new, &system).await?;

    let seeding = Instant::now();
    seed(&db, &tenant, &args).await?;
    let seeded = seeding.elapsed();
    let folding = Instant::now();
    let folded = compact::tenant(&db, &tenant, Utc::now()).await?;
    let folded = folded + analytics::maintain(&db, &tenant, Utc::now()).await?;
    let fold = folding.elapsed();

    let mut times = Vec::with_capacity(args.reads);
    let mut last = None;
    for _ in 0..args.reads {
        let t = Instant::now();
        let d = db.read(&tenant, &system, async |tx| dashboard::get(tx, None, 30, Utc::now()).await).await?;
        times.push(t.elapsed());
        last = Some(d);
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    let d = last.ok_or_else(|| anyhow::anyhow!("no read"))?;
    let issued: i64 = d.points.iter().filter(|p| p.currency == "points").map(|p| p.issued).sum();

    let tz = tenant.settings.tz();
    let today = platform::localtime::day(tz, Utc::now());
    let first_of_this = today.with_day(1).expect("a first day");
    let period = first_of_this.pred_opt().expect("a day").format("%Y-%m").to_string();
    let timing = Instant::now();
    let report = db.read(&tenant, &system, async |tx| finance::report(tx, &period).await).await?;
    let finance_time = timing.elapsed();
    let points = report.currencies.iter().find(|c| c.currency == "points");

    let browser: i64 = {
        let mut tx = db.cluster(&tenant.cluster)?.begin().await?;
        select_schema(&mut tx, &tenant.schema_name).await?;
        let id = sqlx::query_scalar("SELECT min(member_id) FROM browse_records").fetch_one(&mut *tx).await?;
        tx.commit().await?;
        id
    };
    let n = args.analytics_reads.max(1);
    let mut timed: Vec<(&str, Duration, Duration, String)> = vec![];
    macro_rules! time_it {
        ($name:expr, $tx:ident => $call:expr, $what:expr) => {{
            let mut t = vec![];
            let mut shown = String::new();
            for _ in 0..n {
                let started = Instant::now();
                let r = db.read(&tenant, &system, async |$tx| $call.await).await?;
                t.push(started.elapsed());
                shown = $what(&r);
            }
            t.sort();
            timed.push(($name, t[t.len() / 2], t[t.len() - 1], shown));
        }};
    }
    let now = Utc::now();
    time_it!(
        "retention, 26 weeks",
        tx => retention::get(tx, None, Some(26), now),
        |r: &retention::Retention| format!(
            "{} members in {} cohorts",
            r.cohorts.iter().map(|c| c.members).sum::<i64>(),
            r.cohorts.len()
        )
    );
    time_it!(
        "conversion, 92 days",
        tx => conversion::get(tx, None, Some(92), Some(200), now),
        |r: &conversion::Conversion| format!(
            "{} products, {} viewers, {} converted",
            r.products_total,
            r.products.iter().map(|p| p.viewers).sum::<i64>(),
            r.products.iter().map(|p| p.converted).sum::<i64>()
        )
    );
    time_it!(
        "searches, 92 days",
        tx => searches::get(tx, None, Some(92), Some(200), now),
        |r: &searches::SearchReport| format!("{} searches, {} terms", r.searches, r.terms)
    );
    time_it!(
        "velocity, 92 days",
        tx => velocity::get(tx, None, Some(92), now),
        |r: &velocity::Velocity| r
            .currencies
            .iter()
            .map(|c| format!("{} points spent, median {} days", c.points_spent, c.median_days))
            .collect::<Vec<_>>()
            .join("; ")
    );
    time_it!(
        "browse record",
        tx => browsing::get(tx, browser, now),
        |r: &browsing::BrowseRecord| format!("{} products", r.products.len())
    );

    let mut tx = db.cluster(&tenant.cluster)?.begin().await?;
    select_schema(&mut tx, &tenant.schema_name).await?;
    let scanning = Instant::now();
    let direct: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(amount), 0)::bigint FROM entries WHERE currency = 'points' AND reason = 'earn' \
         AND created_at >= $1",
    )
    .bind(platform::localtime::start_of(tz, d.from))
    .fetch_one(&mut *tx)
    .await?;
    let scan = scanning.elapsed();
    tx.commit().await?;

    println!("bench-reports ({} build), mall {}, {}", build_kind(), tenant.slug, machine_load());
    println!(
        "seeded {} members, {} entries, {} orders over {} days in {:.1} s; folding the rollups {:.2} s ({folded} rows)",
        args.members,
        args.entries,
        args.orders,
        args.days,
        seeded.as_secs_f64(),
        fold.as_secs_f64()
    );
    println!(
        "dashboard of 30 days, {} reads: p50 {:.1} ms, p99 {:.1} ms; points issued {issued} (direct sum {direct}: {})",
        args.reads,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        if issued == direct { "equal" } else { "DIFFERENT" }
    );
    println!(
        "finance {period}: {:.1} ms; points opening {}, closing {}, liability {} fen, {} products",
        finance_time.as_secs_f64() * 1e3,
        points.map_or(0, |p| p.opening),
        points.map_or(0, |p| p.closing),
        report.liability_fen,
        report.products.len()
    );
    for (name, p50, max, shown) in &timed {
        println!(
            "analytics {name}, {n} reads: p50 {:.1} ms, max {:.1} ms ({shown})",
            p50.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    println!("anchor: the 30 days' earned points summed from the entries {:.1} ms", scan.as_secs_f64() * 1e3);
    println!(
        "targets: dashboard p99 < {} ms: {}; finance <= {} s: {}; each analytics query <= {} s: {}",
        DASHBOARD_P99.as_millis(),
        verdict(pct(0.99) < DASHBOARD_P99 && issued == direct),
        FINANCE.as_secs(),
        verdict(finance_time <= FINANCE),
        ANALYTICS.as_secs(),
        verdict(timed.iter().all(|t| t.2 <= ANALYTICS))
    );
    Ok(())
}

/// Members, accounts, entries and orders by bulk SQL, through the rollup triggers (one
/// statement each, so each trigger runs once over its whole statement). Hashes are left
/// empty: this data is for reports, not for `ledger verify`.
async fn seed(db: &Db, t: &platform::directory::Tenant, args: &Args) -> anyhow::Result<()> {
    let mut tx = db.cluster(&t.cluster)?.begin().await?;
    select_schema(&mut tx, &t.schema_name).await?;
    let starts = Utc::now() - chrono::Duration::days(args.days);
    let span = (args.days * 86_400) as f64;
    sqlx::query(
        "INSERT INTO members (email, invite_code, created_at) \
         SELECT 'r' || i || '@bench.test', 'R' || i, $2::timestamptz + make_interval(secs => i * $3 / ($1 + 1)) \
         FROM generate_series(1, $1) i",
    )
    .bind(args.members)
    .bind(starts)
    .bind(span)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO accounts (member_id, currency) SELECT id, 'points' FROM members")
        .execute(&mut *tx)
        .await?;
    // 60% earned (100), 30% spent (-50), 10% expired (-20), spread evenly over the days.
    sqlx::query(
        "INSERT INTO entries (member_id, currency, seq, amount, balance_after, reason, source_kind, actor, created_at, \
             prev_hash, hash) \
         SELECT (SELECT min(id) FROM members) + i % $1, 'points', i, \
                CASE WHEN i % 10 < 6 THEN 100 WHEN i % 10 < 9 THEN -50 ELSE -20 END, 0, \
                CASE WHEN i % 10 < 6 THEN 'earn' WHEN i % 10 < 9 THEN 'spend' ELSE 'expire' END, 'partner', 'bench', \
                $3::timestamptz + make_interval(secs => i * $4 / ($2 + 1)), '\\x00', '\\x00' \
         FROM generate_series(1, $2) i",
    )
    .bind(args.members)
    .bind(args.entries)
    .bind(starts)
    .bind(span)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO products (name, kind, points_price, stock, cost_price_fen) \
         SELECT 'product ' || i, 'coupon', 100 * i, 1000000, 50 * i FROM generate_series(1, 50) i",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO orders (order_no, member_id, product_id, product_name, kind, quantity, currency, points_amount, \
             cash_fen, status, created_at) \
         SELECT 'B' || i, (SELECT min(id) FROM members) + i % $1, p.id, p.name, 'coupon', 1, 'points', p.points_price, 0, \
                'completed', $3::timestamptz + make_interval(secs => i * $4 / ($2 + 1)) \
         FROM generate_series(1, $2) i JOIN products p ON p.id = (SELECT min(id) FROM products) + i % 50",
    )
    .bind(args.members)
    .bind(args.orders)
    .bind(starts)
    .bind(span)
    .execute(&mut *tx)
    .await?;
    seed_analytics(&mut tx, args).await?;
    tx.commit().await?;
    let mut tx = db.cluster(&t.cluster)?.begin().await?;
    for table in [
        "entries",
        "ledger_rollup",
        "order_rollup",
        "traffic_rollup",
        "daily_counts",
        "active_days",
        "lots",
        "allocations",
        "spend_ages",
        "product_viewers",
        "browse_records",
        "search_terms",
        "members",
        "orders",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE \"{}\".{table}", t.schema_name))).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What the analytics read: a lot per earning and the allocations of every spend (each
/// drawing on an earning up to ~45 days older, through the velocity trigger), signed-in
/// product views (viewers per day, browse records; one member with 250 products), and
/// 2,000 search terms a day (a few searched often, most rarely; one in ten found nothing).
async fn seed_analytics(tx: &mut sqlx::PgConnection, args: &Args) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO lots (member_id, currency, entry_id, amount, remaining, earned_at) \
         SELECT member_id, currency, id, amount, amount, created_at FROM entries WHERE reason = 'earn'",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO allocations (entry_id, lot_id, amount) \
         SELECT s.id, l.id, 50 FROM entries s \
         JOIN entries e ON e.seq = s.seq - s.seq % 10 - 10 * ((s.seq * 7919) % 50000) AND e.reason = 'earn' \
         JOIN lots l ON l.entry_id = e.id \
         WHERE s.reason = 'spend'",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO products (name, kind, points_price, stock) \
         SELECT 'browsed ' || i, 'coupon', 10, 0 FROM generate_series(1, 200) i",
    )
    .execute(&mut *tx)
    .await?;
    let starts = Utc::now() - chrono::Duration::days(args.days);
    // 300,000 views by signed-in members: member i % members, product i % 50, spread.
    sqlx::query(
        "WITH v AS (SELECT (SELECT min(id) FROM members) + i % $1 AS member_id, \
                           (SELECT min(id) FROM products) + (i * 7) % 50 AS product_id, \
                           $2::timestamptz + make_interval(secs => i * $3 / 300001.0) AS at \
                    FROM generate_series(1, 300000) i), \
              pv AS (INSERT INTO product_views (bucket, product_id, views, compacted) \
                     SELECT date_trunc('day', at AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai', product_id, \
                            count(*) * 3, true FROM v GROUP BY 1, 2), \
              pw AS (INSERT INTO product_viewers (day, product_id, member_id) \
                     SELECT DISTINCT (at AT TIME ZONE 'Asia/Shanghai')::date, product_id, member_id FROM v \
                     ON CONFLICT DO NOTHING) \
         INSERT INTO browse_records (member_id, product_id, viewed_at, views) \
         SELECT member_id, product_id, max(at), count(*) FROM v GROUP BY 1, 2",
    )
    .bind(args.members)
    .bind(starts)
    .bind((args.days * 86_400) as f64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO browse_records (member_id, product_id, viewed_at, views) \
         SELECT (SELECT min(id) FROM members), p.id, now() - make_interval(mins => p.id::int % 10000), 1 \
         FROM products p ON CONFLICT DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO search_terms (day, term, searches, empty, compacted) \
         SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date - d::int, 'term ' || k, 1 + 5000 / k, \
                CASE WHEN k % 10 = 0 THEN 1 + 500 / k ELSE 0 END, true \
         FROM generate_series(0, $1 - 1) d, generate_series(1, 2000) k",
    )
    .bind(args.days)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
