//! Dates of birth: the one rule shared by `person` (its `dob` field) and `cnid` (characters
//! 7–14 of the number): a real calendar date from 1900-01-01 to today (UTC), so that both
//! kinds accept and refuse exactly the same dates.

use time::{Date, Month};

/// Earliest date of birth accepted by the spec.
const EARLIEST: Date = time::macros::date!(1900 - 01 - 01);

/// Why a date of birth is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BadDate {
    /// No such day in the calendar (month 13, February 30th ...).
    NotReal,
    /// Before 1900-01-01.
    TooEarly,
    /// After `today`.
    Future,
}

/// Checks `year`-`month`-`day` (as written, ASCII digits already parsed).
pub(super) fn birth_date(year: u32, month: u32, day: u32, today: Date) -> Result<Date, BadDate> {
    let date = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .and_then(|m| {
            let year = i32::try_from(year).ok()?;
            let day = u8::try_from(day).ok()?;
            Date::from_calendar_date(year, m, day).ok()
        })
        .ok_or(BadDate::NotReal)?;
    if date < EARLIEST {
        Err(BadDate::TooEarly)
    } else if date > today {
        Err(BadDate::Future)
    } else {
        Ok(date)
    }
}

/// The value of a run of ASCII digits (callers have checked they are digits).
pub(super) fn digits_value(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d.wrapping_sub(b'0')))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn range_and_calendar() {
        let today = date!(2025 - 06 - 30);
        assert!(birth_date(1900, 1, 1, today).is_ok());
        assert!(birth_date(2000, 2, 29, today).is_ok());
        assert!(birth_date(2025, 6, 30, today).is_ok());
        assert_eq!(birth_date(1900, 2, 29, today), Err(BadDate::NotReal));
        assert_eq!(birth_date(1985, 0, 1, today), Err(BadDate::NotReal));
        assert_eq!(birth_date(1899, 12, 31, today), Err(BadDate::TooEarly));
        assert_eq!(birth_date(2025, 7, 1, today), Err(BadDate::Future));
        assert_eq!(digits_value(b"0231"), 231);
    }
}
