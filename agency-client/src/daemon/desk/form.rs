//! The selector rows of the register and amend forms: one row per selector (kind, value, the
//! kind's second field, a label), read by the CLI's own selector parser and checked by the same
//! normalization, each error kept with its row so the page shows it beside the
//! field that caused it.

use std::collections::BTreeMap;

use deconfliction_web::Lang;
use maud::{Markup, html};

use crate::control::{pb, selector_to_proto};
use crate::opfile::{MAX_LABEL_CHARS, parse_selector_flag};

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

/// A row as a control-API selector. The row is written as the CLI's `KIND=VALUE` word and
/// read by the CLI's own parser, so the desk and `deconflict register` take the same
/// selectors and refuse them with the same words (the spec's, after a line in the page's
/// language).
pub(crate) fn selector(lang: Lang, row: &Row) -> Result<pb::Selector, String> {
    let value = row.value.trim();
    let extra = row.extra.trim();
    if value.is_empty() {
        return Err(lang.t("desk.form.value_missing"));
    }
    if !KINDS.iter().any(|(k, ..)| *k == row.kind) {
        return Err(lang.tf("desk.form.unknown_kind", &[("kind", &row.kind)]));
    }
    if row.label.chars().count() > MAX_LABEL_CHARS {
        return Err(lang.tf(
            "desk.form.label_long",
            &[("n", &MAX_LABEL_CHARS.to_string())],
        ));
    }
    let or_cn = |v: &str| {
        if v.is_empty() {
            "CN".to_owned()
        } else {
            v.to_ascii_uppercase()
        }
    };
    let word = match row.kind.as_str() {
        // Han names are often typed with Chinese commas between the parts.
        "person" => format!("person={}/{extra}", value.replace([',', '，', '、'], " ")),
        "plate" | "passport" | "address" => format!("{}={}/{value}", row.kind, or_cn(extra)),
        "permit" | "handle" | "wallet" => format!("{}={extra}/{value}", row.kind),
        "geo" => {
            let mut parts = value.split([',', ' ', '，']).filter(|p| !p.is_empty());
            match (parts.next(), parts.next(), parts.next()) {
                (Some(lat), Some(lng), None) => format!("geo={lat},{lng}"),
                _ => return Err(lang.t("desk.form.geo_format")),
            }
        }
        kind => format!("{kind}={value}"),
    };
    let spec = parse_selector_flag(&word, Some(&or_cn(extra))).map_err(|e| {
        if row.kind == "geo" {
            lang.t("desk.form.geo_format")
        } else {
            lang.tf("desk.form.invalid", &[("detail", &e.0)])
        }
    })?;
    Ok(selector_to_proto(&spec.selector, 0, row.label.trim()))
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
