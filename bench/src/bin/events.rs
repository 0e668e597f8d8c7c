//! `bench-events`: events end to end over HTTP with rules applied. Installs two library
//! rules through the staff API (`engagement_caps` for every event type, with the
//! parameters of its test file; `spend_per_yuan` for `order_completed`, likewise), then C
//! partner clients post batches of B events (`order_completed` with
//! `{"amount_fen": N}`, and `shared`), each with a unique id, to
//! `POST /v1/tenants/{t}/partner/events` for D seconds. The anchor is
//! `pgbench -b tpcb-like` with the same clients and duration. Ends with
//! `pointsmall ledger verify`.
//!
//! See bench/README.md for how to run it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
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

/// Events per second for each pgbench transaction per second.
const TARGET_RATIO: f64 = 1.0;

/// The rules installed: file stem, event type.
const RULES: &[(&str, &str)] = &[("engagement_caps", "*"), ("spend_per_yuan", "order_completed")];

#[derive(Parser)]
#[command(
    name = "bench-events",
    version,
    about = "Events over HTTP through library rules into the ledger, against a pgbench anchor (prints figures; not a test)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    anchor: AnchorArgs,
    /// Members of the bench tenant (events are about random ones).
    #[arg(long, default_value_t = 200)]
    members: usize,
    /// Partner clients posting at the same time (also pgbench's client count).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// The tenant's limits (set by the platform operator): event batches at once
    /// (default: one per client) and rule evaluations at once (default 2, one per core).
    #[arg(long)]
    event_batches: Option<u32>,
    #[arg(long, default_value_t = 2)]
    rule_evaluations: u32,
    /// Events per request (1 to 100).
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Seconds of the measured phase (and of the pgbench anchor).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of unmeasured load before the measured phase.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Share of `order_completed` events (the rest are `shared`).
    #[arg(long, default_value_t = 0.5)]
    order_share: f64,
    /// Folder of the rule library.
    #[arg(long, default_value = "examples/rules")]
    rules_dir: PathBuf,
    /// Send a batch's events in random order instead of by member id (see bench-ledger
    /// --unsorted: events of one batch share a transaction).
    #[arg(long)]
    unsorted: bool,
    /// Turn the reports' rollup trigger on the bench mall's entries off (tenant migration
    /// 0013), to measure what the rollups cost the earn path against a run with them.
    #[arg(long)]
    no_rollups: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-events: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the answers said, over a phase.
#[derive(Default, Debug)]
struct Outcomes {
    /// Per event status (applied, denied).
    statuses: BTreeMap<String, usize>,
    /// Effects the rules returned, per kind (each award is one ledger entry).
    effects: BTreeMap<String, usize>,
}

struct Measured {
    phase: Phase,
    outcomes: Outcomes,
    cpu: Option<Usage>,
}

