//! Wire selectors (`deconfliction.agent.v1.Selector`) ⇄ [`Selector`], and kinds ⇄ the broker's
//! `SelectorKind`.

use deconfliction_proto::v1;
use token_spec::normalize::{Form, Selector, SelectorKind};

use super::pb;
use super::pb::selector::Kind;
use crate::opfile::OperationSpec;

/// The broker's wire kind of a selector kind.
pub fn kind_to_wire(kind: SelectorKind) -> v1::SelectorKind {
    match kind {
        SelectorKind::Person => v1::SelectorKind::Person,
        SelectorKind::Phone => v1::SelectorKind::Phone,
        SelectorKind::Plate => v1::SelectorKind::Plate,
        SelectorKind::Vin => v1::SelectorKind::Vin,
        SelectorKind::Imei => v1::SelectorKind::Imei,
        SelectorKind::Email => v1::SelectorKind::Email,
        SelectorKind::Iban => v1::SelectorKind::Iban,
        SelectorKind::Wallet => v1::SelectorKind::Wallet,
        SelectorKind::Handle => v1::SelectorKind::Handle,
        SelectorKind::Address => v1::SelectorKind::Address,
        SelectorKind::Geo => v1::SelectorKind::Geo,
        SelectorKind::Cnid => v1::SelectorKind::Cnid,
        SelectorKind::Passport => v1::SelectorKind::Passport,
        SelectorKind::Permit => v1::SelectorKind::Permit,
        SelectorKind::Card => v1::SelectorKind::Card,
        SelectorKind::Org => v1::SelectorKind::Org,
    }
}

/// The wire kind of one canonical form: a person's Pinyin form has a kind of its own, so that
/// the owner's alerts can say which form matched.
pub fn form_kind_to_wire(kind: SelectorKind, form: Form) -> v1::SelectorKind {
    match (kind, form) {
        (SelectorKind::Person, Form::Pinyin) => v1::SelectorKind::PersonPinyin,
        _ => kind_to_wire(kind),
    }
}

/// The selector kind of a broker wire kind (`None` for UNSPECIFIED or unknown numbers); a
/// person's Pinyin form is a person.
pub fn kind_from_wire(kind: i32) -> Option<SelectorKind> {
    if kind == v1::SelectorKind::PersonPinyin as i32 {
        return Some(SelectorKind::Person);
    }
    SelectorKind::ALL
        .into_iter()
        .find(|k| kind_to_wire(*k) as i32 == kind)
}

/// The wire form of a selector with its local id and label.
pub fn selector_to_proto(selector: &Selector, id: u64, label: &str) -> pb::Selector {
    let text = |t: &String| pb::TextSelector { text: t.clone() };
    let ct = |country: &String, text: &String| pb::CountryTextSelector {
        country: country.clone(),
        text: text.clone(),
    };
    let kind = match selector {
        Selector::Person { names, dob } => Kind::Person(pb::PersonSelector {
            names: names.clone(),
            dob: dob.clone(),
        }),
        Selector::Phone { text, region } => Kind::Phone(pb::PhoneSelector {
            text: text.clone(),
            region: region.clone().unwrap_or_default(),
        }),
        Selector::Plate { country, text } => Kind::Plate(ct(country, text)),
        Selector::Address { country, text } => Kind::Address(ct(country, text)),
        Selector::Vin { text: t } => Kind::Vin(text(t)),
        Selector::Imei { text: t } => Kind::Imei(text(t)),
        Selector::Email { text: t } => Kind::Email(text(t)),
        Selector::Iban { text: t } => Kind::Iban(text(t)),
        Selector::Wallet { chain, address } => Kind::Wallet(pb::WalletSelector {
            chain: chain.clone(),
            address: address.clone(),
        }),
        Selector::Handle { platform, handle } => Kind::Handle(pb::HandleSelector {
            platform: platform.clone(),
            handle: handle.clone(),
        }),
        Selector::Geo { lat, lng } => Kind::Geo(pb::GeoSelector {
            lat: *lat,
            lng: *lng,
        }),
        Selector::Cnid { text: t } => Kind::Cnid(text(t)),
        Selector::Passport { country, text } => Kind::Passport(ct(country, text)),
        Selector::Permit { permit_type, text } => Kind::Permit(pb::PermitSelector {
            r#type: permit_type.clone(),
            text: text.clone(),
        }),
        Selector::Card { text: t } => Kind::Card(text(t)),
        Selector::Org { text: t } => Kind::Org(text(t)),
    };
    pb::Selector {
        id,
        label: label.to_owned(),
        kind: Some(kind),
    }
}

