//! Live updates: a page's regions, re-rendered by the server whenever the snapshot changes
//! (and every half minute, for countdowns), sent over server-sent events when they differ
//! from what the page holds. The script in the page only swaps them in.
//!
//! A stream does not keep a session alive: when the session ends (idle, signed out) the
//! stream says so and closes, and the page reloads into the sign-in form.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use deconfliction_web::session::Session;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

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
) -> Vec<(&'static str, String)> {
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
        "match" => match s.find(&view.id) {
            Some(m) => vec![(
                "match",
                detail::match_region(state, lang, session, &s, m, now).into_string(),
            )],
            None => Vec::new(),
        },
        _ => Vec::new(),
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
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(8);
    let mut changes = state.snapshot.clone();
    tokio::spawn(async move {
        let mut sent: HashMap<&'static str, String> = HashMap::new();
        loop {
            if !state.gate.sessions.is_alive(&headers) {
                let _ = tx
                    .send(Ok(Event::default().event("signed-out").data("1")))
                    .await;
                return;
            }
            for (id, html) in regions(&state, &view, lang, &session) {
                if sent.get(id) == Some(&html) {
                    continue;
                }
                let data = serde_json::json!({ "id": id, "html": html }).to_string();
                if tx
                    .send(Ok(Event::default().event("region").data(data)))
                    .await
                    .is_err()
                {
                    return; // The page went away.
                }
                sent.insert(id, html);
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}
