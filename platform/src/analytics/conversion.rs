//! Redemption conversion per product over a period of local days: its views (every
//! product detail view, signed in or not), its viewers (signed-in members who viewed it,
//! each once), how many of those viewers redeemed it in the period on or after the day
//! they first viewed it there (an order not cancelled or refunded), and the orders and
//! units of the period (the dashboard's figures). Conversion is converted / viewers.
//! Anonymous views count as views only: nobody can tell whether their viewer redeemed.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::bounds;
use crate::error::{Error, Result};
use crate::tx::TenantTx;

/// One product's funnel.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductConversion {
    pub product_id: i64,
    /// Its name now ("" when it was deleted).
    pub name: String,
    /// Detail views, anonymous ones included.
    pub views: i64,
    /// Signed-in members who viewed it.
    pub viewers: i64,
    /// Viewers who then redeemed it in the period.
    pub converted: i64,
    /// converted / viewers, per mille.
    pub conversion_per_mille: i64,
    /// Orders made in the period (by anyone), and units net of those given back.
    pub orders: i64,
    pub units: i64,
}

/// Conversion of the local days `from..=to`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Conversion {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    /// Products viewed or redeemed in the period (the list shows the most viewed).
    pub products_total: i64,
    /// Most views first, then most orders.
    pub products: Vec<ProductConversion>,
    pub generated_at: DateTime<Utc>,
}

type Row = (i64, String, i64, i64, i64, i64, i64, i64);

const FUNNEL: &str = "WITH v AS (SELECT product_id, sum(views)::bigint AS views FROM product_views \
       WHERE bucket >= $1 AND bucket < $2 GROUP BY 1), \
     pv AS (SELECT product_id, member_id, min(day) AS first_day FROM product_viewers \
       WHERE day >= $3 AND day <= $4 GROUP BY 1, 2), \
     w AS (SELECT product_id, count(*)::bigint AS viewers, \
         count(*) FILTER (WHERE EXISTS (SELECT 1 FROM orders o \
           WHERE o.product_id = pv.product_id AND o.member_id = pv.member_id \
             AND o.status NOT IN ('cancelled', 'refunded') \
             AND o.created_at >= (pv.first_day::timestamp AT TIME ZONE $5) AND o.created_at < $2))::bigint AS converted \
       FROM pv GROUP BY 1), \
     o AS (SELECT product_id, sum(placed)::bigint AS orders, sum(quantity)::bigint AS units FROM order_rollup \
       WHERE bucket >= $1 AND bucket < $2 GROUP BY 1), \
     ids AS (SELECT product_id FROM v UNION SELECT product_id FROM w UNION SELECT product_id FROM o) \
     SELECT ids.product_id, COALESCE(p.name, '') AS name, COALESCE(v.views, 0) AS views, \
       COALESCE(w.viewers, 0) AS viewers, COALESCE(w.converted, 0) AS converted, COALESCE(o.orders, 0) AS orders, \
       COALESCE(o.units, 0) AS units, count(*) OVER ()::bigint AS total \
     FROM ids LEFT JOIN v ON v.product_id = ids.product_id LEFT JOIN w ON w.product_id = ids.product_id \
       LEFT JOIN o ON o.product_id = ids.product_id LEFT JOIN products p ON p.id = ids.product_id \
     ORDER BY views DESC, orders DESC, ids.product_id LIMIT $6";

/// The conversion of the `days` local days ending with `to`, the `limit` most viewed
/// products.
pub async fn get(
    tx: &mut TenantTx,
    to: Option<NaiveDate>,
    days: Option<i64>,
    limit: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Conversion> {
    let limit = limit.unwrap_or(bounds::CONVERSION_ROWS_DEFAULT);
    if !(1..=bounds::CONVERSION_ROWS_MAX).contains(&limit) {
        return Err(Error::invalid_field("limit", format!("1 to {}", bounds::CONVERSION_ROWS_MAX)));
    }
    let tz = tx.tenant().settings.tz();
    let range = super::period(tz, to, days, now)?;
    super::without_jit(tx).await?;
    let rows: Vec<Row> = sqlx::query_as(FUNNEL)
        .bind(range.starts_at)
        .bind(range.ends_at)
        .bind(range.from)
        .bind(range.to)
        .bind(tz.name())
        .bind(limit)
        .fetch_all(&mut **tx)
        .await?;
    Ok(Conversion {
        from: range.from,
        to: range.to,
        time_zone: tz.name().to_string(),
        products_total: rows.first().map_or(0, |r| r.7),
        products: rows
            .into_iter()
            .map(|(product_id, name, views, viewers, converted, orders, units, _)| ProductConversion {
                product_id,
                name,
                views,
                viewers,
                converted,
                conversion_per_mille: super::per_mille(converted, viewers),
                orders,
                units,
            })
            .collect(),
        generated_at: now,
    })
}
