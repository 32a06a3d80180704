//! The broker's shared state: ledger, group-commit flusher, pepper, limits and metrics.
//!
//! [`Core::durable`] is the one path from "the ledger applied a batch" to "the caller may be
//! told OK": flush, then wake subscribers, then count.

use std::sync::Arc;

use crate::error::BrokerError;
use crate::error::Result;
use crate::identity::AgencyId;
use crate::ledger::{Ledger, Notifications};
use crate::ops::metrics::{AgencyLabel, Metrics};
use crate::store::Flusher;
use crate::transport::ratelimit::{RateLimiter, Refusal};

#[derive(Debug)]
pub struct Core {
    pub ledger: Arc<Ledger>,
    pub flusher: Flusher,
    pub metrics: Arc<Metrics>,
    /// Checked tokens per agency.
    pub check_limiter: RateLimiter,
    /// Registered or added tokens per agency: a registration is a hit/no-hit oracle too.
    pub register_limiter: RateLimiter,
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

    /// Charges `tokens` to the agency's `limiter` before any per-token work; `what` names
    /// the calls in the refusal ("checks", "registrations").
    pub fn charge(
        &self,
        limiter: &RateLimiter,
        what: &'static str,
        agency: &AgencyId,
        tokens: usize,
    ) -> Result<(), BrokerError> {
        match limiter.take(agency, tokens.max(1) as f64) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                self.metrics.call_refused(&format!("{what}_rate"));
                tracing::info!(agency = %agency, tokens, what, "refused: rate limit");
                Err(match refusal {
                    Refusal::RetryAfter { seconds } => BrokerError::RateExceeded {
                        what,
                        retry_after_secs: seconds,
                    },
                    Refusal::LargerThanBurst { burst } => BrokerError::LargerThanRate {
                        what,
                        tokens,
                        burst: burst as u64,
                    },
                })
            }
        }
    }

    pub fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}
