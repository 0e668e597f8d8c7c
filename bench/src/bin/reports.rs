//! `bench-reports`: the dashboard and the finance report of a big mall (prints figures;
//! not a test). In-process against DATABASE_URL: a mall gets, by bulk SQL, 100,000
//! members and 1,000,000 ledger entries spread over the last 90 days (earned, spent,
//! expired) and 50,000 orders, the rollups are folded as the jobs do, then the dashboard
//! of 30 days is read repeatedly (p50/p99 of the platform's own call, in a read-only
//! tenant transaction as the API runs it) and the last month's finance report is
//! timed. The anchor, measured in the same run, is the dashboard's points series
//! computed directly from the entries (one scan of the 30 days).
//!
//!   DATABASE_URL=postgres://… cargo run --release -p bench --bin bench-reports
//!
//! The rollups' cost on the earn path is measured by `bench-events --no-rollups` against
//! a plain `bench-events` run.

use std::time::{Duration, Instant};

use bench::{build_kind, machine_load, verdict};
use chrono::{Datelike, Utc};
use clap::Parser;
use platform::audit::Actor;
use platform::db::{Db, select_schema};
use platform::reports::{compact, dashboard, finance};

const DASHBOARD_P99: Duration = Duration::from_millis(50);
const FINANCE: Duration = Duration::from_secs(1);

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
    println!("anchor: the 30 days' earned points summed from the entries {:.1} ms", scan.as_secs_f64() * 1e3);
    println!(
        "targets: dashboard p99 < {} ms: {}; finance <= {} s: {}",
        DASHBOARD_P99.as_millis(),
        verdict(pct(0.99) < DASHBOARD_P99 && issued == direct),
        FINANCE.as_secs(),
        verdict(finance_time <= FINANCE)
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
    tx.commit().await?;
    let mut tx = db.cluster(&t.cluster)?.begin().await?;
    for table in ["entries", "ledger_rollup", "order_rollup", "traffic_rollup", "daily_counts", "active_days"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE \"{}\".{table}", t.schema_name))).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
