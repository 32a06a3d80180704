//! Database connections, each owned by a thread of its own.
//!
//! The blocking `postgres` client drives its connection on a small runtime of its own, which
//! must never be entered from a tokio worker thread (that panics). So a connection lives on a
//! plain thread, callers hand it a job and wait for the answer on a std channel: that wait is
//! safe from any runtime flavour, and it blocks the caller about as long as a sled read of a
//! cold page does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use postgres::{Client, Statement};

use super::tls::MakeRustls;
use crate::store::StoreError;

/// How to open a connection (shared by every thread of one store).
pub(super) struct ConnSpec {
    pub(super) config: postgres::Config,
    pub(super) tls: Option<MakeRustls>,
}

impl ConnSpec {
    pub(super) fn connect(&self) -> Result<Client, StoreError> {
        let mut client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
        .map_err(unavailable)?;
        // A replica that stalls while holding the write lock must not stall every other one
        // for ever; acknowledged means on the synchronous standbys too, where there are any.
        client
            .batch_execute(
                "SET lock_timeout = '10s'; SET statement_timeout = '60s'; \
                 SET synchronous_commit = on",
            )
            .map_err(unavailable)?;
        // A statement prepared while the table was small would keep a sequential scan as its
        // generic plan for ever after; planned each time, it uses the primary key. (Not every
        // PostgreSQL-family database knows the setting: without it, the default stands.)
        let _ = client.batch_execute("SET plan_cache_mode = force_custom_plan");
        Ok(client)
    }
}

/// A database error as a store error, without the server's DETAIL line: that line can quote
/// the row a statement touched, and rows hold peppered tokens, which are never logged.
pub(super) fn unavailable(e: postgres::Error) -> StoreError {
    StoreError::Unavailable(describe(&e))
}

pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// One connection, opened on first use and again after it broke.
pub(super) struct Conn {
    spec: Arc<ConnSpec>,
    client: Option<Client>,
    statements: HashMap<&'static str, Statement>,
    /// Bumped at every new connection: a session lock taken on an earlier one is gone.
    pub(super) generation: u64,
    /// The generation whose session holds the writers' lock, while it is held.
    pub(super) locked_in: Option<u64>,
}

impl Conn {
    fn new(spec: Arc<ConnSpec>) -> Self {
        Self {
            spec,
            client: None,
            statements: HashMap::new(),
            generation: 0,
            locked_in: None,
        }
    }

    pub(super) fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.reset();
        }
        match &mut self.client {
            Some(client) => Ok(client),
            slot => {
                let client = self.spec.connect()?;
                self.generation += 1;
                Ok(slot.insert(client))
            }
        }
    }

    /// A statement prepared once per connection.
    pub(super) fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client()?.prepare(sql).map_err(unavailable)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    /// Drops the connection (it broke, or its session state is unknown after an error).
    pub(super) fn reset(&mut self) {
        self.client = None;
        self.statements.clear();
    }

    /// A failed statement as a store error, dropping the connection if it broke with it.
    pub(super) fn failed(&mut self, e: postgres::Error) -> StoreError {
        if self.is_broken() {
            self.reset();
        }
        unavailable(e)
    }

    pub(super) fn is_broken(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }
}

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// Threads with a connection each, taking jobs from one queue.
pub(super) struct Workers {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Workers {
    pub(super) fn start(
        name: &str,
        threads: usize,
        spec: &Arc<ConnSpec>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let mut conn = Conn::new(spec.clone());
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut conn),
                            // The store was dropped.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| StoreError::Io(format!("cannot start a database thread: {e}")))?;
        }
        Ok(Self {
            queue: Mutex::new(Some(tx)),
        })
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?
            .send(job)
            .map_err(|_| StoreError::Unavailable("the database threads stopped".into()))
    }

    /// Runs `job` on a connection and waits for its answer.
    pub(super) fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Box::new(move |conn| {
            let _ = tx.send(job(conn));
        }))?;
        rx.recv()
            .map_err(|_| StoreError::Unavailable("a database thread stopped".into()))?
    }

    /// Runs a read, once more on a fresh connection if the pooled one had broken (the database
    /// restarted since it was last used): only a database that is really away is an error.
    pub(super) fn read<R: Send + 'static>(
        &self,
        job: impl Fn(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.run(move |conn| match job(conn) {
            Err(_) if conn.is_broken() => {
                conn.reset();
                job(conn)
            }
            done => done,
        })
    }

    /// Queues `job` without waiting for it (jobs on one thread run in order).
    pub(super) fn post(&self, job: impl FnOnce(&mut Conn) + Send + 'static) {
        let _ = self.send(Box::new(job));
    }

    /// Stops the threads once the jobs queued so far are done.
    pub(super) fn close(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// How long a listener waits for a notification before polling anyway.
pub(super) const POLL: Duration = Duration::from_secs(1);
