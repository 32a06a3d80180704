//! Selectors written as one command-line word, `KIND=VALUE`, for `deconflict register -s`:
//!
//! | kind | value |
//! |---|---|
//! | `phone` | the number (`--region` gives the default region) |
//! | `vin`, `imei`, `email`, `iban`, `cnid`, `card`, `org` | the text |
//! | `plate`, `address`, `passport` | `COUNTRY/TEXT` (`CN/粤B12345`) |
//! | `permit` | `TYPE/TEXT` (`hkmo/H12345678`) |
//! | `wallet` | `CHAIN/ADDRESS` |
//! | `handle` | `PLATFORM/HANDLE` |
//! | `person` | `NAME PARTS/YYYY-MM-DD` (`Zhang Wei/1985-03-12`) |
//! | `geo` | `LAT,LNG` |

use token_spec::normalize::{Selector, SelectorKind};

use super::{SelectorSpec, SpecError, validate_selector};

/// Parses and validates one `KIND=VALUE` word.
pub fn parse_selector_flag(
    word: &str,
    default_region: Option<&str>,
) -> Result<SelectorSpec, SpecError> {
    let (kind, value) = word.split_once('=').ok_or_else(|| {
        SpecError(format!(
            "{word:?}: write KIND=VALUE, e.g. phone=13800138000 or plate=CN/粤B12345"
        ))
    })?;
    let kind: SelectorKind = kind
        .trim()
        .parse()
        .map_err(|e: token_spec::normalize::UnknownKind| SpecError(e.to_string()))?;
    let pair = |what: &str| -> Result<(String, String), SpecError> {
        value
            .split_once('/')
            .map(|(a, b)| (a.trim().to_owned(), b.to_owned()))
            .ok_or_else(|| SpecError(format!("{kind}: write {kind}={what}")))
    };
    let selector = match kind {
        SelectorKind::Phone => Selector::Phone {
            text: value.to_owned(),
            region: default_region.filter(|r| !r.is_empty()).map(str::to_owned),
        },
        SelectorKind::Vin => Selector::Vin { text: value.into() },
        SelectorKind::Imei => Selector::Imei { text: value.into() },
        SelectorKind::Email => Selector::Email { text: value.into() },
        SelectorKind::Iban => Selector::Iban { text: value.into() },
        SelectorKind::Cnid => Selector::Cnid { text: value.into() },
        SelectorKind::Card => Selector::Card { text: value.into() },
        SelectorKind::Org => Selector::Org { text: value.into() },
        SelectorKind::Passport => {
            let (country, text) = pair("COUNTRY/TEXT")?;
            Selector::Passport { country, text }
        }
        SelectorKind::Permit => {
            let (permit_type, text) = pair("TYPE/TEXT")?;
            Selector::Permit { permit_type, text }
        }
        SelectorKind::Plate => {
            let (country, text) = pair("COUNTRY/TEXT")?;
            Selector::Plate { country, text }
        }
        SelectorKind::Address => {
            let (country, text) = pair("COUNTRY/TEXT")?;
            Selector::Address { country, text }
        }
        SelectorKind::Wallet => {
            let (chain, address) = pair("CHAIN/ADDRESS")?;
            Selector::Wallet { chain, address }
        }
        SelectorKind::Handle => {
            let (platform, handle) = pair("PLATFORM/HANDLE")?;
            Selector::Handle { platform, handle }
        }
        SelectorKind::Person => {
            let (names, dob) = value
                .rsplit_once('/')
                .ok_or_else(|| SpecError("person: write person=NAME PARTS/YYYY-MM-DD".into()))?;
            Selector::Person {
                names: names.split_whitespace().map(str::to_owned).collect(),
                dob: dob.trim().to_owned(),
            }
        }
        SelectorKind::Geo => {
            let (lat, lng) = value
                .split_once(',')
                .ok_or_else(|| SpecError("geo: write geo=LAT,LNG".into()))?;
            let num = |field: &str, t: &str| {
                t.trim()
                    .parse::<f64>()
                    .map_err(|_| SpecError(format!("geo: {field}: not a number")))
            };
            Selector::Geo {
                lat: num("lat", lat)?,
                lng: num("lng", lng)?,
            }
        }
    };
    validate_selector(&selector)?;
    Ok(SelectorSpec {
        selector,
        label: String::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let s = parse_selector_flag("phone=138 0013 8000", Some("CN")).unwrap();
        assert_eq!(
            s.selector,
            Selector::Phone {
                text: "138 0013 8000".into(),
                region: Some("CN".into())
            }
        );
        let s = parse_selector_flag("person=Zhang Wei/1985-03-12", None).unwrap();
        assert_eq!(
            s.selector,
            Selector::Person {
                names: vec!["Zhang".into(), "Wei".into()],
                dob: "1985-03-12".into()
            }
        );
        assert!(parse_selector_flag("plate=CN/粤B12345", None).is_ok());
        assert!(parse_selector_flag("geo=25.04,102.71", None).is_ok());
        assert!(parse_selector_flag("email=a@example.com", None).is_ok());
    }

    #[test]
    fn bad_flags_explain() {
        for (word, want) in [
            ("13800138000", "KIND=VALUE"),
            ("car=1", "unknown selector kind"),
            ("plate=粤B12345", "plate=COUNTRY/TEXT"),
            ("geo=1", "geo=LAT,LNG"),
            ("geo=x,1", "lat: not a number"),
            ("vin=short", "vin: text"),
        ] {
            let err = parse_selector_flag(word, None).unwrap_err();
            assert!(err.0.contains(want), "{word}: {err}");
        }
    }
}
