//! Per-agency evaluation quotas (elements per minute and per day), charged before any
//! evaluation work, and the choice of key for a requested epoch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::BrokerError;
use crate::identity::AgencyId;

use super::key::{PreviousKey, TokenKey};

/// Per-agency evaluation quota, in elements per minute and per day.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub per_minute: u64,
    pub per_day: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            per_minute: 100_000,
            per_day: 5_000_000,
        }
    }
}

#[derive(Debug, Default)]
struct Usage {
    minute: i64,
    minute_count: u64,
    day: i64,
    day_count: u64,
}

/// What each agency has used in the current minute and day.
#[derive(Debug, Default)]
pub struct QuotaBook {
    quota: Quota,
    usage: Mutex<HashMap<AgencyId, Usage>>,
}

impl QuotaBook {
    pub fn new(quota: Quota) -> Self {
        Self {
            quota,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// Charges `n` elements to `agency`, or says which limit refuses them.
    pub fn take(&self, agency: &AgencyId, n: u64, now: i64) -> Result<(), BrokerError> {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let u = usage.entry(agency.clone()).or_default();
        let (minute, day) = (now.div_euclid(60), now.div_euclid(86_400));
        if u.minute != minute {
            u.minute = minute;
            u.minute_count = 0;
        }
        if u.day != day {
            u.day = day;
            u.day_count = 0;
        }
        if n > self.quota.per_minute || n > self.quota.per_day {
            return Err(BrokerError::QuotaExceeded(format!(
                "a batch of {n} elements is larger than this agency's quota ({} per minute, {} \
                 per day): split the batch",
                self.quota.per_minute, self.quota.per_day
            )));
        }
        if u.minute_count + n > self.quota.per_minute {
            return Err(BrokerError::QuotaExceeded(format!(
                "token evaluation quota exceeded: {} per minute; retry in a minute",
                self.quota.per_minute
            )));
        }
        if u.day_count + n > self.quota.per_day {
            return Err(BrokerError::QuotaExceeded(format!(
                "token evaluation quota exceeded: {} per day; ask the token-service operator",
                self.quota.per_day
            )));
        }
        u.minute_count += n;
        u.day_count += n;
        Ok(())
    }
}

/// The current key and, during a rotation's overlap, the previous one.
#[derive(Debug, Clone)]
pub struct KeyRing {
    pub current: Arc<TokenKey>,
    pub previous: Option<PreviousKey>,
}

impl KeyRing {
    /// The key for a requested epoch (0: the current one), or why it is not served.
    pub fn key_for(&self, epoch: u32, now: i64) -> Result<Arc<TokenKey>, BrokerError> {
        if epoch == 0 || epoch == self.current.epoch() {
            return Ok(self.current.clone());
        }
        match &self.previous {
            Some(p) if p.key.epoch() == epoch && now < p.until => Ok(p.key.clone()),
            Some(p) if p.key.epoch() == epoch => Err(BrokerError::KeyEpochNotServed(format!(
                "key epoch {epoch} was retired at {} (unix); re-derive under epoch {} with the \
                 key from the federation administrator",
                p.until,
                self.current.epoch()
            ))),
            _ => Err(BrokerError::KeyEpochNotServed(format!(
                "key epoch {epoch} is not served; the current epoch is {} (update the pinned key)",
                self.current.epoch()
            ))),
        }
    }
}
