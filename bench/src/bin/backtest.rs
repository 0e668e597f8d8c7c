//! `bench-backtest`: a rule backtest over a million recorded events (issue 13 point 11;
//! prints figures, not a test). In-process against DATABASE_URL: a new mall gets, by bulk
//! SQL, 10,000 members and 1,000,000 recorded `purchase` events spread over the last 90
//! local days; the library's `spend_per_yuan` rule is saved, and a backtest of it over
//! those days runs to the end through the platform's own `backtest::start` and
//! `backtest::run` — the server's code path — with the rule evaluations on one thread.
//! Printed: events replayed per second (wall), the CPU this process spent (so events per
//! CPU-second of one core), PostgreSQL's CPU, and the points the backtest found.
//!
//! The anchor, measured in the same run on the same thread: the same rule evaluated in a
//! tight loop on a typical event with the AST cached (what `bench-rules` measures), so the
//! ratio shows what the replay adds around each evaluation (reading the pages, building
//! each member's context as of the period's start, tallying).
//!
//!   DATABASE_URL=postgres://… cargo run --release -p bench --bin bench-backtest

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::cpu::{Sample, postmaster};
use bench::{build_kind, build_note, machine_load, thousands, verdict};
use chrono::Utc;
use clap::Parser;
use platform::audit::Actor;
use platform::db::{Db, select_schema};
use platform::rules::admission::Admission;
use platform::rules::backtest::{self, BacktestRequest};
use platform::rules::cache::RuleCache;
use platform::rules::store::{self, NewRule};
use scripting::{EventInput, Input, LevelInput, MemberInput, Sandbox};

/// The server's allocator (`tenant-api/src/main.rs`): backtests run in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per second on one core the issue asks of a backtest.
const TARGET_EVENTS_PER_SEC: f64 = 50_000.0;

const RULE: &str = include_str!("../../../examples/rules/spend_per_yuan.rhai");

#[derive(Parser)]
#[command(
    name = "bench-backtest",
    about = "A rule backtest over recorded events: events/s (prints figures; not a test)"
)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    members: i64,
    #[arg(long, default_value_t = 1_000_000)]
    events: i64,
    /// Local days the events are spread over, ending yesterday (at most 92).
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Seconds of the anchor's tight loop.
    #[arg(long, default_value_t = 2.0)]
    anchor_seconds: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    println!("bench-backtest, {} build{}, {}", build_kind(), build_note(), machine_load());
    let db = Db::connect(&url, &[], 4).await?;
    platform::migrate::migrate_control(db.control()).await?;
    let system = Actor::system("bench");
    let new = platform::tenancy::NewTenant {
        slug: format!("bench-backtest-{}", bench::random_runid()),
        name: "bench".into(),
        alliance: None,
        cluster: None,
    };
    let tenant = Arc::new(platform::tenancy::create_tenant(&db, &new, &system).await?);

    let seeding = Instant::now();
    let (from, to) = seed(&db, &tenant, &args).await?;
    println!(
        "seeded {} members and {} purchase events over {} local days in {:.1} s",
        thousands(args.members as f64),
        thousands(args.events as f64),
        args.days,
        seeding.elapsed().as_secs_f64()
    );

    let sandbox = Arc::new(Sandbox::new());
    let rule = NewRule {
        name: "spend_per_yuan".into(),
        event_type: "purchase".into(),
        script: RULE.into(),
        params: serde_json::json!({"points_per_yuan": 1, "tiers": [[50_000, 20], [100_000, 60]]}),
        enabled: true,
        position: 100,
    };
    let saved = db.write(&tenant, &system, async |tx| store::create(tx, &sandbox, &rule).await).await?;

    let me = Some(std::process::id());
    let anchor_cpu = Sample::now(me, None);
    let anchor = anchor(&sandbox, args.anchor_seconds)?;
    let anchor_cpu = anchor_cpu.and_then(|s| s.usage(me, None)).and_then(|u| u.process_secs);
    let anchor =
        Anchor { per_sec: anchor.0, per_cpu_sec: anchor_cpu.filter(|s| *s > 0.0).map(|s| anchor.1 as f64 / s) };

    let mut cache = RuleCache::new(sandbox.clone());
    cache.admission = Admission::new(1);
    let req = BacktestRequest {
        rule_id: Some(saved.id),
        version: None,
        params_version: None,
        script: None,
        event_type: None,
        params: None,
        from,
        to,
    };
    let pg = postmaster(db.control()).await;
    let before = Sample::now(Some(std::process::id()), pg);
    let started = Instant::now();
    let bt = backtest::start(&db, &sandbox, &tenant, &system, &req).await?;
    backtest::run(db.clone(), cache, tenant.clone(), bt.id).await;
    let wall = started.elapsed();
    let usage = before.and_then(|s| s.usage(Some(std::process::id()), pg));
    let done = backtest::get(&db, &tenant, &system, bt.id).await?;
    if done.status != "done" {
        anyhow::bail!("the backtest ended {}: {:?}", done.status, done.error);
    }
    report(&done, wall, usage, anchor);
    Ok(())
}

