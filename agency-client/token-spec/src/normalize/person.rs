//! `person`: name words plus date of birth; a name in Han ideographs also in Hanyu Pinyin.

use time::Date;

use super::dates::{BadDate, birth_date, digits_value};
use super::fold::fold;
use super::pinyin::pinyin_words;
use super::{NormalizeError, SelectorKind};

const KIND: SelectorKind = SelectorKind::Person;

/// The fields of a person's forms: `WORDS`, `YYYY-MM-DD` as written, then, for a name written
/// in Han ideographs, the same with its Pinyin words (see [`pinyin_words`]).
pub(super) struct PersonFields {
    /// `WORDS`, `YYYY-MM-DD`.
    pub written: Vec<String>,
    /// `WORDS2`, `YYYY-MM-DD`, when the name has a Pinyin form.
    pub pinyin: Option<Vec<String>>,
}

/// Fields `WORDS`, `YYYY-MM-DD` (and the Pinyin form's).
///
/// WORDS: fold of all name parts joined by a space, split into words, sorted by code point
/// and joined by one space, so that neither the order of family and given names nor the
/// spacing of Han names matters. Duplicate words are kept: "Li Li" is not "Li".
pub(super) fn normalize(
    names: &[String],
    dob: &str,
    today: Date,
) -> Result<PersonFields, NormalizeError> {
    let folded = fold(&names.join(" "));
    let mut words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Err(NormalizeError::invalid(KIND, "names", "no name words"));
    }
    // The Pinyin form reads the words in written order, before they are sorted.
    let pinyin = pinyin_words(&words);
    // `str` orders by UTF-8 bytes, which is code point order.
    words.sort_unstable();
    let date = date_of_birth(dob, today)?;
    Ok(PersonFields {
        written: vec![words.join(" "), date.clone()],
        pinyin: pinyin.map(|words2| vec![words2, date]),
    })
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
    let (year, month, day) = (
        digits_value(&b[0..4]),
        digits_value(&b[5..7]),
        digits_value(&b[8..10]),
    );
    let reason = match birth_date(year, month, day, today) {
        Ok(_) => return Ok(dob.to_owned()),
        Err(BadDate::NotReal) => format!("{dob} is not a real date"),
        Err(BadDate::TooEarly) => "before 1900-01-01".to_owned(),
        Err(BadDate::Future) => format!("after today ({today})"),
    };
    Err(NormalizeError::invalid(KIND, "dob", reason))
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

    fn written(parts: &[&str]) -> Vec<String> {
        normalize(&names(parts), "1985-03-02", TODAY)
            .unwrap()
            .written
    }

    #[test]
    fn order_and_han_spacing_do_not_matter() {
        let a = written(&["Zhang", "Wei"]);
        let b = written(&["Wei", "Zhang"]);
        assert_eq!(a, b);
        assert_eq!(a, vec!["wei zhang".to_owned(), "1985-03-02".to_owned()]);
        let c = written(&["张伟"]);
        let d = written(&["伟", "张"]);
        assert_eq!(c, d);
        assert_eq!(c[0], "伟 张");
    }

    #[test]
    fn duplicate_words_kept() {
        let a = written(&["Li", "Li"]);
        assert_eq!(a[0], "li li");
    }

    #[test]
    fn no_words_rejected() {
        assert!(normalize(&names(&[]), "1985-03-02", TODAY).is_err());
        assert!(normalize(&names(&[" - ", "·"]), "1985-03-02", TODAY).is_err());
    }

    #[test]
    fn pinyin_form_only_for_han_names() {
        let p = normalize(&names(&["张伟"]), "1985-03-02", TODAY).unwrap();
        assert_eq!(
            p.pinyin,
            Some(vec!["wei zhang".to_owned(), "1985-03-02".to_owned()])
        );
        let p = normalize(&names(&["张", "David"]), "1985-03-02", TODAY).unwrap();
        assert_eq!(p.pinyin, None);
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
            date_of_birth("1949-02-31", TODAY).unwrap_err().to_string(),
            "person: dob: 1949-02-31 is not a real date"
        );
        assert_eq!(
            date_of_birth("2999-01-01", TODAY).unwrap_err().to_string(),
            "person: dob: after today (2025-06-30)"
        );
    }
}
