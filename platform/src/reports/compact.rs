//! Folds the rollups' fresh rows (one per writer, statement and key) into one row per key,
//! so a report reads about one row per quarter hour and key however busy the mall was.
//! Each statement deletes the fresh rows of the keys it sees and the folded rows of those
//! keys, and inserts their sums: a row a writer commits meanwhile is not in the
//! statement's snapshot and stays for the next run; sums never change.

use sqlx::PgConnection;

use crate::db::Db;
use crate::directory::Tenant;
use crate::error::Result;

const LEDGER: &str = "WITH keys AS (SELECT DISTINCT bucket, currency, reason FROM ledger_rollup WHERE NOT compacted), \
     gone AS (DELETE FROM ledger_rollup r USING keys k \
              WHERE r.bucket = k.bucket AND r.currency = k.currency AND r.reason = k.reason \
              RETURNING r.bucket, r.currency, r.reason, r.amount, r.locked, r.entries) \
     INSERT INTO ledger_rollup (bucket, currency, reason, amount, locked, entries, compacted) \
     SELECT bucket, currency, reason, sum(amount), sum(locked), sum(entries), true FROM gone GROUP BY 1, 2, 3";

const ORDERS: &str = "WITH keys AS (SELECT DISTINCT bucket, product_id, currency FROM order_rollup WHERE NOT compacted), \
     gone AS (DELETE FROM order_rollup r USING keys k \
              WHERE r.bucket = k.bucket AND r.product_id = k.product_id AND r.currency = k.currency \
              RETURNING r.bucket, r.product_id, r.currency, r.placed, r.returned, r.quantity, r.points, r.cash_fen, \
                        r.cost_fen, r.uncosted) \
     INSERT INTO order_rollup (bucket, product_id, currency, placed, returned, quantity, points, cash_fen, cost_fen, \
                               uncosted, compacted) \
     SELECT bucket, product_id, currency, sum(placed), sum(returned), sum(quantity), sum(points), sum(cash_fen), \
            sum(cost_fen), sum(uncosted), true FROM gone GROUP BY 1, 2, 3";

const TRAFFIC: &str = "WITH keys AS (SELECT DISTINCT bucket FROM traffic_rollup WHERE NOT compacted), \
     gone AS (DELETE FROM traffic_rollup r USING keys k WHERE r.bucket = k.bucket \
              RETURNING r.bucket, r.new_members, r.views, r.searches) \
     INSERT INTO traffic_rollup (bucket, new_members, views, searches, compacted) \
     SELECT bucket, sum(new_members), sum(views), sum(searches), true FROM gone GROUP BY 1";

const VIEWS: &str = "WITH keys AS (SELECT DISTINCT bucket, product_id FROM product_views WHERE NOT compacted), \
     gone AS (DELETE FROM product_views r USING keys k WHERE r.bucket = k.bucket AND r.product_id = k.product_id \
              RETURNING r.bucket, r.product_id, r.views) \
     INSERT INTO product_views (bucket, product_id, views, compacted) \
     SELECT bucket, product_id, sum(views), true FROM gone GROUP BY 1, 2";

const COUNTS: &str = "WITH keys AS (SELECT DISTINCT day FROM daily_counts WHERE NOT compacted), \
     gone AS (DELETE FROM daily_counts r USING keys k WHERE r.day = k.day RETURNING r.day, r.active, r.visitors) \
     INSERT INTO daily_counts (day, active, visitors, compacted) \
     SELECT day, sum(active), sum(visitors), true FROM gone GROUP BY 1";

/// Folds every rollup of the connection's schema; returns the rows folded away.
pub async fn rollups(conn: &mut PgConnection) -> Result<u64> {
    let mut n = 0;
    for sql in [LEDGER, ORDERS, TRAFFIC, VIEWS, COUNTS] {
        n += sqlx::query(sql).execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}

/// Folds one mall's rollups (the jobs' step), in its own transaction.
pub async fn tenant(db: &Db, tenant: &Tenant) -> Result<u64> {
    db.write(tenant, &crate::audit::Actor::system("reports"), async |tx| rollups(tx).await).await
}
