//! The agency board (who is enrolled, in which role, suspended or not, when they last called,
//! what waits for them) and the broker's health.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use deconfliction_web::Lang;
use deconfliction_web::auth::Site;
use deconfliction_web::clock::span;
use deconfliction_web::layout;
use maud::{Markup, html};

use super::link::Snapshot;
use super::{Shared, State as Console, words};

/// An agency that has not called for this long is shown as silent (agencyd calls at least
/// every minute while it holds a stream open).
const SILENT_AFTER_SECS: i64 = 10 * 60;

pub(crate) fn board_region(console: &Console, lang: Lang, s: &Snapshot, now: i64) -> Markup {
    let Some(board) = &s.board else {
        return html! { p.muted { (lang.t("console.board.not_yet")) } };
    };
    let health = board.health.clone().unwrap_or_default();
    html! {
        h2 { (lang.t("console.board.health")) }
        div.cards #health {
            div.card {
                div.muted { (lang.t("console.board.broker")) }
                @if s.error.is_some() {
                    div.big { span.badge.danger { (lang.t("console.board.unreachable")) } }
                } @else {
                    div.big { span.badge.ok { (lang.t("console.board.reachable")) } }
                }
                @for r in &health.replicas {
                    div.muted { (r.name) " · v" (r.version) " · " (lang.tf("console.board.up_for", &[("span", &span(lang, now - r.started_unix))])) }
                }
            }
            div.card {
                div.muted { (lang.t("console.board.flush")) }
                div.big { (format!("{:.1}", health.flush_probe_micros as f64 / 1000.0)) " ms" }
            }
            div.card {
                div.muted { (lang.t("console.board.store")) }
                div.big { (format!("{:.1}", health.store_bytes as f64 / 1_048_576.0)) " MiB" }
            }
            div.card {
                div.muted { (lang.t("console.board.token_service")) }
                div.big {
                    @if health.token_service_key_epoch > 0 {
                        (lang.tf("console.board.epoch", &[("n", &health.token_service_key_epoch.to_string())]))
                    } @else { (lang.t("console.board.token_service_apart")) }
                }
            }
            div.card {
                div.muted { (lang.t("console.board.drills")) }
                div.big { (health.drills_running) }
            }
        }
        h2 { (lang.t("console.board.agencies")) }
        table #agency-board {
            thead { tr {
                th { (lang.t("console.board.agency")) }
                th { (lang.t("console.board.role")) }
                th { (lang.t("console.board.status")) }
                th { (lang.t("console.board.last_contact")) }
                th.num { (lang.t("console.board.open_operations")) }
                th.num { (lang.t("console.board.open_matches")) }
                th.num { (lang.t("console.board.queued_alerts")) }
                th.num { (lang.t("console.board.unacknowledged")) }
            } }
            tbody {
                @for a in &board.agencies {
                    tr {
                        td { strong { (if a.display_name.is_empty() { &a.agency_id } else { &a.display_name }) } br; span.muted { (a.agency_id) } }
                        td { (words::role(lang, a.role)) }
                        td {
                            @if a.suspended { span.badge.danger { (lang.t("console.board.suspended")) } }
                            @else if a.last_contact_unix == 0 { span.badge.off { (lang.t("console.board.not_seen")) } }
                            @else if now - a.last_contact_unix > SILENT_AFTER_SECS { span.badge.warn { (lang.t("console.board.silent")) } }
                            @else { span.badge.ok { (lang.t("console.board.active")) } }
                        }
                        td { @if a.last_contact_unix > 0 { (console.clock.datetime(a.last_contact_unix)) } @else { span.muted { "—" } } }
                        td.num { (a.open_operations) }
                        td.num { (a.open_matches) }
                        td.num { (a.queued_alerts) }
                        td.num { (a.unacknowledged_matches) }
                    }
                }
            }
        }
    }
}

pub(crate) async fn page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let (ctx, _session) = match state.gate.require(&headers, "/agencies") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let snapshot = state.snapshot.borrow().clone();
    let mut shell = state.shell(&ctx, lang.t("console.board.title"), "/agencies");
    shell.live = Some("/events?view=board".to_owned());
    let body = html! { div #board { (board_region(&state, lang, &snapshot, super::now())) } };
    layout::page(&shell, body).into_response()
}
