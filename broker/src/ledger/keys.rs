//! The key layout of the ledger in its one sorted tree. Big-endian numbers keep key order
//! equal to numeric order.
//!
//! | prefix | key rest | value |
//! |---|---|---|
//! | `op/` | operation id (16) | [`OpRecord`](super::records::OpRecord) |
//! | `ag/` | agency (len-prefixed) + operation id | empty: an agency's operations |
//! | `tk/` | stored token (32) | list of [`Posting`](super::records::Posting): the open operations holding it |
//! | `ex/` | window end (8, offset) + operation id | empty: the expiry schedule of open operations |
//! | `mt/` | match id (16) | [`MatchRecord`](super::records::MatchRecord) |
//! | `pr/` | lower operation id + higher operation id | match id |
//! | `aq/` | agency (len-prefixed) + sequence (8) | encoded `deconfliction.v1.Alert` |
//! | `as/` | agency (len-prefixed) | [`QueueState`](super::records::QueueState) |
//! | `rg/` | agency id | [`AgencyEntry`](super::records::AgencyEntry): role, suspension |
//! | `au/` | sequence (8) | audit record (see [`crate::ledger::audit`]) |
//! | `meta/format` | | store format version (u32 BE) |
//! | `meta/incarnation` | | the alert queues' incarnation (u64 BE): new at creation and at every restore |
//! | `meta/pepper` | | fingerprints of the pepper layers the store is keyed with (see [`crate::secrets::pepper`]) |
//! | `meta/rekey-incomplete` | | present only while a pepper re-key writes this store |

use uuid::Uuid;

use crate::identity::AgencyId;

pub const OP: &[u8] = b"op/";
pub const AGENCY_OPS: &[u8] = b"ag/";
pub const TOKEN: &[u8] = b"tk/";
pub const EXPIRY: &[u8] = b"ex/";
pub const MATCH: &[u8] = b"mt/";
pub const PAIR: &[u8] = b"pr/";
pub const ALERT: &[u8] = b"aq/";
pub const QUEUE: &[u8] = b"as/";
pub const REGISTRY: &[u8] = b"rg/";
pub const INCARNATION: &[u8] = b"meta/incarnation";

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

pub fn agency_ops_prefix(agency: &AgencyId) -> Vec<u8> {
    cat(&[AGENCY_OPS, &agency_part(agency)])
}

pub fn agency_op(agency: &AgencyId, id: &Uuid) -> Vec<u8> {
    cat(&[&agency_ops_prefix(agency), id.as_bytes()])
}

pub fn token(stored: &[u8; 32]) -> Vec<u8> {
    cat(&[TOKEN, stored])
}

fn time_part(unix: i64) -> [u8; 8] {
    // Offset so that negative times sort before positive ones.
    ((unix as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn expiry(end_unix: i64, op: &Uuid) -> Vec<u8> {
    cat(&[EXPIRY, &time_part(end_unix), op.as_bytes()])
}

/// The first `ex/` key after every operation ending at or before `unix`.
pub fn expiry_upto(unix: i64) -> Vec<u8> {
    cat(&[EXPIRY, &time_part(unix.saturating_add(1))])
}

pub fn expiry_op(key: &[u8]) -> Option<Uuid> {
    let tail = key.get(EXPIRY.len() + 8..)?;
    Uuid::from_slice(tail).ok()
}

pub fn match_record(id: &Uuid) -> Vec<u8> {
    cat(&[MATCH, id.as_bytes()])
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

pub fn registry(agency: &AgencyId) -> Vec<u8> {
    cat(&[REGISTRY, agency.as_str().as_bytes()])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn expiry_keys_sort_by_time() {
        let id = Uuid::nil();
        assert!(expiry(-5, &id) < expiry(3, &id));
        assert!(expiry(3, &id) < expiry(1_000_000, &id));
        assert!(expiry(10, &id) < expiry_upto(10));
        assert!(expiry_upto(10) < expiry(11, &id));
        assert_eq!(expiry_op(&expiry(10, &id)), Some(id));
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
