//! libphonenumber's `parse` and `isPossibleNumberWithReason`, ported step by step.
//!
//! Why a port: the spec says "parsed as libphonenumber parses it", and the Rust `phonenumber`
//! crate (0.3.10) departs from libphonenumber in ways that change E.164 output: it strips the
//! *default* region's national prefix from numbers written in another country's international
//! form (`+86 138 ...` with region US gives `+863800138000`), matches number patterns as
//! prefixes instead of whole strings, has an older extension grammar and no general possible
//! lengths. We keep its metadata (the libphonenumber XML, compiled in) and redo the parse here,
//! following the reference implementation (Java `PhoneNumberUtil.parseHelper`) step by step.

mod digits;
mod patterns;
mod plan;

use phonenumber::Metadata;
use phonenumber::metadata::DATABASE;

use digits::normalize;
use patterns::{PLUS_CHARS, build_national_number_for_parsing, is_viable, strip_extension};
use plan::{extract_country_code, strip_national_prefix, test_number_length};

const MIN_LENGTH_FOR_NSN: usize = 2;
const MAX_LENGTH_FOR_NSN: usize = 17;
const MAX_LENGTH_COUNTRY_CODE: usize = 3;
const MAX_INPUT_STRING_LENGTH: usize = 250;

/// libphonenumber's parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    NotANumber,
    InvalidCountryCode,
    TooShortAfterIdd,
    TooShortNsn,
    TooLong,
}

/// libphonenumber's `ValidationResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Possibility {
    IsPossible,
    IsPossibleLocalOnly,
    InvalidCountryCode,
    TooShort,
    InvalidLength,
    TooLong,
}

/// A parsed number: country calling code and national significant number (digits, leading
/// zeros included, as E.164 writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub country_code: u16,
    pub national: String,
}

impl Parsed {
    pub fn e164(&self) -> String {
        format!("+{}{}", self.country_code, self.national)
    }
}

/// The metadata of a region id (`CN`), if libphonenumber knows the region.
pub(crate) fn region_metadata(id: &str) -> Option<&'static Metadata> {
    DATABASE.by_id(id)
}

/// The metadata libphonenumber uses for a calling code: its main region's.
fn main_metadata(code: u16) -> Option<&'static Metadata> {
    let metas = DATABASE.by_code(&code)?;
    metas
        .iter()
        .find(|m| m.is_main_country_for_code())
        .or(metas.first())
        .copied()
}

/// Parses `number` as libphonenumber does, with `region` as the default region.
pub(crate) fn parse(number: &str, region: Option<&Metadata>) -> Result<Parsed, ParseError> {
    if number.chars().count() > MAX_INPUT_STRING_LENGTH {
        return Err(ParseError::TooLong);
    }
    let national = build_national_number_for_parsing(number)?;
    if !is_viable(&national) {
        return Err(ParseError::NotANumber);
    }
    let plus = PLUS_CHARS
        .as_ref()
        .and_then(|re| re.find(&national))
        .map(|m| m.end());
    if region.is_none() && plus.is_none() {
        return Err(ParseError::InvalidCountryCode);
    }
    let national = strip_extension(&national);

    let (mut code, mut nsn) = match extract_country_code(national, region) {
        Err(ParseError::InvalidCountryCode) if plus.is_some() => {
            // A plus followed by something that is no calling code: read it without the plus.
            let rest = national.get(plus.unwrap_or(0)..).unwrap_or("");
            match extract_country_code(rest, region)? {
                (0, _) => return Err(ParseError::InvalidCountryCode),
                found => found,
            }
        }
        other => other?,
    };
    let mut meta = region;
    if code != 0 {
        let main = main_metadata(code);
        if main.map(Metadata::id) != region.map(Metadata::id) {
            meta = main;
        }
    } else {
        nsn = normalize(national);
        if let Some(r) = region {
            code = r.country_code();
        }
    }
    if nsn.len() < MIN_LENGTH_FOR_NSN {
        return Err(ParseError::TooShortNsn);
    }
    if let Some(m) = meta {
        let potential = strip_national_prefix(&nsn, m);
        // Keep the prefix only if what remains could not be a whole number on its own.
        if !matches!(
            test_number_length(&potential, m),
            Possibility::TooShort | Possibility::IsPossibleLocalOnly | Possibility::InvalidLength
        ) {
            nsn = potential;
        }
    }
    if nsn.len() < MIN_LENGTH_FOR_NSN {
        return Err(ParseError::TooShortNsn);
    }
    if nsn.len() > MAX_LENGTH_FOR_NSN {
        return Err(ParseError::TooLong);
    }
    Ok(Parsed {
        country_code: code,
        national: nsn,
    })
}

/// `isPossibleNumberWithReason`: the length test against the calling code's main region.
pub(crate) fn possibility(number: &Parsed) -> Possibility {
    match main_metadata(number.country_code) {
        Some(meta) => test_number_length(&number.national, meta),
        None => Possibility::InvalidCountryCode,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::digits::decimal_digit;
    use super::patterns::*;
    use super::plan::java_replacement;
    use super::*;

    fn e164(text: &str, region: &str) -> Result<String, ParseError> {
        let meta = region_metadata(region);
        parse(text, meta).map(|p| p.e164())
    }

    #[test]
    fn static_patterns_compile() {
        assert!(PLUS_CHARS.is_some());
        assert!(VALID_START_CHAR.is_some());
        assert!(UNWANTED_END_CHARS.is_some());
        assert!(SECOND_NUMBER_START.is_some());
        assert!(VALID_PHONE_NUMBER.is_some());
        assert!(EXTN.is_some());
    }

    #[test]
    fn international_form_keeps_its_country() {
        assert_eq!(e164("+86 138 0013 8000", "US").unwrap(), "+8613800138000");
        assert_eq!(
            e164("011 86 138 0013 8000", "US").unwrap(),
            "+8613800138000"
        );
        assert_eq!(e164("0086 138 0013 8000", "VN").unwrap(), "+8613800138000");
    }

    #[test]
    fn trunk_prefixes() {
        assert_eq!(e164("8 800 555 35 35", "RU").unwrap(), "+78005553535");
        assert_eq!(e164("02 1234 5678", "IT").unwrap(), "+390212345678");
        assert_eq!(e164("+84 (0) 90 123 4567", "VN").unwrap(), "+84901234567");
    }

    #[test]
    fn digits_of_other_scripts() {
        assert_eq!(decimal_digit('٣'), Some('3'));
        assert_eq!(decimal_digit('၉'), Some('9'));
        assert_eq!(decimal_digit('x'), None);
        assert_eq!(e164("၀၉ ၄၂၀ ၁၂၃ ၄၅၆", "MM").unwrap(), "+959420123456");
    }

    #[test]
    fn java_replacement_syntax() {
        assert_eq!(java_replacement("9$1"), "9${1}");
        assert_eq!(java_replacement("$15"), "${1}5");
    }
}
