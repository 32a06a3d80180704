//! The catalogue's names for what the broker answers in numbers: selector kinds, match
//! states and outcomes, roles; and a match's state in one phrase, as a watch officer asks
//! it ("has everyone been told?").

use deconfliction_proto::v1;
use deconfliction_web::Lang;
use maud::{Markup, html};

pub(crate) fn kind(lang: Lang, kind: i32) -> String {
    use v1::SelectorKind as K;
    let key = match K::try_from(kind).unwrap_or(K::Unspecified) {
        K::Unspecified => "kind.other",
        K::Person => "kind.person",
        K::PersonPinyin => "kind.person_pinyin",
        K::Phone => "kind.phone",
        K::Plate => "kind.plate",
        K::Vin => "kind.vin",
        K::Imei => "kind.imei",
        K::Email => "kind.email",
        K::Iban => "kind.iban",
        K::Wallet => "kind.wallet",
        K::Handle => "kind.handle",
        K::Address => "kind.address",
        K::Geo => "kind.geo",
        K::Cnid => "kind.cnid",
        K::Passport => "kind.passport",
        K::Permit => "kind.permit",
        K::Card => "kind.card",
        K::Org => "kind.org",
    };
    lang.t(key)
}

pub(crate) fn outcome(lang: Lang, outcome: i32) -> String {
    use v1::MatchOutcome as O;
    let key = match O::try_from(outcome).unwrap_or(O::Unspecified) {
        O::Unspecified => "outcome.unspecified",
        O::Deconflicted => "outcome.deconflicted",
        O::JointOperation => "outcome.joint_operation",
        O::NoConflict => "outcome.no_conflict",
        O::Other => "outcome.other",
    };
    lang.t(key)
}

pub(crate) fn role(lang: Lang, role: i32) -> String {
    use v1::Role as R;
    let key = match R::try_from(role).unwrap_or(R::Unspecified) {
        R::Unspecified | R::Agency => "role.agency",
        R::WatchCentre => "role.watch_centre",
        R::Admin => "role.admin",
        R::TokenService => "role.token_service",
    };
    lang.t(key)
}

pub(crate) fn is_resolved(m: &v1::MatchMetadata) -> bool {
    m.state == v1::MatchState::Resolved as i32
}

/// The furthest a match has come, in one phrase: resolved (with its outcome), cards
/// disclosed, messages exchanged, seen by both sides, seen by one, or only created.
pub(crate) fn state(lang: Lang, m: &v1::MatchMetadata) -> String {
    if is_resolved(m) {
        return lang.tf("state.resolved", &[("outcome", &outcome(lang, m.outcome))]);
    }
    let p = &m.progress;
    let any = |f: fn(&v1::MatchProgress) -> bool| p.iter().any(f);
    let all = |f: fn(&v1::MatchProgress) -> bool| !p.is_empty() && p.iter().all(f);
    let key = if any(|s| s.disclosed_unix > 0) {
        "state.disclosed"
    } else if any(|s| s.messages > 0) {
        "state.messages"
    } else if all(|s| s.seen_unix > 0 || s.acknowledged_unix > 0) {
        "state.seen_both"
    } else if any(|s| s.seen_unix > 0 || s.acknowledged_unix > 0) {
        "state.seen_one"
    } else {
        "state.created"
    };
    lang.t(key)
}

/// One side's steps as badges: seen, acknowledged, messages, card, resolved.
pub(crate) fn side_badges(lang: Lang, side: &v1::MatchProgress) -> Markup {
    let step = |done: bool, key: &str| {
        html! { span class={ "badge " (if done { "ok" } else { "off" }) } { (lang.t(key)) } }
    };
    html! {
        (step(side.seen_unix > 0, "progress.seen"))
        (step(side.acknowledged_unix > 0, "progress.acknowledged"))
        @if side.messages > 0 {
            span.badge.ok { (lang.tf("progress.messages_n", &[("n", &side.messages.to_string())])) }
        } @else {
            (step(false, "progress.messages"))
        }
        (step(side.disclosed_unix > 0, "progress.disclosed"))
        (step(side.resolved_unix > 0, "progress.resolved"))
    }
}
