//! The watch centre's own coordination of a conflict: which watch officer owns it, their
//! notes, whether it is escalated. Agencies never see it; every watch-centre caller does.
//!
//! Kept under its own key (`wc/` + match id) like the progress record, so that match records
//! and stores written before it read unchanged. Officers are named by the console that
//! authenticated them; the broker records the name with the watch centre's agency id in the
//! audit log ("who claimed this" has an answer).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::audit::AuditEvent;
use super::records::MatchRecord;
use super::views::MatchSummary;
use super::{Ledger, keys};
use crate::error::{BrokerError, Result, invalid};
use crate::identity::AgencyId;

/// Longest officer name and note the broker stores.
pub const MAX_OFFICER_CHARS: usize = 64;
pub const MAX_NOTE_CHARS: usize = 2000;
/// Notes kept per match: the oldest go first beyond this (a coordination log, not a chat).
const MAX_NOTES: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordination {
    pub claimed_by: String,
    pub claimed: i64,
    pub escalated: bool,
    pub escalated_by: String,
    pub escalated_at: i64,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub officer: String,
    pub at: i64,
    pub text: String,
}

/// What a watch officer does to a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coordinate {
    Claim,
    Release,
    Note(String),
    Escalate(bool),
}

/// An officer's name as the broker will record it: trimmed, 1–64 characters, no control
/// characters (it goes into audit records and onto every console).
pub fn officer_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(invalid(
            "officer is empty: name the watch officer taking this action",
        ));
    }
    if name.chars().count() > MAX_OFFICER_CHARS {
        return Err(invalid(format!(
            "officer is longer than {MAX_OFFICER_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("officer contains control characters"));
    }
    Ok(name.to_owned())
}

fn note_text(raw: &str) -> Result<String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(invalid("note is empty"));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(invalid(format!(
            "note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(
            "note contains control characters (only line breaks are kept)",
        ));
    }
    Ok(text.to_owned())
}

impl Coordination {
    /// Applies `action` by `officer` at `now`; false when it changed nothing (a repeat).
    fn apply(&mut self, id: &Uuid, officer: &str, action: &Coordinate, now: i64) -> Result<bool> {
        Ok(match action {
            Coordinate::Claim if self.claimed_by == officer => false,
            Coordinate::Claim if !self.claimed_by.is_empty() => {
                return Err(BrokerError::ClaimedByOther {
                    id: *id,
                    officer: self.claimed_by.clone(),
                });
            }
            Coordinate::Claim => {
                self.claimed_by = officer.to_owned();
                self.claimed = now;
                true
            }
            Coordinate::Release if self.claimed_by.is_empty() => false,
            Coordinate::Release if self.claimed_by != officer => {
                return Err(BrokerError::ClaimedByOther {
                    id: *id,
                    officer: self.claimed_by.clone(),
                });
            }
            Coordinate::Release => {
                self.claimed_by.clear();
                self.claimed = 0;
                true
            }
            Coordinate::Note(text) => {
                if self.notes.len() >= MAX_NOTES {
                    self.notes.remove(0);
                }
                self.notes.push(Note {
                    officer: officer.to_owned(),
                    at: now,
                    text: text.clone(),
                });
                true
            }
            Coordinate::Escalate(on) if self.escalated == *on => false,
            Coordinate::Escalate(on) => {
                self.escalated = *on;
                self.escalated_by = if *on {
                    officer.to_owned()
                } else {
                    String::new()
                };
                self.escalated_at = if *on { now } else { 0 };
                true
            }
        })
    }
}

fn audit_action(action: &Coordinate) -> &'static str {
    match action {
        Coordinate::Claim => "claim_match",
        Coordinate::Release => "release_match",
        Coordinate::Note(_) => "annotate_match",
        Coordinate::Escalate(true) => "escalate_match",
        Coordinate::Escalate(false) => "deescalate_match",
    }
}

