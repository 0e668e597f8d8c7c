//! `bench-settlement`: closing a month of an alliance's shared points (prints figures;
//! not a test). In-process against DATABASE_URL: an alliance of 10 malls whose ledger
//! gets, by bulk SQL, a month of shared entries (half earned at one mall, half spent at
//! another, each spend drawing on one earned lot), then the month's statement is
//! previewed and closed with the platform's own code. The anchor, measured in the same
//! run, is one sequential scan of the same entries (`count(*)`, `sum(amount)`).
//!
//!   DATABASE_URL=postgres://… cargo run --release -p bench --bin bench-settlement

use std::time::{Duration, Instant};

use bench::{build_kind, verdict};
use chrono::{Datelike, Utc};
use clap::Parser;
use platform::alliance::settlement;
use platform::audit::Actor;
use platform::db::{Db, select_schema};

/// Closing a month of 1,000,000 entries across 10 malls: at most this long.
const TARGET: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "bench-settlement",
    about = "Time to compute and close a month's settlement (prints figures; not a test)"
)]
struct Args {
    /// Shared ledger entries in the month (half earns, half spends).
    #[arg(long, default_value_t = 1_000_000)]
    entries: i64,
    /// Malls in the alliance.
    #[arg(long, default_value_t = 10)]
    malls: i64,
    /// Alliance identities the entries belong to.
    #[arg(long, default_value_t = 20_000)]
    members: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let db = Db::connect(&url, &[], 8).await?;
    platform::migrate::migrate_control(db.control()).await?;
    let run = bench::random_runid();
    let system = Actor::system("bench");
    let new = platform::tenancy::NewAlliance {
        slug: format!("bench-settle-{run}"),
        name: "bench".into(),
        currency_code: Some("union_pts".into()),
        currency_name: None,
    };
    let alliance = platform::tenancy::create_alliance(db.control(), &new, &system).await?;
    let mut mall_ids = Vec::new();
    for i in 0..args.malls {
        let t = platform::tenancy::NewTenant {
            slug: format!("bench-settle-{run}-{i}"),
            name: format!("mall {i}"),
            alliance: Some(alliance.slug.clone()),
            cluster: None,
        };
        mall_ids.push(platform::tenancy::create_tenant(&db, &t, &system).await?.id);
    }
    // The whole of last month (in the alliance's zone, Asia/Shanghai).
    let tz = platform::localtime::parse(platform::localtime::DEFAULT_TIME_ZONE).expect("a zone");
    let today = platform::localtime::day(tz, Utc::now());
    let first_of_this = today.with_day(1).expect("a first day");
    let first_of_last = first_of_this.pred_opt().expect("a day").with_day(1).expect("a first day");
    let (starts, ends) =
        (platform::localtime::start_of(tz, first_of_last), platform::localtime::start_of(tz, first_of_this));
    let period = first_of_last.format("%Y-%m").to_string();

    let seeding = Instant::now();
    seed(&db, &alliance, &args, &mall_ids, starts, ends).await?;
    let seeded = seeding.elapsed();

