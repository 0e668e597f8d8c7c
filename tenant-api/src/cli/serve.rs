//! `pointsmall serve`: configuration to a running server (with the jobs loop).

use std::time::Duration;

use anyhow::Context;
use platform::migrate;

use super::args::ServeArgs;
use crate::server::{self, ServerConfig, StorageConfig};

pub async fn serve(database_url: String, a: ServeArgs) -> anyhow::Result<()> {
    let extra_clusters = a
        .clusters
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.split_once('=')
                .map(|(n, u)| (n.to_string(), u.to_string()))
                .with_context(|| format!("cluster {c:?} is not name=url"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let storage = match a.storage.s3_endpoint {
        Some(endpoint) => StorageConfig::S3(platform::storage::S3Config {
            endpoint,
            bucket: a.storage.s3_bucket,
            region: a.storage.s3_region,
            access_key: a.storage.s3_access_key,
            secret_key: a.storage.s3_secret_key,
        }),
        None => StorageConfig::Local(a.storage.files_dir),
    };
    let cfg = ServerConfig {
        database_url,
        extra_clusters,
        jwt_secret: a.jwt_secret,
        listen: a.listen,
        db_max_connections: a.db_max_connections,
        storage,
        secrets_keys: a.secrets_keys,
        webhooks_allow_private: a.webhooks_allow_private,
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let state = server::state(&cfg, Some(metrics)).await?;
    if a.migrate {
        let s = migrate::migrate_all(&state.db, platform::limits::MIGRATE_CONCURRENCY_DEFAULT, None).await?;
        anyhow::ensure!(s.failures.is_empty(), "migration failed for {} tenants: {:?}", s.failures.len(), s.failures);
    }
    if a.jobs_interval_secs > 0 {
        let every = Duration::from_secs(a.jobs_interval_secs);
        tokio::spawn(platform::jobs::run_forever(state.db.clone(), state.rules.clone(), every));
    }
    if a.webhooks_interval_ms > 0 {
        let deliverer = platform::webhooks::deliver::Deliverer::new(
            state.db.clone(),
            state.vault.clone(),
            state.webhook_addresses,
        )?;
        tokio::spawn(deliverer.run_forever(Duration::from_millis(a.webhooks_interval_ms), None));
    }
    let listener =
        tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    tracing::info!(listen = %cfg.listen, "pointsmall serving");
    server::serve(state, listener).await
}
