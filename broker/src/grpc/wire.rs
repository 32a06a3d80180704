//! Domain values into wire messages: the ledger answers in its own types (`ledger::views`),
//! and these conversions are the only place they become `deconfliction.v1` messages.

use deconfliction_proto::v1;

use crate::ledger::coordination::Coordination;
use crate::ledger::progress::SideProgress;
use crate::ledger::records::MatchState;
use crate::ledger::{AgencyCounts, BoardRow, MatchSummary, OwnSelector, PartyView, Statistics};

fn state(s: MatchState) -> i32 {
    match s {
        MatchState::Open => v1::MatchState::Open as i32,
        MatchState::Resolved => v1::MatchState::Resolved as i32,
    }
}

fn selector(s: &OwnSelector) -> v1::MatchedToken {
    v1::MatchedToken {
        kind: s.kind,
        local_ref: s.local_ref,
    }
}

impl From<PartyView> for v1::MatchView {
    fn from(v: PartyView) -> Self {
        Self {
            match_id: v.match_id.to_string(),
            operation_id: v.operation_id.to_string(),
            state: state(v.state),
            outcome: v.outcome,
            created_unix: v.created,
            updated_unix: v.updated,
            tokens: v.selectors.iter().map(selector).collect(),
            you_disclosed: v.you_disclosed,
            cards_exchanged: v.cards_exchanged,
        }
    }
}

impl From<MatchSummary> for v1::MatchMetadata {
    fn from(m: MatchSummary) -> Self {
        let [a, b] = m.agencies;
        let progress = |agency: &str, p: SideProgress| v1::MatchProgress {
            agency_id: agency.to_owned(),
            seen_unix: p.seen,
            acknowledged_unix: p.acknowledged,
            first_message_unix: p.first_message,
            messages: p.messages,
            disclosed_unix: p.disclosed,
            resolved_unix: p.resolved,
        };
        Self {
            match_id: m.match_id.to_string(),
            created_unix: m.created,
            updated_unix: m.updated,
            state: state(m.state),
            outcome: m.outcome,
            kinds: m.kinds,
            progress: vec![progress(&a, m.progress.a), progress(&b, m.progress.b)],
            agency_ids: vec![a, b],
            shared_tokens: m.shared_tokens,
            overlap: m.overlap.map(|(start_unix, end_unix)| v1::Window {
                start_unix,
                end_unix,
            }),
            earliest_start_unix: m.earliest_start,
            coordination: Some(m.coordination.into()),
        }
    }
}

impl From<Coordination> for v1::Coordination {
    fn from(c: Coordination) -> Self {
        Self {
            claimed_by: c.claimed_by,
            claimed_unix: c.claimed,
            escalated: c.escalated,
            escalated_by: c.escalated_by,
            escalated_unix: c.escalated_at,
            notes: c
                .notes
                .into_iter()
                .map(|n| v1::CoordinationNote {
                    officer: n.officer,
                    at_unix: n.at,
                    text: n.text,
                })
                .collect(),
        }
    }
}

impl From<BoardRow> for v1::AgencyBoardEntry {
    fn from(r: BoardRow) -> Self {
        let entry = r.entry.unwrap_or(crate::ledger::records::AgencyEntry {
            role: v1::Role::Agency as i32,
            display_name: String::new(),
            suspended: false,
            suspension_reason: String::new(),
            updated: 0,
        });
        Self {
            agency_id: r.agency,
            display_name: entry.display_name,
            role: entry.role,
            suspended: entry.suspended,
            // Filled by the service, which knows who called lately.
            last_contact_unix: 0,
            open_operations: r.counts.open_operations,
            open_matches: r.counts.open_matches,
            queued_alerts: r.counts.queued_alerts,
            unacknowledged_matches: r.unacknowledged_matches,
        }
    }
}

impl From<AgencyCounts> for v1::AgencyStatistics {
    fn from(a: AgencyCounts) -> Self {
        Self {
            agency_id: a.agency,
            open_operations: a.open_operations,
            open_matches: a.open_matches,
            queued_alerts: a.queued_alerts,
        }
    }
}

impl From<Statistics> for v1::Statistics {
    fn from(s: Statistics) -> Self {
        Self {
            open_operations: s.open_operations,
            open_matches: s.open_matches,
            resolved_matches: s.resolved_matches,
            agencies: s.agencies.into_iter().map(Into::into).collect(),
            // Filled by the service, which holds the checkpoint key.
            audit_checkpoint: String::new(),
            audit_checkpoint_mac: String::new(),
        }
    }
}
