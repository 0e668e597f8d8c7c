//! `bench-reload`: how fast a new rule version reaches another server instance. Two
//! server children share one database. A rule for `read` events is created through
//! instance A; then, round after round, a new version (`award("points", <n>)`) is saved
//! through A (`PUT …/staff/rules/{id}/script`), and instance B is polled at once with
//! `read` events (`POST …/partner/events`) until an event's result names the new
//! version. The time from A's 200 to B's first new-version result is the propagation
//! time (B learns of the change through PostgreSQL NOTIFY and evicts its cache).
//!
//! Two anchors are measured in the same run: the mechanism's own floor (a NOTIFY sent on
//! one connection until a LISTEN on another receives it), and the resolution of the
//! measurement (one poll of B when no change is pending, taken in every round just
//! before the new version is saved).
//!
//! See bench/README.md for how to run it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::api::{self, Api, Fixture};
use bench::harness::{self, ServerArgs};
use bench::server::{self, Server};
use bench::stats::Latency;
use bench::{build_kind, build_note, machine_load, progress, random_runid, verdict};
use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::postgres::PgListener;

/// p99 of the propagation time.
const TARGET_P99: Duration = Duration::from_secs(1);

const RULE_NAME: &str = "reload-probe";

#[derive(Parser)]
#[command(
    name = "bench-reload",
    version,
    about = "Hot-reload propagation of a rule version between two server instances (prints figures; not a test)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// New versions saved through A, each timed until B runs it.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
    /// Pause between rounds, in milliseconds.
    #[arg(long, default_value_t = 100)]
    gap_ms: u64,
    /// A round whose version B has not run after this many seconds is an error (B
    /// would be serving a stale rule).
    #[arg(long, default_value_t = 30)]
    round_timeout: u64,
    /// Write instance B's log here (--server-log is instance A's).
    #[arg(long)]
    server_log_b: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-reload: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Report {
    propagation: Vec<Duration>,
    polls: Vec<usize>,
    poll_latency: Vec<Duration>,
    notify: Vec<Duration>,
    /// Polls of B with no change pending (one per round, before the save).
    control: Vec<Duration>,
    verified: Option<String>,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let db = harness::connect(&args.server.database_url).await?;
    if args.server.purge {
        return harness::purge(&db).await;
    }
    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let runid = random_runid();
    let slug = harness::slug("reload", &runid);
    println!(
        "bench-reload run {runid}: {} rounds, two server instances, {} build{}; {}",
        args.rounds,
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
    let client = api::client(4)?;
    let srv_a = Server::start(&bin, &args.server.database_url, args.server.server_log.as_deref(), &client).await?;
    let srv_b = Server::start(&bin, &args.server.database_url, args.server_log_b.as_deref(), &client).await?;
    println!("instance A: {}, instance B: {} ({})", srv_a.base_url, srv_b.base_url, bin.display());
    let a = Api::new(client.clone(), srv_a.base_url.clone());
    let b = Api::new(client, srv_b.base_url.clone());
    let (_admin, fixture) = harness::set_up(db, &a, runid, slug, 1).await?;
    let member = fixture.members[0];

    let rule = api::create_rule(&a, &fixture, RULE_NAME, "read", &script(1), &json!({})).await?;
    let rule_id = rule["id"].as_i64().context("the created rule has no id")?;
    let first = rule["current_version"].as_i64().context("the created rule has no current_version")?;
    // B loads the tenant's rules into its cache now, so every round starts from a warm,
    // stale cache (the case that needs the notification).
    let mut seq = 0u64;
    let mut poll = Poller { api: &b, fixture: &fixture, member, runid, seq: &mut seq };
    let (warm, _, _) = poll.until(first, 1, Duration::from_secs(args.round_timeout)).await?;
    println!("instance B runs version {first} after {:.1} ms (cold cache)", warm.as_secs_f64() * 1e3);

    // The anchor: NOTIFY → LISTEN on this database.
    report.notify = notify_latency(db, &args.server.database_url, runid, args.rounds).await?;
    let n = Latency::of(&report.notify);
    println!("anchor NOTIFY → LISTEN: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", n.p50_ms, n.p99_ms, n.max_ms);

    let bar = progress::bar(args.rounds as u64, "rounds");
    let auth = fixture.owner_auth();
    let (mut current, mut current_amount) = (first, 1);
    for round in 1..=args.rounds {
        // The control poll: B runs the current version; how long does a poll take?
        let mut poll = Poller { api: &b, fixture: &fixture, member, runid, seq: &mut seq };
        let (_, _, control) = poll
            .until(current, current_amount, Duration::from_secs(args.round_timeout))
            .await
            .with_context(|| format!("round {round}: the control poll"))?;
        report.control.extend(control);
        let amount = round as i64 + 1;
        let saved = a
            .expect(
                StatusCode::OK,
                Method::PUT,
                &format!("/v1/tenants/{}/staff/rules/{rule_id}/script", fixture.slug),
                &[("authorization", auth.as_str())],
                Some(&json!({"script": script(amount)})),
            )
            .await
            .with_context(|| format!("round {round}: saving a new version through A"))?;
        let version = saved["current_version"].as_i64().context("the saved rule has no current_version")?;
        let mut poll = Poller { api: &b, fixture: &fixture, member, runid, seq: &mut seq };
        let (took, polls, latencies) = poll
            .until(version, amount, Duration::from_secs(args.round_timeout))
            .await
            .with_context(|| format!("round {round} (version {version})"))?;
        (current, current_amount) = (version, amount);
        report.propagation.push(took);
        report.polls.push(polls);
        report.poll_latency.extend(latencies);
        bar.inc(1);
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    }
    bar.finish_and_clear();
    let p = Latency::of(&report.propagation);
    println!(
        "propagation A → B over {} rounds: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rounds, p.p50_ms, p.p99_ms, p.max_ms
    );
    let c = Latency::of(&report.control);
    println!(
        "anchor poll of B with no change pending: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        c.p50_ms, c.p99_ms, c.max_ms
    );
    srv_a.stop().await?;
    srv_b.stop().await?;
    report.verified = Some(harness::verify(&bin, &args.server.database_url, slug).await?);
    Ok(())
}

fn script(amount: i64) -> String {
    format!("award(\"points\", {amount})")
}

/// Posts `read` events to instance B.
struct Poller<'a> {
    api: &'a Api,
    fixture: &'a Fixture,
    member: i64,
    runid: &'a str,
    seq: &'a mut u64,
}

