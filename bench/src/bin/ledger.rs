//! `bench-ledger`: the ledger-only earn path over HTTP. C partner clients post batches
//! of B credits (`POST /v1/tenants/{t}/partner/points/credits`, a unique
//! `Idempotency-Key` each) to random members of a fresh tenant for D seconds, then
//! single credits (B = 1) for D seconds; the anchor is `pgbench -b tpcb-like` on the same
//! PostgreSQL with the same clients and duration. Ends with `pointsmall ledger verify`.
//!
//! See bench/README.md for how to run it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bench::api::{self, Api, Fixture};
use bench::cpu::{self, Usage};
use bench::harness::{self, AnchorArgs, ServerArgs};
use bench::load::{self, Phase};
use bench::pgbench::Anchor;
use bench::{build_kind, build_note, machine_load, random_runid, server, thousands, verdict};
use clap::Parser;
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::{Value, json};

/// Entries per second for each pgbench transaction per second.
const TARGET_RATIO: f64 = 1.0;

#[derive(Parser)]
#[command(
    name = "bench-ledger",
    version,
    about = "Ledger-only earn path: partner credit batches over HTTP against a pgbench anchor (prints figures; not a test)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    anchor: AnchorArgs,
    /// Members of the bench tenant (credits go to random ones).
    #[arg(long, default_value_t = 200)]
    members: usize,
    /// Partner clients posting at the same time (also pgbench's client count).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Credits per request (1 to 500); a second phase always measures single credits.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Seconds of each measured phase (and of the pgbench anchor).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of unmeasured load before the first phase (pools, caches).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Send a batch's credits in random order instead of by member id (the server locks
    /// a batch's accounts in one order whatever the items' order; this checks it).
    #[arg(long)]
    unsorted: bool,
    /// Turn the reports' rollup trigger on the bench mall's entries off, to measure what
    /// the rollups cost the earn path against a run with them.
    #[arg(long)]
    no_rollups: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-ledger: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Report {
    phases: Vec<(usize, Phase, Option<Usage>)>,
    anchor: Option<Anchor>,
    verified: Option<String>,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let db = harness::connect(&args.server.database_url).await?;
    if args.server.purge {
        return harness::purge(&db).await;
    }
    anyhow::ensure!((1..=500).contains(&args.batch), "--batch must be 1 to 500 (the API's bound)");
    anyhow::ensure!(args.members >= 1, "--members must be at least 1");
    anyhow::ensure!(args.seconds >= 1, "--seconds must be at least 1");
    let runid = random_runid();
    let slug = harness::slug("ledger", &runid);
    println!(
        "bench-ledger run {runid}: {} clients, batches of {} (and 1), {} s per phase, {} members, {} build{}; {}",
        args.clients,
        args.batch,
        args.seconds,
        args.members,
        build_kind(),
        build_note(),
        machine_load()
    );
    let mut report = Report::default();
    let outcome = harness::interruptible(run(&args, &db, &runid, &slug, &mut report)).await;
    harness::clean_up(&db, &args.server, &slug, &runid).await;
    print_summary(&args, &runid, &report);
    outcome
}

async fn run(args: &Args, db: &platform::db::Db, runid: &str, slug: &str, report: &mut Report) -> anyhow::Result<()> {
    let bin = server::find_binary(args.server.server_bin.as_deref())?;
    let pg = harness::prepare_anchor(db, &args.server.database_url, &args.anchor).await?;

    let client = api::client(args.clients)?;
    let srv = harness::start_server(&args.server, &bin, &client).await?;
    let postmaster = cpu::postmaster(db.control()).await;
    let api = Api::new(client, srv.base_url.clone());
    let (_admin, fixture) = harness::set_up(db, &api, runid, slug, args.members).await?;
    harness::rollups(db, slug, args.no_rollups).await?;
    harness::settle().await;

    if args.warmup > 0 {
        credits(&api, &fixture, args, runid, "warm-up", args.batch, args.warmup).await?;
    }
    let mut batches = vec![args.batch];
    if args.batch != 1 {
        batches.push(1);
    }
    for b in batches {
        harness::checkpoint(db).await;
        let sample = cpu::Sample::now(Some(srv.pid()), postmaster);
        let phase = credits(&api, &fixture, args, runid, &format!("B={b}"), b, args.seconds).await?;
        let usage = sample.and_then(|s| s.usage(Some(srv.pid()), postmaster));
        println!(
            "credits B={b}: {} requests in {:.2} s: {} entries/s, {} req/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            phase.requests,
            phase.wall.as_secs_f64(),
            thousands(phase.items_per_sec()),
            thousands(phase.requests_per_sec()),
            phase.latency.p50_ms,
            phase.latency.p99_ms,
            phase.latency.max_ms
        );
        if let Some(u) = &usage {
            println!("  {}", u.describe("server"));
        }
        report.phases.push((b, phase, usage));
    }
    srv.stop().await?;

    report.anchor = Some(harness::run_anchor(db, &pg, args.clients, args.seconds, args.anchor.pgbench_scale).await?);
    report.verified = Some(harness::verify(&bin, &args.server.database_url, slug).await?);
    Ok(())
}

