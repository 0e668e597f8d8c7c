//! `bench-catalog`: catalog reads. A fresh tenant with N listed products; `wrk` then
//! loads `GET /v1/tenants/{t}/products?limit=20&sort=points_asc` (no credential, served
//! from the server's short-lived catalog cache) and, as the anchor with the same tool and
//! settings in the same run, the server's trivial `GET /healthz`. Prints both
//! requests/s and p99 and the ratio catalog ÷ healthz.
//!
//! See bench/README.md for how to run it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use bench::api::{self, Api};
use bench::harness::{self, ServerArgs};
use bench::stats::secs;
use bench::{build_kind, build_note, machine_load, random_runid, server, thousands, verdict};
use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::process::Command;

/// Catalog requests/s for each `/healthz` request/s.
const TARGET_RATIO: f64 = 0.5;
/// Catalog p99, milliseconds.
const TARGET_P99_MS: f64 = 10.0;

#[derive(Parser)]
#[command(
    name = "bench-catalog",
    version,
    about = "Catalog reads with wrk against a /healthz anchor in the same run (prints figures; not a test)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Listed products in the bench tenant.
    #[arg(long, default_value_t = 50)]
    products: usize,
    /// wrk threads (`-t`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// wrk connections (`-c`).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of each wrk run (`-d`).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of unmeasured wrk load on each URL first (0: none).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// wrk binary [default: `wrk` on PATH; Debian: `apt-get install -y wrk`].
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-catalog: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What one wrk run measured.
#[derive(Debug, Clone)]
struct Wrk {
    requests: u64,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Wrk {
    fn describe(&self) -> String {
        format!(
            "{} req/s, latency p50 {:.2} ms, p99 {:.2} ms ({} requests)",
            thousands(self.per_sec),
            self.p50_ms,
            self.p99_ms,
            self.requests
        )
    }
}

#[derive(Default)]
struct Report {
    catalog: Option<Wrk>,
    healthz: Option<Wrk>,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let db = harness::connect(&args.server.database_url).await?;
    if args.server.purge {
        return harness::purge(&db).await;
    }
    anyhow::ensure!(args.products >= 1, "--products must be at least 1");
    anyhow::ensure!(args.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(args.threads >= 1 && args.connections >= args.threads, "wrk needs 1 ≤ --threads ≤ --connections");
    let runid = random_runid();
    let slug = harness::slug("catalog", &runid);
    println!(
        "bench-catalog run {runid}: {} products, wrk -t{} -c{} -d{}s, {} build{}; {}",
        args.products,
        args.threads,
        args.connections,
        args.seconds,
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
    let version = Command::new(&args.wrk).arg("-v").output().await;
    if version.is_err() {
        bail!("cannot run {} (install it: `apt-get install -y wrk`, or pass --wrk PATH)", args.wrk.display());
    }
    let bin = server::find_binary(args.server.server_bin.as_deref())?;
    let client = api::client(4)?;
    let srv = harness::start_server(&args.server, &bin, &client).await?;
    let api = Api::new(client, srv.base_url.clone());

    let started = Instant::now();
    let admin = api::create_platform_admin(db, runid).await?;
    let fixture = api::set_up_tenant(&api, &admin, slug, 0, 1).await.context("setting up the tenant")?;
    let owner = fixture.owner_auth();
    let path = format!("/v1/tenants/{slug}/staff/products");
    for i in 0..args.products {
        let body = json!({"name": format!("Bench product {i}"), "kind": "coupon",
            "points_price": 100 + (i * 37) % 5000, "stock": 1000,
            "status": "listed", "review_state": "approved"});
        api.expect(StatusCode::CREATED, Method::POST, &path, &[("authorization", owner.as_str())], Some(&body))
            .await
            .with_context(|| format!("creating product {i}"))?;
    }
    println!(
        "tenant {slug} (id {}): {} listed products, set up in {}",
        fixture.tenant_id,
        args.products,
        secs(started.elapsed())
    );

    let catalog_path = format!("/v1/tenants/{slug}/products?limit=20&sort=points_asc");
    let page = api.expect(StatusCode::OK, Method::GET, &catalog_path, &[], None).await?;
    let want = args.products.min(20);
    let got = page["items"].as_array().map(Vec::len);
    anyhow::ensure!(
        got == Some(want),
        "GET {catalog_path} returned {got:?} items, expected {want}: {}",
        api::shorten(&page.to_string(), 300)
    );
    api.expect(StatusCode::OK, Method::GET, "/healthz", &[], None).await?;

    let catalog_url = format!("{}{catalog_path}", srv.base_url);
    let healthz_url = format!("{}/healthz", srv.base_url);
    if args.warmup > 0 {
        wrk(args, &healthz_url, args.warmup).await.context("warm-up")?;
        wrk(args, &catalog_url, args.warmup).await.context("warm-up")?;
    }
    let h = wrk(args, &healthz_url, args.seconds).await?;
    println!("healthz: {}", h.describe());
    report.healthz = Some(h);
    let c = wrk(args, &catalog_url, args.seconds).await?;
    println!("catalog: {}", c.describe());
    report.catalog = Some(c);
    srv.stop().await?;
    Ok(())
}

/// `wrk -tT -cC -dDs --latency URL`, parsed. Non-2xx answers or socket errors are
/// errors (the figures would not mean what they say).
async fn wrk(args: &Args, url: &str, seconds: u64) -> anyhow::Result<Wrk> {
    let out = Command::new(&args.wrk)
        .args([
            format!("-t{}", args.threads),
            format!("-c{}", args.connections),
            format!("-d{seconds}s"),
            "--latency".into(),
            url.into(),
        ])
        .output()
        .await
        .with_context(|| format!("running {}", args.wrk.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "wrk on {url} failed ({}): {}{}",
        out.status,
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text).with_context(|| format!("parsing wrk's output for {url}:\n{text}"))
}

fn parse_wrk(text: &str) -> anyhow::Result<Wrk> {
    if let Some(l) = text.lines().find(|l| l.trim_start().starts_with("Non-2xx or 3xx responses:")) {
        bail!("wrk saw failed answers: {}", l.trim());
    }
    if let Some(l) = text.lines().find(|l| l.trim_start().starts_with("Socket errors:")) {
        bail!("wrk saw socket errors: {}", l.trim());
    }
    let field = |prefix: &str| -> Option<&str> {
        text.lines().find_map(|l| l.trim_start().strip_prefix(prefix)).map(str::trim)
    };
    let per_sec: f64 = field("Requests/sec:").context("no Requests/sec line")?.parse()?;
    let requests: u64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .context("no `N requests in` line")?
        .parse()?;
    let p50_ms = duration_ms(field("50%").context("no 50% line (was --latency passed?)")?)?;
    let p99_ms = duration_ms(field("99%").context("no 99% line (was --latency passed?)")?)?;
    Ok(Wrk { requests, per_sec, p50_ms, p99_ms })
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`, `1.50m`.
fn duration_ms(s: &str) -> anyhow::Result<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).with_context(|| format!("no unit in {s:?}"))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("not a number: {s:?}"))?;
    Ok(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        other => bail!("unknown unit {other:?} in {s:?}"),
    })
}

fn print_summary(args: &Args, runid: &str, report: &Report) {
    println!("\n== summary (run {runid}, {} build, {}) ==", build_kind(), machine_load());
    let settings = format!("wrk -t{} -c{} -d{}s --latency", args.threads, args.connections, args.seconds);
    if let Some(h) = &report.healthz {
        println!("anchor GET /healthz ({settings}): {}", h.describe());
    }
    if let Some(c) = &report.catalog {
        println!(
            "GET /v1/tenants/{{t}}/products?limit=20&sort=points_asc, {} products ({settings}): {}",
            args.products,
            c.describe()
        );
        println!(
            "catalog p99 {:.2} ms, target < {TARGET_P99_MS:.0} ms: {}",
            c.p99_ms,
            verdict(c.p99_ms < TARGET_P99_MS)
        );
    }
    if let (Some(c), Some(h)) = (&report.catalog, &report.healthz) {
        let ratio = c.per_sec / h.per_sec;
        println!(
            "ratio catalog ÷ healthz req/s: {ratio:.2} (target ≥ {TARGET_RATIO}: {})",
            verdict(ratio >= TARGET_RATIO)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/healthz
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   1.23ms  456.00us  10.00ms   80.00%
    Req/Sec    25.00k     1.00k   27.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.50ms
     90%    1.80ms
     99%    3.00ms
  250000 requests in 10.00s, 30.00MB read
Requests/sec:  25000.00
Transfer/sec:      3.00MB
";
        let w = parse_wrk(text).unwrap();
        assert_eq!(w.requests, 250_000);
        assert!((w.per_sec - 25_000.0).abs() < 1e-9);
        assert!((w.p50_ms - 0.812).abs() < 1e-9);
        assert!((w.p99_ms - 3.0).abs() < 1e-9);
        assert!(parse_wrk(&format!("{text}  Non-2xx or 3xx responses: 5\n")).is_err());
        assert!((duration_ms("2.01s").unwrap() - 2010.0).abs() < 1e-6);
    }
}
