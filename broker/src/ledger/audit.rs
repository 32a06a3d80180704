//! The audit log: append-only, hash-chained, in the same store as what it records.
//!
//! A record says who did what and when, with ids and counts, never a token, a message body or
//! a contact card. Each record's hash covers the previous record's hash, so a removed, altered
//! or reordered record breaks the chain at a point [`verify`] names. Records are written in
//! the same atomic batch as the change they describe, so the log and the ledger cannot
//! disagree after a crash.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, WriteBatch};

pub const PREFIX: &[u8] = b"au/";
const DOMAIN: &[u8] = b"deconfliction audit v1";

/// What happened, before it is sealed into the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEvent {
    /// An agency id, or `broker` for the broker's own actions (expiry, retention).
    pub actor: String,
    pub action: &'static str,
    pub ids: Vec<String>,
    pub counts: BTreeMap<String, u64>,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: &'static str) -> Self {
        Self {
            actor: actor.into(),
            action,
            ..Self::default()
        }
    }

    pub fn id(mut self, id: impl ToString) -> Self {
        self.ids.push(id.to_string());
        self
    }

    pub fn count(mut self, name: &str, n: u64) -> Self {
        self.counts.insert(name.to_owned(), n);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub at_unix: i64,
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
    /// Hex SHA-256 of the previous record (64 zeros for the first).
    pub prev: String,
    pub hash: String,
}

#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    at_unix: i64,
    actor: &'a str,
    action: &'a str,
    ids: &'a [String],
    counts: &'a BTreeMap<String, u64>,
}

/// The chain's hash: over the JSON of the record's content, whichever form the record is
/// stored in, so that records of every store format verify alike.
fn content_hash(prev: &[u8; 32], content: &Hashed<'_>) -> [u8; 32] {
    let body = serde_json::to_vec(content).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

/// What the hash covers of a record read back.
fn content(r: &AuditRecord) -> Hashed<'_> {
    Hashed {
        seq: r.seq,
        at_unix: r.at_unix,
        actor: &r.actor,
        action: &r.action,
        ids: &r.ids,
        counts: &r.counts,
    }
}

fn record_hash(prev: &[u8; 32], r: &AuditRecord) -> [u8; 32] {
    content_hash(prev, &content(r))
}

/// The first byte of a record in the binary form (store format 3 on).
const BINARY_TAG: u8 = 1;
/// The first byte of a record in the JSON form (format 2 and earlier): `{`.
const JSON_TAG: u8 = 0x7b;

/// A record as format 3 stores it: about half the bytes of the JSON form, with no hex.
#[derive(Serialize, Deserialize)]
struct BinaryRecord<'a> {
    seq: u64,
    at_unix: i64,
    #[serde(borrow)]
    actor: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    ids: Vec<std::borrow::Cow<'a, str>>,
    counts: Vec<(std::borrow::Cow<'a, str>, u64)>,
    prev: [u8; 32],
    hash: [u8; 32],
}

fn encode_binary(
    content: &Hashed<'_>,
    prev: &[u8; 32],
    hash: &[u8; 32],
) -> Result<Vec<u8>, StoreError> {
    let record = BinaryRecord {
        seq: content.seq,
        at_unix: content.at_unix,
        actor: content.actor.into(),
        action: content.action.into(),
        ids: content.ids.iter().map(|s| s.as_str().into()).collect(),
        counts: content
            .counts
            .iter()
            .map(|(k, v)| (k.as_str().into(), *v))
            .collect(),
        prev: *prev,
        hash: *hash,
    };
    postcard::to_extend(&record, vec![BINARY_TAG])
        .map_err(|e| StoreError::Io(format!("audit encoding failed: {e}")))
}

pub fn key(seq: u64) -> Vec<u8> {
    [PREFIX, &seq.to_be_bytes()].concat()
}

/// The head of the chain. Appends are serialized by its lock, which is held until the batch
/// carrying them is applied, so stored order is chain order.
#[derive(Debug)]
pub struct AuditLog {
    head: Mutex<(u64, [u8; 32])>,
}

/// A stored record, in either form.
pub fn decode(key: &[u8], value: &[u8]) -> Result<AuditRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: format!(
            "au/{}",
            hex::encode(key.get(PREFIX.len()..).unwrap_or_default())
        ),
        reason,
    };
    match value.split_first() {
        Some((&BINARY_TAG, rest)) => {
            let r: BinaryRecord<'_> =
                postcard::from_bytes(rest).map_err(|e| corrupt(e.to_string()))?;
            Ok(AuditRecord {
                seq: r.seq,
                at_unix: r.at_unix,
                actor: r.actor.into_owned(),
                action: r.action.into_owned(),
                ids: r.ids.into_iter().map(|s| s.into_owned()).collect(),
                counts: r
                    .counts
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v))
                    .collect(),
                prev: hex::encode(r.prev),
                hash: hex::encode(r.hash),
            })
        }
        Some((&JSON_TAG, _)) => serde_json::from_slice(value).map_err(|e| corrupt(e.to_string())),
        _ => Err(corrupt("neither a binary nor a JSON audit record".into())),
    }
}

