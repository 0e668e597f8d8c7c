//! Outbound messages (verification codes; later reminders) through a pluggable sender.
//! Real SMS and e-mail gateways are not reachable from here; the default sender records
//! every message in `control.dev_outbox` and the log, which is what development, the
//! demo and the tests read.

use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::error::Result;
use crate::ids::TenantId;

#[derive(Debug, Clone)]
pub struct Message {
    pub tenant_id: Option<TenantId>,
    /// "sms" or "email".
    pub channel: &'static str,
    pub destination: String,
    pub body: String,
}

/// Something that delivers messages.
pub trait Sender: Send + Sync {
    fn send<'a>(&'a self, msg: &'a Message) -> BoxFuture<'a, Result<()>>;
}

/// Records messages instead of delivering them.
pub struct RecordingSender {
    pool: PgPool,
}

impl RecordingSender {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Sender for RecordingSender {
    fn send<'a>(&'a self, msg: &'a Message) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO control.dev_outbox (tenant_id, channel, destination, body) VALUES ($1, $2, $3, $4)",
            )
            .bind(msg.tenant_id)
            .bind(msg.channel)
            .bind(&msg.destination)
            .bind(&msg.body)
            .execute(&self.pool)
            .await?;
            tracing::info!(channel = msg.channel, destination = %msg.destination, body = %msg.body, "dev sender recorded a message");
            Ok(())
        })
    }
}

/// A message the recording sender kept (what a tester reads a one-time code from).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Recorded {
    pub id: i64,
    pub tenant_id: Option<TenantId>,
    /// "sms" or "email".
    pub channel: String,
    pub destination: String,
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Recorded messages, newest first, before an id; only those to `destination` (exactly,
/// a phone in its stored form such as +8613800000001) when given.
pub async fn recorded(
    pool: &PgPool,
    destination: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Recorded>> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, channel, destination, body, created_at FROM control.dev_outbox \
         WHERE ($1::text IS NULL OR destination = $1) AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(destination)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
