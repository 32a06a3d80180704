//! Identity documents of people: `cnid` (PRC resident identity number and the permits that
//! share its format), `passport` and `permit` (PRC travel permits). Each rule keeps only the
//! part of the number that stays with the person, so that a renewed document still matches,
//! and checks what the document's own check character allows, so that a typo is an error
//! the duty officer sees rather than the token of someone else.

use super::dates::{BadDate, birth_date, digits_value};
use super::{NormalizeError, SelectorKind, compact, country_code};
use time::Date;

/// ISO 7064 MOD 11-2 weights of the first 17 digits (GB 11643-1999).
const CNID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each value of the weighted sum mod 11.
const CNID_CHECK: [u8; 11] = *b"10X98765432";

/// Field `ID18` of `cnid`: the 18 characters, check character and date verified; a 15-digit
/// first-generation number is made 18 (`19` inserted after the 6th digit, check computed).
pub(super) fn cnid(text: &str, today: Date) -> Result<String, NormalizeError> {
    let kind = SelectorKind::Cnid;
    let invalid = |reason: String| NormalizeError::invalid(kind, "text", reason);
    let id = compact(text, &[]);
    let b = id.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    let mut id18: Vec<u8> = match b.len() {
        18 if digits(&b[..17]) && (b[17].is_ascii_digit() || b[17] == b'X') => b.to_vec(),
        15 if digits(b) => [&b[..6], b"19", &b[6..], b"?"].concat(),
        _ => {
            return Err(invalid(
                "must be 18 characters (17 digits and a digit or X) or 15 digits (first \
                 generation); nothing but spaces is removed"
                    .to_owned(),
            ));
        }
    };
    let date = &id18[6..14];
    let date_text = String::from_utf8_lossy(date).into_owned();
    let (y, m, d) = (
        digits_value(&date[..4]),
        digits_value(&date[4..6]),
        digits_value(&date[6..]),
    );
    match birth_date(y, m, d, today) {
        Ok(_) => {}
        Err(BadDate::NotReal) => return Err(invalid(format!("{date_text} is not a real date"))),
        Err(BadDate::TooEarly) => {
            return Err(invalid(format!("{date_text} is before 1900-01-01")));
        }
        Err(BadDate::Future) => {
            return Err(invalid(format!("{date_text} is after today ({today})")));
        }
    }
    let sum: u32 = id18[..17]
        .iter()
        .zip(CNID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let want = CNID_CHECK[(sum % 11) as usize];
    if b.len() == 15 {
        id18[17] = want;
    } else if id18[17] != want {
        return Err(invalid(format!(
            "check character is {}, but the first 17 digits call for {}",
            char::from(id18[17]),
            char::from(want)
        )));
    }
    String::from_utf8(id18).map_err(|e| invalid(e.to_string()))
}

/// Fields `CC`, `NUMBER` of `passport`: the issuing country, and the number without white
/// space or `-`, ASCII upper-cased, 5 to 20 of `A-Z 0-9`.
pub(super) fn passport(country: &str, text: &str) -> Result<Vec<String>, NormalizeError> {
    let kind = SelectorKind::Passport;
    let cc = country_code(kind, country)?;
    let number = compact(text, &['-']);
    let ok = (5..=20).contains(&number.len())
        && number
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !ok {
        return Err(NormalizeError::invalid(
            kind,
            "text",
            "must be 5 to 20 letters A-Z or digits (spaces and - are removed)",
        ));
    }
    Ok(vec![cc, number])
}

/// The PRC travel permits of `permit`, by their TYPE word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PermitType {
    /// Mainland Travel Permit for Hong Kong and Macao Residents.
    Hkmo,
    /// Mainland Travel Permit for Taiwan Residents.
    Tw,
    /// Exit-Entry Permit for Travelling to and from Hong Kong and Macao (2014 card).
    CnHkmo,
}

impl PermitType {
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hkmo" => Some(Self::Hkmo),
            "tw" => Some(Self::Tw),
            "cnhkmo" => Some(Self::CnHkmo),
            _ => None,
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Self::Hkmo => "hkmo",
            Self::Tw => "tw",
            Self::CnHkmo => "cnhkmo",
        }
    }

    /// The form of the number, in the words of the error message.
    const fn form(self) -> &'static str {
        match self {
            Self::Hkmo => "an hkmo permit is H or M followed by 8 digits, optionally 2 more",
            Self::Tw => {
                "a tw permit is 8 digits, or 10 digits, optionally followed by the issuing \
                 office's letter or digit in round brackets, as in 1234567802(B)"
            }
            Self::CnHkmo => {
                "a cnhkmo permit is C, then a digit or a letter other than I and O, then 7 digits"
            }
        }
    }

    /// The part of `number` that stays with the person, if `number` has this type's form.
    fn lifetime_number(self, number: &str) -> Option<String> {
        let b = number.as_bytes();
        let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
        let keep = match self {
            Self::Hkmo => {
                let ok =
                    matches!(b.len(), 9 | 11) && matches!(b[0], b'H' | b'M') && digits(&b[1..]);
                ok.then_some(9)
            }
            Self::Tw => {
                let body = match b {
                    [body @ .., b'(', office, b')'] if office.is_ascii_alphanumeric() => body,
                    _ => b,
                };
                (matches!(body.len(), 8 | 10) && digits(body)).then_some(8)
            }
            Self::CnHkmo => {
                let second_ok = |c: u8| {
                    c.is_ascii_digit() || (c.is_ascii_uppercase() && c != b'I' && c != b'O')
                };
                let ok = b.len() == 9 && b[0] == b'C' && second_ok(b[1]) && digits(&b[2..]);
                ok.then_some(9)
            }
        }?;
        number.get(..keep).map(str::to_owned)
    }
}

