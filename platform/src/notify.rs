//! Control-plane change notifications between server instances (PostgreSQL
//! LISTEN/NOTIFY). Used for rare changes only (tenant status and settings; later rule
//! versions), never per ledger write: a NOTIFY takes a global lock at commit.
//!
//! Notifications are delivered at commit and lost while a listener is disconnected, so
//! a listener that (re)connects tells its handler to drop everything it caches.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::postgres::PgListener;

use crate::error::Result;
use crate::ids::{AllianceId, TenantId};

pub const CHANNEL: &str = "pointsmall_control";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A tenant's directory row changed (status, settings).
    Tenant { slug: String },
    /// A tenant's rules changed (a new version, parameters, order, enabled).
    Rules { tenant_id: TenantId },
    /// An alliance's rules changed: every mall of it runs them.
    AllianceRules { alliance_id: AllianceId },
    /// A tenant's catalog changed (products, categories, prices, stock set by staff).
    Catalog { tenant_id: TenantId },
    /// A tenant's content changed (banners, announcements, zones, rule pages).
    Content { tenant_id: TenantId },
    /// Sign-ins ended (logout, reset, disabling, role change, refresh reuse); an empty
    /// list means "forget every cached sign-in".
    Sessions { families: Vec<uuid::Uuid> },
}

/// Queues a notification, delivered when the surrounding transaction commits.
pub async fn publish(conn: &mut PgConnection, change: &Change) -> Result<()> {
    let payload = serde_json::to_string(change).map_err(anyhow::Error::from)?;
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(conn).await?;
    Ok(())
}

/// What a listener calls.
pub trait Handler: Send + Sync + 'static {
    /// One change arrived.
    fn changed(&self, change: Change) -> impl std::future::Future<Output = ()> + Send;
    /// The listener (re)connected: anything cached may be stale.
    fn reset(&self);
}

/// Connects a listener (so that changes committed after this returns are seen), then
/// keeps it running in the background, reconnecting with back-off.
pub async fn start<H: Handler>(url: String, handler: H) -> anyhow::Result<()> {
    let first = connect(&url).await?;
    handler.reset();
    tracing::info!("control listener connected");
    tokio::spawn(async move {
        let mut listener = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Some(l) = listener.take()
                && let Err(e) = run(l, &handler).await
            {
                tracing::warn!(error = %e, "control listener disconnected; reconnecting");
            }
            tokio::time::sleep(backoff).await;
            match connect(&url).await {
                Ok(l) => {
                    // Anything that changed while we were not listening is unknown.
                    handler.reset();
                    tracing::info!("control listener reconnected");
                    backoff = Duration::from_millis(100);
                    listener = Some(l);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control listener cannot connect");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<PgListener> {
    let mut listener = PgListener::connect(url).await?;
    listener.ignore_pool_close_event(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn run<H: Handler>(mut listener: PgListener, handler: &H) -> anyhow::Result<()> {
    loop {
        // recv() would reconnect silently and hide lost notifications; try_recv()
        // shows the gap as None.
        match listener.try_recv().await? {
            Some(n) => match serde_json::from_str::<Change>(n.payload()) {
                Ok(change) => handler.changed(change).await,
                Err(e) => tracing::warn!(error = %e, payload = n.payload(), "unknown control notification"),
            },
            None => anyhow::bail!("connection lost"),
        }
    }
}
