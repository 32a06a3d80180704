//! Selectors as JSON objects, `{ "kind": "phone", "text": "...", "region": "CN" }`: the field
//! names of the token spec, plus an optional `label`. The same shape is used in operation files,
//! in the daemon's store and in its alert sinks.

use serde_json::{Map, Value, json};
use token_spec::normalize::{Selector, SelectorKind};

use super::{SpecError, reject_unknown};

/// The input fields of `kind`, as named in the token spec.
pub fn selector_fields(kind: SelectorKind) -> &'static [&'static str] {
    match kind {
        SelectorKind::Person => &["names", "dob"],
        SelectorKind::Phone => &["text", "region"],
        SelectorKind::Plate | SelectorKind::Address | SelectorKind::Passport => {
            &["country", "text"]
        }
        SelectorKind::Vin
        | SelectorKind::Imei
        | SelectorKind::Email
        | SelectorKind::Iban
        | SelectorKind::Cnid
        | SelectorKind::Card
        | SelectorKind::Org => &["text"],
        SelectorKind::Permit => &["type", "text"],
        SelectorKind::Wallet => &["chain", "address"],
        SelectorKind::Handle => &["platform", "handle"],
        SelectorKind::Geo => &["lat", "lng"],
    }
}

/// Parses `{kind, label?, ...fields}`; unknown fields are refused (a typo would otherwise
/// silently drop, say, a phone's region).
pub fn selector_from_json(item: &Value) -> Result<(Selector, String), SpecError> {
    let obj = item
        .as_object()
        .ok_or_else(|| SpecError("expected an object with a `kind`".into()))?;
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(_) => return Err(SpecError("kind: expected a string".into())),
        None => {
            return Err(SpecError(
                "kind: missing (phone, person, plate, ...)".into(),
            ));
        }
    };
    let parsed: SelectorKind = kind
        .parse()
        .map_err(|e: token_spec::normalize::UnknownKind| {
            SpecError(format!(
                "{e} (expected one of: {})",
                SelectorKind::ALL.map(SelectorKind::as_str).join(", ")
            ))
        })?;
    let mut allowed = vec!["kind", "label"];
    allowed.extend_from_slice(selector_fields(parsed));
    reject_unknown(obj, &format!("{kind} selector"), &allowed)?;
    let label = match obj.get("label") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(SpecError("label: expected a string".into())),
    };
    let fields: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "kind" && k.as_str() != "label")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let selector =
        Selector::from_json(kind, &Value::Object(fields)).map_err(|e| SpecError(e.to_string()))?;
    Ok((selector, label))
}

/// `{kind, ...fields}` (and `label` when not empty): the inverse of [`selector_from_json`].
pub fn selector_to_json(selector: &Selector, label: &str) -> Value {
    let mut v = match selector {
        Selector::Person { names, dob } => json!({"names": names, "dob": dob}),
        Selector::Phone { text, region } => match region {
            Some(r) => json!({"text": text, "region": r}),
            None => json!({"text": text}),
        },
        Selector::Plate { country, text }
        | Selector::Address { country, text }
        | Selector::Passport { country, text } => json!({"country": country, "text": text}),
        Selector::Vin { text }
        | Selector::Imei { text }
        | Selector::Email { text }
        | Selector::Iban { text }
        | Selector::Cnid { text }
        | Selector::Card { text }
        | Selector::Org { text } => json!({"text": text}),
        Selector::Permit { permit_type, text } => json!({"type": permit_type, "text": text}),
        Selector::Wallet { chain, address } => json!({"chain": chain, "address": address}),
        Selector::Handle { platform, handle } => json!({"platform": platform, "handle": handle}),
        Selector::Geo { lat, lng } => json!({"lat": lat, "lng": lng}),
    };
    if let Value::Object(map) = &mut v {
        map.insert(
            "kind".into(),
            Value::String(selector.kind().as_str().into()),
        );
        if !label.is_empty() {
            map.insert("label".into(), Value::String(label.into()));
        }
    }
    v
}

/// A short human-readable rendering, e.g. `phone 138 0013 8000 (CN)`. Plaintext: for the
/// agency's own screens and files only, never for logs.
pub fn describe(selector: &Selector) -> String {
    match selector {
        Selector::Person { names, dob } => format!("person {} (born {dob})", names.join(" ")),
        Selector::Phone { text, region } => match region {
            Some(r) if !r.is_empty() => format!("phone {text} ({r})"),
            _ => format!("phone {text}"),
        },
        Selector::Plate { country, text } => format!("plate {country} {text}"),
        Selector::Address { country, text } => format!("address {country} {text}"),
        Selector::Vin { text } => format!("vin {text}"),
        Selector::Imei { text } => format!("imei {text}"),
        Selector::Email { text } => format!("email {text}"),
        Selector::Iban { text } => format!("iban {text}"),
        Selector::Wallet { chain, address } => format!("wallet {chain} {address}"),
        Selector::Handle { platform, handle } => format!("handle {platform} {handle}"),
        Selector::Geo { lat, lng } => format!("geo {lat},{lng}"),
        Selector::Cnid { text } => format!("resident ID {text}"),
        Selector::Passport { country, text } => format!("passport {country} {text}"),
        Selector::Permit { permit_type, text } => {
            let what = match permit_type.trim().to_ascii_lowercase().as_str() {
                "hkmo" => "Hong Kong/Macao residents' permit",
                "tw" => "Taiwan residents' permit",
                "cnhkmo" => "exit-entry permit to Hong Kong/Macao",
                _ => "permit",
            };
            format!("{what} {text}")
        }
        Selector::Card { text } => format!("bank card {text}"),
        Selector::Org { text } => format!("credit code {text}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let items = [
            json!({"kind": "person", "names": ["Zhang", "Wei"], "dob": "1985-03-12"}),
            json!({"kind": "phone", "text": "138 0013 8000", "region": "CN", "label": "m"}),
            json!({"kind": "phone", "text": "+86 138 0013 8000"}),
            json!({"kind": "plate", "country": "CN", "text": "粤B12345"}),
            json!({"kind": "vin", "text": "1M8GDM9AXKP042788"}),
            json!({"kind": "wallet", "chain": "eth", "address": "0xabc"}),
            json!({"kind": "handle", "platform": "telegram", "handle": "@x"}),
            json!({"kind": "geo", "lat": 25.5, "lng": 102.25}),
        ];
        for item in items {
            let (sel, label) = selector_from_json(&item).unwrap();
            assert_eq!(selector_to_json(&sel, &label), item);
            assert!(describe(&sel).starts_with(sel.kind().as_str()));
        }
    }

    #[test]
    fn refuses_unknown_fields_and_kinds() {
        let err = selector_from_json(&json!({"kind": "phone", "regoin": "CN"})).unwrap_err();
        assert!(err.0.contains("unknown field `regoin`"), "{err}");
        let err = selector_from_json(&json!({"text": "x"})).unwrap_err();
        assert!(err.0.contains("kind: missing"), "{err}");
        let err = selector_from_json(&json!({"kind": "vin"})).unwrap_err();
        assert!(err.0.starts_with("vin: text"), "{err}");
    }
}
