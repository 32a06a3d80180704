//! Live updates of the desk's pages: the alerts list and a match's conversation re-rendered
//! at every event of the daemon (an alert stored, an operation confirmed or refused) and sent
//! over server-sent events when they changed. A stream does not keep a session alive.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

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
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(8);
    let mut changes = desk.changes.clone();
    tokio::spawn(async move {
        let mut sent: HashMap<&'static str, String> = HashMap::new();
        loop {
            if !desk.gate.sessions.is_alive(&headers) {
                let _ = tx
                    .send(Ok(Event::default().event("signed-out").data("1")))
                    .await;
                return;
            }
            let region = match view.view.as_str() {
                "alerts" => (
                    "alerts",
                    alerts::alerts_region(&desk, lang, &session)
                        .await
                        .into_string(),
                ),
                "import" => (
                    "import",
                    import::progress_region(&desk, lang, &view.id).into_string(),
                ),
                _ => (
                    "match",
                    matches::match_region(&desk, lang, &session, &view.id)
                        .await
                        .into_string(),
                ),
            };
            if sent.get(region.0) != Some(&region.1) {
                let data = serde_json::json!({ "id": region.0, "html": region.1 }).to_string();
                if tx
                    .send(Ok(Event::default().event("region").data(data)))
                    .await
                    .is_err()
                {
                    return;
                }
                sent.insert(region.0, region.1);
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
