//! The typed selector: one variant per kind, holding the spec's input fields as given.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::NormalizeError;

/// The kinds of selector of spec dcf1, by their lowercase canonical names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SelectorKind {
    /// Name parts and a date of birth.
    Person,
    /// A telephone number.
    Phone,
    /// A vehicle registration plate with its country.
    Plate,
    /// A vehicle identification number.
    Vin,
    /// A handset identity (IMEI or IMEISV).
    Imei,
    /// An e-mail address.
    Email,
    /// An international bank account number.
    Iban,
    /// A crypto-currency address with its chain.
    Wallet,
    /// An online account name with its platform.
    Handle,
    /// A free-text postal address with its country.
    Address,
    /// A WGS 84 point, registered as H3 cells.
    Geo,
    /// A PRC resident identity number (or a permit in its format).
    Cnid,
    /// A passport number with its issuing country.
    Passport,
    /// A PRC travel permit number with its type.
    Permit,
    /// A bank card number.
    Card,
    /// An organisation's unified social credit code.
    Org,
}

impl SelectorKind {
    /// Every kind, in the spec's table order.
    pub const ALL: [SelectorKind; 16] = [
        Self::Person,
        Self::Phone,
        Self::Plate,
        Self::Vin,
        Self::Imei,
        Self::Email,
        Self::Iban,
        Self::Wallet,
        Self::Handle,
        Self::Address,
        Self::Geo,
        Self::Cnid,
        Self::Passport,
        Self::Permit,
        Self::Card,
        Self::Org,
    ];

    /// The KIND field of the canonical form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Phone => "phone",
            Self::Plate => "plate",
            Self::Vin => "vin",
            Self::Imei => "imei",
            Self::Email => "email",
            Self::Iban => "iban",
            Self::Wallet => "wallet",
            Self::Handle => "handle",
            Self::Address => "address",
            Self::Geo => "geo",
            Self::Cnid => "cnid",
            Self::Passport => "passport",
            Self::Permit => "permit",
            Self::Card => "card",
            Self::Org => "org",
        }
    }
}

