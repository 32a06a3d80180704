//! `person`'s second canonical form: the name in Hanyu Pinyin, so that `张小明` written by one
//! agency meets `ZHANG Xiaoming` copied from a passport by another (spec, *person: the Pinyin
//! form*). Surnames are read as surnames (`单` is `shan`, not `dan`); every other character
//! takes its reading from the spec's table ([`super::readings`]).

use super::fold::is_cjk_ideograph;
use super::readings::reading;

/// Compound surnames (simplified and traditional forms) and their readings. They count only
/// when the name has at least three ideographs: `欧阳` alone is family `欧`, given `阳`.
const COMPOUND_SURNAMES: [(&str, &str); 42] = [
    ("欧阳", "ouyang"),
    ("歐陽", "ouyang"),
    ("司马", "sima"),
    ("司馬", "sima"),
    ("上官", "shangguan"),
    ("诸葛", "zhuge"),
    ("諸葛", "zhuge"),
    ("东方", "dongfang"),
    ("東方", "dongfang"),
    ("皇甫", "huangfu"),
    ("尉迟", "yuchi"),
    ("尉遲", "yuchi"),
    ("公孙", "gongsun"),
    ("公孫", "gongsun"),
    ("慕容", "murong"),
    ("长孙", "zhangsun"),
    ("長孫", "zhangsun"),
    ("宇文", "yuwen"),
    ("司徒", "situ"),
    ("夏侯", "xiahou"),
    ("轩辕", "xuanyuan"),
    ("軒轅", "xuanyuan"),
    ("令狐", "linghu"),
    ("万俟", "moqi"),
    ("萬俟", "moqi"),
    ("澹台", "tantai"),
    ("澹臺", "tantai"),
    ("公冶", "gongye"),
    ("宗政", "zongzheng"),
    ("濮阳", "puyang"),
    ("濮陽", "puyang"),
    ("太史", "taishi"),
    ("端木", "duanmu"),
    ("申屠", "shentu"),
    ("独孤", "dugu"),
    ("獨孤", "dugu"),
    ("南宫", "nangong"),
    ("南宮", "nangong"),
    ("西门", "ximen"),
    ("西門", "ximen"),
    ("百里", "baili"),
    ("呼延", "huyan"),
];

/// Single-character surnames read otherwise as a surname than the table reads the character
/// (simplified and traditional forms). For the family name only: `李单` is `dan li`.
const SURNAME_READINGS: [(char, &str); 37] = [
    ('单', "shan"),
    ('單', "shan"),
    ('曾', "zeng"),
    ('仇', "qiu"),
    ('区', "ou"),
    ('區', "ou"),
    ('解', "xie"),
    ('朴', "piao"),
    ('查', "zha"),
    ('盖', "ge"),
    ('蓋', "ge"),
    ('翟', "zhai"),
    ('覃', "qin"),
    ('乐', "yue"),
    ('樂', "yue"),
    ('缪', "miao"),
    ('繆', "miao"),
    ('召', "shao"),
    ('秘', "bi"),
    ('种', "chong"),
    ('種', "chong"),
    ('繁', "po"),
    ('员', "yun"),
    ('員', "yun"),
    ('黑', "he"),
    ('薄', "bo"),
    ('长', "chang"),
    ('長', "chang"),
    ('卜', "bu"),
    ('都', "du"),
    ('阚', "kan"),
    ('折', "she"),
    ('乜', "nie"),
    ('祭', "zhai"),
    ('句', "gou"),
    ('粘', "nian"),
    ('洗', "xian"),
];

