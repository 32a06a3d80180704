//! The agency's operations: list and search, one operation (its selectors, window, matches
//! and where it stands with the broker), register with a form, amend, close.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
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

use super::form::{self, Row};
use super::journal::DeskAction;
use super::{Desk, Shared, words};
use crate::control::pb;
use crate::control::pb::agency_control_server::AgencyControl;

/// How long a form waits for the broker's confirmation before showing the operation queued.
const WAIT_MS: u32 = 3000;

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    closed: Option<String>,
}

fn matches_search(op: &pb::LocalOperation, q: &str) -> bool {
    let q = q.trim().to_lowercase();
    q.is_empty()
        || op.case_reference.to_lowercase().contains(&q)
        || op.operation_id.contains(&q)
        || op.selectors.iter().any(|s| {
            s.label.to_lowercase().contains(&q) || words::value(s).to_lowercase().contains(&q)
        })
}

pub(crate) async fn list(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let (ctx, _) = match desk.gate.require(&headers, "/operations") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let ops = desk
        .control
        .list_operations(Request::new(pb::ListOperationsRequest {
            include_closed: search.closed.is_some(),
        }))
        .await
        .map(|r| r.into_inner().operations);
    let shell = desk.shell(&ctx, lang.t("desk.operations.title"), "/operations");
    let body = html! {
        form.actions method="get" action="/operations" {
            input type="search" name="q" value=(search.q) placeholder=(lang.t("desk.operations.search"));
            label { input type="checkbox" name="closed" value="1" checked[search.closed.is_some()]; " " (lang.t("desk.operations.include_closed")) }
            button type="submit" { (lang.t("desk.operations.find")) }
        }
        @match &ops {
            Err(e) => (notice("error", e.message())),
            Ok(ops) => {
                @let shown: Vec<_> = ops.iter().filter(|o| matches_search(o, &search.q)).collect();
                @if shown.is_empty() { p.muted { (lang.t("desk.operations.none")) } }
                @else {
                    table #operations { thead { tr {
                        th { (lang.t("desk.operations.case")) } th { (lang.t("desk.operations.window")) }
                        th { (lang.t("desk.operations.selectors")) } th { (lang.t("desk.operations.sync")) }
                        th.num { (lang.t("desk.operations.matches")) }
                    } } tbody {
                        @for op in shown {
                            tr {
                                td { a href={ "/operations/" (op.operation_id) } { (if op.case_reference.is_empty() { &op.operation_id } else { &op.case_reference }) } @if op.closed { " " span.badge.off { (lang.t("desk.operations.closed")) } } }
                                td { (window_text(&desk, op.window.as_ref())) }
                                td { (op.selectors.len()) }
                                td { (words::sync(lang, op.sync)) @if !op.last_error.is_empty() { br; span.field-error { (op.last_error) } } }
                                td.num { (op.match_ids.len()) }
                            }
                        }
                    } }
                }
            }
        }
    };
    layout::page(&shell, body).into_response()
}

fn window_text(desk: &Desk, w: Option<&v1::Window>) -> String {
    w.map(|w| {
        format!(
            "{} → {}",
            desk.clock.datetime(w.start_unix),
            desk.clock.datetime(w.end_unix)
        )
    })
    .unwrap_or_default()
}

/// What the register form holds, to show it again with its errors.
#[derive(Debug, Default)]
struct Draft {
    case_reference: String,
    start: String,
    end: String,
    rows: Vec<Row>,
    row_errors: BTreeMap<usize, String>,
    window_error: Option<String>,
    error: Option<String>,
}

