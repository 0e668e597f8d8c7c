//! A settlement period: a month ("2026-11") or a day ("2026-11-30") of the alliance's
//! time zone, and the instants it starts and ends at.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};
use crate::localtime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// As written: "2026-11" or "2026-11-30".
    pub label: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// What a period label looks like (documented in the API).
pub const FORMAT: &str = "a month (YYYY-MM) or a day (YYYY-MM-DD)";

impl Period {
    /// Reads `label` as a period of `tz`.
    pub fn parse(label: &str, tz: Tz) -> Result<Self> {
        let invalid = || Error::invalid_field("period", FORMAT);
        let (first, next) = match label.len() {
            7 => {
                let first = NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d").map_err(|_| invalid())?;
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                };
                (first, next.ok_or_else(invalid)?)
            }
            10 => {
                let day = NaiveDate::parse_from_str(label, "%Y-%m-%d").map_err(|_| invalid())?;
                (day, day.succ_opt().ok_or_else(invalid)?)
            }
            _ => return Err(invalid()),
        };
        // Only canonical spellings ("2026-1" or "2026-11-3" are refused above by length;
        // "+2026-11" and the like here).
        if !label.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() }) {
            return Err(invalid());
        }
        if !(2000..=9999).contains(&first.year()) {
            return Err(Error::invalid_field("period", "a year from 2000 to 9999"));
        }
        Ok(Self {
            label: label.to_string(),
            starts_at: localtime::start_of(tz, first),
            ends_at: localtime::start_of(tz, next),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn beijing() -> Tz {
        localtime::parse(localtime::DEFAULT_TIME_ZONE).unwrap()
    }

    #[test]
    fn months_and_days_start_at_local_midnight() {
        let m = Period::parse("2026-12", beijing()).unwrap();
        assert_eq!(m.starts_at, Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap());
        assert_eq!(m.ends_at, Utc.with_ymd_and_hms(2026, 12, 31, 16, 0, 0).unwrap());
        let d = Period::parse("2026-11-30", beijing()).unwrap();
        assert_eq!(d.starts_at, Utc.with_ymd_and_hms(2026, 11, 29, 16, 0, 0).unwrap());
        assert_eq!(d.ends_at, Utc.with_ymd_and_hms(2026, 11, 30, 16, 0, 0).unwrap());
    }

    #[test]
    fn other_spellings_are_refused() {
        for bad in ["2026-13", "2026-1", "2026-11-31", "2026/11", "+202-11", "1999-01", "", "2026-11-3x", "２０２６-11"]
        {
            assert!(Period::parse(bad, beijing()).is_err(), "{bad}");
        }
    }
}
