//! Selector normalization: token spec dcf1, section 1.
//!
//! Every agency must turn the same real-world identifier into the same bytes, or the broker
//! silently misses the match. This module is the single place where those bytes are made:
//!
//! ```text
//! canonical = "dcf1" 0x00 KIND 0x00 FIELD_1 [0x00 FIELD_2 ...]
//! ```
//!
//! Each kind (or family of kinds) has its own module with the rule documented beside the
//! code; `docs/token-spec.md` is the project's prose copy of the rules.

mod dates;
mod device;
mod finance;
pub mod fold;
mod ident;
mod online;
mod org;
mod person;
mod phone;
mod phonelib;
mod pinyin;
mod place;
mod readings;
mod selector;
mod vehicle;

#[cfg(test)]
mod proptests;

use time::{Date, OffsetDateTime};
use unicode_normalization::UnicodeNormalization;

pub use selector::{Selector, SelectorKind, UnknownKind};

/// The spec version that opens every canonical form.
pub const SPEC_VERSION: &str = "dcf1";

/// Federation-wide parameters that change canonical forms. The broker publishes them so that
/// every client of a federation uses the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FederationParams {
    /// H3 resolution of `geo` cells (0..=15; default 9, edge about 174 m).
    pub h3_resolution: u8,
    /// Radius K of the H3 grid disk registered around a `geo` point (default 1: 7 cells).
    pub disk_radius: u32,
}

impl Default for FederationParams {
    fn default() -> Self {
        Self {
            h3_resolution: 9,
            disk_radius: 1,
        }
    }
}

/// Largest grid-disk radius accepted: K = 10 is already 331 tokens per location, and a
/// larger value is far more likely a configuration mistake than a wish.
pub const MAX_DISK_RADIUS: u32 = 10;

/// Why a selector could not be normalized. A client never sends a token for such input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// A rule of the spec rejected one input field.
    #[error("{kind}: {field}: {reason}")]
    Invalid {
        /// The selector kind whose rule rejected the input.
        kind: SelectorKind,
        /// The input field at fault (`text`, `dob`, `names`, ...).
        field: &'static str,
        /// What is wrong, in words a duty officer can act on.
        reason: String,
    },
    /// The kind name is not one of the spec's.
    #[error(transparent)]
    UnknownKind(#[from] UnknownKind),
    /// The federation parameters themselves are unusable (e.g. H3 resolution 16).
    #[error("federation parameters: {0}")]
    Params(String),
}

impl NormalizeError {
    /// Shorthand used by every rule module.
    pub(crate) fn invalid(
        kind: SelectorKind,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            kind,
            field,
            reason: reason.into(),
        }
    }
}

/// Which of a selector's canonical forms this is, so that a match can be explained to a duty
/// officer ("matched on the name in Pinyin").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// The selector as written: the one form of most kinds, and a person's first form.
    Written,
    /// A person's second form: a name written in Han ideographs, in Hanyu Pinyin.
    Pinyin,
    /// One H3 cell of a `geo` selector's grid disk.
    Cell,
}

impl Form {
    /// A lowercase word for logs and messages: `written`, `pinyin`, `cell`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Written => "written",
            Self::Pinyin => "pinyin",
            Self::Cell => "cell",
        }
    }
}

/// One canonical form with what it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalForm {
    /// The canonical bytes (`"dcf1" 0x00 KIND 0x00 FIELD ...`).
    pub bytes: Vec<u8>,
    /// Which form of the selector these bytes are.
    pub form: Form,
}

/// The canonical forms of `selector`, using today's UTC date for the date checks (`person`'s
/// date of birth, the date inside a `cnid`).
///
/// `geo` gives several forms (one per cell of the grid disk), and a `person` whose name is
/// written in Han ideographs two (as written, and in Pinyin), sorted by canonical bytes;
/// every other selector gives exactly one. [`canonical_forms_tagged`] says which is which.
pub fn canonical_forms(
    selector: &Selector,
    params: &FederationParams,
) -> Result<Vec<Vec<u8>>, NormalizeError> {
    canonical_forms_on(selector, params, OffsetDateTime::now_utc().date())
}

/// As [`canonical_forms`], with the date that counts as "today" given explicitly (the latest
/// date of birth accepted), so that tests and replays are deterministic.
pub fn canonical_forms_on(
    selector: &Selector,
    params: &FederationParams,
    today: Date,
) -> Result<Vec<Vec<u8>>, NormalizeError> {
    Ok(canonical_forms_tagged_on(selector, params, today)?
        .into_iter()
        .map(|f| f.bytes)
        .collect())
}

/// As [`canonical_forms`], each form with which form it is, in the same order.
pub fn canonical_forms_tagged(
    selector: &Selector,
    params: &FederationParams,
) -> Result<Vec<CanonicalForm>, NormalizeError> {
    canonical_forms_tagged_on(selector, params, OffsetDateTime::now_utc().date())
}

