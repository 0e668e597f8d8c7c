//! The dashboard (SPEC B1): per local day of the mall's zone, new and active members,
//! points issued, spent and expired per currency, orders and units redeemed, page views,
//! searches and unique visitors; the hot products of the range. Every figure comes from
//! the rollups (a handful of index range reads, whatever the mall's history).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{Days, bounds};
use crate::error::{Error, Result};
use crate::tx::TenantTx;

/// One local day's figures.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DayFigures {
    pub day: NaiveDate,
    /// Members who signed up that day.
    pub new_members: i64,
    /// Members who earned, spent, sent a transfer or held points for a checkout, or
    /// viewed a product or searched while signed in.
    pub active_members: i64,
    /// Orders made.
    pub orders: i64,
    /// Orders cancelled or refunded (whenever they were made).
    pub cancelled: i64,
    /// Units redeemed: of orders made, less those of orders cancelled or refunded.
    pub units: i64,
    /// Product detail views.
    pub page_views: i64,
    /// Catalog searches (a keyword given).
    pub searches: i64,
    /// Signed-in members who viewed a product or searched.
    pub unique_visitors: i64,
}

/// One local day's points flow in one currency.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PointsDay {
    pub day: NaiveDate,
    pub currency: String,
    /// Earned, and granted locked (spendable once released).
    pub issued: i64,
    /// Spent on orders and partners' checkouts (before returns).
    pub spent: i64,
    /// Lapsed at their expiry.
    pub expired: i64,
}

/// A product of the hot list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HotProduct {
    pub product_id: i64,
    pub name: String,
    pub orders: i64,
    pub units: i64,
    pub views: i64,
}

/// The dashboard of a range of local days.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The mall's time zone the days are in.
    pub time_zone: String,
    /// Members the mall has now.
    pub members_total: i64,
    /// The range's sums (`day` is its first day; `active_members` and `unique_visitors`
    /// add up the days, a member counting once per day).
    pub totals: DayFigures,
    /// One entry per day, oldest first, days without activity included.
    pub days: Vec<DayFigures>,
    /// Per day and currency, oldest first (days without a movement left out).
    pub points: Vec<PointsDay>,
    /// The most redeemed products of the range (units, then orders).
    pub hot_products: Vec<HotProduct>,
    pub generated_at: DateTime<Utc>,
}

const POINTS_BY_DAY: &str = "SELECT (bucket AT TIME ZONE $3)::date AS day, currency, \
     COALESCE(sum(amount + locked) FILTER (WHERE reason IN ('earn', 'lock', 'release')), 0)::bigint AS issued, \
     COALESCE(-sum(amount + locked) FILTER (WHERE reason IN ('spend', 'hold')), 0)::bigint AS spent, \
     COALESCE(-sum(amount + locked) FILTER (WHERE reason = 'expire'), 0)::bigint AS expired \
     FROM ledger_rollup WHERE bucket >= $1 AND bucket < $2 GROUP BY 1, 2 ORDER BY 1, 2";

const ORDERS_BY_DAY: &str = "SELECT (bucket AT TIME ZONE $3)::date AS day, sum(placed)::bigint, sum(returned)::bigint, \
     sum(quantity)::bigint FROM order_rollup WHERE bucket >= $1 AND bucket < $2 GROUP BY 1";

const TRAFFIC_BY_DAY: &str = "SELECT (bucket AT TIME ZONE $3)::date AS day, sum(new_members)::bigint, sum(views)::bigint, \
     sum(searches)::bigint FROM traffic_rollup WHERE bucket >= $1 AND bucket < $2 GROUP BY 1";

const COUNTS_BY_DAY: &str = "SELECT day, sum(active)::bigint, sum(visitors)::bigint FROM daily_counts \
     WHERE day >= $1 AND day <= $2 GROUP BY day";

const HOT: &str = "WITH top AS (SELECT product_id, sum(placed)::bigint AS orders, sum(quantity)::bigint AS units \
       FROM order_rollup WHERE bucket >= $1 AND bucket < $2 GROUP BY product_id \
       ORDER BY units DESC, orders DESC, product_id LIMIT $3) \
     SELECT t.product_id, COALESCE(p.name, '') AS name, t.orders, t.units \
     FROM top t LEFT JOIN products p ON p.id = t.product_id ORDER BY t.units DESC, t.orders DESC, t.product_id";

const HOT_VIEWS: &str = "SELECT product_id, sum(views)::bigint FROM product_views \
     WHERE bucket >= $1 AND bucket < $2 AND product_id = ANY($3) GROUP BY product_id";

