//! Taking stock for a redemption without holding the product row through a durable
//! commit (SPEC O1, flash sales).
//!
//! Every buyer of a flash sale queues on one product row. When the stock was taken in
//! the order's own transaction, the row stayed locked until that transaction's commit
//! had flushed the WAL: one fsync per sale, one sale after another (`bench-flash`: the
//! row's holder was in `WALSync` in half of the samples). Now the order's transaction,
//! as its last step before the commit ([`take`]):
//! 1. reserves the stock in one statement, a transaction of its own on the cluster's side
//!    pool, sent as one message and committed **without waiting for the flush** (the side
//!    pool's connections run with `synchronous_commit = off`): the row is held only
//!    while PostgreSQL runs it;
//! 2. consumes the reservation (deletes its row) and commits durably. Its commit record
//!    comes after the reservation's in the WAL, so flushing it makes the reservation
//!    durable too: a committed order always has its stock taken.
//!
//! A reservation whose order did not commit (its commit failed, or the server died in
//! between) is given back to the stock by the mall's jobs once it is
//! `STALE_RESERVATION_SECS` old ([`release_stale`]). The conditional update
//! (`stock >= quantity`) is the only place a sale takes stock, so a product is never
//! oversold; the side pool never waits on the main one, so holding a connection of the
//! main pool while taking one of it cannot deadlock.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::catalog;
use crate::audit::Actor;
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::ProductId;
pub use crate::limits::mall::STALE_RESERVATION_SECS;

/// Takes `quantity` of the product's stock for the order of the transaction `conn`, as
/// its last step: `sold_out` when there is not that much left (the caller rolls back).
/// Raises the low-stock alert when the take reaches the product's threshold.
pub async fn take(
    db: &Db,
    tenant: &Tenant,
    conn: &mut PgConnection,
    product_id: ProductId,
    quantity: i64,
) -> Result<()> {
    let Some((id, low)) = reserve(db, tenant, product_id, quantity).await? else {
        return Err(sold_out());
    };
    let gone = sqlx::query("DELETE FROM stock_reservations WHERE id = $1").bind(id).execute(&mut *conn).await?;
    if gone.rows_affected() != 1 {
        // Given back as stale meanwhile: take no stock twice.
        return Err(Error::conflict(
            "stock_reservation_expired",
            "the stock held for this order was released; try again",
        ));
    }
    if low {
        catalog::check_low_stock(conn, product_id).await?;
    }
    Ok(())
}

/// Reserves the stock on the side pool: the reservation's id and whether the take left
/// the stock at or below the low-stock threshold, not alerted yet; `None` when there is
/// not that much left (or the product is no longer listed and approved).
///
/// One statement in a transaction of its own (the side pool's connections commit without
/// waiting for the flush, see `db::side_pool`), prepared once per connection and sent in
/// one message, so the row is never held while a round trip to this process waits on a
/// busy machine. Buyers queue for the row on a transaction-scoped advisory lock keyed by
/// (tenant, product), taken inside the statement while the row is checked, before its
/// row lock is asked for: without it each release wakes the whole queue to re-read the
/// row and queue again. The lock only orders the queue; the `stock >= quantity` re-check
/// on the newest row version is what keeps stock exact.
async fn reserve(db: &Db, tenant: &Tenant, product_id: ProductId, q: i64) -> Result<Option<(i64, bool)>> {
    // Only the directory-made schema name is formatted in (`db::plain_schema` checks it).
    let schema = crate::db::plain_schema(&tenant.schema_name)?;
    let sql = format!(
        "WITH taken AS (UPDATE \"{schema}\".products SET stock = stock - $1, redeemed_count = redeemed_count + $1 \
             WHERE id = $2 AND stock >= $1 AND status = 'listed' AND review_state = 'approved' \
             AND (SELECT true FROM pg_advisory_xact_lock($3, $4)) \
             RETURNING id, stock, low_stock_threshold, low_stock_alerted), \
         kept AS (INSERT INTO \"{schema}\".stock_reservations (product_id, quantity) SELECT id, $1 FROM taken RETURNING id) \
         SELECT kept.id, taken.low_stock_threshold > 0 \
             AND taken.stock <= taken.low_stock_threshold AND NOT taken.low_stock_alerted AS low \
         FROM kept, taken"
    );
    let (k1, k2) = (tenant.id.get() as i32, product_id.get() as i32);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(q)
        .bind(product_id)
        .bind(k1)
        .bind(k2)
        .fetch_optional(db.side(&tenant.cluster)?)
        .await?)
}

/// Returns to the stock every reservation made before `now - STALE_RESERVATION_SECS`
/// (its order never committed); reservations whose order is committing are skipped.
/// Returns how many were returned.
pub async fn release_stale(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<u64> {
    let before = now - chrono::Duration::seconds(STALE_RESERVATION_SECS);
    db.write(tenant, &Actor::system("system:stock"), async |tx| {
        let n: i64 = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM stock_reservations WHERE id IN \
                 (SELECT id FROM stock_reservations WHERE created_at < $1 ORDER BY id FOR UPDATE SKIP LOCKED) \
                 RETURNING product_id, quantity), \
             per_product AS (SELECT product_id, sum(quantity)::bigint AS q, count(*) AS n FROM gone GROUP BY product_id), \
             back AS (UPDATE products p SET stock = p.stock + t.q, redeemed_count = p.redeemed_count - t.q \
                 FROM per_product t WHERE p.id = t.product_id RETURNING t.n) \
             SELECT coalesce(sum(n), 0)::bigint FROM back",
        )
        .bind(before)
        .fetch_one(&mut **tx)
        .await?;
        Ok(n as u64)
    })
    .await
}

/// The answer when a product has too little stock left.
pub(super) fn sold_out() -> Error {
    Error::conflict("sold_out", "this product is sold out")
}
