//! What the server benchmarks (`bench-ledger`, `bench-events`, `bench-reload`) share:
//! their common options, connecting to the database, the run's tenant and platform
//! operator and their cleanup, the `pgbench` anchor, `ledger verify`, and Ctrl-C.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use platform::db::Db;
use platform::migrate;

use crate::api::{self, ADMIN_EMAIL_PATTERN, Api, Fixture, PlatformAdmin};
use crate::pgbench::{self, Anchor, Pgbench};
use crate::server::{self, Server};
use crate::stats::secs;
use crate::{cleanup, progress};

/// Slugs of every run of these benchmarks: `bench-<kind>-<runid>`.
pub const ANY_RUN_SLUG_PATTERN: &str = "^bench-(ledger|events|reload|flash|catalog)-[a-z0-9]{6}$";

/// Options of every server benchmark.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// PostgreSQL URL of the main cluster (holds the control schema); use a private
    /// cluster such as `scripts/pg.sh bench 55434` prints.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Server binary [default: target/release/pointsmall, else target/debug/pointsmall].
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Write the server's log (stderr) to this file instead of discarding it.
    #[arg(long)]
    pub server_log: Option<PathBuf>,
    /// Keep this run's tenant and platform operator instead of dropping them at the end.
    #[arg(long)]
    pub keep: bool,
    /// Only drop the tenants and operators of earlier runs of the server benchmarks
    /// (bench-ledger, bench-events, bench-reload, bench-flash, bench-catalog), then exit.
    #[arg(long)]
    pub purge: bool,
}

/// Options of the `pgbench` anchor.
#[derive(clap::Args, Debug, Clone)]
pub struct AnchorArgs {
    /// pgbench binary [default: the newest /usr/lib/postgresql/*/bin/pgbench].
    #[arg(long)]
    pub pgbench: Option<PathBuf>,
    /// Scale of the anchor's database `pgbench` (`pgbench -i -s N`; 10 = 1 million accounts).
    #[arg(long, default_value_t = 10)]
    pub pgbench_scale: u32,
}

/// Connects (a small pool: the load goes through the server) and migrates the control
/// schema if needed (a fresh cluster has none; the server does not migrate by itself).
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    let db = Db::connect(url, &[], 4).await.context("connecting to DATABASE_URL")?;
    migrate::migrate_control(db.control()).await.context("migrating the control schema")?;
    Ok(db)
}

/// Drops what earlier runs left (`--keep` or interrupted).
pub async fn purge(db: &Db) -> anyhow::Result<()> {
    let (n, took) = cleanup::drop_tenants(db.control(), ANY_RUN_SLUG_PATTERN, "purging bench tenants").await?;
    let admins = cleanup::drop_platform_staff(db.control(), ADMIN_EMAIL_PATTERN).await?;
    println!("purged {n} bench tenant(s) in {} and {admins} bench platform operator(s)", secs(took));
    Ok(())
}

/// The tenant slug of a run of `kind` (ledger, events, reload).
pub fn slug(kind: &str, runid: &str) -> String {
    format!("bench-{kind}-{runid}")
}

/// Drops the run's tenant and platform operator, unless `--keep`.
pub async fn clean_up(db: &Db, args: &ServerArgs, slug: &str, runid: &str) {
    if args.keep {
        println!("--keep: tenant {slug} and its data stay; drop them later with `--purge`");
        return;
    }
    // Slugs are a-z, 0-9 and -: nothing to escape.
    let pattern = format!("^{slug}$");
    match cleanup::drop_tenants(db.control(), &pattern, "dropping the bench tenant").await {
        Ok((n, took)) => println!("cleanup: {n} bench tenant dropped in {}", secs(took)),
        Err(e) => eprintln!("cleanup failed: {e:#}; rerun with --purge"),
    }
    let admin = format!("^{}$", api::admin_email(runid).replace('.', "\\."));
    if let Err(e) = cleanup::drop_platform_staff(db.control(), &admin).await {
        eprintln!("cleanup of the platform operator failed: {e:#}; rerun with --purge");
    }
}

/// Runs `work`, or stops it at Ctrl-C (a second Ctrl-C exits at once, without cleanup).
pub async fn interruptible<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                std::process::exit(130);
            });
            Err(anyhow!("interrupted"))
        }
    }
}

