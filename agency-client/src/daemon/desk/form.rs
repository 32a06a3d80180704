//! The selector rows of the register and amend forms: one row per selector (kind, value, the
//! kind's second field, a label), read into control-API selectors and checked by the same
//! normalization as the CLI, each error kept with its row so the page shows it beside the
//! field that caused it.

use std::collections::BTreeMap;

use deconfliction_web::Lang;
use maud::{Markup, html};

use crate::control::pb;
use crate::control::pb::selector::Kind;
use crate::control::selector_from_proto;
use crate::opfile::{MAX_LABEL_CHARS, validate_selector};

/// The kinds a form offers, in the order officers reach for them, with the catalogue key of
/// their second field (none: the value alone).
pub(crate) const KINDS: [(&str, &str, Option<&str>); 16] = [
    ("phone", "kind.phone", Some("desk.field.region")),
    ("person", "kind.person", Some("desk.field.dob")),
    ("cnid", "kind.cnid", None),
    ("plate", "kind.plate", Some("desk.field.country")),
    ("passport", "kind.passport", Some("desk.field.country")),
    ("permit", "kind.permit", Some("desk.field.permit_type")),
    ("card", "kind.card", None),
    ("iban", "kind.iban", None),
    ("email", "kind.email", None),
    ("handle", "kind.handle", Some("desk.field.platform")),
    ("wallet", "kind.wallet", Some("desk.field.chain")),
    ("vin", "kind.vin", None),
    ("imei", "kind.imei", None),
    ("address", "kind.address", Some("desk.field.country")),
    ("geo", "kind.geo", None),
    ("org", "kind.org", None),
];

/// One row as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Row {
    pub kind: String,
    pub value: String,
    pub extra: String,
    pub label: String,
}

impl Row {
    fn is_blank(&self) -> bool {
        self.value.trim().is_empty() && self.extra.trim().is_empty() && self.label.trim().is_empty()
    }
}

/// The rows of a posted form (`kind_0`, `value_0`, `extra_0`, `label_0`, …), blank ones
/// dropped, in row order.
pub(crate) fn rows(fields: &[(String, String)]) -> Vec<Row> {
    let mut rows: BTreeMap<usize, Row> = BTreeMap::new();
    for (name, value) in fields {
        let Some((field, index)) = name.rsplit_once('_') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if index >= 200 {
            continue;
        }
        let row = rows.entry(index).or_default();
        match field {
            "kind" => row.kind = value.clone(),
            "value" => row.value = value.clone(),
            "extra" => row.extra = value.clone(),
            "label" => row.label = value.clone(),
            _ => {}
        }
    }
    rows.into_values().filter(|r| !r.is_blank()).collect()
}

/// A row as a control-API selector, checked by the spec's normalization; the error is the
/// one the CLI would print.
pub(crate) fn selector(lang: Lang, row: &Row) -> Result<pb::Selector, String> {
    let value = row.value.trim().to_owned();
    let extra = row.extra.trim().to_owned();
    if value.is_empty() {
        return Err(lang.t("desk.form.value_missing"));
    }
    let text = || pb::TextSelector {
        text: value.clone(),
    };
    let country = |default: &str| pb::CountryTextSelector {
        country: if extra.is_empty() {
            default.to_owned()
        } else {
            extra.to_ascii_uppercase()
        },
        text: value.clone(),
    };
    let kind = match row.kind.as_str() {
        "phone" => Kind::Phone(pb::PhoneSelector {
            text: value.clone(),
            region: if extra.is_empty() {
                "CN".into()
            } else {
                extra.to_ascii_uppercase()
            },
        }),
        "person" => Kind::Person(pb::PersonSelector {
            names: value
                .split([' ', ',', '，', '、'])
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            dob: extra.clone(),
        }),
        "cnid" => Kind::Cnid(text()),
        "plate" => Kind::Plate(country("CN")),
        "passport" => Kind::Passport(country("CN")),
        "address" => Kind::Address(country("CN")),
        "permit" => Kind::Permit(pb::PermitSelector {
            r#type: extra.clone(),
            text: value.clone(),
        }),
        "card" => Kind::Card(text()),
        "iban" => Kind::Iban(text()),
        "email" => Kind::Email(text()),
        "vin" => Kind::Vin(text()),
        "imei" => Kind::Imei(text()),
        "org" => Kind::Org(text()),
        "handle" => Kind::Handle(pb::HandleSelector {
            platform: extra.clone(),
            handle: value.clone(),
        }),
        "wallet" => Kind::Wallet(pb::WalletSelector {
            chain: extra.clone(),
            address: value.clone(),
        }),
        "geo" => {
            let mut parts = value.split([',', ' ', '，']).filter(|p| !p.is_empty());
            let (Some(lat), Some(lng)) = (parts.next(), parts.next()) else {
                return Err(lang.t("desk.form.geo_format"));
            };
            let (Ok(lat), Ok(lng)) = (lat.parse::<f64>(), lng.parse::<f64>()) else {
                return Err(lang.t("desk.form.geo_format"));
            };
            Kind::Geo(pb::GeoSelector { lat, lng })
        }
        other => return Err(lang.tf("desk.form.unknown_kind", &[("kind", other)])),
    };
    if row.label.chars().count() > MAX_LABEL_CHARS {
        return Err(lang.tf(
            "desk.form.label_long",
            &[("n", &MAX_LABEL_CHARS.to_string())],
        ));
    }
    let selector = pb::Selector {
        id: 0,
        label: row.label.trim().to_owned(),
        kind: Some(kind),
    };
    // The spec's own message (in English) after a line in the page's language.
    let invalid = |detail: String| lang.tf("desk.form.invalid", &[("detail", &detail)]);
    let (parsed, _) = selector_from_proto(&selector).map_err(invalid)?;
    validate_selector(&parsed).map_err(|e| invalid(e.0))?;
    Ok(selector)
}

