//! Outbound messages (verification codes; later reminders) through a pluggable sender.
//! Real SMS and e-mail gateways are not reachable from here; the default sender records
//! every message in `control.dev_outbox` and the log, which is what development, the
//! demo and the tests read.

use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Message {
    pub tenant_id: Option<i64>,
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
