//! One conflict: both sides' progress with times, the overlap, and the watch centre's own
//! coordination (claim, escalation, notes), with the forms that change it. Every form carries
//! the session's CSRF token; every change goes to the broker with the officer's name, which
//! records it in its audit log.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use deconfliction_proto::v1;
use deconfliction_web::Lang;
use deconfliction_web::clock::countdown;
use deconfliction_web::layout::{self, notice};
use deconfliction_web::session::Session;
use maud::{Markup, html};
use serde::Deserialize;

use super::link::{Snapshot, reason};
use deconfliction_web::auth::{Ctx, Site, see_other};

use super::{Shared, State as Console, queue, words};

fn when(console: &Console, unix: i64) -> Markup {
    html! { @if unix > 0 { (console.clock.datetime(unix)) } @else { span.muted { "—" } } }
}

/// The match's state, sides and coordination (a live region).
pub(crate) fn match_region(
    console: &Console,
    lang: Lang,
    session: &Session,
    s: &Snapshot,
    m: &v1::MatchMetadata,
    now: i64,
) -> Markup {
    let c = m.coordination.clone().unwrap_or_default();
    html! {
        (summary_cards(console, lang, m, &c, now))
        (sides_table(console, lang, s, m))
        (coordination_panel(console, lang, session, m, &c))
    }
}

/// State, the earlier start, the windows' overlap, what matched.
fn summary_cards(
    console: &Console,
    lang: Lang,
    m: &v1::MatchMetadata,
    c: &v1::Coordination,
    now: i64,
) -> Markup {
    html! {
    div.cards {
        div.card {
            div.muted { (lang.t("console.queue.state")) }
            div.big { (words::state(lang, m)) }
            @if queue::due(console, m, now) { span.badge.danger { (lang.t("console.queue.escalate")) } }
            @if c.escalated { span.badge.warn { (lang.t("console.queue.escalated")) } }
        }
        div.card {
            div.muted { (lang.t("console.queue.starts")) }
            @if m.earliest_start_unix > 0 {
                div.big { (countdown(lang, m.earliest_start_unix, now)) }
                div.muted { (console.clock.datetime(m.earliest_start_unix)) }
            } @else { div.big { "—" } }
        }
        div.card {
            div.muted { (lang.t("console.queue.overlap")) }
            @if let Some(w) = &m.overlap {
                div { (console.clock.datetime(w.start_unix)) } div { "→ " (console.clock.datetime(w.end_unix)) }
            } @else { div { "—" } }
        }
        div.card {
            div.muted { (lang.t("console.queue.kinds")) }
            div { @for k in &m.kinds { span.badge { (words::kind(lang, *k)) } } }
            div.muted { (lang.tf("console.detail.shared_n", &[("n", &m.shared_tokens.to_string())])) }
        }
    }
    }
}

/// What each side has done, with the times.
fn sides_table(console: &Console, lang: Lang, s: &Snapshot, m: &v1::MatchMetadata) -> Markup {
    html! {
    h2 { (lang.t("console.detail.sides")) }
    table #sides {
        thead { tr {
            th { (lang.t("console.queue.agencies")) }
            th { (lang.t("progress.seen")) }
            th { (lang.t("progress.acknowledged")) }
            th { (lang.t("progress.messages")) }
            th { (lang.t("progress.disclosed")) }
            th { (lang.t("progress.resolved")) }
        } }
        tbody {
            @for side in &m.progress {
                tr {
                    td { strong { (s.agency_name(&side.agency_id)) } br; span.muted { (side.agency_id) } }
                    td { (when(console, side.seen_unix)) }
                    td { (when(console, side.acknowledged_unix)) }
                    td { (side.messages) @if side.first_message_unix > 0 { br; span.muted { (console.clock.datetime(side.first_message_unix)) } } }
                    td { (when(console, side.disclosed_unix)) }
                    td { (when(console, side.resolved_unix)) }
                }
            }
        }
    }
    }
}

/// The watch centre's claim, escalation and notes, with the forms that change them.
fn coordination_panel(
    console: &Console,
    lang: Lang,
    session: &Session,
    m: &v1::MatchMetadata,
    c: &v1::Coordination,
) -> Markup {
    let mine = c.claimed_by == session.label;
    let action = |verb: &str| format!("/matches/{}/{verb}", m.match_id);
    html! {
    h2 { (lang.t("console.detail.coordination")) }
    div.panel #coordination {
        p #claim {
            @if c.claimed_by.is_empty() {
                (lang.t("console.detail.unclaimed"))
            } @else {
                (lang.tf("console.detail.claimed_by", &[("officer", &c.claimed_by), ("at", &console.clock.datetime(c.claimed_unix))]))
            }
        }
        @if c.escalated {
            p { (lang.tf("console.detail.escalated_by", &[("officer", &c.escalated_by), ("at", &console.clock.datetime(c.escalated_unix))])) }
        }
        div.actions {
            @if c.claimed_by.is_empty() {
                form.inline method="post" action=(action("claim")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button #claim-button type="submit" { (lang.t("console.detail.claim")) }
                }
            } @else if mine {
                form.inline method="post" action=(action("release")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.secondary #release-button type="submit" { (lang.t("console.detail.release")) }
                }
            }
            form.inline method="post" action=(action("escalate")) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="escalated" value=(if c.escalated { "false" } else { "true" });
                @if c.escalated {
                    button.secondary type="submit" { (lang.t("console.detail.deescalate")) }
                } @else {
                    button.danger #escalate-button type="submit" { (lang.t("console.detail.escalate")) }
                }
            }
        }
        @if c.notes.is_empty() {
            p.muted { (lang.t("console.detail.no_notes")) }
        } @else {
            ul.notes #notes {
                @for n in &c.notes {
                    li { strong { (n.officer) } " · " span.muted { (console.clock.datetime(n.at_unix)) } br; (n.text) }
                }
            }
        }
    }
    }
}

