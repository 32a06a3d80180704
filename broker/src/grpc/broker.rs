//! The agency-facing `Broker` gRPC service.
//!
//! Handlers authenticate (agency from the certificate), validate, call the ledger, wait for
//! durability, and answer. Logs carry agency ids, operation ids and counts: never a token.

use std::pin::Pin;
use std::sync::Arc;

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_server::Broker;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::core::Core;
use crate::grpc::relay;
use crate::grpc::validate;
use crate::ledger::StateChange;
use crate::ledger::records::{OpRecord, OpState};
use crate::secrets::pepper::Pepper;
use crate::transport::access::{Gate, Need};

/// Parameters published by GetFederationInfo.
#[derive(Debug, Clone)]
pub struct FederationParams {
    pub h3_resolution: u32,
    pub h3_disk_radius: u32,
    pub token_service_public_key: Vec<u8>,
    pub token_service_key_epoch: u32,
    pub max_message_bytes: usize,
    /// The previous key during a rotation's overlap.
    pub previous_key: Option<crate::tokens::PreviousKey>,
    /// A joint federation's shares: (name, public key, epoch), and their sum.
    pub joint_shares: Vec<(String, [u8; 32], u32)>,
    pub joint_public_key: Option<[u8; 32]>,
    /// Set when this broker serves a drill.
    pub drill: Option<crate::config::DrillIdentity>,
}

pub struct BrokerService {
    core: Arc<Core>,
    pepper: Pepper,
    gate: Arc<Gate>,
    federation: FederationParams,
    shutdown: watch::Receiver<bool>,
    streams: Arc<super::streams::StreamSlots>,
}

impl BrokerService {
    pub fn new(
        core: Arc<Core>,
        pepper: Pepper,
        gate: Arc<Gate>,
        federation: FederationParams,
        shutdown: watch::Receiver<bool>,
        max_streams_per_agency: usize,
    ) -> Self {
        Self {
            core,
            pepper,
            gate,
            federation,
            shutdown,
            streams: super::streams::StreamSlots::new(max_streams_per_agency),
        }
    }
}