/// Fields `TYPE`, `NUMBER` of `permit`: the type word, and the lifetime part of the number
/// (renewal and issue counts dropped, as they change and the person does not).
pub(super) fn permit(kind_text: &str, text: &str) -> Result<Vec<String>, NormalizeError> {
    let kind = SelectorKind::Permit;
    let ty = PermitType::parse(kind_text)
        .ok_or_else(|| NormalizeError::invalid(kind, "type", "must be hkmo, tw or cnhkmo"))?;
    let number = compact(text, &[]);
    let kept = ty
        .lifetime_number(&number)
        .ok_or_else(|| NormalizeError::invalid(kind, "text", ty.form()))?;
    Ok(vec![ty.as_str().to_owned(), kept])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2025 - 06 - 30);

    fn reason(err: NormalizeError) -> String {
        match err {
            NormalizeError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        }
    }

    #[test]
    fn cnid_forms() {
        assert_eq!(
            cnid("11010519491231002X", TODAY).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            cnid("110105 19491231 002x", TODAY).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            cnid("110105491231002", TODAY).unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            cnid("１１０１０５４９１２３１００２", TODAY).unwrap(),
            "11010519491231002X"
        );
        assert!(cnid("110105-19491231-002X", TODAY).is_err());
        assert!(cnid("11010519491231002", TODAY).is_err());
        assert!(cnid("1101051949123100XX", TODAY).is_err());
        assert!(cnid("", TODAY).is_err());
    }

    #[test]
    fn cnid_messages() {
        assert_eq!(
            reason(cnid("110105194912310021", TODAY).unwrap_err()),
            "check character is 1, but the first 17 digits call for X"
        );
        assert_eq!(
            reason(cnid("110105194902310026", TODAY).unwrap_err()),
            "19490231 is not a real date"
        );
        assert_eq!(
            reason(cnid("110105209912310021", TODAY).unwrap_err()),
            "20991231 is after today (2025-06-30)"
        );
        assert_eq!(
            reason(cnid("110105189912310021", TODAY).unwrap_err()),
            "18991231 is before 1900-01-01"
        );
        // First generation: the inserted 19 makes the year.
        assert_eq!(
            reason(cnid("110105490231002", TODAY).unwrap_err()),
            "19490231 is not a real date"
        );
    }

    #[test]
    fn passports() {
        assert_eq!(passport("cn", "e 1234 5678").unwrap(), ["CN", "E12345678"]);
        assert_eq!(passport("TH", "AA-1234567").unwrap(), ["TH", "AA1234567"]);
        assert!(passport("MM", "M123").is_err());
        assert!(passport("VN", "C1234/567").is_err());
        assert!(passport("CHN", "E12345678").is_err());
        assert!(passport("CN", "E1234567890123456789X").is_err());
    }

    #[test]
    fn permits() {
        let p = |t: &str, n: &str| permit(t, n).map(|f| f[1].clone());
        assert_eq!(p("hkmo", "H1234567801").unwrap(), "H12345678");
        assert_eq!(p(" HKMO ", "m 8765 4321").unwrap(), "M87654321");
        assert_eq!(p("tw", "12345678").unwrap(), "12345678");
        assert_eq!(p("tw", "1234567801").unwrap(), "12345678");
        assert_eq!(p("tw", "1234567802(b)").unwrap(), "12345678");
        assert_eq!(p("tw", "1234567802（B）").unwrap(), "12345678");
        assert_eq!(p("tw", "12345678(B)").unwrap(), "12345678");
        assert_eq!(p("cnhkmo", "CA1234567").unwrap(), "CA1234567");
        assert!(p("cnhkmo", "CI1234567").is_err());
        assert!(p("cnhkmo", "CO1234567").is_err());
        assert!(p("hkmo", "H123456780").is_err());
        assert!(p("tw", "123456789").is_err());
        assert!(p("tw", "1234567802()").is_err());
        assert!(p("hk", "H12345678").is_err());
        assert_eq!(
            reason(permit("hkmo", "H123").unwrap_err()),
            "an hkmo permit is H or M followed by 8 digits, optionally 2 more"
        );
        assert_eq!(
            reason(permit("hk", "H12345678").unwrap_err()),
            "must be hkmo, tw or cnhkmo"
        );
    }
}
