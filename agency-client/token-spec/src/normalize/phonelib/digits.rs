//! libphonenumber's digit normalization.

use unicode_general_category::{GeneralCategory, get_general_category};

/// libphonenumber's `normalize`: with three or more ASCII letters the text is a vanity number
/// and letters become keypad digits (other characters are dropped); otherwise every decimal
/// digit of any script becomes its ASCII digit and everything else is dropped.
pub(super) fn normalize(number: &str) -> String {
    let letters = number.chars().filter(char::is_ascii_alphabetic).count();
    if letters >= 3 {
        number
            .chars()
            .filter_map(|c| {
                let upper = c.to_uppercase().next().unwrap_or(c);
                if upper.is_ascii_digit() {
                    Some(upper)
                } else {
                    keypad(upper)
                }
            })
            .collect()
    } else {
        number.chars().filter_map(decimal_digit).collect()
    }
}

fn keypad(c: char) -> Option<char> {
    Some(match c {
        'A'..='C' => '2',
        'D'..='F' => '3',
        'G'..='I' => '4',
        'J'..='L' => '5',
        'M'..='O' => '6',
        'P'..='S' => '7',
        'T'..='V' => '8',
        'W'..='Z' => '9',
        _ => return None,
    })
}

/// The ASCII digit of a decimal digit (category Nd) of any script. Unicode encodes each
/// script's digits as a contiguous run 0..9, so the value is the position within the run.
pub(super) fn decimal_digit(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    let is_nd = |c: char| get_general_category(c) == GeneralCategory::DecimalNumber;
    if !is_nd(c) {
        return None;
    }
    let mut position = 0u32;
    let mut cp = u32::from(c);
    while let Some(prev) = cp
        .checked_sub(1)
        .and_then(char::from_u32)
        .filter(|&p| is_nd(p))
    {
        position += 1;
        cp = u32::from(prev);
    }
    char::from_digit(position % 10, 10)
}