/// Every row checked: the selectors, or the errors by row index.
pub(crate) fn selectors(
    lang: Lang,
    rows: &[Row],
) -> Result<Vec<pb::Selector>, BTreeMap<usize, String>> {
    let mut out = Vec::new();
    let mut errors = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        match selector(lang, row) {
            Ok(s) => out.push(s),
            Err(e) => {
                errors.insert(i, e);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The rows as form fields (with `blank` empty rows after them), each error under its row.
pub(crate) fn render(
    lang: Lang,
    rows: &[Row],
    errors: &BTreeMap<usize, String>,
    blank: usize,
) -> Markup {
    let mut all = rows.to_vec();
    all.extend(std::iter::repeat_n(
        Row {
            kind: "phone".into(),
            ..Row::default()
        },
        blank,
    ));
    html! {
        table.selectors #selector-rows {
            thead { tr {
                th { (lang.t("desk.field.kind")) }
                th { (lang.t("desk.field.value")) }
                th { (lang.t("desk.field.extra")) }
                th { (lang.t("desk.field.label")) }
            } }
            tbody {
                @for (i, row) in all.iter().enumerate() {
                    tr {
                        td { select name={ "kind_" (i) } id={ "kind_" (i) } {
                            @for (k, key, _) in KINDS { option value=(k) selected[row.kind == k] { (lang.t(key)) } }
                        } }
                        td {
                            input type="text" name={ "value_" (i) } id={ "value_" (i) } value=(row.value) aria-invalid=[errors.contains_key(&i).then_some("true")];
                            @if let Some(e) = errors.get(&i) { div.field-error id={ "error_" (i) } role="alert" { (e) } }
                        }
                        td { input type="text" name={ "extra_" (i) } id={ "extra_" (i) } value=(row.extra); }
                        td { input type="text" name={ "label_" (i) } id={ "label_" (i) } value=(row.label); }
                    }
                }
            }
        }
        details.hint {
            summary { (lang.t("desk.form.help_title")) }
            ul { @for (_, key, extra) in KINDS { @if let Some(extra) = extra { li { (lang.t(key)) ": " (lang.t(extra)) } } } }
            p { (lang.t("desk.form.help_text")) }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(kind: &str, value: &str, extra: &str) -> Row {
        Row {
            kind: kind.into(),
            value: value.into(),
            extra: extra.into(),
            label: String::new(),
        }
    }

    #[test]
    fn rows_are_read_in_order_and_blank_ones_dropped() {
        let fields: Vec<(String, String)> = [
            ("kind_1", "plate"),
            ("value_1", "粤B12345"),
            ("kind_0", "phone"),
            ("value_0", "138 0013 8000"),
            ("kind_2", "phone"),
            ("value_2", ""),
            ("csrf", "x"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let rows = rows(&fields);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].kind, "phone");
        assert_eq!(rows[1].value, "粤B12345");
    }

    #[test]
    fn each_bad_row_keeps_its_own_error() {
        let rows = [
            row("phone", "138 0013 8000", ""),
            row("phone", "12", ""),
            row("cnid", "11010519491231002X", ""),
            row("geo", "north", ""),
            row("person", "张伟", "1985-03-12"),
        ];
        let errors = selectors(Lang::En, &rows).unwrap_err();
        assert_eq!(
            errors.keys().copied().collect::<Vec<_>>(),
            vec![1, 3],
            "{errors:?}"
        );
        let ok = selectors(
            Lang::En,
            &[rows[0].clone(), rows[2].clone(), rows[4].clone()],
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
    }
}