fn render(
    state: &Shared,
    ctx: &Ctx,
    session: &Session,
    id: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let snapshot = state.snapshot.borrow().clone();
    let now = super::now();
    let Some(m) = snapshot.find(id) else {
        let shell = state.shell(ctx, lang.t("console.detail.missing_title"), "/");
        let body = html! { p { (lang.t("console.detail.missing")) } a href="/" { (lang.t("common.back")) } };
        return (StatusCode::NOT_FOUND, layout::page(&shell, body)).into_response();
    };
    let names: Vec<&str> = m
        .agency_ids
        .iter()
        .map(|a| snapshot.agency_name(a))
        .collect();
    let mut shell = state.shell(
        ctx,
        lang.tf("console.detail.title", &[("agencies", &names.join(" ⇄ "))]),
        "/",
    );
    shell.live = Some(format!("/events?view=match&id={id}"));
    let body = html! {
        @if let Some(e) = &error { (notice("error", e)) }
        p.muted { (lang.tf("console.detail.ids", &[("id", id), ("created", &state.clock.datetime(m.created_unix))])) }
        div #match { (match_region(state, lang, session, &snapshot, m, now)) }
        form.stack #note-form method="post" action={ "/matches/" (id) "/note" } {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="note" { (lang.t("console.detail.add_note")) }
            textarea #note name="text" maxlength="2000" required {}
            p.hint { (lang.t("console.detail.note_hint")) }
            div.actions { button type="submit" { (lang.t("console.detail.save_note")) } }
        }
        p { a href="/" { (lang.t("common.back")) } }
    };
    (status, layout::page(&shell, body)).into_response()
}

pub(crate) async fn page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/matches/{id}");
    match state.gate.require(&headers, &path) {
        Ok((ctx, session)) => render(&state, &ctx, &session, &id, None, StatusCode::OK),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    escalated: String,
}

enum Act {
    Claim,
    Release,
    Escalate(bool),
    Note(String),
}

async fn act(
    state: Shared,
    headers: HeaderMap,
    id: String,
    form: ActionForm,
    act: Act,
) -> Response {
    let path = format!("/matches/{id}");
    let (ctx, session) = match state.gate.require_form(&headers, &path, &form.csrf) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let mut client = state.client.clone();
    let officer = session.label.clone();
    let result = match act {
        Act::Claim | Act::Release => {
            client
                .claim_match(v1::ClaimMatchRequest {
                    match_id: id.clone(),
                    officer,
                    release: matches!(act, Act::Release),
                })
                .await
        }
        Act::Escalate(escalated) => {
            client
                .escalate_match(v1::EscalateMatchRequest {
                    match_id: id.clone(),
                    officer,
                    escalated,
                })
                .await
        }
        Act::Note(text) => {
            client
                .annotate_match(v1::AnnotateMatchRequest {
                    match_id: id.clone(),
                    officer,
                    text,
                })
                .await
        }
    };
    match result {
        Ok(_) => {
            tracing::info!(officer = %session.officer, match_id = %id, "watch officer's action recorded");
            state.poke.notify_one();
            // The next snapshot holds the change; wait for it briefly so the page shows it.
            let mut rx = state.snapshot.clone();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), rx.changed()).await;
            see_other(&path)
        }
        Err(status) => {
            let code = match status.code() {
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                tonic::Code::NotFound => StatusCode::NOT_FOUND,
                tonic::Code::FailedPrecondition => StatusCode::CONFLICT,
                _ => StatusCode::BAD_GATEWAY,
            };
            render(&state, &ctx, &session, &id, Some(reason(&status)), code)
        }
    }
}

pub(crate) async fn claim(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    act(s, h, id, f, Act::Claim).await
}

pub(crate) async fn release(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    act(s, h, id, f, Act::Release).await
}

pub(crate) async fn escalate(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let on = f.escalated != "false";
    act(s, h, id, f, Act::Escalate(on)).await
}

pub(crate) async fn note(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let text = f.text.clone();
    act(s, h, id, f, Act::Note(text)).await
}
