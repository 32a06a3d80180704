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

mod device;
mod finance;
pub mod fold;
mod online;
mod person;
mod phone;
mod phonelib;
mod place;
mod selector;
mod vehicle;

#[cfg(test)]
mod proptests;

use time::{Date, OffsetDateTime};

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

/// The canonical forms of `selector`, using today's UTC date for the date-of-birth check.
///
/// `geo` gives several forms (one per cell of the grid disk), sorted by canonical bytes;
/// every other kind gives exactly one.
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
    let kind = selector.kind();
    // The spec rejects U+0000 in any input of any kind: it is the field separator.
    if let Some(field) = selector.field_with_nul() {
        return Err(NormalizeError::invalid(kind, field, "contains U+0000"));
    }
    let fields_list: Vec<Vec<String>> = match selector {
        Selector::Person { names, dob } => vec![person::normalize(names, dob, today)?],
        Selector::Phone { text, region } => vec![vec![phone::normalize(text, region)?]],
        Selector::Plate { country, text } => vec![vehicle::plate(country, text)?],
        Selector::Vin { text } => vec![vec![vehicle::vin(text)?]],
        Selector::Imei { text } => vec![vec![device::imei(text)?]],
        Selector::Email { text } => vec![vec![online::email(text)?]],
        Selector::Iban { text } => vec![vec![finance::iban(text)?]],
        Selector::Wallet { chain, address } => vec![online::wallet(chain, address)?],
        Selector::Handle { platform, handle } => vec![online::handle(platform, handle)?],
        Selector::Address { country, text } => vec![place::address(country, text)?],
        Selector::Geo { lat, lng } => place::geo(*lat, *lng, params)?,
    };
    let mut forms = fields_list
        .iter()
        .map(|fields| assemble(kind, fields))
        .collect::<Result<Vec<_>, _>>()?;
    // An unordered set: sorted by bytes so that every client lists it alike.
    forms.sort();
    forms.dedup();
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

/// Checks a two-letter country code (`plate`, `address`): exactly two ASCII letters, ASCII
/// upper-cased. No trimming: the spec says *exactly*, and a padded code is a caller bug.
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
