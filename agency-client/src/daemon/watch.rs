//! The `Watch` feed: stored alerts after a seq (if asked), then live events, with no alert
//! twice. Ends when the client goes away or the daemon shuts down.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::core::Core;
use super::views::alert_view;
use crate::control::pb;
use crate::control::pb::watch_event::Event;

/// Starts a feed task and returns its stream.
pub fn start(
    core: Arc<Core>,
    req: pb::WatchRequest,
    mut shutdown: watch::Receiver<bool>,
) -> ReceiverStream<Result<pb::WatchEvent, Status>> {
    let (tx, rx) = mpsc::channel(256);
    // Subscribe before reading the backlog, so nothing falls between the two.
    let mut live = core.events.subscribe();
    tokio::spawn(async move {
        let mut last = req.after_seq;
        if req.backlog {
            let backlog = match core.store.alerts_after(req.after_seq, usize::MAX) {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                    return;
                }
            };
            for a in backlog {
                last = a.seq;
                let event = pb::WatchEvent {
                    event: Some(Event::Alert(alert_view(&a))),
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let next = tokio::select! {
                n = live.recv() => n,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            };
            match next {
                Ok(event) => {
                    if let Some(Event::Alert(a)) = &event.event {
                        if req.backlog && a.seq <= last {
                            continue;
                        }
                        last = last.max(a.seq);
                    }
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "watch: a slow client missed events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    ReceiverStream::new(rx)
}
