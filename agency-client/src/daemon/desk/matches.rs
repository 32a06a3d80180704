//! One match, from our side: which of our operations and selectors, the anonymous
//! conversation with the other party (their messages arrive as alerts, ours are in the desk's
//! journal), disclosure of our contact card with a step that shows exactly what the other side
//! will see, resolution and reopening.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use deconfliction_proto::v1;
use deconfliction_web::Lang;
use deconfliction_web::auth::{Ctx, Site, see_other};
use deconfliction_web::layout::{self, notice};
use deconfliction_web::session::Session;
use maud::{Markup, html};
use serde::Deserialize;
use tonic::Request;

use super::alerts::card_line;
use super::journal::{self, DeskAction};
use super::{Desk, Shared, words};
use crate::control::pb;
use crate::control::pb::agency_control_server::AgencyControl;

async fn view(desk: &Desk, id: &str) -> Result<v1::MatchView, String> {
    desk.control
        .get_match(Request::new(pb::MatchRequest {
            match_id: id.to_owned(),
        }))
        .await
        .map(|r| r.into_inner())
        .map_err(|s| Desk::refusal(&s))
}

/// What the desk holds about one match besides the broker's view of it.
struct Ours {
    /// Our selectors in the match, from its match alerts (deduplicated by local id).
    selectors: Vec<pb::Selector>,
    case: String,
    /// The conversation by time: (when, written by us, text).
    lines: Vec<(i64, bool, String)>,
    their_card: Option<v1::ContactCard>,
}

/// Gathers the match's alerts (their messages, their card, our selectors) and our side of the
/// conversation from the desk's journal.
async fn ours(desk: &Desk, id: &str) -> Ours {
    let alerts = desk
        .control
        .list_alerts(Request::new(pb::ListAlertsRequest {
            include_acked: true,
            match_id: id.to_owned(),
            ..Default::default()
        }))
        .await
        .map(|r| r.into_inner().alerts)
        .unwrap_or_default();
    let journal = journal::of_match(&desk.core.store, id).unwrap_or_default();
    let mut selectors: Vec<pb::Selector> = Vec::new();
    for s in alerts
        .iter()
        .filter(|a| a.kind == pb::AlertKind::Match as i32)
        .flat_map(|a| &a.selectors)
    {
        if !selectors.iter().any(|x| x.id == s.id) {
            selectors.push(s.clone());
        }
    }
    let mut lines: Vec<(i64, bool, String)> = alerts
        .iter()
        .filter(|a| a.kind == pb::AlertKind::Message as i32)
        .map(|a| (a.received_unix, false, a.text.clone()))
        .chain(
            journal
                .iter()
                .filter(|a| a.action == "message")
                .map(|a| (a.at, true, a.text.clone())),
        )
        .collect();
    lines.sort_by_key(|(at, _, _)| *at);
    Ours {
        case: alerts
            .iter()
            .find(|a| !a.case_reference.is_empty())
            .map(|a| a.case_reference.clone())
            .unwrap_or_default(),
        their_card: alerts.iter().rev().find_map(|a| a.card.clone()),
        selectors,
        lines,
    }
}

/// The match's state, our selectors and the conversation (a live region).
pub(crate) async fn match_region(desk: &Desk, lang: Lang, session: &Session, id: &str) -> Markup {
    let m = match view(desk, id).await {
        Ok(m) => m,
        Err(e) => return notice("error", &e),
    };
    let ours = ours(desk, id).await;
    html! {
        (state_cards(lang, &m, &ours.case))
        h2 { (lang.t("desk.match.our_selectors")) }
        ul { @for s in &ours.selectors { li { (words::selector(lang, s)) } } }
        @if let Some(map) = desk.map_of(lang, &ours.selectors, true) { (map) }
        @if let Some(card) = &ours.their_card {
            div.notice.ok #their-card { (lang.t("desk.match.their_card")) ": " (card_line(card)) }
        }
        (conversation(desk, lang, &ours.lines))
        (actions(lang, session, &m))
    }
}

/// The match's state, our operation, where the cards stand.
fn state_cards(lang: Lang, m: &v1::MatchView, case: &str) -> Markup {
    let resolved = m.state == v1::MatchState::Resolved as i32;
    html! {
        div.cards {
            div.card {
                div.muted { (lang.t("desk.match.state")) }
                div.big #match-state {
                    @if resolved { (lang.tf("state.resolved", &[("outcome", &words::outcome(lang, m.outcome))])) }
                    @else { (lang.t("desk.match.open")) }
                }
            }
            div.card {
                div.muted { (lang.t("desk.match.our_operation")) }
                div { a href={ "/operations/" (m.operation_id) } { (if case.is_empty() { &m.operation_id } else { case }) } }
            }
            div.card {
                div.muted { (lang.t("desk.match.cards")) }
                div #cards-state {
                    @if m.cards_exchanged { (lang.t("desk.match.cards_exchanged")) }
                    @else if m.you_disclosed { (lang.t("desk.match.you_disclosed")) }
                    @else { (lang.t("desk.match.not_disclosed")) }
                }
            }
        }
    }
}

