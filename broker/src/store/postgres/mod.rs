//! [`Store`] on a PostgreSQL-family database, shared by any number of broker replicas.
//!
//! One table of sorted byte keys and values, the same layout as sled's tree, so the ledger
//! above does not know which store it runs on. What the database must offer is portable SQL:
//! a `bytea` primary key (ordered bytewise), `INSERT ... ON CONFLICT`, `UNNEST` of arrays,
//! advisory locks and `LISTEN`/`NOTIFY`; no extension. Every commit is synchronous, so a
//! write is durable (on the synchronous standbys too, where the database has them) once
//! [`Store::apply`] returns; [`Store::flush_blocking`] has nothing left to do.
//!
//! Writers in all replicas are serialized by one session-level advisory lock, taken by
//! [`Store::lock_writers`] under the ledger's own writer lock and held until the ledger's
//! transaction is applied: what made "exactly one match per pair" hold in one process holds
//! across processes. Reads go to a pool and see the last committed state.

mod conn;
mod listen;
mod tls;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use self::conn::{ConnSpec, Workers, unavailable};
use super::{KvPair, Store, StoreError, WriteBatch};

/// The one table the broker keeps (created at first start).
pub const TABLE: &str = "deconfliction_kv";
/// The advisory lock every replica's writer takes (the bytes of "deconfl!").
const WRITERS_LOCK: i64 = 0x6465_636f_6e66_6c21;
/// Where a commit that queued alerts wakes the other replicas.
const CHANNEL: &str = "deconfliction_alerts";

const GET: &str = "SELECT v FROM deconfliction_kv WHERE k = $1";
const GET_MANY: &str = "SELECT k, v FROM deconfliction_kv WHERE k = ANY($1::bytea[])";
const RANGE: &str =
    "SELECT k, v FROM deconfliction_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT $3";
const LAST: &str =
    "SELECT k, v FROM deconfliction_kv WHERE k >= $1 AND k < $2 ORDER BY k DESC LIMIT 1";
/// A batch's removals and insertions in one statement, so one round trip, and atomic on its
/// own (a statement is its own transaction). No key is in both lists.
const WRITE: &str = "WITH gone AS (DELETE FROM deconfliction_kv WHERE k = ANY($3::bytea[])) \
                     INSERT INTO deconfliction_kv (k, v) SELECT * FROM UNNEST($1::bytea[], \
                     $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v";

/// How to reach the database. The connection string holds a password: it is never printed.
#[derive(Clone)]
pub struct PgOptions {
    pub url: String,
    /// The database server's CA: TLS, verified. None: a plain connection.
    pub ca_cert: Option<std::path::PathBuf>,
    pub pool_size: usize,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("ca_cert", &self.ca_cert)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_cert: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

pub struct PgStore {
    readers: Workers,
    writer: Workers,
    wakeups: watch::Receiver<u64>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.readers.close();
        self.writer.close();
    }
}

fn refused(what: &str, fix: &str) -> StoreError {
    StoreError::Refused(format!("{what}; {fix}"))
}

impl PgStore {
    /// Connects, refuses a database it must not serve (a read-only standby, a newer format),
    /// and creates the table on first use.
    pub fn open(options: &PgOptions) -> Result<Self, StoreError> {
        let mut config = postgres::Config::from_str(options.url.trim()).map_err(|e| {
            // The parser's message never quotes the string (it may hold a password).
            refused(
                &format!("the database connection string is not valid ({e})"),
                "write it as postgresql://user:password@host:5432/dbname or as \
                 host=... user=... dbname=...",
            )
        })?;
        config
            .connect_timeout(options.connect_timeout)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("deconflict-broker");
        let tls = options
            .ca_cert
            .as_deref()
            .map(tls::MakeRustls::from_ca_file)
            .transpose()?;
        let spec = Arc::new(ConnSpec { config, tls });
        let writer = Workers::start("pg-writer", 1, &spec)?;
        writer.run(prepare_database).map_err(|e| match e {
            StoreError::Unavailable(why) => refused(
                &format!("cannot use the database ({why})"),
                "check the connection string in store.postgres (host, port, user, password, \
                 database name) and that the database accepts this host",
            ),
            other => other,
        })?;
        let readers = Workers::start("pg-read", options.pool_size, &spec)?;
        let stop = Arc::new(AtomicBool::new(false));
        let wakeups = listen::start(spec, CHANNEL, stop.clone())?;
        let store = Self {
            readers,
            writer,
            wakeups,
            stop,
        };
        super::adopt_format(&store)?;
        Ok(store)
    }

    fn range_limited(
        &self,
        start: &[u8],
        end: &[u8],
        limit: i64,
    ) -> Result<Vec<KvPair>, StoreError> {
        if start >= end || limit <= 0 {
            return Ok(Vec::new());
        }
        let (start, end) = (start.to_vec(), end.to_vec());
        self.readers.read(move |c| {
            let s = c.statement(RANGE)?;
            let rows = c
                .client()?
                .query(&s, &[&start, &end, &limit])
                .map_err(unavailable)?;
            rows.iter().map(pair).collect()
        })
    }
}

fn pair(row: &postgres::Row) -> Result<KvPair, StoreError> {
    let k: Vec<u8> = row.try_get(0).map_err(unavailable)?;
    let v: Vec<u8> = row.try_get(1).map_err(unavailable)?;
    Ok((k, v))
}

