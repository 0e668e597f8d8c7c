//! Analytics of a mall (issue 13 point 8, SPEC B7), for its staff: retention of new
//! members by registration week, redemption conversion per product, points velocity,
//! top searches and searches that found nothing, and a member's browse record.
//!
//! Every figure reads data kept as the mall runs (tenant migration `0017_analytics.sql`
//! and the reports' `0015`), never a scan of the whole history: retention reads the
//! members who registered in the weeks asked for and the local days they were active
//! (`active_days`); conversion the page views and the signed-in viewers per product and
//! local day (written with the page views about once a second, `reports::visits`) and
//! the orders; velocity a histogram of points spent per day by their age, kept by a
//! trigger in the spending transaction; searches the terms counted in memory and written
//! with the page views. Every query covers a bounded period (`bounds`): a longer one is a
//! 422 `period_too_long`.

pub mod browsing;
pub mod conversion;
pub mod retention;
pub mod searches;
pub mod velocity;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::error::{Error, FieldError, Result};
use crate::reports::Days;

pub use crate::limits::analytics as bounds;

/// `n` is refused: 0 or less is not a period, more than `max` is too long.
pub(crate) fn check_span(field: &str, n: i64, max: i64) -> Result<()> {
    if n < 1 {
        return Err(Error::invalid_field(field, format!("1 to {max}")));
    }
    if n > max {
        return Err(Error::Invalid {
            code: "period_too_long",
            message: format!("{field}: 1 to {max} (analytics cover at most {max} at a time)"),
            fields: vec![FieldError { field: field.to_string(), message: format!("1 to {max}") }],
        });
    }
    Ok(())
}

/// The `days` local days ending with `to` (today in the mall's zone when `None`), at
/// most `bounds::PERIOD_DAYS_MAX`.
pub fn period(tz: Tz, to: Option<NaiveDate>, days: Option<i64>, now: DateTime<Utc>) -> Result<Days> {
    let days = days.unwrap_or(bounds::PERIOD_DAYS_DEFAULT);
    check_span("days", days, bounds::PERIOD_DAYS_MAX)?;
    let to = to.unwrap_or_else(|| crate::localtime::day(tz, now));
    Ok(Days::ending(tz, to, days))
}

/// Folds the fresh rows of the search terms and the spending ages (one row per key, as
/// `reports::compact` does for the rollups) and forgets browse records older than
/// `bounds::BROWSE_RECORD_DAYS`: the jobs' step, in one transaction. Returns the rows
/// folded or dropped.
pub async fn maintain(db: &crate::db::Db, tenant: &crate::directory::Tenant, now: DateTime<Utc>) -> Result<u64> {
    db.write(tenant, &crate::audit::Actor::system("analytics"), async |tx| {
        let mut n = searches::compact(tx).await?;
        n += velocity::compact(tx).await?;
        n += browsing::forget_old(tx, now).await?;
        Ok(n)
    })
    .await
}

/// Turns PostgreSQL's JIT compilation off for the rest of the transaction: the
/// aggregates over a period's rows are costed above `jit_above_cost`, and compiling them
/// took ~0.6 s of a 1.1 s retention query on 100,000 members (77 ms without; see the
/// README's bench-reports figures).
pub(crate) async fn without_jit(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SET LOCAL jit = off").execute(conn).await?;
    Ok(())
}

/// Points as a share: `part` of `whole` in per mille (0 when `whole` is 0), rounded half up.
pub fn per_mille(part: i64, whole: i64) -> i64 {
    if whole <= 0 { 0 } else { (part.max(0) * 1000 + whole / 2) / whole }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_rounded_per_mille() {
        assert_eq!(per_mille(1, 3), 333);
        assert_eq!(per_mille(2, 3), 667);
        assert_eq!(per_mille(0, 0), 0);
        assert_eq!(per_mille(5, 5), 1000);
    }

    #[test]
    fn a_period_longer_than_the_bound_is_its_own_422() {
        let tz = crate::localtime::parse("Asia/Shanghai").unwrap();
        let e = period(tz, None, Some(bounds::PERIOD_DAYS_MAX + 1), Utc::now()).unwrap_err();
        assert_eq!(e.code(), "period_too_long");
        assert_eq!(period(tz, None, Some(0), Utc::now()).unwrap_err().code(), "validation_failed");
        let d = period(tz, Some(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()), Some(92), Utc::now()).unwrap();
        assert_eq!(d.from, NaiveDate::from_ymd_opt(2026, 8, 31).unwrap());
    }
}