/// As [`canonical_forms_tagged`], with "today" given explicitly.
pub fn canonical_forms_tagged_on(
    selector: &Selector,
    params: &FederationParams,
    today: Date,
) -> Result<Vec<CanonicalForm>, NormalizeError> {
    let kind = selector.kind();
    // The spec rejects U+0000 in any input of any kind: it is the field separator.
    if let Some(field) = selector.field_with_nul() {
        return Err(NormalizeError::invalid(kind, field, "contains U+0000"));
    }
    let written = |fields: Vec<String>| vec![(Form::Written, fields)];
    let fields_list: Vec<(Form, Vec<String>)> = match selector {
        Selector::Person { names, dob } => {
            let p = person::normalize(names, dob, today)?;
            let mut list = written(p.written);
            list.extend(p.pinyin.map(|fields| (Form::Pinyin, fields)));
            list
        }
        Selector::Phone { text, region } => written(vec![phone::normalize(text, region)?]),
        Selector::Plate { country, text } => written(vehicle::plate(country, text)?),
        Selector::Vin { text } => written(vec![vehicle::vin(text)?]),
        Selector::Imei { text } => written(vec![device::imei(text)?]),
        Selector::Email { text } => written(vec![online::email(text)?]),
        Selector::Iban { text } => written(vec![finance::iban(text)?]),
        Selector::Wallet { chain, address } => written(online::wallet(chain, address)?),
        Selector::Handle { platform, handle } => written(online::handle(platform, handle)?),
        Selector::Address { country, text } => written(place::address(country, text)?),
        Selector::Geo { lat, lng } => place::geo(*lat, *lng, params)?
            .into_iter()
            .map(|fields| (Form::Cell, fields))
            .collect(),
        Selector::Cnid { text } => written(vec![ident::cnid(text, today)?]),
        Selector::Passport { country, text } => written(ident::passport(country, text)?),
        Selector::Permit { permit_type, text } => written(ident::permit(permit_type, text)?),
        Selector::Card { text } => written(vec![finance::card(text)?]),
        Selector::Org { text } => written(vec![org::uscc(text)?]),
    };
    let mut forms = fields_list
        .into_iter()
        .map(|(form, fields)| {
            Ok(CanonicalForm {
                bytes: assemble(kind, &fields)?,
                form,
            })
        })
        .collect::<Result<Vec<_>, NormalizeError>>()?;
    // An unordered set: sorted by bytes so that every client lists it alike.
    forms.sort_by(|a, b| a.bytes.cmp(&b.bytes));
    forms.dedup_by(|a, b| a.bytes == b.bytes);
    Ok(forms)
}

/// Joins the spec version, the kind and the fields with 0x00.
fn assemble(kind: SelectorKind, fields: &[String]) -> Result<Vec<u8>, NormalizeError> {
    let mut out = Vec::with_capacity(16 + fields.iter().map(String::len).sum::<usize>());
    out.extend_from_slice(SPEC_VERSION.as_bytes());
    out.push(0);
    out.extend_from_slice(kind.as_str().as_bytes());
    for field in fields {
        // Cannot happen (U+0000 is rejected up front and no rule creates it), but a field
        // holding the separator would make two different selectors collide: refuse it.
        if field.as_bytes().contains(&0) {
            return Err(NormalizeError::invalid(kind, "field", "contains U+0000"));
        }
        out.push(0);
        out.extend_from_slice(field.as_bytes());
    }
    Ok(out)
}

/// Shows a canonical form readably: 0x00 as `|`, as in the vectors' `canonical_text`.
pub fn canonical_text(form: &[u8]) -> String {
    String::from_utf8_lossy(form).replace('\0', "|")
}

/// NFKC, white space removed, ASCII upper-case, and the `extra` characters removed as well
/// where a rule says so: the first step of the rules for document and account numbers.
fn compact(text: &str, extra: &[char]) -> String {
    text.nfkc()
        .filter(|c| !c.is_whitespace() && !extra.contains(c))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Checks a two-letter country code: exactly two ASCII letters, ASCII
/// upper-cased (`plate`, `address`, `passport`). No trimming: the spec says *exactly*, and a padded code is a caller bug.
fn country_code(kind: SelectorKind, country: &str) -> Result<String, NormalizeError> {
    if country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(country.to_ascii_uppercase())
    } else {
        Err(NormalizeError::invalid(
            kind,
            "country",
            "must be exactly two ASCII letters",
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn assembles_with_nul_separators() {
        let form = assemble(SelectorKind::Vin, &["ABC".to_owned()]).unwrap();
        assert_eq!(form, b"dcf1\0vin\0ABC");
        assert_eq!(canonical_text(&form), "dcf1|vin|ABC");
    }

    #[test]
    fn nul_rejected_for_every_kind() {
        let params = FederationParams::default();
        for kind in SelectorKind::ALL {
            let sel = Selector::sample_with_text(kind, "a\0b");
            let Some(sel) = sel else { continue };
            let err = canonical_forms(&sel, &params).unwrap_err();
            assert!(err.to_string().contains("U+0000"), "{kind}: {err}");
        }
    }

    #[test]
    fn error_names_kind_field_reason() {
        let sel = Selector::Vin {
            text: "short".into(),
        };
        let err = canonical_forms(&sel, &FederationParams::default()).unwrap_err();
        assert!(err.to_string().starts_with("vin: text: "), "{err}");
    }

    #[test]
    fn country_code_rules() {
        assert_eq!(country_code(SelectorKind::Plate, "cn").unwrap(), "CN");
        assert!(country_code(SelectorKind::Plate, " CN").is_err());
        assert!(country_code(SelectorKind::Plate, "C1").is_err());
        assert!(country_code(SelectorKind::Plate, "ＣＮ").is_err());
    }
}
