//! The simulated bureaus: each is a real agencyd (in this process, with its own certificate
//! and an exercise-only data folder) that the controller drives through its control API, as a
//! duty officer would through the CLI. So a simulated party normalizes, derives tokens and
//! registers exactly like a trainee's desk, and a trainee cannot tell it from a real one.
//!
//! A party reacts the way a scripted desk would: it discloses its card on every match (so a
//! trainee's disclosure completes the exchange) and sends its scripted reply once the trainee
//! has written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use agency_client::control::{self, pb, selector_to_proto};
use agency_client::daemon::{self, DaemonConfig};
use deconfliction_proto::v1;
use tonic::transport::Channel;

use crate::controller::{ControllerConfig, Started};
use crate::scenario::{Inject, Party};

type Control = pb::agency_control_client::AgencyControlClient<Channel>;

/// What a party's desk saw of one match.
#[derive(Debug, Clone, Default)]
pub struct PartyMatch {
    pub match_id: String,
    /// The party's own operation (the broker's id).
    pub operation_id: String,
    pub alerted_unix: i64,
    pub trainee_wrote_unix: Option<i64>,
    pub cards_exchanged_unix: Option<i64>,
    pub resolved_unix: Option<i64>,
}

pub struct SimParty {
    pub party: Party,
    daemon: daemon::Daemon,
    control: Control,
    /// Scenario operation name → the broker's operation id.
    pub operations: BTreeMap<String, String>,
    pub matches: BTreeMap<String, PartyMatch>,
    replied: BTreeSet<String>,
    /// The controller halted the drill: told by the broker, like every participant.
    pub halted: Option<String>,
}

fn config_for(
    controller: &ControllerConfig,
    started: &Started,
    party: &Party,
    dir: &Path,
) -> anyhow::Result<DaemonConfig> {
    let (cert, key) = controller.party_files(&party.id)?;
    let mut c = DaemonConfig::default();
    c.tls.cert = cert;
    c.tls.key = key;
    c.tls.ca = controller.ca.clone();
    c.broker.address = started.address.clone();
    c.broker.tls_domain = controller.server_name.clone();
    c.token_service.public_key = started.public_key_hex.clone();
    c.token_service.key_epoch = started.key_epoch;
    c.daemon.data_dir = dir.join("data");
    c.daemon.socket = Some(dir.join("s.sock"));
    c.daemon.inbox_dir = Some(dir.join("inbox"));
    c.daemon.retry_initial_ms = 100;
    c.daemon.retry_max_ms = 1_000;
    c.sinks.log = false;
    c.drill = Some(daemon::config::DrillSection {
        id: started.drill_id.clone(),
    });
    Ok(c)
}

impl SimParty {
    /// Starts the party's daemon for `started` in `dir` (created; an exercise's folder only).
    pub async fn start(
        controller: &ControllerConfig,
        started: &Started,
        party: &Party,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let config = config_for(controller, started, party, dir)?;
        let socket = config.socket_path();
        let daemon = daemon::start(config)
            .await
            .map_err(|e| anyhow::anyhow!("simulated bureau {}: {e}", party.id))?;
        let control = control::connect(&socket)
            .await
            .map_err(|e| anyhow::anyhow!("simulated bureau {}: {e}", party.id))?;
        Ok(Self {
            party: party.clone(),
            daemon,
            control,
            operations: BTreeMap::new(),
            matches: BTreeMap::new(),
            replied: BTreeSet::new(),
            halted: None,
        })
    }