/// The selector and label of a wire selector (not yet normalized). An empty phone region
/// means none.
pub fn selector_from_proto(sel: &pb::Selector) -> Result<(Selector, String), String> {
    let kind = sel
        .kind
        .as_ref()
        .ok_or_else(|| "selector without a kind (set one of person, phone, ...)".to_string())?;
    let selector = match kind {
        Kind::Person(p) => Selector::Person {
            names: p.names.clone(),
            dob: p.dob.clone(),
        },
        Kind::Phone(p) => Selector::Phone {
            text: p.text.clone(),
            region: (!p.region.is_empty()).then(|| p.region.clone()),
        },
        Kind::Plate(p) => Selector::Plate {
            country: p.country.clone(),
            text: p.text.clone(),
        },
        Kind::Address(p) => Selector::Address {
            country: p.country.clone(),
            text: p.text.clone(),
        },
        Kind::Vin(t) => Selector::Vin {
            text: t.text.clone(),
        },
        Kind::Imei(t) => Selector::Imei {
            text: t.text.clone(),
        },
        Kind::Email(t) => Selector::Email {
            text: t.text.clone(),
        },
        Kind::Iban(t) => Selector::Iban {
            text: t.text.clone(),
        },
        Kind::Wallet(w) => Selector::Wallet {
            chain: w.chain.clone(),
            address: w.address.clone(),
        },
        Kind::Handle(h) => Selector::Handle {
            platform: h.platform.clone(),
            handle: h.handle.clone(),
        },
        Kind::Geo(g) => Selector::Geo {
            lat: g.lat,
            lng: g.lng,
        },
        Kind::Cnid(t) => Selector::Cnid {
            text: t.text.clone(),
        },
        Kind::Passport(p) => Selector::Passport {
            country: p.country.clone(),
            text: p.text.clone(),
        },
        Kind::Permit(p) => Selector::Permit {
            permit_type: p.r#type.clone(),
            text: p.text.clone(),
        },
        Kind::Card(t) => Selector::Card {
            text: t.text.clone(),
        },
        Kind::Org(t) => Selector::Org {
            text: t.text.clone(),
        },
    };
    Ok((selector, sel.label.clone()))
}

/// A broker window from `[start, end)`.
pub fn window_to_wire((start, end): (i64, i64)) -> v1::Window {
    v1::Window {
        start_unix: start,
        end_unix: end,
    }
}

/// The control request registering a parsed operation file.
pub fn operation_spec_to_request(spec: &OperationSpec, wait_ms: u32) -> pb::RegisterRequest {
    pb::RegisterRequest {
        operation_id: spec.operation_id.clone().unwrap_or_default(),
        case_reference: spec.case_reference.clone(),
        window: Some(window_to_wire(spec.window)),
        selectors: spec
            .selectors
            .iter()
            .map(|s| selector_to_proto(&s.selector, 0, &s.label))
            .collect(),
        wait_ms,
        source: String::new(),
        release_to: spec.release_to.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in SelectorKind::ALL {
            assert_ne!(
                kind_to_wire(kind),
                v1::SelectorKind::Unspecified,
                "{kind:?}"
            );
            assert_eq!(kind_from_wire(kind_to_wire(kind) as i32), Some(kind));
        }
        assert_eq!(kind_from_wire(0), None);
        let pinyin = form_kind_to_wire(SelectorKind::Person, Form::Pinyin);
        assert_eq!(pinyin, v1::SelectorKind::PersonPinyin);
        assert_eq!(kind_from_wire(pinyin as i32), Some(SelectorKind::Person));
        assert_eq!(
            form_kind_to_wire(SelectorKind::Person, Form::Written),
            v1::SelectorKind::Person
        );
    }

    #[test]
    fn selectors_round_trip() {
        let sels = [
            Selector::Phone {
                text: "138".into(),
                region: None,
            },
            Selector::Person {
                names: vec!["A".into()],
                dob: "1980-01-01".into(),
            },
            Selector::Geo { lat: 1.5, lng: 2.5 },
            Selector::Handle {
                platform: "telegram".into(),
                handle: "x".into(),
            },
            Selector::Cnid {
                text: "110105491231002".into(),
            },
            Selector::Passport {
                country: "CN".into(),
                text: "E12345678".into(),
            },
            Selector::Permit {
                permit_type: "hkmo".into(),
                text: "H1234567801".into(),
            },
            Selector::Card {
                text: "6222 0200 0000 0000 000".into(),
            },
            Selector::Org {
                text: "91350100M000100Y43".into(),
            },
        ];
        for s in sels {
            let wire = selector_to_proto(&s, 7, "lbl");
            assert_eq!(wire.id, 7);
            assert_eq!(selector_from_proto(&wire).unwrap(), (s, "lbl".into()));
        }
        assert!(selector_from_proto(&pb::Selector::default()).is_err());
    }
}