/// WORDS2 of the Pinyin form, from the folded name words in written order; `None` when the
/// name has no such form (a word that is not a single ideograph, or an ideograph without a
/// reading).
///
/// Family name: a compound surname when the name has three ideographs or more, else the first
/// ideograph; the given name is the rest. Each is written as its syllables run together; the
/// two words are sorted by code point, like WORDS. A one-ideograph name gives one word (its
/// reading as a surname): an empty given name is no word.
pub(super) fn pinyin_words(words: &[&str]) -> Option<String> {
    let chars: Vec<char> = words
        .iter()
        .map(|w| {
            let mut cs = w.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if is_cjk_ideograph(c) => Some(c),
                _ => None,
            }
        })
        .collect::<Option<_>>()?;
    let (family, given_chars) = family_name(&chars)?;
    let mut given = String::with_capacity(6 * given_chars.len());
    for &c in given_chars {
        given.push_str(reading(c)?);
    }
    let mut out = [family, given.as_str()];
    out.sort_unstable();
    Some(
        out.iter()
            .filter(|w| !w.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The family name's reading and the given name's characters.
fn family_name(chars: &[char]) -> Option<(&'static str, &[char])> {
    if chars.len() >= 3 {
        let mut two = String::with_capacity(8);
        two.extend(&chars[..2]);
        if let Some(&(_, syllables)) = COMPOUND_SURNAMES.iter().find(|(s, _)| *s == two) {
            return Some((syllables, &chars[2..]));
        }
    }
    let (&first, given) = chars.split_first()?;
    let family = SURNAME_READINGS
        .iter()
        .find(|(c, _)| *c == first)
        .map(|&(_, r)| r)
        .or_else(|| reading(first))?;
    Some((family, given))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::normalize::fold::fold;

    fn pinyin(name: &str) -> Option<String> {
        let folded = fold(name);
        let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
        pinyin_words(&words)
    }

    #[test]
    fn spec_examples() {
        assert_eq!(pinyin("张小明").as_deref(), Some("xiaoming zhang"));
        assert_eq!(pinyin("欧阳娜娜").as_deref(), Some("nana ouyang"));
        assert_eq!(pinyin("吕雪").as_deref(), Some("lyu xue"));
        assert_eq!(pinyin("李单").as_deref(), Some("dan li"));
        assert_eq!(pinyin("单田芳").as_deref(), Some("shan tianfang"));
    }

    #[test]
    fn compound_surname_needs_three_ideographs() {
        assert_eq!(pinyin("欧阳").as_deref(), Some("ou yang"));
        assert_eq!(pinyin("歐陽娜娜").as_deref(), Some("nana ouyang"));
        assert_eq!(pinyin("尉迟恭").as_deref(), Some("gong yuchi"));
        assert_eq!(pinyin("萬俟卨").as_deref(), Some("moqi xie"));
    }

    #[test]
    fn written_order_matters() {
        // Family name first, as entered: 伟张 is family 伟.
        assert_eq!(pinyin("伟 张").as_deref(), Some("wei zhang"));
        assert_eq!(pinyin("明 张小").as_deref(), Some("ming zhangxiao"));
    }

    #[test]
    fn one_ideograph_is_one_word() {
        assert_eq!(pinyin("张").as_deref(), Some("zhang"));
        assert_eq!(pinyin("单").as_deref(), Some("shan"));
    }

    #[test]
    fn no_second_form() {
        assert_eq!(pinyin("张 David"), None);
        assert_eq!(pinyin("张伟2"), None);
        assert_eq!(pinyin("ガ"), None);
        assert_eq!(pinyin(""), None);
        // An ideograph of fold's ranges, left alone by fold, that the table does not read.
        let missing = (0x3400..0x3_1350)
            .filter_map(char::from_u32)
            .find(|&c| {
                is_cjk_ideograph(c) && reading(c).is_none() && fold(&c.to_string()) == c.to_string()
            })
            .unwrap();
        assert_eq!(pinyin(&format!("张{missing}")), None);
    }

    #[test]
    fn surname_tables_are_ideographs_with_readings_elsewhere() {
        for (s, _) in COMPOUND_SURNAMES {
            assert_eq!(s.chars().count(), 2);
            assert!(s.chars().all(is_cjk_ideograph), "{s}");
        }
        for (c, r) in SURNAME_READINGS {
            assert!(is_cjk_ideograph(c));
            assert_ne!(reading(c), Some(r), "{c} needs no override");
        }
    }
}
