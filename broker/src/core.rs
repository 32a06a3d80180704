//! The broker's shared state: ledger, group-commit flusher, pepper, limits and metrics.
//!
//! [`Core::durable`] is the one path from "the ledger applied a batch" to "the caller may be
//! told OK": flush, then wake subscribers, then count.

use std::sync::Arc;

use crate::error::Result;
use crate::ledger::{Ledger, Notifications};
use crate::ops::metrics::{AgencyLabel, Metrics};
use crate::store::Flusher;
use crate::transport::ratelimit::RateLimiter;

#[derive(Debug)]
pub struct Core {
    pub ledger: Arc<Ledger>,
    pub flusher: Flusher,
    pub metrics: Arc<Metrics>,
    pub check_limiter: RateLimiter,
}

impl Core {
    /// Waits until everything applied so far is on disk, then publishes the alerts.
    pub async fn durable(&self, notes: Notifications) -> Result<()> {
        self.flusher.flush().await?;
        self.publish(notes);
        Ok(())
    }

    fn publish(&self, notes: Notifications) {
        self.metrics.matches_created.inc_by(notes.matches_created);
        self.metrics.matches_grown.inc_by(notes.matches_grown);
        for q in &notes.queued {
            self.ledger.hub().publish(&q.agency, q.last_seq);
            self.metrics
                .alert_queue_depth
                .get_or_create(&AgencyLabel {
                    agency: q.agency.to_string(),
                })
                .set(q.depth as i64);
        }
    }

    pub fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}