impl Poller<'_> {
    /// Polls until an event's result names `version` (and awards `amount`, which that
    /// version does); returns the time from the call, the polls and their latencies.
    async fn until(
        &mut self,
        version: i64,
        amount: i64,
        timeout: Duration,
    ) -> anyhow::Result<(Duration, usize, Vec<Duration>)> {
        let started = Instant::now();
        let path = format!("/v1/tenants/{}/partner/events", self.fixture.slug);
        let mut latencies = vec![];
        loop {
            *self.seq += 1;
            let body = json!({"events": [{"id": format!("{}-{}", self.runid, self.seq), "type": "read", "member_id": self.member}]});
            let t0 = Instant::now();
            let answer = self
                .api
                .expect(
                    StatusCode::OK,
                    Method::POST,
                    &path,
                    &[("x-api-key", self.fixture.api_key.as_str())],
                    Some(&body),
                )
                .await
                .context("posting an event to B")?;
            latencies.push(t0.elapsed());
            let result = &answer["results"][0];
            if result["status"] != "applied" {
                bail!("B answered an event with {}", api::shorten(&result.to_string(), 400));
            }
            let ran = &result["effects"][0];
            let seen = ran["version"].as_i64().with_context(|| format!("no effects[0].version in {result}"))?;
            if seen == version {
                let awarded = ran["effects"][0]["amount"].as_i64();
                if awarded != Some(amount) {
                    bail!("B ran version {version} but awarded {awarded:?}, not {amount}: {ran}");
                }
                return Ok((started.elapsed(), latencies.len(), latencies));
            }
            if seen > version {
                bail!("B ran version {seen}, newer than the {version} just saved");
            }
            if started.elapsed() > timeout {
                bail!(
                    "instance B still runs version {seen} {:.1} s after A saved version {version}: the change did not reach it",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
}

/// NOTIFY on a pooled connection until a LISTEN connection receives it, `rounds` times.
async fn notify_latency(db: &platform::db::Db, url: &str, runid: &str, rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let channel = format!("bench_reload_{runid}");
    let mut listener = PgListener::connect(url).await.context("connecting the LISTEN connection")?;
    listener.listen(&channel).await?;
    let mut out = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let payload = i.to_string();
        let t0 = Instant::now();
        sqlx::query("SELECT pg_notify($1, $2)").bind(&channel).bind(&payload).execute(db.control()).await?;
        let n = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .context("no notification within 10 s")??;
        out.push(t0.elapsed());
        anyhow::ensure!(n.payload() == payload, "notification {:?} out of order (expected {payload})", n.payload());
    }
    Ok(out)
}

fn print_summary(args: &Args, runid: &str, report: &Report) {
    println!("\n== summary (run {runid}, {} build, {}) ==", build_kind(), machine_load());
    if !report.notify.is_empty() {
        let n = Latency::of(&report.notify);
        println!(
            "anchor NOTIFY → LISTEN ({} round trips): p50 {:.2} ms, p99 {:.2} ms",
            report.notify.len(),
            n.p50_ms,
            n.p99_ms
        );
    }
    if !report.propagation.is_empty() {
        let p = Latency::of(&report.propagation);
        let b = Latency::of(&report.poll_latency);
        let polls = report.polls.iter().sum::<usize>() as f64 / report.polls.len() as f64;
        println!(
            "propagation A → B ({} of {} rounds): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, target p99 ≤ {} ms: {}",
            report.propagation.len(),
            args.rounds,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            TARGET_P99.as_millis(),
            verdict(p.p99_ms <= TARGET_P99.as_secs_f64() * 1e3)
        );
        println!(
            "  polls of B per round: {polls:.1} on average; one poll (POST …/partner/events): p50 {:.1} ms, p99 {:.1} ms",
            b.p50_ms, b.p99_ms
        );
        if !report.control.is_empty() {
            let c = Latency::of(&report.control);
            println!(
                "anchor poll of B with no change pending ({} polls): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                report.control.len(),
                c.p50_ms,
                c.p99_ms,
                c.max_ms
            );
            println!(
                "  ratio propagation ÷ plain poll: p50 {:.2}, p99 {:.2}",
                p.p50_ms / c.p50_ms.max(1e-6),
                p.p99_ms / c.p99_ms.max(1e-6)
            );
        }
        if !report.notify.is_empty() {
            let n = Latency::of(&report.notify);
            println!("  ratio propagation p99 ÷ NOTIFY p99: {:.1}", p.p99_ms / n.p99_ms.max(1e-6));
        }
    }
    if let Some(v) = &report.verified {
        println!("ledger verify: {v}");
    }
}
