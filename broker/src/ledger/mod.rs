//! The ledger: operations, the token index, matches and alert queues, on a [`Store`].
//!
//! Every state change runs under one writer lock and is applied as one atomic batch, which
//! is what makes "exactly one match per pair, whatever the interleaving" hold: two
//! registrations of the same token are simply ordered, and the second one finds the first.
//! Reads (get, list, the hit/no-hit part of a check) do not take the lock.
//!
//! The ledger never flushes: it returns [`Notifications`] and the caller acknowledges only
//! after a group flush (see [`crate::core`]).

pub mod audit;
mod check;
pub mod compact;
pub mod coordination;
pub mod drills;
mod exercise;
pub mod format;
pub mod keys;
mod lease;
mod matching;
pub mod migrate;
mod op_index;
mod operations;
mod postings;
pub mod progress;
mod queue;
pub mod records;
mod registry;
pub mod rekey;
mod relay;
mod retention;
mod token_filter;
mod txn;
pub mod views;

use std::sync::{Arc, Mutex, MutexGuard};

pub use check::CheckOutcome;
pub use op_index::IndexReport;
pub use operations::{Amendment, NewOperation, Registered, registration_digest};
pub use queue::{AlertHub, renew_incarnation};
pub use registry::{BoardRow, MatchFilter};
pub use relay::{StateChange, card_to_proto};
pub use retention::{Purged, Retention};
pub use views::{AgencyCounts, MatchSummary, OwnSelector, PartyView, Statistics};

use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;
use crate::ledger::audit::AuditLog;
use crate::store::{Store, StoreError};

/// Federation policy the ledger enforces.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_tokens_per_operation: usize,
    pub max_window_seconds: i64,
    /// Whether two operations of the same agency can match (two units of one bureau can
    /// collide too, so the default is yes).
    pub match_same_agency: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_tokens_per_operation: 10_000,
            max_window_seconds: 366 * 24 * 3600,
            match_same_agency: true,
        }
    }
}

/// Which agencies got new alerts in a committed batch, the highest sequence each got and its
/// queue depth then. Published to subscribers only once the batch is durable.
#[derive(Debug, Default)]
#[must_use = "notifications must be published after the flush"]
pub struct Notifications {
    pub(crate) queued: Vec<Queued>,
    pub(crate) matches_created: u64,
    pub(crate) matches_grown: u64,
}

#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) agency: AgencyId,
    pub(crate) last_seq: u64,
    /// Unacknowledged alerts after this batch (for the queue-depth gauge, without a read).
    pub(crate) depth: u64,
}

pub struct Ledger {
    store: Arc<dyn Store>,
    policy: Policy,
    writer: Mutex<()>,
    hub: Arc<AlertHub>,
    audit: Arc<AuditLog>,
    check_tallies: Mutex<check::CheckTallies>,
    /// The registry as read so far: every call consults it, and it changes only through this
    /// ledger (which updates the cache under the writer lock), so it is never stale.
    registry_cache:
        std::sync::RwLock<std::collections::HashMap<AgencyId, Option<records::AgencyEntry>>>,
    /// The alert queues' incarnation (see [`queue`]); changes only by a restore, offline.
    incarnation: u64,
    /// The agency index, the expiry schedule and the token filter (see [`op_index`]).
    indexes: op_index::Indexes,
    /// What opening found: an upgrade it made, and the rebuilt indexes.
    opened: Opened,
    /// In a drill's ledger, why the drill was halted (see [`exercise`]).
    drill_halted: std::sync::RwLock<Option<String>>,
    /// This process among replicas sharing the store (see [`lease`]).
    replica: uuid::Uuid,
}

/// What [`Ledger::open`] did before the ledger could serve, for the start-up log.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub upgraded: Option<format::Upgraded>,
    pub indexes: IndexReport,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens the ledger on `store`: upgrades an earlier format, resumes the audit chain and
    /// rebuilds the in-memory indexes from the operation records.
    pub fn open(store: Arc<dyn Store>, policy: Policy) -> Result<Self, StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        migrate::refuse_incomplete(store.as_ref())?;
        let upgraded = format::upgrade(store.as_ref(), now)?;
        let audit = Arc::new(AuditLog::open(store.as_ref())?);
        let incarnation = queue::open_incarnation(store.as_ref())?;
        let (indexes, report) = op_index::Indexes::build(store.as_ref())?;
        Ok(Self {
            store,
            policy,
            writer: Mutex::new(()),
            hub: Arc::new(AlertHub::default()),
            audit,
            check_tallies: Mutex::default(),
            registry_cache: std::sync::RwLock::default(),
            incarnation,
            indexes,
            opened: Opened {
                upgraded,
                indexes: report,
            },
            drill_halted: std::sync::RwLock::default(),
            replica: uuid::Uuid::new_v4(),
        })
    }

    /// What opening the ledger did (an upgrade, the indexes rebuilt and how long it took).
    pub fn opened(&self) -> Opened {
        self.opened
    }

    /// Memory of the token filter now (it grows in stages as tokens are registered).
    pub fn token_filter_bytes(&self) -> usize {
        self.indexes.tokens.bytes()
    }

    /// A write transaction on this ledger's store and indexes (callers hold the writer lock).
    fn txn(&self) -> txn::Txn<'_> {
        txn::Txn::new(self.store.as_ref(), &self.indexes)
    }

    /// The audit chain's head, to be kept outside the store as a checkpoint.
    pub fn audit_head(&self) -> crate::ledger::audit::Checkpoint {
        if self.store.shared() {
            // Other replicas extend the chain too: the store has the head.
            if let Ok(head) = crate::ledger::audit::stored_head(self.store.as_ref()) {
                return head;
            }
        }
        self.audit.head()
    }

    /// Appends audit events on their own (reads that leave a trace, token evaluations).
    /// Durable with the next group flush.
    pub fn audit_only(&self, events: Vec<crate::ledger::audit::AuditEvent>, at: i64) -> Result<()> {
        // The chain has one head: its records are appended by one writer at a time, in every
        // replica.
        let _guard = self.lock()?;
        self.audit.apply_with(
            self.store.as_ref(),
            crate::store::WriteBatch::default(),
            events,
            at,
        )?;
        Ok(())
    }

    /// Copies the whole store into `dir` (which must not exist). Writes wait for the copy so
    /// that it is one consistent state; reads go on.
    pub fn backup(&self, dir: &std::path::Path) -> Result<u64> {
        if dir.exists() {
            return Err(BrokerError::BackupTargetExists(dir.to_path_buf()));
        }
        let _guard = self.lock()?;
        Ok(self.store.export_to(dir)?)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn hub(&self) -> &Arc<AlertHub> {
        &self.hub
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The writer lock: this process's, then (for a shared store) every replica's.
    fn lock(&self) -> Result<WriterGuard<'_>, StoreError> {
        // The guarded data is `()`: a panic elsewhere cannot have left it inconsistent, and
        // batches are atomic, so a poisoned lock is safe to take over.
        let local = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.store.lock_writers()?;
        Ok(WriterGuard {
            _local: local,
            store: self.store.as_ref(),
        })
    }
}

/// Holds the ledger's writer lock; lets go of the store's (other replicas') lock on drop.
struct WriterGuard<'a> {
    _local: MutexGuard<'a, ()>,
    store: &'a dyn Store,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.store.unlock_writers();
    }
}

fn owned_by(record_agency: &str, agency: &AgencyId, id: &uuid::Uuid) -> Result<()> {
    if record_agency == agency.as_str() {
        Ok(())
    } else {
        Err(BrokerError::NotOwner(*id))
    }
}
