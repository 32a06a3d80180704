//! The agency's own things in the page's words: a selector ("电话 138 0013 8000"), an alert's
//! kind, an operation's sync state, a match's outcome.

use deconfliction_proto::v1;
use deconfliction_web::Lang;

use crate::control::pb;
use crate::control::pb::selector::Kind;

/// The catalogue key of a selector's kind.
pub(crate) fn kind_key(kind: Option<&Kind>) -> &'static str {
    match kind {
        Some(Kind::Person(_)) => "kind.person",
        Some(Kind::Phone(_)) => "kind.phone",
        Some(Kind::Plate(_)) => "kind.plate",
        Some(Kind::Vin(_)) => "kind.vin",
        Some(Kind::Imei(_)) => "kind.imei",
        Some(Kind::Email(_)) => "kind.email",
        Some(Kind::Iban(_)) => "kind.iban",
        Some(Kind::Wallet(_)) => "kind.wallet",
        Some(Kind::Handle(_)) => "kind.handle",
        Some(Kind::Address(_)) => "kind.address",
        Some(Kind::Geo(_)) => "kind.geo",
        Some(Kind::Cnid(_)) => "kind.cnid",
        Some(Kind::Passport(_)) => "kind.passport",
        Some(Kind::Permit(_)) => "kind.permit",
        Some(Kind::Card(_)) => "kind.card",
        Some(Kind::Org(_)) => "kind.org",
        None => "kind.other",
    }
}

/// What the officer typed, without the kind: `138 0013 8000 (CN)`, `张伟 · 1985-03-12`.
pub(crate) fn value(sel: &pb::Selector) -> String {
    match &sel.kind {
        Some(Kind::Person(p)) => format!("{} · {}", p.names.join(" "), p.dob),
        Some(Kind::Phone(p)) if !p.region.is_empty() => format!("{} ({})", p.text, p.region),
        Some(Kind::Phone(p)) => p.text.clone(),
        Some(Kind::Plate(c) | Kind::Address(c) | Kind::Passport(c)) => {
            format!("{} {}", c.country, c.text)
        }
        Some(
            Kind::Vin(t)
            | Kind::Imei(t)
            | Kind::Email(t)
            | Kind::Iban(t)
            | Kind::Cnid(t)
            | Kind::Card(t)
            | Kind::Org(t),
        ) => t.text.clone(),
        Some(Kind::Wallet(w)) => format!("{} {}", w.chain, w.address),
        Some(Kind::Handle(h)) => format!("{} {}", h.platform, h.handle),
        Some(Kind::Permit(p)) => format!("{} {}", p.r#type, p.text),
        Some(Kind::Geo(g)) => format!("{:.5}, {:.5}", g.lat, g.lng),
        None => String::new(),
    }
}

/// A selector in words: kind and value, and the officer's label when there is one.
pub(crate) fn selector(lang: Lang, sel: &pb::Selector) -> String {
    let mut text = format!("{} {}", lang.t(kind_key(sel.kind.as_ref())), value(sel));
    if !sel.label.is_empty() {
        text.push_str(&format!(" — {}", sel.label));
    }
    text
}

pub(crate) fn alert_kind(lang: Lang, kind: i32) -> String {
    use pb::AlertKind as K;
    let key = match K::try_from(kind).unwrap_or(K::Unspecified) {
        K::Match => "desk.alert.match",
        K::Checked => "desk.alert.checked",
        K::Message => "desk.alert.message",
        K::Contact => "desk.alert.contact",
        K::MatchState => "desk.alert.match_state",
        K::AlertsPurged => "desk.alert.purged",
        K::DrillHalted => "desk.alert.drill_halted",
        K::DrillEnded => "desk.alert.drill_ended",
        K::Unspecified => "kind.other",
    };
    lang.t(key)
}

pub(crate) fn sync(lang: Lang, sync: i32) -> String {
    use pb::SyncState as S;
    let key = match S::try_from(sync).unwrap_or(S::Unspecified) {
        S::Queued => "desk.sync.queued",
        S::Synced => "desk.sync.synced",
        S::Rejected => "desk.sync.rejected",
        S::Unspecified => "desk.sync.queued",
    };
    lang.t(key)
}

/// The outcomes an officer can resolve with, as (number, words).
pub(crate) fn outcomes(lang: Lang) -> Vec<(i32, String)> {
    use v1::MatchOutcome as O;
    [
        (O::Deconflicted, "outcome.deconflicted"),
        (O::JointOperation, "outcome.joint_operation"),
        (O::NoConflict, "outcome.no_conflict"),
        (O::Other, "outcome.other"),
    ]
    .into_iter()
    .map(|(o, key)| (o as i32, lang.t(key)))
    .collect()
}

pub(crate) fn outcome(lang: Lang, outcome: i32) -> String {
    outcomes(lang)
        .into_iter()
        .find(|(o, _)| *o == outcome)
        .map(|(_, w)| w)
        .unwrap_or_else(|| lang.t("outcome.unspecified"))
}
