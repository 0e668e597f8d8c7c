//! The command line's arguments (clap).

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "pointsmall", version, about = "Multi-tenant points mall (积分商城): server and operations CLI")]
pub struct Cli {
    /// PostgreSQL URL of the main cluster (holds the control schema).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Log format: json (default for serve) or pretty.
    #[arg(long, env = "POINTSMALL_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(Box<ServeArgs>),
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
    /// Manage tenants (merchants): create, list, suspend, export, import, delete.
    #[command(alias = "tenants")]
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
pub enum SecretsCommand {
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
pub enum RulesCommand {
    /// Run every `*.test.json` under DIR against its rule, in the sandbox (no database).
    Test { dir: std::path::PathBuf },
}

#[derive(Subcommand)]
pub enum LedgerCommand {
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
pub enum TenantCommand {
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
    /// Export a mall (its schema's data, its staff, keys and audit rows, its files) to a
    /// .tar.gz archive.
    Export {
        slug: String,
        file: std::path::PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Import an archive made by `export` as a new mall (all or nothing; the ledger is
    /// verified before the commit).
    Import {
        file: std::path::PathBuf,
        /// The new mall's slug (the archive's own by default).
        #[arg(long)]
        slug: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Delete a mall: drops its schema and files, keeps its slug as a tombstone.
    Delete {
        slug: String,
        /// The slug typed again.
        #[arg(long)]
        confirm: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the slugs of deleted malls.
    Tombstones,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "POINTSMALL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// HS256 signing secret for access tokens (at least 32 bytes).
    #[arg(long, env = "POINTSMALL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// Extra clusters as name=url, comma-separated.
    #[arg(long, env = "POINTSMALL_CLUSTERS", value_delimiter = ',')]
    pub clusters: Vec<String>,
    #[arg(long, env = "POINTSMALL_DB_MAX_CONNECTIONS", default_value_t = 32)]
    pub db_max_connections: u32,
    /// Apply pending migrations before serving.
    #[arg(long)]
    pub migrate: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Seconds between runs of the ledger jobs (release, expiry, holds, reminders); 0 turns them off.
    #[arg(long, env = "POINTSMALL_JOBS_INTERVAL_SECS", default_value_t = 60)]
    pub jobs_interval_secs: u64,
    /// Keys that seal provider secrets at rest: id:base64(32 bytes), comma-separated,
    /// the first one sealing (default: one derived from the JWT secret).
    #[arg(long, env = "POINTSMALL_SECRETS_KEYS", hide_env_values = true)]
    pub secrets_keys: Option<String>,
    /// Milliseconds between passes of the webhook delivery worker; 0 turns it off.
    #[arg(long, env = "POINTSMALL_WEBHOOKS_INTERVAL_MS", default_value_t = platform::limits::webhooks::WORKER_INTERVAL_MS_DEFAULT)]
    pub webhooks_interval_ms: u64,
    /// Let webhook endpoints name private, loopback and link-local addresses.
    #[arg(long, env = "POINTSMALL_WEBHOOKS_ALLOW_PRIVATE", default_value_t = false)]
    pub webhooks_allow_private: bool,
}

/// Where the files are: a local directory unless an S3 endpoint is set (as for `serve`).
#[derive(clap::Args, Clone)]
pub struct StorageArgs {
    /// Where files go: a local directory (default .data/files) unless an S3 endpoint is set.
    #[arg(long, env = "POINTSMALL_FILES_DIR", default_value = ".data/files")]
    pub files_dir: std::path::PathBuf,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (path-style addressing).
    #[arg(long, env = "POINTSMALL_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "POINTSMALL_S3_BUCKET", default_value = "pointsmall")]
    pub s3_bucket: String,
    #[arg(long, env = "POINTSMALL_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "", hide_env_values = true)]
    pub s3_access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", default_value = "", hide_env_values = true)]
    pub s3_secret_key: String,
}

impl StorageArgs {
    pub fn storage(&self) -> platform::storage::Storage {
        match &self.s3_endpoint {
            Some(endpoint) => platform::storage::Storage::s3(&platform::storage::S3Config {
                endpoint: endpoint.clone(),
                bucket: self.s3_bucket.clone(),
                region: self.s3_region.clone(),
                access_key: self.s3_access_key.clone(),
                secret_key: self.s3_secret_key.clone(),
            }),
            None => platform::storage::Storage::local(self.files_dir.clone()),
        }
    }
}
