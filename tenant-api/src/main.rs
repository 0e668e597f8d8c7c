//! `pointsmall`: the server and its command line (migrations, tenants, demo data).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use platform::audit::Actor;
use platform::db::Db;
use platform::directory::{self, TenantStatus};
use platform::migrate;
use platform::tenancy::{self, NewTenant};
use tenant_api::server::{self, ServerConfig};

/// mimalloc gives freed memory back to the system (glibc's malloc kept argon2's 19 MiB
/// blocks resident: gigabytes after a burst of logins).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "pointsmall", version, about = "Multi-tenant points mall (积分商城): server and operations CLI")]
struct Cli {
    /// PostgreSQL URL of the main cluster (holds the control schema).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Log format: json (default for serve) or pretty.
    #[arg(long, env = "POINTSMALL_LOG_FORMAT", global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        #[arg(long, env = "POINTSMALL_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// HS256 signing secret for access tokens (at least 32 bytes).
        #[arg(long, env = "POINTSMALL_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        /// Extra clusters as name=url, comma-separated.
        #[arg(long, env = "POINTSMALL_CLUSTERS", value_delimiter = ',')]
        clusters: Vec<String>,
        #[arg(long, env = "POINTSMALL_DB_MAX_CONNECTIONS", default_value_t = 32)]
        db_max_connections: u32,
        /// Apply pending migrations before serving.
        #[arg(long)]
        migrate: bool,
        /// Where files go: a local directory (default .data/files) unless an S3 endpoint is set.
        #[arg(long, env = "POINTSMALL_FILES_DIR", default_value = ".data/files")]
        files_dir: std::path::PathBuf,
        /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (path-style addressing).
        #[arg(long, env = "POINTSMALL_S3_ENDPOINT")]
        s3_endpoint: Option<String>,
        #[arg(long, env = "POINTSMALL_S3_BUCKET", default_value = "pointsmall")]
        s3_bucket: String,
        #[arg(long, env = "POINTSMALL_S3_REGION", default_value = "us-east-1")]
        s3_region: String,
        #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "", hide_env_values = true)]
        s3_access_key: String,
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY", default_value = "", hide_env_values = true)]
        s3_secret_key: String,
        /// Seconds between runs of the ledger jobs (release, expiry, holds, reminders); 0 turns them off.
        #[arg(long, env = "POINTSMALL_JOBS_INTERVAL_SECS", default_value_t = 60)]
        jobs_interval_secs: u64,
        /// Keys that seal provider secrets at rest: id:base64(32 bytes), comma-separated,
        /// the first one sealing (default: one derived from the JWT secret).
        #[arg(long, env = "POINTSMALL_SECRETS_KEYS", hide_env_values = true)]
        secrets_keys: Option<String>,
    },
    /// Provider secrets at rest: seal every tenant's secrets again under the first key
    /// (after adding a new key in front of POINTSMALL_SECRETS_KEYS).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Apply pending migrations to the control schema and every tenant schema.
    Migrate {
        /// Tenants migrated at the same time.
        #[arg(long, default_value_t = platform::limits::MIGRATE_CONCURRENCY_DEFAULT)]
        concurrency: usize,
    },
    /// Manage tenants (merchants).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Earn rules: run rule test files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Ledger operations: verification and jobs.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Seed the demo data set (idempotent) and print the demo logins.
    Demo {
        /// Base URL to print in the instructions.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Seal again, under the first key, every provider secret not sealed under it.
    Reseal {
        /// One tenant (slug); every tenant when omitted.
        #[arg(long)]
        tenant: Option<String>,
        /// The JWT signing secret (when no POINTSMALL_SECRETS_KEYS are set, the key is
        /// derived from it).
        #[arg(long, env = "POINTSMALL_JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
        #[arg(long, env = "POINTSMALL_SECRETS_KEYS", hide_env_values = true)]
        secrets_keys: Option<String>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Run every `*.test.json` under DIR against its rule, in the sandbox (no database).
    Test { dir: std::path::PathBuf },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Check every account's hash chain and that balances equal the sums of entries,
    /// lots and grants. Exits non-zero on any problem.
    Verify {
        /// One tenant (slug), with its alliance's shared ledger; every tenant and every
        /// alliance ledger when omitted.
        #[arg(long, conflicts_with = "all")]
        tenant: Option<String>,
        /// Every tenant (the default).
        #[arg(long)]
        all: bool,
    },
    /// Run the ledger jobs now: release locked points, expire lots, expire holds, send reminders.
    Jobs {
        #[arg(long)]
        tenant: Option<String>,
        /// Pretend it is this time (RFC 3339), e.g. to replay a missed night.
        #[arg(long)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant: directory row and migrated schema, in one step.
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// Join this alliance (slug).
        #[arg(long)]
        alliance: Option<String>,
    },
    /// List every tenant.
    List,
    /// Suspend a tenant: its API refuses requests; data is kept.
    Suspend { slug: String },
    /// Resume a suspended tenant.
    Resume { slug: String },
}

fn init_logging(format: Option<&str>, default_json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = match format {
        Some("json") => true,
        Some(_) => false,
        None => default_json,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).with_current_span(true).init();
    } else {
        builder.compact().init();
    }
}

