//! `person`: name words plus date of birth.

use time::{Date, Month};

use super::fold::fold;
use super::{NormalizeError, SelectorKind};

const KIND: SelectorKind = SelectorKind::Person;

/// Earliest date of birth accepted by the spec.
const EARLIEST: (i32, Month, u8) = (1900, Month::January, 1);

/// Fields `WORDS`, `YYYY-MM-DD`.
///
/// WORDS: fold of all name parts joined by a space, split into words, sorted by code point
/// and joined by one space, so that neither the order of family and given names nor the
/// spacing of Han names matters. Duplicate words are kept: "Li Li" is not "Li".
pub(super) fn normalize(
    names: &[String],
    dob: &str,
    today: Date,
) -> Result<Vec<String>, NormalizeError> {
    let folded = fold(&names.join(" "));
    let mut words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Err(NormalizeError::invalid(KIND, "names", "no name words"));
    }
    // `str` orders by UTF-8 bytes, which is code point order.
    words.sort_unstable();
    let date = date_of_birth(dob, today)?;
    Ok(vec![words.join(" "), date])
}

/// The date of birth must be written exactly `YYYY-MM-DD` in ASCII digits (no padding, no
/// other separators: a second spelling would make a second token), be a real calendar date,
/// and lie from 1900-01-01 to `today` inclusive.
fn date_of_birth(dob: &str, today: Date) -> Result<String, NormalizeError> {
    if dob.is_empty() {
        return Err(NormalizeError::invalid(
            KIND,
            "dob",
            "missing date of birth",
        ));
    }
    let b = dob.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(NormalizeError::invalid(
            KIND,
            "dob",
            "must be written YYYY-MM-DD",
        ));
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let date = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .and_then(|m| {
            let year = i32::try_from(year).ok()?;
            let day = u8::try_from(day).ok()?;
            Date::from_calendar_date(year, m, day).ok()
        })
        .ok_or_else(|| NormalizeError::invalid(KIND, "dob", "not a calendar date"))?;
    let earliest = Date::from_calendar_date(EARLIEST.0, EARLIEST.1, EARLIEST.2)
        .map_err(|e| NormalizeError::invalid(KIND, "dob", e.to_string()))?;
    if date < earliest {
        return Err(NormalizeError::invalid(KIND, "dob", "before 1900-01-01"));
    }
    if date > today {
        return Err(NormalizeError::invalid(
            KIND,
            "dob",
            format!("after today ({today})"),
        ));
    }
    Ok(dob.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2025 - 06 - 30);

    fn names(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn order_and_han_spacing_do_not_matter() {
        let a = normalize(&names(&["Zhang", "Wei"]), "1985-03-02", TODAY).unwrap();
        let b = normalize(&names(&["Wei", "Zhang"]), "1985-03-02", TODAY).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, vec!["wei zhang".to_owned(), "1985-03-02".to_owned()]);
        let c = normalize(&names(&["张伟"]), "1985-03-02", TODAY).unwrap();
        let d = normalize(&names(&["伟", "张"]), "1985-03-02", TODAY).unwrap();
        assert_eq!(c, d);
        assert_eq!(c[0], "伟 张");
    }

    #[test]
    fn duplicate_words_kept() {
        let a = normalize(&names(&["Li", "Li"]), "1985-03-02", TODAY).unwrap();
        assert_eq!(a[0], "li li");
    }

    #[test]
    fn no_words_rejected() {
        assert!(normalize(&names(&[]), "1985-03-02", TODAY).is_err());
        assert!(normalize(&names(&[" - ", "·"]), "1985-03-02", TODAY).is_err());
    }

    #[test]
    fn date_rules() {
        let ok = |d: &str| date_of_birth(d, TODAY).is_ok();
        assert!(ok("1900-01-01"));
        assert!(ok("2000-02-29"));
        assert!(ok("2025-06-30"));
        assert!(!ok("2025-07-01"));
        assert!(!ok("1899-12-31"));
        assert!(!ok("1900-02-29"));
        assert!(!ok("1985-13-01"));
        assert!(!ok("1985-00-10"));
        assert!(!ok("1985-3-2"));
        assert!(!ok("1985/03/02"));
        assert!(!ok(" 1985-03-02"));
        assert!(!ok("１９８５-03-02"));
        assert!(!ok(""));
        assert_eq!(
            date_of_birth("2999-01-01", TODAY).unwrap_err().to_string(),
            "person: dob: after today (2025-06-30)"
        );
    }
}
