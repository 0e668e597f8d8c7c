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

pub const CHANNEL: &str = "pointsmall_control";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A tenant's directory row changed (status, settings).
    Tenant { slug: String },
}

/// Queues a notification, delivered when the surrounding transaction commits.
pub async fn publish(conn: &mut PgConnection, change: &Change) -> Result<()> {
    let payload = serde_json::to_string(change).map_err(anyhow::Error::from)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a listener calls.
pub trait Handler: Send + Sync + 'static {
    /// One change arrived.
    fn changed(&self, change: Change) -> impl std::future::Future<Output = ()> + Send;
    /// The listener (re)connected: anything cached may be stale.
    fn reset(&self);
}

/// Listens forever, reconnecting with back-off. Spawn it once per server.
pub async fn listen<H: Handler>(url: String, handler: H) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&url, &handler).await {
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "control listener disconnected; reconnecting"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once<H: Handler>(url: &str, handler: &H) -> anyhow::Result<()> {
    let mut listener = PgListener::connect(url).await?;
    listener.ignore_pool_close_event(false);
    listener.listen(CHANNEL).await?;
    // Anything that changed while we were not listening is unknown: start clean.
    handler.reset();
    tracing::info!("control listener connected");
    loop {
        // recv() would reconnect silently and hide lost notifications; try_recv()
        // shows the gap as None.
        match listener.try_recv().await? {
            Some(n) => match serde_json::from_str::<Change>(n.payload()) {
                Ok(change) => handler.changed(change).await,
                Err(e) => {
                    tracing::warn!(error = %e, payload = n.payload(), "unknown control notification")
                }
            },
            // The connection dropped: start over so that reset() comes after LISTEN.
            None => anyhow::bail!("connection lost"),
        }
    }
}
