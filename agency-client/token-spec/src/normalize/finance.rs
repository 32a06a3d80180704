//! `iban` and `card`: bank accounts and bank cards, the money trail's two identifiers.

use unicode_normalization::UnicodeNormalization;

use super::{NormalizeError, SelectorKind, compact};

const KIND: SelectorKind = SelectorKind::Iban;

/// Field `PAN` of `card`: NFKC, white space and `-` removed; 12 to 19 ASCII digits. The Luhn
/// check is not enforced (some legacy domestic cards fail it): the field is the digits.
pub(super) fn card(text: &str) -> Result<String, NormalizeError> {
    let pan = compact(text, &['-']);
    if (12..=19).contains(&pan.len()) && pan.bytes().all(|b| b.is_ascii_digit()) {
        Ok(pan)
    } else {
        Err(NormalizeError::invalid(
            SelectorKind::Card,
            "text",
            "must be 12 to 19 digits (spaces and - are removed)",
        ))
    }
}

/// Field `IBAN` (electronic format, `DE89370400440532013000`).
///
/// NFKC, white space removed (the paper format groups by four), ASCII upper-case. Then
/// `[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}` (country, check digits, BBAN: 15 to 34 characters in all)
/// and the ISO 7064 mod-97 check must give 1, so that a typo is an error rather than the token
/// of another account. Other separators (`-`) are not removed: the spec removes white space
/// only, and a second rule here would split the federation.
pub(super) fn iban(text: &str) -> Result<String, NormalizeError> {
    let iban: String = text
        .nfkc()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let b = iban.as_bytes();
    let shape_ok = (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !shape_ok {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            "must be 2 letters, 2 digits and 11 to 30 letters or digits",
        ));
    }
    if mod97(b) != 1 {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            "check digits are wrong (mod 97)",
        ));
    }
    Ok(iban)
}

/// ISO 7064 MOD 97-10 over the IBAN with its first four characters moved to the end and
/// letters written as 10..35, computed digit by digit so that no big integer is needed.
fn mod97(iban: &[u8]) -> u32 {
    let (head, tail) = iban.split_at(4);
    tail.iter().chain(head).fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            (acc * 10 + u32::from(c - b'0')) % 97
        } else {
            (acc * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cards() {
        assert_eq!(
            card("6228 4800 1234 5678 901").unwrap(),
            "6228480012345678901"
        );
        assert_eq!(card("6222-0212-3456-7890").unwrap(), "6222021234567890");
        assert_eq!(
            card("６２２２０２１２３４５６７８９０").unwrap(),
            "6222021234567890"
        );
        assert!(card("62220212345").is_err());
        assert!(card("62220212345678901234").is_err());
        assert!(card("6222 0212 3456 789O").is_err());
        assert!(card("6222.0212.3456.7890").is_err());
    }

    #[test]
    fn ibans() {
        assert_eq!(
            iban("DE89 3704 0044 0532 0130 00").unwrap(),
            "DE89370400440532013000"
        );
        assert_eq!(
            iban("de89370400440532013000").unwrap(),
            "DE89370400440532013000"
        );
        assert_eq!(
            iban("FR14 2004 1010 0505 0001 3M02 606").unwrap(),
            "FR1420041010050500013M02606"
        );
        assert_eq!(
            iban("ＤＥ８９ ３７０４ ００４４ ０５３２ ０１３０ ００").unwrap(),
            "DE89370400440532013000"
        );
        assert!(iban("DE88 3704 0044 0532 0130 00").is_err());
        assert!(iban("DE89-3704-0044-0532-0130-00").is_err());
        assert!(iban("DE89").is_err());
        assert!(iban("").is_err());
        assert!(iban("1E89370400440532013000").is_err());
    }
}