#[derive(Default)]
struct Report {
    measured: Option<Measured>,
    anchor: Option<Anchor>,
    verified: Option<String>,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let db = harness::connect(&args.server.database_url).await?;
    if args.server.purge {
        return harness::purge(&db).await;
    }
    anyhow::ensure!((1..=100).contains(&args.batch), "--batch must be 1 to 100 (the API's bound)");
    anyhow::ensure!(args.members >= 1, "--members must be at least 1");
    anyhow::ensure!(args.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!((0.0..=1.0).contains(&args.order_share), "--order-share must be 0 to 1");
    let runid = random_runid();
    let slug = harness::slug("events", &runid);
    println!(
        "bench-events run {runid}: {} clients, batches of {} events ({:.0}% order_completed), {} s, {} members, {} build{}; {}",
        args.clients,
        args.batch,
        args.order_share * 100.0,
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
    let rules: Vec<(String, &str, String, Value)> = RULES
        .iter()
        .map(|(stem, event_type)| {
            let (script, params) = library_rule(&args.rules_dir, stem)?;
            Ok((stem.to_string(), *event_type, script, params))
        })
        .collect::<anyhow::Result<_>>()?;
    let pg = harness::prepare_anchor(db, &args.server.database_url, &args.anchor).await?;

    let client = api::client(args.clients)?;
    let srv = harness::start_server(&args.server, &bin, &client).await?;
    let postmaster = cpu::postmaster(db.control()).await;
    let api = Api::new(client, srv.base_url.clone());
    let (admin, fixture) = harness::set_up(db, &api, runid, slug, args.members).await?;
    let batches = args.event_batches.unwrap_or(args.clients as u32);
    api::set_limits(&api, &admin, slug, batches, args.rule_evaluations).await?;
    harness::rollups(db, slug, args.no_rollups).await?;
    println!("tenant limits: {batches} event batches, {} rule evaluations at once", args.rule_evaluations);
    for (name, event_type, script, params) in &rules {
        let rule = api::create_rule(&api, &fixture, name, event_type, script, params).await?;
        println!("rule {name} installed for event type {event_type:?} (id {})", rule["id"]);
    }
    harness::settle().await;

    if args.warmup > 0 {
        events(&api, &fixture, args, runid, "warm-up", args.warmup).await?;
    }
    harness::checkpoint(db).await;
    let sample = cpu::Sample::now(Some(srv.pid()), postmaster);
    let mut m = events(&api, &fixture, args, runid, "measured", args.seconds).await?;
    m.cpu = sample.and_then(|s| s.usage(Some(srv.pid()), postmaster));
    let p = &m.phase;
    println!(
        "events B={}: {} requests in {:.2} s: {} events/s, {} req/s, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.batch,
        p.requests,
        p.wall.as_secs_f64(),
        thousands(p.items_per_sec()),
        thousands(p.requests_per_sec()),
        p.latency.p50_ms,
        p.latency.p99_ms,
        p.latency.max_ms
    );
    println!("  outcomes: {}; effects: {}", counts(&m.outcomes.statuses), counts(&m.outcomes.effects));
    if let Some(u) = &m.cpu {
        println!("  {}", u.describe("server"));
    }
    report.measured = Some(m);
    srv.stop().await?;

    report.anchor = Some(harness::run_anchor(db, &pg, args.clients, args.seconds, args.anchor.pgbench_scale).await?);
    report.verified = Some(harness::verify(&bin, &args.server.database_url, slug).await?);
    Ok(())
}

/// A library rule's script and the parameters of its test file.
fn library_rule(dir: &Path, stem: &str) -> anyhow::Result<(String, Value)> {
    let script_path = dir.join(format!("{stem}.rhai"));
    let test_path = dir.join(format!("{stem}.test.json"));
    let script = std::fs::read_to_string(&script_path).with_context(|| {
        format!("reading {} (run from the workspace root or pass --rules-dir)", script_path.display())
    })?;
    let test: Value = serde_json::from_str(
        &std::fs::read_to_string(&test_path).with_context(|| format!("reading {}", test_path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", test_path.display()))?;
    Ok((script, test.get("params").cloned().unwrap_or_else(|| json!({}))))
}

/// One timed phase of event batches.
async fn events(
    api: &Api,
    fixture: &Fixture,
    args: &Args,
    runid: &str,
    label: &str,
    seconds: u64,
) -> anyhow::Result<Measured> {
    let path = format!("/v1/tenants/{}/partner/events", fixture.slug);
    let url = format!("{}{path}", api.base);
    let (path, url) = (&path, &url);
    let outcomes = Mutex::new(Outcomes::default());
    let outcomes_ref = &outcomes;
    let batch = args.batch;
    let phase = load::run(&format!("events {label}"), args.clients, Duration::from_secs(seconds), |c, n| {
        let body =
            event_batch(&fixture.members, batch, args.order_share, !args.unsorted, &format!("{runid}-{label}-{c}-{n}"));
        let request = api.client.post(url).header("x-api-key", &fixture.api_key).json(&body);
        async move {
            let resp = request.send().await.with_context(|| format!("POST {path}: no answer"))?;
            let status = resp.status();
            let text = resp.text().await.with_context(|| format!("POST {path}: reading the answer"))?;
            if status != reqwest::StatusCode::OK {
                bail!(
                    "POST {path} with {batch} event(s) answered {status} (expected 200): {}",
                    api::shorten(&text, 600)
                );
            }
            let answer: Value = serde_json::from_str(&text).with_context(|| format!("POST {path}: not JSON"))?;
            let results = answer["results"].as_array().with_context(|| format!("POST {path}: no results"))?;
            if results.len() != batch {
                bail!("POST {path}: {} results for {batch} events", results.len());
            }
            let mut local = Outcomes::default();
            for r in results {
                let status = r["status"].as_str().unwrap_or("?");
                if status != "applied" && status != "denied" {
                    bail!("event {} was {status}: {}", r["id"], api::shorten(&r["error"].to_string(), 400));
                }
                if r["replayed"].as_bool() == Some(true) {
                    bail!("event {} was a replay, but every event id is new", r["id"]);
                }
                *local.statuses.entry(status.to_string()).or_default() += 1;
                for rule in r["effects"].as_array().into_iter().flatten() {
                    for e in rule["effects"].as_array().into_iter().flatten() {
                        *local.effects.entry(e["kind"].as_str().unwrap_or("?").to_string()).or_default() += 1;
                    }
                }
            }
            let mut all = outcomes_ref.lock().unwrap_or_else(|p| p.into_inner());
            for (k, v) in local.statuses {
                *all.statuses.entry(k).or_default() += v;
            }
            for (k, v) in local.effects {
                *all.effects.entry(k).or_default() += v;
            }
            Ok(batch)
        }
    })
    .await?;
    Ok(Measured { phase, outcomes: outcomes.into_inner().unwrap_or_else(|p| p.into_inner()), cpu: None })
}

/// `{"events": [...]}`: `batch` events about distinct random members (with repeats only
/// when the batch is larger than the member list), ordered by member id unless `sorted`
/// is false; each `order_completed` (100 to 1,500 yuan) with probability `order_share`,
/// else `shared`.
fn event_batch(members: &[i64], batch: usize, order_share: f64, sorted: bool, id_prefix: &str) -> Value {
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
    let events: Vec<Value> = ids
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let id = format!("{id_prefix}-{i}");
            if rng.random_bool(order_share) {
                let fen: i64 = rng.random_range(10_000..=150_000);
                json!({"id": id, "type": "order_completed", "member_id": m, "data": {"amount_fen": fen}})
            } else {
                json!({"id": id, "type": "shared", "member_id": m})
            }
        })
        .collect();
    json!({ "events": events })
}

fn counts(m: &BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

fn print_summary(args: &Args, runid: &str, report: &Report) {
    println!("\n== summary (run {runid}, {} build, {}) ==", build_kind(), machine_load());
    if let Some(m) = &report.measured {
        let p = &m.phase;
        let awards = m.outcomes.effects.get("award").copied().unwrap_or(0);
        println!(
            "events B={}: {} clients × {:.1} s: {} events/s, {} req/s, latency p50 {:.1} ms, p99 {:.1} ms ({} requests{})",
            args.batch,
            p.clients,
            p.wall.as_secs_f64(),
            thousands(p.items_per_sec()),
            thousands(p.requests_per_sec()),
            p.latency.p50_ms,
            p.latency.p99_ms,
            p.requests,
            if args.unsorted { ", unsorted batches" } else { "" }
        );
        println!(
            "  rules: engagement_caps (*), spend_per_yuan (order_completed); {} award effects = {} ledger entries/s; outcomes: {}",
            awards,
            thousands(awards as f64 / p.wall.as_secs_f64().max(1e-9)),
            counts(&m.outcomes.statuses)
        );
        if let Some(u) = &m.cpu {
            println!("  {}", u.describe("server"));
        }
        if let Some(a) = &report.anchor {
            println!("anchor: {}", a.describe());
            let ratio = p.items_per_sec() / a.tps;
            println!(
                "ratio events/s ÷ pgbench TPS: {ratio:.2} (target ≥ {TARGET_RATIO:.1}: {})",
                verdict(ratio >= TARGET_RATIO)
            );
        }
    }
    if let Some(v) = &report.verified {
        println!("ledger verify: {v}");
    }
}