    /// Registers the inject's operation and waits for the broker's confirmation.
    pub async fn register(&mut self, inject: &Inject, now: i64) -> anyhow::Result<u32> {
        let spec = crate::scenario::operation(inject, now).map_err(anyhow::Error::msg)?;
        let request = control::operation_spec_to_request(&spec, 30_000);
        let reply = self
            .control
            .register(request)
            .await
            .map_err(|s| anyhow::anyhow!("{}: {}", self.party.id, s.message()))?
            .into_inner();
        let op = reply.operation.unwrap_or_default();
        match pb::SyncState::try_from(op.sync) {
            Ok(pb::SyncState::Synced) => {}
            Ok(pb::SyncState::Rejected) => anyhow::bail!(
                "{}: the broker refused the operation: {}",
                self.party.id,
                op.last_error
            ),
            _ => anyhow::bail!(
                "{}: the broker did not confirm the operation in time{}",
                self.party.id,
                if op.last_error.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", op.last_error)
                }
            ),
        }
        let matches = op.match_ids.len() as u32;
        self.operations
            .insert(inject.operation.clone(), op.operation_id);
        Ok(matches)
    }

    /// Checks the inject's selectors; returns how many hit.
    pub async fn check(&mut self, inject: &Inject) -> anyhow::Result<u32> {
        let selectors = inject
            .selectors
            .iter()
            .map(|s| selector_to_proto(&s.selector, 0, &s.label))
            .collect();
        let r = self
            .control
            .check(pb::CheckRequest {
                window: None,
                selectors,
            })
            .await
            .map_err(|s| anyhow::anyhow!("{}: {}", self.party.id, s.message()))?
            .into_inner();
        Ok(r.results.iter().filter(|r| r.hit).count() as u32)
    }

    pub async fn close(&mut self, inject: &Inject) -> anyhow::Result<()> {
        let id = self
            .operations
            .get(&inject.operation)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!("operation {} was never registered", inject.operation)
            })?;
        self.control
            .close(pb::CloseRequest {
                operation_id: id,
                wait_ms: 30_000,
            })
            .await
            .map_err(|s| anyhow::anyhow!("{}: {}", self.party.id, s.message()))?;
        Ok(())
    }

    /// Reads the desk's new alerts and reacts as scripted.
    pub async fn react(&mut self) -> anyhow::Result<()> {
        let alerts = self
            .control
            .list_alerts(pb::ListAlertsRequest::default())
            .await
            .map_err(|s| anyhow::anyhow!("{}: {}", self.party.id, s.message()))?
            .into_inner()
            .alerts;
        let mut seqs = Vec::with_capacity(alerts.len());
        for a in alerts {
            seqs.push(a.seq);
            self.take(&a).await;
        }
        if !seqs.is_empty() {
            self.control
                .ack_alerts(pb::AckAlertsRequest { seqs, upto: 0 })
                .await
                .map_err(|s| anyhow::anyhow!("{}: {}", self.party.id, s.message()))?;
        }
        Ok(())
    }

    async fn take(&mut self, a: &pb::AlertView) {
        let kind = pb::AlertKind::try_from(a.kind).unwrap_or(pb::AlertKind::Unspecified);
        if kind == pb::AlertKind::DrillHalted {
            self.halted = Some(a.note.clone());
            return;
        }
        if a.match_id.is_empty() {
            return;
        }
        let fresh = !self.matches.contains_key(&a.match_id);
        let m = self
            .matches
            .entry(a.match_id.clone())
            .or_insert_with(|| PartyMatch {
                match_id: a.match_id.clone(),
                operation_id: a.operation_id.clone(),
                alerted_unix: a.at_unix,
                ..PartyMatch::default()
            });
        match kind {
            pb::AlertKind::Message => {
                m.trainee_wrote_unix.get_or_insert(a.at_unix);
            }
            pb::AlertKind::Contact => {
                m.cards_exchanged_unix.get_or_insert(a.at_unix);
            }
            pb::AlertKind::MatchState if a.state == v1::MatchState::Resolved as i32 => {
                m.resolved_unix = Some(a.at_unix);
            }
            _ => {}
        }
        let match_id = a.match_id.clone();
        if fresh && let Some(card) = &self.party.card {
            let card = v1::ContactCard {
                unit_name: card.unit_name.clone(),
                officer: card.officer.clone(),
                phone: card.phone.clone(),
                secure_email: card.secure_email.clone(),
                note: card.note.clone(),
            };
            let disclosed = self
                .control
                .disclose(pb::DiscloseRequest {
                    match_id: match_id.clone(),
                    card: Some(card),
                })
                .await;
            if let Err(s) = disclosed {
                tracing::warn!(party = %self.party.id, match_id = %match_id, error = s.message(), "drill: scripted disclosure failed");
            }
        }
        if kind == pb::AlertKind::Message
            && let Some(reply) = &self.party.reply
            && self.replied.insert(match_id.clone())
        {
            let sent = self
                .control
                .send_message(pb::SendMessageRequest {
                    match_id: match_id.clone(),
                    text: reply.clone(),
                })
                .await;
            if let Err(s) = sent {
                tracing::warn!(party = %self.party.id, match_id = %match_id, error = s.message(), "drill: scripted reply failed");
            }
        }
    }

    pub async fn stop(self) {
        self.daemon.shutdown().await;
    }
}
