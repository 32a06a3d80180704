//! The conflict queue: every unresolved match, the ones about to become real first, with the
//! two agencies, what matched, the overlap of their windows, a countdown to the earlier
//! start, how far each side has come and who in the watch centre owns it.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use deconfliction_proto::v1;
use deconfliction_web::Lang;
use deconfliction_web::auth::Site;
use deconfliction_web::clock::{countdown, span};
use deconfliction_web::layout;
use maud::{Markup, html};

use super::link::Snapshot;
use super::{Shared, State as Console, words};

/// Resolved matches shown below the queue: those resolved within this long.
const RECENTLY_RESOLVED_SECS: i64 = 24 * 3600;

/// Whether an unresolved match starts (or started) within the escalation horizon.
pub(crate) fn due(console: &Console, m: &v1::MatchMetadata, now: i64) -> bool {
    !words::is_resolved(m)
        && m.earliest_start_unix > 0
        && m.earliest_start_unix - now <= console.escalate_secs
}

/// The unresolved matches in the order an officer works them: due for escalation first, then
/// escalated by an officer, then by the earlier start, then by age.
pub(crate) fn ordered<'a>(
    console: &Console,
    s: &'a Snapshot,
    now: i64,
) -> Vec<&'a v1::MatchMetadata> {
    let mut open: Vec<_> = s
        .matches
        .iter()
        .filter(|m| !words::is_resolved(m))
        .collect();
    open.sort_by_key(|m| {
        let escalated = m.coordination.as_ref().is_some_and(|c| c.escalated);
        let start = if m.earliest_start_unix > 0 {
            m.earliest_start_unix
        } else {
            i64::MAX
        };
        (!due(console, m, now), !escalated, start, m.created_unix)
    });
    open
}

fn agencies(s: &Snapshot, m: &v1::MatchMetadata) -> Markup {
    html! {
        @for (i, a) in m.agency_ids.iter().enumerate() {
            @if i > 0 { " ⇄ " }
            span title=(a) { (s.agency_name(a)) }
        }
    }
}

/// The queue table (a live region).
pub(crate) fn queue_region(console: &Console, lang: Lang, s: &Snapshot, now: i64) -> Markup {
    let open = ordered(console, s, now);
    let due_count = open.iter().filter(|m| due(console, m, now)).count();
    let unclaimed = open
        .iter()
        .filter(|m| {
            m.coordination
                .as_ref()
                .is_none_or(|c| c.claimed_by.is_empty())
        })
        .count();
    html! {
        div.cards {
            div.card { div.muted { (lang.t("console.queue.open")) } div.big #open-count { (open.len()) } }
            div.card { div.muted { (lang.t("console.queue.due")) } div.big { (due_count) } }
            div.card { div.muted { (lang.t("console.queue.unclaimed")) } div.big { (unclaimed) } }
        }
        @if open.is_empty() {
            p.muted #queue-empty { (lang.t("console.queue.empty")) }
        } @else {
            table #queue-table {
                thead { tr {
                    th { (lang.t("console.queue.starts")) }
                    th { (lang.t("console.queue.agencies")) }
                    th { (lang.t("console.queue.kinds")) }
                    th { (lang.t("console.queue.overlap")) }
                    th { (lang.t("console.queue.state")) }
                    th { (lang.t("console.queue.owner")) }
                    th { (lang.t("console.queue.age")) }
                } }
                tbody {
                    @for m in &open {
                        (row(console, lang, s, m, now))
                    }
                }
            }
        }
    }
}

fn row(console: &Console, lang: Lang, s: &Snapshot, m: &v1::MatchMetadata, now: i64) -> Markup {
    let is_due = due(console, m, now);
    let coordination = m.coordination.clone().unwrap_or_default();
    let class = if is_due {
        Some("escalate")
    } else if coordination.escalated {
        Some("flagged")
    } else {
        None
    };
    html! {
        tr class=[class] data-match=(m.match_id) {
            td {
                @if is_due { span.badge.danger { (lang.t("console.queue.escalate")) } br; }
                @if coordination.escalated { span.badge.warn { (lang.t("console.queue.escalated")) } br; }
                @if m.earliest_start_unix > 0 {
                    strong { (countdown(lang, m.earliest_start_unix, now)) }
                    br; span.muted { (console.clock.datetime(m.earliest_start_unix)) }
                } @else { span.muted { "—" } }
            }
            td { a href={ "/matches/" (m.match_id) } { (agencies(s, m)) } }
            td { @for k in &m.kinds { span.badge { (words::kind(lang, *k)) } } }
            td {
                @if let Some(w) = &m.overlap {
                    (console.clock.datetime(w.start_unix)) br; "→ " (console.clock.datetime(w.end_unix))
                } @else { span.muted { "—" } }
            }
            td {
                strong { (words::state(lang, m)) }
                @for side in &m.progress {
                    div { span.muted { (s.agency_name(&side.agency_id)) ": " } (words::side_badges(lang, side)) }
                }
            }
            td {
                @if coordination.claimed_by.is_empty() {
                    span.muted { (lang.t("console.queue.nobody")) }
                } @else { (coordination.claimed_by) }
                @if !coordination.notes.is_empty() {
                    br; span.muted { (lang.tf("console.queue.notes_n", &[("n", &coordination.notes.len().to_string())])) }
                }
            }
            td { (span(lang, now - m.created_unix)) }
        }
    }
}

/// Matches resolved within the last day (a live region).
pub(crate) fn resolved_region(console: &Console, lang: Lang, s: &Snapshot, now: i64) -> Markup {
    let mut recent: Vec<_> = s
        .matches
        .iter()
        .filter(|m| words::is_resolved(m) && now - m.updated_unix <= RECENTLY_RESOLVED_SECS)
        .collect();
    recent.sort_by_key(|m| std::cmp::Reverse(m.updated_unix));
    html! {
        @if recent.is_empty() {
            p.muted { (lang.t("console.queue.none_resolved")) }
        } @else {
            table { tbody {
                @for m in recent {
                    tr data-match=(m.match_id) {
                        td { a href={ "/matches/" (m.match_id) } { (agencies(s, m)) } }
                        td { (words::state(lang, m)) }
                        td { (console.clock.datetime(m.updated_unix)) }
                    }
                }
            } }
        }
    }
}

pub(crate) async fn page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let (ctx, _session) = match state.gate.require(&headers, "/") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let snapshot = state.snapshot.borrow().clone();
    let now = super::now();
    let mut shell = state.shell(&ctx, lang.t("console.queue.title"), "/");
    shell.live = Some("/events?view=queue".to_owned());
    let body = html! {
        p.hint { (lang.tf("console.queue.hint", &[("hours", &(state.escalate_secs / 3600).to_string()), ("zone", &state.clock.zone())])) }
        div #queue { (queue_region(&state, lang, &snapshot, now)) }
        h2 { (lang.t("console.queue.recently_resolved")) }
        div #resolved { (resolved_region(&state, lang, &snapshot, now)) }
    };
    layout::page(&shell, body).into_response()
}