fn rules_test(dir: &std::path::Path) -> anyhow::Result<()> {
    let sandbox = scripting::Sandbox::new();
    let report = scripting::testfile::run_dir(&sandbox, dir).with_context(|| format!("reading {}", dir.display()))?;
    for f in &report.failures {
        eprintln!("FAIL {f}");
    }
    anyhow::ensure!(report.files > 0, "no *.test.json files under {}", dir.display());
    let failed = report.failures.len();
    println!("rule tests: {} file(s), {} case(s)", report.files, report.cases);
    println!("{} passed, {failed} failed", report.cases.saturating_sub(failed));
    anyhow::ensure!(failed == 0, "{failed} rule test(s) failed");
    Ok(())
}

/// Runs the ledger jobs of every tenant every `every`, for as long as the server runs.
async fn run_jobs_forever(db: Db, rules: platform::rules::cache::RuleCache, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match platform::jobs::run(&db, &rules, None, chrono::Utc::now()).await {
            Ok(results) => {
                for (slug, r) in results {
                    if let Err(e) = r {
                        tracing::error!(tenant = %slug, error = %e, "ledger jobs failed");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "ledger jobs could not run"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A KEY=VALUE configuration file, if named, fills in what the environment lacks.
    if let Ok(path) = std::env::var("POINTSMALL_CONFIG") {
        dotenvy::from_path(&path).with_context(|| format!("reading POINTSMALL_CONFIG file {path}"))?;
    }
    let cli = Cli::parse();
    // Rule tests need no database.
    if let Command::Rules { command: RulesCommand::Test { dir } } = &cli.command {
        return rules_test(dir);
    }
    let is_serve = matches!(cli.command, Command::Serve { .. });
    init_logging(cli.log_format.as_deref(), is_serve);
    let url = cli
        .database_url
        .clone()
        .context("set DATABASE_URL (or --database-url) to the PostgreSQL URL of the main cluster")?;
    match cli.command {
        Command::Serve {
            listen,
            jwt_secret,
            clusters,
            db_max_connections,
            migrate: run_migrations,
            jobs_interval_secs,
            files_dir,
            s3_endpoint,
            s3_bucket,
            s3_region,
            s3_access_key,
            s3_secret_key,
            secrets_keys,
        } => {
            let extra_clusters = clusters
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| {
                    c.split_once('=')
                        .map(|(n, u)| (n.to_string(), u.to_string()))
                        .with_context(|| format!("cluster {c:?} is not name=url"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let storage = match s3_endpoint {
                Some(endpoint) => server::StorageConfig::S3(platform::storage::S3Config {
                    endpoint,
                    bucket: s3_bucket,
                    region: s3_region,
                    access_key: s3_access_key,
                    secret_key: s3_secret_key,
                }),
                None => server::StorageConfig::Local(files_dir),
            };
            let cfg = ServerConfig {
                database_url: url,
                extra_clusters,
                jwt_secret,
                listen,
                db_max_connections,
                storage,
                secrets_keys,
            };
            let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .context("installing the metrics recorder")?;
            let state = server::state(&cfg, Some(metrics)).await?;
            if run_migrations {
                let s = migrate::migrate_all(&state.db, platform::limits::MIGRATE_CONCURRENCY_DEFAULT, None).await?;
                anyhow::ensure!(
                    s.failures.is_empty(),
                    "migration failed for {} tenants: {:?}",
                    s.failures.len(),
                    s.failures
                );
            }
            if jobs_interval_secs > 0 {
                tokio::spawn(run_jobs_forever(
                    state.db.clone(),
                    state.rules.clone(),
                    Duration::from_secs(jobs_interval_secs),
                ));
            }
            let listener =
                tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
            tracing::info!(listen = %cfg.listen, "pointsmall serving");
            server::serve(state, listener).await
        }
        Command::Migrate { concurrency } => {
            let db = Db::connect(&url, &[], (concurrency as u32 + 2).min(100)).await?;
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{spinner} migrating tenants {bar:40} {pos}/{len} ({per_sec}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            let b = bar.clone();
            let progress: migrate::Progress = Arc::new(move |done, total| {
                b.set_length(total as u64);
                b.set_position(done as u64);
            });
            let s = migrate::migrate_all(&db, concurrency, Some(progress)).await?;
            bar.finish_and_clear();
            println!(
                "control schema: {} migration(s) applied\ntenants: {} total, {} migrated ({} migration(s) applied), {} already current, {} failed\ntook {:.2?}",
                s.control_applied,
                s.tenants_total,
                s.tenants_changed,
                s.migrations_applied,
                s.tenants_unchanged,
                s.failures.len(),
                s.elapsed
            );
            for (slug, err) in &s.failures {
                eprintln!("  {slug}: {err}");
            }
            anyhow::ensure!(s.failures.is_empty(), "{} tenant(s) failed to migrate", s.failures.len());
            Ok(())
        }
        Command::Tenant { command } => {
            let db = Db::connect(&url, &[], 4).await?;
            migrate::migrate_control(db.control()).await?;
            match command {
                TenantCommand::Create { slug, name, alliance } => {
                    let new = NewTenant { slug, name, alliance, cluster: None };
                    let t = tenancy::create_tenant(&db, &new, &Actor::cli()).await?;
                    println!(
                        "created tenant {} (id {}, schema {}, cluster {})",
                        t.slug, t.id, t.schema_name, t.cluster
                    );
                }
                TenantCommand::List => {
                    println!("{:>6}  {:<24} {:<10} {:<10} {:>7}  name", "id", "slug", "status", "schema", "version");
                    for t in directory::list(db.control()).await? {
                        println!(
                            "{:>6}  {:<24} {:<10} {:<10} {:>7}  {}",
                            t.id,
                            t.slug,
                            t.status.as_str(),
                            t.schema_name,
                            t.schema_version,
                            t.name
                        );
                    }
                }
                TenantCommand::Suspend { slug } => {
                    let t = tenancy::set_status(&db, &slug, TenantStatus::Suspended, &Actor::cli()).await?;
                    println!("suspended {}", t.slug);
                }
                TenantCommand::Resume { slug } => {
                    let t = tenancy::set_status(&db, &slug, TenantStatus::Active, &Actor::cli()).await?;
                    println!("resumed {}", t.slug);
                }
            }
            Ok(())
        }
        Command::Ledger { command } => {
            let db = Db::connect(&url, &[], 4).await?;
            match command {
                LedgerCommand::Verify { tenant, all: _ } => {
                    let tenants: Vec<_> = directory::list(db.control())
                        .await?
                        .into_iter()
                        .filter(|t| tenant.as_ref().is_none_or(|s| *s == t.slug))
                        .collect();
                    anyhow::ensure!(!tenants.is_empty(), "no such tenant");
                    // (label, cluster, schema) of every ledger to check.
                    let mut ledgers: Vec<(String, String, String)> =
                        tenants.iter().map(|t| (t.slug.clone(), t.cluster.clone(), t.schema_name.clone())).collect();
                    for a in tenancy::list_alliances(db.control()).await? {
                        if tenant.is_none() || tenants.iter().any(|t| t.alliance_id == Some(a.id)) {
                            ledgers.push((format!("alliance {}", a.slug), a.cluster, a.schema_name));
                        }
                    }
                    let alliances = ledgers.len() - tenants.len();
                    let bar = ProgressBar::new(ledgers.len() as u64);
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} verifying {bar:40} {pos}/{len} ledgers")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    let (mut bad, mut entries, mut accounts) = (0, 0, 0);
                    for (label, cluster, schema) in &ledgers {
                        let r = platform::ledger::verify::verify_schema(&db, cluster, schema).await?;
                        bar.inc(1);
                        entries += r.entries;
                        accounts += r.accounts;
                        if !r.problems.is_empty() {
                            bad += 1;
                            bar.suspend(|| {
                                eprintln!("{label}: {} problem(s)", r.problems.len());
                                for p in &r.problems {
                                    eprintln!("  {p}");
                                }
                            });
                        }
                    }
                    bar.finish_and_clear();
                    println!(
                        "verified {} tenant(s) and {alliances} alliance ledger(s): {accounts} accounts, {entries} entries; \
                         {bad} with problems",
                        tenants.len()
                    );
                    anyhow::ensure!(bad == 0, "ledger verification failed for {bad} ledger(s)");
                }
                LedgerCommand::Jobs { tenant, now } => {
                    let now = now.unwrap_or_else(chrono::Utc::now);
                    let mut failed = 0;
                    let rules = platform::rules::cache::RuleCache::new(Arc::new(scripting::Sandbox::new()));
                    for (slug, r) in platform::jobs::run(&db, &rules, tenant.as_deref(), now).await? {
                        match r {
                            Ok(r) => println!(
                                "{slug}: released {} from {} grant(s), expired {} in {} account(s), {} hold(s) expired, {} reminder(s)",
                                r.released_amount,
                                r.released_grants,
                                r.expired_amount,
                                r.expired_accounts,
                                r.expired_holds,
                                r.reminders
                            ),
                            Err(e) => {
                                failed += 1;
                                eprintln!("{slug}: {e}");
                            }
                        }
                    }
                    anyhow::ensure!(failed == 0, "jobs failed for {failed} tenant(s)");
                }
            }
            Ok(())
        }
        Command::Rules { .. } => unreachable!("handled before connecting"),
        Command::Secrets { command: SecretsCommand::Reseal { tenant, jwt_secret, secrets_keys } } => {
            let vault = platform::vault::Vault::from_config(secrets_keys.as_deref(), jwt_secret.as_bytes())?;
            let db = Db::connect(&url, &[], 4).await?;
            let (mut total, mut failed) = (0, 0);
            for t in directory::list(db.control()).await? {
                if tenant.as_ref().is_some_and(|s| *s != t.slug) {
                    continue;
                }
                // One transaction per tenant: a tenant whose secrets do not open (a key
                // missing from the list) is reported and left as it was.
                let mut tx = db.tenant_tx(&t.cluster, &t.schema_name).await?;
                match platform::provider_secrets::reseal(&mut tx, &vault, t.id).await {
                    Ok(n) => {
                        tx.commit().await?;
                        total += n;
                    }
                    Err(e) => {
                        eprintln!("{}: {e}", t.slug);
                        failed += 1;
                    }
                }
            }
            println!("{total} provider secret(s) sealed again under key {}", vault.current_key());
            anyhow::ensure!(failed == 0, "{failed} tenant(s) could not be sealed again");
            Ok(())
        }
        Command::Demo { base_url } => {
            let db = Db::connect(&url, &[], 4).await?;
            let s = migrate::migrate_all(&db, platform::limits::MIGRATE_CONCURRENCY_DEFAULT, None).await?;
            anyhow::ensure!(s.failures.is_empty(), "migration failed: {:?}", s.failures);
            tenant_api::demo::seed(&db).await?;
            println!("Demo data is in place.\n{}", tenant_api::demo::logins(&base_url));
            Ok(())
        }
    }
}
