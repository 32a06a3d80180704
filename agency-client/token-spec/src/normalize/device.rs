//! `imei`: handset identities.

use unicode_normalization::UnicodeNormalization;

use super::{NormalizeError, SelectorKind};

const KIND: SelectorKind = SelectorKind::Imei;

/// Field `IMEI14`: the 14 digits that identify the handset (TAC + serial number).
///
/// NFKC, then white space, `-`, `/` and `.` removed; all that remains must be ASCII digits.
/// 14 digits are taken as they are; 15 digits are an IMEI with its Luhn check digit, which
/// must be right (a typo must not silently make another handset's token) and is then dropped;
/// 16 digits are an IMEISV, whose last two digits are the software version and are dropped.
/// So one handset gives one token however it was written down.
pub(super) fn imei(text: &str) -> Result<String, NormalizeError> {
    let digits: String = text
        .nfkc()
        .filter(|&c| !c.is_whitespace() && !matches!(c, '-' | '/' | '.'))
        .collect();
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            format!("{bad:?} is not a digit"),
        ));
    }
    match digits.len() {
        14 | 16 => Ok(digits[..14].to_owned()),
        15 if luhn_ok(&digits) => Ok(digits[..14].to_owned()),
        15 => Err(NormalizeError::invalid(
            KIND,
            "text",
            "Luhn check digit is wrong",
        )),
        n => Err(NormalizeError::invalid(
            KIND,
            "text",
            format!("must be 14, 15 or 16 digits, not {n}"),
        )),
    }
}

/// The Luhn check over all digits (the check digit included) sums to a multiple of 10.
fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_luhn() {
        assert_eq!(imei("35-209900-176148-1").unwrap(), "35209900176148");
        assert_eq!(imei("35209900176148").unwrap(), "35209900176148");
        assert_eq!(imei("35-209900-176148-23").unwrap(), "35209900176148");
        assert_eq!(imei("35 209900/176148.1").unwrap(), "35209900176148");
        assert_eq!(
            imei("３５２０９９００１７６１４８１").unwrap(),
            "35209900176148"
        );
        assert!(imei("35-209900-176148-2").is_err());
        assert!(imei("3520990017614").is_err());
        assert!(imei("35209900176148123").is_err());
        assert!(imei("35209900l76148").is_err());
        assert!(imei("").is_err());
        // Arabic-Indic digits are not ASCII digits, and NFKC does not map them.
        assert!(imei("٣٥٢٠٩٩٠٠١٧٦١٤٨").is_err());
    }

    #[test]
    fn luhn() {
        assert!(luhn_ok("352099001761481"));
        assert!(luhn_ok("490154203237518"));
        assert!(!luhn_ok("490154203237519"));
    }
}
