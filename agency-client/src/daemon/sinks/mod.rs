//! Alert sinks: each configured sink is a task that reads stored alerts after its own durable
//! cursor and delivers them in order, retrying with backoff until it succeeds (a sink that is
//! down holds up only itself, and loses nothing). The file sink also reads the last seq it
//! wrote back from the file, so a crash between writing a line and moving the cursor does not
//! write the line twice. The log "sink" is part of the alert task (see `alerts.rs`).

mod file;
mod http;

use std::sync::Arc;

use tokio::sync::watch;

use super::core::Core;
use super::records::AlertRecord;
use super::store::{Batch, StoreError, cursor_key};
use super::timing::Backoff;

pub use file::FileSink;
pub use http::{HttpUrl, WebhookSink};

/// One destination.
pub enum Sink {
    /// Append-only JSON lines.
    File(FileSink),
    /// HTTP POST.
    Webhook(Box<WebhookSink>),
}

impl Sink {
    fn name(&self) -> &'static str {
        match self {
            Self::File(_) => "jsonl",
            Self::Webhook(_) => "webhook",
        }
    }

    async fn deliver(&mut self, alert: &AlertRecord) -> Result<(), String> {
        match self {
            Self::File(f) => f.append(alert),
            Self::Webhook(w) => w.post(alert).await,
        }
    }

    fn delivered_upto(&self) -> u64 {
        match self {
            Self::File(f) => f.last_seq(),
            Self::Webhook(_) => 0,
        }
    }
}

/// The sinks the configuration asks for.
pub fn configured(core: &Core) -> Result<Vec<Sink>, String> {
    let mut sinks = Vec::new();
    if let Some(path) = &core.config.sinks.jsonl {
        sinks.push(Sink::File(FileSink::open(path)?));
    }
    if let Some(url) = &core.config.sinks.webhook {
        sinks.push(Sink::Webhook(Box::new(webhook(&core.config.sinks, url)?)));
    }
    Ok(sinks)
}

/// The webhook sink the configuration asks for. Its payload holds plaintext selectors and
/// contact cards: HTTPS with the receiver's CA pinned, or plain HTTP to this host only unless
/// the configuration explicitly allows the network.
fn webhook(config: &crate::daemon::config::SinksSection, url: &str) -> Result<WebhookSink, String> {
    let url = HttpUrl::parse(url).map_err(|e| format!("[sinks] webhook: {e}"))?;
    let pinned = if url.https {
        let ca = config.webhook_ca.as_deref().ok_or(
            "[sinks] webhook is https://: set [sinks] webhook_ca to the PEM CA the receiver's \
             certificate chains to (it is the only CA trusted for the webhook)",
        )?;
        Some(http::pinned_roots(ca).map_err(|e| format!("[sinks] webhook_ca: {e}"))?)
    } else {
        if !url.is_loopback() && !config.webhook_allow_plain_http {
            return Err(format!(
                "[sinks] webhook: http://{} would send selectors and contact cards in clear \
                 over the network: use https:// with webhook_ca, a receiver on this host, or \
                 set webhook_allow_plain_http = true for a segment you trust",
                url.host
            ));
        }
        None
    };
    let timeout = std::time::Duration::from_millis(config.webhook_timeout_ms.max(1));
    WebhookSink::new(url, timeout, pinned.as_ref()).map_err(|e| format!("[sinks] webhook: {e}"))
}

/// Delivers stored alerts to `sink` until `shutdown` turns true.
pub async fn run(core: Arc<Core>, mut sink: Sink, mut shutdown: watch::Receiver<bool>) {
    let key = cursor_key(sink.name());
    let mut cursor = match core.store.get_u64(&key) {
        Ok(c) => c.max(sink.delivered_upto()),
        Err(e) => {
            tracing::error!(sink = sink.name(), error = %e, "sink: cannot read its cursor");
            return;
        }
    };
    let mut stored = core.alerts_stored.subscribe();
    let mut backoff = Backoff::new(core.retry_initial(), core.retry_max());
    loop {
        let batch = match core.store.alerts_after(cursor, 100) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(sink = sink.name(), error = %e, "sink: cannot read alerts");
                Vec::new()
            }
        };
        if batch.is_empty() {
            tokio::select! {
                r = stored.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        for alert in batch {
            loop {
                let result = tokio::select! {
                    r = sink.deliver(&alert) => r,
                    _ = shutdown.changed() => return,
                };
                match result {
                    Ok(()) => {
                        backoff.reset();
                        break;
                    }
                    Err(reason) => {
                        let wait = backoff.next_wait();
                        tracing::warn!(
                            sink = sink.name(),
                            seq = alert.seq,
                            retry_in_ms = wait.as_millis() as u64,
                            reason = %reason,
                            "sink: delivery failed; will retry"
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => return,
                        }
                    }
                }
            }
            cursor = alert.seq;
            if let Err(e) = save_cursor(&core, &key, cursor) {
                tracing::error!(sink = sink.name(), error = %e, "sink: cannot save its cursor");
            }
        }
    }
}

fn save_cursor(core: &Core, key: &[u8], cursor: u64) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    batch.put_u64(key.to_vec(), cursor);
    core.store.apply(batch)
}
