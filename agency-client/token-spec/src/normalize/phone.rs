//! `phone`: a telephone number in E.164.

use unicode_normalization::UnicodeNormalization;

use super::phonelib::{self, ParseError, Possibility};
use super::{NormalizeError, SelectorKind};

const KIND: SelectorKind = SelectorKind::Phone;

/// Field `E164` (`+8613800138000`).
///
/// The text is NFKC-normalized (full-width digits and plus become ASCII), then parsed as
/// libphonenumber parses it with the default region; a number in international form (`+86`,
/// or the region's IDD such as `00 86`) keeps its own country. The result must be
/// IS_POSSIBLE for its country: local-only numbers (no area code) are rejected, validity is not
/// required since new ranges appear before libraries learn them. Extensions are dropped, as
/// E.164 has none.
/// Fewer digits than this cannot be a subscriber's number in any country's plan.
const MIN_DIGITS: usize = 4;

pub(super) fn normalize(text: &str, region: &Option<String>) -> Result<String, NormalizeError> {
    let text: String = text.nfkc().collect();
    let region = default_region(region.as_deref())?;
    // A region libphonenumber does not know is treated as none, as libphonenumber does.
    let meta = region.as_deref().and_then(phonelib::region_metadata);
    let for_region = || match &region {
        Some(r) => format!("region {r}"),
        None => "no region".to_owned(),
    };
    // Fewer digits than any subscriber number: say so, whatever the region.
    let digits = text.chars().filter(char::is_ascii_digit).count();
    if (1..MIN_DIGITS).contains(&digits) {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            format!("too short to be a phone number ({digits} digits)"),
        ));
    }
    let parsed = phonelib::parse(&text, meta).map_err(|e| {
        let reason = match e {
            ParseError::NotANumber => "not a phone number".to_owned(),
            ParseError::InvalidCountryCode if meta.is_none() => format!(
                "no country ({}): write the number with its country code (+86 138 0013 8000), \
                 or give the region it belongs to (--region CN on the command line, \
                 \"region\": \"CN\" in a file)",
                for_region()
            ),
            ParseError::InvalidCountryCode => "unknown country calling code".to_owned(),
            ParseError::TooShortAfterIdd | ParseError::TooShortNsn => "too short".to_owned(),
            ParseError::TooLong => "too long".to_owned(),
        };
        NormalizeError::invalid(KIND, "text", reason)
    })?;
    match phonelib::possibility(&parsed) {
        Possibility::IsPossible => Ok(parsed.e164()),
        other => {
            let why = match other {
                Possibility::IsPossibleLocalOnly => " (local number without its area code?)",
                Possibility::TooShort => " (too short)",
                Possibility::TooLong => " (too long)",
                Possibility::InvalidCountryCode => " (unknown country calling code)",
                _ => "",
            };
            Err(NormalizeError::invalid(
                KIND,
                "text",
                format!("not a possible number for {}{why}", for_region()),
            ))
        }
    }
}

/// The default region: two ASCII letters, ASCII upper-cased; absent, empty or `ZZ` (the
/// unknown region of CLDR and libphonenumber) means none.
fn default_region(region: Option<&str>) -> Result<Option<String>, NormalizeError> {
    match region {
        None | Some("") => Ok(None),
        Some(r) if r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()) => {
            let upper = r.to_ascii_uppercase();
            Ok(if upper == "ZZ" { None } else { Some(upper) })
        }
        Some(_) => Err(NormalizeError::invalid(
            KIND,
            "region",
            "must be two ASCII letters",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn n(text: &str, region: &str) -> Result<String, NormalizeError> {
        let region = if region.is_empty() {
            None
        } else {
            Some(region.to_owned())
        };
        normalize(text, &region)
    }

    #[test]
    fn spec_cases() {
        assert_eq!(n("138 0013 8000", "CN").unwrap(), "+8613800138000");
        assert_eq!(n("+86 138 0013 8000", "US").unwrap(), "+8613800138000");
        assert_eq!(n("(0871) 6512-3456", "CN").unwrap(), "+8687165123456");
        assert_eq!(n("202.555.0143 ext. 12", "US").unwrap(), "+12025550143");
        assert!(n("138 0013 8000", "VN").is_err());
        assert!(n("not a number", "CN").is_err());
    }

    #[test]
    fn full_width_and_region_case() {
        assert_eq!(
            n("１３８ ００１３ ８０００", "cn").unwrap(),
            "+8613800138000"
        );
        assert_eq!(
            n("＋８６ １３８００１３８０００", "").unwrap(),
            "+8613800138000"
        );
    }

    #[test]
    fn no_region() {
        assert_eq!(n("+84 90 123 4567", "ZZ").unwrap(), "+84901234567");
        assert_eq!(n("+84 90 123 4567", "").unwrap(), "+84901234567");
        assert_eq!(n("+84 90 123 4567", "XX").unwrap(), "+84901234567");
        let err = n("090 123 4567", "zz").unwrap_err().to_string();
        assert!(err.starts_with("phone: text: no country"), "{err}");
        assert!(n("090 123 4567", "V").is_err());
        assert!(n("090 123 4567", "VNM").is_err());
    }

    #[test]
    fn message_names_region() {
        let err = n("12", "CN").unwrap_err().to_string();
        assert!(err.starts_with("phone: text: "), "{err}");
        let err = n("1380", "CN").unwrap_err().to_string();
        assert!(
            err.starts_with("phone: text: not a possible number for region CN"),
            "{err}"
        );
    }

    #[test]
    fn local_only_rejected() {
        // A US number without its area code.
        assert!(n("555-0143", "US").is_err());
    }
}
