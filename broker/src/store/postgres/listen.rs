//! Wake-ups from the other replicas: a connection that LISTENs for commits that queued
//! alerts. The alert sequence in the table stays the truth: the listener also ticks once a
//! second whatever arrives, so a lost notification (or a listener reconnecting) delays an
//! alert by a second at most, never loses it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::watch;

use super::conn::{ConnSpec, POLL};
use crate::store::StoreError;

pub(super) fn start(
    spec: Arc<ConnSpec>,
    channel: &'static str,
    stop: Arc<AtomicBool>,
) -> Result<watch::Receiver<u64>, StoreError> {
    let (tx, rx) = watch::channel(0u64);
    std::thread::Builder::new()
        .name("pg-listen".into())
        .spawn(move || run(&spec, channel, &tx, &stop))
        .map_err(|e| StoreError::Io(format!("cannot start the database listener: {e}")))?;
    Ok(rx)
}

fn run(spec: &ConnSpec, channel: &str, tick: &watch::Sender<u64>, stop: &AtomicBool) {
    let mut client: Option<postgres::Client> = None;
    let bump = || {
        tick.send_modify(|n| *n = n.wrapping_add(1));
    };
    while !stop.load(Ordering::Acquire) {
        if client.as_ref().is_none_or(postgres::Client::is_closed) {
            client = spec.connect().ok().and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {channel}"))
                    .ok()
                    .map(|_| c)
            });
        }
        match &mut client {
            Some(c) => {
                let mut notifications = c.notifications();
                let mut waiting = notifications.timeout_iter(POLL);
                loop {
                    match waiting.next() {
                        Ok(Some(_)) => bump(),
                        Ok(None) => break,
                        Err(_) => {
                            // Broken: reconnect on the next round.
                            break;
                        }
                    }
                }
            }
            None => std::thread::sleep(POLL),
        }
        // The poll: whatever the notifications did, subscribers look at the table again.
        bump();
    }
}