/// Members and recorded purchases (¥38 to ¥608), as a partner's events would have left
/// them (status applied, no effects: the mall had no rule). Returns the local days.
async fn seed(
    db: &Db,
    tenant: &platform::directory::Tenant,
    args: &Args,
) -> anyhow::Result<(chrono::NaiveDate, chrono::NaiveDate)> {
    let tz = tenant.settings.tz();
    let today = platform::localtime::day(tz, Utc::now());
    let (from, to) = (today - chrono::Duration::days(args.days.clamp(1, 92)), today - chrono::Duration::days(1));
    let starts = platform::localtime::start_of(tz, from);
    let span_secs = (platform::localtime::start_of(tz, today) - starts).num_seconds();
    let mut tx = db.cluster(&tenant.cluster)?.begin().await?;
    select_schema(&mut tx, &tenant.schema_name).await?;
    sqlx::query(
        "INSERT INTO members (email, invite_code, created_at) \
         SELECT 'b' || i || '@bench.test', 'B' || i, $2::timestamptz - interval '1 day' FROM generate_series(1, $1) i",
    )
    .bind(args.members)
    .bind(starts)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO events (event_key, type, member_id, data, occurred_at, source, status) \
         SELECT 'bt-' || i, 'purchase', (SELECT min(id) FROM members) + i % $2, \
                jsonb_build_object('amount_fen', 3800 + (i * 7919 % 20) * 3000), \
                $3::timestamptz + make_interval(secs => (i::float8 * $4 / ($1 + 1))), 'partner', 'applied' \
         FROM generate_series(1, $1) i",
    )
    .bind(args.events)
    .bind(args.members)
    .bind(starts)
    .bind(span_secs as f64)
    .execute(&mut *tx)
    .await?;
    sqlx::query("ANALYZE events").execute(&mut *tx).await?;
    sqlx::query("ANALYZE members").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok((from, to))
}

/// The anchor's rates: per wall second, and per CPU-second of this process (the loop is
/// its only busy thread), which a busy machine moves less.
struct Anchor {
    per_sec: f64,
    per_cpu_sec: Option<f64>,
}

/// The rule on one typical event in a tight loop, AST cached: evaluations per second,
/// and how many ran.
fn anchor(sandbox: &Sandbox, seconds: f64) -> anyhow::Result<(f64, u64)> {
    let ast = sandbox.compile(RULE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let input = Input {
        event: EventInput {
            kind: "purchase".into(),
            id: "anchor".into(),
            occurred_at: "2026-11-30T12:00:00+08:00".into(),
            day: "2026-11-30".into(),
            data: serde_json::json!({"amount_fen": 38_800}),
        },
        member: MemberInput {
            id: 1,
            level: LevelInput {
                name: "普通".into(),
                threshold: 0,
                benefits: serde_json::json!({"earn_multiplier": 1.0}),
            },
            ..MemberInput::default()
        },
        params: serde_json::json!({"points_per_yuan": 1, "tiers": [[50_000, 20], [100_000, 60]]}),
    };
    let budget = Duration::from_secs_f64(seconds.max(0.1));
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < budget {
        for _ in 0..32 {
            std::hint::black_box(sandbox.run(&ast, &input).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        n += 32;
    }
    Ok((n as f64 / started.elapsed().as_secs_f64(), n))
}

fn report(done: &backtest::Backtest, wall: Duration, usage: Option<bench::cpu::Usage>, anchor: Anchor) {
    let per_sec = done.events_done as f64 / wall.as_secs_f64();
    let result = done.result.clone().unwrap_or_default();
    let points: i64 = result["currencies"]
        .as_array()
        .map(|cs| cs.iter().filter(|c| c["currency"] == "points").filter_map(|c| c["awarded"].as_i64()).sum())
        .unwrap_or(0);
    println!(
        "backtest of spend_per_yuan over {} events ({} to {}): {:.2} s, {} events/s (wall); {} points awarded, {} members reached",
        thousands(done.events_done as f64),
        done.from_day,
        done.to_day,
        wall.as_secs_f64(),
        thousands(per_sec),
        thousands(points as f64),
        thousands(result["members_reached"].as_f64().unwrap_or(0.0)),
    );
    let per_cpu = usage.and_then(|u| u.process_secs).filter(|s| *s > 0.0).map(|s| done.events_done as f64 / s);
    if let Some(u) = usage {
        println!("  CPU during the run: {}", u.describe("bench-backtest"));
    }
    if let Some(c) = per_cpu {
        println!("  {} events per CPU-second of this process (one core's worth)", thousands(c));
    }
    println!(
        "anchor: the same rule in a tight loop on this thread, {} evaluations/s; the backtest's wall rate is {:.2} of it",
        thousands(anchor.per_sec),
        per_sec / anchor.per_sec
    );
    if let (Some(a), Some(c)) = (anchor.per_cpu_sec, per_cpu) {
        println!(
            "  per CPU-second: anchor {} evaluations, backtest {} events, ratio {:.2} (less moved by a busy machine)",
            thousands(a),
            thousands(c),
            c / a
        );
    }
    // The replay runs on one evaluation thread; its CPU-seconds are one core's work, which
    // a machine shared with other work slows less than the wall clock.
    let one_core = per_cpu.unwrap_or(per_sec);
    println!(
        "target ≥ {} events/s on one core: {} ({} events per CPU-second)",
        thousands(TARGET_EVENTS_PER_SEC),
        verdict(one_core >= TARGET_EVENTS_PER_SEC),
        thousands(one_core)
    );
}
