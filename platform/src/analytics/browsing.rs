//! What signed-in members viewed: the viewers of each product per local day (conversion)
//! and each member's browse record (one row per product: the last view and how many),
//! both written with the page views about once a second (`reports::visits`), never per
//! request. A browse record keeps a member's `bounds::BROWSE_RECORD_ENTRIES` most
//! recently viewed products (trimmed as it is written) and no view older than
//! `bounds::BROWSE_RECORD_DAYS` days (not shown, and forgotten by the jobs).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::bounds;
use crate::error::{Error, Result};
use crate::tx::TenantTx;

/// A member's views of a product counted in memory: (member, product) → (last view, views).
pub type Browsed = ((i64, i64), (DateTime<Utc>, i64));

/// Views counted in memory since the last write.
#[derive(Debug, Default)]
pub struct Viewed {
    /// (local day, product, member) seen.
    pub viewers: Vec<(NaiveDate, i64, i64)>,
    /// (member, product) → (last view, views).
    pub records: Vec<Browsed>,
}

/// One product of a member's browse record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrowsedProduct {
    pub product_id: i64,
    /// The product's name now ("" when it was deleted).
    pub name: String,
    /// The member's last view of it.
    pub viewed_at: DateTime<Utc>,
    /// The member's views of it while the record kept it.
    pub views: i64,
}

/// A member's browse record, most recent first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrowseRecord {
    pub member_id: i64,
    pub products: Vec<BrowsedProduct>,
    /// What the record keeps: this many products, views of this many days.
    pub kept_products: i64,
    pub kept_days: i64,
}

const VIEWERS: &str = "INSERT INTO product_viewers (day, product_id, member_id) \
     SELECT * FROM unnest($1::date[], $2::bigint[], $3::bigint[]) ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING";

const RECORDS: &str = "INSERT INTO browse_records AS b (member_id, product_id, viewed_at, views) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::bigint[]) ORDER BY 1, 2 \
     ON CONFLICT (member_id, product_id) DO UPDATE \
     SET viewed_at = greatest(b.viewed_at, excluded.viewed_at), views = b.views + excluded.views";

/// Rows beyond the `$2` most recent of the members `$1`.
const TRIM: &str = "DELETE FROM browse_records b USING ( \
       SELECT member_id, product_id FROM ( \
         SELECT member_id, product_id, \
                row_number() OVER (PARTITION BY member_id ORDER BY viewed_at DESC, product_id DESC) AS n \
         FROM browse_records WHERE member_id = ANY($1)) r WHERE n > $2) x \
     WHERE b.member_id = x.member_id AND b.product_id = x.product_id";

const READ: &str = "SELECT b.product_id, COALESCE(p.name, '') AS name, b.viewed_at, b.views \
     FROM browse_records b LEFT JOIN products p ON p.id = b.product_id \
     WHERE b.member_id = $1 AND b.viewed_at >= $2 ORDER BY b.viewed_at DESC, b.product_id DESC LIMIT $3";

const FORGET: &str = "DELETE FROM browse_records WHERE viewed_at < $1";

/// Writes counted views (in key order, so two instances never deadlock), then trims
/// the members' records to their most recent products.
pub async fn write(conn: &mut PgConnection, viewed: &Viewed) -> Result<()> {
    if !viewed.viewers.is_empty() {
        let days: Vec<NaiveDate> = viewed.viewers.iter().map(|v| v.0).collect();
        let products: Vec<i64> = viewed.viewers.iter().map(|v| v.1).collect();
        let members: Vec<i64> = viewed.viewers.iter().map(|v| v.2).collect();
        sqlx::query(VIEWERS).bind(&days).bind(&products).bind(&members).execute(&mut *conn).await?;
    }
    if viewed.records.is_empty() {
        return Ok(());
    }
    let members: Vec<i64> = viewed.records.iter().map(|r| r.0.0).collect();
    let products: Vec<i64> = viewed.records.iter().map(|r| r.0.1).collect();
    let at: Vec<DateTime<Utc>> = viewed.records.iter().map(|r| r.1.0).collect();
    let views: Vec<i64> = viewed.records.iter().map(|r| r.1.1).collect();
    sqlx::query(RECORDS).bind(&members).bind(&products).bind(&at).bind(&views).execute(&mut *conn).await?;
    let mut touched = members;
    touched.sort_unstable();
    touched.dedup();
    sqlx::query(TRIM).bind(&touched).bind(bounds::BROWSE_RECORD_ENTRIES).execute(&mut *conn).await?;
    Ok(())
}

/// A member's browse record (404 for no such member).
pub async fn get(tx: &mut TenantTx, member_id: i64, now: DateTime<Utc>) -> Result<BrowseRecord> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM members WHERE id = $1)")
        .bind(member_id)
        .fetch_one(&mut **tx)
        .await?;
    if !exists {
        return Err(Error::not_found("member_not_found", "no such member"));
    }
    let rows: Vec<(i64, String, DateTime<Utc>, i64)> = sqlx::query_as(READ)
        .bind(member_id)
        .bind(now - Duration::days(bounds::BROWSE_RECORD_DAYS))
        .bind(bounds::BROWSE_RECORD_ENTRIES)
        .fetch_all(&mut **tx)
        .await?;
    Ok(BrowseRecord {
        member_id,
        products: rows
            .into_iter()
            .map(|(product_id, name, viewed_at, views)| BrowsedProduct { product_id, name, viewed_at, views })
            .collect(),
        kept_products: bounds::BROWSE_RECORD_ENTRIES,
        kept_days: bounds::BROWSE_RECORD_DAYS,
    })
}

/// Forgets views older than the record keeps.
pub async fn forget_old(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<u64> {
    Ok(sqlx::query(FORGET).bind(now - Duration::days(bounds::BROWSE_RECORD_DAYS)).execute(conn).await?.rows_affected())
}
