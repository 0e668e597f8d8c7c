//! The mall's day (issue 13): each mall (and alliance) lives in its own time zone
//! (default Asia/Shanghai). Check-in days and streaks, daily caps and today/week counts,
//! transfer and draw day limits, the release of locked grants and end-of-period expiry
//! all count in local days; instants stay UTC in the database.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The zone every mall starts in.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// Reads an IANA zone name ("Asia/Shanghai", "Europe/Berlin", "UTC").
pub fn parse(name: &str) -> Option<Tz> {
    name.parse().ok()
}

/// The local calendar day of `at` in `tz`.
pub fn day(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The instant local `date` begins in `tz` (the first valid local time of that day, so
/// a zone that skips midnight still has a start).
pub fn start_of(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut t = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(at) = tz.from_local_datetime(&t).earliest() {
            return at.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// The instant the local day of `at` began.
pub fn start_of_day(tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    start_of(tz, day(tz, at))
}

/// `at` in RFC 3339 with the zone's offset, as rules read times
/// ("2026-11-30T23:59:00+08:00"), to the microsecond the database keeps.
pub fn rfc3339(tz: Tz, at: DateTime<Utc>) -> String {
    use chrono::SubsecRound;
    at.trunc_subsecs(6).with_timezone(&tz).to_rfc3339()
}

/// `at` as members read it: `2026/11/21 10:38` in the mall's zone.
pub fn display(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz).format("%Y/%m/%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beijing() -> Tz {
        parse(DEFAULT_TIME_ZONE).unwrap()
    }

    #[test]
    fn beijing_days_turn_at_sixteen_utc() {
        let before = Utc.with_ymd_and_hms(2026, 11, 29, 15, 59, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 29, 16, 1, 0).unwrap();
        assert_eq!(day(beijing(), before), NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
        assert_eq!(day(beijing(), after), NaiveDate::from_ymd_opt(2026, 11, 30).unwrap());
        assert_eq!(start_of_day(beijing(), after), Utc.with_ymd_and_hms(2026, 11, 29, 16, 0, 0).unwrap());
        assert_eq!(display(beijing(), after), "2026/11/30 00:01");
    }

    #[test]
    fn a_day_without_midnight_still_starts() {
        // Santiago skipped 2022-09-11 00:00 (clocks went to 01:00).
        let tz = parse("America/Santiago").unwrap();
        let d = NaiveDate::from_ymd_opt(2022, 9, 11).unwrap();
        assert_eq!(day(tz, start_of(tz, d)), d);
        assert!(parse("Mars/Olympus").is_none());
    }
}