impl Ledger {
    /// A watch officer of `watch_centre` claims, releases, annotates or escalates match `id`;
    /// answers the match as it now stands. A repeat (claiming a match one holds) changes
    /// nothing and is not audited again.
    pub fn coordinate(
        &self,
        watch_centre: &AgencyId,
        officer: &str,
        id: &Uuid,
        action: Coordinate,
        now: i64,
    ) -> Result<MatchSummary> {
        let officer = officer_name(officer)?;
        let action = match action {
            Coordinate::Note(text) => Coordinate::Note(note_text(&text)?),
            other => other,
        };
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let m: MatchRecord = txn
            .get_rec(&keys::match_record(id))?
            .ok_or(BrokerError::NoSuchMatch(*id))?;
        let key = keys::coordination(id);
        let mut c: Coordination = txn.get_rec(&key)?.unwrap_or_default();
        if c.apply(id, &officer, &action, now)? {
            txn.put_rec(key, &c)?;
            let mut event = AuditEvent::new(watch_centre.as_str(), audit_action(&action))
                .id(id)
                .id(format!("officer:{officer}"));
            if let Coordinate::Note(text) = &action {
                event = event.count("note_chars", text.chars().count() as u64);
            }
            txn.audit(event);
            // Nothing is queued for agencies: coordination is the watch centre's alone.
            let _ = txn.commit(&self.hub, &self.audit, now)?;
        }
        self.match_summary(id, &m, Some(c))
    }

    /// The coordination recorded for match `id` (empty when none was).
    pub fn coordination(&self, id: &Uuid) -> Result<Coordination> {
        let key = keys::coordination(id);
        Ok(match self.store.get(&key)? {
            Some(bytes) => super::records::decode(&key, &bytes)?,
            None => Coordination::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_claim_at_a_time_and_only_its_holder_releases() {
        let id = Uuid::nil();
        let mut c = Coordination::default();
        assert!(c.apply(&id, "Li Wei", &Coordinate::Claim, 10).unwrap());
        assert!(!c.apply(&id, "Li Wei", &Coordinate::Claim, 11).unwrap());
        let err = c
            .apply(&id, "Wang Fang", &Coordinate::Claim, 12)
            .unwrap_err();
        assert!(err.to_string().contains("claimed by Li Wei"), "{err}");
        assert!(c.apply(&id, "Wang Fang", &Coordinate::Release, 13).is_err());
        assert!(c.apply(&id, "Li Wei", &Coordinate::Release, 14).unwrap());
        assert!(c.apply(&id, "Wang Fang", &Coordinate::Claim, 15).unwrap());
        assert_eq!((c.claimed_by.as_str(), c.claimed), ("Wang Fang", 15));
    }

    #[test]
    fn escalation_repeats_change_nothing_and_notes_are_bounded() {
        let id = Uuid::nil();
        let mut c = Coordination::default();
        assert!(c.apply(&id, "a", &Coordinate::Escalate(true), 1).unwrap());
        assert!(!c.apply(&id, "b", &Coordinate::Escalate(true), 2).unwrap());
        assert_eq!(c.escalated_by, "a");
        for i in 0..(MAX_NOTES + 5) {
            c.apply(&id, "a", &Coordinate::Note(format!("n{i}")), 3)
                .unwrap();
        }
        assert_eq!(c.notes.len(), MAX_NOTES);
        assert_eq!(c.notes[0].text, "n5");
    }

    #[test]
    fn names_and_notes_are_checked() {
        assert!(officer_name("  ").is_err());
        assert!(officer_name(&"x".repeat(65)).is_err());
        assert!(officer_name("a\u{7}b").is_err());
        assert_eq!(officer_name(" 李伟 ").unwrap(), "李伟");
        assert!(note_text("").is_err());
        assert!(note_text(&"字".repeat(2001)).is_err());
        assert_eq!(
            note_text("line one\nline two").unwrap(),
            "line one\nline two"
        );
    }
}
