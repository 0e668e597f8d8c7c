//! The anchor of the database-bound benchmarks: `pgbench -b tpcb-like` (five statements
//! per transaction: three UPDATEs, a SELECT and an INSERT, one commit) on the same
//! PostgreSQL, with the same client count and duration, in its own database `pgbench`.
//! A ratio ≥ 1 means the application moves at least one ledger entry (or event) per
//! transaction PostgreSQL can do on this machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::PgPool;
use tokio::process::Command;

/// The database the anchor uses (created when missing, re-initialised every run).
pub const DATABASE: &str = "pgbench";

/// What one `pgbench` run measured.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub tps: f64,
    pub latency_avg_ms: Option<f64>,
    pub transactions: Option<u64>,
    pub clients: usize,
    pub threads: usize,
    pub seconds: u64,
    pub scale: u32,
}

impl Anchor {
    pub fn describe(&self) -> String {
        format!(
            "pgbench tpcb-like, scale {}, {} clients ({} threads), {} s: {:.0} TPS{}{}",
            self.scale,
            self.clients,
            self.threads,
            self.seconds,
            self.tps,
            self.latency_avg_ms.map(|l| format!(", latency avg {l:.2} ms")).unwrap_or_default(),
            self.transactions.map(|t| format!(", {t} transactions")).unwrap_or_default()
        )
    }
}

/// `pgbench` pointed at the host, port and user of a PostgreSQL URL.
pub struct Pgbench {
    bin: PathBuf,
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl Pgbench {
    /// `given`, or the newest `/usr/lib/postgresql/*/bin/pgbench`, or `pgbench` on PATH.
    pub fn new(database_url: &str, given: Option<&Path>) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(database_url).context("DATABASE_URL is not a URL")?;
        let host = url.host_str().filter(|h| !h.is_empty()).unwrap_or("127.0.0.1").to_string();
        let port = url.port().unwrap_or(5432);
        let user = if url.username().is_empty() { "postgres".to_string() } else { url.username().to_string() };
        let password = url.password().map(str::to_string);
        Ok(Self { bin: find_binary(given)?, host, port, user, password })
    }

    pub fn binary(&self) -> &Path {
        &self.bin
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-h", &self.host, "-p", &self.port.to_string(), "-U", &self.user]);
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Creates the database `pgbench` if missing (through `pool`, any database of the
    /// cluster) and runs `pgbench -i -s scale` (drops and recreates its tables).
    pub async fn init(&self, pool: &PgPool, scale: u32) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(pool)
            .await?;
        if !exists {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DATABASE}")))
                .execute(pool)
                .await
                .context("creating the database pgbench")?;
        }
        let out = self
            .command()
            .args(["-i", "-q", "-s", &scale.to_string(), DATABASE])
            .output()
            .await
            .with_context(|| format!("running {} -i", self.bin.display()))?;
        if !out.status.success() {
            bail!("pgbench -i -s {scale} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(started.elapsed())
    }

    /// `pgbench -b tpcb-like -c clients -j threads -T seconds`.
    pub async fn run(&self, clients: usize, seconds: u64, scale: u32) -> anyhow::Result<Anchor> {
        let clients = clients.max(1);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = clients.min(cpus).max(1);
        let out = self
            .command()
            .args(["-b", "tpcb-like"])
            .args(["-c", &clients.to_string(), "-j", &threads.to_string(), "-T", &seconds.to_string()])
            .arg(DATABASE)
            .output()
            .await
            .with_context(|| format!("running {}", self.bin.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "pgbench -b tpcb-like failed ({}): {} {}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let tps = parse_tps(&stdout).with_context(|| format!("no `tps = …` line in pgbench's output:\n{stdout}"))?;
        Ok(Anchor {
            tps,
            latency_avg_ms: parse_after(&stdout, "latency average = "),
            transactions: parse_after(&stdout, "number of transactions actually processed: ").map(|v| v as u64),
            clients,
            threads,
            seconds,
            scale,
        })
    }
}

/// Asks PostgreSQL to write its dirty pages now, so that a checkpoint caused by the
/// previous phase does not land in the next one. Needs superuser (or pg_checkpoint);
/// returns whether it ran.
pub async fn checkpoint(pool: &PgPool) -> bool {
    sqlx::raw_sql("CHECKPOINT").execute(pool).await.is_ok()
}

fn find_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        anyhow::ensure!(p.is_file(), "--pgbench {} does not exist", p.display());
        return Ok(p.to_path_buf());
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin/pgbench");
            bin.is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pgbench"))
        .find(|p| p.is_file())
        .context("no pgbench in /usr/lib/postgresql/*/bin nor on PATH (apt-get install postgresql-contrib); or pass --pgbench")
}

/// `tps = 1234.567 (without initial connection time)` (PostgreSQL 14+), or the
/// `excluding connections establishing` line of older versions.
fn parse_tps(out: &str) -> Option<f64> {
    let tps: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("tps = ")).collect();
    let line = tps
        .iter()
        .find(|l| l.contains("without initial connection") || l.contains("excluding"))
        .or_else(|| tps.first())?;
    parse_after(line, "tps = ")
}

/// The number right after `prefix` on the first line holding it.
fn parse_after(out: &str, prefix: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.contains(prefix))?;
    let rest = &line[line.find(prefix)? + prefix.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pgbench_output() {
        let out = "transaction type: <builtin: TPC-B (sort of)>\nscaling factor: 10\nnumber of clients: 16\n\
                   number of transactions actually processed: 23456\nnumber of failed transactions: 0 (0.000%)\n\
                   latency average = 6.823 ms\ninitial connection time = 12.3 ms\n\
                   tps = 2345.123456 (without initial connection time)\n";
        assert_eq!(parse_tps(out), Some(2345.123456));
        assert_eq!(parse_after(out, "latency average = "), Some(6.823));
        assert_eq!(parse_after(out, "number of transactions actually processed: "), Some(23456.0));
        let old =
            "tps = 100.5 (including connections establishing)\ntps = 101.5 (excluding connections establishing)\n";
        assert_eq!(parse_tps(old), Some(101.5));
    }
}
