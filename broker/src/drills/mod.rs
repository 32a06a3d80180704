//! Exercises served beside the live federation. A drill is a whole broker of its own in this
//! process (its own port, token-service key, pepper and store, see [`derive`]), started,
//! halted and ended by an admin through the live broker's `Admin` service; each step is
//! recorded in the live store and its audit log, never anything a drill holds. Ending a drill
//! tells its participants, stops it and removes its folder; a drill past its end is ended
//! without anyone asking, and a restart of the live broker serves the running ones again.
//! The live registry is mirrored into every running drill each second, so that a suspension
//! (or a role change) at the live broker reaches the drills too.

pub mod derive;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use crate::config::BrokerConfig;
use crate::core::Core;
use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;
use crate::ledger::drills::{DrillRecord, Purge};
use crate::ledger::records::AgencyEntry;
use crate::server::{Mode, RunningBroker, StartError};
use crate::tokens::TokenKey;

/// The audit log's actor for what the broker does by itself (a drill reaching its end).
const BROKER_ACTOR: &str = "broker";

/// A drill as the admin sees it.
#[derive(Debug, Clone)]
pub struct DrillView {
    pub record: DrillRecord,
    /// Its token key (empty when it is not running).
    pub public_key: Vec<u8>,
    pub key_epoch: u32,
    pub running: bool,
}

/// What an admin asks for when starting a drill (validated by the gRPC layer).
#[derive(Debug, Clone)]
pub struct DrillRequest {
    pub id: String,
    pub name: String,
    pub duration_secs: i64,
    pub port: u16,
    pub simulated: Vec<(String, String)>,
}

struct Running {
    record: DrillRecord,
    broker: RunningBroker,
    public_key: Vec<u8>,
}

pub struct DrillHost {
    live: Arc<Core>,
    config: BrokerConfig,
    running: Mutex<BTreeMap<String, Running>>,
}

impl std::fmt::Debug for DrillHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrillHost").finish_non_exhaustive()
    }
}

type Started<'a> = Pin<Box<dyn Future<Output = Result<RunningBroker, StartError>> + Send + 'a>>;

impl DrillHost {
    /// The host, when this process serves drills: a live broker (not a drill, not a joint
    /// broker) with `[drills] enabled`.
    pub fn new(config: &BrokerConfig, live: Arc<Core>) -> Option<Arc<Self>> {
        let serves =
            config.drills.enabled && config.drill.is_none() && config.joint_shares.is_empty();
        serves.then(|| {
            Arc::new(Self {
                live,
                config: config.clone(),
                running: Mutex::new(BTreeMap::new()),
            })
        })
    }