impl fmt::Display for SelectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that the spec does not define.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl std::fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown selector kind {:?} (the kinds are ", self.0)?;
        for (i, kind) in SelectorKind::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(kind.as_str())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownKind {}

impl FromStr for SelectorKind {
    type Err = UnknownKind;

    /// Exact lowercase names only: the kind is a protocol word, not user text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// One selector, with its input fields exactly as the user gave them.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// Name parts in any order (family, given, ...) and a `YYYY-MM-DD` date of birth.
    Person { names: Vec<String>, dob: String },
    /// Number text and the default region (two letters; `None`, empty or `ZZ`: none).
    Phone {
        text: String,
        region: Option<String>,
    },
    /// Plate country (ISO 3166 alpha-2) and plate text.
    Plate { country: String, text: String },
    /// VIN text.
    Vin { text: String },
    /// IMEI or IMEISV text.
    Imei { text: String },
    /// E-mail address text.
    Email { text: String },
    /// IBAN text.
    Iban { text: String },
    /// Chain name (`btc`, `eth`, ...) and address.
    Wallet { chain: String, address: String },
    /// Platform name (`telegram`, ...) and account handle.
    Handle { platform: String, handle: String },
    /// Country (ISO 3166 alpha-2) and free address text.
    Address { country: String, text: String },
    /// Latitude and longitude in WGS 84 degrees.
    Geo { lat: f64, lng: f64 },
    /// Resident identity number text (18 characters, or 15 digits).
    Cnid { text: String },
    /// Issuing country (ISO 3166 alpha-2) and passport number.
    Passport { country: String, text: String },
    /// Permit type (`hkmo`, `tw`, `cnhkmo`) and permit number; the JSON field is `type`.
    Permit { permit_type: String, text: String },
    /// Bank card number text.
    Card { text: String },
    /// Unified social credit code text.
    Org { text: String },
}

impl Selector {
    /// The kind of this selector.
    pub fn kind(&self) -> SelectorKind {
        match self {
            Self::Person { .. } => SelectorKind::Person,
            Self::Phone { .. } => SelectorKind::Phone,
            Self::Plate { .. } => SelectorKind::Plate,
            Self::Vin { .. } => SelectorKind::Vin,
            Self::Imei { .. } => SelectorKind::Imei,
            Self::Email { .. } => SelectorKind::Email,
            Self::Iban { .. } => SelectorKind::Iban,
            Self::Wallet { .. } => SelectorKind::Wallet,
            Self::Handle { .. } => SelectorKind::Handle,
            Self::Address { .. } => SelectorKind::Address,
            Self::Geo { .. } => SelectorKind::Geo,
            Self::Cnid { .. } => SelectorKind::Cnid,
            Self::Passport { .. } => SelectorKind::Passport,
            Self::Permit { .. } => SelectorKind::Permit,
            Self::Card { .. } => SelectorKind::Card,
            Self::Org { .. } => SelectorKind::Org,
        }
    }

    /// The name of the first text field holding U+0000, if any.
    pub(crate) fn field_with_nul(&self) -> Option<&'static str> {
        let has = |s: &str| s.contains('\0');
        match self {
            Self::Person { names, dob } => {
                if names.iter().any(|n| has(n)) {
                    Some("names")
                } else if has(dob) {
                    Some("dob")
                } else {
                    None
                }
            }
            Self::Phone { text, region } => {
                if has(text) {
                    Some("text")
                } else if region.as_deref().is_some_and(has) {
                    Some("region")
                } else {
                    None
                }
            }
            Self::Plate { country, text }
            | Self::Address { country, text }
            | Self::Passport { country, text } => {
                first_nul(&[("country", country), ("text", text)])
            }
            Self::Vin { text }
            | Self::Imei { text }
            | Self::Email { text }
            | Self::Iban { text }
            | Self::Cnid { text }
            | Self::Card { text }
            | Self::Org { text } => first_nul(&[("text", text)]),
            Self::Permit { permit_type, text } => {
                first_nul(&[("type", permit_type), ("text", text)])
            }
            Self::Wallet { chain, address } => first_nul(&[("chain", chain), ("address", address)]),
            Self::Handle { platform, handle } => {
                first_nul(&[("platform", platform), ("handle", handle)])
            }
            Self::Geo { .. } => None,
        }
    }

    /// Builds a selector from the `input` object of a token-vectors case (field names of the
    /// spec, section 4). Missing or mistyped fields are errors naming kind and field; a missing
    /// phone `region` means none.
    pub fn from_json(kind: &str, input: &Value) -> Result<Self, NormalizeError> {
        let kind: SelectorKind = kind.parse()?;
        let obj = input
            .as_object()
            .ok_or_else(|| NormalizeError::invalid(kind, "input", "expected a JSON object"))?;
        let f = InputFields { kind, obj };
        Ok(match kind {
            SelectorKind::Person => Self::Person {
                names: f.string_list("names")?,
                dob: f.text("dob")?,
            },
            // `region` is read before `text`: when both are wrong, its error is the one reported.
            SelectorKind::Phone => Self::Phone {
                region: f.optional_text("region")?,
                text: f.text("text")?,
            },
            SelectorKind::Plate => Self::Plate {
                country: f.text("country")?,
                text: f.text("text")?,
            },
            SelectorKind::Vin => Self::Vin {
                text: f.text("text")?,
            },
            SelectorKind::Imei => Self::Imei {
                text: f.text("text")?,
            },
            SelectorKind::Email => Self::Email {
                text: f.text("text")?,
            },
            SelectorKind::Iban => Self::Iban {
                text: f.text("text")?,
            },
            SelectorKind::Wallet => Self::Wallet {
                chain: f.text("chain")?,
                address: f.text("address")?,
            },
            SelectorKind::Handle => Self::Handle {
                platform: f.text("platform")?,
                handle: f.text("handle")?,
            },
            SelectorKind::Address => Self::Address {
                country: f.text("country")?,
                text: f.text("text")?,
            },
            SelectorKind::Geo => Self::Geo {
                lat: f.number("lat")?,
                lng: f.number("lng")?,
            },
            SelectorKind::Cnid => Self::Cnid {
                text: f.text("text")?,
            },
            SelectorKind::Passport => Self::Passport {
                country: f.text("country")?,
                text: f.text("text")?,
            },
            SelectorKind::Permit => Self::Permit {
                permit_type: f.text("type")?,
                text: f.text("text")?,
            },
            SelectorKind::Card => Self::Card {
                text: f.text("text")?,
            },
            SelectorKind::Org => Self::Org {
                text: f.text("text")?,
            },
        })
    }

    /// A selector of `kind` whose main text field is `text` (tests only).
    #[cfg(test)]
    pub(crate) fn sample_with_text(kind: SelectorKind, text: &str) -> Option<Self> {
        let t = text.to_owned();
        Some(match kind {
            SelectorKind::Person => Self::Person {
                names: vec![t],
                dob: "1980-01-01".into(),
            },
            SelectorKind::Phone => Self::Phone {
                text: t,
                region: Some("CN".into()),
            },
            SelectorKind::Plate => Self::Plate {
                country: "CN".into(),
                text: t,
            },
            SelectorKind::Vin => Self::Vin { text: t },
            SelectorKind::Imei => Self::Imei { text: t },
            SelectorKind::Email => Self::Email { text: t },
            SelectorKind::Iban => Self::Iban { text: t },
            SelectorKind::Wallet => Self::Wallet {
                chain: "eth".into(),
                address: t,
            },
            SelectorKind::Handle => Self::Handle {
                platform: "telegram".into(),
                handle: t,
            },
            SelectorKind::Address => Self::Address {
                country: "CN".into(),
                text: t,
            },
            SelectorKind::Geo => return None,
            SelectorKind::Cnid => Self::Cnid { text: t },
            SelectorKind::Passport => Self::Passport {
                country: "CN".into(),
                text: t,
            },
            SelectorKind::Permit => Self::Permit {
                permit_type: "hkmo".into(),
                text: t,
            },
            SelectorKind::Card => Self::Card { text: t },
            SelectorKind::Org => Self::Org { text: t },
        })
    }
}