/// Refuses a standby or a read-only database (it would fail every write later, one by one),
/// and creates the table.
fn prepare_database(c: &mut conn::Conn) -> Result<(), StoreError> {
    let client = c.client()?;
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')",
            &[],
        )
        .map_err(unavailable)?;
    let in_recovery: bool = row.try_get(0).map_err(unavailable)?;
    let read_only: String = row.try_get(1).map_err(unavailable)?;
    if in_recovery || read_only == "on" {
        return Err(refused(
            if in_recovery {
                "the database given in store.postgres is a read-only standby"
            } else {
                "the database given in store.postgres is read-only (default_transaction_read_only)"
            },
            "give the primary, which takes writes (or promote this standby first)",
        ));
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (k bytea PRIMARY KEY, v bytea NOT NULL)"
        ))
        .map_err(|e| {
            refused(
                &format!("cannot create the table {TABLE} ({})", conn::describe(&e)),
                "grant the broker's database user CREATE on the database's schema, or create \
                 the table as docs/operations.md shows",
            )
        })
}

impl Store for PgStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_vec();
        self.readers.read(move |c| {
            let s = c.statement(GET)?;
            let row = c.client()?.query_opt(&s, &[&key]).map_err(unavailable)?;
            row.map(|r| r.try_get::<_, Vec<u8>>(0).map_err(unavailable))
                .transpose()
        })
    }

    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.len() < 2 {
            return keys.iter().map(|k| self.get(k)).collect();
        }
        let wanted = keys.to_vec();
        let mut found: std::collections::HashMap<Vec<u8>, Vec<u8>> =
            self.readers.read(move |c| {
                let s = c.statement(GET_MANY)?;
                let rows = c.client()?.query(&s, &[&wanted]).map_err(unavailable)?;
                rows.iter().map(pair).collect()
            })?;
        Ok(keys.iter().map(|k| found.remove(k)).collect())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, StoreError> {
        self.range_limited(prefix, &super::prefix_end(prefix), i64::MAX)
    }

    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        self.range_limited(start, end, i64::try_from(limit).unwrap_or(i64::MAX))
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KvPair>, StoreError> {
        let (start, end) = (prefix.to_vec(), super::prefix_end(prefix));
        self.readers.read(move |c| {
            let s = c.statement(LAST)?;
            let row = c
                .client()?
                .query_opt(&s, &[&start, &end])
                .map_err(unavailable)?;
            row.as_ref().map(pair).transpose()
        })
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let wake = batch.wakes();
        // The last change of a key wins, as when a batch is applied in order.
        let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for (k, v) in batch.into_ops() {
            last.insert(k, v);
        }
        if last.is_empty() && !wake {
            return Ok(());
        }
        let (mut put_k, mut put_v, mut del_k) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in last {
            match v {
                Some(v) => {
                    put_k.push(k);
                    put_v.push(v);
                }
                None => del_k.push(k),
            }
        }
        self.writer.run(move |c| {
            let write = c.statement(WRITE)?;
            let held = c.locked_in;
            if held.is_some_and(|g| g != c.generation) || (held.is_some() && c.is_broken()) {
                c.locked_in = None;
                return Err(StoreError::Unavailable(
                    "the connection that held the writers' lock was lost; nothing was applied"
                        .into(),
                ));
            }
            let client = c.client()?;
            let written = if held.is_some() {
                // Under the writers' lock the statement is the whole transaction, committed
                // synchronously before it answers.
                client.execute(&write, &[&put_k, &put_v, &del_k]).map(drop)
            } else {
                // A write outside the ledger's lock (start-up, offline tools) still waits for
                // every other replica's writer.
                client.transaction().and_then(|mut tx| {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITERS_LOCK])?;
                    tx.execute(&write, &[&put_k, &put_v, &del_k])?;
                    tx.commit()
                })
            };
            written
                .and_then(|()| {
                    if wake {
                        // A wake-up only (the table is the truth): sent once the write is in.
                        client.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
                    }
                    Ok(())
                })
                .map_err(|e| c.failed(e))
        })
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        // Commits are synchronous: applied is durable.
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.readers.read(|c| {
            let row = c
                .client()?
                .query_one(&format!("SELECT pg_total_relation_size('{TABLE}')"), &[])
                .map_err(unavailable)?;
            let bytes: i64 = row.try_get(0).map_err(unavailable)?;
            Ok(u64::try_from(bytes).unwrap_or(0))
        })
    }

    fn export_to(&self, dir: &std::path::Path) -> Result<u64, StoreError> {
        // A portable copy as an embedded store; the database's own tools (pg_dump, base
        // backups) are what backs the database up.
        let target = super::SledStore::open(dir)?;
        super::copy_all(self, &target)
    }

    fn shared(&self) -> bool {
        true
    }

    fn lock_writers(&self) -> Result<(), StoreError> {
        self.writer.run(|c| {
            let client = c.client()?;
            match client.execute("SELECT pg_advisory_lock($1)", &[&WRITERS_LOCK]) {
                Ok(_) => {
                    c.locked_in = Some(c.generation);
                    Ok(())
                }
                Err(e) => Err(c.failed(e)),
            }
        })
    }

    fn unlock_writers(&self) {
        // Not waited for: the next job on the writer's thread runs after it anyway.
        self.writer.post(|c| {
            let Some(generation) = c.locked_in.take() else {
                return;
            };
            if generation != c.generation || c.is_broken() {
                // The session, and its lock with it, is gone already.
                return;
            }
            let unlocked = c.client().and_then(|client| {
                client
                    .execute("SELECT pg_advisory_unlock($1)", &[&WRITERS_LOCK])
                    .map_err(unavailable)
            });
            if unlocked.is_err() {
                // Closing the session releases the lock for certain.
                c.reset();
            }
        });
    }

    fn wakeups(&self) -> Option<watch::Receiver<u64>> {
        Some(self.wakeups.clone())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