fn conversation(desk: &Desk, lang: Lang, lines: &[(i64, bool, String)]) -> Markup {
    html! {
        h2 { (lang.t("desk.match.conversation")) }
        @if lines.is_empty() { p.muted #no-messages { (lang.t("desk.match.no_messages")) } }
        ul.notes #conversation {
            @for (at, mine, text) in lines {
                li class=(if *mine { "mine" } else { "theirs" }) {
                    strong { (if *mine { lang.t("desk.match.we") } else { lang.t("desk.match.they") }) }
                    " · " span.muted { (desk.clock.datetime(*at)) } br; (text)
                }
            }
        }
    }
}

/// Disclose or withdraw our card, reopen a resolved match.
fn actions(lang: Lang, session: &Session, m: &v1::MatchView) -> Markup {
    let action = |verb: &str| format!("/matches/{}/{verb}", m.match_id);
    html! {
        div.actions {
            @if !m.you_disclosed {
                a.button #disclose-link href=(action("disclose")) { (lang.t("desk.match.disclose")) }
            } @else if !m.cards_exchanged {
                form.inline method="post" action=(action("withdraw")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.secondary type="submit" { (lang.t("desk.match.withdraw")) }
                }
            }
            @if m.state == v1::MatchState::Resolved as i32 {
                form.inline method="post" action=(action("reopen")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.secondary #reopen-button type="submit" { (lang.t("desk.match.reopen")) }
                }
            }
        }
    }
}

fn render(
    desk: &Desk,
    ctx: &Ctx,
    session: &Session,
    id: &str,
    region: Markup,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let mut shell = desk.shell(ctx, lang.t("desk.match.title"), "/");
    shell.live = Some(format!("/events?view=match&id={id}"));
    let post = |verb: &str| format!("/matches/{id}/{verb}");
    let body = html! {
        @if let Some(e) = &error { (notice("error", e)) }
        p.muted { (lang.tf("desk.match.id", &[("id", id)])) }
        div #match { (region) }
        form.stack #message-form method="post" action=(post("message")) {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="text" { (lang.t("desk.match.write")) }
            textarea #text name="text" maxlength="4000" required {}
            p.hint { (lang.t("desk.match.write_hint")) }
            div.actions { button type="submit" { (lang.t("desk.match.send")) } }
        }
        form.stack #resolve-form method="post" action=(post("resolve")) {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="outcome" { (lang.t("desk.match.resolve_with")) }
            select #outcome name="outcome" {
                @for (n, words) in words::outcomes(lang) { option value=(n) { (words) } }
            }
            label for="note" { (lang.t("desk.match.resolve_note")) }
            input #note type="text" name="note" maxlength="1000";
            div.actions { button #resolve-button type="submit" { (lang.t("desk.match.resolve")) } }
        }
    };
    (status, layout::page(&shell, body)).into_response()
}

pub(crate) async fn page(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (ctx, session) = match desk.gate.require(&headers, &format!("/matches/{id}")) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let region = match_region(&desk, ctx.lang, &session, &id).await;
    render(&desk, &ctx, &session, &id, region, None, StatusCode::OK)
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct MatchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    outcome: i32,
    #[serde(default)]
    note: String,
}