fn register_page(
    desk: &Desk,
    ctx: &Ctx,
    session: &Session,
    d: &Draft,
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let shell = desk.shell(ctx, lang.t("desk.register.title"), "/operations/new");
    let body = html! {
        @if let Some(e) = &d.error { (notice("error", e)) }
        form.stack #register-form method="post" action="/operations/new" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="case_reference" { (lang.t("desk.operations.case")) }
            input #case_reference type="text" name="case_reference" value=(d.case_reference) maxlength="200";
            label for="start" { (lang.tf("desk.register.window", &[("zone", &desk.clock.zone())])) }
            div.actions {
                input #start type="datetime-local" name="start" value=(d.start) required;
                "→"
                input #end type="datetime-local" name="end" value=(d.end) required;
            }
            @if let Some(e) = &d.window_error { div.field-error #error_window role="alert" { (e) } }
            h2 { (lang.t("desk.operations.selectors")) }
            (form::render(lang, &d.rows, &d.row_errors, 5usize.saturating_sub(d.rows.len()).max(2)))
            div.actions { button #register-button type="submit" { (lang.t("desk.register.submit")) } }
        }
    };
    (status, layout::page(&shell, body)).into_response()
}

pub(crate) async fn new_form(State(desk): State<Shared>, headers: HeaderMap) -> Response {
    let (ctx, session) = match desk.gate.require(&headers, "/operations/new") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let now = super::super::timing::now_unix();
    let draft = Draft {
        start: desk.clock.input(now),
        end: desk.clock.input(now + 7 * 86_400),
        ..Draft::default()
    };
    register_page(&desk, &ctx, &session, &draft, StatusCode::OK)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The window typed in a form, or the error to show beside it.
fn window(desk: &Desk, lang: Lang, start: &str, end: &str) -> Result<v1::Window, String> {
    let (Some(start_unix), Some(end_unix)) =
        (desk.clock.parse_input(start), desk.clock.parse_input(end))
    else {
        return Err(lang.t("desk.form.window_format"));
    };
    if end_unix <= start_unix {
        return Err(lang.t("desk.form.window_order"));
    }
    Ok(v1::Window {
        start_unix,
        end_unix,
    })
}

pub(crate) async fn register(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (ctx, session) =
        match desk
            .gate
            .require_form(&headers, "/operations/new", field(&fields, "csrf"))
        {
            Ok(pair) => pair,
            Err(r) => return r,
        };
    let lang = ctx.lang;
    let mut draft = Draft {
        case_reference: field(&fields, "case_reference").trim().to_owned(),
        start: field(&fields, "start").to_owned(),
        end: field(&fields, "end").to_owned(),
        rows: form::rows(&fields),
        ..Draft::default()
    };
    let window = window(&desk, lang, &draft.start, &draft.end);
    let selectors = form::selectors(lang, &draft.rows);
    if draft.rows.is_empty() {
        draft.error = Some(lang.t("desk.form.no_selectors"));
    }
    if let Err(e) = &window {
        draft.window_error = Some(e.clone());
    }
    if let Err(errors) = &selectors {
        draft.row_errors = errors.clone();
    }
    let (Ok(window), Ok(selectors), None) = (window, selectors, &draft.error) else {
        // Nothing is registered while anything in the form is wrong.
        return register_page(&desk, &ctx, &session, &draft, StatusCode::BAD_REQUEST);
    };
    let answer = desk
        .control
        .register(Request::new(pb::RegisterRequest {
            case_reference: draft.case_reference.clone(),
            window: Some(window),
            selectors,
            wait_ms: WAIT_MS,
            source: format!("desk:{}", session.officer),
            ..Default::default()
        }))
        .await;
    match answer.map(|r| r.into_inner().operation) {
        Ok(Some(op)) => {
            desk.journal(
                &session,
                DeskAction::on_operation("register", &op.operation_id),
            )
            .await;
            see_other(&format!("/operations/{}", op.operation_id))
        }
        Ok(None) => see_other("/operations"),
        Err(status) => {
            draft.error = Some(Desk::refusal(&status));
            register_page(&desk, &ctx, &session, &draft, StatusCode::BAD_REQUEST)
        }
    }
}

/// The amend form as posted, to show it again with its errors.
#[derive(Debug, Default)]
struct AmendDraft {
    rows: Vec<Row>,
    row_errors: BTreeMap<usize, String>,
    error: Option<String>,
}

async fn operation(desk: &Desk, id: &str) -> Result<pb::LocalOperation, tonic::Status> {
    desk.control
        .get_operation(Request::new(pb::GetOperationRequest {
            operation_id: id.to_owned(),
        }))
        .await
        .map(|r| r.into_inner())
}

fn operation_body(
    desk: &Desk,
    lang: Lang,
    session: &Session,
    op: &pb::LocalOperation,
    draft: &AmendDraft,
) -> Markup {
    let id = &op.operation_id;
    html! {
        div.cards {
            div.card { div.muted { (lang.t("desk.operations.window")) } div { (window_text(desk, op.window.as_ref())) } }
            div.card { div.muted { (lang.t("desk.operations.sync")) } div #sync-state { (words::sync(lang, op.sync)) } @if op.pending_changes > 0 { div.muted { (lang.tf("desk.operations.pending", &[("n", &op.pending_changes.to_string())])) } } }
            div.card { div.muted { (lang.t("desk.operations.matches")) } div.big { (op.match_ids.len()) } }
        }
        @if !op.last_error.is_empty() { (notice("error", &op.last_error)) }
        @if let Some(map) = desk.map_of(lang, &op.selectors, false) { (map) }
        @if !op.match_ids.is_empty() {
            h2 { (lang.t("desk.operations.matches")) }
            ul { @for m in &op.match_ids { li { a href={ "/matches/" (m) } { (m) } } } }
        }
        h2 { (lang.t("desk.operations.selectors")) }
        @if op.closed {
            ul { @for s in &op.selectors { li { (words::selector(lang, s)) } } }
            p.muted { (lang.t("desk.operations.closed")) }
        } @else {
            form.stack #amend-form method="post" action={ "/operations/" (id) "/amend" } {
                input type="hidden" name="csrf" value=(session.csrf);
                ul { @for s in &op.selectors { li { label { input type="checkbox" name="remove" value=(s.id); " " (words::selector(lang, s)) } } } }
                p.hint { (lang.t("desk.amend.remove_hint")) }
                h2 { (lang.t("desk.amend.add")) }
                (form::render(lang, &draft.rows, &draft.row_errors, 2))
                div.actions { button type="submit" { (lang.t("desk.amend.submit")) } }
            }
            form.inline method="post" action={ "/operations/" (id) "/close" } {
                input type="hidden" name="csrf" value=(session.csrf);
                button.danger #close-button type="submit" { (lang.t("desk.operations.close")) }
            }
        }
    }
}

fn operation_page(
    desk: &Desk,
    ctx: &Ctx,
    session: &Session,
    op: &pb::LocalOperation,
    draft: &AmendDraft,
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let title = if op.case_reference.is_empty() {
        op.operation_id.clone()
    } else {
        op.case_reference.clone()
    };
    let mut shell = desk.shell(
        ctx,
        lang.tf("desk.operation.title", &[("case", &title)]),
        "/operations",
    );
    shell.live = None;
    let body = html! {
        @if let Some(e) = &draft.error { (notice("error", e)) }
        p.muted { (lang.tf("desk.operation.id", &[("id", &op.operation_id)])) }
        (operation_body(desk, lang, session, op, draft))
    };
    (status, layout::page(&shell, body)).into_response()
}

pub(crate) async fn page(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (ctx, session) = match desk.gate.require(&headers, &format!("/operations/{id}")) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    match operation(&desk, &id).await {
        Ok(op) => operation_page(
            &desk,
            &ctx,
            &session,
            &op,
            &AmendDraft::default(),
            StatusCode::OK,
        ),
        Err(s) => {
            let shell = desk.shell(&ctx, ctx.lang.t("desk.operations.title"), "/operations");
            (
                StatusCode::NOT_FOUND,
                layout::page(&shell, notice("error", s.message())),
            )
                .into_response()
        }
    }
}

pub(crate) async fn close(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let path = format!("/operations/{id}");
    let (_, session) = match desk
        .gate
        .require_form(&headers, &path, field(&fields, "csrf"))
    {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    if desk
        .control
        .close(Request::new(pb::CloseRequest {
            operation_id: id.clone(),
            wait_ms: WAIT_MS,
        }))
        .await
        .is_ok()
    {
        desk.journal(&session, DeskAction::on_operation("close", &id))
            .await;
    }
    see_other(&path)
}

pub(crate) async fn amend(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let path = format!("/operations/{id}");
    let (ctx, session) = match desk
        .gate
        .require_form(&headers, &path, field(&fields, "csrf"))
    {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let rows = form::rows(&fields);
    let remove: Vec<u64> = fields
        .iter()
        .filter(|(k, _)| k == "remove")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let refuse =
        |op: pb::LocalOperation, row_errors: BTreeMap<usize, String>, error: Option<String>| {
            let draft = AmendDraft {
                rows: rows.clone(),
                row_errors,
                error,
            };
            operation_page(&desk, &ctx, &session, &op, &draft, StatusCode::BAD_REQUEST)
        };
    let op = match operation(&desk, &id).await {
        Ok(op) => op,
        Err(s) => return (StatusCode::NOT_FOUND, s.message().to_owned()).into_response(),
    };
    let add = match form::selectors(ctx.lang, &rows) {
        Ok(add) => add,
        Err(errors) => return refuse(op, errors, None),
    };
    if add.is_empty() && remove.is_empty() {
        return see_other(&path);
    }
    let answer = desk
        .control
        .amend(Request::new(pb::AmendRequest {
            operation_id: id.clone(),
            add_selectors: add,
            remove_selector_ids: remove,
            window: None,
            wait_ms: WAIT_MS,
        }))
        .await;
    match answer {
        Ok(_) => {
            desk.journal(&session, DeskAction::on_operation("amend", &id))
                .await;
            see_other(&path)
        }
        Err(s) => refuse(op, BTreeMap::new(), Some(Desk::refusal(&s))),
    }
}
