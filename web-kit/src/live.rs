//! Live regions over server-sent events, for both consoles: a page names the regions it holds
//! (element ids); the server renders them again after every change and sends a region when it
//! differs from what the page holds (`live.js` puts it in place). A stream does not keep a
//! session alive: once the session has ended it says `signed-out` and closes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// A page's regions: (element id, its HTML).
pub type Regions = Vec<(&'static str, String)>;

/// Countdowns and ages move without a change: regions are rendered again this often anyway.
const REFRESH: Duration = Duration::from_secs(30);

/// The event stream of one page: `render` at start, after every change on `changes` and every
/// half minute; `alive` tells whether the page's session still holds.
pub fn stream<T, R, Fut>(
    mut changes: watch::Receiver<T>,
    alive: impl Fn() -> bool + Send + 'static,
    mut render: R,
) -> Response
where
    T: Send + Sync + 'static,
    R: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Regions> + Send,
{
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(8);
    tokio::spawn(async move {
        let mut sent: HashMap<&'static str, String> = HashMap::new();
        loop {
            if !alive() {
                let _ = tx
                    .send(Ok(Event::default().event("signed-out").data("1")))
                    .await;
                return;
            }
            for (id, html) in render().await {
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
                _ = tokio::time::sleep(REFRESH) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}
