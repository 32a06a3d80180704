//! Importing a batch file (CSV or JSON lines, the formats of `deconflict import`) from the
//! desk: the file is read whole and every line checked first (a bad line refuses the file and
//! is named, nothing registered), then the operations are handed to agencyd one by one in the
//! background while the page shows a progress bar that moves by itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use deconfliction_web::Lang;
use deconfliction_web::auth::{Ctx, Site, see_other};
use deconfliction_web::layout::{self, notice};
use deconfliction_web::session::{Session, random_token};
use maud::{Markup, html};
use tonic::Request;

use super::journal::DeskAction;
use super::{Desk, Shared};
use crate::control::operation_spec_to_request;
use crate::control::pb::agency_control_server::AgencyControl;
use crate::opfile::{CSV_COLUMNS, parse_csv, parse_jsonl};

/// Largest file the desk takes (the CLI takes any size).
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// One import under way or done.
#[derive(Debug, Default)]
pub(crate) struct ImportJob {
    pub file: String,
    pub total: usize,
    done: AtomicUsize,
    finished: AtomicBool,
    refused: Mutex<Vec<String>>,
}

/// The imports of this desk, by id (kept until the daemon stops).
#[derive(Debug, Default)]
pub(crate) struct Imports(Mutex<HashMap<String, Arc<ImportJob>>>);

impl Imports {
    fn get(&self, id: &str) -> Option<Arc<ImportJob>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn add(&self, job: Arc<ImportJob>) -> String {
        let id = random_token()[..16].to_owned();
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), job);
        id
    }
}

fn form_page(
    desk: &Desk,
    ctx: &Ctx,
    session: &Session,
    errors: &[String],
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let shell = desk.shell(ctx, lang.t("desk.import.title"), "/import");
    let body = html! {
        @if !errors.is_empty() {
            div.notice.error role="alert" #import-errors {
                p { (lang.t("desk.import.refused")) }
                ul { @for e in errors.iter().take(50) { li { (e) } } }
                @if errors.len() > 50 { p { (lang.tf("desk.import.more", &[("n", &(errors.len() - 50).to_string())])) } }
            }
        }
        form.stack method="post" action="/import" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="file" { (lang.t("desk.import.file")) }
            input #file type="file" name="file" accept=".csv,.jsonl,.ndjson" required;
            p.hint { (lang.tf("desk.import.hint", &[("columns", &CSV_COLUMNS.join(", "))])) }
            div.actions { button #import-button type="submit" { (lang.t("desk.import.submit")) } }
        }
    };
    (status, layout::page(&shell, body)).into_response()
}

pub(crate) async fn form(State(desk): State<Shared>, headers: HeaderMap) -> Response {
    match desk.gate.require(&headers, "/import") {
        Ok((ctx, session)) => form_page(&desk, &ctx, &session, &[], StatusCode::OK),
        Err(r) => r,
    }
}

/// The posted form's fields: its CSRF token, the file's name and text.
async fn read_form(mut multipart: Multipart) -> Result<(String, String, String), String> {
    let (mut csrf, mut name, mut text) = (String::new(), String::new(), String::new());
    while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(|e| e.to_string())?,
            Some("file") => {
                name = field.file_name().unwrap_or_default().to_owned();
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                if bytes.len() > MAX_BYTES {
                    return Err(format!("the file is larger than {} MiB", MAX_BYTES >> 20));
                }
                text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| "the file is not UTF-8 text".to_owned())?;
            }
            _ => {}
        }
    }
    Ok((csrf, name, text))
}

pub(crate) async fn upload(
    State(desk): State<Shared>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let (csrf, name, text) = match read_form(multipart).await {
        Ok(form) => form,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    let (ctx, session) = match desk.gate.require_form(&headers, "/import", &csrf) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let now = super::super::timing::now_unix();
    let lower = name.to_lowercase();
    let parsed = if lower.ends_with(".csv") {
        parse_csv(&text, now)
    } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        parse_jsonl(&text, now)
    } else {
        return form_page(
            &desk,
            &ctx,
            &session,
            &[lang.t("desk.import.format")],
            StatusCode::BAD_REQUEST,
        );
    };
    let ops = match parsed {
        Ok(ops) if ops.is_empty() => {
            return form_page(
                &desk,
                &ctx,
                &session,
                &[lang.t("desk.import.empty")],
                StatusCode::BAD_REQUEST,
            );
        }
        Ok(ops) => ops,
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return form_page(&desk, &ctx, &session, &lines, StatusCode::BAD_REQUEST);
        }
    };
    let job = Arc::new(ImportJob {
        file: name.clone(),
        total: ops.len(),
        ..ImportJob::default()
    });
    let id = desk.imports.add(job.clone());
    // The file's name stays in the journal, out of the log line.
    desk.journal(
        &session,
        DeskAction {
            action: "import".into(),
            text: format!("{name} ({} operations)", ops.len()),
            ..Default::default()
        },
    )
    .await;
    let source = format!("desk-import:{}", session.officer);
    let worker = desk.clone();
    tokio::spawn(async move {
        for (line, spec) in ops {
            let mut request = operation_spec_to_request(&spec, 0);
            request.source = source.clone();
            if let Err(status) = worker.control.register(Request::new(request)).await {
                job.refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("line {line}: {}", status.message()));
            }
            job.done.fetch_add(1, Ordering::Relaxed);
            worker.bump.send_modify(|n| *n += 1);
        }
        job.finished.store(true, Ordering::Relaxed);
        worker.bump.send_modify(|n| *n += 1);
    });
    see_other(&format!("/import/{id}"))
}

/// An import's progress (a live region).
pub(crate) fn progress_region(desk: &Desk, lang: Lang, id: &str) -> Markup {
    let Some(job) = desk.imports.get(id) else {
        return notice("error", &lang.t("desk.import.unknown"));
    };
    let done = job.done.load(Ordering::Relaxed);
    let finished = job.finished.load(Ordering::Relaxed);
    let refused = job
        .refused
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    html! {
        p { (lang.tf("desk.import.of_file", &[("file", &job.file)])) }
        progress #import-progress value=(done) max=(job.total) { (done) " / " (job.total) }
        p #import-count { (lang.tf("desk.import.count", &[("done", &done.to_string()), ("total", &job.total.to_string())])) }
        @if finished {
            div.notice.ok #import-finished {
                (lang.tf("desk.import.finished", &[("accepted", &(done - refused.len()).to_string()), ("refused", &refused.len().to_string())]))
            }
            p { a href="/operations" { (lang.t("desk.nav.operations")) } }
        }
        @if !refused.is_empty() { ul.field-error { @for r in &refused { li { (r) } } } }
    }
}

pub(crate) async fn progress(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (ctx, _) = match desk.gate.require(&headers, &format!("/import/{id}")) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let mut shell = desk.shell(&ctx, lang.t("desk.import.title"), "/import");
    shell.live = Some(format!("/events?view=import&id={id}"));
    let body = html! { div #import { (progress_region(&desk, lang, &id)) } };
    layout::page(&shell, body).into_response()
}
