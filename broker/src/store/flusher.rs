//! One group-commit flusher for the whole broker.
//!
//! sled's `flush_async` hangs with 8+ concurrent waiters (sled issue 1308), and a flush per
//! request would serialize every write on an fsync. Instead, writers queue a waiter; a single
//! thread takes every waiter queued so far, runs one synchronous flush, and answers them all.
//! A waiter queued after its write was applied is covered by the flush that answers it,
//! because that flush starts after the waiter was taken from the queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Clone, Debug)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<Waiter>,
}

/// Observes each group flush: (how many writes it covered, how long it took).
pub type FlushObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

impl Flusher {
    /// Starts the flusher thread. It stops when every [`Flusher`] clone is dropped.
    pub fn start(store: Arc<dyn Store>, observer: Option<FlushObserver>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        let spawned = std::thread::Builder::new()
            .name("group-flush".into())
            .spawn(move || {
                let mut group = Vec::new();
                while let Some(first) = rx.blocking_recv() {
                    group.push(first);
                    while let Ok(more) = rx.try_recv() {
                        group.push(more);
                    }
                    let started = Instant::now();
                    let result = store.flush_blocking().map_err(|e| e.to_string());
                    if let Some(observe) = &observer {
                        observe(group.len(), started.elapsed());
                    }
                    if let Err(e) = &result {
                        tracing::error!(error = %e, waiters = group.len(), "group flush failed");
                    }
                    for waiter in group.drain(..) {
                        let _ = waiter.send(result.clone());
                    }
                }
            });
        if let Err(e) = spawned {
            // Without a thread every flush() reports FlusherStopped: writes are refused, never
            // acknowledged undurably.
            tracing::error!(error = %e, "cannot start the group-commit flusher");
        }
        Self { tx }
    }

    /// Resolves once everything applied before this call is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).map_err(|_| StoreError::FlusherStopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Io(e)),
            Err(_) => Err(StoreError::FlusherStopped),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::{SledStore, WriteBatch};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_waiters_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
        let groups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let g = groups.clone();
        let flusher = Flusher::start(
            store.clone(),
            Some(Arc::new(move |_, _| {
                g.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })),
        );
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let store = store.clone();
            let flusher = flusher.clone();
            tasks.push(tokio::spawn(async move {
                let mut batch = WriteBatch::default();
                batch.put(i.to_be_bytes().to_vec(), b"v".to_vec());
                store.apply(batch).unwrap();
                flusher.flush().await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Group commit: fewer flushes than writers (usually far fewer).
        assert!(groups.load(std::sync::atomic::Ordering::Relaxed) <= 64);
    }
}
