//! Folds the rollups' fresh rows (one per writer, statement and key) into one row per key,
//! so a report reads about one row per quarter hour and key however busy the mall was.
//! Each statement deletes the fresh rows of the keys it sees and the folded rows of those
//! keys, and inserts their sums: a row a writer commits meanwhile is not in the
//! statement's snapshot and stays for the next run; sums never change.
//!
//! Then the quarter hours of local days that ended more than a day ago are folded into
//! one row per local day of the mall's zone (keyed at its local midnight), so a 30-day
//! dashboard reads about 30 rows per key instead of 2,880. Reports of that zone stay
//! exact; after a change of zone, the days folded before it keep the old zone's
//! midnights (totals over whole months shift by at most the difference of the offsets
//! at their two ends).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::db::Db;
use crate::directory::Tenant;
use crate::error::Result;
use crate::localtime;

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

/// Quarter hours before `$1` (a local midnight) into their local day of zone `$2`.
const LEDGER_DAYS: &str = "WITH gone AS (DELETE FROM ledger_rollup WHERE bucket < $1 \
       AND bucket <> date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2 \
       RETURNING bucket, currency, reason, amount, locked, entries) \
     INSERT INTO ledger_rollup (bucket, currency, reason, amount, locked, entries, compacted) \
     SELECT date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2, currency, reason, sum(amount), sum(locked), \
            sum(entries), true FROM gone GROUP BY 1, 2, 3";

const ORDERS_DAYS: &str = "WITH gone AS (DELETE FROM order_rollup WHERE bucket < $1 \
       AND bucket <> date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2 \
       RETURNING bucket, product_id, currency, placed, returned, quantity, points, cash_fen, cost_fen, uncosted) \
     INSERT INTO order_rollup (bucket, product_id, currency, placed, returned, quantity, points, cash_fen, cost_fen, \
                               uncosted, compacted) \
     SELECT date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2, product_id, currency, sum(placed), sum(returned), \
            sum(quantity), sum(points), sum(cash_fen), sum(cost_fen), sum(uncosted), true FROM gone GROUP BY 1, 2, 3";

const TRAFFIC_DAYS: &str = "WITH gone AS (DELETE FROM traffic_rollup WHERE bucket < $1 \
       AND bucket <> date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2 \
       RETURNING bucket, new_members, views, searches) \
     INSERT INTO traffic_rollup (bucket, new_members, views, searches, compacted) \
     SELECT date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2, sum(new_members), sum(views), sum(searches), \
            true FROM gone GROUP BY 1";

const VIEWS_DAYS: &str = "WITH gone AS (DELETE FROM product_views WHERE bucket < $1 \
       AND bucket <> date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2 \
       RETURNING bucket, product_id, views) \
     INSERT INTO product_views (bucket, product_id, views, compacted) \
     SELECT date_trunc('day', bucket AT TIME ZONE $2) AT TIME ZONE $2, product_id, sum(views), true \
     FROM gone GROUP BY 1, 2";

/// Folds every rollup of the connection's schema: fresh rows per key, then the quarter
/// hours of local days of `tz` that began before `days_before` into one row per day.
/// Returns the rows folded away.
pub async fn rollups(conn: &mut PgConnection, tz: chrono_tz::Tz, days_before: DateTime<Utc>) -> Result<u64> {
    let mut n = 0;
    for sql in [LEDGER, ORDERS, TRAFFIC, VIEWS, COUNTS] {
        n += sqlx::query(sql).execute(&mut *conn).await?.rows_affected();
    }
    for sql in [LEDGER_DAYS, ORDERS_DAYS, TRAFFIC_DAYS, VIEWS_DAYS] {
        n += sqlx::query(sql).bind(days_before).bind(tz.name()).execute(&mut *conn).await?.rows_affected();
    }
    Ok(n)
}

/// Folds one mall's rollups (the jobs' step), in its own transaction: local days that
/// ended more than a day before `now` become one row each.
pub async fn tenant(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<u64> {
    let tz = tenant.settings.tz();
    let cutoff = localtime::start_of(tz, localtime::day(tz, now) - chrono::Duration::days(1));
    db.write(tenant, &crate::audit::Actor::system("reports"), async |tx| rollups(tx, tz, cutoff).await).await
}
