//! `fold(text)`: the spec's folding of names and address text (used by `person`, `address`).
//!
//! The aim is that spellings a clerk would consider the same (case, width, Latin diacritics,
//! punctuation, spacing, Han characters with or without spaces) fold to the same words, while
//! letters that carry meaning in their script (Thai, Myanmar, Indic vowel signs, kana voicing)
//! are kept.

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// Folds `text` by the nine steps of the spec, in order.
pub fn fold(text: &str) -> String {
    // 1. NFKC first, so compatibility forms (full-width, ligatures, circled letters) become
    //    plain letters before case mapping sees them.
    let step1: String = text.nfkc().collect();
    // 2. Full default lowercase, no locale (Rust's `to_lowercase`, final sigma included).
    let step2 = step1.to_lowercase();
    // 3-4. Decompose, then drop the diacritic marks of the listed blocks: `ễ` -> `e`.
    let step4: String = step2.nfkd().filter(|&c| !is_dropped_mark(c)).collect();
    // 5. Recompose whatever marks remain (Indic, Myanmar ... vowel signs, kana voicing).
    let step5: String = step4.nfkc().collect();
    // 6-8 in one pass: map letters no decomposition reaches, blank out everything that is
    //    not a letter, digit or mark, and make every CJK ideograph a word of its own.
    let mut step8 = String::with_capacity(step5.len() + 8);
    for c in step5.chars() {
        if let Some(mapped) = map_letter(c) {
            step8.push_str(mapped);
        } else if is_cjk_ideograph(c) {
            step8.push(' ');
            step8.push(c);
            step8.push(' ');
        } else if is_letter_number_or_mark(c) {
            step8.push(c);
        } else {
            step8.push(' ');
        }
    }
    // 9. Runs of spaces become one space; trim. Only U+0020 can be left as a separator here,
    //    since step 7 turned every other separator (category Z*, C*) into it.
    step8
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Step 4: the non-spacing marks (Mn) of the blocks listed by the spec: combining diacritics
/// (Latin, Greek, Cyrillic), Hebrew points, Arabic harakat and the superscript alef, and the
/// extended / supplement / symbol / half combining blocks.
fn is_dropped_mark(c: char) -> bool {
    let in_ranges = matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{0591}'..='\u{05C7}'
            | '\u{064B}'..='\u{065F}'
            | '\u{0670}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    );
    // Only Mn: the Hebrew range also holds punctuation (maqaf, sof pasuq), which step 7
    // turns into spaces, and the symbol block holds enclosing marks (Me), which stay.
    in_ranges && get_general_category(c) == GeneralCategory::NonspacingMark
}

/// Step 6: lowercase letters that neither case mapping nor decomposition brings to ASCII.
/// Input is already lowercased (step 2), so only the lowercase forms are listed.
fn map_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'ς' => "σ",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'đ' => "d",
        'ð' => "d",
        'ł' => "l",
        'ı' => "i",
        'þ' => "th",
        _ => return None,
    })
}

/// Step 7: categories L*, N* and M* are kept; everything else (punctuation, symbols,
/// separators, controls, unassigned and private-use code points) becomes a space.
fn is_letter_number_or_mark(c: char) -> bool {
    use GeneralCategory as G;
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
            | G::NonspacingMark
            | G::SpacingMark
            | G::EnclosingMark
    )
}

/// Step 8: the CJK ideograph blocks named by the spec (Extension A, URO, compatibility
/// ideographs, Extensions B to G). Han names are written without spaces, so each ideograph
/// is made a word; name-part order then stops mattering (`张伟` = `张 伟` = `伟张`).
pub(crate) fn is_cjk_ideograph(c: char) -> bool {
    matches!(
        c,
        '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{3134F}'
    )
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn spec_examples() {
        assert_eq!(fold("Nguyễn"), "nguyen");
        assert_eq!(fold("张伟"), "张 伟");
        assert_eq!(fold("Đặng Văn Lâm"), "dang van lam");
        assert_eq!(fold("Hans-Peter Müller"), "hans peter muller");
        assert_eq!(fold("O'Brien"), "o brien");
    }

    #[test]
    fn letters_without_decomposition() {
        assert_eq!(fold("STRAßE"), "strasse");
        assert_eq!(fold("Ærø Œuvre"), "aero oeuvre");
        assert_eq!(fold("Łódź Þór Dağ"), "lodz thor dag");
        assert_eq!(fold("ΟΔΥΣΣΕΥΣ"), "οδυσσευσ");
        assert_eq!(fold("İstanbul"), "istanbul");
    }

    #[test]
    fn width_and_compatibility() {
        assert_eq!(fold("ＺＨＡＮＧ　Ｗｅｉ"), "zhang wei");
        assert_eq!(fold("ﬁsh"), "fish");
    }

    #[test]
    fn script_marks_stay() {
        // Myanmar vowel signs and asat, Thai vowels, kana voicing are parts of letters.
        assert_eq!(fold("မောင်"), "မောင်");
        assert_eq!(fold("สมชาย"), "สมชาย");
        assert_eq!(fold("ガ"), "ガ");
        // Half-width katakana with its voicing mark composes to the full-width letter.
        assert_eq!(fold("ｶﾞ"), "ガ");
    }

    #[test]
    fn hebrew_and_arabic_points_dropped() {
        assert_eq!(fold("שָׁלוֹם"), "שלום");
        assert_eq!(fold("مُحَمَّد"), "محمد");
    }

    #[test]
    fn separators_and_controls_become_spaces() {
        assert_eq!(fold("  a\t\u{3000}b\u{200B}c\u{E000}d  "), "a b c d");
        assert_eq!(fold("¿¡!?"), "");
        assert_eq!(fold(""), "");
    }

    #[test]
    fn unassigned_code_point_is_a_separator() {
        assert_eq!(fold("a\u{0378}b"), "a b");
    }
}