/// The binary form of `record` as given, hashes included (tests forge records with it).
pub fn encode(record: &AuditRecord) -> Result<Vec<u8>, StoreError> {
    let prev = unhex(&record.prev).unwrap_or_default();
    let hash = unhex(&record.hash).unwrap_or_default();
    encode_binary(&content(record), &prev, &hash)
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    hex::decode(s)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

impl AuditLog {
    /// Resumes the chain after the last stored record.
    pub fn open(store: &dyn Store) -> Result<Self, StoreError> {
        Ok(Self {
            head: Mutex::new(read_head(store)?),
        })
    }
}

/// The chain's head as the store holds it now.
pub fn stored_head(store: &dyn Store) -> Result<Checkpoint, StoreError> {
    let (seq, hash) = read_head(store)?;
    Ok(Checkpoint { seq, hash })
}

/// The last stored record's sequence number and hash.
fn read_head(store: &dyn Store) -> Result<(u64, [u8; 32]), StoreError> {
    Ok(match store.last_with_prefix(PREFIX)? {
        None => (0, [0u8; 32]),
        Some((k, v)) => {
            let r = decode(&k, &v)?;
            let hash = unhex(&r.hash).ok_or_else(|| StoreError::Corrupt {
                key: format!("au/{}", r.seq),
                reason: "hash is not 32 bytes of hex".into(),
            })?;
            (r.seq, hash)
        }
    })
}

impl AuditLog {
    /// The chain's head: the last record's sequence number and hash (0 and zeros when empty).
    pub fn head(&self) -> Checkpoint {
        let head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        Checkpoint {
            seq: head.0,
            hash: head.1,
        }
    }

    /// Seals `events` into `batch` and applies it, atomically with whatever else it holds.
    pub fn apply_with(
        &self,
        store: &dyn Store,
        mut batch: WriteBatch,
        events: Vec<AuditEvent>,
        at_unix: i64,
    ) -> Result<(), StoreError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if store.shared() && !events.is_empty() {
            // Other replicas extend the chain too; the caller holds the writers' lock, so the
            // head read now stays the head until this batch is applied.
            *head = read_head(store)?;
        }
        let (mut seq, mut prev) = *head;
        for e in events {
            seq += 1;
            let content = Hashed {
                seq,
                at_unix,
                actor: &e.actor,
                action: e.action,
                ids: &e.ids,
                counts: &e.counts,
            };
            let hash = content_hash(&prev, &content);
            batch.put(key(seq), encode_binary(&content, &prev, &hash)?);
            prev = hash;
        }
        if !batch.is_empty() {
            store.apply(batch)?;
        }
        *head = (seq, prev);
        Ok(())
    }
}

/// The outcome of walking the chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        records: u64,
    },
    /// The first record that does not follow from its predecessor.
    Broken {
        seq: u64,
        reason: String,
    },
}

/// A point of the chain kept outside the store (by the watch centre, in a log): the record
/// `seq` and its hash. A chain truncated before it, or re-chained from an earlier point, no
/// longer holds it, although it may verify on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Checkpoint {
    /// `SEQ:HEX`, as `checkpoint_text` writes it.
    pub fn parse(text: &str) -> Option<Self> {
        let (seq, hash) = text.trim().split_once(':')?;
        Some(Self {
            seq: seq.parse().ok()?,
            hash: unhex(hash)?,
        })
    }

    pub fn text(&self) -> String {
        format!("{}:{}", self.seq, hex::encode(self.hash))
    }

    /// HMAC-SHA256 of the checkpoint under a key kept outside the store, so that whoever can
    /// rewrite the store cannot also mint checkpoints that look like the broker's.
    pub fn mac(&self, key: &[u8; 32]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return [0u8; 32];
        };
        mac.update(b"deconfliction audit checkpoint v1");
        mac.update(&self.seq.to_be_bytes());
        mac.update(&self.hash);
        mac.finalize().into_bytes().into()
    }
}

/// Walks the whole chain from the first record.
pub fn verify(store: &dyn Store) -> Result<Verdict, StoreError> {
    verify_against(store, None)
}

