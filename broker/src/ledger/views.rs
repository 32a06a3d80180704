//! What the ledger answers with: domain values the gRPC layer turns into wire messages
//! (`grpc::wire`). Alerts are the exception: a queue stores each alert in its wire encoding,
//! so that a subscriber's stream is a copy of its queue.

use uuid::Uuid;

use super::records::MatchState;

/// One of the caller's own selectors in a match: its kind and the `local_ref` the caller
/// chose, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnSelector {
    pub kind: i32,
    pub local_ref: u64,
}

/// A match as one party sees it: its own operation and selectors, and what it did itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyView {
    pub match_id: Uuid,
    pub operation_id: Uuid,
    pub state: MatchState,
    /// `deconfliction.v1.MatchOutcome` as its number (0 while open).
    pub outcome: i32,
    pub created: i64,
    pub updated: i64,
    pub selectors: Vec<OwnSelector>,
    pub you_disclosed: bool,
    pub cards_exchanged: bool,
}

/// A match as the watch centre sees it: ids, times, kinds, state and the two agencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchSummary {
    pub match_id: Uuid,
    pub created: i64,
    pub updated: i64,
    pub state: MatchState,
    pub outcome: i32,
    pub kinds: Vec<i32>,
    pub agencies: [String; 2],
    pub shared_tokens: u32,
    /// In the order of `agencies`.
    pub progress: super::progress::MatchProgress,
    /// Where the two operations' windows overlap (none once an operation record is gone).
    pub overlap: Option<(i64, i64)>,
    /// The earlier of the two operations' starts (0 when neither record is left).
    pub earliest_start: i64,
    pub coordination: super::coordination::Coordination,
}

/// Federation-wide counts for the watch centre.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statistics {
    pub open_operations: u64,
    pub open_matches: u64,
    pub resolved_matches: u64,
    /// Sorted by agency id.
    pub agencies: Vec<AgencyCounts>,
}

/// One agency's share of [`Statistics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgencyCounts {
    pub agency: String,
    pub open_operations: u64,
    pub open_matches: u64,
    pub queued_alerts: u64,
}
