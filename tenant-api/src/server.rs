//! Server configuration and start-up.

use std::net::SocketAddr;
use std::sync::Arc;

use platform::auth::rate_limit::LoginLimiter;
use platform::auth::tokens::TokenKeys;
use platform::db::Db;
use platform::directory::Directory;
use platform::mall::browse::CatalogCache;
use platform::notify::{self, Change, Handler};
use platform::rules::cache::RuleCache;
use platform::sender::RecordingSender;
use platform::storage::Storage;

use crate::state::{AppState, Inner};

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database_url: String,
    /// Other clusters as `name=url` (tenants placed there by the directory).
    pub extra_clusters: Vec<(String, String)>,
    pub jwt_secret: String,
    pub listen: SocketAddr,
    pub db_max_connections: u32,
    /// Where files (product images) go.
    pub storage: StorageConfig,
    /// Keys that seal provider secrets (`id:base64,…`, the first one sealing); without
    /// them one is derived from the JWT secret.
    pub secrets_keys: Option<String>,
    /// Webhook endpoints may name private, loopback and link-local addresses
    /// (`POINTSMALL_WEBHOOKS_ALLOW_PRIVATE`; off by default, on in the tests).
    pub webhooks_allow_private: bool,
}

/// Object storage: a local directory (the default) or an S3-compatible bucket.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    Local(std::path::PathBuf),
    S3(platform::storage::S3Config),
}

/// Evicts cached directory entries when another instance changes a tenant.
/// Evicts cached directory entries and rule sets when another instance changes them.
#[derive(Clone)]
pub struct CacheEvictor {
    pub directory: Directory,
    pub rules: RuleCache,
    pub catalog: CatalogCache,
    pub content: platform::content::published::ContentCache,
}

impl Handler for CacheEvictor {
    async fn changed(&self, change: Change) {
        match change {
            Change::Tenant { slug } => self.directory.evict(&slug).await,
            Change::Rules { tenant_id } => self.rules.evict(tenant_id).await,
            Change::AllianceRules { .. } => self.rules.evict_all(),
            Change::Catalog { tenant_id } => self.catalog.evict(tenant_id),
            Change::Content { tenant_id } => self.content.evict(tenant_id),
            Change::Sessions { families } if families.is_empty() => platform::auth::sessions::forget_all(),
            Change::Sessions { families } => platform::auth::sessions::forget(&families),
        }
    }
    fn reset(&self) {
        self.directory.evict_all();
        self.rules.evict_all();
        self.catalog.evict_all();
        self.content.evict_all();
        platform::auth::sessions::forget_all();
    }
}

/// Connects, builds the state and starts the control-plane listener.
pub async fn state(
    cfg: &ServerConfig,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<AppState> {
    state_with(cfg, LoginLimiter::default(), metrics).await
}

/// `state` with a given login limiter (tests use tight or loose bounds).
pub async fn state_with(
    cfg: &ServerConfig,
    limiter: LoginLimiter,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> anyhow::Result<AppState> {
    let db = Db::connect(&cfg.database_url, &cfg.extra_clusters, cfg.db_max_connections).await?;
    let directory = Directory::new(db.control().clone());
    let rules = RuleCache::new(Arc::new(scripting::Sandbox::new()));
    let catalog = CatalogCache::default();
    let content = platform::content::published::ContentCache::new(catalog.clone());
    let evictor = CacheEvictor {
        directory: directory.clone(),
        rules: rules.clone(),
        catalog: catalog.clone(),
        content: content.clone(),
    };
    notify::start(cfg.database_url.clone(), evictor).await?;
    let storage = match &cfg.storage {
        StorageConfig::Local(root) => Storage::local(root),
        StorageConfig::S3(c) => Storage::s3(c),
    };
    tracing::info!(storage = %storage.describe(), "object storage");
    let visits = platform::reports::visits::Visits::default();
    tokio::spawn(visits.clone().run_forever(db.clone()));
    Ok(AppState::new(Inner {
        visits,
        storage,
        sender: Arc::new(RecordingSender::new(db.control().clone())),
        tokens: TokenKeys::new(cfg.jwt_secret.as_bytes())?,
        limiter,
        rules,
        catalog,
        content,
        directory,
        db,
        metrics,
        vault: platform::vault::Vault::from_config(cfg.secrets_keys.as_deref(), cfg.jwt_secret.as_bytes())?,
        webhook_addresses: platform::webhooks::address::AddressPolicy { allow_private: cfg.webhooks_allow_private },
    }))
}

/// Serves until Ctrl-C or SIGTERM, then drains in-flight requests.
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let app = crate::app::build(state);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: draining requests");
}
