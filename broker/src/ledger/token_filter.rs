//! A Bloom filter over the stored tokens of open operations, kept in memory, so that a token
//! nobody holds (most checked tokens, and every fresh token a registration looks up) is
//! answered without touching the store. With ten million stored tokens the index is far
//! larger than any page cache, and each such read would otherwise go to disk.
//!
//! Stored tokens are HMAC-SHA256 outputs, uniformly random already: the probe positions are
//! taken from the token's own bytes rather than from a hash of it. Bits are only ever set
//! (a closed operation's tokens stay in the filter until the next start), so the filter can
//! say "maybe" for a token that has gone, never "no" for one that is there.
//!
//! It grows in stages (a scalable Bloom filter): when the newest stage has taken as many
//! tokens as it was sized for, a stage twice as large is added and new tokens go there. The
//! store never has to be counted first, and a broker that runs for months never overfills.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::records::StoredToken;

/// Probes per token. At 10 bits per token (before rounding up), 7 probes give under 1 %.
const PROBES: usize = 7;
const BITS_PER_TOKEN: u64 = 10;
/// The first stage's size in tokens (8 MiB of bits).
const FIRST_STAGE_TOKENS: u64 = 1 << 22;

#[derive(Debug)]
struct Stage {
    words: Box<[AtomicU64]>,
    /// Bits in the stage minus one (a power of two minus one, below 2^32).
    mask: u64,
    capacity: u64,
    inserted: AtomicU64,
}

impl Stage {
    fn new(capacity: u64) -> Self {
        let bits = capacity
            .saturating_mul(BITS_PER_TOKEN)
            .checked_next_power_of_two()
            .unwrap_or(1 << 32)
            .clamp(64, 1 << 32);
        Self {
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits - 1,
            capacity,
            inserted: AtomicU64::new(0),
        }
    }

    /// Seven independent 32-bit words of the token, each masked to a bit position.
    fn positions(&self, stored: &StoredToken) -> [u64; PROBES] {
        std::array::from_fn(|i| {
            let at = i * 4;
            let word = [stored[at], stored[at + 1], stored[at + 2], stored[at + 3]];
            u64::from(u32::from_le_bytes(word)) & self.mask
        })
    }

    fn insert(&self, stored: &StoredToken) {
        for bit in self.positions(stored) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Release);
        }
        self.inserted.fetch_add(1, Ordering::Relaxed);
    }

    fn may_hold(&self, stored: &StoredToken) -> bool {
        self.positions(stored).iter().all(|&bit| {
            self.words[(bit / 64) as usize].load(Ordering::Acquire) & (1 << (bit % 64)) != 0
        })
    }

    fn full(&self) -> bool {
        self.inserted.load(Ordering::Relaxed) >= self.capacity
    }
}

#[derive(Debug)]
pub(crate) struct TokenFilter {
    stages: RwLock<Vec<Arc<Stage>>>,
    /// Off for a shared store: tokens other replicas register never pass through this one.
    off: bool,
}

impl Default for TokenFilter {
    fn default() -> Self {
        Self {
            stages: RwLock::new(vec![Arc::new(Stage::new(FIRST_STAGE_TOKENS))]),
            off: false,
        }
    }
}

impl TokenFilter {
    /// A filter that holds nothing and answers "maybe" to everything.
    pub(crate) fn off() -> Self {
        Self {
            stages: RwLock::new(Vec::new()),
            off: true,
        }
    }

    fn stages(&self) -> Vec<Arc<Stage>> {
        // A stage list is replaced whole, so a poisoned lock still holds a usable one.
        self.stages
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records `stored`. Called before the batch holding it is applied (a reader that can see
    /// the token in the store also finds it here), by one writer at a time (the ledger's
    /// writer lock, or the start-up rebuild).
    pub(crate) fn insert(&self, stored: &StoredToken) {
        if self.off {
            return;
        }
        let newest = {
            let stages = self.stages.read().unwrap_or_else(|p| p.into_inner());
            stages.last().cloned()
        };
        let stage = match newest {
            Some(stage) if !stage.full() => stage,
            newest => {
                let capacity = newest.map_or(FIRST_STAGE_TOKENS, |s| s.capacity.saturating_mul(2));
                let stage = Arc::new(Stage::new(capacity));
                self.stages
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(stage.clone());
                stage
            }
        };
        stage.insert(stored);
    }

    /// False only if `stored` was never inserted.
    pub(crate) fn may_hold(&self, stored: &StoredToken) -> bool {
        if self.off {
            return true;
        }
        let stages = self.stages.read().unwrap_or_else(|p| p.into_inner());
        stages.iter().any(|s| s.may_hold(stored))
    }

    /// Memory the filter takes, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.stages().iter().map(|s| s.words.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Uniform tokens, as HMAC outputs are: the hash of a counter.
    fn token(i: u64) -> StoredToken {
        Sha256::digest(i.to_be_bytes()).into()
    }

    /// Tokens from `from` on were never inserted.
    fn false_positive_rate(filter: &TokenFilter, from: u64) -> f64 {
        let trials = 100_000;
        let hits = (from..from + trials)
            .filter(|i| filter.may_hold(&token(*i)))
            .count();
        hits as f64 / trials as f64
    }

    #[test]
    fn never_misses_an_inserted_token_and_rarely_claims_an_absent_one() {
        let filter = TokenFilter::default();
        let held: Vec<StoredToken> = (0..200_000).map(token).collect();
        for t in &held {
            filter.insert(t);
        }
        assert!(held.iter().all(|t| filter.may_hold(t)));
        assert!(false_positive_rate(&filter, 1 << 40) < 0.001);
        assert_eq!(filter.bytes(), 8 << 20);
    }

    #[test]
    fn an_off_filter_answers_maybe_to_everything() {
        let filter = TokenFilter::off();
        filter.insert(&token(1));
        assert!(filter.may_hold(&token(2)));
        assert_eq!(filter.bytes(), 0);
    }

    #[test]
    fn grows_a_stage_when_the_newest_is_full() {
        // A small first stage by hand, so the test need not insert millions.
        let filter = TokenFilter {
            stages: RwLock::new(vec![Arc::new(Stage::new(1_000))]),
            off: false,
        };
        let held: Vec<StoredToken> = (0..7_000).map(token).collect();
        for t in &held {
            filter.insert(t);
        }
        // 1,000 + 2,000 + 4,000 tokens: three stages, every token still found.
        assert_eq!(filter.stages().len(), 3);
        assert!(held.iter().all(|t| filter.may_hold(t)));
        assert!(false_positive_rate(&filter, 1 << 40) < 0.03);
    }
}
