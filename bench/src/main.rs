//! `bench-tenants`: how the platform behaves with many tenants. It provisions N tenants,
//! times the migration runner over them (a no-op pass and one real new migration),
//! measures the resident memory of the real server as it touches every tenant, and
//! drops the tenants again. It prints figures; it never fails because they are slow.
//!
//! See bench/README.md for how to run it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use futures::StreamExt;
use migrations::Migration;
use platform::audit::Actor;
use platform::db::Db;
use platform::directory::Tenant;
use platform::migrate;
use platform::tenancy::{self, NewTenant};

use bench::cleanup::drop_tenants;
use bench::progress::bar as progress_bar;
use bench::server::{self, Memory, Server, Touch};
use bench::stats::{Latency, mib, rate, secs};
use bench::{build_kind, random_runid, verdict};

/// Targets the figures are compared with (printed, never enforced).
const TARGET_PROVISION_MS: f64 = 200.0;
const TARGET_MIGRATE_SECS: f64 = 60.0;

/// The extra migration of the "real" migration pass. It is applied through
/// `migrate_tenant` with an explicit list, never added to `migrations::TENANT`.
const BENCH_MIGRATION_NAME: &str = "9999_bench";
const BENCH_MIGRATION_SQL: &str = "CREATE TABLE bench_probe (id bigint PRIMARY KEY)";

/// Slugs of every bench run: `bench-<runid>-<i>` (sequential pass) and
/// `bench-<runid>-c<i>` (concurrent pass).
const ANY_RUN_PATTERN: &str = "^bench-[a-z0-9]{6}-c?[0-9]+$";

#[derive(Parser)]
#[command(
    name = "bench-tenants",
    version,
    about = "Provisioning, migration and server-memory figures for many tenants (prints figures; not a test)"
)]
struct Args {
    /// PostgreSQL URL of the main cluster (holds the control schema).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Tenants to provision (and to migrate and touch through the server).
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Tenants created at the same time in a second provisioning pass, which creates
    /// another N tenants and drops them right after (0 or 1 skips that pass).
    #[arg(long, default_value_t = 4)]
    provision_concurrency: usize,
    /// Tenants migrated at the same time (both migration passes; at most 64).
    #[arg(long, default_value_t = platform::limits::MIGRATE_CONCURRENCY_DEFAULT)]
    migrate_concurrency: usize,
    /// Server binary [default: target/release/pointsmall, else target/debug/pointsmall].
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
    /// Requests in flight at the same time against the server.
    #[arg(long, default_value_t = 16)]
    request_concurrency: usize,
    /// Write the server's log (stderr) to this file instead of discarding it.
    #[arg(long)]
    server_log: Option<std::path::PathBuf>,
    /// Skip the server memory measurement.
    #[arg(long)]
    skip_server: bool,
    /// Keep this run's bench tenants instead of dropping them at the end.
    #[arg(long)]
    keep: bool,
    /// Only drop the bench tenants left by earlier runs (--keep or interrupted), then exit.
    #[arg(long)]
    purge: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-tenants: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the phases, then cleans up and prints the summary whatever happened; returns
/// the first error, if any.
async fn bench(args: Args) -> anyhow::Result<()> {
    let pool_size =
        args.provision_concurrency.max(args.migrate_concurrency.min(platform::limits::MIGRATE_CONCURRENCY_MAX)).max(1)
            + 4;
    let db = Db::connect(&args.database_url, &[], pool_size as u32).await.context("connecting to DATABASE_URL")?;
    migrate::migrate_control(db.control()).await.context("migrating the control schema")?;

    if args.purge {
        let (n, took) = drop_tenants(db.control(), ANY_RUN_PATTERN, "purging bench tenants").await?;
        println!("purged {n} bench tenant(s) in {}", secs(took));
        return Ok(());
    }

    let runid = random_runid();
    println!(
        "bench-tenants run {runid}: {} tenants, {} build{}",
        args.tenants,
        build_kind(),
        if cfg!(debug_assertions) { " (debug figures are not representative; use --release)" } else { "" }
    );
    let mut report = Report { runid: runid.clone(), ..Report::default() };
    let outcome = tokio::select! {
        r = run(&args, &db, &runid, &mut report) => r,
        _ = tokio::signal::ctrl_c() => {
            // A second Ctrl-C ends the process without waiting for the cleanup.
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                std::process::exit(130);
            });
            Err(anyhow!("interrupted"))
        }
    };
    if args.keep {
        println!("--keep: this run's tenants (bench-{runid}-*) stay; drop them later with `bench-tenants --purge`");
    } else {
        let pattern = format!("^bench-{runid}-c?[0-9]+$");
        match drop_tenants(db.control(), &pattern, "dropping bench tenants").await {
            Ok(done) => report.cleanup = Some(done),
            Err(e) => eprintln!("bench-tenants: cleanup failed: {e:#}; run `bench-tenants --purge` to retry"),
        }
    }
    report.print();
    outcome
}

