//! The watch centre's `Oversight` service: federation statistics and match metadata (ids,
//! times, selector kinds, state, agencies), the watch centre's own coordination of matches
//! (claim, notes, escalation), the agency board and the broker's health. Never tokens,
//! messages or contact cards.

use std::sync::Arc;
use std::time::Instant;

use deconfliction_proto::v1;
use deconfliction_proto::v1::oversight_server::Oversight;
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::grpc::paging;
use crate::ledger::MatchFilter;
use crate::ledger::coordination::Coordinate;
use crate::transport::access::{Gate, Need};

#[derive(Debug)]
pub struct OversightService {
    gate: Arc<Gate>,
    core: Arc<Core>,
    /// The audit checkpoints' MAC key (kept outside the store).
    audit_key: [u8; 32],
    /// What the health panel says of this process.
    replica: v1::BrokerReplica,
    token_service_key_epoch: u32,
}

impl OversightService {
    pub fn new(
        gate: Arc<Gate>,
        core: Arc<Core>,
        audit_key: [u8; 32],
        replica_name: String,
        token_service_key_epoch: u32,
    ) -> Self {
        Self {
            gate,
            core,
            audit_key,
            replica: v1::BrokerReplica {
                name: replica_name,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_unix: Core::now(),
            },
            token_service_key_epoch,
        }
    }

    /// One coordination call: admitted for the watch centre, applied, answered as metadata.
    fn coordinate<T>(
        &self,
        req: &Request<T>,
        match_id: &str,
        officer: &str,
        action: Coordinate,
    ) -> Result<Response<v1::MatchMetadata>, Status> {
        let (agency, _) = self.gate.admit(req, Need::WatchCentre)?;
        let id = crate::grpc::validate::match_id(match_id)?;
        let summary = self
            .gate
            .ledger()
            .coordinate(&agency, officer, &id, action, Core::now())?;
        tracing::info!(agency = %agency, match_id = %id, "match coordination recorded");
        Ok(Response::new(summary.into()))
    }
}

#[tonic::async_trait]
impl Oversight for OversightService {
    async fn get_statistics(
        &self,
        req: Request<v1::GetStatisticsRequest>,
    ) -> Result<Response<v1::Statistics>, Status> {
        let (agency, _) = self.gate.admit(&req, Need::WatchCentre)?;
        let mut stats: v1::Statistics = self.gate.ledger().statistics()?.into();
        let checkpoint = self.gate.ledger().audit_head();
        stats.audit_checkpoint = checkpoint.text();
        stats.audit_checkpoint_mac = hex::encode(checkpoint.mac(&self.audit_key));
        tracing::info!(agency = %agency, "federation statistics read");
        Ok(Response::new(stats))
    }

    async fn list_matches(
        &self,
        req: Request<v1::ListMatchesRequest>,
    ) -> Result<Response<v1::ListMatchesResponse>, Status> {
        let (agency, _) = self.gate.admit(&req, Need::WatchCentre)?;
        let r = req.into_inner();
        let size = crate::grpc::validate::page_size(r.page_size)?;
        let filter = MatchFilter {
            include_resolved: r.include_resolved,
            unresolved_for_secs: i64::from(r.unresolved_for_hours) * 3600,
            agency: (!r.agency_id.is_empty()).then_some(r.agency_id),
        };
        let matches = self.gate.ledger().list_matches(&filter, Core::now())?;
        let key = |m: &crate::ledger::MatchSummary| paging::match_key(m.created, &m.match_id);
        let (matches, next) = paging::page(matches, key, &r.page_token, size);
        tracing::debug!(agency = %agency, matches = matches.len(), "match metadata listed");
        Ok(Response::new(v1::ListMatchesResponse {
            matches: matches.into_iter().map(Into::into).collect(),
            next_page_token: next,
        }))
    }

    async fn claim_match(
        &self,
        req: Request<v1::ClaimMatchRequest>,
    ) -> Result<Response<v1::MatchMetadata>, Status> {
        let r = req.get_ref();
        let action = if r.release {
            Coordinate::Release
        } else {
            Coordinate::Claim
        };
        self.coordinate(&req, &r.match_id, &r.officer, action)
    }

    async fn annotate_match(
        &self,
        req: Request<v1::AnnotateMatchRequest>,
    ) -> Result<Response<v1::MatchMetadata>, Status> {
        let r = req.get_ref();
        self.coordinate(
            &req,
            &r.match_id,
            &r.officer,
            Coordinate::Note(r.text.clone()),
        )
    }

    async fn escalate_match(
        &self,
        req: Request<v1::EscalateMatchRequest>,
    ) -> Result<Response<v1::MatchMetadata>, Status> {
        let r = req.get_ref();
        let action = Coordinate::Escalate(r.escalated);
        self.coordinate(&req, &r.match_id, &r.officer, action)
    }

    async fn get_board(
        &self,
        req: Request<v1::GetBoardRequest>,
    ) -> Result<Response<v1::Board>, Status> {
        let (agency, _) = self.gate.admit(&req, Need::WatchCentre)?;
        let ledger = self.gate.ledger();
        let agencies = ledger
            .agency_board()?
            .into_iter()
            .map(|row| {
                let mut entry: v1::AgencyBoardEntry = row.into();
                entry.last_contact_unix = self.gate.last_contact(&entry.agency_id);
                entry
            })
            .collect();
        // A real flush, timed: what a registration waits for right now.
        let started = Instant::now();
        self.core
            .flusher
            .flush()
            .await
            .map_err(crate::error::BrokerError::from)?;
        let flush_probe_micros = started.elapsed().as_micros() as u64;
        let health = v1::BrokerHealth {
            replicas: vec![self.replica.clone()],
            store_bytes: ledger.store().size_on_disk().unwrap_or(0),
            flush_probe_micros,
            token_service_key_epoch: self.token_service_key_epoch,
            drills_running: u32::try_from(self.core.metrics.drills_running.get()).unwrap_or(0),
        };
        tracing::debug!(agency = %agency, "agency board read");
        Ok(Response::new(v1::Board {
            agencies,
            health: Some(health),
        }))
    }
}
