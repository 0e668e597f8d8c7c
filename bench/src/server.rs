//! The real `pointsmall` server as a child process: start, wait for `/healthz`, read its
//! resident memory, send it cheap tenant requests, stop it; and its operator command
//! `ledger verify`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::process::{Child, Command};

/// How long the server may take to answer `/healthz` after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where to look for the server binary when `--server-bin` is not given.
const DEFAULT_SERVER_BINS: &[&str] = &["target/release/pointsmall", "target/debug/pointsmall"];

/// The server binary to run: the given path, or the first default that exists (also
/// looked up next to this benchmark's own executable).
pub fn find_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        anyhow::ensure!(
            p.is_file(),
            "--server-bin {} does not exist; build it with `cargo build --release -p tenant-api --bin pointsmall`",
            p.display()
        );
        return Ok(p.to_path_buf());
    }
    let mut candidates: Vec<PathBuf> = DEFAULT_SERVER_BINS.iter().map(PathBuf::from).collect();
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        candidates.push(dir.join("pointsmall"));
    }
    candidates.into_iter().find(|p| p.is_file()).with_context(|| {
        format!(
            "no server binary at {} (nor next to this executable); build it with \
             `cargo build --release -p tenant-api --bin pointsmall` or pass --server-bin",
            DEFAULT_SERVER_BINS.join(" or ")
        )
    })
}

/// A running server. Dropping it kills the process (also when a step fails).
pub struct Server {
    child: Child,
    pid: u32,
    pub base_url: String,
}

impl Server {
    /// Starts `bin serve --listen 127.0.0.1:<free port>` and waits until `/healthz`
    /// answers 200.
    pub async fn start(
        bin: &Path,
        database_url: &str,
        log: Option<&Path>,
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        Self::start_with(bin, database_url, log, client, &[]).await
    }

    /// Like `start`, with extra environment variables for the server (they win over
    /// the defaults set here).
    pub async fn start_with(
        bin: &Path,
        database_url: &str,
        log: Option<&Path>,
        client: &reqwest::Client,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let stderr = match log {
            Some(path) => Stdio::from(File::create(path).with_context(|| format!("creating {}", path.display()))?),
            None => Stdio::null(),
        };
        let mut child = Command::new(bin)
            .args(["serve", "--listen", &listen])
            .env("DATABASE_URL", database_url)
            .env("POINTSMALL_JWT_SECRET", random_string(48))
            // A configuration file would fill in settings we did not choose.
            .env_remove("POINTSMALL_CONFIG")
            .env_remove("POINTSMALL_CLUSTERS")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let base_url = format!("http://{listen}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the server exited during start-up ({status}); rerun with --server-log FILE to see why");
            }
            let ok = client
                .get(format!("{base_url}/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!("the server did not answer /healthz within {STARTUP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self { child, pid, base_url })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident set size and its high-water mark, in KiB.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path} (Linux only)"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok(Memory { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
    }

    /// Kills the server and reaps it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill().ok();
        self.child.wait().await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// What a batch of requests answered.
#[derive(Debug, Default)]
pub struct Touch {
    pub requests: usize,
    pub statuses: BTreeMap<u16, usize>,
    pub transport_errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Touch {
    /// Requests answered with the status the refresh route gives an unknown token.
    pub fn expected(&self) -> usize {
        self.statuses.get(&401).copied().unwrap_or(0)
    }

    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        if self.transport_errors > 0 {
            parts.push(format!("transport errors×{}", self.transport_errors));
        }
        format!(
            "{} requests in {} ({:.0} req/s): {}",
            self.requests,
            crate::stats::secs(self.elapsed),
            crate::stats::rate(self.requests, self.elapsed),
            parts.join(", ")
        )
    }
}

/// Sends one `POST /v1/tenants/{slug}/auth/refresh` with a random (unknown) refresh
/// token per slug, `concurrency` at a time. The route resolves the tenant through the
/// directory, opens a transaction in the tenant's schema and runs one UPDATE there; no
/// password hashing. It answers 401 `refresh_token_invalid`.
pub async fn touch<'a>(
    client: &reqwest::Client,
    base_url: &str,
    slugs: impl Iterator<Item = &'a str>,
    concurrency: usize,
    bar: &indicatif::ProgressBar,
) -> Touch {
    let started = Instant::now();
    let mut out = Touch::default();
    let mut results = futures::stream::iter(slugs)
        .map(|slug| {
            let url = format!("{base_url}/v1/tenants/{slug}/auth/refresh");
            let body = serde_json::json!({ "refresh_token": random_string(43) });
            async move { client.post(url).json(&body).send().await.map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        out.requests += 1;
        match r {
            Ok(status) => *out.statuses.entry(status).or_default() += 1,
            Err(e) => {
                out.transport_errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
        bar.inc(1);
    }
    out.elapsed = started.elapsed();
    out
}

/// What `pointsmall ledger verify --tenant SLUG` said.
#[derive(Debug)]
pub struct Verified {
    pub ok: bool,
    /// Its stdout and stderr, trimmed.
    pub output: String,
}

/// Runs `bin ledger verify --tenant slug` (the operator's command: every account's hash
/// chain, and balances against the sums of entries, lots and grants).
pub async fn ledger_verify(bin: &Path, database_url: &str, slug: &str) -> anyhow::Result<Verified> {
    let out = Command::new(bin)
        .args(["ledger", "verify", "--tenant", slug])
        .env("DATABASE_URL", database_url)
        .env("POINTSMALL_LOG_FORMAT", "pretty")
        .env_remove("POINTSMALL_CONFIG")
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {} ledger verify", bin.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    if !err.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(err);
    }
    Ok(Verified { ok: out.status.success(), output: text })
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Random ASCII letters and digits.
pub fn random_string(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}
