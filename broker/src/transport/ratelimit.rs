//! Per-agency token buckets, charged in tokens (a check or registration of many tokens is many
//! guesses) before any per-token work is done.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::identity::AgencyId;

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<AgencyId, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second: per_second.max(0.0),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `cost` units from the agency's bucket, or says why not.
    pub fn take(&self, agency: &AgencyId, cost: f64) -> Result<(), Refusal> {
        if cost > self.burst {
            return Err(Refusal::LargerThanBurst { burst: self.burst });
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (level, last) = buckets.entry(agency.clone()).or_insert((self.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.per_second;
        *level = (*level + refill).min(self.burst);
        *last = now;
        if *level >= cost {
            *level -= cost;
            Ok(())
        } else if self.per_second > 0.0 {
            Err(Refusal::RetryAfter {
                seconds: ((cost - *level) / self.per_second).ceil().max(1.0) as u64,
            })
        } else {
            Err(Refusal::LargerThanBurst { burst: *level })
        }
    }

    /// As [`Self::take`], true when taken.
    pub fn try_take(&self, agency: &AgencyId, cost: f64) -> bool {
        self.take(agency, cost).is_ok()
    }
}

/// Why a bucket refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// Enough will have refilled after this many seconds.
    RetryAfter { seconds: u64 },
    /// Never at once: the request is larger than the bucket holds.
    LargerThanBurst { burst: f64 },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_per_agency() {
        let limiter = RateLimiter::new(0.0, 3.0);
        let a = AgencyId::parse("a").unwrap();
        let b = AgencyId::parse("b").unwrap();
        assert!((0..3).all(|_| limiter.try_take(&a, 1.0)));
        assert!(!limiter.try_take(&a, 1.0));
        assert!(limiter.try_take(&b, 1.0));
    }
}
