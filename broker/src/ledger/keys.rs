//! The key layout of the ledger in its one sorted tree. Big-endian numbers keep key order
//! equal to numeric order.
//!
//! | prefix | key rest | value |
//! |---|---|---|
//! | `op/` | operation id (16) | [`OpRecord`](super::records::OpRecord) |
//! | `tk/` | stored token (32) | list of [`Posting`](super::records::Posting): the open operations holding it |
//! | `mt/` | match id (16) | [`MatchRecord`](super::records::MatchRecord) |
//! | `pr/` | lower operation id + higher operation id | match id |
//! | `aq/` | agency (len-prefixed) + sequence (8) | encoded `deconfliction.v1.Alert` |
//! | `as/` | agency (len-prefixed) | [`QueueState`](super::records::QueueState) |
//! | `rg/` | agency id | [`AgencyEntry`](super::records::AgencyEntry): role, suspension |
//! | `mp/` | match id (16) | [`MatchProgress`](super::progress::MatchProgress): when each side reacted |
//! | `wc/` | match id (16) | [`Coordination`](super::coordination::Coordination): the watch centre's claim, notes, escalation |
//! | `drill/` | drill id | [`DrillRecord`](super::drills::DrillRecord): an exercise this broker serves |
//! | `meta/drill` | | in a drill's own store only: the drill's id, so it can never be served as a live store |
//! | `meta/drill-halted` | | in a drill's own store only: why it was halted |
//! | `au/` | sequence (8) | audit record (see [`crate::ledger::audit`]) |
//! | `meta/format` | | store format version (u32 BE) |
//! | `meta/incarnation` | | the alert queues' incarnation (u64 BE): new at creation and at every restore |
//! | `meta/pepper` | | fingerprints of the pepper layers the store is keyed with (see [`crate::secrets::pepper`]) |
//! | `meta/rekey-incomplete` | | present only while a pepper re-key writes this store |
//!
//! An agency's operations and the expiry schedule are indexes in memory, rebuilt from the
//! `op/` records at start (see [`super::op_index`]). Stores of format 2 and earlier also hold
//! them as `ag/` and `ex/` keys, which the upgrade to format 3 removes (see [`super::format`]).

use uuid::Uuid;

use crate::identity::AgencyId;

pub const OP: &[u8] = b"op/";
pub const TOKEN: &[u8] = b"tk/";
pub const MATCH: &[u8] = b"mt/";
pub const PAIR: &[u8] = b"pr/";
pub const ALERT: &[u8] = b"aq/";
pub const QUEUE: &[u8] = b"as/";
pub const REGISTRY: &[u8] = b"rg/";
pub const PROGRESS: &[u8] = b"mp/";
pub const COORDINATION: &[u8] = b"wc/";
pub const DRILL: &[u8] = b"drill/";
pub const DRILL_ID: &[u8] = b"meta/drill";
pub const DRILL_HALTED: &[u8] = b"meta/drill-halted";
pub const INCARNATION: &[u8] = b"meta/incarnation";
/// Prefixes of format 2 and earlier that format 3 keeps in memory instead.
pub const LEGACY: [&[u8]; 2] = [b"ag/", b"ex/"];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn agency_part(agency: &AgencyId) -> Vec<u8> {
    // Agency ids are at most 64 bytes, so one length byte keeps prefixes unambiguous.
    let bytes = agency.as_str().as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
    out
}

pub fn op(id: &Uuid) -> Vec<u8> {
    cat(&[OP, id.as_bytes()])
}

pub fn token(stored: &[u8; 32]) -> Vec<u8> {
    token_array(stored).to_vec()
}

/// The same key without an allocation, for the check path.
pub fn token_array(stored: &[u8; 32]) -> [u8; 35] {
    let mut key = [0u8; 35];
    key[..3].copy_from_slice(TOKEN);
    key[3..].copy_from_slice(stored);
    key
}

pub fn match_record(id: &Uuid) -> Vec<u8> {
    cat(&[MATCH, id.as_bytes()])
}

/// The match id of a `mt/` key.
pub fn match_id_of(key: &[u8]) -> Option<Uuid> {
    key.get(MATCH.len()..)
        .and_then(|b| Uuid::from_slice(b).ok())
}

/// The pair key is the same whichever operation comes first.
pub fn pair(a: &Uuid, b: &Uuid) -> Vec<u8> {
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    cat(&[PAIR, lo.as_bytes(), hi.as_bytes()])
}

pub fn alert_prefix(agency: &AgencyId) -> Vec<u8> {
    cat(&[ALERT, &agency_part(agency)])
}

pub fn alert(agency: &AgencyId, seq: u64) -> Vec<u8> {
    cat(&[&alert_prefix(agency), &seq.to_be_bytes()])
}

pub fn queue_state(agency: &AgencyId) -> Vec<u8> {
    cat(&[QUEUE, &agency_part(agency)])
}

pub fn progress(match_id: &Uuid) -> Vec<u8> {
    cat(&[PROGRESS, match_id.as_bytes()])
}

pub fn coordination(match_id: &Uuid) -> Vec<u8> {
    cat(&[COORDINATION, match_id.as_bytes()])
}

pub fn drill(id: &str) -> Vec<u8> {
    cat(&[DRILL, id.as_bytes()])
}

pub fn registry(agency: &AgencyId) -> Vec<u8> {
    cat(&[REGISTRY, agency.as_str().as_bytes()])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_keys_agree() {
        let stored = [7u8; 32];
        assert_eq!(token_array(&stored).as_slice(), token(&stored).as_slice());
    }

    #[test]
    fn pair_is_symmetric_and_agency_prefixes_do_not_overlap() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(pair(&a, &b), pair(&b, &a));
        let x = AgencyId::parse("ab").unwrap();
        let y = AgencyId::parse("abc").unwrap();
        assert!(!alert(&y, 1).starts_with(&alert_prefix(&x)));
    }
}