/// The dashboard of the `days` local days ending with `to` (today when `None`).
pub async fn get(tx: &mut TenantTx, to: Option<NaiveDate>, days: i64, now: DateTime<Utc>) -> Result<Dashboard> {
    if !(1..=bounds::DASHBOARD_DAYS_MAX).contains(&days) {
        return Err(Error::invalid_field("days", format!("1 to {}", bounds::DASHBOARD_DAYS_MAX)));
    }
    let tz = tx.tenant().settings.tz();
    let to = to.unwrap_or_else(|| crate::localtime::day(tz, now));
    let range = Days::ending(tz, to, days);
    let zone = tz.name();
    let mut by_day: HashMap<NaiveDate, DayFigures> =
        range.each().map(|day| (day, DayFigures { day, ..DayFigures::default() })).collect();
    fill_days(tx, &range, zone, &mut by_day).await?;
    let points: Vec<PointsDay> = sqlx::query_as::<_, (NaiveDate, String, i64, i64, i64)>(POINTS_BY_DAY)
        .bind(range.starts_at)
        .bind(range.ends_at)
        .bind(zone)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(day, currency, issued, spent, expired)| PointsDay { day, currency, issued, spent, expired })
        .collect();
    let members_total: i64 = sqlx::query_scalar("SELECT COALESCE(sum(new_members), 0)::bigint FROM traffic_rollup")
        .fetch_one(&mut **tx)
        .await?;
    let mut days: Vec<DayFigures> = by_day.into_values().collect();
    days.sort_by_key(|d| d.day);
    Ok(Dashboard {
        from: range.from,
        to: range.to,
        time_zone: zone.to_string(),
        members_total,
        totals: totals(range.from, &days),
        days,
        points,
        hot_products: hot(tx, &range).await?,
        generated_at: now,
    })
}

/// Adds the rollups' per-day figures into `by_day`.
async fn fill_days(
    conn: &mut PgConnection,
    range: &Days,
    zone: &str,
    by_day: &mut HashMap<NaiveDate, DayFigures>,
) -> Result<()> {
    let orders: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(ORDERS_BY_DAY)
        .bind(range.starts_at)
        .bind(range.ends_at)
        .bind(zone)
        .fetch_all(&mut *conn)
        .await?;
    for (day, placed, returned, units) in orders {
        if let Some(d) = by_day.get_mut(&day) {
            (d.orders, d.cancelled, d.units) = (placed, returned, units);
        }
    }
    let traffic: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(TRAFFIC_BY_DAY)
        .bind(range.starts_at)
        .bind(range.ends_at)
        .bind(zone)
        .fetch_all(&mut *conn)
        .await?;
    for (day, joined, views, searches) in traffic {
        if let Some(d) = by_day.get_mut(&day) {
            (d.new_members, d.page_views, d.searches) = (joined, views, searches);
        }
    }
    let counts: Vec<(NaiveDate, i64, i64)> =
        sqlx::query_as(COUNTS_BY_DAY).bind(range.from).bind(range.to).fetch_all(&mut *conn).await?;
    for (day, active, visitors) in counts {
        if let Some(d) = by_day.get_mut(&day) {
            (d.active_members, d.unique_visitors) = (active, visitors);
        }
    }
    Ok(())
}

fn totals(from: NaiveDate, days: &[DayFigures]) -> DayFigures {
    days.iter().fold(DayFigures { day: from, ..DayFigures::default() }, |mut t, d| {
        t.new_members += d.new_members;
        t.active_members += d.active_members;
        t.orders += d.orders;
        t.cancelled += d.cancelled;
        t.units += d.units;
        t.page_views += d.page_views;
        t.searches += d.searches;
        t.unique_visitors += d.unique_visitors;
        t
    })
}

async fn hot(conn: &mut PgConnection, range: &Days) -> Result<Vec<HotProduct>> {
    let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(HOT)
        .bind(range.starts_at)
        .bind(range.ends_at)
        .bind(bounds::HOT_PRODUCTS)
        .fetch_all(&mut *conn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let views: HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(HOT_VIEWS)
        .bind(range.starts_at)
        .bind(range.ends_at)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .filter(|r| r.3 > 0 || r.2 > 0)
        .map(|(product_id, name, orders, units)| HotProduct {
            product_id,
            name,
            orders,
            units,
            views: views.get(&product_id).copied().unwrap_or(0),
        })
        .collect())
}