/// Starts one server child and creates the run's tenant through it.
pub async fn start_server(args: &ServerArgs, bin: &Path, client: &reqwest::Client) -> anyhow::Result<Server> {
    let srv = Server::start(bin, &args.database_url, args.server_log.as_deref(), client).await?;
    println!("server: {} at {}", bin.display(), srv.base_url);
    Ok(srv)
}

/// The operator and the tenant of a run: operator in the database, the rest over HTTP.
pub async fn set_up(
    db: &Db,
    api: &Api,
    runid: &str,
    slug: &str,
    members: usize,
) -> anyhow::Result<(PlatformAdmin, Fixture)> {
    let admin = api::create_platform_admin(db, runid).await?;
    let started = std::time::Instant::now();
    // Registrations hash passwords (argon2, 19 MiB): one per CPU at a time.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let fixture = api::set_up_tenant(api, &admin, slug, members, cpus).await.context("setting up the tenant")?;
    println!(
        "tenant {slug} (id {}): owner, partner API key, {} members, set up over HTTP in {}",
        fixture.tenant_id,
        fixture.members.len(),
        secs(started.elapsed())
    );
    Ok((admin, fixture))
}

/// Initialises the anchor's database (at the start of a run, so its writes are
/// checkpointed before any measured phase).
pub async fn prepare_anchor(db: &Db, url: &str, args: &AnchorArgs) -> anyhow::Result<Pgbench> {
    let pg = Pgbench::new(url, args.pgbench.as_deref())?;
    let spinner = progress::counter(&format!("pgbench -i -s {}", args.pgbench_scale));
    let took = pg.init(db.control(), args.pgbench_scale).await;
    spinner.finish_and_clear();
    let took = took?;
    println!("anchor database `{}` initialised (scale {}) in {}", pgbench::DATABASE, args.pgbench_scale, secs(took));
    checkpoint(db).await;
    Ok(pg)
}

/// Runs the anchor with the same clients and duration as the measured phase.
pub async fn run_anchor(db: &Db, pg: &Pgbench, clients: usize, seconds: u64, scale: u32) -> anyhow::Result<Anchor> {
    checkpoint(db).await;
    let spinner = progress::counter(&format!("pgbench tpcb-like, {clients} clients, {seconds} s"));
    let anchor = pg.run(clients, seconds, scale).await;
    spinner.finish_and_clear();
    let anchor = anchor?;
    println!("anchor: {} ({})", anchor.describe(), pg.binary().display());
    Ok(anchor)
}

/// A checkpoint between phases, so that one phase's dirty pages are not written during
/// the next one.
pub async fn checkpoint(db: &Db) {
    if !pgbench::checkpoint(db.control()).await {
        eprintln!("note: CHECKPOINT refused (not superuser?); phases may see each other's checkpoints");
    }
}

/// `pointsmall ledger verify --tenant slug`; a failure is a real error.
pub async fn verify(bin: &Path, url: &str, slug: &str) -> anyhow::Result<String> {
    let v = server::ledger_verify(bin, url, slug).await?;
    println!("ledger verify --tenant {slug}: {}", if v.ok { "ok" } else { "FAILED" });
    for line in v.output.lines() {
        println!("  {line}");
    }
    anyhow::ensure!(v.ok, "`pointsmall ledger verify --tenant {slug}` found problems (see above)");
    Ok(v.output.lines().find(|l| l.starts_with("verified")).unwrap_or(&v.output).to_string())
}

/// Pause between a set-up and a measured phase (lets background work settle).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Prints whether the reports' rollup trigger on the bench mall's entries is on, and
/// turns it off when `off` (to measure what the rollups cost the earn path against a run
/// with them).
pub async fn rollups(db: &Db, slug: &str, off: bool) -> anyhow::Result<()> {
    if !off {
        println!("rollups: on");
        return Ok(());
    }
    let t = platform::directory::find_by_slug(db.control(), slug).await?.context("the bench mall")?;
    let sql = format!("ALTER TABLE \"{}\".entries DISABLE TRIGGER entries_rollup", t.schema_name);
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(db.control()).await?;
    println!("rollups: off (the entries' rollup trigger is disabled in {})", t.schema_name);
    Ok(())
}