    let mut tx = db.cluster(&alliance.cluster)?.begin().await?;
    select_schema(&mut tx, &alliance.schema_name).await?;
    let scanning = Instant::now();
    let (n, sum): (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(sum(amount), 0)::bigint FROM entries").fetch_one(&mut *tx).await?;
    let scan = scanning.elapsed();
    tx.commit().await?;

    let previewing = Instant::now();
    let preview = settlement::get(&db, &alliance, &period).await?;
    let preview_time = previewing.elapsed();
    let closing = Instant::now();
    let closed = settlement::close(&db, &alliance, &period, Utc::now(), &system).await?;
    let close_time = closing.elapsed();
    let net: i64 = closed.lines.iter().map(|l| l.net_fen).sum();
    let issued: i64 = closed.lines.iter().map(|l| l.issued).sum();
    let redeemed: i64 = closed.lines.iter().map(|l| l.redeemed).sum();
    let same = preview.lines.iter().map(|l| l.net_fen).collect::<Vec<_>>()
        == closed.lines.iter().map(|l| l.net_fen).collect::<Vec<_>>();

    println!("bench-settlement ({} build), alliance {}", build_kind(), alliance.slug);
    println!(
        "seeded {n} shared entries (sum {sum}) over {} malls and {} members in {:.1} s",
        args.malls,
        args.members,
        seeded.as_secs_f64()
    );
    println!(
        "statement {period}: issued {issued}, redeemed {redeemed}, {} pairs, nets sum to {net}; preview equals the close: {same}",
        closed.pairs.len()
    );
    println!("preview (computed, rolled back): {:.2} s", preview_time.as_secs_f64());
    println!("close (computed, frozen, marks written): {:.2} s", close_time.as_secs_f64());
    println!(
        "anchor: one scan of the entries {:.3} s; close / scan = {:.1}",
        scan.as_secs_f64(),
        close_time.as_secs_f64() / scan.as_secs_f64().max(1e-9)
    );
    println!(
        "target: close <= {} s for {} entries: {}",
        TARGET.as_secs(),
        args.entries,
        verdict(close_time <= TARGET && net == 0 && same)
    );
    Ok(())
}

/// A month of shared entries, written by bulk SQL: identities and their accounts, earns
/// (each with its lot) at mall `i % malls`, spends of 60 at the next mall, each drawing
/// on the earn before it. Hashes are left empty: this data is for settlement, not for
/// `ledger verify`.
async fn seed(
    db: &Db,
    a: &platform::directory::Alliance,
    args: &Args,
    malls: &[platform::ids::TenantId],
    starts: chrono::DateTime<Utc>,
    ends: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut tx = db.cluster(&a.cluster)?.begin().await?;
    select_schema(&mut tx, &a.schema_name).await?;
    let half = args.entries / 2;
    let span = (ends - starts).num_seconds().max(1) as f64;
    sqlx::query(
        "INSERT INTO members (email, invite_code) SELECT 'b' || i || '@bench.test', 'B' || i FROM generate_series(1, $1) i",
    )
    .bind(args.members)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO accounts (member_id, currency) SELECT id, 'union_pts' FROM members")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO entries (member_id, currency, seq, amount, balance_after, reason, source_kind, actor, created_at, \
             prev_hash, hash) \
         SELECT (SELECT min(id) FROM members) + i % $1, 'union_pts', i, 100, 0, 'earn', 'partner', \
                'tenant:' || ($3::bigint[])[1 + i % cardinality($3::bigint[])] || '/bench', \
                $4::timestamptz + make_interval(secs => i * $5 / ($2 + 1)), '\\x00', '\\x00' \
         FROM generate_series(1, $2) i",
    )
    .bind(args.members)
    .bind(half)
    .bind(malls)
    .bind(starts)
    .bind(span)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO lots (member_id, currency, entry_id, amount, remaining, earned_at) \
         SELECT member_id, currency, id, 100, 40, created_at FROM entries WHERE reason = 'earn'",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO entries (member_id, currency, seq, amount, balance_after, reason, source_kind, actor, created_at, \
             prev_hash, hash) \
         SELECT e.member_id, 'union_pts', $1 + e.seq, -60, 0, 'spend', 'order', \
                'tenant:' || ($2::bigint[])[1 + (e.seq + 1) % cardinality($2::bigint[])] || '/bench', \
                e.created_at + interval '1 second', '\\x00', '\\x00' \
         FROM entries e WHERE e.reason = 'earn'",
    )
    .bind(half)
    .bind(malls)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO allocations (entry_id, lot_id, amount) \
         SELECT s.id, l.id, 60 FROM entries s JOIN entries e ON e.member_id = s.member_id AND e.seq = s.seq - $1 \
           JOIN lots l ON l.entry_id = e.id WHERE s.reason = 'spend'",
    )
    .bind(half)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut tx = db.cluster(&a.cluster)?.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE \"{}\".entries", a.schema_name))).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