/// Walks the whole chain and, given a checkpoint kept outside, also checks that the chain
/// still reaches it and holds the same record there: a truncated or re-chained log fails.
pub fn verify_against(
    store: &dyn Store,
    expect: Option<&Checkpoint>,
) -> Result<Verdict, StoreError> {
    let verdict = walk(store, expect)?;
    match (verdict, expect) {
        (Verdict::Intact { records }, Some(cp)) if records < cp.seq => Ok(Verdict::Broken {
            seq: records + 1,
            reason: format!(
                "the chain ends at record {records}, but a checkpoint records {}: records were \
                 removed from the end",
                cp.seq
            ),
        }),
        (verdict, _) => Ok(verdict),
    }
}

fn walk(store: &dyn Store, expect: Option<&Checkpoint>) -> Result<Verdict, StoreError> {
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    let mut start = key(1);
    let end = key(u64::MAX);
    loop {
        let page = store.range(&start, &end, 1024)?;
        if page.is_empty() {
            return Ok(Verdict::Intact {
                records: expected - 1,
            });
        }
        for (k, v) in &page {
            let r = match decode(k, v) {
                Ok(r) => r,
                Err(e) => {
                    return Ok(Verdict::Broken {
                        seq: expected,
                        reason: e.to_string(),
                    });
                }
            };
            if r.seq != expected {
                return Ok(Verdict::Broken {
                    seq: expected,
                    reason: format!("record {expected} is missing (next is {})", r.seq),
                });
            }
            if unhex(&r.prev) != Some(prev) {
                return Ok(Verdict::Broken {
                    seq: r.seq,
                    reason: "does not follow the previous record (prev hash differs)".into(),
                });
            }
            let hash = record_hash(&prev, &r);
            if unhex(&r.hash) != Some(hash) {
                return Ok(Verdict::Broken {
                    seq: r.seq,
                    reason: "content was altered (hash differs)".into(),
                });
            }
            if let Some(cp) = expect
                && cp.seq == r.seq
                && cp.hash != hash
            {
                return Ok(Verdict::Broken {
                    seq: r.seq,
                    reason: "differs from the checkpoint kept outside: the chain was rewritten \
                             from here or earlier"
                        .into(),
                });
            }
            prev = hash;
            expected += 1;
        }
        start = key(expected);
    }
}

/// Every record with `seq >= from`, in order, as JSON lines, for an oversight body.
pub fn export(
    store: &dyn Store,
    from: u64,
    out: &mut dyn std::io::Write,
) -> Result<u64, StoreError> {
    let mut start = key(from.max(1));
    let end = key(u64::MAX);
    let mut n = 0;
    loop {
        let page = store.range(&start, &end, 1024)?;
        let Some((last, _)) = page.last() else {
            return Ok(n);
        };
        let next = last.clone();
        for (k, v) in &page {
            // JSON lines whichever form the record is stored in.
            let line = serde_json::to_vec(&decode(k, v)?)
                .map_err(|e| StoreError::Io(format!("audit encoding failed: {e}")))?;
            out.write_all(&line)
                .and_then(|_| out.write_all(b"\n"))
                .map_err(|e| StoreError::Io(e.to_string()))?;
            n += 1;
        }
        let seq = next
            .get(PREFIX.len()..)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(u64::MAX);
        if seq == u64::MAX {
            return Ok(n);
        }
        start = key(seq + 1);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn log_three(store: &SledStore) {
        let log = AuditLog::open(store).unwrap();
        for action in ["register", "check", "close"] {
            let e = AuditEvent::new("yn-psb", action)
                .id("op-1")
                .count("tokens", 3);
            log.apply_with(store, WriteBatch::default(), vec![e], 1_700_000_000)
                .unwrap();
        }
    }

    #[test]
    fn chain_verifies_and_resumes_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        log_three(&store);
        log_three(&store); // a second AuditLog resumes from the stored head
        assert_eq!(verify(&store).unwrap(), Verdict::Intact { records: 6 });
        let mut out = Vec::new();
        assert_eq!(export(&store, 5, &mut out).unwrap(), 2);
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 2);
    }

    #[test]
    fn altered_or_removed_records_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        log_three(&store);
        let raw = store.get(&key(2)).unwrap().unwrap();
        let mut r = decode(&key(2), &raw).unwrap();
        r.counts.insert("tokens".into(), 4);
        let mut b = WriteBatch::default();
        b.put(key(2), encode(&r).unwrap());
        store.apply(b).unwrap();
        match verify(&store).unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 2);
                assert!(reason.contains("altered"), "{reason}");
            }
            v => panic!("tampering not detected: {v:?}"),
        }
        let mut b = WriteBatch::default();
        b.put(key(2), raw);
        b.delete(key(1));
        store.apply(b).unwrap();
        assert!(matches!(
            verify(&store).unwrap(),
            Verdict::Broken { seq: 1, .. }
        ));
    }
}
