//! What the ledger keeps at rest. Tokens appear only as `HMAC-SHA256(pepper, token)`.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::store::StoreError;

pub type StoredToken = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// Half-open windows `[start, end)` overlap when each starts before the other ends.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpState {
    Open,
    Closed,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRec {
    pub stored: StoredToken,
    /// `deconfliction.v1.SelectorKind` as its number.
    pub kind: i32,
    pub local_ref: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpRecord {
    pub agency: String,
    pub window: Window,
    pub state: OpState,
    pub case_reference: String,
    pub created: i64,
    pub updated: i64,
    /// Digest of the original registration, for idempotent repeats.
    pub registration_digest: [u8; 32],
    pub tokens: Vec<TokenRec>,
    pub match_ids: Vec<[u8; 16]>,
}

/// An open operation's entry under one of its stored tokens: enough to decide a match
/// without reading the operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Posting {
    pub op: [u8; 16],
    pub agency: String,
    pub window: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchState {
    Open,
    /// Resolved matches no longer grow until reopened.
    Resolved,
}

/// `deconfliction.v1.MatchOutcome` as its number.
pub type Outcome = i32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub unit_name: String,
    pub officer: String,
    pub phone: String,
    pub secure_email: String,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatchSide {
    pub op: [u8; 16],
    pub agency: String,
    /// This side's contact card, held until both sides have disclosed.
    #[serde(default)]
    pub card: Option<Card>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatchRecord {
    /// `a` holds the operation with the lower id.
    pub a: MatchSide,
    pub b: MatchSide,
    pub shared: Vec<StoredToken>,
    pub created: i64,
    pub updated: i64,
    pub state: MatchState,
    pub outcome: Outcome,
    pub note: String,
    /// Both cards were delivered; neither can be withdrawn any more.
    pub cards_exchanged: bool,
}

/// An agency's entry in the broker's registry (role, suspension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyEntry {
    /// `deconfliction.v1.Role` as its number.
    pub role: i32,
    pub display_name: String,
    pub suspended: bool,
    pub suspension_reason: String,
    pub updated: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct QueueState {
    /// The sequence number the next alert gets (starts at 1).
    pub next_seq: u64,
    /// Everything at or below this has been acknowledged and trimmed.
    pub acked: u64,
}

impl QueueState {
    pub fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|e| StoreError::Io(format!("encoding failed: {e}")))
}

pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        // Keys hold ids and stored tokens only: print the prefix, not the rest.
        key: String::from_utf8_lossy(key.get(..3).unwrap_or(key)).into_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_overlap_is_half_open() {
        let w = |start, end| Window { start, end };
        assert!(w(0, 10).overlaps(&w(5, 15)));
        assert!(w(5, 15).overlaps(&w(0, 10)));
        assert!(!w(0, 10).overlaps(&w(10, 20)));
        assert!(w(0, 100).overlaps(&w(10, 20)));
    }
}
