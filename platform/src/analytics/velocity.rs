//! Points velocity: how long points stay with a member between being earned and being
//! spent. Every debit records the lots it drew on (`allocations`), and each lot its
//! earning time, so each point spent has an age: the local days between the day its lot
//! was earned and the day it was spent (0: the same day). A trigger in the spending
//! transaction adds the points of each spend (orders and partners' checkouts, reasons
//! `spend` and `hold`) to a histogram per spending day, currency and age; points given
//! back to their lots (a refund, a voided hold) are taken off again. The figures of a
//! period are the points-weighted median, quartiles and mean of those ages.
//!
//! What the lots cannot tell: points a member received by transfer carry the transfer's
//! time (the receiver's lot is new), and released locked points the release's time, not
//! the sender's or the grant's earning; a lot drawn on by a debit is the one expiring
//! soonest, not the member's own choice.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::error::Result;
use crate::tx::TenantTx;

/// Points spent at an age between `from_days` and `to_days` (inclusive; open when `None`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgeBand {
    pub from_days: i64,
    pub to_days: Option<i64>,
    pub points: i64,
}

/// One currency's velocity over the period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CurrencyVelocity {
    pub currency: String,
    /// Points spent in the period and not given back.
    pub points_spent: i64,
    /// Median age in local days of the points spent (each point weighs the same).
    pub median_days: i64,
    /// A quarter of the points spent were younger than this, and three quarters.
    pub p25_days: i64,
    pub p75_days: i64,
    /// Mean age in days, to a tenth.
    pub mean_days: f64,
    /// Same day, 1-7, 8-30, 31-90, 91-365 and over 365 days.
    pub bands: Vec<AgeBand>,
}

/// Velocity of the points spent on the local days `from..=to`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Velocity {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    /// Currencies with spending in the period.
    pub currencies: Vec<CurrencyVelocity>,
    pub generated_at: DateTime<Utc>,
}

const HISTOGRAM: &str = "SELECT currency, age_days, sum(points)::bigint FROM spend_ages \
     WHERE day >= $1 AND day <= $2 GROUP BY 1, 2 HAVING sum(points) > 0 ORDER BY 1, 2";

const FOLD: &str = "WITH keys AS (SELECT DISTINCT day, currency, age_days FROM spend_ages WHERE NOT compacted), \
     gone AS (DELETE FROM spend_ages r USING keys k \
              WHERE r.day = k.day AND r.currency = k.currency AND r.age_days = k.age_days \
              RETURNING r.day, r.currency, r.age_days, r.points) \
     INSERT INTO spend_ages (day, currency, age_days, points, compacted) \
     SELECT day, currency, age_days, sum(points), true FROM gone GROUP BY 1, 2, 3";

const BANDS: [(i64, Option<i64>); 6] =
    [(0, Some(0)), (1, Some(7)), (8, Some(30)), (31, Some(90)), (91, Some(365)), (366, None)];

/// The velocity of the `days` local days ending with `to` (today when `None`).
pub async fn get(tx: &mut TenantTx, to: Option<NaiveDate>, days: Option<i64>, now: DateTime<Utc>) -> Result<Velocity> {
    let tz = tx.tenant().settings.tz();
    let range = super::period(tz, to, days, now)?;
    super::without_jit(tx).await?;
    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as(HISTOGRAM).bind(range.from).bind(range.to).fetch_all(&mut **tx).await?;
    let mut currencies = Vec::new();
    let mut rest = rows.as_slice();
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|r| r.0 == first.0).count();
        let ages: Vec<(i64, i64)> = rest[..n].iter().map(|r| (i64::from(r.1), r.2)).collect();
        currencies.push(of_ages(&first.0, &ages));
        rest = &rest[n..];
    }
    Ok(Velocity { from: range.from, to: range.to, time_zone: tz.name().to_string(), currencies, generated_at: now })
}

/// The figures of a histogram `(age in days, points)`, ages ascending, points > 0.
fn of_ages(currency: &str, ages: &[(i64, i64)]) -> CurrencyVelocity {
    let total: i64 = ages.iter().map(|a| a.1).sum();
    // The youngest age by which `num/den` of the points were spent.
    let quantile = |num: i128, den: i128| {
        let mut cum = 0i128;
        for (age, points) in ages {
            cum += i128::from(*points);
            if cum * den >= i128::from(total) * num {
                return *age;
            }
        }
        ages.last().map_or(0, |a| a.0)
    };
    let weighted: i128 = ages.iter().map(|(a, p)| i128::from(*a) * i128::from(*p)).sum();
    let mean = if total > 0 { (weighted as f64 / total as f64 * 10.0).round() / 10.0 } else { 0.0 };
    let bands = BANDS
        .iter()
        .map(|(from, to)| AgeBand {
            from_days: *from,
            to_days: *to,
            points: ages.iter().filter(|(a, _)| a >= from && to.is_none_or(|t| *a <= t)).map(|a| a.1).sum(),
        })
        .collect();
    CurrencyVelocity {
        currency: currency.to_string(),
        points_spent: total,
        median_days: quantile(1, 2),
        p25_days: quantile(1, 4),
        p75_days: quantile(3, 4),
        mean_days: mean,
        bands,
    }
}

/// Folds the histogram's fresh rows into one per day, currency and age.
pub async fn compact(conn: &mut PgConnection) -> Result<u64> {
    Ok(sqlx::query(FOLD).execute(conn).await?.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_weighs_every_point() {
        // 100 points spent the day they were earned, 300 after 10 days, 100 after 400.
        let v = of_ages("points", &[(0, 100), (10, 300), (400, 100)]);
        assert_eq!((v.points_spent, v.median_days, v.p25_days, v.p75_days), (500, 10, 10, 10));
        assert_eq!(v.mean_days, 86.0);
        let points: Vec<i64> = v.bands.iter().map(|b| b.points).collect();
        assert_eq!(points, [100, 0, 300, 0, 0, 100]);
        // An even split: the median is the younger age that reaches half.
        let v = of_ages("points", &[(1, 50), (3, 50)]);
        assert_eq!((v.median_days, v.p25_days, v.p75_days, v.mean_days), (1, 1, 3, 2.0));
    }
}
