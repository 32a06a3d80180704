//! Alerts as they arrive, each in the agency's own terms: which of our operations (its case
//! reference and window) and which of our selectors, with acknowledgement.

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use deconfliction_web::Lang;
use deconfliction_web::auth::{Site, see_other};
use deconfliction_web::layout::{self, notice};
use deconfliction_web::session::Session;
use maud::{Markup, html};
use serde::Deserialize;
use tonic::Request;

use super::{Desk, Shared, words};
use crate::control::pb;
use crate::control::pb::agency_control_server::AgencyControl;

/// Alerts shown already acknowledged, below the new ones.
const RECENT_ACKED: usize = 20;

/// The newest `limit` alerts (0: all), acknowledged ones too when `include_acked`.
async fn alerts(
    desk: &Desk,
    include_acked: bool,
    limit: usize,
) -> Result<Vec<pb::AlertView>, String> {
    desk.control
        .list_alerts(Request::new(pb::ListAlertsRequest {
            include_acked,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().alerts)
        .map_err(|s| Desk::refusal(&s))
}

async fn window_of(desk: &Desk, operation_id: &str) -> Option<(i64, i64)> {
    let op = desk
        .control
        .get_operation(Request::new(pb::GetOperationRequest {
            operation_id: operation_id.to_owned(),
        }))
        .await
        .ok()?
        .into_inner();
    op.window.map(|w| (w.start_unix, w.end_unix))
}

/// One alert as a sentence about our own operation (`window`: that operation's).
fn alert_item(
    desk: &Desk,
    lang: Lang,
    session: &Session,
    a: &pb::AlertView,
    window: Option<(i64, i64)>,
) -> Markup {
    let case = if a.case_reference.is_empty() {
        a.operation_id.clone()
    } else {
        a.case_reference.clone()
    };
    let is_match = a.kind == pb::AlertKind::Match as i32;
    html! {
        li.panel data-alert=(a.seq) data-match=(a.match_id) {
            div.actions {
                span class={ "badge " (if is_match && a.created { "danger" } else { "warn" }) } {
                    (words::alert_kind(lang, a.kind))
                }
                @if !a.drill_id.is_empty() { span.badge.warn { (lang.t("desk.exercise_short")) } }
                span.muted { (desk.clock.datetime(a.received_unix)) }
                @if a.acked { span.badge.ok { (lang.t("desk.acked")) } }
            }
            @if !a.selectors.is_empty() {
                p.sentence {
                    (lang.tf("desk.alert.sentence", &[
                        ("selectors", &a.selectors.iter().map(|s| words::selector(lang, s)).collect::<Vec<_>>().join("; ")),
                        ("case", &case),
                    ]))
                    @if let Some((start, end)) = window {
                        " " (lang.tf("desk.alert.window", &[("start", &desk.clock.datetime(start)), ("end", &desk.clock.datetime(end))]))
                    }
                }
            } @else if !a.case_reference.is_empty() || !a.operation_id.is_empty() {
                p { (lang.tf("desk.alert.case", &[("case", &case)])) }
            }
            @if !a.pinyin_only.is_empty() {
                p { span.badge.warn { (lang.t("desk.alert.pinyin_only")) } }
            }
            @if !a.text.is_empty() { blockquote { (a.text) } }
            @if let Some(card) = &a.card { p { (lang.t("desk.match.their_card")) ": " (card_line(card)) } }
            @if !a.note.is_empty() { p.muted { (a.note) } }
            div.actions {
                @if !a.match_id.is_empty() {
                    a.button href={ "/matches/" (a.match_id) } { (lang.t("desk.open_match")) }
                }
                @if !a.acked {
                    form.inline method="post" action="/alerts/ack" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="seq" value=(a.seq);
                        button.secondary type="submit" { (lang.t("desk.ack")) }
                    }
                }
            }
        }
    }
}

pub(crate) fn card_line(c: &deconfliction_proto::v1::ContactCard) -> String {
    [&c.unit_name, &c.officer, &c.phone, &c.secure_email, &c.note]
        .into_iter()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The alerts list (a live region).
pub(crate) async fn alerts_region(desk: &Desk, lang: Lang, session: &Session) -> Markup {
    // The unacknowledged ones, and only as many of the newest as can hold the recent
    // acknowledged ones: never every alert ever received.
    let (new, recent) = match alerts(desk, false, 0).await {
        Ok(new) => {
            let recent = alerts(desk, true, new.len() + RECENT_ACKED).await;
            (new, recent.unwrap_or_default())
        }
        Err(e) => return notice("error", &e),
    };
    let new: Vec<&pb::AlertView> = new.iter().rev().collect();
    let acked: Vec<&pb::AlertView> = recent
        .iter()
        .rev()
        .filter(|a| a.acked)
        .take(RECENT_ACKED)
        .collect();
    // Each operation's window read once, however many alerts name it.
    let mut windows: HashMap<&str, Option<(i64, i64)>> = HashMap::new();
    for a in new.iter().chain(&acked) {
        if !a.operation_id.is_empty() && !windows.contains_key(a.operation_id.as_str()) {
            let window = window_of(desk, &a.operation_id).await;
            windows.insert(&a.operation_id, window);
        }
    }
    let item = |a: &pb::AlertView| {
        let window = windows.get(a.operation_id.as_str()).copied().flatten();
        alert_item(desk, lang, session, a, window)
    };
    let new_items: Vec<Markup> = new.iter().map(|a| item(a)).collect();
    let acked_items: Vec<Markup> = acked.iter().map(|a| item(a)).collect();
    html! {
        div.cards { div.card { div.muted { (lang.t("desk.unacked")) } div.big #unacked-count { (new.len()) } } }
        @if new.is_empty() {
            p.muted #no-alerts { (lang.t("desk.no_new_alerts")) }
        } @else {
            form.inline method="post" action="/alerts/ack" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="all" value="1";
                button.secondary type="submit" { (lang.t("desk.ack_all")) }
            }
            ul.notes #new-alerts { @for item in new_items { (item) } }
        }
        h2 { (lang.t("desk.recently_acked")) }
        ul.notes { @for item in acked_items { (item) } }
    }
}

pub(crate) async fn page(State(desk): State<Shared>, headers: HeaderMap) -> Response {
    let (ctx, session) = match desk.gate.require(&headers, "/") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let mut shell = desk.shell(&ctx, lang.t("desk.alerts_title"), "/");
    shell.live = Some("/events?view=alerts".to_owned());
    let body = html! { div #alerts { (alerts_region(&desk, lang, &session).await) } };
    layout::page(&shell, body).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct AckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    all: Option<String>,
}

pub(crate) async fn ack(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<AckForm>,
) -> Response {
    let (_, session) = match desk.gate.require_form(&headers, "/", &f.csrf) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let upto = if f.all.is_some() {
        desk.core
            .store
            .get_u64(crate::daemon::store::LAST_ALERT_SEQ)
            .unwrap_or(0)
    } else {
        0
    };
    let seqs: Vec<u64> = f.seq.into_iter().collect();
    let answer = desk
        .control
        .ack_alerts(Request::new(pb::AckAlertsRequest {
            seqs: seqs.clone(),
            upto,
        }))
        .await;
    if answer.is_ok() {
        desk.journal(
            &session,
            super::journal::DeskAction {
                action: if upto > 0 {
                    "ack_all".into()
                } else {
                    format!("ack {}", seqs.first().copied().unwrap_or(0))
                },
                ..Default::default()
            },
        )
        .await;
    }
    see_other("/")
}