pub fn op_to_proto(id: &Uuid, r: &OpRecord) -> v1::Operation {
    v1::Operation {
        operation_id: id.to_string(),
        window: Some(v1::Window {
            start_unix: r.window.start,
            end_unix: r.window.end,
        }),
        state: match r.state {
            OpState::Open => v1::OperationState::Open,
            OpState::Closed => v1::OperationState::Closed,
            OpState::Expired => v1::OperationState::Expired,
        } as i32,
        token_count: r.tokens.len() as u32,
        case_reference: r.case_reference.clone(),
        created_unix: r.created,
        updated_unix: r.updated,
        match_ids: r
            .match_ids
            .iter()
            .map(|m| Uuid::from_bytes(*m).to_string())
            .collect(),
    }
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<v1::Alert, Status>> + Send>>;

/// Alerts read from the store per round trip of the subscription loop.
const SUBSCRIBE_BATCH: usize = 256;
/// Alerts buffered per subscriber: a subscriber that does not read holds this many at most.
const SUBSCRIBE_BUFFER: usize = 64;
/// How often an idle alert stream checks that its agency is still admitted (a revoked
/// certificate or a suspension ends it within this, not only at the next alert).
const STANDING_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

#[tonic::async_trait]
impl Broker for BrokerService {
    async fn register_operation(
        &self,
        req: Request<v1::RegisterOperationRequest>,
    ) -> Result<Response<v1::RegisterOperationResponse>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        self.core.ledger.refuse_if_halted()?;
        let core = &self.core;
        let n = req.get_ref().tokens.len();
        core.charge(&core.register_limiter, "registrations", &agency, n)?;
        let new = validate::registration(req.get_ref(), &self.pepper, self.core.ledger.policy())?;
        let id = new.id;
        let tokens = new.tokens.len();
        let kinds: Vec<i32> = new.tokens.iter().map(|t| t.kind).collect();
        let (registered, notes) = self.core.ledger.register(&agency, new, Core::now())?;
        self.core.durable(notes).await?;
        if registered.created {
            self.core.metrics.registrations.inc();
            self.core.metrics.tokens_registered(kinds);
        }
        tracing::info!(
            agency = %agency, operation = %id, tokens, created = registered.created,
            matches = registered.matches_touched, "operation registered"
        );
        Ok(Response::new(v1::RegisterOperationResponse {
            operation: Some(op_to_proto(&id, &registered.record)),
            created: registered.created,
            matches_touched: registered.matches_touched,
        }))
    }

    async fn amend_operation(
        &self,
        req: Request<v1::AmendOperationRequest>,
    ) -> Result<Response<v1::AmendOperationResponse>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        self.core.ledger.refuse_if_halted()?;
        let core = &self.core;
        let n = req.get_ref().add_tokens.len();
        if n > 0 {
            core.charge(&core.register_limiter, "registrations", &agency, n)?;
        }
        let (id, amendment) =
            validate::amendment(req.get_ref(), &self.pepper, self.core.ledger.policy())?;
        let (added, removed) = (amendment.add.len(), amendment.remove.len());
        let kinds: Vec<i32> = amendment.add.iter().map(|t| t.kind).collect();
        let (record, touched, notes) =
            self.core
                .ledger
                .amend(&agency, &id, amendment, Core::now())?;
        self.core.durable(notes).await?;
        self.core.metrics.amendments.inc();
        self.core.metrics.tokens_registered(kinds);
        tracing::info!(
            agency = %agency, operation = %id, added, removed, matches = touched,
            "operation amended"
        );
        Ok(Response::new(v1::AmendOperationResponse {
            operation: Some(op_to_proto(&id, &record)),
            matches_touched: touched,
        }))
    }

    async fn close_operation(
        &self,
        req: Request<v1::CloseOperationRequest>,
    ) -> Result<Response<v1::CloseOperationResponse>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        let id = validate::operation_id(&req.get_ref().operation_id)?;
        let (record, notes) = self.core.ledger.close(&agency, &id, Core::now())?;
        self.core.durable(notes).await?;
        self.core.metrics.closes.inc();
        tracing::info!(agency = %agency, operation = %id, "operation closed");
        Ok(Response::new(v1::CloseOperationResponse {
            operation: Some(op_to_proto(&id, &record)),
        }))
    }

    async fn get_operation(
        &self,
        req: Request<v1::GetOperationRequest>,
    ) -> Result<Response<v1::Operation>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        let id = validate::operation_id(&req.get_ref().operation_id)?;
        let record = self.core.ledger.get(&agency, &id)?;
        Ok(Response::new(op_to_proto(&id, &record)))
    }

    async fn list_operations(
        &self,
        req: Request<v1::ListOperationsRequest>,
    ) -> Result<Response<v1::ListOperationsResponse>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        let r = req.get_ref();
        let size = validate::page_size(r.page_size)?;
        let after = validate::operation_page_token(&r.page_token)?;
        let (ops, next) = self
            .core
            .ledger
            .list(&agency, r.include_ended, after, size)?;
        Ok(Response::new(v1::ListOperationsResponse {
            operations: ops.iter().map(|(id, r)| op_to_proto(id, r)).collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    async fn check(
        &self,
        req: Request<v1::CheckRequest>,
    ) -> Result<Response<v1::CheckResponse>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        self.core.ledger.refuse_if_halted()?;
        // Charged in tokens, before any of them is peppered or looked up.
        let core = &self.core;
        core.charge(
            &core.check_limiter,
            "checks",
            &agency,
            req.get_ref().tokens.len(),
        )?;
        let (window, tokens) =
            validate::check(req.get_ref(), &self.pepper, self.core.ledger.policy())?;
        let (outcome, notes) = self
            .core
            .ledger
            .check(&agency, window, &tokens, Core::now())?;
        if outcome.operations_notified > 0 {
            self.core.durable(notes).await?;
        }
        let hits = outcome.hits.iter().filter(|h| **h).count();
        self.core.metrics.checks.inc();
        self.core.metrics.check_hits.inc_by(hits as u64);
        tracing::info!(
            agency = %agency, tokens = tokens.len(), hits,
            notified = outcome.operations_notified, "check answered"
        );
        Ok(Response::new(v1::CheckResponse { hits: outcome.hits }))
    }

    type SubscribeStream = AlertStream;

    async fn subscribe(
        &self,
        req: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        let serial = req
            .extensions()
            .get::<crate::identity::PeerInfo>()
            .map(|p| p.cert.clone())
            .unwrap_or(crate::identity::CertRef {
                issuer: Vec::new(),
                serial: Vec::new(),
            });
        let gate = self.gate.clone();
        // Held by the stream's task: the slot is freed when the stream ends.
        let slot = self.streams.open(&agency)?;
        let after = req.get_ref().after;
        let ledger = self.core.ledger.clone();
        let metrics = self.core.metrics.clone();
        let mut durable = ledger.watch_alerts(&agency)?;
        let start = ledger.resume_point(&agency, after, req.get_ref().incarnation)?;
        let mut shutdown = self.shutdown.clone();
        let (tx, rx) = mpsc::channel(SUBSCRIBE_BUFFER);
        tracing::info!(agency = %agency, after, "alert subscription opened");
        tokio::spawn(async move {
            let _slot = slot;
            let mut cursor = start;
            loop {
                // A suspension or a revocation ends an open stream at its next wake-up, and
                // it wakes at least every STANDING_RECHECK for that.
                if let Err(refused) = gate.still_admitted(&agency, &serial) {
                    tracing::info!(agency = %agency, "alert stream ended: {refused}");
                    let _ = tx.send(Err(refused.into())).await;
                    return;
                }
                let upto = *durable.borrow_and_update();
                while cursor < upto {
                    let batch = match ledger.read_alerts(&agency, cursor, upto, SUBSCRIBE_BATCH) {
                        Ok(batch) => batch,
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    };
                    if batch.is_empty() {
                        // The rest was acknowledged meanwhile.
                        cursor = upto;
                        break;
                    }
                    for alert in batch {
                        cursor = alert.seq;
                        if tx.send(Ok(alert)).await.is_err() {
                            return;
                        }
                        metrics.alerts_delivered.inc();
                    }
                }
                tokio::select! {
                    changed = durable.changed() => if changed.is_err() { return },
                    _ = shutdown.wait_for(|s| *s) => return,
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(STANDING_RECHECK) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn ack(&self, req: Request<v1::AckRequest>) -> Result<Response<v1::AckResponse>, Status> {
        let agency = self.gate.admit(&req, Need::Agency)?.0;
        let v1::AckRequest { upto, incarnation } = *req.get_ref();
        let (remaining, notes) = self
            .core
            .ledger
            .ack(&agency, upto, incarnation, Core::now())?;
        self.core.durable(notes).await?;
        self.core
            .metrics
            .alert_queue_depth
            .get_or_create(&crate::ops::metrics::AgencyLabel {
                agency: agency.to_string(),
            })
            .set(remaining as i64);
        tracing::debug!(agency = %agency, upto, remaining, "alerts acknowledged");
        Ok(Response::new(v1::AckResponse { remaining }))
    }

    async fn send_message(
        &self,
        req: Request<v1::SendMessageRequest>,
    ) -> Result<Response<v1::SendMessageResponse>, Status> {
        relay::send_message(&self.core, &self.gate, req).await
    }

    async fn disclose(
        &self,
        req: Request<v1::DiscloseRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        relay::disclose(&self.core, &self.gate, req).await
    }

    async fn withdraw_disclosure(
        &self,
        req: Request<v1::WithdrawDisclosureRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        relay::withdraw(&self.core, &self.gate, req).await
    }

    async fn resolve_match(
        &self,
        req: Request<v1::ResolveMatchRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let (agency, _) = self.gate.admit(&req, Need::Agency)?;
        let body = req.into_inner();
        let change = validate::resolution(body.outcome, body.note)?;
        relay::set_state(&self.core, &agency, &body.match_id, change).await
    }

    async fn reopen_match(
        &self,
        req: Request<v1::ReopenMatchRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let (agency, _) = self.gate.admit(&req, Need::Agency)?;
        let id = &req.get_ref().match_id;
        relay::set_state(&self.core, &agency, id, StateChange::Reopen).await
    }

    async fn get_match(
        &self,
        req: Request<v1::GetMatchRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        relay::get_match(&self.core, &self.gate, req).await
    }

    async fn acknowledge_match(
        &self,
        req: Request<v1::AcknowledgeMatchRequest>,
    ) -> Result<Response<v1::AcknowledgeMatchResponse>, Status> {
        relay::acknowledge(&self.core, &self.gate, req).await
    }

    async fn get_federation_info(
        &self,
        req: Request<v1::GetFederationInfoRequest>,
    ) -> Result<Response<v1::FederationInfo>, Status> {
        let (agency, role) = self.gate.admit(&req, Need::AnyRole)?;
        let policy = self.core.ledger.policy();
        let previous = self
            .federation
            .previous_key
            .as_ref()
            .filter(|p| Core::now() < p.until);
        Ok(Response::new(v1::FederationInfo {
            spec_version: deconfliction_proto::SPEC_VERSION.into(),
            h3_resolution: self.federation.h3_resolution,
            h3_disk_radius: self.federation.h3_disk_radius,
            max_tokens_per_operation: policy.max_tokens_per_operation as u32,
            max_window_seconds: policy.max_window_seconds as u64,
            token_service_public_key: self.federation.token_service_public_key.clone(),
            token_service_key_epoch: self.federation.token_service_key_epoch,
            agency_id: agency.to_string(),
            max_message_bytes: self.federation.max_message_bytes as u32,
            max_relay_message_chars: validate::MAX_MESSAGE_CHARS as u32,
            role: role as i32,
            previous_token_service_public_key: previous
                .map(|p| p.key.public_key().to_vec())
                .unwrap_or_default(),
            previous_token_service_key_epoch: previous.map(|p| p.key.epoch()).unwrap_or_default(),
            previous_key_valid_until_unix: previous.map(|p| p.until).unwrap_or_default(),
            joint_key_shares: self
                .federation
                .joint_shares
                .iter()
                .map(|(name, key, epoch)| v1::JointKeyShare {
                    name: name.clone(),
                    public_key: key.to_vec(),
                    key_epoch: *epoch,
                })
                .collect(),
            joint_public_key: self
                .federation
                .joint_public_key
                .map(|k| k.to_vec())
                .unwrap_or_default(),
            drill: self.federation.drill.as_ref().map(|d| {
                let halt_reason = self.core.ledger.drill_halt_reason();
                v1::DrillInfo {
                    drill_id: d.id.clone(),
                    name: d.name.clone(),
                    starts_unix: d.starts,
                    ends_unix: d.ends,
                    halted: halt_reason.is_some(),
                    halt_reason: halt_reason.unwrap_or_default(),
                }
            }),
        }))
    }
}