/// The fields of a token-vectors `input` object, read for one kind: each reader's error names
/// the kind and the field.
struct InputFields<'a> {
    kind: SelectorKind,
    obj: &'a Map<String, Value>,
}

impl InputFields<'_> {
    /// A required string.
    fn text(&self, field: &'static str) -> Result<String, NormalizeError> {
        match self.obj.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.invalid(field, "expected a string")),
            None => Err(self.invalid(field, "missing")),
        }
    }

    /// A string that may be missing or null.
    fn optional_text(&self, field: &'static str) -> Result<Option<String>, NormalizeError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.invalid(field, "expected a string")),
        }
    }

    /// A required list of strings.
    fn string_list(&self, field: &'static str) -> Result<Vec<String>, NormalizeError> {
        let Some(Value::Array(items)) = self.obj.get(field) else {
            return Err(self.invalid(field, "expected a list of strings"));
        };
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.invalid(field, "expected a list of strings"))
    }

    /// A required number.
    fn number(&self, field: &'static str) -> Result<f64, NormalizeError> {
        self.obj
            .get(field)
            .and_then(Value::as_f64)
            .ok_or_else(|| self.invalid(field, "expected a number"))
    }

    fn invalid(&self, field: &'static str, reason: &str) -> NormalizeError {
        NormalizeError::invalid(self.kind, field, reason)
    }
}

fn first_nul(fields: &[(&'static str, &String)]) -> Option<&'static str> {
    fields
        .iter()
        .find(|(_, v)| v.contains('\0'))
        .map(|(name, _)| *name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for kind in SelectorKind::ALL {
            assert_eq!(kind.as_str().parse::<SelectorKind>().unwrap(), kind);
        }
        assert!("Phone".parse::<SelectorKind>().is_err());
        assert!("".parse::<SelectorKind>().is_err());
    }

    #[test]
    fn from_json_reports_bad_fields() {
        let err = Selector::from_json("phone", &serde_json::json!({"text": 5})).unwrap_err();
        assert_eq!(err.to_string(), "phone: text: expected a string");
        let err = Selector::from_json("geo", &serde_json::json!({"lat": "1"})).unwrap_err();
        assert_eq!(err.to_string(), "geo: lat: expected a number");
        assert!(Selector::from_json("ship", &serde_json::json!({})).is_err());
        let err = Selector::from_json("permit", &serde_json::json!({"text": "H1"})).unwrap_err();
        assert_eq!(err.to_string(), "permit: type: missing");
        let ok = Selector::from_json("permit", &serde_json::json!({"type": "tw", "text": "1"}));
        assert_eq!(
            ok.unwrap(),
            Selector::Permit {
                permit_type: "tw".into(),
                text: "1".into()
            }
        );
        let ok = Selector::from_json("phone", &serde_json::json!({"text": "+1"})).unwrap();
        assert_eq!(
            ok,
            Selector::Phone {
                text: "+1".into(),
                region: None
            }
        );
    }
}