    /// Serves again the drills that were running when the live broker stopped, and ends the
    /// ones whose time ran out meanwhile.
    pub async fn resume(&self) {
        let records = match self.live.ledger.drills() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "drills: cannot read their records; none resumed");
                return;
            }
        };
        let now = Core::now();
        for record in records.into_iter().filter(|r| r.purged.is_none()) {
            let id = record.id.clone();
            if record.ends <= now {
                if let Err(e) = self.end(BROKER_ACTOR, &id).await {
                    tracing::error!(drill = %id, error = %e, "drills: could not end a drill past its end");
                }
                continue;
            }
            match self.launch(record).await {
                Ok(()) => tracing::info!(drill = %id, "drill resumed"),
                Err(e) => {
                    tracing::error!(drill = %id, error = %e, "drills: could not resume; end it with `deconflict-broker drill end`")
                }
            }
        }
    }

    pub async fn start(&self, admin: &AgencyId, req: DrillRequest) -> Result<DrillView> {
        let max_secs = (self.config.drills.max_days * 86_400.0) as i64;
        if req.duration_secs > max_secs {
            return Err(BrokerError::Invalid(format!(
                "a drill of {} s is longer than this broker allows ({} days, [drills] max_days)",
                req.duration_secs, self.config.drills.max_days
            )));
        }
        {
            let running = self.running.lock().await;
            if running.len() >= self.config.drills.max_running {
                return Err(BrokerError::DrillHost(format!(
                    "{} drills are running, the most this broker serves at once ([drills] \
                     max_running); end one first",
                    running.len()
                )));
            }
        }
        let now = Core::now();
        let record = DrillRecord {
            id: req.id.clone(),
            name: req.name,
            starts: now,
            ends: now.saturating_add(req.duration_secs),
            port: req.port,
            simulated: req.simulated,
            halted: None,
            purged: None,
        };
        let dir = derive::drill_dir(&self.config, &record.id);
        if dir.exists() {
            return Err(BrokerError::DrillExists(record.id));
        }
        let notes = self.live.ledger.record_drill_started(admin, &record, now)?;
        self.live.durable(notes).await?;
        if let Err(e) = self.launch(record.clone()).await {
            // Recorded as started: record its end too, so the id is spent and the log whole.
            let _ = std::fs::remove_dir_all(&dir);
            let mut ended = record;
            ended.purged = Some(Purge {
                at: now,
                records: 0,
            });
            if let Ok(notes) =
                self.live
                    .ledger
                    .record_drill_change(admin.as_str(), &ended, "drill_failed", now)
            {
                let _ = self.live.durable(notes).await;
            }
            return Err(e);
        }
        tracing::info!(admin = %admin, drill = %req.id, "drill started");
        self.view(&req.id).await
    }

    /// Starts the drill's broker and keeps it; records the port it got when asked for any.
    async fn launch(&self, mut record: DrillRecord) -> Result<()> {
        let agencies = derive::participants(&self.live.ledger.list_agencies()?, &record);
        let config = derive::drill_config(&self.config, &record, agencies);
        let started: Started<'_> = Box::pin(crate::server::start(&config, Mode::Broker));
        let broker = started.await.map_err(|e| {
            BrokerError::DrillHost(format!("drill {} could not start: {e}", record.id))
        })?;
        let key = TokenKey::load_or_create(&config.token_service.seed, derive::DRILL_KEY_EPOCH)
            .map_err(|e| BrokerError::DrillHost(e.to_string()))?;
        if record.port != broker.addr.port() {
            record.port = broker.addr.port();
            let notes = self.live.ledger.record_drill_change(
                BROKER_ACTOR,
                &record,
                "drill_port",
                Core::now(),
            )?;
            self.live.durable(notes).await?;
        }
        let mut running = self.running.lock().await;
        running.insert(
            record.id.clone(),
            Running {
                record,
                broker,
                public_key: key.public_key().to_vec(),
            },
        );
        self.gauge(running.len());
        Ok(())
    }

    pub async fn halt(&self, admin: &AgencyId, id: &str, reason: &str) -> Result<DrillView> {
        {
            let mut running = self.running.lock().await;
            let drill = running
                .get_mut(id)
                .ok_or_else(|| BrokerError::NoSuchDrill(id.into()))?;
            let core = &drill.broker.core;
            let notes = core
                .ledger
                .halt_drill(admin.as_str(), id, reason, Core::now())?;
            core.durable(notes).await?;
            if drill.record.halted.is_none() {
                drill.record.halted = Some(reason.to_owned());
                let notes = self.live.ledger.record_drill_change(
                    admin.as_str(),
                    &drill.record,
                    "drill_halted",
                    Core::now(),
                )?;
                self.live.durable(notes).await?;
            }
        }
        tracing::warn!(admin = %admin, drill = %id, "drill halted");
        self.view(id).await
    }

    /// Tells the participants, gives them `end_grace_seconds` to receive it, stops the drill
    /// and removes its folder; the live log records how many records went with it.
    pub async fn end(&self, actor: &str, id: &str) -> Result<u64> {
        let mut record = self
            .live
            .ledger
            .drill(id)?
            .filter(|r| r.purged.is_none())
            .ok_or_else(|| BrokerError::NoSuchDrill(id.into()))?;
        let running = {
            let mut all = self.running.lock().await;
            let one = all.remove(id);
            self.gauge(all.len());
            one
        };
        let mut records = 0;
        if let Some(drill) = running {
            let core = drill.broker.core.clone();
            // Out of the map now: whatever happens, it is stopped and purged below.
            match core.ledger.announce_drill_end(actor, id, Core::now()) {
                Ok(notes) => {
                    if let Err(e) = core.durable(notes).await {
                        tracing::warn!(drill = %id, error = %e, "drills: end not announced");
                    }
                    tokio::time::sleep(Duration::from_secs(self.config.drills.end_grace_seconds))
                        .await;
                }
                Err(e) => tracing::warn!(drill = %id, error = %e, "drills: end not announced"),
            }
            records =
                crate::store::count_records(core.ledger.store().as_ref()).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "drills: records not counted before the purge");
                    0
                });
            drop(core);
            stop(drill.broker).await;
            record = drill.record;
        }
        let dir = derive::drill_dir(&self.config, id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| {
                BrokerError::DrillHost(format!(
                    "drill {id} stopped, but its folder {} could not be removed: {e}",
                    dir.display()
                ))
            })?;
        }
        let now = Core::now();
        record.purged = Some(Purge { at: now, records });
        let notes = self
            .live
            .ledger
            .record_drill_change(actor, &record, "drill_purged", now)?;
        self.live.durable(notes).await?;
        tracing::info!(drill = %id, records_purged = records, "drill ended and purged");
        Ok(records)
    }

    pub async fn view(&self, id: &str) -> Result<DrillView> {
        let running = self.running.lock().await;
        if let Some(d) = running.get(id) {
            return Ok(DrillView {
                record: d.record.clone(),
                public_key: d.public_key.clone(),
                key_epoch: derive::DRILL_KEY_EPOCH,
                running: true,
            });
        }
        drop(running);
        let record = self
            .live
            .ledger
            .drill(id)?
            .ok_or_else(|| BrokerError::NoSuchDrill(id.into()))?;
        Ok(DrillView {
            record,
            public_key: Vec::new(),
            key_epoch: 0,
            running: false,
        })
    }

    /// Every drill this broker ever served, the running ones with their keys.
    pub async fn list(&self) -> Result<Vec<DrillView>> {
        let mut out = Vec::new();
        for record in self.live.ledger.drills()? {
            out.push(self.view(&record.id).await?);
        }
        Ok(out)
    }

    /// Ends the drills whose time is up.
    async fn end_due(&self) {
        let now = Core::now();
        let due: Vec<String> = self
            .running
            .lock()
            .await
            .values()
            .filter(|d| d.record.ends <= now)
            .map(|d| d.record.id.clone())
            .collect();
        for id in due {
            if let Err(e) = self.end(BROKER_ACTOR, &id).await {
                tracing::error!(drill = %id, error = %e, "drills: could not end a drill at its end");
            }
        }
    }

    fn gauge(&self, running: usize) {
        self.live.metrics.drills_running.set(running as i64);
    }

    /// Copies the live registry into every running drill (entries added or replaced, never
    /// removed: the drill's simulated bureaus stay).
    async fn mirror_registry(&self) {
        let live = match self.live.ledger.list_agencies() {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "drills: live registry not read; mirrored later");
                return;
            }
        };
        let entries: Vec<(AgencyId, AgencyEntry)> = live
            .into_iter()
            .filter_map(|(id, e)| AgencyId::parse(&id).ok().map(|a| (a, e)))
            .collect();
        for (id, drill) in self.running.lock().await.iter() {
            match drill
                .broker
                .core
                .ledger
                .mirror_registry(&entries, Core::now())
            {
                Ok(0) => {}
                Ok(changed) => {
                    tracing::info!(drill = %id, changed, "drills: live registry changes applied")
                }
                Err(e) => {
                    tracing::warn!(drill = %id, error = %e, "drills: live registry not mirrored")
                }
            }
        }
    }

    /// Stops every running drill without ending it (the live broker is stopping; a restart
    /// serves them again).
    pub async fn stop_all(&self) {
        let running = std::mem::take(&mut *self.running.lock().await);
        for (id, drill) in running {
            stop(drill.broker).await;
            tracing::info!(drill = %id, "drill stopped with the broker");
        }
    }
}

/// A drill's broker stopping (boxed: the live broker's own shutdown stops its drills).
fn stop(broker: RunningBroker) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(broker.shutdown())
}

/// Spawns the task that resumes the drills, then ends each at its end, until shutdown. (A
/// plain function, not an async one: a drill is itself started by `server::start`, and the
/// compiler proves this task `Send` here rather than inside `server::start`.)
pub fn spawn_runner(
    host: Arc<DrillHost>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(host, shutdown))
}

async fn run(host: Arc<DrillHost>, mut shutdown: watch::Receiver<bool>) {
    host.resume().await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                host.mirror_registry().await;
                host.end_due().await;
            }
            _ = shutdown.changed() => return,
        }
    }
}
