//! `org`: the unified social credit code (统一社会信用代码, GB 32100-2015) that names every
//! company and other organisation in the PRC, checked by its own mod-31 check character so
//! that a mistyped code is an error rather than another company's token.

use super::{NormalizeError, SelectorKind, compact};

const KIND: SelectorKind = SelectorKind::Org;

/// The code's 31 characters in value order (0–30): no `I O S V Z`.
const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of the first 17 characters: 3^(i-1) mod 31.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Field `USCC`: NFKC, white space removed, ASCII upper-case; 18 characters of the code's set
/// whose 18th is the check character of the first 17.
pub(super) fn uscc(text: &str) -> Result<String, NormalizeError> {
    let invalid = |reason: String| NormalizeError::invalid(KIND, "text", reason);
    let code = compact(text, &[]);
    let values: Vec<u32> = code
        .bytes()
        .map(value)
        .collect::<Option<_>>()
        .ok_or_else(|| {
            invalid("may hold only digits and the letters A-Y other than I, O, S, V".to_owned())
        })?;
    if values.len() != 18 {
        return Err(invalid(format!(
            "must be 18 characters, not {}",
            values.len()
        )));
    }
    let (body, check) = (&values[..17], values[17]);
    let sum: u32 = body.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let want = (31 - sum % 31) % 31;
    if check != want {
        return Err(invalid(format!(
            "check character is {}, but the first 17 characters call for {}",
            char::from(CHARSET[check as usize]),
            char::from(CHARSET[want as usize])
        )));
    }
    Ok(code)
}

/// The value of one character of the code, `None` outside its set.
fn value(c: u8) -> Option<u32> {
    CHARSET
        .iter()
        .position(|&x| x == c)
        .and_then(|i| u32::try_from(i).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn reason(text: &str) -> String {
        match uscc(text).unwrap_err() {
            NormalizeError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        }
    }

    #[test]
    fn codes() {
        assert_eq!(uscc("91350100M000100Y43").unwrap(), "91350100M000100Y43");
        assert_eq!(uscc("91350100 m000100y4 3").unwrap(), "91350100M000100Y43");
        assert_eq!(
            uscc("９１３５０１００Ｍ０００１００Ｙ４３").unwrap(),
            "91350100M000100Y43"
        );
        assert_eq!(
            reason("91350100M000100Y44"),
            "check character is 4, but the first 17 characters call for 3"
        );
        assert!(reason("91350100M000100Y4Z").contains("other than I, O, S, V"));
        assert_eq!(reason("91350100M000100Y4"), "must be 18 characters, not 17");
        assert_eq!(reason(""), "must be 18 characters, not 0");
        assert!(uscc("91350100-M000100Y43").is_err());
    }

    #[test]
    fn weights_are_powers_of_three() {
        let mut w = 1;
        for weight in WEIGHTS {
            assert_eq!(weight, w);
            w = w * 3 % 31;
        }
    }
}
