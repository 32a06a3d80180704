//! Live updates of the desk's pages: the alerts list, a match's conversation and an import's
//! progress, rendered again at every event of the daemon (an alert stored, an operation
//! confirmed or refused, an import's step) and sent over server-sent events (`web-kit`'s
//! `live`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Shared, alerts, import, matches};

#[derive(Debug, Deserialize)]
pub(crate) struct View {
    view: String,
    #[serde(default)]
    id: String,
}

pub(crate) async fn stream(
    State(desk): State<Shared>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let ctx = desk.gate.ctx(&headers, "/");
    let Some(session) = ctx.session.clone() else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    if !matches!(view.view.as_str(), "alerts" | "match" | "import") {
        return (
            StatusCode::BAD_REQUEST,
            "view must be alerts, match or import",
        )
            .into_response();
    }
    let lang = ctx.lang;
    let changes = desk.changes.clone();
    let gate_desk = desk.clone();
    let view = Arc::new(view);
    let session = Arc::new(session);
    deconfliction_web::live::stream(
        changes,
        move || gate_desk.gate.sessions.is_alive(&headers),
        move || {
            let (desk, view, session) = (desk.clone(), view.clone(), session.clone());
            async move {
                let html = match view.view.as_str() {
                    "alerts" => alerts::alerts_region(&desk, lang, &session).await,
                    "import" => import::progress_region(&desk, lang, &view.id),
                    _ => matches::match_region(&desk, lang, &session, &view.id).await,
                };
                let id = match view.view.as_str() {
                    "alerts" => "alerts",
                    "import" => "import",
                    _ => "match",
                };
                vec![(id, html.into_string())]
            }
        },
    )
}
