//! Alert streams held open per agency, bounded: one agency's reconnect loop (or a stolen
//! certificate) cannot hold an unbounded number of Subscribe streams and their tasks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::BrokerError;
use crate::identity::AgencyId;

#[derive(Debug)]
pub struct StreamSlots {
    max: usize,
    open: Mutex<HashMap<AgencyId, usize>>,
}

/// One open stream; dropping it (the stream's task ends) frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    agency: AgencyId,
}

impl StreamSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more stream of `agency`, or the refusal that names the limit.
    pub fn open(self: &Arc<Self>, agency: &AgencyId) -> Result<StreamSlot, BrokerError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(agency.clone()).or_insert(0);
        if *n >= self.max {
            return Err(BrokerError::TooManyStreams { max: self.max });
        }
        *n += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            agency: agency.clone(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.agency) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.agency);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn slots_per_agency_are_freed_when_streams_end() {
        let slots = StreamSlots::new(2);
        let a = AgencyId::parse("a").unwrap();
        let b = AgencyId::parse("b").unwrap();
        let first = slots.open(&a).unwrap();
        let _second = slots.open(&a).unwrap();
        assert!(slots.open(&a).is_err());
        assert!(slots.open(&b).is_ok());
        drop(first);
        assert!(slots.open(&a).is_ok());
    }
}