/// A change to the match (`message`, `resolve`, `reopen`, `withdraw`), made once the form's
/// CSRF token is checked, journaled with the officer's name; a refusal is shown on the page.
pub(crate) async fn change(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    Form(f): Form<MatchForm>,
) -> Response {
    let path = format!("/matches/{id}");
    let (ctx, session) = match desk.gate.require_form(&headers, &path, &f.csrf) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let control = &desk.control;
    let this = || {
        Request::new(pb::MatchRequest {
            match_id: id.clone(),
        })
    };
    let mut text = String::new();
    let (action, result) = match verb.as_str() {
        "message" => {
            text = f.text.trim().to_owned();
            let request = pb::SendMessageRequest {
                match_id: id.clone(),
                text: text.clone(),
            };
            ("message", control.send_message(Request::new(request)).await)
        }
        "resolve" => {
            let request = pb::ResolveMatchRequest {
                match_id: id.clone(),
                outcome: f.outcome,
                note: f.note.clone(),
            };
            (
                "resolve",
                control.resolve_match(Request::new(request)).await,
            )
        }
        "reopen" => ("reopen", control.reopen_match(this()).await),
        "withdraw" => (
            "withdraw_disclosure",
            control.withdraw_disclosure(this()).await,
        ),
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    match result {
        Ok(_) => {
            let entry = DeskAction {
                text,
                ..DeskAction::on_match(action, &id)
            };
            desk.journal(&session, entry).await;
            see_other(&path)
        }
        Err(status) => {
            let region = match_region(&desk, ctx.lang, &session, &id).await;
            let code = if status.code() == tonic::Code::InvalidArgument {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::CONFLICT
            };
            let error = Some(Desk::refusal(&status));
            render(&desk, &ctx, &session, &id, region, error, code)
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct CardForm {
    #[serde(default)]
    csrf: String,
    /// "review" shows what will be disclosed; "confirm" discloses it.
    #[serde(default)]
    step: String,
    #[serde(default)]
    unit_name: String,
    #[serde(default)]
    officer: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    secure_email: String,
    #[serde(default)]
    note: String,
}

impl CardForm {
    fn card(&self) -> v1::ContactCard {
        v1::ContactCard {
            unit_name: self.unit_name.trim().to_owned(),
            officer: self.officer.trim().to_owned(),
            phone: self.phone.trim().to_owned(),
            secure_email: self.secure_email.trim().to_owned(),
            note: self.note.trim().to_owned(),
        }
    }
}

fn card_page(
    desk: &Desk,
    ctx: &Ctx,
    session: &Session,
    id: &str,
    form: &CardForm,
    review: bool,
    error: Option<String>,
) -> Response {
    let lang = ctx.lang;
    let shell = desk.shell(ctx, lang.t("desk.disclose.title"), "/");
    let fields = [
        ("unit_name", "desk.card.unit_name", &form.unit_name),
        ("officer", "desk.card.officer", &form.officer),
        ("phone", "desk.card.phone", &form.phone),
        ("secure_email", "desk.card.secure_email", &form.secure_email),
        ("note", "desk.card.note", &form.note),
    ];
    let body = html! {
        @if let Some(e) = &error { (notice("error", e)) }
        form.stack method="post" action={ "/matches/" (id) "/disclose" } {
            input type="hidden" name="csrf" value=(session.csrf);
            @if review {
                div.notice.info #disclose-review {
                    p { strong { (lang.t("desk.disclose.review")) } }
                    ul { @for (_, key, value) in &fields { @if !value.trim().is_empty() { li { (lang.t(key)) ": " (value.trim()) } } } }
                    p { (lang.t("desk.disclose.review_hint")) }
                }
                @for (name, _, value) in &fields { input type="hidden" name=(name) value=(value); }
                input type="hidden" name="step" value="confirm";
                div.actions {
                    button.danger #confirm-disclose type="submit" { (lang.t("desk.disclose.confirm")) }
                    a href={ "/matches/" (id) } { (lang.t("desk.disclose.cancel")) }
                }
            } @else {
                p.hint { (lang.t("desk.disclose.hint")) }
                @for (name, key, value) in &fields {
                    label for=(name) { (lang.t(key)) }
                    input id=(name) type="text" name=(name) value=(value) maxlength="200";
                }
                input type="hidden" name="step" value="review";
                div.actions { button #review-disclose type="submit" { (lang.t("desk.disclose.next")) } }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, layout::page(&shell, body)).into_response()
}

pub(crate) async fn disclose_form(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (ctx, session) = match desk
        .gate
        .require(&headers, &format!("/matches/{id}/disclose"))
    {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    card_page(
        &desk,
        &ctx,
        &session,
        &id,
        &CardForm::default(),
        false,
        None,
    )
}

pub(crate) async fn disclose(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CardForm>,
) -> Response {
    let path = format!("/matches/{id}");
    let (ctx, session) = match desk.gate.require_form(&headers, &path, &f.csrf) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let card = f.card();
    if [&card.officer, &card.phone, &card.secure_email]
        .iter()
        .all(|v| v.is_empty())
    {
        return card_page(
            &desk,
            &ctx,
            &session,
            &id,
            &f,
            false,
            Some(ctx.lang.t("desk.disclose.no_way")),
        );
    }
    if f.step != "confirm" {
        return card_page(&desk, &ctx, &session, &id, &f, true, None);
    }
    let answer = desk
        .control
        .disclose(Request::new(pb::DiscloseRequest {
            match_id: id.clone(),
            card: Some(card),
        }))
        .await;
    match answer {
        Ok(_) => {
            desk.journal(&session, DeskAction::on_match("disclose", &id))
                .await;
            see_other(&path)
        }
        Err(status) => card_page(
            &desk,
            &ctx,
            &session,
            &id,
            &f,
            false,
            Some(Desk::refusal(&status)),
        ),
    }
}
