//! Times as officers read them: in the deployment's time zone (China Standard Time unless
//! configured), and countdowns and ages in words of the page's language.

use time::{OffsetDateTime, UtcOffset};

use crate::i18n::Lang;

/// The deployment's time zone, as a fixed offset.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    offset: UtcOffset,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            // China Standard Time: the whole country keeps one zone, without summer time.
            offset: UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC),
        }
    }
}

impl Clock {
    /// An offset like `+08:00` or `-03:30`.
    pub fn parse(text: &str) -> Option<Clock> {
        let (sign, rest) = match text.trim().split_at_checked(1)? {
            ("+", r) => (1i8, r),
            ("-", r) => (-1i8, r),
            _ => return None,
        };
        let (h, m) = rest.split_once(':')?;
        let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
        UtcOffset::from_hms(sign * h, sign * m, 0)
            .ok()
            .map(|offset| Clock { offset })
    }

    /// `2026-12-06 03:15` in the deployment's zone.
    pub fn datetime(&self, unix: i64) -> String {
        match OffsetDateTime::from_unix_timestamp(unix) {
            Ok(t) => {
                let t = t.to_offset(self.offset);
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute()
                )
            }
            Err(_) => "—".to_owned(),
        }
    }

    /// A form's `datetime-local` value (`2026-12-06T03:15`) in the deployment's zone.
    pub fn input(&self, unix: i64) -> String {
        self.datetime(unix).replacen(' ', "T", 1)
    }

    /// Reads a form's `datetime-local` value (`2026-12-06T03:15`, seconds optional) as a
    /// time in the deployment's zone.
    pub fn parse_input(&self, text: &str) -> Option<i64> {
        let text = text.trim();
        let (date, clock) = text.split_once(['T', ' '])?;
        let mut d = date.split('-').map(str::parse::<i64>);
        let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
        let mut c = clock.split(':').map(str::parse::<i64>);
        let (h, mi) = (c.next()?.ok()?, c.next()?.ok()?);
        let s = c.next().transpose().ok()?.unwrap_or(0);
        let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
        let date =
            time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(da).ok()?)
                .ok()?;
        let t = time::Time::from_hms(
            u8::try_from(h).ok()?,
            u8::try_from(mi).ok()?,
            u8::try_from(s).ok()?,
        )
        .ok()?;
        Some(
            time::PrimitiveDateTime::new(date, t)
                .assume_offset(self.offset)
                .unix_timestamp(),
        )
    }

    /// `12-06` in the deployment's zone (a chart's column).
    pub fn day(&self, unix: i64) -> String {
        self.datetime(unix).get(5..10).unwrap_or("—").to_owned()
    }

    /// The start of the local day holding `unix`, as unix seconds.
    pub fn day_start(&self, unix: i64) -> i64 {
        let off = i64::from(self.offset.whole_seconds());
        (unix + off).div_euclid(86_400) * 86_400 - off
    }

    /// `UTC+08:00`, for page footers and headings.
    pub fn zone(&self) -> String {
        let s = self.offset.whole_seconds();
        let sign = if s < 0 { '-' } else { '+' };
        format!("UTC{sign}{:02}:{:02}", s.abs() / 3600, s.abs() % 3600 / 60)
    }
}

/// A span in words: `2 d 4 h`, `5 h 12 min`, `8 min` (and the same in Chinese).
pub fn span(lang: Lang, seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let unit = |n: i64, key: &str| lang.tf(key, &[("n", &n.to_string())]);
    if d > 0 {
        format!("{} {}", unit(d, "time.days"), unit(h, "time.hours"))
    } else if h > 0 {
        format!("{} {}", unit(h, "time.hours"), unit(m, "time.minutes"))
    } else {
        unit(m.max(if s > 0 { 1 } else { 0 }), "time.minutes")
    }
}

/// A countdown to `at` from `now`: `in 5 h 12 min`, or `started 2 h ago`.
pub fn countdown(lang: Lang, at: i64, now: i64) -> String {
    if at > now {
        lang.tf("time.in", &[("span", &span(lang, at - now))])
    } else {
        lang.tf("time.started_ago", &[("span", &span(lang, now - at))])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_are_shown_in_the_deployment_zone() {
        let clock = Clock::default();
        // 2026-12-05 20:00 UTC is 2026-12-06 04:00 in Beijing.
        assert_eq!(clock.datetime(1_796_500_800), "2026-12-06 04:00");
        assert_eq!(clock.zone(), "UTC+08:00");
        assert_eq!(clock.day_start(1_796_500_800) % 86_400, 16 * 3600);
        let utc = Clock::parse("+00:00").unwrap();
        assert_eq!(utc.datetime(1_796_500_800), "2026-12-05 20:00");
        assert!(Clock::parse("8").is_none());
        assert_eq!(Clock::parse("-03:30").unwrap().zone(), "UTC-03:30");
    }

    #[test]
    fn form_times_are_read_in_the_deployment_zone() {
        let clock = Clock::default();
        assert_eq!(clock.parse_input("2026-12-06T04:00"), Some(1_796_500_800));
        assert_eq!(clock.input(1_796_500_800), "2026-12-06T04:00");
        for bad in [
            "",
            "2026-13-01T00:00",
            "2026-12-06",
            "2026-12-06T25:00",
            "x",
        ] {
            assert_eq!(clock.parse_input(bad), None, "{bad}");
        }
    }

    #[test]
    fn countdowns_read_in_both_languages() {
        assert_eq!(
            countdown(Lang::En, 100 + 5 * 3600 + 12 * 60, 100),
            "in 5 h 12 min"
        );
        assert_eq!(
            countdown(Lang::En, 0, 2 * 86_400 + 3600),
            "started 2 d 1 h ago"
        );
        assert!(countdown(Lang::ZhCn, 3600, 0).contains("小时"));
    }
}
