//! Retention of new members by cohort week: of the members who registered in a week
//! (Monday to Sunday of the mall's zone), how many were active on the 1st, 7th and 30th
//! local day after the day they registered (`bounds::RETENTION_DAYS`). "Active" is what
//! the dashboard counts (`active_days`): a ledger entry of their own doing (earning,
//! spending, sending a transfer, a hold for a checkout) or a product view or search while
//! signed in. A member counts toward day N only once that local day has ended, so a
//! young cohort's rate is never diluted by days still to come.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::bounds;
use crate::error::Result;
use crate::localtime;
use crate::tx::TenantTx;

/// One day-N figure of a cohort.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetainedOn {
    /// Days after registration (1, 7 or 30).
    pub day: i64,
    /// Members of the cohort whose day N has ended (the rate's base).
    pub measured: i64,
    /// Of those, members active on their day N.
    pub retained: i64,
    /// retained / measured in per mille (0 when nobody is measured yet).
    pub rate_per_mille: i64,
}

/// Members who registered in one week.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Cohort {
    /// The Monday the week starts on.
    pub week: NaiveDate,
    /// Members who registered that week.
    pub members: i64,
    /// Day 1, 7 and 30, in that order.
    pub retained: Vec<RetainedOn>,
}

/// The retention table of consecutive registration weeks.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Retention {
    /// The Monday of the first week and the Sunday of the last.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: String,
    /// Oldest week first, weeks without a registration included.
    pub cohorts: Vec<Cohort>,
    pub generated_at: DateTime<Utc>,
}

/// Per local registration day: members, and those active on day 1, 7 and 30 after it.
const BY_DAY: &str = "WITH c AS (SELECT id, (created_at AT TIME ZONE $3)::date AS joined FROM members \
       WHERE created_at >= $1 AND created_at < $2) \
     SELECT joined, count(*)::bigint, \
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM active_days a WHERE a.day = c.joined + $4::int AND a.member_id = c.id))::bigint, \
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM active_days a WHERE a.day = c.joined + $5::int AND a.member_id = c.id))::bigint, \
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM active_days a WHERE a.day = c.joined + $6::int AND a.member_id = c.id))::bigint \
     FROM c GROUP BY joined ORDER BY joined";

/// The Monday of the week `day` is in.
pub fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// The `weeks` registration weeks ending with the week of `to` (today when `None`).
pub async fn get(
    tx: &mut TenantTx,
    to: Option<NaiveDate>,
    weeks: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Retention> {
    let weeks = weeks.unwrap_or(bounds::COHORT_WEEKS_DEFAULT);
    super::check_span("weeks", weeks, bounds::COHORT_WEEKS_MAX)?;
    let tz = tx.tenant().settings.tz();
    let today = localtime::day(tz, now);
    let last = monday_of(to.unwrap_or(today));
    let first = last - Duration::weeks(weeks - 1);
    let end = last + Duration::weeks(1);
    let [d1, d7, d30] = bounds::RETENTION_DAYS;
    super::without_jit(tx).await?;
    let rows: Vec<(NaiveDate, i64, i64, i64, i64)> = sqlx::query_as(BY_DAY)
        .bind(localtime::start_of(tz, first))
        .bind(localtime::start_of(tz, end))
        .bind(tz.name())
        .bind(d1 as i32)
        .bind(d7 as i32)
        .bind(d30 as i32)
        .fetch_all(&mut **tx)
        .await?;
    Ok(Retention {
        from: first,
        to: end - Duration::days(1),
        time_zone: tz.name().to_string(),
        cohorts: cohorts(first, weeks, today, &rows),
        generated_at: now,
    })
}

/// Per-day rows into weeks: a day's members count toward day N once `joined + N` ended
/// (is before `today`).
fn cohorts(first: NaiveDate, weeks: i64, today: NaiveDate, rows: &[(NaiveDate, i64, i64, i64, i64)]) -> Vec<Cohort> {
    (0..weeks)
        .map(|w| {
            let week = first + Duration::weeks(w);
            let days: Vec<_> = rows.iter().filter(|r| monday_of(r.0) == week).collect();
            let retained = bounds::RETENTION_DAYS
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let ended: Vec<_> = days.iter().filter(|r| r.0 + Duration::days(*n) < today).collect();
                    let measured = ended.iter().map(|r| r.1).sum();
                    let retained = ended.iter().map(|r| [r.2, r.3, r.4][i]).sum();
                    RetainedOn { day: *n, measured, retained, rate_per_mille: super::per_mille(retained, measured) }
                })
                .collect();
            Cohort { week, members: days.iter().map(|r| r.1).sum(), retained }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_start_on_monday() {
        assert_eq!(monday_of(d("2026-11-29")), d("2026-11-23"), "a Sunday belongs to the week before");
        assert_eq!(monday_of(d("2026-11-30")), d("2026-11-30"));
    }

    #[test]
    fn a_day_counts_once_it_has_ended() {
        // Registered on Monday 23 and Tuesday 24 November; today is 1 December.
        let rows = [(d("2026-11-23"), 4, 2, 1, 0), (d("2026-11-24"), 2, 1, 1, 0)];
        let c = cohorts(d("2026-11-23"), 2, d("2026-12-01"), &rows);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].members, 6);
        let day1 = &c[0].retained[0];
        assert_eq!((day1.measured, day1.retained, day1.rate_per_mille), (6, 3, 500));
        // Day 7 of the 23rd is the 30th (ended); of the 24th, 1 December (today: not yet).
        let day7 = &c[0].retained[1];
        assert_eq!((day7.measured, day7.retained), (4, 1));
        assert_eq!(c[0].retained[2].measured, 0);
        assert_eq!(c[1].members, 0);
    }
}
