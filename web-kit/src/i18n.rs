//! The pages' words, in Simplified Chinese and English: one catalogue per language
//! (`web-kit/i18n/*.toml`, compiled in), every string a page shows taken from it by key.
//!
//! The language is the officer's choice (a cookie set by the language switch), else the
//! browser's (`Accept-Language`), else the deployment's default. A key missing from a
//! catalogue shows as `[key]` and is logged, never a panic; a test keeps the two catalogues'
//! keys equal and every key the code uses present.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The languages the consoles speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    ZhCn,
    En,
}

const EN: &str = include_str!("../i18n/en.toml");
const ZH_CN: &str = include_str!("../i18n/zh-CN.toml");

/// The cookie the language switch sets.
pub const LANG_COOKIE: &str = "dc_lang";

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag (`<html lang>`, the cookie, the switch's link).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// A tag as a setting or cookie gives it (`zh`, `zh-CN`, `zh-Hans`, `en`, `en-GB`…).
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header that the consoles speak, by the
    /// header's quality values (ties: the header's order).
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in header.split(',').enumerate() {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::parse(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _, _)| q > bq)
            {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l)
    }

    /// The language for a request: its cookie, else its `Accept-Language`, else `default`.
    pub fn choose(cookie: Option<&str>, accept: Option<&str>, default: Lang) -> Lang {
        cookie
            .and_then(Lang::parse)
            .or_else(|| accept.and_then(Lang::from_accept_language))
            .unwrap_or(default)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::ZhCn => ZH_CN,
            Lang::En => EN,
        }
    }

    fn catalogue(self) -> &'static HashMap<String, String> {
        static ZH: OnceLock<HashMap<String, String>> = OnceLock::new();
        static EN_: OnceLock<HashMap<String, String>> = OnceLock::new();
        let cell = match self {
            Lang::ZhCn => &ZH,
            Lang::En => &EN_,
        };
        cell.get_or_init(|| parse_catalogue(self.source()).unwrap_or_default())
    }

    /// The text for `key`.
    pub fn t(self, key: &str) -> String {
        match self.catalogue().get(key) {
            Some(text) => text.clone(),
            None => {
                tracing::warn!(key, lang = self.tag(), "missing catalogue entry");
                format!("[{key}]")
            }
        }
    }

    /// The text for `key` with `{name}` placeholders filled in.
    pub fn tf(self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key);
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

/// A catalogue file: a flat TOML table of sections, each key `section.key`.
pub fn parse_catalogue(source: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = source.parse().map_err(|e| format!("{e}"))?;
    let mut out = HashMap::new();
    flatten("", &table, &mut out)?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut HashMap<String, String>,
) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => return Err(format!("{key}: not a string")),
        }
    }
    Ok(())
}

/// Every catalogue's keys, for the tests that compare them.
pub fn catalogue_keys(lang: Lang) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = parse_catalogue(lang.source())?.into_keys().collect();
    keys.sort();
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_catalogues_parse_and_hold_the_same_keys() {
        let zh = catalogue_keys(Lang::ZhCn).unwrap();
        let en = catalogue_keys(Lang::En).unwrap();
        let only_zh: Vec<_> = zh.iter().filter(|k| !en.contains(k)).collect();
        let only_en: Vec<_> = en.iter().filter(|k| !zh.contains(k)).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in zh-CN: {only_zh:?}; only in en: {only_en:?}"
        );
        assert!(zh.len() > 50);
    }

    #[test]
    fn chinese_entries_are_translated() {
        // An entry copied over untranslated is a missing translation in disguise.
        let zh = parse_catalogue(ZH_CN).unwrap();
        let en = parse_catalogue(EN).unwrap();
        let same: Vec<_> = zh
            .iter()
            .filter(|(k, v)| {
                en.get(*k) == Some(v) && v.chars().any(|c| c.is_ascii_alphabetic()) && v.len() > 3
            })
            .map(|(k, _)| k)
            .collect();
        assert!(same.is_empty(), "untranslated: {same:?}");
    }

    #[test]
    fn the_language_is_chosen_by_cookie_then_browser_then_default() {
        assert_eq!(
            Lang::from_accept_language("en-GB;q=0.8, zh-CN, fr;q=0.9"),
            Some(Lang::ZhCn)
        );
        assert_eq!(Lang::from_accept_language("fr, en;q=0.5"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr"), None);
        assert_eq!(
            Lang::from_accept_language("zh;q=0, en;q=0.1"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::choose(Some("en"), Some("zh-CN"), Lang::ZhCn),
            Lang::En
        );
        assert_eq!(
            Lang::choose(Some("xx"), Some("zh-TW"), Lang::En),
            Lang::ZhCn
        );
        assert_eq!(Lang::choose(None, None, Lang::ZhCn), Lang::ZhCn);
    }

    #[test]
    fn placeholders_are_filled_and_missing_keys_show_as_such() {
        assert_eq!(Lang::En.t("no.such.key"), "[no.such.key]");
        let text = Lang::En.tf("common.signed_in_as", &[("officer", "Li Wei")]);
        assert!(text.contains("Li Wei"), "{text}");
    }
}