/// The measured phases, in order; each stores its figures in `report` as it ends.
async fn run(args: &Args, db: &Db, runid: &str, report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(args.tenants >= 1, "--tenants must be at least 1");
    let n = args.tenants;
    // Found before provisioning, so a missing binary costs nothing.
    let server_bin = if args.skip_server { None } else { Some(server::find_binary(args.server_bin.as_deref())?) };

    // 1. Provisioning, one at a time: the latency of one create_tenant.
    println!("\n== provisioning ==");
    let slugs = (0..n).map(|i| format!("bench-{runid}-{i}")).collect();
    let (tenants, seq) = provision(db, slugs, 1, "provisioning (sequential)").await?;
    println!("sequential:     {}", seq.describe());
    report.provision = Some(seq);

    // 1b. The same number again, C at a time: throughput under concurrency.
    if args.provision_concurrency > 1 {
        let c = args.provision_concurrency;
        let slugs = (0..n).map(|i| format!("bench-{runid}-c{i}")).collect();
        let (_, conc) = provision(db, slugs, c, "provisioning (concurrent)").await?;
        println!("concurrency {c:<3} {}", conc.describe());
        report.provision_concurrent = Some(conc);
        let pattern = format!("^bench-{runid}-c[0-9]+$");
        let (dropped, took) = drop_tenants(db.control(), &pattern, "dropping the concurrent-pass tenants").await?;
        println!(
            "dropped those {dropped} tenants again in {} ({:.1} ms/tenant)",
            secs(took),
            took.as_secs_f64() * 1e3 / dropped.max(1) as f64
        );
    }

    // 2. The migration runner with nothing pending (what every deploy does).
    println!("\n== migrations ==");
    let bar = progress_bar(0, "migrate_all (no-op)");
    let b = bar.clone();
    let progress: migrate::Progress = Arc::new(move |done, total| {
        b.set_length(total as u64);
        b.set_position(done as u64);
    });
    let noop = migrate::migrate_all(db, args.migrate_concurrency, Some(progress)).await?;
    bar.finish_and_clear();
    println!(
        "migrate_all (no-op): {} tenants present ({} ours), {} changed, {} failed, {} ({:.0} tenants/s)",
        noop.tenants_total,
        n,
        noop.tenants_changed,
        noop.failures.len(),
        secs(noop.elapsed),
        rate(noop.tenants_total, noop.elapsed)
    );
    for (slug, err) in noop.failures.iter().take(5) {
        println!("  failed: {slug}: {err}");
    }
    report.migrate_noop = Some(noop);

    // 2b. One new migration that really changes every tenant, then undone.
    let real = migrate_new(db, &tenants, args.migrate_concurrency).await;
    println!("{}", real.describe());
    for (slug, err) in real.failures.iter().take(5) {
        println!("  failed: {slug}: {err}");
    }
    let failed = real.failures.len() + real.undo_failures.len();
    if let Some(e) = real.undo_failures.first() {
        println!("  undo failed: {e}");
    }
    report.migrate_new = Some(real);
    if failed > 0 {
        bail!("the bench migration failed or could not be undone for {failed} tenant(s)");
    }

    // 3. Memory of the real server as it touches one tenant, then every tenant.
    match server_bin {
        None => println!("\n(server memory skipped: --skip-server)"),
        Some(bin) => {
            println!("\n== server memory ==");
            report.server = Some(server_memory(args, &bin, &tenants).await?);
        }
    }
    Ok(())
}

