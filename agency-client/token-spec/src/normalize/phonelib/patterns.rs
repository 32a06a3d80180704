//! The text-level grammar of libphonenumber: where a number starts and ends in free text,
//! what looks like a phone number at all, and what is an extension.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

use super::{MIN_LENGTH_FOR_NSN, ParseError};

const PUNCTUATION: &str = r"\-x\x{2010}-\x{2015}\x{2212}\x{30FC}\x{FF0D}-\x{FF0F} \x{A0}\x{AD}\x{200B}\x{2060}\x{3000}()\x{FF08}\x{FF09}\x{FF3B}\x{FF3D}.\[\]/~\x{2053}\x{223C}\x{FF5E}";

/// The extension grammar used when parsing (libphonenumber `createExtnPattern(true)`).
fn extn_patterns_for_parsing() -> String {
    let sep = r"[ \x{A0}\t,]*";
    let after_label = r"[:\.\x{FF0E}]?[ \x{A0}\t,\-]*";
    let digits = |n: u32| format!(r"(\p{{Nd}}{{1,{n}}})");
    let explicit_labels = r"(?:e?xt(?:ensi(?:o\x{301}?|\x{F3}))?n?|\x{FF45}?\x{FF58}\x{FF54}\x{FF4E}?|\x{434}\x{43E}\x{431}|anexo)";
    let ambiguous_labels = r"(?:[x\x{FF58}#\x{FF03}~\x{FF5E}]|int|\x{FF49}\x{FF4E}\x{FF54})";
    let no_comma = r"[ \x{A0}\t]*";
    [
        format!(";ext={}", digits(20)),
        format!("{sep}{explicit_labels}{after_label}{}#?", digits(20)),
        format!("{sep}{ambiguous_labels}{after_label}{}#?", digits(9)),
        format!(r"[\- ]+{}#", digits(6)),
        format!("{no_comma}(?:,{{2}}|;){after_label}{}#?", digits(15)),
        format!("{no_comma}(?:,)+{after_label}{}#?", digits(9)),
    ]
    .join("|")
}

fn build(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern).size_limit(1 << 24).build().ok()
}

pub(super) static PLUS_CHARS: LazyLock<Option<Regex>> = LazyLock::new(|| build(r"^[+\x{FF0B}]+"));
pub(super) static VALID_START_CHAR: LazyLock<Option<Regex>> =
    LazyLock::new(|| build(r"[+\x{FF0B}\p{Nd}]"));
pub(super) static UNWANTED_END_CHARS: LazyLock<Option<Regex>> =
    LazyLock::new(|| build(r"[^\p{N}\p{L}#]+$"));
pub(super) static SECOND_NUMBER_START: LazyLock<Option<Regex>> =
    LazyLock::new(|| build(r"[\\/] *x"));
pub(super) static VALID_PHONE_NUMBER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    build(&format!(
        r"(?i)^(?:\p{{Nd}}{{2}}|[+\x{{FF0B}}]*(?:[{PUNCTUATION}\*]*\p{{Nd}}){{3,}}[{PUNCTUATION}\*A-Za-z\p{{Nd}}]*(?:{})?)$",
        extn_patterns_for_parsing()
    ))
});
pub(super) static EXTN: LazyLock<Option<Regex>> =
    LazyLock::new(|| build(&format!("(?i)(?:{})$", extn_patterns_for_parsing())));

pub(super) fn build_national_number_for_parsing(number: &str) -> Result<String, ParseError> {
    let mut national = if let Some(index) = number.find(";phone-context=") {
        let after = &number[index + ";phone-context=".len()..];
        let context = after.split(';').next().unwrap_or("");
        if context.is_empty() {
            return Err(ParseError::NotANumber);
        }
        let mut out = if context.starts_with('+') {
            context.to_owned()
        } else {
            String::new()
        };
        let start = number
            .find("tel:")
            .map(|i| i + 4)
            .filter(|&i| i <= index)
            .unwrap_or(0);
        out.push_str(&number[start..index]);
        out
    } else {
        extract_possible_number(number).to_owned()
    };
    if let Some(index) = national.find(";isub=")
        && index > 0
    {
        national.truncate(index);
    }
    Ok(national)
}

fn extract_possible_number(number: &str) -> &str {
    let Some(start) = VALID_START_CHAR.as_ref().and_then(|re| re.find(number)) else {
        return "";
    };
    let mut number = &number[start.start()..];
    if let Some(m) = UNWANTED_END_CHARS.as_ref().and_then(|re| re.find(number)) {
        number = &number[..m.start()];
    }
    if let Some(m) = SECOND_NUMBER_START.as_ref().and_then(|re| re.find(number)) {
        number = &number[..m.start()];
    }
    number
}

pub(super) fn is_viable(number: &str) -> bool {
    number.chars().count() >= MIN_LENGTH_FOR_NSN
        && VALID_PHONE_NUMBER
            .as_ref()
            .is_some_and(|re| re.is_match(number))
}

/// Removes a trailing extension (`ext. 12`, `x12`, `;ext=12` ...): E.164 has none.
pub(super) fn strip_extension(number: &str) -> &str {
    match EXTN.as_ref().and_then(|re| re.find(number)) {
        Some(m) if is_viable(&number[..m.start()]) => &number[..m.start()],
        _ => number,
    }
}
