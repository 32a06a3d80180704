//! The watch centre's `Oversight` service: federation statistics and match metadata (ids,
//! times, selector kinds, state, agencies). Never tokens, messages or contact cards.

use std::sync::Arc;

use deconfliction_proto::v1;
use deconfliction_proto::v1::oversight_server::Oversight;
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::grpc::paging;
use crate::ledger::MatchFilter;
use crate::transport::access::{Gate, Need};

#[derive(Debug)]
pub struct OversightService {
    gate: Arc<Gate>,
    /// The audit checkpoints' MAC key (kept outside the store).
    audit_key: [u8; 32],
}

impl OversightService {
    pub fn new(gate: Arc<Gate>, audit_key: [u8; 32]) -> Self {
        Self { gate, audit_key }
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
        tracing::info!(agency = %agency, matches = matches.len(), "match metadata listed");
        Ok(Response::new(v1::ListMatchesResponse {
            matches: matches.into_iter().map(Into::into).collect(),
            next_page_token: next,
        }))
    }
}
