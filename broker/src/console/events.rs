//! Live updates of the console's pages: the queue, a conflict and the agency board, rendered
//! again whenever the snapshot changes and sent over server-sent events (`web-kit`'s `live`).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use deconfliction_web::live::Regions;
use deconfliction_web::session::Session;
use serde::Deserialize;

use super::{Shared, board, detail, queue};

#[derive(Debug, Deserialize)]
pub(crate) struct View {
    view: String,
    #[serde(default)]
    id: String,
}

/// The regions of one view, by element id.
fn regions(
    state: &Shared,
    view: &View,
    lang: deconfliction_web::Lang,
    session: &Session,
) -> Regions {
    let s = state.snapshot.borrow().clone();
    let now = super::now();
    match view.view.as_str() {
        "queue" => vec![
            (
                "queue",
                queue::queue_region(state, lang, &s, now).into_string(),
            ),
            (
                "resolved",
                queue::resolved_region(state, lang, &s, now).into_string(),
            ),
        ],
        "board" => vec![(
            "board",
            board::board_region(state, lang, &s, now).into_string(),
        )],
        _ => match s.find(&view.id) {
            Some(m) => vec![(
                "match",
                detail::match_region(state, lang, session, &s, m, now).into_string(),
            )],
            None => Vec::new(),
        },
    }
}

pub(crate) async fn stream(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(view): Query<View>,
) -> Response {
    let ctx = state.gate.ctx(&headers, "/");
    let Some(session) = ctx.session.clone() else {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    };
    if !matches!(view.view.as_str(), "queue" | "board" | "match") {
        return (
            StatusCode::BAD_REQUEST,
            "view must be queue, board or match",
        )
            .into_response();
    }
    let lang = ctx.lang;
    let changes = state.snapshot.clone();
    let gate_state = state.clone();
    deconfliction_web::live::stream(
        changes,
        move || gate_state.gate.sessions.is_alive(&headers),
        move || {
            let regions = regions(&state, &view, lang, &session);
            async move { regions }
        },
    )
}