/// One timed phase of credit batches of `batch` items.
async fn credits(
    api: &Api,
    fixture: &Fixture,
    args: &Args,
    runid: &str,
    label: &str,
    batch: usize,
    seconds: u64,
) -> anyhow::Result<Phase> {
    let path = format!("/v1/tenants/{}/partner/points/credits", fixture.slug);
    let url = format!("{}{path}", api.base);
    let (path, url) = (&path, &url);
    let tag = label.replace(['=', ' '], "");
    load::run(&format!("credits {label}"), args.clients, Duration::from_secs(seconds), |c, n| {
        let body = credit_batch(&fixture.members, batch, !args.unsorted);
        let request = api
            .client
            .post(url)
            .header("x-api-key", &fixture.api_key)
            .header("idempotency-key", format!("{runid}-{tag}-{c}-{n}"))
            .json(&body);
        async move {
            let resp = request.send().await.with_context(|| format!("POST {path}: no answer"))?;
            let status = resp.status();
            let text = resp.text().await.with_context(|| format!("POST {path}: reading the answer"))?;
            if status != reqwest::StatusCode::CREATED {
                bail!(
                    "POST {path} with {batch} credit(s) answered {status} (expected 201): {}",
                    api::shorten(&text, 600)
                );
            }
            Ok(batch)
        }
    })
    .await
}

/// `{"items": [...]}`: `batch` credits of 1 to 100 points to distinct random members
/// (with repeats only when the batch is larger than the member list), ordered by member
/// id unless `sorted` is false.
fn credit_batch(members: &[i64], batch: usize, sorted: bool) -> Value {
    let mut rng = rand::rng();
    let mut ids: Vec<i64> = if batch <= members.len() {
        members.choose_multiple(&mut rng, batch).copied().collect()
    } else {
        (0..batch).map(|_| members[rng.random_range(0..members.len())]).collect()
    };
    if sorted {
        ids.sort_unstable();
    } else {
        ids.shuffle(&mut rng);
    }
    let items: Vec<Value> = ids
        .into_iter()
        .map(|m| json!({"member_id": m, "amount": rng.random_range(1..=100), "reference": "bench"}))
        .collect();
    json!({ "items": items })
}

fn print_summary(args: &Args, runid: &str, report: &Report) {
    println!("\n== summary (run {runid}, {} build, {}) ==", build_kind(), machine_load());
    for (b, p, usage) in &report.phases {
        println!(
            "credits B={b}: {} clients × {:.1} s: {} entries/s, {} req/s, latency p50 {:.1} ms, p99 {:.1} ms ({} requests{}){}",
            p.clients,
            p.wall.as_secs_f64(),
            thousands(p.items_per_sec()),
            thousands(p.requests_per_sec()),
            p.latency.p50_ms,
            p.latency.p99_ms,
            p.requests,
            if args.unsorted { ", unsorted batches" } else { "" },
            usage.map(|u| format!("; {}", u.describe("server"))).unwrap_or_default()
        );
    }
    if let Some(a) = &report.anchor {
        println!("anchor: {}", a.describe());
        for (b, p, _) in &report.phases {
            let ratio = p.items_per_sec() / a.tps;
            println!(
                "ratio entries/s ÷ pgbench TPS, B={b}: {ratio:.2} (target ≥ {TARGET_RATIO:.1}: {})",
                verdict(ratio >= TARGET_RATIO)
            );
        }
    }
    if let Some(v) = &report.verified {
        println!("ledger verify: {v}");
    }
}
