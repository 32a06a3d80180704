//! Per-agency token buckets (checks, token evaluations).

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

    /// Takes `cost` units from the agency's bucket; false when it does not hold that many.
    pub fn try_take(&self, agency: &AgencyId, cost: f64) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (level, last) = buckets.entry(agency.clone()).or_insert((self.burst, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.per_second;
        *level = (*level + refill).min(self.burst);
        *last = now;
        if *level >= cost {
            *level -= cost;
            true
        } else {
            false
        }
    }
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
