//! `plate` and `vin`: vehicles.

use unicode_general_category::{GeneralCategory as G, get_general_category};
use unicode_normalization::UnicodeNormalization;

use super::{NormalizeError, SelectorKind, country_code};

/// Fields `CC`, `PLATE`.
///
/// PLATE: NFKC, full Unicode upper-case, then only letters and digits (L*, N*) are kept, so
/// separators of any script (`·`, `-`, spaces, dots) do not matter: `京A·12345` = `京A12345`.
/// Digits of other scripts (Myanmar `၁`) have no compatibility mapping and stay as they are.
pub(super) fn plate(country: &str, text: &str) -> Result<Vec<String>, NormalizeError> {
    const KIND: SelectorKind = SelectorKind::Plate;
    let cc = country_code(KIND, country)?;
    let nfkc: String = text.nfkc().collect();
    let plate: String = nfkc
        .to_uppercase()
        .chars()
        .filter(|&c| is_letter_or_number(c))
        .collect();
    if plate.is_empty() {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            "no letters or digits",
        ));
    }
    Ok(vec![cc, plate])
}

fn is_letter_or_number(c: char) -> bool {
    matches!(
        get_general_category(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
            | G::DecimalNumber
            | G::LetterNumber
            | G::OtherNumber
    )
}

/// Field `VIN`.
///
/// NFKC, ASCII upper-case, white space and `-` removed; then 17 characters of the VIN
/// alphabet (digits and A-Z without I, O, Q, which ISO 3779 excludes as look-alikes of 1 and
/// 0). The check digit (position 9) is not enforced: only North America uses it.
pub(super) fn vin(text: &str) -> Result<String, NormalizeError> {
    const KIND: SelectorKind = SelectorKind::Vin;
    let vin: String = text
        .nfkc()
        .filter(|&c| !c.is_whitespace() && c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let count = vin.chars().count();
    if count != 17 {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            format!("must be 17 characters, not {count}"),
        ));
    }
    if let Some(bad) = vin.chars().find(|&c| !is_vin_char(c)) {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            format!("{bad:?} is not a VIN character (0-9, A-Z except I, O, Q)"),
        ));
    }
    Ok(vin)
}

fn is_vin_char(c: char) -> bool {
    c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, 'I' | 'O' | 'Q'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn plates() {
        assert_eq!(plate("CN", "京A·12345").unwrap(), ["CN", "京A12345"]);
        assert_eq!(plate("cn", "粤b·d12345").unwrap(), ["CN", "粤BD12345"]);
        assert_eq!(plate("VN", "51F-123.45").unwrap(), ["VN", "51F12345"]);
        assert_eq!(plate("MM", "၁က/၂၃၄၅").unwrap(), ["MM", "၁က၂၃၄၅"]);
        assert_eq!(
            plate("DE", "ｂ－ｍｗ　１２３４").unwrap(),
            ["DE", "BMW1234"]
        );
        assert!(plate("CN", "·-·").is_err());
        assert!(plate("CHN", "A1").is_err());
    }

    #[test]
    fn vins() {
        assert_eq!(vin("1hgcm826-33a004352").unwrap(), "1HGCM82633A004352");
        assert_eq!(vin(" 1HGCM 82633A004352\n").unwrap(), "1HGCM82633A004352");
        assert_eq!(
            vin("１ＨＧＣＭ８２６３３Ａ００４３５２").unwrap(),
            "1HGCM82633A004352"
        );
        assert!(vin("1HGCM82633A0O4352").is_err());
        assert!(vin("1HGCM82633A00435").is_err());
        assert!(vin("1HGCM82633A0043522").is_err());
        assert!(vin("1HGCM82633A00435é").is_err());
    }
}
