//! Reports of a mall (issue 13 points 6-7): the dashboard (SPEC B1) and finance (B4).
//!
//! Both read rollups that the writes keep (tenant migration `0015_reports.sql`): triggers
//! on `entries`, `orders` and `members` add rows in the writing transaction, and the
//! member API's product views and searches are counted in memory and written every
//! second (`visits`). Sums are kept per quarter hour of UTC, so any local day or month of
//! the mall's time zone is an exact range of them; distinct members per local day are
//! kept per day. The sum tables are append-only (no writer waits for another); the jobs
//! fold their fresh rows (`compact`).

pub mod compact;
pub mod dashboard;
pub mod finance;
pub mod visits;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::localtime;

pub use crate::limits::reports as bounds;

/// Local days `from..=to` of a zone and the instants they span.
#[derive(Debug, Clone, Copy)]
pub struct Days {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Days {
    /// The `n` local days ending with `to`.
    pub fn ending(tz: Tz, to: NaiveDate, n: i64) -> Self {
        let from = to - chrono::Duration::days(n.max(1) - 1);
        let next = to.succ_opt().unwrap_or(to);
        Self { from, to, starts_at: localtime::start_of(tz, from), ends_at: localtime::start_of(tz, next) }
    }

    /// Every day of the range, in order.
    pub fn each(&self) -> impl Iterator<Item = NaiveDate> {
        self.from.iter_days().take_while(move |d| *d <= self.to)
    }
}

/// `points` at `points_per_yuan` in fen, rounded to the nearest fen (half away from 0).
pub fn points_value_fen(points: i64, points_per_yuan: i64) -> i64 {
    let ppy = i128::from(points_per_yuan.max(1));
    let n = i128::from(points) * 100;
    let v = if n >= 0 { (n + ppy / 2) / ppy } else { (n - ppy / 2) / ppy };
    i64::try_from(v).unwrap_or(if v > 0 { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_valued_to_the_nearest_fen() {
        assert_eq!(points_value_fen(100, 100), 100);
        assert_eq!(points_value_fen(1, 100), 1);
        assert_eq!(points_value_fen(1, 300), 0);
        assert_eq!(points_value_fen(2, 300), 1);
        assert_eq!(points_value_fen(-2, 300), -1);
        assert_eq!(points_value_fen(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn days_end_at_the_next_local_midnight() {
        let tz = localtime::parse("Asia/Shanghai").unwrap();
        let d = Days::ending(tz, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), 2);
        assert_eq!(d.from, NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert_eq!(d.starts_at.to_rfc3339(), "2026-11-28T16:00:00+00:00");
        assert_eq!(d.ends_at.to_rfc3339(), "2026-11-30T16:00:00+00:00");
        assert_eq!(d.each().count(), 2);
    }
}