/// Figures of one provisioning pass.
#[derive(Debug, Clone)]
struct Provisioned {
    tenants: usize,
    concurrency: usize,
    wall: Duration,
    latency: Latency,
}

impl Provisioned {
    fn describe(&self) -> String {
        format!(
            "{} tenants in {}, {:.1} ms/tenant wall; latency mean {:.1} ms, p50 {:.1}, p99 {:.1}, max {:.1}; {:.1} tenants/s",
            self.tenants,
            secs(self.wall),
            self.wall.as_secs_f64() * 1e3 / self.tenants.max(1) as f64,
            self.latency.mean_ms,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            rate(self.tenants, self.wall)
        )
    }
}

/// Creates one tenant per slug with `tenancy::create_tenant`, `concurrency` at a time.
async fn provision(
    db: &Db,
    slugs: Vec<String>,
    concurrency: usize,
    label: &str,
) -> anyhow::Result<(Vec<Tenant>, Provisioned)> {
    let total = slugs.len();
    let actor = Actor::system("bench-tenants");
    let bar = progress_bar(total as u64, label);
    let started = Instant::now();
    let mut created = Vec::with_capacity(total);
    let mut latencies = Vec::with_capacity(total);
    let mut results = futures::stream::iter(slugs)
        .map(|slug| {
            let actor = &actor;
            async move {
                let new = NewTenant { name: format!("Bench {slug}"), slug, alliance: None, cluster: None };
                let t0 = Instant::now();
                let r = tenancy::create_tenant(db, &new, actor).await;
                (new.slug, t0.elapsed(), r)
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((slug, took, r)) = results.next().await {
        created.push(r.with_context(|| format!("creating tenant {slug}"))?);
        latencies.push(took);
        bar.inc(1);
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    created.sort_by_key(|t| t.id);
    Ok((
        created,
        Provisioned { tenants: total, concurrency: concurrency.max(1), wall, latency: Latency::of(&latencies) },
    ))
}

/// Figures of the pass that applies one new migration to every bench tenant.
#[derive(Debug, Default)]
struct NewMigration {
    tenants: usize,
    concurrency: usize,
    applied: usize,
    failures: Vec<(String, String)>,
    elapsed: Duration,
    undo_elapsed: Duration,
    undo_failures: Vec<String>,
}

impl NewMigration {
    fn describe(&self) -> String {
        format!(
            "migrate_tenant (1 new migration) ×{} concurrent: {} tenants, {} applied, {} failed, {} ({:.0} tenants/s); undone in {}",
            self.concurrency,
            self.tenants,
            self.applied,
            self.failures.len(),
            secs(self.elapsed),
            rate(self.tenants, self.elapsed),
            secs(self.undo_elapsed)
        )
    }
}

/// Applies `migrations::TENANT` plus one bench migration to every tenant through
/// `migrate::migrate_tenant` (per tenant: one transaction under its advisory lock), then
/// removes the bench migration again so the schemas match this binary's list.
async fn migrate_new(db: &Db, tenants: &[Tenant], concurrency: usize) -> NewMigration {
    let concurrency = concurrency.clamp(1, platform::limits::MIGRATE_CONCURRENCY_MAX);
    let previous = migrations::TENANT.last().map_or(0, |m| m.version);
    let mut list = migrations::TENANT.to_vec();
    list.push(Migration { version: previous + 1, name: BENCH_MIGRATION_NAME, sql: BENCH_MIGRATION_SQL });
    let list = &list;
    let mut out = NewMigration { tenants: tenants.len(), concurrency, ..NewMigration::default() };

    let bar = progress_bar(tenants.len() as u64, "migrating (1 new migration)");
    let started = Instant::now();
    let results: Vec<(&Tenant, platform::Result<usize>)> = futures::stream::iter(tenants)
        .map(|t| {
            let bar = &bar;
            async move {
                let r = match db.cluster(&t.cluster) {
                    Ok(pool) => migrate::migrate_tenant(pool, db.control(), t, list).await,
                    Err(e) => Err(e),
                };
                bar.inc(1);
                (t, r)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    out.elapsed = started.elapsed();
    bar.finish_and_clear();
    for (t, r) in results {
        match r {
            Ok(n) => out.applied += n,
            Err(e) => out.failures.push((t.slug.clone(), e.to_string())),
        }
    }

    // Undo on every tenant (also those that failed: DROP TABLE IF EXISTS is harmless).
    let bar = progress_bar(tenants.len() as u64, "undoing the bench migration");
    let started = Instant::now();
    let undone: Vec<anyhow::Result<()>> = futures::stream::iter(tenants)
        .map(|t| {
            let bar = &bar;
            async move {
                let r = undo_bench_migration(db, t, previous).await.with_context(|| format!("tenant {}", t.slug));
                bar.inc(1);
                r
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    out.undo_elapsed = started.elapsed();
    bar.finish_and_clear();
    out.undo_failures = undone.into_iter().filter_map(|r| r.err().map(|e| format!("{e:#}"))).collect();
    out
}

async fn undo_bench_migration(db: &Db, t: &Tenant, previous: i64) -> anyhow::Result<()> {
    let mut tx = db.tenant_tx(&t.cluster, &t.schema_name).await?;
    sqlx::raw_sql("DROP TABLE IF EXISTS bench_probe").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM schema_migrations WHERE version > $1").bind(previous).execute(&mut *tx).await?;
    tx.commit().await?;
    sqlx::query("UPDATE control.tenants SET schema_version = $2, updated_at = now() WHERE id = $1")
        .bind(t.id)
        .bind(previous)
        .execute(db.control())
        .await?;
    Ok(())
}

/// Figures of the server memory measurement.
#[derive(Debug)]
struct ServerMemory {
    binary: String,
    tenants: usize,
    base: Memory,
    after_one: Memory,
    after_all: Memory,
    one: Touch,
    all: Touch,
}

impl ServerMemory {
    /// RSS growth per tenant seen for the first time in the all-tenants pass (the
    /// anchor pass already touched one of them), in KiB.
    fn growth_per_tenant_kib(&self) -> f64 {
        let new_tenants = self.tenants.saturating_sub(1).max(1);
        (self.after_all.rss_kib as f64 - self.after_one.rss_kib as f64) / new_tenants as f64
    }
}

/// Starts the server, touches one tenant N times (warm-up anchor), then every tenant
/// once, reading VmRSS before and after each pass. The server is killed at the end,
/// and also when a step fails (the handle kills it when dropped).
async fn server_memory(args: &Args, bin: &Path, tenants: &[Tenant]) -> anyhow::Result<ServerMemory> {
    println!("server binary: {}", bin.display());
    let concurrency = args.request_concurrency.max(1);
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(concurrency).timeout(Duration::from_secs(60)).build()?;
    let srv = Server::start(bin, &args.database_url, args.server_log.as_deref(), &client).await?;
    let base = srv.memory()?;
    println!("after start-up:            RSS {}", mib(base.rss_kib));

    let n = tenants.len();
    let anchor = tenants[0].slug.as_str();
    let bar = progress_bar(n as u64, "requests to one tenant");
    let one = server::touch(&client, &srv.base_url, std::iter::repeat_n(anchor, n), concurrency, &bar).await;
    bar.finish_and_clear();
    check_touch(&one)?;
    let after_one = srv.memory()?;
    println!("after 1 tenant × {n} req:  RSS {}   [{}]", mib(after_one.rss_kib), one.describe());

    let bar = progress_bar(n as u64, "requests to every tenant");
    let all = server::touch(&client, &srv.base_url, tenants.iter().map(|t| t.slug.as_str()), concurrency, &bar).await;
    bar.finish_and_clear();
    check_touch(&all)?;
    let after_all = srv.memory()?;
    println!("after {n} tenants × 1 req: RSS {}   [{}]", mib(after_all.rss_kib), all.describe());
    println!("peak (VmHWM):              {}", mib(after_all.hwm_kib));
    srv.stop().await?;
    let figures = ServerMemory { binary: bin.display().to_string(), tenants: n, base, after_one, after_all, one, all };
    println!("growth from tenant count:  {:+.1} KiB/tenant", figures.growth_per_tenant_kib());
    Ok(figures)
}

/// Every request must have reached the tenant's schema (401 for the unknown token);
/// anything else means the measurement is not what it claims to be.
fn check_touch(t: &Touch) -> anyhow::Result<()> {
    if t.expected() == t.requests {
        return Ok(());
    }
    bail!(
        "expected 401 from every refresh request, got {}{}",
        t.describe(),
        t.first_error.as_deref().map(|e| format!(" (first transport error: {e})")).unwrap_or_default()
    )
}

/// Everything measured, printed as one block at the end (also after a failure, with
/// what was measured up to it).
#[derive(Default)]
struct Report {
    runid: String,
    provision: Option<Provisioned>,
    provision_concurrent: Option<Provisioned>,
    migrate_noop: Option<migrate::Summary>,
    migrate_new: Option<NewMigration>,
    server: Option<ServerMemory>,
    cleanup: Option<(usize, Duration)>,
}

impl Report {
    fn print(&self) {
        println!("\n== summary (run {}, {} build) ==", self.runid, build_kind());
        if let Some(p) = &self.provision {
            println!(
                "provision: {} tenants, {:.1} ms/tenant mean (p50 {:.1}, p99 {:.1}), {:.1} tenants/s, target ≤ {TARGET_PROVISION_MS:.0} ms: {}",
                p.tenants,
                p.latency.mean_ms,
                p.latency.p50_ms,
                p.latency.p99_ms,
                rate(p.tenants, p.wall),
                verdict(p.latency.mean_ms <= TARGET_PROVISION_MS)
            );
        }
        if let Some(p) = &self.provision_concurrent {
            println!(
                "provision ×{} concurrent: {} tenants, {:.1} ms/tenant wall, latency mean {:.1} ms (p50 {:.1}, p99 {:.1}), {:.1} tenants/s",
                p.concurrency,
                p.tenants,
                p.wall.as_secs_f64() * 1e3 / p.tenants.max(1) as f64,
                p.latency.mean_ms,
                p.latency.p50_ms,
                p.latency.p99_ms,
                rate(p.tenants, p.wall)
            );
        }
        match (&self.migrate_noop, &self.migrate_new) {
            (Some(noop), Some(new)) => println!(
                "migrate (no-op) over {} tenants: {}; migrate (1 new migration) over {} tenants: {}, target ≤ {TARGET_MIGRATE_SECS:.0} s: {}",
                noop.tenants_total,
                secs(noop.elapsed),
                new.tenants,
                secs(new.elapsed),
                verdict(new.elapsed.as_secs_f64() <= TARGET_MIGRATE_SECS)
            ),
            (Some(noop), None) => {
                println!("migrate (no-op) over {} tenants: {}", noop.tenants_total, secs(noop.elapsed))
            }
            _ => {}
        }
        if let Some(s) = &self.server {
            println!(
                "server RSS: base {}, after 1 tenant×{} requests {}, after {} tenants {} ({:+.1} KiB/tenant); peak {}",
                mib(s.base.rss_kib),
                s.one.requests,
                mib(s.after_one.rss_kib),
                s.tenants,
                mib(s.after_all.rss_kib),
                s.growth_per_tenant_kib(),
                mib(s.after_all.hwm_kib)
            );
            println!(
                "server requests: 1 tenant {:.0} req/s, {} tenants {:.0} req/s ({})",
                rate(s.one.requests, s.one.elapsed),
                s.tenants,
                rate(s.all.requests, s.all.elapsed),
                s.binary
            );
        }
        if let Some((n, took)) = self.cleanup {
            println!("cleanup: {n} bench tenants dropped in {}", secs(took));
        }
    }
}
